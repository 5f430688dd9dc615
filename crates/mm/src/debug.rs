//! The kernel's own complaints, in its own formats: `BUG()`,
//! `print_bad_pte()`, `bad_page()`, and `vm_normal_page()` which calls
//! them; and `dump_stack()`'s call trace. Models mm/debug.c, mm/memory.c
//! and mm/page_alloc.c (v6.1).
//!
//! Every value these messages print is derived from the model's state:
//! pointers from [`crate::kaddr`]'s layout, call traces from the frames
//! the model has entered ([`call_trace`]), CPU and pid numbers from the
//! running actor ([`explore::rt::current_cpu`], [`task_pid`]).

use std::rc::Rc;

use explore::{Finding, FindingKind};

use crate::arch::x86::pgtable::{pte_val, Pmd, Pte};
use crate::arch::x86::pgtable_v3;
use crate::kaddr;
use crate::mm_types::{Folio, FolioKind, Kernel, MmStruct, Vma};
use crate::pgtable::peek_pmd;
use crate::profile::LogStyle;

/// `dump_stack()`'s `Call Trace:` block: the functions the running actor
/// is in at this point ([`explore::call_chain`]), innermost first, one per
/// line. The model has no object code, so a frame is its function name
/// alone (no `[<address>]`, no `+offset/size`), and frames the model does
/// not enter (the kernel's `dump_stack`, `warn_slowpath_*`, exception entry)
/// are not shown. From v5.x the kernel brackets the frames with `<TASK>`
/// and `</TASK>` (seed 001's 6.1 mail shows them); v3.12 does not.
pub fn call_trace(style: LogStyle) -> Vec<String> {
    let frames = explore::call_chain();
    let mut lines = Vec::with_capacity(frames.len() + 3);
    lines.push("Call Trace:".to_string());
    let task = style == LogStyle::V6_1;
    if task {
        lines.push(" <TASK>".to_string());
    }
    lines.extend(frames.iter().map(|f| format!(" {f}")));
    if task {
        lines.push(" </TASK>".to_string());
    }
    lines
}

/// The pid a kernel message prints for the running task (`current->pid`).
/// The model allocates no pids; by convention a task's pid is its actor
/// number plus one: 1 for the setup/teardown actor (which runs every
/// process's setup, as init would), 2, 3, ... for the scenario's threads
/// in order (the threads on CPU0, CPU1, ...).
pub fn task_pid() -> usize {
    explore::rt::current_actor() + 1
}

/// `BUG()` / `VM_BUG_ON()`: a kernel assertion that stops the kernel.
pub fn bug_on(what: impl Into<String>) -> Finding {
    let what = what.into();
    Finding::new(FindingKind::Kernel, "BUG_ON", format!("kernel BUG: {what}"))
}

/// `bad_page()`: `BUG: Bad page state in process ... pfn:...`, then the
/// page dump's first line with the `struct page` pointer ([`kaddr`]);
/// the model does not print its mapping and index fields.
pub fn bad_page(folio: &Folio, reason: &str) -> Finding {
    bad_page_pfn(
        folio.pfn,
        folio.refcount.peek(),
        folio.mapcount.peek(),
        reason,
    )
}

/// `bad_page()` for a frame given by its counters.
pub fn bad_page_pfn(pfn: u64, refcount: i64, mapcount: i64, reason: &str) -> Finding {
    let title = format!(
        "BUG: Bad page state in process {}  pfn:{pfn:05x}",
        explore::rt::current_comm(),
    );
    Finding::new(FindingKind::Kernel, "bad_page()", title)
        .detail(format!(
            "page:{} refcount:{refcount} mapcount:{mapcount} pfn:{pfn:#x}",
            kaddr::pointer(LogStyle::V6_1, kaddr::struct_page(pfn))
        ))
        .detail(format!("page dumped because: {reason}"))
}

