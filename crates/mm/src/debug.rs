//! The kernel's own complaints, in its own formats: `BUG()`,
//! `print_bad_pte()`, `bad_page()`, and `vm_normal_page()` which calls
//! them. Models mm/debug.c, mm/memory.c and mm/page_alloc.c (v6.1).

use std::rc::Rc;

use explore::{Finding, FindingKind};

use crate::arch::x86::pgtable::{pte_pfn, pte_val, Pmd, Pte};
use crate::arch::x86::pgtable_v3;
use crate::mm_types::{Folio, FolioKind, Kernel, MmStruct, Vma};
use crate::pgtable::peek_pmd;

/// `BUG()` / `VM_BUG_ON()`: a kernel assertion that stops the kernel.
pub fn bug_on(what: impl Into<String>) -> Finding {
    let what = what.into();
    Finding::new(FindingKind::Kernel, "BUG_ON", format!("kernel BUG: {what}"))
}

/// `bad_page()`: `BUG: Bad page state in process ... pfn:...`.
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
        explore::rt::current_actor_name(),
    );
    Finding::new(FindingKind::Kernel, "bad_page()", title)
        .detail(format!(
            "page:{pfn} refcount:{refcount} mapcount:{mapcount}"
        ))
        .detail(format!("page dumped because: {reason}"))
}

/// `print_bad_pte()` (v6.1): `BUG: Bad page map in process %s  pte:%08llx
/// pmd:%08llx` and the addr/vm_flags/anon_vma line.
pub fn print_bad_pte(k: &Kernel, mm: &MmStruct, vma: &Vma, addr: u64, pte: Pte) {
    let pmd = peek_pmd(k, mm, addr).map_or(0, |p| p.peek());
    let title = format!(
        "BUG: Bad page map in process {}  pte:{:08x} pmd:{:08x}",
        explore::rt::current_actor_name(),
        pte_val(pte),
        pmd
    );
    let anon_vma = vma
        .anon_vma
        .get()
        .map_or(0, |a| 0xffff_8880_2000_0000 + a.id * 0x40);
    let line = format!(
        "addr:{addr:016x} vm_flags:{:08x} anon_vma:{anon_vma:016x} mapping:0000000000000000 index:{:x}",
        vma.flags(),
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
    let folio = k.mem.pfn_folio(pte_pfn(pte));
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

/// Base of the direct map (`PAGE_OFFSET`) of v3.12 x86-64.
const PAGE_OFFSET_V3: u64 = 0xffff_8800_0000_0000;
/// `VMEMMAP_START` of v3.12 x86-64; `struct page` is 64 bytes.
const VMEMMAP_START_V3: u64 = 0xffff_ea00_0000_0000;

/// A pointer as v3.12's `%p` prints it: raw hex, `(null)` right-aligned in
/// the default field width for NULL (pointer hashing came in v4.15).
pub fn pointer_v3(addr: u64) -> String {
    if addr == 0 {
        format!("{:>16}", "(null)")
    } else {
        format!("{addr:016x}")
    }
}

/// The kernel address of `mm` (v3.12 formats print it raw).
pub fn mm_pointer_v3(mm: &MmStruct) -> u64 {
    PAGE_OFFSET_V3 + 0x000e_9ca6_0000 + mm.id * 0x580
}

/// The kernel address of an anon_vma (v3.12).
fn anon_vma_pointer_v3(id: u64) -> u64 {
    PAGE_OFFSET_V3 + 0x000e_98f8_0000 + id * 0x380
}

/// `dump_page()` (v3.12 mm/page_alloc.c `dump_page_badflags`): the two
/// lines `print_bad_pte()` prints for a page.
fn dump_page_v3(k: &Kernel, page: &PageRef) -> [String; 2] {
    let pfn = page.pfn();
    let (count, mapcount, mapping, index, flags) = match page {
        PageRef::Folio { folio, subpage } => {
            let anon_vma = folio.anon_vma.peek();
            let mapping = anon_vma
                .as_ref()
                .map_or(0, |a| anon_vma_pointer_v3(a.id) | 1);
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
            "page:{:016x} count:{count} mapcount:{mapcount} mapping:{} index:{index:#x}",
            VMEMMAP_START_V3 + pfn * 64,
            pointer_v3(mapping)
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
        explore::rt::current_actor_name(),
        k.pv.pte_val(pte),
        pmd
    );
    let mut f = Finding::new(FindingKind::Kernel, "print_bad_pte()", title);
    if let Some(page) = page {
        for line in dump_page_v3(k, page) {
            f = f.detail(line);
        }
    }
    let anon_vma = vma.anon_vma.get().map_or(0, |a| anon_vma_pointer_v3(a.id));
    f = f.detail(format!(
        "addr:{addr:016x} vm_flags:{:08x} anon_vma:{} mapping:{} index:{:x}",
        vma.flags(),
        pointer_v3(anon_vma),
        pointer_v3(0),
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
