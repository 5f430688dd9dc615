//! The hypervisor's side of `HYPERVISOR_mmu_update` for a PV guest.
//!
//! Models Xen's xen/arch/x86/mm.c (2014-era Xen 4.x): `do_mmu_update()` →
//! `mod_l1_entry()`: a new *present* L1 entry must name a machine frame the
//! domain owns (`get_page_from_l1e()`), else the update fails with -EINVAL
//! and the entry is unchanged; a non-present entry is stored verbatim.
//! `adjust_guest_l1e()` (64-bit PV, USER_MAPPINGS_ARE_GLOBAL) makes present
//! user entries global, which is why the guest reads `_PAGE_GLOBAL` (bit 8)
//! back in present user ptes (`pte:...165` in seed 000's report).

use super::super::paravirt::XenPv;
use super::super::pgtable::{_PAGE_GLOBAL, _PAGE_PRESENT, _PAGE_USER};
use super::super::pgtable_v3::PTE_PFN_MASK;
use crate::pgtable::EntryRef;

/// `MMU_NORMAL_PT_UPDATE`.
pub const MMU_NORMAL_PT_UPDATE: u32 = 0;
/// `MMU_PT_UPDATE_PRESERVE_AD`.
pub const MMU_PT_UPDATE_PRESERVE_AD: u32 = 2;

/// Which page-table level the updated entry is in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Level {
    /// A PTE (L1) entry.
    L1,
    /// A pmd/pud/pgd entry pointing to a lower table.
    Upper,
}

/// Models xen/arch/x86/mm.c:adjust_guest_l1e (64-bit PV guests): present
/// user entries become global.
pub fn adjust_guest_l1e(val: u64) -> u64 {
    if val & _PAGE_PRESENT != 0 && val & _PAGE_USER != 0 {
        val | _PAGE_GLOBAL
    } else {
        val
    }
}

/// One `mmu_update` request: validate like `mod_l1_entry()`, adjust, store.
/// `cmd` is MMU_NORMAL_PT_UPDATE or MMU_PT_UPDATE_PRESERVE_AD (the model's
/// hardware never sets A/D behind the kernel's back, so both store the
/// same value). Returns the hypercall's result: -EINVAL leaves the entry
/// unchanged.
pub fn mmu_update(
    x: &XenPv,
    slot: &EntryRef,
    level: Level,
    cmd: u32,
    val: u64,
    label: &'static str,
) -> Result<(), i32> {
    debug_assert!(cmd == MMU_NORMAL_PT_UPDATE || cmd == MMU_PT_UPDATE_PRESERVE_AD);
    if val & _PAGE_PRESENT != 0 && x.p2m.m2p((val & PTE_PFN_MASK) >> 12).is_none() {
        explore::mark("xen: mmu_update refused a frame the domain does not own");
        return Err(-EINVAL);
    }
    let val = match level {
        Level::L1 => adjust_guest_l1e(val),
        Level::Upper => val,
    };
    slot.hv_write(label, val);
    Ok(())
}

/// `EINVAL`.
pub const EINVAL: i32 = 22;
