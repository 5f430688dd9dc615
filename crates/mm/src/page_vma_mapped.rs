//! `page_vma_mapped_walk()`: find where a folio is mapped in one VMA.
//!
//! Models mm/page_vma_mapped.c (v6.1) as a callback walk: `visit` runs for
//! each mapping found, with that mapping's page-table lock held, as the
//! kernel's `while (page_vma_mapped_walk(&pvmw))` loop body does.

use crate::arch::x86::pgtable::{
    pmd_addr_end, pmd_present, pmd_trans_huge, pte_index, pte_none, pte_present, Pmd, Pte,
};
use crate::arch::x86::swap::is_pmd_migration_entry;
use crate::arch::x86::swap::{
    is_migration_entry, is_swap_pte, pfn_swap_entry_to_pfn, pte_to_swp_entry,
};
use crate::huge_memory::pmd_maps_folio;
use crate::mm_types::{Folio, Kernel, Vma, PAGE_SIZE};
use crate::pgtable::{
    pgd_offset, pmd_lock, pmd_offset, pte_lockptr, pte_offset, pud_offset, EntryRef,
};
use crate::pgtable_generic::spin_lock_derived;

/// One mapping found by the walk.
pub enum Mapped {
    /// A PMD maps (or, for PVMW_MIGRATION, migrates) the folio.
    Pmd(EntryRef),
    /// A pte at an address maps (or migrates) one page of the folio.
    Pte(EntryRef, u64),
}

/// Walks the mappings of `folio` in `vma` starting at `address`;
/// `migration` is PVMW_MIGRATION (look for migration entries of `folio`).
pub fn page_vma_mapped_walk(
    k: &Kernel,
    folio: &Folio,
    vma: &Vma,
    address: u64,
    migration: bool,
    visit: &mut dyn FnMut(&Mapped),
) {
    let _f = explore::enter("page_vma_mapped_walk");
    let Some(mm) = vma.mm.upgrade() else { return };
    let end = (address + folio.nr_pages() * PAGE_SIZE).min(vma.end());
    let mut addr = address;
    while addr < end {
        let next = pmd_addr_end(addr, end);
        let pgd = pgd_offset(&mm, addr).read("page_vma_mapped_walk: read *pgd");
        let Some(pud) = pud_offset(k, pgd, addr) else {
            return;
        };
        let Some(pmd) = pmd_offset(k, pud.read("page_vma_mapped_walk: read *pud"), addr) else {
            return;
        };
        let pmde = Pmd(pmd.read("page_vma_mapped_walk: pmde = READ_ONCE(*pmd)"));
        if pmd_trans_huge(pmde) || is_pmd_migration_entry(&k.profile.swap_types, pmde) {
            let ptl = pmd_lock(k, &mm, &pmd);
            let pmde = Pmd(pmd.read_locked("page_vma_mapped_walk: pmde = *pmd under pmd lock"));
            let wanted = if !pmd_present(pmde) {
                migration && k.profile.knobs.thp_migration && pmd_maps_folio(k, pmde, folio, true)
            } else {
                !migration && pmd_maps_folio(k, pmde, folio, false)
            };
            if wanted {
                visit(&Mapped::Pmd(pmd.clone()));
            }
            let split_under_us = pmd_present(pmde) && !pmd_trans_huge(pmde);
            ptl.unlock("page_vma_mapped_walk_done: spin_unlock");
            if !split_under_us {
                addr = next;
                continue;
            }
        } else if !pmd_present(pmde) {
            addr = next;
            continue;
        }
        walk_ptes(k, &mm, folio, &pmd, addr, next, migration, visit);
        addr = next;
    }
}

/// The pte level (v6.1): `map_pte()` maps the table and, the walk not
/// being PVMW_SYNC, first tests the pte locklessly: a pte that cannot be
/// what the walk looks for (not a swap pte for PVMW_MIGRATION, not
/// present otherwise; the model has no device entries) skips the lock and
/// goes to `next_pte`, whose `pte_none(*pte)` loop then runs without the
/// lock too. Once locked, each later pte is read by that loop and again
/// by `check_pte()`.
#[allow(clippy::too_many_arguments)]
fn walk_ptes(
    k: &Kernel,
    mm: &crate::mm_types::MmStruct,
    folio: &Folio,
    pmd: &EntryRef,
    start: u64,
    end: u64,
    migration: bool,
    visit: &mut dyn FnMut(&Mapped),
) {
    let Some(first) = pte_offset(k, pmd.read("map_pte: pte_offset_map(*pmd)"), start) else {
        return;
    };
    let at = |addr: u64| EntryRef::new(first.table.clone(), pte_index(addr) as usize);
    let lock = || {
        let v = pmd.read("map_pte: pte_lockptr(*pmd)");
        spin_lock_derived(k, pte_lockptr(k, mm, v), v)
    };
    let head = Pte(at(start).read("map_pte: *pvmw->pte (lockless pre-check)"));
    let mut ptl = None;
    let mut addr = start;
    if map_pte_may_match(head, migration) {
        ptl = Some(lock());
    } else {
        addr = next_pte(&at, addr, end, false);
    }
    while addr < end {
        if ptl.is_none() {
            ptl = Some(lock());
        }
        let pte = at(addr);
        let v = Pte(pte.read_locked("check_pte: *pvmw.pte under ptl"));
        if check_pte(k, v, folio, migration) {
            visit(&Mapped::Pte(pte, addr));
        }
        addr = next_pte(&at, addr, end, true);
    }
    if let Some(ptl) = ptl {
        ptl.unlock("page_vma_mapped_walk_done: spin_unlock");
    }
}

/// map_pte's lockless test of the first pte.
fn map_pte_may_match(v: Pte, migration: bool) -> bool {
    if migration {
        is_swap_pte(v)
    } else {
        !is_swap_pte(v) && pte_present(v)
    }
}

/// `next_pte:` the next address whose pte is not none (`do { ... }
/// while (pte_none(*pvmw->pte))`), or `end`; `locked` says whether the
/// walk holds the PTL yet.
fn next_pte(at: &impl Fn(u64) -> EntryRef, mut addr: u64, end: u64, locked: bool) -> u64 {
    loop {
        addr += PAGE_SIZE;
        if addr >= end {
            return end;
        }
        let slot = at(addr);
        let v = if locked {
            slot.read_locked("page_vma_mapped_walk: pte_none(*pvmw->pte) under ptl")
        } else {
            slot.read("page_vma_mapped_walk: pte_none(*pvmw->pte) (lockless)")
        };
        if !pte_none(Pte(v)) {
            return addr;
        }
    }
}

/// `check_pte()`: does this pte map (or migrate) a page of `folio`?
fn check_pte(k: &Kernel, v: Pte, folio: &Folio, migration: bool) -> bool {
    let pfn = if migration {
        if !is_swap_pte(v) || !is_migration_entry(&k.profile.swap_types, pte_to_swp_entry(v)) {
            return false;
        }
        pfn_swap_entry_to_pfn(pte_to_swp_entry(v))
    } else {
        if !pte_present(v) {
            return false;
        }
        k.pte_pfn(v)
    };
    pfn >= folio.pfn && pfn < folio.pfn + folio.nr_pages()
}
