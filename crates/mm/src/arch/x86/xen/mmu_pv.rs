//! The Xen PV `pv_mmu_ops`: translation of page-table values between the
//! guest's pseudo-physical frames (pfns) and machine frames (mfns), and
//! page-table updates through the hypervisor.
//!
//! Models arch/x86/xen/mmu.c (v3.12; the file is mmu_pv.c from v4.14) for
//! an unprivileged 64-bit guest (domU) without I/O mappings: the Xen ABI
//! requires present entries to hold machine frames and non-present ones to
//! hold pfns (so a saved guest can be restored on other frames), and only
//! the value accessors translate.

use super::super::paravirt::XenPv;
use super::super::pgtable::{Pmd, Pte, _PAGE_PRESENT};
use super::super::pgtable_v3::{_PAGE_IOMAP, _PAGE_PROTNONE, PTE_FLAGS_MASK, PTE_PFN_MASK};
use super::hypervisor::{mmu_update, Level, MMU_NORMAL_PT_UPDATE, MMU_PT_UPDATE_PRESERVE_AD};
use super::multicalls::{xen_mc_flush, McBatch, MmuUpdate};
use super::p2m::INVALID_P2M_ENTRY;
use crate::pgtable::EntryRef;

/// Whether a value's frame is translated: `val & _PAGE_PRESENT` (v3.12), or
/// a9c8e4beeeb6's `pteval_present()`: `val & (_PAGE_PRESENT |
/// _PAGE_PROTNONE | _PAGE_NUMA)`.
pub fn pteval_present(x: &XenPv, val: u64) -> bool {
    let mask = if x.translate_protnone {
        _PAGE_PRESENT | _PAGE_PROTNONE | x.numa_mask
    } else {
        _PAGE_PRESENT
    };
    val & mask != 0
}

/// Models arch/x86/xen/mmu.c:pte_mfn_to_pfn (v3.12): a present value's
/// mfn becomes its pfn; an mfn that is not the domain's (`mfn_to_pfn()`
/// returns ~0) leaves only the flags, with P cleared.
pub fn pte_mfn_to_pfn(x: &XenPv, val: u64) -> u64 {
    if !pteval_present(x, val) {
        return val;
    }
    let mfn = (val & PTE_PFN_MASK) >> 12;
    let pfn = x.p2m.mfn_to_pfn(mfn);
    let flags = val & PTE_FLAGS_MASK;
    if pfn == !0 {
        flags & !_PAGE_PRESENT
    } else {
        (pfn << 12) | flags
    }
}

/// Models arch/x86/xen/mmu.c:pte_pfn_to_mfn (v3.12): a present value's pfn
/// becomes its mfn; a pfn with no machine frame (INVALID_P2M_ENTRY) makes
/// the whole value 0, flags included.
pub fn pte_pfn_to_mfn(x: &XenPv, val: u64) -> u64 {
    if !pteval_present(x, val) {
        return val;
    }
    let pfn = (val & PTE_PFN_MASK) >> 12;
    let mfn = x.p2m.pfn_to_mfn(pfn);
    if mfn == INVALID_P2M_ENTRY {
        return 0;
    }
    (mfn << 12) | (val & PTE_FLAGS_MASK)
}

/// Models arch/x86/xen/mmu.c:xen_pte_val (v3.12, domU).
pub fn xen_pte_val(x: &XenPv, pte: Pte) -> u64 {
    pte_mfn_to_pfn(x, pte.0)
}

/// Models arch/x86/xen/mmu.c:xen_make_pte (v3.12, domU, no I/O mapping):
/// `pte &= ~_PAGE_IOMAP; pte = pte_pfn_to_mfn(pte);`
pub fn xen_make_pte(x: &XenPv, val: u64) -> Pte {
    Pte(pte_pfn_to_mfn(x, val & !_PAGE_IOMAP))
}