/// `print_bad_pte()` (v6.1): `BUG: Bad page map in process %s  pte:%08llx
/// pmd:%08llx` and the addr/vm_flags/anon_vma line.
pub fn print_bad_pte(k: &Kernel, mm: &MmStruct, vma: &Vma, addr: u64, pte: Pte) {
    let pmd = peek_pmd(k, mm, addr).map_or(0, |p| p.peek());
    let title = format!(
        "BUG: Bad page map in process {}  pte:{:08x} pmd:{:08x}",
        explore::rt::current_comm(),
        pte_val(pte),
        pmd
    );
    // `%px` of vma->anon_vma and of the mapping (NULL: no file).
    let style = k.profile.log_style;
    let anon_vma = vma.anon_vma.get().map_or(0, |a| kaddr::anon_vma(style, a));
    let line = format!(
        "addr:{addr:016x} vm_flags:{:08x} anon_vma:{} mapping:{} index:{:x}",
        vma.flags(),
        kaddr::raw(anon_vma),
        kaddr::raw(0),
        vma.linear_page_index(addr)
    );
    explore::raise(
        Finding::new(FindingKind::Kernel, "print_bad_pte()", title)
            .detail(line)
            .detail(format!("pte decodes as: {}", k.describe_pte(pte_val(pte)))),
    );
}

/// `vm_normal_page()` (v6.1): the folio a present, non-special pte maps;
/// a pfn with no `struct page` is reported with print_bad_pte.
pub fn vm_normal_page(
    k: &Kernel,
    mm: &MmStruct,
    vma: &Vma,
    addr: u64,
    pte: Pte,
) -> Option<Rc<Folio>> {
    let folio = k.mem.pfn_folio(k.pte_pfn(pte));
    if folio.is_none() {
        print_bad_pte(k, mm, vma, addr, pte);
    }
    folio
}

/// What `vm_normal_page()` hands back in the 3.x-era paths: the `struct
/// page` of a pfn, which is part of an allocated folio or is an unallocated
/// (free or reserved) frame.
pub enum PageRef {
    Folio { folio: Rc<Folio>, subpage: usize },
    Frame(u64),
}

impl PageRef {
    pub fn pfn(&self) -> u64 {
        match self {
            PageRef::Folio { folio, subpage } => folio.pfn + *subpage as u64,
            PageRef::Frame(pfn) => *pfn,
        }
    }

    /// `page_mapcount()`.
    pub fn mapcount(&self, k: &Kernel) -> i64 {
        match self {
            PageRef::Folio { folio, .. } => folio.mapcount.peek(),
            PageRef::Frame(pfn) => k.mem.stray_page(*pfn).mapcount,
        }
    }

    /// `PageAnon()`.
    pub fn is_anon(&self) -> bool {
        matches!(self, PageRef::Folio { folio, .. } if folio.kind.get() == FolioKind::Anon)
    }
}

/// `vm_normal_page()` (v3.12, and v3.16 after c46a7c817e66): the page a
/// present pte maps, decoded with the paravirt `pte_pfn()`; special ptes
/// map none (the zero page silently, anything else with print_bad_pte),
/// and a pfn above `highest_memmap_pfn` has no `struct page`
/// (print_bad_pte).
///
/// With `_PAGE_NUMA` on bit 9 ([`NumaBit::Softw1`]), c46a7c817e66 also
/// changed the function: a `pte_numa()` entry goes to `check_pfn` even if
/// `pte_special()` (`!pte_special(pte) || pte_numa(pte)`), and the
/// `is_zero_pfn()` test moves after the `highest_memmap_pfn` check, so that
/// a PROT_NONE zero-page pte (SPECIAL|PROTNONE: not `pte_special()` in
/// v3.16) still maps no page.
///
/// [`NumaBit::Softw1`]: pgtable_v3::NumaBit::Softw1
pub fn vm_normal_page_v3(
    k: &Kernel,
    mm: &MmStruct,
    vma: &Vma,
    addr: u64,
    pte: Pte,
) -> Option<PageRef> {
    let numa = k
        .profile
        .numa_bit()
        .expect("vm_normal_page_v3 runs under a 3.x-era layout");
    let pfn = k.pte_pfn(pte);
    let is_zero_pfn = |pfn: u64| k.zero_page.get().is_some_and(|z| z.pfn == pfn);
    let special = match numa {
        pgtable_v3::NumaBit::AliasProtNone => pgtable_v3::pte_special(numa, pte),
        pgtable_v3::NumaBit::Softw1 => {
            pgtable_v3::pte_special(numa, pte) && !pgtable_v3::pte_numa(numa, pte)
        }
    };
    if special {
        if !is_zero_pfn(pfn) {
            print_bad_pte_v3(k, mm, vma, addr, pte, None);
        }
        return None;
    }
    if pfn > k.mem.highest_memmap_pfn() {
        print_bad_pte_v3(k, mm, vma, addr, pte, None);
        return None;
    }
    if numa == pgtable_v3::NumaBit::Softw1 && is_zero_pfn(pfn) {
        return None;
    }
    Some(match k.mem.pfn_folio(pfn) {
        Some(folio) => {
            let subpage = (pfn - folio.pfn) as usize;
            PageRef::Folio { folio, subpage }
        }
        None => PageRef::Frame(pfn),
    })
}

