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
    /// A nonlinear file pte (2.6-era `pte_file()`): the VMA maps file
    /// page `pgoff` there once faulted; no page, no counts.
    File { pgoff: u64 },
    /// Anything else that is not none (a value the model cannot decode).
    Other(u64),
}

/// Every non-none leaf of `mm` with its virtual address, plus the table
/// census (upper tables, PTE tables, deposited tables).
#[derive(Default)]
pub struct Census {
    pub leaves: Vec<(u64, Leaf)>,
    pub tables: i64,
    /// Every non-none PTE-level entry: address and raw value.
    pub ptes: Vec<(u64, u64)>,
}

/// What a walk reports: the page tables it reaches and the leaves.
pub trait Visit {
    /// The entry at `va` of level `level` (4 = pgd … 2 = pmd) points to
    /// page table `table`, which counts `pages` pages of page tables (one,
    /// plus the tables deposited with a PMD table).
    fn table(&mut self, va: u64, level: u8, table: &Rc<Folio>, pages: i64);
    /// A non-none leaf entry of level 1 (pte) or 2 (pmd) holding `raw`.
    fn leaf(&mut self, va: u64, level: u8, raw: u64, leaf: Leaf);
}

impl Visit for Census {
    fn table(&mut self, _va: u64, _level: u8, _table: &Rc<Folio>, pages: i64) {
        self.tables += pages;
    }

    fn leaf(&mut self, va: u64, level: u8, raw: u64, leaf: Leaf) {
        if level == 1 {
            self.ptes.push((va, raw));
        }
        self.leaves.push((va, leaf));
    }
}

/// Walks the whole tree of `mm` with ghost reads.
pub fn census(k: &Kernel, mm: &MmStruct) -> Census {
    let mut c = Census::default();
    walk_table(k, &mm.pgd, 0, 4, &mut c);
    c
}

/// The bytes of address space one entry of a level-`level` table maps.
pub fn entry_span(level: u8) -> u64 {
    1u64 << (12 + 9 * (u32::from(level) - 1))
}

/// Walks every entry of `table` (a level-`level` table whose first entry
/// maps `base`), in address order.
pub fn walk_table(k: &Kernel, table: &Folio, base: u64, level: u8, v: &mut impl Visit) {
    for i in 0..512u64 {
        let va = base + i * entry_span(level);
        walk_entry(k, table.entries().peek(i as usize), va, level, v);
    }
}

/// Walks what the entry `raw` of a level-`level` table, mapping `va`,
/// leads to. The upper levels skip what is not a page table, as the
/// census always has; a pmd is a leaf, a table, or something the model
/// cannot decode.
pub fn walk_entry(k: &Kernel, raw: u64, va: u64, level: u8, v: &mut impl Visit) {
    match level {
        1 => pte_leaf(k, raw, va, v),
        2 => pmd_leaf(k, raw, va, v),
        _ => {
            let Some(next) = table_of(k, raw) else {
                return;
            };
            let deposited = if level == 3 {
                next.pmd_huge_pte.borrow().len() as i64
            } else {
                0
            };
            v.table(va, level, &next, 1 + deposited);
            walk_table(k, &next, va, level - 1, v);
        }
    }
}

fn pmd_leaf(k: &Kernel, v: u64, va: u64, c: &mut impl Visit) {
    if v == 0 {
        return;
    }
    let pmd = Pmd(v);
    if pmd_trans_huge(pmd) {
        match k.mem.pfn_folio(pmd_pfn(pmd)) {
            Some(f) => c.leaf(va, 2, v, Leaf::HugePresent(f)),
            None => c.leaf(va, 2, v, Leaf::Dangling { val: v, pmd: true }),
        }
        return;
    }
    if is_pmd_migration_entry(&k.profile.swap_types, pmd) {
        let pfn = pfn_swap_entry_to_pfn(pmd_to_swp_entry(pmd));
        match k.mem.pfn_folio(pfn) {
            Some(f) => c.leaf(va, 2, v, Leaf::HugeMigration(f)),
            None => c.leaf(va, 2, v, Leaf::Dangling { val: v, pmd: true }),
        }
        return;
    }
    match table_of(k, v).filter(|_| pmd_present(pmd)) {
        Some(pte_table) => {
            c.table(va, 2, &pte_table, 1);
            walk_table(k, &pte_table, va, 1, c);
        }
        None if pmd_present(pmd) => c.leaf(va, 2, v, Leaf::Dangling { val: v, pmd: true }),
        None => c.leaf(va, 2, v, Leaf::Other(v)),
    }
}