/// Models arch/x86/xen/mmu.c:xen_pmd_val (v3.12): `pte_mfn_to_pfn(pmd.pmd)`.
pub fn xen_pmd_val(x: &XenPv, pmd: Pmd) -> u64 {
    pte_mfn_to_pfn(x, pmd.0)
}

/// Models arch/x86/xen/mmu.c:xen_make_pmd (v3.12): `pte_pfn_to_mfn(pmd)`.
pub fn xen_make_pmd(x: &XenPv, val: u64) -> Pmd {
    Pmd(pte_pfn_to_mfn(x, val))
}

/// Models arch/x86/xen/mmu.c:xen_set_pte_at → `__xen_set_pte()` (v3.12,
/// not in lazy MMU mode): one `HYPERVISOR_mmu_update(MMU_NORMAL_PT_UPDATE)`
/// with the raw value (`pte_val_ma()`).
///
/// Its result is ignored, as in the kernel: a refused update silently
/// leaves the old entry.
pub fn xen_set_pte_at(x: &XenPv, ptep: &EntryRef, pte: Pte, label: &'static str) {
    let _ = mmu_update(x, ptep, Level::L1, MMU_NORMAL_PT_UPDATE, pte.0, label);
}

/// Models arch/x86/xen/mmu.c:xen_set_pmd_hyper (v3.12): the pmd store as a
/// hypercall (the table is pinned once populated).
pub fn xen_set_pmd(x: &XenPv, pmdp: &EntryRef, pmd: Pmd, label: &'static str) {
    let _ = mmu_update(x, pmdp, Level::Upper, MMU_NORMAL_PT_UPDATE, pmd.0, label);
}

/// Models arch/x86/xen/mmu.c:xen_ptep_modify_prot_start (v3.12): `return
/// *ptep;` — the entry stays in place; the commit's PRESERVE_AD update keeps
/// any A/D bits the hardware sets meanwhile.
pub fn xen_ptep_modify_prot_start(ptep: &EntryRef) -> Pte {
    Pte(ptep.read("xen_ptep_modify_prot_start: *ptep"))
}

/// Models arch/x86/xen/mmu.c:xen_ptep_modify_prot_commit (v3.12):
/// `xen_mc_batch()`, an `MMU_PT_UPDATE_PRESERVE_AD` update with the raw
/// value (`xen_extend_mmu_update()`), `xen_mc_issue()`. In lazy MMU mode
/// the kernel flushes the batch when the mode ends; the model flushes it
/// here (it has no TLB and no other CPU walks the batch), so the batch
/// holds this one call.
pub fn xen_ptep_modify_prot_commit(x: &XenPv, ptep: &EntryRef, pte: Pte) {
    let mut batch = McBatch::new();
    batch.queue(MmuUpdate {
        slot: ptep,
        level: Level::L1,
        cmd: MMU_PT_UPDATE_PRESERVE_AD,
        val: pte.0,
        label: "xen_ptep_modify_prot_commit: mmu_update",
    });
    xen_mc_flush(x, batch);
}

// ---------------------------------------------------------------------------
// Page-table pinning (v2.6.23 arch/i386/xen/mmu.c; 74260714c56d, v2.6.24
// arch/x86/xen/mmu.c): seed 004.

use std::rc::Rc;

use crate::mm_types::{Folio, FolioKind, Kernel, MmStruct, XenPt};
use crate::profile::{PteLayout, XenPin};

/// Whether the profile models Xen's pinning of page tables: the 2.6-era
/// Xen PV profiles. (The 3.x-era Xen model of seed 000 has every page
/// table pinned and writable through hypercalls, which is what pinning
/// gives a running process.)
pub fn pins_pagetables(k: &Kernel) -> bool {
    k.pv.is_xen_pv() && k.profile.knobs.pte_layout == PteLayout::V2_6_34
}

