//! Page-table slots and locks: `pmd_t *` and friends, `pgd_offset()` ...
//! `pte_offset_map()`, `pmd_lock()` and `pte_lockptr()`.
//!
//! Models include/linux/pgtable.h and include/linux/mm.h (v6.1). Entry
//! values are raw x86-64 words (arch/x86/pgtable.rs); an [`EntryRef`] is a
//! pointer to one slot of a page-table page.

use std::rc::Rc;

use explore::sync::SpinLock;

use crate::arch::x86::pgtable::{self, PgProt, Pte};
use crate::arch::x86::pgtable::{
    make_pmd, pgd_index, pmd_index, pmd_pfn, pmd_populate_val, pte_index, pud_index, Pmd,
    _PAGE_PRESENT, _PAGE_TABLE, PTE_PFN_MASK,
};
use crate::arch::x86::pgtable_v3;
use crate::mm_types::{Folio, FolioKind, Kernel, MmStruct, PAGE_SHIFT};

/// A pointer to one entry of a page-table page (`pmd_t *pmd`).
#[derive(Clone)]
pub struct EntryRef {
    pub table: Rc<Folio>,
    pub index: usize,
}

impl EntryRef {
    pub fn new(table: Rc<Folio>, index: usize) -> EntryRef {
        EntryRef { table, index }
    }

    /// A lockless load of the entry (`*pmd`, `READ_ONCE(*pmd)`).
    pub fn read(&self, label: &'static str) -> u64 {
        self.table.entries().read(self.index, label)
    }

    /// A direct store by the kernel (`set_pmd_at`, `pmd_populate`,
    /// `pmd_clear`, a native `set_pte`), through the kernel's mapping of
    /// the table page: the MMU checks that mapping (INV-HW-PERM).
    pub fn write(&self, label: &'static str, v: u64) {
        self.table
            .entries()
            .write_guarded(self.index, label, v, || self.store_check(label))
    }

    /// A direct atomic exchange by the kernel (`ptep_get_and_clear`,
    /// `pmdp_establish`), checked as [`EntryRef::write`].
    pub fn xchg(&self, label: &'static str, v: u64) -> u64 {
        self.table
            .entries()
            .xchg_guarded(self.index, label, v, || self.store_check(label))
    }

    /// A store by the hypervisor on the guest's behalf (`mmu_update`):
    /// Xen writes the page through its own mapping.
    pub fn hv_write(&self, label: &'static str, v: u64) {
        self.table.entries().write(self.index, label, v)
    }

    /// The MMU's load of the entry during a walk; `None` if the table was
    /// freed under the walk (`SlotArray::read_hw` says why that is not a
    /// use after free).
    pub fn hw_read(&self, label: &'static str) -> Option<u64> {
        self.table.entries().read_hw(self.index, label)
    }

    /// The MMU's locked update of the accessed and dirty bits: the
    /// hardware writes the table whatever the kernel's mapping of it says.
    /// Returns the value found; `None` if the table was freed.
    pub fn hw_cmpxchg(&self, label: &'static str, old: u64, new: u64) -> Option<u64> {
        self.table.entries().cmpxchg_hw(self.index, label, old, new)
    }

    /// INV-HW-PERM: a kernel store into a page-table page that Xen has
    /// made read-only and not pinned faults (a pinned one Xen emulates).
    fn store_check(&self, label: &'static str) {
        if self.table.xen.get().store_faults() {
            explore::oops(crate::arch::x86::xen::mmu_pv::kernel_paging_request(
                self, label,
            ));
        }
    }

    /// A load under the entry's page-table lock (still a scheduling point:
    /// see `SlotArray::read_locked`).
    pub fn read_locked(&self, label: &'static str) -> u64 {
        self.table.entries().read_locked(self.index, label)
    }

    /// Ghost read for checkers.
    pub fn peek(&self) -> u64 {
        self.table.entries().peek(self.index)
    }

