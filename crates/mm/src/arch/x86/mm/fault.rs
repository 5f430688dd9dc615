//! User-space memory access: the MMU's page-table walk and
//! `do_user_addr_fault()`.
//!
//! Models the x86-64 hardware walker (a lockless read of each level; a
//! store needs RW and USER at every level) and arch/x86/mm/fault.c (v6.1).
//! The walk and the data access happen in one step: the model has no TLB,
//! so a changed entry is seen at once, as after the kernel's flush.

use explore::{Finding, FindingKind};

use crate::arch::x86::pgtable::{
    pmd_pfn, pte_pfn, Pmd, Pte, _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_PSE, _PAGE_RW,
    _PAGE_USER,
};
use crate::memory::{
    handle_mm_fault, vma_allows, FAULT_FLAG_WRITE, VM_FAULT_ERROR, VM_FAULT_OOM, VM_FAULT_SIGBUS,
};
use crate::mm_types::{Folio, FolioKind, Kernel, PageData, Task, PAGE_SHIFT, PAGE_SIZE};
use crate::pgtable::{pgd_offset, pmd_offset, pte_offset, pud_offset, EntryRef};

/// Why an access did not complete.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Signal {
    /// SIGSEGV, SEGV_MAPERR: no VMA.
    SegvMapErr,
    /// SIGSEGV, SEGV_ACCERR: the VMA forbids the access.
    SegvAccErr,
    /// SIGBUS.
    Bus,
    /// VM_FAULT_OOM: the OOM killer runs and the fault is retried, so a
    /// user access never ends with it (kept for do_user_addr_fault's result).
    Oom,
}

impl Signal {
    /// The signal's name and `si_code` (`SIGSEGV`, `SEGV_ACCERR`); `None`
    /// for OOM, which is not a signal.
    pub fn siginfo(self) -> Option<(&'static str, &'static str)> {
        match self {
            Signal::SegvMapErr => Some(("SIGSEGV", "SEGV_MAPERR")),
            Signal::SegvAccErr => Some(("SIGSEGV", "SEGV_ACCERR")),
            Signal::Bus => Some(("SIGBUS", "BUS_ADRERR")),
            Signal::Oom => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Signal::SegvMapErr => "SIGSEGV (SEGV_MAPERR)",
            Signal::SegvAccErr => "SIGSEGV (SEGV_ACCERR)",
            Signal::Bus => "SIGBUS",
            Signal::Oom => "OOM",
        }
    }
}

/// What the walker found for one address.
struct Walked {
    folio: std::rc::Rc<Folio>,
    subpage: usize,
    /// Pages from `subpage` on that the same entry maps (a huge pmd maps
    /// the rest of its 2 MiB; a pte maps one page).
    span: usize,
}

/// The hardware page-table walk; `None` means a page fault.
///
/// As an x86 MMU does, the walk sets the accessed bit in every entry it
/// uses, and the dirty bit in the leaf for a store, each with a locked
/// update that only happens if the bit is clear (Intel SDM vol. 3,
/// 4.8). The update is a compare-and-exchange of the value the walk read:
/// if the entry changed meanwhile, the walk starts over, as the hardware
/// re-walks. These are the lockless writers that `ptep_test_and_clear_young()`
/// and fork's `pte_mkold()` race with.
///
/// A walk that reaches a table freed under it also starts over: the kernel
/// frees a table only after unlinking it and flushing every CPU's TLB, and
/// the flush waits for a walk in progress, so the hardware never reads a
/// freed table through a path the kernel had unlinked. Reaching the same
/// freed table again on the new walk means it is still linked after its
/// free: that read is reported as the use after free it is.
fn hw_walk(k: &Kernel, task: &Task, addr: u64, write: bool) -> Option<Walked> {
    let mut stale = None;
    loop {
        match hw_walk_once(k, task, addr, write, stale) {
            Walk::Done(w) => return w,
            Walk::Changed => explore::mark("MMU walk: entry changed under the A/D update, re-walk"),
            Walk::Freed(table) => {
                explore::mark("MMU walk: table freed under the walk, re-walk");
                stale = Some(table);
            }
        }
    }
}