/// `PagePinned(virt_to_page(mm->pgd))`.
fn mm_pinned(mm: &MmStruct) -> bool {
    mm.pgd.xen.get().pinned()
}

/// The page-table pages of `mm` as `pgd_walk()` visits them (each level's
/// tables, then the pgd last), with their level. Read under
/// `mm->page_table_lock` of an mm nobody runs (a new child, an exiting
/// mm): plain reads.
fn pagetable_pages(k: &Kernel, mm: &MmStruct) -> Vec<Rc<Folio>> {
    fn below(k: &Kernel, table: &Rc<Folio>, out: &mut Vec<Rc<Folio>>) {
        let FolioKind::PageTable(level) = table.kind.get() else {
            return;
        };
        if level == 1 {
            return;
        }
        for i in 0..512 {
            if let Some(t) = crate::pgtable::table_of(k, table.entries().peek(i)) {
                below(k, &t, out);
                out.push(t);
            }
        }
    }
    let mut out = Vec::new();
    below(k, &mm.pgd, &mut out);
    out.push(mm.pgd.clone());
    out
}

/// One entry of a multicall batch of `mmuext_op`/`update_va_mapping`
/// calls on page-table pages.
enum PtOp {
    /// `MULTI_update_va_mapping(va, pte(RO or RW))`.
    Protect(Rc<Folio>, bool),
    /// `MMUEXT_PIN_L4_TABLE` of the pgd: every page of the tree pinned.
    PinTree(Vec<Rc<Folio>>),
    /// `MMUEXT_UNPIN_TABLE` of the pgd.
    UnpinTree(Vec<Rc<Folio>>),
    /// `MMUEXT_PIN_L1_TABLE` / `MMUEXT_UNPIN_TABLE` of one page.
    PinSelf(Rc<Folio>, bool),
}

/// The batch `xen_mc_batch()` starts: its entries, and the callbacks to
/// run once it is issued (`xen_mc_callback()`: unlocking pte locks).
#[derive(Default)]
struct PtBatch {
    ops: Vec<PtOp>,
    unlock: Vec<Rc<explore::sync::SpinLock<()>>>,
}

/// `MC_BATCH`: entries a batch holds before it must be issued.
const MC_BATCH: usize = 32;

impl PtBatch {
    fn queue(&mut self, k: &Kernel, mm: &MmStruct, op: PtOp) {
        if self.ops.len() == MC_BATCH {
            xen_mc_issue(k, mm, std::mem::take(self));
        }
        self.ops.push(op);
    }
}

/// `xen_mc_issue()` → `HYPERVISOR_multicall`: Xen runs the entries one
/// after the other on this CPU, with no domain-wide lock, so other CPUs
/// run between them (each entry is a step); then the callbacks.
fn xen_mc_issue(k: &Kernel, mm: &MmStruct, batch: PtBatch) {
    let _f = explore::enter("xen_mc_issue");
    for op in batch.ops {
        match op {
            PtOp::Protect(t, ro) => change(k, mm, &t, "update_va_mapping", |s| s.read_only = ro),
            PtOp::PinSelf(t, pin) => change(k, mm, &t, "mmuext_op(PIN_L1/UNPIN_TABLE)", |s| {
                s.pinned_self = pin
            }),
            PtOp::PinTree(pages) => {
                for t in &pages {
                    change(k, mm, t, "mmuext_op(MMUEXT_PIN_L4_TABLE)", |s| {
                        s.pinned_tree = true
                    });
                }
            }
            PtOp::UnpinTree(pages) => {
                for t in &pages {
                    change(k, mm, t, "mmuext_op(MMUEXT_UNPIN_TABLE)", |s| {
                        s.pinned_tree = false
                    });
                }
            }
        }
    }
    for ptl in batch.unlock {
        ptl.unlock_raw("xen_mc_callback: spin_unlock(ptl)");
    }
}

