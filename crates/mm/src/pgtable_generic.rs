//! Generic page-table helpers: `pmd_clear_bad()`, `pmdp_invalidate()`,
//! `pte_offset_map_lock()` in its pre- and post-6.5 forms.
//!
//! Models mm/pgtable-generic.c (v6.1 and v6.5) and the x86 `pmdp_establish`.

use explore::{Finding, FindingKind};

use crate::arch::x86::pgtable::{
    is_swap_pmd, pmd_bad, pmd_devmap, pmd_mkinvalid, pmd_none, pmd_present, pmd_trans_huge,
    pmd_val, Pmd,
};
use crate::arch::x86::swap::is_pmd_migration_entry;
use crate::checkers::lock_deriv;
use crate::mm_types::{Kernel, MmStruct};
use crate::pgtable::{pte_lockptr, pte_offset, EntryRef, Ptl, PtlSource};
use crate::profile::PteOffsetMapLock;

/// `pmd_clear_bad(pmd)`: `pmd_ERROR(*pmd); pmd_clear(pmd);`.
///
/// `pmd_ERROR` prints `mm/pgtable-generic.c:<line>: bad pmd <%p>(<raw>)`
/// (x86-64 pgtable_64.h) after reading `*pmd` once more. The model raises
/// the finding after the clear, so the execution stops with the damage
/// done and the checkers see it; the message carries the value printed.
pub fn pmd_clear_bad(k: &Kernel, pmd: &EntryRef) {
    let _f = explore::enter("pmd_clear_bad");
    let val = pmd.read("pmd_ERROR: read *pmd");
    pmd.write("pmd_clear", 0);
    let line = k.profile.pmd_clear_bad_line;
    let title = format!(
        "mm/pgtable-generic.c:{line}: bad pmd {}({val:016x})",
        crate::kaddr::pointer(k.profile.log_style, pmd.kaddr(k.profile.log_style))
    );
    explore::raise(
        Finding::new(FindingKind::Kernel, "pmd_clear_bad()", title)
            .detail(format!("pmd value decodes as: {}", k.describe_pmd(val))),
    );
}

/// `pmd_none_or_trans_huge_or_clear_bad(pmd)` (= `pmd_trans_unstable()`
/// with THP), v6.1: one atomic read decides.
pub fn pmd_none_or_trans_huge_or_clear_bad(k: &Kernel, pmd: &EntryRef) -> bool {
    let _f = explore::enter("pmd_trans_unstable");
    let v = Pmd(pmd.read("pmd_read_atomic(pmd)"));
    if pmd_none(v) || pmd_trans_huge(v) || (k.profile.knobs.thp_migration && !pmd_present(v)) {
        return true;
    }
    if pmd_bad(v) {
        pmd_clear_bad(k, pmd);
        return true;
    }
    false
}

/// `pmdp_invalidate()` / `pmdp_invalidate_ad()` on x86: `pmdp_establish()`
/// (an xchg) of `pmd_mkinvalid(*pmdp)`; returns the old value. Called with
/// the pmd lock held.
pub fn pmdp_invalidate(pmd: &EntryRef) -> u64 {
    let old = Pmd(pmd.read_locked("pmdp_invalidate: *pmd under pmd lock"));
    pmd.xchg("pmdp_invalidate", pmd_val(pmd_mkinvalid(old)))
}

/// A PTE table mapped and locked: `pte_t *pte` plus `spinlock_t *ptl`.
pub struct PteMap {
    pub pte: EntryRef,
    pub ptl: Ptl,
}

/// `pte_offset_map_lock(mm, pmd, addr, &ptl)`, by profile.
///
/// Pre-6.5 it never fails: the lock pointer comes from `pmd_page(*pmd)` and
/// the table from a second read of `*pmd`. Post-6.5 it returns `None`
/// when the pmd does not point to a PTE table.
pub fn pte_offset_map_lock(k: &Kernel, mm: &MmStruct, pmd: &EntryRef, addr: u64) -> Option<PteMap> {
    let _f = explore::enter("pte_offset_map_lock");
    match k.profile.knobs.pte_offset_map_lock {
        PteOffsetMapLock::Pre65 => pte_offset_map_lock_pre65(k, mm, pmd, addr),
        PteOffsetMapLock::Post65 => pte_offset_map_lock_post65(k, mm, pmd, addr),
    }
}

fn pte_offset_map_lock_pre65(
    k: &Kernel,
    mm: &MmStruct,
    pmd: &EntryRef,
    addr: u64,
) -> Option<PteMap> {
    let for_lock = pmd.read("pte_lockptr: read *pmd");
    let source = pte_lockptr(k, mm, for_lock);
    let for_map = pmd.read("pte_offset_map: read *pmd");
    let lock = spin_lock_derived(k, source, for_lock);
    let pte = match pte_offset(k, for_map, addr) {
        Some(pte) => pte,
        None => lock_deriv::map_of_non_table(k, for_map),
    };
    Some(PteMap { pte, ptl: lock })
}

/// Takes the lock `pte_lockptr()` derived, or reports what the kernel
/// would do with a lock that is not a page table's.
pub fn spin_lock_derived(k: &Kernel, source: PtlSource, pmd_val: u64) -> Ptl {
    match source {
        PtlSource::Table(l) => Ptl::lock(l, "spin_lock(pte_lockptr)"),
        PtlSource::Null { pfn } => lock_deriv::null_ptlock(k, pmd_val, pfn),
        PtlSource::NotATable { pfn } => lock_deriv::not_a_table(k, pmd_val, pfn),
    }
}

/// v6.5 `__pte_offset_map()`: snapshot, refuse anything but a table.
fn pte_offset_map_snapshot(k: &Kernel, pmd: &EntryRef) -> Option<u64> {
    let v = Pmd(pmd.read("__pte_offset_map: pmdval = pmdp_get_lockless(pmd)"));
    if pmd_none(v) || is_pmd_migration_entry(&k.profile.swap_types, v) {
        return None;
    }
    if pmd_trans_huge(v) || pmd_devmap(v) {
        return None;
    }
    if pmd_bad(v) {
        pmd_clear_bad(k, pmd);
        return None;
    }
    Some(pmd_val(v))
}

fn pte_offset_map_lock_post65(
    k: &Kernel,
    mm: &MmStruct,
    pmd: &EntryRef,
    addr: u64,
) -> Option<PteMap> {
    loop {
        let pmdval = pte_offset_map_snapshot(k, pmd)?;
        let pte = pte_offset(k, pmdval, addr)?;
        let ptl = spin_lock_derived(k, pte_lockptr(k, mm, pmdval), pmdval);
        if pmd.read("__pte_offset_map_lock: pmd_same(pmdval, pmdp_get_lockless(pmd))") == pmdval {
            return Some(PteMap { pte, ptl });
        }
        explore::mark("pte_offset_map_lock: pmd changed, retry");
        ptl.unlock("pte_unmap_unlock (retry)");
    }
}

/// Whether a value is a swap pmd or maps a huge page (`is_swap_pmd ||
/// pmd_trans_huge || pmd_devmap`).
pub fn is_huge_or_swap(v: Pmd) -> bool {
    is_swap_pmd(v) || pmd_trans_huge(v) || pmd_devmap(v)
}