    /// The kernel virtual address of the slot: the direct map of its table
    /// page plus 8 bytes per entry ([`crate::kaddr`]).
    pub fn kaddr(&self, style: crate::profile::LogStyle) -> u64 {
        crate::kaddr::direct_map(
            style,
            (self.table.pfn << PAGE_SHIFT) + self.index as u64 * 8,
        )
    }
}

/// The page-table page an upper-level entry points to, if it is one
/// (`pmd_page()`/`pud_page()`, through the paravirt `pmd_val()`).
pub fn table_of(k: &Kernel, entry: u64) -> Option<Rc<Folio>> {
    let entry = k.pv.pmd_val(Pmd(entry));
    if entry & _PAGE_PRESENT == 0 {
        return None;
    }
    let folio = k.mem.pfn_folio((entry & PTE_PFN_MASK) >> PAGE_SHIFT)?;
    matches!(folio.kind.get(), FolioKind::PageTable(_)).then_some(folio)
}

/// `pgd_offset(mm, addr)` (the p4d level is folded on 4-level x86-64).
pub fn pgd_offset(mm: &MmStruct, addr: u64) -> EntryRef {
    EntryRef::new(mm.pgd.clone(), pgd_index(addr) as usize)
}

/// `pud_offset(p4d, addr)` given the value read from the p4d/pgd entry.
pub fn pud_offset(k: &Kernel, pgd_val: u64, addr: u64) -> Option<EntryRef> {
    Some(EntryRef::new(
        table_of(k, pgd_val)?,
        pud_index(addr) as usize,
    ))
}

/// `pmd_offset(pud, addr)` given the value read from the pud entry.
pub fn pmd_offset(k: &Kernel, pud_val: u64, addr: u64) -> Option<EntryRef> {
    Some(EntryRef::new(
        table_of(k, pud_val)?,
        pmd_index(addr) as usize,
    ))
}

/// `pte_offset_map(pmd, addr)` given a pmd value that points to a table.
pub fn pte_offset(k: &Kernel, pmd_val: u64, addr: u64) -> Option<EntryRef> {
    Some(EntryRef::new(
        table_of(k, pmd_val)?,
        pte_index(addr) as usize,
    ))
}

/// Ghost walk to the pmd slot of `addr` (checkers, reports): no
/// announcements.
pub fn peek_pmd(k: &Kernel, mm: &MmStruct, addr: u64) -> Option<EntryRef> {
    let pgd = pgd_offset(mm, addr).peek();
    let pud = pud_offset(k, pgd, addr)?.peek();
    pmd_offset(k, pud, addr)
}

/// A held page-table lock (`spinlock_t *ptl` after `spin_lock(ptl)`).
pub struct Ptl {
    lock: Rc<SpinLock<()>>,
}

impl Ptl {
    /// `spin_lock(ptl)`.
    pub fn lock(lock: Rc<SpinLock<()>>, label: &'static str) -> Ptl {
        lock.lock_raw(label);
        Ptl { lock }
    }

    /// `spin_unlock(ptl)`.
    pub fn unlock(self, label: &'static str) {
        self.lock.unlock_raw(label);
    }

    pub fn is(&self, other: &Rc<SpinLock<()>>) -> bool {
        Rc::ptr_eq(&self.lock, other)
    }
}

/// `pmd_lockptr(mm, pmd)`: the split lock of the PMD table page, or
/// `mm->page_table_lock`.
pub fn pmd_lockptr(k: &Kernel, mm: &MmStruct, pmd: &EntryRef) -> Rc<SpinLock<()>> {
    if k.profile.knobs.split_ptlocks {
        if let Some(l) = pmd.table.ptl.borrow().as_ref() {
            return l.clone();
        }
    }
    mm.page_table_lock.clone()
}

/// `pmd_lock(mm, pmd)`.
pub fn pmd_lock(k: &Kernel, mm: &MmStruct, pmd: &EntryRef) -> Ptl {
    Ptl::lock(pmd_lockptr(k, mm, pmd), "spin_lock(pmd_lock)")
}