/// The hypervisor changes what page-table page `t` of `mm` is: a step
/// that every access to its entries is ordered against. A PTE page's
/// change is governed by the INV-LOCKSET rule of `Folio::xen`.
fn change(k: &Kernel, mm: &MmStruct, t: &Folio, label: &'static str, f: impl FnOnce(&mut XenPt)) {
    t.entries().protect(label);
    let mut s = t.xen.get();
    f(&mut s);
    t.xen.set(s);
    if explore::rt::tracing() {
        explore::note!(
            "xen: {label}: page-table pfn {:#x} now {}{}",
            t.pfn,
            if s.read_only { "read-only" } else { "writable" },
            if s.pinned() {
                ", pinned"
            } else {
                ", not pinned"
            }
        );
    }
    crate::checkers::lockset::pte_page_access(k, mm, t, || {
        format!(
            "Xen state of PTE page pfn {:#x} changed by {label} (read-only {}, pinned {})",
            t.pfn,
            s.read_only,
            s.pinned()
        )
    });
}

/// `xen_pgd_pin()` (v2.6.23; with `xen_pin` = per_pte_page, 74260714c56d):
/// every page-table page made read-only, then the tree pinned. The
/// 2.6.24 form locks each PTE page's split pte lock, pins the page on its
/// own, and unlocks it from a batch callback.
fn xen_pgd_pin(k: &Kernel, mm: &MmStruct) {
    let _f = explore::enter("xen_pgd_pin");
    let per_pte = k.profile.knobs.xen_pin == XenPin::PerPtePageUnderPtl;
    let pages = pagetable_pages(k, mm);
    let mut batch = PtBatch::default();
    for t in &pages {
        let pte_page = t.kind.get() == FolioKind::PageTable(1);
        if per_pte && pte_page {
            if let Some(ptl) = lock_pte_page(k, mm, t) {
                batch.unlock.push(ptl);
            }
            batch.queue(k, mm, PtOp::Protect(t.clone(), true));
            batch.queue(k, mm, PtOp::PinSelf(t.clone(), true));
        } else {
            batch.queue(k, mm, PtOp::Protect(t.clone(), true));
        }
    }
    batch.queue(k, mm, PtOp::PinTree(pages));
    xen_mc_issue(k, mm, batch);
}

/// `xen_pgd_unpin()` (v2.6.23; per_pte_page: 74260714c56d): the tree
/// unpinned first, then every page made writable again — in 2.6.24 each
/// PTE page unpinned on its own and made writable under its pte lock.
fn xen_pgd_unpin(k: &Kernel, mm: &MmStruct) {
    let _f = explore::enter("xen_pgd_unpin");
    let per_pte = k.profile.knobs.xen_pin == XenPin::PerPtePageUnderPtl;
    let pages = pagetable_pages(k, mm);
    let mut batch = PtBatch::default();
    batch.queue(k, mm, PtOp::UnpinTree(pages.clone()));
    for t in &pages {
        let pte_page = t.kind.get() == FolioKind::PageTable(1);
        if per_pte && pte_page {
            if let Some(ptl) = lock_pte_page(k, mm, t) {
                batch.unlock.push(ptl);
            }
            batch.queue(k, mm, PtOp::PinSelf(t.clone(), false));
        }
        batch.queue(k, mm, PtOp::Protect(t.clone(), false));
    }
    xen_mc_issue(k, mm, batch);
}

/// 74260714c56d's `lock_pte()`: the split pte lock of PTE page `t`,
/// nested under `mm->page_table_lock` (none without split pte locks: the
/// page_table_lock the pinner holds is then the page's lock).
fn lock_pte_page(k: &Kernel, mm: &MmStruct, t: &Folio) -> Option<Rc<explore::sync::SpinLock<()>>> {
    if !k.profile.knobs.split_ptlocks {
        return None;
    }
    let ptl = t.ptl.borrow().clone()?;
    ptl.lock_nest_raw(
        "xen_pin_page: spin_lock_nest_lock(ptl, &mm->page_table_lock)",
        mm.page_table_lock.id(),
    );
    Some(ptl)
}