/// `dump_page()` (v3.12 mm/page_alloc.c `dump_page_badflags`): the two
/// lines `print_bad_pte()` prints for a page.
fn dump_page_v3(k: &Kernel, page: &PageRef) -> [String; 2] {
    let pfn = page.pfn();
    let (count, mapcount, mapping, index, flags) = match page {
        PageRef::Folio { folio, subpage } => {
            let anon_vma = folio.anon_vma.peek();
            // PAGE_MAPPING_ANON in the low bit of the anon_vma pointer.
            let mapping = anon_vma
                .as_ref()
                .map_or(0, |a| kaddr::anon_vma(LogStyle::V3_12, a) | 1);
            // PG_uptodate | PG_lru | PG_swapbacked of an anonymous page.
            let flags = if folio.kind.get() == FolioKind::Anon {
                (1 << 3) | (u64::from(folio.lru.get()) << 5) | (1 << 19)
            } else {
                0
            };
            let index = folio.index.get() + *subpage as u64;
            (
                folio.refcount.peek(),
                folio.mapcount.peek(),
                mapping,
                index,
                flags,
            )
        }
        PageRef::Frame(pfn) => {
            let s = k.mem.stray_page(*pfn);
            let flags = (u64::from(s.referenced) << 2) | (u64::from(s.dirty) << 4);
            (s.refcount, s.mapcount, 0, 0, flags)
        }
    };
    let names: Vec<&str> = [
        (3, "uptodate"),
        (2, "referenced"),
        (4, "dirty"),
        (5, "lru"),
        (19, "swapbacked"),
    ]
    .iter()
    .filter(|(bit, _)| flags & (1 << bit) != 0)
    .map(|(_, name)| *name)
    .collect();
    [
        format!(
            "page:{} count:{count} mapcount:{mapcount} mapping:{} index:{index:#x}",
            kaddr::pointer(LogStyle::V3_12, kaddr::struct_page(pfn)),
            kaddr::pointer(LogStyle::V3_12, mapping)
        ),
        format!("page flags: {flags:#x}({})", names.join("|")),
    ]
}

/// `print_bad_pte()` (v3.12): `BUG: Bad page map in process %s  pte:%08llx
/// pmd:%08llx`, the page dump, and the vma line; both values are printed
/// through the paravirt `pte_val()`/`pmd_val()`. mmrace adds what the raw
/// frame means read as a pfn and as a machine frame.
pub fn print_bad_pte_v3(
    k: &Kernel,
    mm: &MmStruct,
    vma: &Vma,
    addr: u64,
    pte: Pte,
    page: Option<&PageRef>,
) {
    let pmd = peek_pmd(k, mm, addr).map_or(0, |p| k.pv.pmd_val(Pmd(p.peek())));
    let title = format!(
        "BUG: Bad page map in process {}  pte:{:08x} pmd:{:08x}",
        explore::rt::current_comm(),
        k.pv.pte_val(pte),
        pmd
    );
    let mut f = Finding::new(FindingKind::Kernel, "print_bad_pte()", title);
    if let Some(page) = page {
        for line in dump_page_v3(k, page) {
            f = f.detail(line);
        }
    }
    let v3 = LogStyle::V3_12;
    let anon_vma = vma.anon_vma.get().map_or(0, |a| kaddr::anon_vma(v3, a));
    f = f.detail(format!(
        "addr:{addr:016x} vm_flags:{:08x} anon_vma:{} mapping:{} index:{:x}",
        vma.flags(),
        kaddr::pointer(v3, anon_vma),
        kaddr::pointer(v3, 0),
        vma.linear_page_index(addr)
    ));
    f = f.detail(decode_frame(k, pte));
    explore::raise(f);
}