/// Where `pte_lockptr()` found its lock.
pub enum PtlSource {
    /// The split lock of a live PTE table page, or mm->page_table_lock.
    Table(Rc<SpinLock<()>>),
    /// `ptlock_ptr(pmd_page(pmd))` of a page that is not a page table and
    /// has no lock: NULL with ALLOC_SPLIT_PTLOCKS.
    Null { pfn: u64 },
    /// The embedded `page->ptl` word of a page that is not a page table: the
    /// kernel would spin on whatever word overlays it.
    NotATable { pfn: u64 },
}

/// `pte_lockptr(mm, pmd)` = `ptlock_ptr(pmd_page(*pmd))` for the given pmd
/// value, with no validation, as in v6.1.
pub fn pte_lockptr(k: &Kernel, mm: &MmStruct, pmd_val: u64) -> PtlSource {
    if !k.profile.knobs.split_ptlocks {
        return PtlSource::Table(mm.page_table_lock.clone());
    }
    let pfn = pmd_pfn(Pmd(k.pv.pmd_val(Pmd(pmd_val))));
    let folio = k.mem.pfn_folio(pfn);
    let lock = folio.as_ref().and_then(|f| f.ptl.borrow().clone());
    let is_pte_table = folio
        .as_ref()
        .is_some_and(|f| f.kind.get() == FolioKind::PageTable(1));
    match lock {
        Some(l) if is_pte_table => PtlSource::Table(l),
        _ if k.profile.knobs.alloc_split_ptlocks => PtlSource::Null { pfn },
        _ => PtlSource::NotATable { pfn },
    }
}

/// Allocates a page-table page of `level` on `node` with its split lock
/// (`pte_alloc_one` + `pgtable_pte_page_ctor` / `pgtable_pmd_page_ctor`).
pub fn alloc_table(
    k: &Kernel,
    node: u32,
    level: u8,
    class: Option<&'static explore::LockClass>,
) -> Option<Rc<Folio>> {
    let folio = k.mem.alloc_pages(node, 0, FolioKind::PageTable(level))?;
    if let Some(class) = class {
        *folio.ptl.borrow_mut() = Some(Rc::new(SpinLock::new(class, folio.pfn, ())));
    }
    Some(folio)
}

/// Frees a page-table page (`pgtable_pte_page_dtor` + free): its lock
/// pointer goes back to NULL.
pub fn free_table(k: &Kernel, table: &Folio) {
    *table.ptl.borrow_mut() = None;
    // xen_release_pt(): an unpinned, writable page again.
    table.xen.set(crate::mm_types::XenPt::default());
    table.entries().free("pte_free: free the page-table page");
    k.mem.free_folio(table);
}

/// The value `pmd_populate()` stores for a PTE table (`__pmd()`, so a
/// machine frame on Xen PV).
pub fn populate_val(k: &Kernel, table: &Folio) -> u64 {
    k.pv.make_pmd(pmd_populate_val(table.pfn).0).0
}

/// `_PAGE_TABLE` entry for an upper level (pgd/pud populate).
pub fn upper_populate_val(k: &Kernel, table: &Folio) -> u64 {
    k.pv.make_pmd(make_pmd((table.pfn << PAGE_SHIFT) | _PAGE_TABLE).0)
        .0
}

impl Kernel {
    /// `pte_pfn()` of the profile's era (3.x: through the paravirt
    /// `pte_val()`; 6.1: native, with the L1TF inversion).
    pub fn pte_pfn(&self, pte: Pte) -> u64 {
        if self.profile.numa_bit().is_some() || self.pv.is_xen_pv() {
            return pgtable_v3::pte_pfn(&self.pv, pte);
        }
        pgtable::pte_pfn(pte)
    }

    /// `pfn_pte()` / `mk_pte()` of the profile's era (`__pte()` paravirt:
    /// on Xen PV the 3.x-era and 2.6-era accessors translate the frame).
    pub fn pfn_pte(&self, pfn: u64, prot: PgProt) -> Pte {
        if self.profile.numa_bit().is_some() || self.pv.is_xen_pv() {
            return pgtable_v3::pfn_pte(&self.pv, pfn, prot);
        }
        pgtable::pfn_pte(pfn, prot)
    }

