//! A ghost walk of every user mapping, shared by the checkers.

use std::rc::Rc;

use crate::arch::x86::pgtable::_PAGE_PRESENT;
use crate::arch::x86::pgtable::{
    pmd_pfn, pmd_present, pmd_trans_huge, pte_pfn, pte_present, Pmd, Pte,
};
use crate::arch::x86::pgtable_v3::{self, NumaBit};
use crate::arch::x86::swap::{
    is_migration_entry, is_pmd_migration_entry, is_swap_pte, pfn_swap_entry_to_pfn,
    pmd_to_swp_entry, pte_to_swp_entry,
};
use crate::mm_types::{Folio, FolioKind, Kernel, MmStruct};
use crate::pgtable::table_of;

/// What one leaf entry holds.
#[derive(Clone)]
pub enum Leaf {
    /// A present huge pmd (512 pages from `folio`).
    HugePresent(Rc<Folio>),
    /// A pmd migration entry for `folio`.
    HugeMigration(Rc<Folio>),
    /// A present pte mapping one page of `folio` (`special`: a page
    /// `vm_normal_page()` of the era does not return, the zero page).
    Present {
        folio: Rc<Folio>,
        subpage: usize,
        special: bool,
    },
    /// A pte migration entry for one page of `folio`.
    Migration { folio: Rc<Folio>, subpage: usize },
    /// A present or migration entry whose pfn has no live folio (or a
    /// present non-huge pmd that does not point to a live page table).
    Dangling { val: u64, pmd: bool },
    /// A swap pte (2.6.34 era): the slot's page is in the swap cache or
    /// its contents on the swap area.
    Swap { offset: u64 },
    /// Anything else that is not none (a value the model cannot decode).
    Other(u64),
}

/// Every non-none leaf of `mm` with its virtual address, plus the table
/// census (upper tables, PTE tables, deposited tables).
pub struct Census {
    pub leaves: Vec<(u64, Leaf)>,
    pub tables: i64,
    /// Every non-none PTE-level entry: address and raw value.
    pub ptes: Vec<(u64, u64)>,
}

/// Walks the whole tree of `mm` with ghost reads.
pub fn census(k: &Kernel, mm: &MmStruct) -> Census {
    let mut c = Census {
        leaves: Vec::new(),
        tables: 0,
        ptes: Vec::new(),
    };
    for i in 0..512u64 {
        let Some(pud) = table_of(k, mm.pgd.entries().peek(i as usize)) else {
            continue;
        };
        c.tables += 1;
        for j in 0..512u64 {
            let Some(pmd_table) = table_of(k, pud.entries().peek(j as usize)) else {
                continue;
            };
            c.tables += 1 + pmd_table.pmd_huge_pte.borrow().len() as i64;
            for m in 0..512u64 {
                let va = (i << 39) | (j << 30) | (m << 21);
                let v = pmd_table.entries().peek(m as usize);
                pmd_leaf(k, v, va, &mut c);
            }
        }
    }
    c
}

fn pmd_leaf(k: &Kernel, v: u64, va: u64, c: &mut Census) {
    if v == 0 {
        return;
    }
    let pmd = Pmd(v);
    if pmd_trans_huge(pmd) {
        match k.mem.pfn_folio(pmd_pfn(pmd)) {
            Some(f) => c.leaves.push((va, Leaf::HugePresent(f))),
            None => c.leaves.push((va, Leaf::Dangling { val: v, pmd: true })),
        }
        return;
    }
    if is_pmd_migration_entry(&k.profile.swap_types, pmd) {
        let pfn = pfn_swap_entry_to_pfn(pmd_to_swp_entry(pmd));
        match k.mem.pfn_folio(pfn) {
            Some(f) => c.leaves.push((va, Leaf::HugeMigration(f))),
            None => c.leaves.push((va, Leaf::Dangling { val: v, pmd: true })),
        }
        return;
    }
    match table_of(k, v).filter(|_| pmd_present(pmd)) {
        Some(pte_table) => {
            c.tables += 1;
            for n in 0..512u64 {
                pte_leaf(k, pte_table.entries().peek(n as usize), va | (n << 12), c);
            }
        }
        None if pmd_present(pmd) => c.leaves.push((va, Leaf::Dangling { val: v, pmd: true })),
        None => c.leaves.push((va, Leaf::Other(v))),
    }
}

fn pte_leaf(k: &Kernel, v: u64, va: u64, c: &mut Census) {
    if v == 0 {
        return;
    }
    c.ptes.push((va, v));
    let pte = Pte(v);
    if let Some(numa) = k.profile.numa_bit() {
        return pte_leaf_v3(k, numa, v, va, c);
    }
    if k.profile.knobs.pte_layout == crate::profile::PteLayout::V2_6_34
        && crate::arch::x86::swap::v2_6_34::is_swap_pte(pte)
    {
        let offset = crate::arch::x86::swap::v2_6_34::swp_offset(pte);
        c.leaves.push((va, Leaf::Swap { offset }));
        return;
    }
    let (pfn, migration) = if pte_present(pte) {
        (pte_pfn(pte), false)
    } else if is_swap_pte(pte) && is_migration_entry(&k.profile.swap_types, pte_to_swp_entry(pte)) {
        (pfn_swap_entry_to_pfn(pte_to_swp_entry(pte)), true)
    } else {
        c.leaves.push((va, Leaf::Other(v)));
        return;
    };
    push_pte_leaf(k, v, va, pfn, migration, c);
}

/// A 3.x-era pte, decoded by what the platform guarantees rather than by
/// the kernel's accessors: a present entry's frame is a machine frame (the
/// hypervisor's m2p says whose page it is); a PROTNONE/NUMA entry's frame
/// is a pfn (the Xen ABI for non-present entries).
fn pte_leaf_v3(k: &Kernel, numa: NumaBit, v: u64, va: u64, c: &mut Census) {
    let frame = (v & pgtable_v3::PTE_PFN_MASK) >> 12;
    let pfn = if v & _PAGE_PRESENT != 0 {
        k.pv.machine_to_phys(frame)
    } else if pgtable_v3::pte_present(numa, Pte(v)) {
        Some(frame)
    } else {
        c.leaves.push((va, Leaf::Other(v)));
        return;
    };
    match pfn {
        Some(pfn) => push_pte_leaf(k, v, va, pfn, false, c),
        None => c.leaves.push((va, Leaf::Dangling { val: v, pmd: false })),
    }
}

fn push_pte_leaf(k: &Kernel, v: u64, va: u64, pfn: u64, migration: bool, c: &mut Census) {
    let pte = Pte(v);
    let Some(folio) = k.mem.pfn_folio(pfn) else {
        c.leaves.push((va, Leaf::Dangling { val: v, pmd: false }));
        return;
    };
    let subpage = (pfn - folio.pfn) as usize;
    let leaf = if migration {
        Leaf::Migration { folio, subpage }
    } else {
        // pte_special() of the era (from v3.16 not a NUMA hinting pte, whose
        // bit 9 is _PAGE_NUMA); v3.16's vm_normal_page() also sets the zero
        // page aside when its pte is not pte_special() (SPECIAL|PROTNONE).
        let special =
            k.pte_special(pte) || matches!(folio.kind.get(), FolioKind::Zero | FolioKind::HugeZero);
        Leaf::Present {
            folio,
            subpage,
            special,
        }
    };
    c.leaves.push((va, leaf));
}