enum Walk {
    Done(Option<Walked>),
    /// An accessed/dirty update found the entry changed: walk again.
    Changed,
    /// The walk reached the freed table at this pfn: walk again.
    Freed(u64),
}

/// The walk's load of one entry; `stale` is the table a previous walk
/// found freed (see [`hw_walk`]).
fn hw_load(slot: &EntryRef, label: &'static str, stale: Option<u64>) -> Result<u64, Walk> {
    match slot.hw_read(label) {
        Some(v) => Ok(v),
        None if stale == Some(slot.table.pfn) => Ok(slot.read(label)),
        None => Err(Walk::Freed(slot.table.pfn)),
    }
}

/// Reads one level's entry and sets the bits `set` in it if any is clear;
/// `Ok(None)` if the entry is not `usable`.
fn walk_entry(
    slot: &EntryRef,
    read: &'static str,
    update: &'static str,
    usable: impl Fn(u64) -> bool,
    set: u64,
    stale: Option<u64>,
) -> Result<Option<u64>, Walk> {
    let v = hw_load(slot, read, stale)?;
    if !usable(v) {
        return Ok(None);
    }
    hw_update(slot, v, update, set).map(Some)
}

/// The locked update that sets the bits `set` in an entry the walk read as
/// `v`, if any is clear; the entry's new value.
fn hw_update(slot: &EntryRef, v: u64, update: &'static str, set: u64) -> Result<u64, Walk> {
    if v & set == set {
        return Ok(v);
    }
    match slot.hw_cmpxchg(update, v, v | set) {
        Some(found) if found == v => Ok(v | set),
        Some(_) => Err(Walk::Changed),
        None => Err(Walk::Freed(slot.table.pfn)),
    }
}

fn hw_walk_once(k: &Kernel, task: &Task, addr: u64, write: bool, stale: Option<u64>) -> Walk {
    match walk_levels(k, task, addr, write, stale) {
        Ok(found) => Walk::Done(found.and_then(|(pfn, span)| walked(k, pfn, span))),
        Err(again) => again,
    }
}

/// The levels of one walk: the guest page and how many pages from it the
/// leaf maps, `Ok(None)` for a fault.
fn walk_levels(
    k: &Kernel,
    task: &Task,
    addr: u64,
    write: bool,
    stale: Option<u64>,
) -> Result<Option<(u64, usize)>, Walk> {
    let need = _PAGE_PRESENT | _PAGE_USER | if write { _PAGE_RW } else { 0 };
    let ok = |v: u64| v & need == need;
    let leaf_bits = _PAGE_ACCESSED | if write { _PAGE_DIRTY } else { 0 };
    let level = |slot: Option<EntryRef>, read, update, set| match slot {
        None => Ok(None),
        Some(slot) => walk_entry(&slot, read, update, ok, set, stale),
    };
    let Some(pgd) = level(
        Some(pgd_offset(&task.mm, addr)),
        "MMU walk: read pgd",
        "MMU walk: set pgd accessed",
        _PAGE_ACCESSED,
    )?
    else {
        return Ok(None);
    };
    let Some(pud) = level(
        pud_offset(k, pgd, addr),
        "MMU walk: read pud",
        "MMU walk: set pud accessed",
        _PAGE_ACCESSED,
    )?
    else {
        return Ok(None);
    };
    let Some(pmd_slot) = pmd_offset(k, pud, addr) else {
        return Ok(None);
    };
    // Whether the pmd is a leaf decides which bits the walk sets in it, so
    // it is read before the update.
    let pmd = hw_load(&pmd_slot, "MMU walk: read pmd", stale)?;
    let huge = pmd & _PAGE_PSE != 0;
    let pmd_bits = if huge { leaf_bits } else { _PAGE_ACCESSED };
    if !ok(pmd) {
        return Ok(None);
    }
    let pmd = hw_update(&pmd_slot, pmd, "MMU walk: set pmd accessed/dirty", pmd_bits)?;
    // The MMU sees machine frames: on Xen PV the hypervisor's m2p says
    // which guest page a frame is (a present entry is never inverted).
    if huge {
        let index = (addr >> PAGE_SHIFT) & 511;
        let head = guest_frame(k, pmd_pfn(Pmd(pmd)));
        return Ok(Some((head + index, 512 - index as usize)));
    }
    let Some(pte) = level(
        pte_offset(k, pmd, addr),
        "MMU walk: read pte",
        "MMU walk: set pte accessed/dirty",
        leaf_bits,
    )?
    else {
        return Ok(None);
    };
    Ok(Some((guest_frame(k, pte_pfn(Pte(pte))), 1)))
}

