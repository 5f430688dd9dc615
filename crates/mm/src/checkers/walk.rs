//! A ghost walk of every user mapping, shared by the checkers.

use std::rc::Rc;

use crate::arch::x86::pgtable::{
    pmd_pfn, pmd_present, pmd_trans_huge, pte_pfn, pte_present, pte_special, Pmd, Pte,
};
use crate::arch::x86::swap::{
    is_migration_entry, is_pmd_migration_entry, is_swap_pte, pfn_swap_entry_to_pfn,
    pmd_to_swp_entry, pte_to_swp_entry,
};
use crate::mm_types::{Folio, Kernel, MmStruct};
use crate::pgtable::table_of;

/// What one leaf entry holds.
#[derive(Clone)]
pub enum Leaf {
    /// A present huge pmd (512 pages from `folio`).
    HugePresent(Rc<Folio>),
    /// A pmd migration entry for `folio`.
    HugeMigration(Rc<Folio>),
    /// A present pte mapping one page of `folio` (`special`: zero page).
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
    /// Anything else that is not none (a value the model cannot decode).
    Other(u64),
}

/// Every non-none leaf of `mm` with its virtual address, plus the table
/// census (upper tables, PTE tables, deposited tables).
pub struct Census {
    pub leaves: Vec<(u64, Leaf)>,
    pub tables: i64,
}

/// Walks the whole tree of `mm` with ghost reads.
pub fn census(k: &Kernel, mm: &MmStruct) -> Census {
    let mut c = Census {
        leaves: Vec::new(),
        tables: 0,
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
    let pte = Pte(v);
    let (pfn, migration) = if pte_present(pte) {
        (pte_pfn(pte), false)
    } else if is_swap_pte(pte) && is_migration_entry(&k.profile.swap_types, pte_to_swp_entry(pte)) {
        (pfn_swap_entry_to_pfn(pte_to_swp_entry(pte)), true)
    } else {
        c.leaves.push((va, Leaf::Other(v)));
        return;
    };
    let Some(folio) = k.mem.pfn_folio(pfn) else {
        c.leaves.push((va, Leaf::Dangling { val: v, pmd: false }));
        return;
    };
    let subpage = (pfn - folio.pfn) as usize;
    let leaf = if migration {
        Leaf::Migration { folio, subpage }
    } else {
        Leaf::Present {
            folio,
            subpage,
            special: pte_special(pte),
        }
    };
    c.leaves.push((va, leaf));
}
