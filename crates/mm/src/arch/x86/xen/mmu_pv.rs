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