/// Machine frames Xen's m2p does not know, as [`walked`] keys them apart
/// from guest pfns.
const UNKNOWN_MACHINE_FRAME: u64 = 1 << 62;

/// The guest frame a leaf's frame is: on Xen PV the hypervisor's m2p says
/// (a present entry is never inverted); a machine frame it does not know
/// stays a machine frame, which the walk still reaches.
fn guest_frame(k: &Kernel, frame: u64) -> u64 {
    k.pv.machine_to_phys(frame)
        .unwrap_or(frame | UNKNOWN_MACHINE_FRAME)
}

/// The page a walk reached. A leaf that leads to a frame no folio holds
/// (freed, never allocated, an unknown machine frame) is not a fault: the
/// MMU loads and stores that frame, here one page of contents the
/// checkers do not count, so the access completes as on hardware instead
/// of faulting forever on a present entry.
fn walked(k: &Kernel, pfn: u64, span: usize) -> Option<Walked> {
    let Some(folio) = k.mem.pfn_folio(pfn) else {
        explore::mark("MMU walk: the leaf maps a frame no folio holds; the access reaches it");
        return Some(Walked {
            folio: k.mem.stray_frame(pfn),
            subpage: 0,
            span: 1,
        });
    };
    let subpage = (pfn - folio.pfn) as usize;
    Some(Walked {
        folio,
        subpage,
        span,
    })
}

/// `do_user_addr_fault()` (v6.1): find the VMA, check the access, and
/// call handle_mm_fault with mmap_lock held for read.
fn do_user_addr_fault(k: &Kernel, task: &Task, addr: u64, write: bool) -> Result<(), Signal> {
    let _f = explore::enter("do_user_addr_fault");
    let mmap = task.mm.mmap_lock.read("mmap_read_lock");
    let Some(vma) = mmap.vma_lookup(addr).cloned() else {
        mmap.unlock("mmap_read_unlock");
        return Err(Signal::SegvMapErr);
    };
    if !vma_allows(&vma, write) {
        mmap.unlock("mmap_read_unlock");
        return Err(Signal::SegvAccErr);
    }
    let fault = handle_mm_fault(
        k,
        task,
        &vma,
        addr,
        if write { FAULT_FLAG_WRITE } else { 0 },
    );
    mmap.unlock("mmap_read_unlock");
    match fault & VM_FAULT_ERROR {
        0 => Ok(()),
        f if f & VM_FAULT_OOM != 0 => Err(Signal::Oom),
        f if f & VM_FAULT_SIGBUS != 0 => Err(Signal::Bus),
        _ => Err(Signal::SegvAccErr),
    }
}

/// Walks, faulting until the access can complete; then runs `access` on
/// the page in the same step. Each page fault taken counts in `faults`.
fn with_page<R>(
    k: &Kernel,
    task: &Task,
    (addr, write): (u64, bool),
    faults: &mut u32,
    access: impl FnOnce(&Folio, std::ops::Range<usize>) -> R,
) -> Result<R, Signal> {
    loop {
        if let Some(w) = hw_walk(k, task, addr, write) {
            return Ok(access(&w.folio, w.subpage..w.subpage + w.span));
        }
        *faults += 1;
        match do_user_addr_fault(k, task, addr, write) {
            // pagefault_out_of_memory(): the OOM killer frees memory (or
            // kills someone else) and the task takes the fault again.
            Err(Signal::Oom) => explore::mark("fault: VM_FAULT_OOM, retried"),
            r => r?,
        }
    }
}

/// A user store of `value` to bytes `[addr + lo, addr + hi)`. The ghost
/// learns the expected contents from its own record, so a lost earlier
/// write is not absorbed. Pages reached through one mapping (a huge pmd)
/// are stored in one step.
pub fn user_write(
    k: &Kernel,
    task: &Task,
    addr: u64,
    lo: u64,
    hi: u64,
    value: u8,
) -> Result<(), Signal> {
    user_write_counted(k, task, addr, (lo, hi), value).0
}