/// mmrace's reading of a raw pte's frame both ways (model helper).
pub fn decode_frame(k: &Kernel, pte: Pte) -> String {
    let raw = pte.0;
    let frame = (raw & pgtable_v3::PTE_PFN_MASK) >> 12;
    if !k.pv.is_xen_pv() {
        return format!("mmrace: raw pte {raw:#018x}, frame {frame:#x} (no translation: native)");
    }
    let as_mfn =
        k.pv.machine_to_phys(frame)
            .map_or("not a machine frame of this domain".to_string(), |p| {
                format!("pfn {p:#x}")
            });
    let as_pfn =
        k.pv.phys_to_machine(frame)
            .map_or("no memory at that pfn".to_string(), |m| {
                format!("pfn {frame:#x}, backed by mfn {m:#x}")
            });
    format!(
        "mmrace: raw pte {raw:#018x}, frame {frame:#x}: read as an MFN (m2p) it is {as_mfn}; \
         read as a PFN it is {as_pfn}; the kernel's pte_pfn() says pfn {:#x}",
        k.pte_pfn(pte)
    )
}

/// `offsetof(struct anon_vma_chain, same_anon_vma)` on x86-64 (v2.6.34
/// include/linux/rmap.h: vma, anon_vma, same_vma, then same_anon_vma).
const AVC_SAME_ANON_VMA_OFFSET: u64 = 0x20;

/// The oops of an rmap walk over an anon_vma whose memory was reused
/// (v2.6.34 arch/x86/mm/fault.c `no_context()` → `show_fault_oops()`,
/// `__die()`): `anon_vma->head.next` reads NULL, `list_for_each_entry()`
/// makes it `container_of(NULL, struct anon_vma_chain, same_anon_vma)`
/// and its `prefetch(pos->same_anon_vma.next)` loads address 0 (CR2 0,
/// R13 = -0x20 as in every oops of the seed 002 thread). IP is the model
/// function doing the walk (no object code: no `+off/size`); the register
/// lines show only the two the thread decoded. Kernel release from the
/// profile name.
pub fn oops_anon_vma_head(k: &Kernel, av: &crate::mm_types::AnonVma) -> Finding {
    let style = k.profile.log_style;
    let release = k.profile.name.trim_start_matches("linux-");
    let frames = explore::call_chain();
    // The list walk is inlined into its caller (the seed's IP is
    // page_referenced+0xee): the innermost frame but page_lock_anon_vma.
    let ip = frames
        .iter()
        .find(|f| !f.starts_with("page_lock_anon_vma"))
        .or(frames.last())
        .cloned()
        .unwrap_or_default();
    let mut f = Finding::new(
        FindingKind::Kernel,
        "no_context()",
        "BUG: unable to handle kernel NULL pointer dereference at (null)",
    )
    .detail(format!("IP: {ip}"))
    .detail(format!(
        "Oops: 0000 [#1] SMP (CPU {})",
        explore::rt::current_cpu()
    ))
    .detail(format!(
        "Pid: {}, comm: {} Not tainted {release}",
        task_pid(),
        explore::rt::current_comm()
    ))
    .detail(format!(
        "R13: {} R14: {}",
        kaddr::raw(0u64.wrapping_sub(AVC_SAME_ANON_VMA_OFFSET)),
        kaddr::raw(kaddr::anon_vma(style, av))
    ))
    .detail(
        "page->mapping of a mapped page is an anon_vma freed by anon_vma_free() \
         whose SLAB_DESTROY_BY_RCU slab page went back to the page allocator and was \
         reused: anon_vma->head.next is NULL",
    );
    for line in call_trace(style) {
        f = f.detail(line);
    }
    f
}