/// `xen_activate_mm()` for a process the scenario starts (an exec'd
/// program): its page tables are pinned before it runs.
pub fn xen_activate_mm(k: &Kernel, mm: &MmStruct) {
    if pins_pagetables(k) && !mm_pinned(mm) {
        xen_pgd_pin(k, mm);
    }
}

/// `arch_dup_mmap()` → `xen_dup_mmap()`: under the child's
/// `page_table_lock`, pin its page tables — after `dup_mmap()` made its
/// VMAs visible to the reverse map.
pub fn arch_dup_mmap(k: &Kernel, mm: &MmStruct) {
    if !pins_pagetables(k) {
        return;
    }
    let _f = explore::enter("xen_dup_mmap");
    let ptl = mm
        .page_table_lock
        .lock("xen_dup_mmap: spin_lock(&mm->page_table_lock)");
    xen_pgd_pin(k, mm);
    ptl.unlock("spin_unlock(&mm->page_table_lock)");
}

/// `arch_exit_mmap()` → `xen_exit_mmap()`: under `page_table_lock`,
/// unpin the page tables of an exiting mm — before `exit_mmap()` unmaps
/// its VMAs and takes them off the reverse map.
pub fn arch_exit_mmap(k: &Kernel, mm: &MmStruct) {
    if !pins_pagetables(k) || !mm_pinned(mm) {
        return;
    }
    let _f = explore::enter("xen_exit_mmap");
    let ptl = mm
        .page_table_lock
        .lock("xen_exit_mmap: spin_lock(&mm->page_table_lock)");
    xen_pgd_unpin(k, mm);
    ptl.unlock("spin_unlock(&mm->page_table_lock)");
}

/// `xen_alloc_pt()`/`xen_alloc_pd()` (v2.6.23): a page table allocated
/// into a pinned mm is made read-only before it is linked in, and Xen
/// validates it as part of the pinned tree once linked (a hypercall on a
/// page nobody can reach yet: no step). 74260714c56d's
/// `xen_alloc_ptpage()` also pins a PTE page on its own
/// (`MMUEXT_PIN_L1_TABLE`), as its unpin unpins each PTE page.
pub fn xen_alloc_pt(k: &Kernel, mm: &MmStruct, table: &Folio) {
    if !pins_pagetables(k) || !mm_pinned(mm) {
        return;
    }
    let own = k.profile.knobs.xen_pin == XenPin::PerPtePageUnderPtl
        && table.kind.get() == FolioKind::PageTable(1);
    table.xen.set(XenPt {
        read_only: true,
        pinned_tree: !own,
        pinned_self: own,
    });
}

/// The report of a kernel store into a page-table page that is
/// read-only and not pinned: a kernel-mode write fault with no fixup, in
/// the words of the seed's 2.6.23 i386 oops.
pub fn kernel_paging_request(
    slot: &crate::pgtable::EntryRef,
    label: &'static str,
) -> explore::Finding {
    let addr = slot.kaddr(crate::profile::LogStyle::V3_12);
    let function = label.split(':').next().unwrap_or(label);
    let s = slot.table.xen.get();
    explore::Finding::new(
        explore::FindingKind::Kernel,
        "INV-HW-PERM",
        format!("BUG: unable to handle kernel paging request at virtual address {addr:016x}"),
    )
    .detail("Oops: 0003 [#1] PREEMPT SMP")
    .detail(format!("EIP is at {function}"))
    .detail(format!(
        "mmrace: {label}: a direct store into page-table page pfn {:#x}, which Xen has made \
         read-only in the guest's kernel mapping and {} (error code 0003: a write to a present page)",
        slot.table.pfn,
        if s.pinned() { "pinned" } else { "not pinned, so it does not emulate the store" }
    ))
}
