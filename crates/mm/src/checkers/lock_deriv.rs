//! INV-LOCK-DERIV: a split page-table lock must come from the struct page
//! of a live PTE table. `pte_lockptr()` (pgtable.rs) classifies where its
//! pointer came from; these functions report the two bad outcomes the way
//! the kernel would meet them, plus the mapping of a non-table.

use explore::{Finding, FindingKind};

use crate::mm_types::Kernel;

fn derivation(k: &Kernel, pmd_val: u64, pfn: u64) -> String {
    format!(
        "INV-LOCK-DERIV: pte_lockptr() derived the lock from pmd {pmd_val:#018x} ({}): page of pfn {pfn:#x} is not a page table",
        k.describe_pmd(pmd_val)
    )
}

/// ALLOC_SPLIT_PTLOCKS: `page->ptl` is NULL; `spin_lock()` dereferences it
/// (the lock word sits at offset 0x18 of the spinlock_t in a lockdep build).
/// The oops names `_raw_spin_lock`, the function that faults (the model
/// does not enter lock functions), and its call trace is the model's call
/// chain at the lock attempt (`pte_offset_map_lock` and whatever path
/// called it).
pub fn null_ptlock(k: &Kernel, pmd_val: u64, pfn: u64) -> ! {
    let mut f = Finding::new(
        FindingKind::Kernel,
        "spin_lock(pte_lockptr()) (INV-LOCK-DERIV)",
        "BUG: kernel NULL pointer dereference, address: 0000000000000018",
    )
    .detail("RIP: 0010:_raw_spin_lock");
    f.details
        .extend(crate::debug::call_trace(k.profile.log_style));
    explore::oops(f.detail(derivation(k, pmd_val, pfn)))
}

/// Embedded split locks: the kernel would spin on whatever word overlays
/// `page->ptl` of a page that is not a page table.
pub fn not_a_table(k: &Kernel, pmd_val: u64, pfn: u64) -> ! {
    explore::oops(
        Finding::new(
            FindingKind::Invariant,
            "INV-LOCK-DERIV",
            format!("INV-LOCK-DERIV: spin_lock() on page->ptl of pfn {pfn:#x}, which is not a page table"),
        )
        .detail(derivation(k, pmd_val, pfn)),
    )
}

/// `pte_offset_map()` of a pmd that no longer points to a PTE table: the
/// kernel would treat a data page (or pfn 0) as page-table entries.
pub fn map_of_non_table(k: &Kernel, pmd_val: u64) -> ! {
    explore::oops(
        Finding::new(
            FindingKind::Invariant,
            "INV-LOCK-DERIV",
            "INV-LOCK-DERIV: pte_offset_map() of a pmd that is not a page table",
        )
        .detail(format!(
            "pmd {pmd_val:#018x} decodes as {}",
            k.describe_pmd(pmd_val)
        )),
    )
}