fn pte_leaf(k: &Kernel, v: u64, va: u64, c: &mut impl Visit) {
    if v == 0 {
        return;
    }
    c.leaf(va, 1, v, pte_kind(k, v));
}

/// What a non-none pte leads to.
fn pte_kind(k: &Kernel, v: u64) -> Leaf {
    let pte = Pte(v);
    if let Some(numa) = k.profile.numa_bit() {
        return pte_leaf_v3(k, numa, v);
    }
    if k.profile.knobs.pte_layout == crate::profile::PteLayout::V2_6_34
        && crate::arch::x86::swap::v2_6_34::pte_file(pte)
    {
        let pgoff = crate::arch::x86::swap::v2_6_34::pte_to_pgoff(pte);
        return Leaf::File { pgoff };
    }
    if k.profile.knobs.pte_layout == crate::profile::PteLayout::V2_6_34
        && crate::arch::x86::swap::v2_6_34::is_swap_pte(pte)
    {
        let offset = crate::arch::x86::swap::v2_6_34::swp_offset(pte);
        return Leaf::Swap { offset };
    }
    if pte_present(pte) && k.pv.is_xen_pv() {
        // A present entry holds a machine frame, a PROT_NONE one a pfn
        // (the Xen ABI; no L1TF inversion in the 2.6 eras).
        let frame = (v & pgtable_v3::PTE_PFN_MASK) >> 12;
        if v & _PAGE_PRESENT == 0 {
            return pte_page_leaf(k, v, frame, false);
        }
        return match k.pv.machine_to_phys(frame) {
            Some(pfn) => pte_page_leaf(k, v, pfn, false),
            None => Leaf::Dangling { val: v, pmd: false },
        };
    }
    let (pfn, migration) = if pte_present(pte) {
        (pte_pfn(pte), false)
    } else if is_swap_pte(pte) && is_migration_entry(&k.profile.swap_types, pte_to_swp_entry(pte)) {
        (pfn_swap_entry_to_pfn(pte_to_swp_entry(pte)), true)
    } else {
        return Leaf::Other(v);
    };
    pte_page_leaf(k, v, pfn, migration)
}

/// A 3.x-era pte, decoded by what the platform guarantees rather than by
/// the kernel's accessors: a present entry's frame is a machine frame (the
/// hypervisor's m2p says whose page it is); a PROTNONE/NUMA entry's frame
/// is a pfn (the Xen ABI for non-present entries).
fn pte_leaf_v3(k: &Kernel, numa: NumaBit, v: u64) -> Leaf {
    let frame = (v & pgtable_v3::PTE_PFN_MASK) >> 12;
    let pfn = if v & _PAGE_PRESENT != 0 {
        k.pv.machine_to_phys(frame)
    } else if pgtable_v3::pte_present(numa, Pte(v)) {
        Some(frame)
    } else {
        return Leaf::Other(v);
    };
    match pfn {
        Some(pfn) => pte_page_leaf(k, v, pfn, false),
        None => Leaf::Dangling { val: v, pmd: false },
    }
}

fn pte_page_leaf(k: &Kernel, v: u64, pfn: u64, migration: bool) -> Leaf {
    let pte = Pte(v);
    let Some(folio) = k.mem.pfn_folio(pfn) else {
        return Leaf::Dangling { val: v, pmd: false };
    };
    let subpage = (pfn - folio.pfn) as usize;
    if migration {
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
    }
}