/// [`user_write`], with the number of page faults it took.
pub fn user_write_counted(
    k: &Kernel,
    task: &Task,
    addr: u64,
    (lo, hi): (u64, u64),
    value: u8,
) -> (Result<(), Signal>, u32) {
    let _f = explore::enter("user space store");
    let file = file_access_begin(k, task, addr + lo);
    let (mut at, end) = (addr + lo, addr + hi);
    let mut result = Ok(());
    let mut faults = 0;
    while at < end {
        match with_page(k, task, (at, true), &mut faults, |folio, subs| {
            store_run(k, task, at, end, folio, subs, value)
        }) {
            Ok(next) => at = next,
            Err(sig) => {
                result = Err(sig);
                break;
            }
        }
    }
    file_access_end(k, file);
    (result, faults)
}

/// Stores into the pages `subs` of `folio` that one entry maps, from
/// `at`; returns where it stopped (the end, or the end of the mapping).
fn store_run(
    k: &Kernel,
    task: &Task,
    at: u64,
    end: u64,
    folio: &Folio,
    subs: std::ops::Range<usize>,
    value: u8,
) -> u64 {
    let mm = task.mm.id;
    if in_file_vma(task, at) {
        return store_untracked(k, task, at, end, folio, subs, value);
    }
    let (mut at, mut sub) = (at, subs.start);
    let mut run: Option<(u64, u64, PageData)> = None;
    while at < end && subs.contains(&sub) {
        let page_start = at & !(PAGE_SIZE - 1);
        let upto = (page_start + PAGE_SIZE).min(end);
        let vpn = at >> PAGE_SHIFT;
        let (from, to) = ((at - page_start) as u16, (upto - page_start) as u32);
        let mut expected = if to - u32::from(from) == PAGE_SIZE as u32 {
            // A whole-page store: what the page held before cannot be seen
            // any more (a lost mapping is INV-NO-LOST-MAPPING's business).
            PageData::default()
        } else {
            let accepted = k.ghost.accepted(mm, vpn);
            let actual = folio.data.borrow()[sub].clone();
            check_data(task, at, folio, &actual, &accepted);
            if accepted.contains(&actual) {
                actual
            } else {
                accepted[0].clone()
            }
        };
        expected.fill_range(from, to, value);
        folio.data.borrow_mut()[sub].fill_range(from, to, value);
        run = match run {
            Some((first, last, d)) if last == vpn && d == expected => Some((first, vpn + 1, d)),
            Some((first, last, d)) => {
                k.ghost.wrote(mm, first, last, d);
                Some((vpn, vpn + 1, expected))
            }
            None => Some((vpn, vpn + 1, expected)),
        };
        at = upto;
        sub += 1;
    }
    if let Some((first, last, d)) = run {
        k.ghost.wrote(mm, first, last, d);
    }
    at
}

/// Whether `addr` lies in a file mapping: the ghost does not track those
/// (their contents are the file's, shared with read()/write() and other
/// mappings; `mmrace conform` checks them against the real kernel).
fn in_file_vma(task: &Task, addr: u64) -> bool {
    task.mm
        .mmap_lock
        .peek()
        .vma_lookup(addr)
        .is_some_and(|v| v.vm_file.get().is_some())
}

/// A user access through a mapping of a file begins: it races with the
/// file operations in flight until it returns (ghost_file.rs). Returns
/// the file, for [`file_access_end`].
fn file_access_begin(k: &Kernel, task: &Task, addr: u64) -> Option<u64> {
    let mmap = task.mm.mmap_lock.peek();
    let file = mmap
        .vma_lookup(addr)
        .and_then(|v| v.vm_file.get().map(|f| f.id))?;
    k.ghost.files.access_begin(file);
    Some(file)
}

fn file_access_end(k: &Kernel, file: Option<u64>) {
    if let Some(id) = file {
        k.ghost.files.access_end(id);
    }
}