    /// `pte_modify()` for the change_pte_range of the eras without
    /// `_PAGE_NUMA` (2.6 and 4.19+). The PROT_NONE frame inversion
    /// (`flip_protnone_guard()`, L1TF, v4.19) is what [`Kernel::pte_pfn`]
    /// undoes for a native kernel. On Xen PV (2.6 eras, no inversion yet)
    /// it goes through the paravirt `pte_val()`/`__pte()`, which translate
    /// the frame of a present entry only: a PROT_NONE entry holds a pfn
    /// (the Xen ABI for non-present entries).
    pub fn pte_modify(&self, pte: Pte, prot: PgProt) -> Pte {
        if self.pv.is_xen_pv() {
            let keep = pgtable::_PAGE_CHG_MASK;
            let val = (self.pv.pte_val(pte) & keep) | (pgtable::pgprot_val(prot) & !keep);
            return self.pv.make_pte(val);
        }
        pgtable::pte_modify(pte, prot)
    }

    /// `pte_present()` of the profile's era (3.x: P, PROTNONE or NUMA).
    pub fn pte_present(&self, pte: Pte) -> bool {
        match self.profile.numa_bit() {
            Some(numa) => pgtable_v3::pte_present(numa, pte),
            None => pgtable::pte_present(pte),
        }
    }

    /// `pte_none()` of the profile's era: the whole value is zero, until
    /// 97e3c602ccbc "x86/mm: Ignore A/D bits in pte/pmd/pud_none()"
    /// (v4.7, the Knights Landing erratum) let the accessed and dirty bits
    /// through. The difference matters to the 2.6 era, whose nonlinear
    /// file pte for page 0 (`pgoff_to_pte(0)`) is `_PAGE_FILE` alone: bit
    /// 6, the dirty bit.
    pub fn pte_none(&self, pte: Pte) -> bool {
        match self.profile.knobs.pte_layout {
            crate::profile::PteLayout::V4_19 => pgtable::pte_none(pte),
            _ => pte.0 == 0,
        }
    }

    /// `pte_special()` of the profile's era: bit 9 (`_PAGE_SPECIAL`); from
    /// c46a7c817e66 (v3.16) only with `_PAGE_PRESENT`, since a NUMA hinting
    /// pte has bit 9 set too. v4.0 ("x86: mm: restore original pte_special
    /// check", with `_PAGE_NUMA` gone) went back to the plain bit.
    pub fn pte_special(&self, pte: Pte) -> bool {
        match self.profile.numa_bit() {
            Some(numa) => pgtable_v3::pte_special(numa, pte),
            None => pgtable::pte_special(pte),
        }
    }

    /// `set_pte_at()` through `pv_mmu_ops` (a hypercall on Xen PV).
    pub fn set_pte_at(&self, ptep: &EntryRef, pte: Pte, label: &'static str) {
        self.pv.set_pte_at(ptep, pte, label)
    }

    /// `pte_mknonnuma()` (3.x) as the profile has it: native flag
    /// operations, or paravirt value accessors from 29c7787075c9.
    pub fn pte_mknonnuma(&self, numa: pgtable_v3::NumaBit, pte: Pte) -> Pte {
        if self.profile.knobs.numa_helpers_pv_ops {
            pgtable_v3::pte_mknonnuma_pv(&self.pv, numa, pte)
        } else {
            pgtable_v3::pte_mknonnuma_native(numa, pte)
        }
    }

    /// `pte_mknuma()` (3.x) as the profile has it.
    pub fn pte_mknuma(&self, numa: pgtable_v3::NumaBit, pte: Pte) -> Pte {
        if self.profile.knobs.numa_helpers_pv_ops {
            pgtable_v3::pte_mknuma_pv(&self.pv, numa, pte)
        } else {
            pgtable_v3::pte_mknuma_native(numa, pte)
        }
    }
}