/// A store into a file mapping's pages: no per-mm ghost; a regular
/// file's page-cache page stored through a shared mapping changes the
/// file (its ghost, at the page's index).
fn store_untracked(
    k: &Kernel,
    task: &Task,
    at: u64,
    end: u64,
    folio: &Folio,
    subs: std::ops::Range<usize>,
    value: u8,
) -> u64 {
    let (mut at, mut sub) = (at, subs.start);
    while at < end && subs.contains(&sub) {
        let page_start = at & !(PAGE_SIZE - 1);
        let upto = (page_start + PAGE_SIZE).min(end);
        let (from, to) = ((at - page_start) as u16, (upto - page_start) as u32);
        folio.data.borrow_mut()[sub].fill_range(from, to, value);
        if let Some(file) = shared_file_of(task, at).filter(|_| folio.kind.get() == FolioKind::File)
        {
            k.ghost
                .files
                .stored(file, folio.index.get(), from, to, value);
        }
        at = upto;
        sub += 1;
    }
    at
}

/// The file a shared file mapping at `addr` maps.
fn shared_file_of(task: &Task, addr: u64) -> Option<u64> {
    let mmap = task.mm.mmap_lock.peek();
    let vma = mmap.vma_lookup(addr)?;
    if vma.flags() & crate::mm_types::vm_flags::VM_SHARED == 0 {
        return None;
    }
    vma.vm_file.get().map(|f| f.id)
}

/// A user load of bytes `[addr + lo, addr + hi)`; returns them. Every page
/// read is checked against the ghost (INV-DATA).
pub fn user_read(k: &Kernel, task: &Task, addr: u64, lo: u64, hi: u64) -> Result<Vec<u8>, Signal> {
    user_read_counted(k, task, addr, (lo, hi)).0
}

/// [`user_read`], with the number of page faults it took.
pub fn user_read_counted(
    k: &Kernel,
    task: &Task,
    addr: u64,
    (lo, hi): (u64, u64),
) -> (Result<Vec<u8>, Signal>, u32) {
    let _f = explore::enter("user space load");
    let file = file_access_begin(k, task, addr + lo);
    let mut out = Vec::new();
    let (mut at, end) = (addr + lo, addr + hi);
    let mut result = Ok(());
    let mut faults = 0;
    while at < end {
        match with_page(k, task, (at, false), &mut faults, |folio, subs| {
            load_run(k, task, at, end, folio, subs, &mut out)
        }) {
            Ok(next) => at = next,
            Err(sig) => {
                result = Err(sig);
                break;
            }
        }
    }
    file_access_end(k, file);
    (result.map(|()| out), faults)
}

/// Loads the pages `subs` of `folio` that one entry maps, from `at`;
/// returns where it stopped.
fn load_run(
    k: &Kernel,
    task: &Task,
    at: u64,
    end: u64,
    folio: &Folio,
    subs: std::ops::Range<usize>,
    out: &mut Vec<u8>,
) -> u64 {
    let (mut at, mut sub) = (at, subs.start);
    let tracked = !in_file_vma(task, at);
    while at < end && subs.contains(&sub) {
        let upto = ((at & !(PAGE_SIZE - 1)) + PAGE_SIZE).min(end);
        let data = folio.data.borrow()[sub].clone();
        if tracked {
            check_data(
                task,
                at,
                folio,
                &data,
                &k.ghost.accepted(task.mm.id, at >> PAGE_SHIFT),
            );
        }
        out.extend((at..upto).map(|a| data.get((a % PAGE_SIZE) as u16)));
        at = upto;
        sub += 1;
    }
    at
}

/// INV-DATA at the moment of a user access: the page holds contents the
/// user may legitimately see.
fn check_data(task: &Task, at: u64, folio: &Folio, actual: &PageData, accepted: &[PageData]) {
    if accepted.contains(actual) {
        return;
    }
    let zero = matches!(folio.kind.get(), FolioKind::Zero | FolioKind::HugeZero);
    let want: Vec<String> = accepted.iter().map(PageData::describe).collect();
    let title = format!(
        "INV-DATA: {} read {} at {at:#x}, expected {}",
        task.name,
        actual.describe(),
        want.join(" or ")
    );
    let detail = format!(
        "the access reached pfn {:#x}{} (node {}); the data written there is gone",
        folio.pfn,
        if zero { " (a zero page)" } else { "" },
        folio.node
    );
    explore::raise(Finding::new(FindingKind::Invariant, "INV-DATA", title).detail(detail));
}
