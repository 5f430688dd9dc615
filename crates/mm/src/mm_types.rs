//! The model's core objects: `struct folio`, page-table pages, `mm_struct`,
//! `vm_area_struct`, `anon_vma`, and the machine they live on.
//!
//! Models include/linux/mm_types.h (v6.1). Every shared field says what
//! protects it, who reads it without that protection, and its invariant.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};

use explore::sync::{
    AtomicCounter, AtomicSlot, BitLock, Lifetime, Mutex, RwSem, SharedCell, SlotArray, SpinLock,
};

use crate::arch::x86::paravirt::{Paravirt, XenPv};
use crate::arch::x86::pgtable::PgProt;
use crate::arch::x86::xen::p2m::P2m;
use crate::ghost::Ghost;
use crate::locking::{
    ANON_VMA_LOCK, FOLIO_LOCK, I_MMAP_LOCK, I_MUTEX, MMAP_LOCK, PAGE_TABLE_LOCK, TREE_LOCK,
};
use crate::page_alloc::PhysMem;
use crate::profile::{Platform, Profile};

pub const PAGE_SHIFT: u32 = 12;
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
pub const HPAGE_PMD_ORDER: u32 = 9;
pub const HPAGE_PMD_NR: u64 = 1 << HPAGE_PMD_ORDER;
pub const HPAGE_PMD_SIZE: u64 = PAGE_SIZE << HPAGE_PMD_ORDER;

/// `vm_flags` bits (include/linux/mm.h).
pub mod vm_flags {
    pub const VM_READ: u64 = 0x1;
    pub const VM_WRITE: u64 = 0x2;
    pub const VM_EXEC: u64 = 0x4;
    pub const VM_SHARED: u64 = 0x8;
    pub const VM_MAYSHARE: u64 = 0x80;
    pub const VM_MAYREAD: u64 = 0x10;
    pub const VM_MAYWRITE: u64 = 0x20;
    pub const VM_MAYEXEC: u64 = 0x40;
    /// `VM_NONLINEAR` (v2.6.22..v4.0): `remap_file_pages()` made the VMA
    /// map file pages out of order through `pte_file` entries; it sits on
    /// `i_mmap_nonlinear` instead of the prio tree.
    pub const VM_NONLINEAR: u64 = 0x0080_0000;
    pub const VM_ACCOUNT: u64 = 0x0010_0000;
    pub const VM_NORESERVE: u64 = 0x0020_0000;
    pub const VM_HUGEPAGE: u64 = 0x2000_0000;
    pub const VM_NOHUGEPAGE: u64 = 0x4000_0000;
    pub const VM_ACCESS_FLAGS: u64 = VM_READ | VM_WRITE | VM_EXEC;
}

/// rss counter indices (include/linux/mm_types_task.h, v6.1).
pub const MM_FILEPAGES: usize = 0;
pub const MM_ANONPAGES: usize = 1;
pub const MM_SWAPENTS: usize = 2;
pub const MM_SHMEMPAGES: usize = 3;
pub const NR_MM_COUNTERS: usize = 4;
pub const RSS_NAMES: [&str; NR_MM_COUNTERS] = [
    "MM_FILEPAGES",
    "MM_ANONPAGES",
    "MM_SWAPENTS",
    "MM_SHMEMPAGES",
];

/// Content of one 4 KiB page as user space sees it: a fill byte plus the
/// bytes that differ from it.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct PageData {
    pub fill: u8,
    pub bytes: BTreeMap<u16, u8>,
}

impl PageData {
    pub fn zero() -> Self {
        PageData::default()
    }

    /// A page whose every byte is `v`.
    pub fn filled(v: u8) -> Self {
        PageData {
            fill: v,
            bytes: BTreeMap::new(),
        }
    }

    pub fn get(&self, off: u16) -> u8 {
        self.bytes.get(&off).copied().unwrap_or(self.fill)
    }

    /// Writes `v` to bytes `[lo, hi)` of the page.
    pub fn fill_range(&mut self, lo: u16, hi: u32, v: u8) {
        if lo == 0 && hi >= PAGE_SIZE as u32 {
            self.fill = v;
            self.bytes.clear();
            return;
        }
        for off in u32::from(lo)..hi.min(PAGE_SIZE as u32) {
            if v == self.fill {
                self.bytes.remove(&(off as u16));
            } else {
                self.bytes.insert(off as u16, v);
            }
        }
    }

    /// Short description for reports: `0x5a` or `0x5a+3 bytes`.
    pub fn describe(&self) -> String {
        if self.bytes.is_empty() {
            format!("{:#04x}", self.fill)
        } else {
            format!("{:#04x}+{} bytes", self.fill, self.bytes.len())
        }
    }
}

/// What a folio is used for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FolioKind {
    Anon,
    /// A page-table page of the given level (1 = PTE, 2 = PMD, 3 = PUD, 4 = PGD).
    PageTable(u8),
    /// The huge zero folio (`huge_zero_page`).
    HugeZero,
    /// The zero page (`ZERO_PAGE(0)`).
    Zero,
    /// A page-cache page of a shmem file (memfd): `folio->mapping` is the
    /// file, `folio->index` its page index there.
    Shmem,
    /// A page-cache page of a regular file on a block device (seed 003):
    /// `page->mapping` is the file while the page is in its page cache,
    /// NULL once removed (an orphan if still mapped).
    File,
    /// Back in the allocator; any use is a use-after-free.
    Free,
}

/// Xen's view of a page-table page of a PV guest (seed 004): how the
/// guest's kernel mapping of the page may be written, and whether Xen has
/// validated it as a page table. A direct store by the guest kernel into
/// the page succeeds if its mapping is writable, is emulated by Xen if
/// the page is pinned, and is a kernel-mode write fault otherwise
/// (INV-HW-PERM). Native pages are always writable.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct XenPt {
    /// `update_va_mapping(va, RO)`: the guest's kernel mapping of the page
    /// is read-only.
    pub read_only: bool,
    /// Pinned as part of its mm's tree (`MMUEXT_PIN_L4_TABLE` of the pgd).
    pub pinned_tree: bool,
    /// Pinned on its own (`MMUEXT_PIN_L1_TABLE`: 74260714c56d, and a page
    /// table allocated into a pinned tree, `xen_alloc_pt()`).
    pub pinned_self: bool,
}

impl XenPt {
    pub fn pinned(self) -> bool {
        self.pinned_tree || self.pinned_self
    }

    /// Whether a direct store by the guest kernel faults.
    pub fn store_faults(self) -> bool {
        self.read_only && !self.pinned()
    }
}

/// `struct folio` (or a small `struct page`): one allocation of 2^order
/// frames.
pub struct Folio {
    pub pfn: u64,
    pub order: u32,
    pub node: u32,
    /// Protected by: the allocator (set at alloc/free).
    pub kind: Cell<FolioKind>,
    /// `_refcount`. Atomic: `folio_get`/`folio_put` from any context, and
    /// read locklessly (`page_count()` in migration's reference checks and
    /// in copy-on-write reuse), so every operation is a scheduling point.
    /// Invariant: `refcount >= mapcount` while allocated.
    pub refcount: AtomicCounter,
    /// `_mapcount + 1` (for a PMD-mapped THP the entire mapcount). Changed
    /// atomically under the page-table lock of the mapping entry; read
    /// locklessly (`page_mapped()`, `folio_mapcount()`): every operation is
    /// a scheduling point.
    /// Invariant (INV-ACCT): equals the number of present entries mapping it.
    pub mapcount: AtomicCounter,
    /// `PG_locked`.
    pub lock: BitLock,
    /// `PG_lru`: on an LRU list, so isolatable for migration.
    /// Protected by: the lruvec lock (not modelled: isolation is one step).
    pub lru: Cell<bool>,
    /// `folio->mapping` of an anonymous folio. Written under the folio lock
    /// or before the folio is mapped (`page_add_new_anon_rmap`); read
    /// locklessly (`READ_ONCE(folio->mapping)` in `folio_get_anon_vma()`
    /// and `folio_lock_anon_vma_read()`): every load and store is a
    /// scheduling point. May point to an anon_vma already freed once the
    /// folio is unmapped; users check `page_mapped()` first.
    pub anon_vma: SharedCell<Option<Rc<AnonVma>>>,
    /// `folio->index`: linear page index of the head in its anon_vma, or
    /// its page index in its file. Protected by: the page lock (set before
    /// the page is in the page cache).
    pub index: Cell<u64>,
    /// `page->mapping` of a page-cache page: the file's id
    /// ([`AddressSpace::id`]) while the page is in its page cache. Set by
    /// `add_to_page_cache()` and cleared by `__remove_from_page_cache()`
    /// under the page lock and `tree_lock`; read locklessly by
    /// `install_page()` (v2.6.22, under the PTL only) and after
    /// `lock_page()` by `find_lock_page()`'s re-check: every load and store
    /// is a scheduling point.
    pub mapping: SharedCell<Option<u64>>,
    /// `PG_dirty` of a page-cache page. Protected by: the page lock, or the
    /// PTL when `zap_pte_range()`/`page_mkclean` move a dirty pte's bit to
    /// the page (`set_page_dirty()`); read by write-back under the page
    /// lock.
    pub dirty: Cell<bool>,
    /// `PG_uptodate` of a page-cache page: its data was read (or wholly
    /// written). Protected by: the page lock (set by `->readpage` before
    /// it unlocks, cleared by truncation and invalidation); read
    /// locklessly by lookups that found the page without its lock
    /// (`PageUptodate()`), which lock it and look again when it is not set.
    pub uptodate: Cell<bool>,
    /// `PG_swapcache` with `page_private()`: the swap slot of a page in the
    /// swap cache (2.6.34-era profiles). Protected by: the page lock (set by
    /// add_to_swap / read_swap_cache_async, cleared by
    /// delete_from_swap_cache); read by checkers only.
    pub swap: Cell<Option<u64>>,
    /// `page_cpupid_last()` reduced to the node (NUMA two-pass filter).
    pub last_cpupid_nid: Cell<Option<u32>>,
    /// `PG_anon_exclusive` (`PageAnonExclusive()`, 6c287605fd56, v5.19) of
    /// an anonymous folio: it is mapped by one process only, which may
    /// write to it without copying. Set by `page_add_new_anon_rmap()`, by
    /// the COW reuse of `do_wp_page()` and when an exclusive migration
    /// entry is restored; cleared by fork (`page_try_dup_anon_rmap()`) and
    /// by `try_to_migrate_one()`, which moves it into the migration entry.
    /// One flag per folio, where the kernel keeps one per page: the
    /// model's fork refuses large folios, so the subpages of one are never
    /// shared and always agree. Protected by: the page-table lock of the
    /// folio's only mapping (an exclusive page has one; a shared page's
    /// flag is clear and only fork, under the parent's lock, clears it).
    /// Read under that lock; never read locklessly.
    pub anon_exclusive: Cell<bool>,
    /// User data, one entry per 4 KiB page (empty for page tables).
    /// Protected by: being mapped (user access) or the folio lock (migration
    /// copy while every mapping is a migration entry).
    pub data: RefCell<Vec<PageData>>,
    /// The 512 entries, for a page-table page. Written under the table's
    /// lock (or `page_table_lock` for upper levels); read locklessly by the
    /// hardware walker, the fault path, page_vma_mapped_walk and the pmd
    /// checks of change_pmd_range.
    pub table: Option<SlotArray>,
    /// `page->ptl` (split page-table lock). `None` models the NULL pointer of
    /// an `ALLOC_SPLIT_PTLOCKS` kernel for a page that is not a page table.
    pub ptl: RefCell<Option<Rc<SpinLock<()>>>>,
    /// `pmd_huge_pte`: page tables deposited for the huge pmds of this PMD
    /// table. Protected by: this table's pmd lock.
    pub pmd_huge_pte: RefCell<Vec<Rc<Folio>>>,
    /// Xen's view of a page-table page (Xen PV, 2.6-era pinning only).
    /// Protected by: the hypervisor: changed only by the hypercalls of
    /// `xen_pgd_pin()`/`xen_pgd_unpin()`/`xen_alloc_pt()`, each a step
    /// that `protect()`s the page's entries; read by the MMU check of every
    /// direct store into the page (INV-HW-PERM). Rule (INV-LOCKSET): a
    /// change of a PTE page's Xen state, like a direct store into it,
    /// holds the page's pte lock (`pte_lockptr()`: its split lock, or
    /// `mm->page_table_lock`).
    pub xen: Cell<XenPt>,
}

impl Folio {
    pub fn nr_pages(&self) -> u64 {
        1 << self.order
    }

    pub fn entries(&self) -> &SlotArray {
        self.table
            .as_ref()
            .expect("page-table entries of a page that is not a page table")
    }

    pub fn new(pfn: u64, order: u32, node: u32, kind: FolioKind) -> Folio {
        let table = match kind {
            FolioKind::PageTable(level) => Some(SlotArray::new(table_class(level), pfn, 512)),
            _ => None,
        };
        let data = match kind {
            FolioKind::Anon
            | FolioKind::HugeZero
            | FolioKind::Zero
            | FolioKind::Shmem
            | FolioKind::File => {
                vec![PageData::zero(); 1 << order]
            }
            _ => Vec::new(),
        };
        Folio {
            pfn,
            order,
            node,
            kind: Cell::new(kind),
            refcount: AtomicCounter::new(FOLIO_REFCOUNT_CLASS, pfn, 1),
            mapcount: AtomicCounter::new(FOLIO_MAPCOUNT_CLASS, pfn, 0),
            lock: BitLock::new(&FOLIO_LOCK, pfn),
            lru: Cell::new(false),
            anon_vma: SharedCell::new(FOLIO_MAPPING_CLASS, pfn, None),
            index: Cell::new(0),
            mapping: SharedCell::new(FOLIO_MAPPING_CLASS, pfn, None),
            dirty: Cell::new(false),
            uptodate: Cell::new(false),
            swap: Cell::new(None),
            last_cpupid_nid: Cell::new(None),
            anon_exclusive: Cell::new(false),
            data: RefCell::new(data),
            table,
            ptl: RefCell::new(None),
            pmd_huge_pte: RefCell::new(Vec::new()),
            xen: Cell::new(XenPt::default()),
        }
    }
}

/// Object class names of a folio's lockless fields (their detail is the
/// folio's pfn), by which the incremental checkers recognise a touched
/// folio.
pub const FOLIO_REFCOUNT_CLASS: &str = "folio->_refcount";
pub const FOLIO_MAPCOUNT_CLASS: &str = "folio->_mapcount";
pub const FOLIO_MAPPING_CLASS: &str = "folio->mapping";
/// Object class of an anon_vma's lifetime (its detail is the anon_vma's id).
pub const ANON_VMA_CLASS: &str = "anon_vma";

/// Object class names of page-table entries, used by reports to decode
/// values (`Instance::describe`).
pub const PTE_CLASS: &str = "pte";
pub const PMD_CLASS: &str = "pmd";
pub const PUD_CLASS: &str = "pud";
pub const PGD_CLASS: &str = "pgd";

fn table_class(level: u8) -> &'static str {
    match level {
        1 => PTE_CLASS,
        2 => PMD_CLASS,
        3 => PUD_CLASS,
        _ => PGD_CLASS,
    }
}

/// THP setting of the machine (`/sys/kernel/mm/transparent_hugepage/enabled`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Thp {
    Always,
    Madvise,
    Never,
}

/// The machine: NUMA nodes and THP settings.
#[derive(Clone, Copy, Debug)]
pub struct Machine {
    pub nodes: u32,
    pub thp: Thp,
    /// `transparent_hugepage/use_zero_page` (default 1).
    pub thp_use_zero_page: bool,
}

/// One modelled machine running one kernel profile.
///
/// The model's global state. Fields that are not sync objects are changed
/// only inside one step (between scheduling points), so they need no lock
/// of the model's own; their kernel counterparts' protection is noted.
pub struct Kernel {
    /// Knob values. Immutable during an execution.
    pub profile: Profile,
    /// NUMA nodes and THP settings. Immutable during an execution.
    pub machine: Machine,
    /// The page allocator (`zone->lock` in the kernel; one step here).
    pub mem: PhysMem,
    /// `pv_mmu_ops` of the platform (native or Xen PV with its p2m).
    /// Immutable during an execution.
    pub pv: Paravirt,
    /// Expected user-visible state (not kernel state): see ghost.rs.
    /// Updated by the user-access and syscall layers, read by checkers.
    pub ghost: Ghost,
    /// `huge_zero_page`, allocated on first use (`get_huge_zero_page`'s
    /// cmpxchg in the kernel). Invariant: never freed while mapped.
    pub huge_zero: OnceCell<Rc<Folio>>,
    /// `ZERO_PAGE(0)`, allocated on first use (static in the kernel).
    pub zero_page: OnceCell<Rc<Folio>>,
    /// Every mm, for checkers and reports. Pushed to by `mm_alloc` only.
    pub mms: RefCell<Vec<Rc<MmStruct>>>,
    /// The swap area and the swap cache (used by the 2.6.34-era paths).
    pub swap: crate::swapfile::SwapInfo,
    /// Number of anon_vma frees so far: an RCU reader that starts after the
    /// n-th free may find that object's slab page already reused
    /// (`SLAB_DESTROY_BY_RCU` only delays the page's return by a grace
    /// period). Model bookkeeping of grace periods, not kernel state.
    pub anon_vma_frees: Cell<u64>,
    /// Every anon_vma and anon_vma_chain allocated, with the call chain
    /// that allocated it: kmemleak's object tree (kmemleak.rs). Pushed to
    /// by the allocators only.
    pub slab_objects: RefCell<Vec<crate::kmemleak::SlabObject>>,
    /// `anon_vma_cachep`'s free objects, most recently freed last (SLUB's
    /// per-cpu freelist is LIFO). Protected by: the slab allocator (one
    /// step here). Only the 2.6.34-era profiles reallocate from it.
    pub anon_vma_freelist: RefCell<Vec<Rc<AnonVma>>>,
    /// Every regular file the scenario created, by creation order (the
    /// model's superblock). Pushed to by [`Kernel::create_file`] only.
    pub files: RefCell<Vec<Rc<AddressSpace>>>,
    /// The first breach of a lockset rule this execution (INV-LOCKSET,
    /// checkers/lockset.rs): recorded where it happens, reported at the
    /// end of the concurrent phase if nothing else was found first.
    /// Checker state, not kernel state.
    pub lockset: RefCell<Option<crate::checkers::lockset::Breach>>,
    /// Next mm / anon_vma id (deterministic object naming).
    next_id: Cell<u64>,
}

impl Kernel {
    pub fn new(profile: Profile, machine: Machine) -> Kernel {
        let fail = profile.knobs.fail_page_alloc;
        let pv = match profile.knobs.platform {
            Platform::Native => Paravirt::Native,
            Platform::XenPv => Paravirt::XenPv(XenPv {
                p2m: P2m::new(machine.nodes),
                translate_protnone: profile.knobs.xen_translate_protnone,
                numa_mask: profile.numa_bit().map_or(0, |n| n.mask()),
            }),
        };
        Kernel {
            profile,
            machine,
            mem: PhysMem::new(machine.nodes, fail),
            pv,
            ghost: Ghost::default(),
            huge_zero: OnceCell::new(),
            zero_page: OnceCell::new(),
            mms: RefCell::new(Vec::new()),
            swap: Default::default(),
            anon_vma_frees: Cell::new(0),
            slab_objects: RefCell::new(Vec::new()),
            anon_vma_freelist: RefCell::new(Vec::new()),
            files: RefCell::new(Vec::new()),
            lockset: RefCell::new(None),
            next_id: Cell::new(1),
        }
    }

    /// A raw pmd value decoded with this profile's swap-type numbering (on
    /// Xen PV a table pointer holds a machine frame).
    pub fn describe_pmd(&self, val: u64) -> String {
        let pmd = crate::arch::x86::pgtable::Pmd(val);
        if self.pv.is_xen_pv() && crate::arch::x86::pgtable::pmd_present(pmd) {
            let mfn = crate::arch::x86::pgtable::pmd_pfn(pmd);
            let pfn = self
                .pv
                .machine_to_phys(mfn)
                .map_or("not this domain's".to_string(), |p| format!("pfn {p:#x}"));
            return format!("table mfn {mfn:#x} ({pfn})");
        }
        crate::arch::x86::pgtable::describe_pmd_with(
            crate::arch::x86::pgtable::Pmd(val),
            &self.profile.swap_types,
        )
    }

    /// A raw pte value decoded for reports: the 3.x layout through the
    /// platform, else with this profile's swap-type numbering.
    pub fn describe_pte(&self, val: u64) -> String {
        if let Some(what) = self.describe_pte_v2_6(val) {
            return what;
        }
        if let Some(numa) = self.profile.numa_bit() {
            return crate::arch::x86::pgtable_v3::describe_pte(
                &self.pv,
                numa,
                crate::arch::x86::pgtable::Pte(val),
            );
        }
        crate::arch::x86::pgtable::describe_pte_with(
            crate::arch::x86::pgtable::Pte(val),
            &self.profile.swap_types,
        )
    }

    /// The not-present ptes of the 2.6 eras' layout, which the modern
    /// decoder would misread: `pte_none()` is the whole value zero, a
    /// nonlinear file pte (`pte_file()`) holds a file page index, and a
    /// swap pte keeps its offset from bit 9, not inverted.
    fn describe_pte_v2_6(&self, val: u64) -> Option<String> {
        use crate::arch::x86::pgtable::Pte;
        use crate::arch::x86::swap::v2_6_34::{
            is_swap_pte, pte_file, pte_to_pgoff, swp_offset, swp_type,
        };
        if self.profile.knobs.pte_layout != crate::profile::PteLayout::V2_6_34 {
            return None;
        }
        let pte = Pte(val);
        let protnone = crate::arch::x86::pgtable::_PAGE_PROTNONE;
        if val == 0 {
            Some("none".to_string())
        } else if self.pv.is_xen_pv() && val & (1 | protnone) == protnone {
            // A pfn, not inverted (the Xen ABI for non-present entries).
            Some(format!(
                "protnone pfn {:#x}",
                (val & crate::arch::x86::pgtable_v3::PTE_PFN_MASK) >> 12
            ))
        } else if pte_file(pte) {
            Some(format!("file pte pgoff {:#x}", pte_to_pgoff(pte)))
        } else if is_swap_pte(pte) {
            Some(format!(
                "swap entry type {} offset {:#x}",
                swp_type(pte),
                swp_offset(pte)
            ))
        } else {
            None
        }
    }

    /// A regular file of `size` bytes whose blocks on disk all hold
    /// `fill` (written before the scenario starts, so nothing is cached).
    pub fn create_file(&self, size: u64, fill: u8) -> Rc<AddressSpace> {
        let file = Rc::new(AddressSpace::new(self.next_id(), Backing::Disk));
        file.i_size.write("i_size_write", size);
        let data = PageData::filled(fill);
        file.disk
            .borrow_mut()
            .extend((0..size.div_ceil(PAGE_SIZE)).map(|i| (i, data.clone())));
        if !size.is_multiple_of(PAGE_SIZE) {
            if let Some(last) = file.disk.borrow_mut().get_mut(&(size / PAGE_SIZE)) {
                last.fill_range((size % PAGE_SIZE) as u16, PAGE_SIZE as u32, 0);
            }
        }
        self.files.borrow_mut().push(file.clone());
        self.ghost.files.create(file.id, size, fill);
        file
    }

    /// The file with id `id` (`page->mapping` to the address_space).
    pub fn file(&self, id: u64) -> Option<Rc<AddressSpace>> {
        self.files.borrow().iter().find(|f| f.id == id).cloned()
    }

    /// A fresh id for an mm or anon_vma.
    pub fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }
}

/// A user thread: the task on whose behalf syscalls and faults run.
#[derive(Clone)]
pub struct Task {
    pub name: String,
    /// NUMA node of the CPU the task runs on.
    pub node: u32,
    pub mm: Rc<MmStruct>,
}

/// The VMA list, protected by `mmap_lock`.
#[derive(Default)]
pub struct MmapState {
    /// Sorted by `vm_start`, non-overlapping.
    pub vmas: Vec<Rc<Vma>>,
}

impl MmapState {
    /// `find_vma()`: the first VMA with `vm_end > addr`.
    pub fn find_vma(&self, addr: u64) -> Option<&Rc<Vma>> {
        self.vmas.iter().find(|v| v.vm_end.get() > addr)
    }

    /// `vma_lookup()`: the VMA containing `addr`.
    pub fn vma_lookup(&self, addr: u64) -> Option<&Rc<Vma>> {
        self.find_vma(addr).filter(|v| v.vm_start.get() <= addr)
    }
}

/// `struct mm_struct`.
pub struct MmStruct {
    pub id: u64,
    /// Protected by: itself (rw_semaphore). Writers: mmap, munmap, mprotect;
    /// readers: faults, NUMA scanning, madvise(MADV_DONTNEED).
    pub mmap_lock: RwSem<MmapState>,
    /// The PGD page. Invariant: never freed before the mm.
    pub pgd: Rc<Folio>,
    /// `mm->page_table_lock`: populating PGD/PUD entries; the pmd lock when
    /// split page-table locks are off.
    pub page_table_lock: Rc<SpinLock<()>>,
    /// rss counters. Updated with per-cpu/atomic adds, not scheduling points.
    /// Invariant (INV-ACCT): equal to the census of entries by type; zero
    /// when the mm is freed (`check_mm`).
    pub rss: [Cell<i64>; NR_MM_COUNTERS],
    /// `pgtables_bytes`. Invariant: 4096 x (PUD + PMD + PTE tables, deposited
    /// included); zero when the mm is freed.
    pub pgtables_bytes: Cell<i64>,
    /// Lowest address of the top-down mmap area.
    pub mmap_base: u64,
    /// Set once the mm has been torn down by exit_mmap.
    pub exited: Cell<bool>,
    /// `mm_users` (`atomic_t`): tasks using the mm. Dropped by `mmput()`
    /// when a task exits; the last one tears the mm down. Lockless reader:
    /// change_pte_range's single-thread NUMA shortcut.
    pub users: AtomicCounter,
}

impl MmStruct {
    pub fn new(id: u64, pgd: Rc<Folio>) -> MmStruct {
        MmStruct {
            id,
            mmap_lock: RwSem::new(&MMAP_LOCK, id, MmapState::default()),
            pgd,
            page_table_lock: Rc::new(SpinLock::new(&PAGE_TABLE_LOCK, id, ())),
            rss: Default::default(),
            pgtables_bytes: Cell::new(0),
            mmap_base: 0x7f00_0000_0000,
            exited: Cell::new(false),
            users: AtomicCounter::new("mm->mm_users", id, 1),
        }
    }

    /// `add_mm_counter()`.
    pub fn add_mm_counter(&self, member: usize, value: i64) {
        let c = &self.rss[member];
        c.set(c.get() + value);
    }

    /// `mm_inc_nr_ptes()` and friends: one 4 KiB table.
    pub fn inc_pgtables_bytes(&self) {
        self.pgtables_bytes
            .set(self.pgtables_bytes.get() + PAGE_SIZE as i64);
    }

    pub fn dec_pgtables_bytes(&self) {
        self.pgtables_bytes
            .set(self.pgtables_bytes.get() - PAGE_SIZE as i64);
    }

    /// `%p` of this mm as the profile's kernel prints it (raw before v4.15,
    /// hashed after), of its address in [`crate::kaddr`]'s layout.
    pub fn pointer(&self, style: crate::profile::LogStyle) -> String {
        crate::kaddr::pointer(style, crate::kaddr::mm_struct(style, self))
    }
}

/// `struct vm_area_struct`.
pub struct Vma {
    /// The Rc this VMA lives in (anon_vma_chains point to it weakly).
    pub this: Weak<Vma>,
    pub mm: Weak<MmStruct>,
    /// First address. Protected by: mmap_lock (W) and the anon_vma lock (W)
    /// to change (`__split_vma`); readers hold mmap_lock (R) or the anon_vma
    /// lock (rmap walk). Invariant: page aligned, below `vm_end`.
    pub vm_start: Cell<u64>,
    /// End address (exclusive). Protected by: as `vm_start`.
    pub vm_end: Cell<u64>,
    /// `VM_*` flags. Protected by: mmap_lock (W) to change (mprotect,
    /// madvise); readers hold mmap_lock (R).
    pub vm_flags: Cell<u64>,
    /// Page protection derived from `vm_flags` (`vm_get_page_prot`).
    /// Protected by: as `vm_flags`; read with READ_ONCE by
    /// remove_migration_pmd/pte under the page-table lock only.
    pub vm_page_prot: Cell<PgProt>,
    /// Page offset of vm_start in the anon_vma's linear space.
    /// Protected by: as `vm_start`.
    pub vm_pgoff: Cell<u64>,
    /// Set once by `anon_vma_prepare()` under `page_table_lock`; read under
    /// mmap_lock (R). Invariant: once set, not reassigned while linked.
    pub anon_vma: OnceCell<Rc<AnonVma>>,
    /// `vma->anon_vma_chain`, the `same_vma` list in list order (head
    /// first): one `anon_vma_chain` per anon_vma this VMA is linked into —
    /// its own, and after fork those of its ancestors (whose pages it may
    /// still map copy-on-write). `anon_vma_chain_link()` adds at the head,
    /// so a forked VMA's own anon_vma comes first. Protected by: mmap_lock
    /// (W), or mmap_lock (R) with `mm->page_table_lock` in
    /// `__anon_vma_prepare()`. Invariant: contains an avc of `anon_vma`
    /// when that is set (INV-RMAP-ANON); empty otherwise.
    pub anon_vma_chain: RefCell<Vec<Rc<AnonVmaChain>>>,
    /// Freed by `vm_area_free()` (munmap, merge, exit). Rmap walks reach a
    /// VMA through the anon_vma tree under the anon_vma lock, which unlink
    /// takes first: they assert it is alive.
    pub life: Lifetime,
    /// `vm_file` (its `f_mapping`): set when the VMA is created and copied
    /// to VMAs split or moved from it. Immutable afterwards.
    pub vm_file: OnceCell<Rc<AddressSpace>>,
}

impl Vma {
    pub fn start(&self) -> u64 {
        self.vm_start.get()
    }

    pub fn end(&self) -> u64 {
        self.vm_end.get()
    }

    pub fn flags(&self) -> u64 {
        self.vm_flags.get()
    }

    /// `vma_is_accessible()`.
    pub fn is_accessible(&self) -> bool {
        self.flags() & vm_flags::VM_ACCESS_FLAGS != 0
    }

    /// `linear_page_index()`.
    pub fn linear_page_index(&self, addr: u64) -> u64 {
        ((addr - self.start()) >> PAGE_SHIFT) + self.vm_pgoff.get()
    }

    /// The permissions as /proc/PID/maps shows them: `rwxp`, `r--s`.
    pub fn perms(&self) -> String {
        let f = self.flags();
        let bit = |b: u64, c: char| if f & b != 0 { c } else { '-' };
        let shared = if f & vm_flags::VM_SHARED != 0 {
            's'
        } else {
            'p'
        };
        format!(
            "{}{}{}{shared}",
            bit(vm_flags::VM_READ, 'r'),
            bit(vm_flags::VM_WRITE, 'w'),
            bit(vm_flags::VM_EXEC, 'x')
        )
    }

    /// The kernel's `/proc/pid/maps` style line.
    pub fn describe(&self) -> String {
        format!(
            "{:x}-{:x} {} {:08x}",
            self.start(),
            self.end(),
            self.perms(),
            self.vm_pgoff.get() << PAGE_SHIFT
        )
    }
}

/// What holds a file's data when it is not in the page cache.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Backing {
    /// shmem/tmpfs (a memfd): the page cache is the only copy.
    Shmem,
    /// A regular file on a block device: `disk` holds its blocks.
    Disk,
}

/// `struct address_space` with its inode: a shmem file (memfd) or a
/// regular file on disk (seed 003).
pub struct AddressSpace {
    pub id: u64,
    pub backing: Backing,
    /// `inode->i_size` in bytes. Written under `i_mutex` (truncate,
    /// extending writes) with `i_size_write()`; read locklessly with
    /// `i_size_read()` by faults and reads: every access is a scheduling
    /// point. Invariant: no pte of the file maps a page at or past EOF
    /// once a truncate has returned (INV-PC-COHERENT).
    pub i_size: AtomicSlot,
    /// The page cache (`mapping->page_tree`, v2.6.22; `i_pages` today):
    /// page index → page. Protected by: `mapping->tree_lock`, this lock;
    /// lookups (`find_get_page()`) take it for reading. Invariant: every
    /// page here has `page->mapping` = this file and `page->index` = its
    /// key (INV-PC-COHERENT).
    pub i_pages: SpinLock<BTreeMap<u64, Rc<Folio>>>,
    /// `mapping->truncate_count` (v2.6.16..v3.0): bumped under
    /// `i_mmap_lock` by every `unmap_mapping_range()`; read locklessly by
    /// `do_no_page()` before `->nopage` and again under the PTL.
    pub truncate_count: AtomicCounter,
    /// `mapping->i_mmap_lock`, protecting the prio tree `i_mmap` and the
    /// list `i_mmap_nonlinear` of the VMAs that map the file. The model
    /// keeps no lists of its own: the VMAs of the file are those of every
    /// mm with this `vm_file` (`VM_NONLINEAR` ones on the nonlinear list),
    /// read under this lock. Taken by `unmap_mapping_range()` and
    /// `remap_file_pages()` (moving a VMA to `i_mmap_nonlinear`).
    pub i_mmap_lock: SpinLock<()>,
    /// `inode->i_mutex`: serialises truncate and writes.
    pub i_mutex: Mutex<()>,
    /// The file's blocks on disk, by page index (`Backing::Disk`).
    /// Protected by: the block layer (a bio is one step, announced on
    /// `bio`); written by write-back (`->writepage`) and O_DIRECT, read by
    /// `->readpage`.
    pub disk: RefCell<BTreeMap<u64, PageData>>,
    /// The block device's request queue: each bio to or from `disk` is an
    /// access to it (a read for `->readpage`, an update for a write), so
    /// the explorer orders reads of a block against writes to it.
    pub bio: AtomicCounter,
}

impl AddressSpace {
    pub fn new(id: u64, backing: Backing) -> AddressSpace {
        AddressSpace {
            id,
            backing,
            i_size: AtomicSlot::new("inode->i_size", id, 0),
            i_pages: SpinLock::new(&TREE_LOCK, id, BTreeMap::new()),
            truncate_count: AtomicCounter::new("mapping->truncate_count", id, 0),
            i_mmap_lock: SpinLock::new(&I_MMAP_LOCK, id, ()),
            i_mutex: Mutex::new(&I_MUTEX, id, ()),
            disk: RefCell::new(BTreeMap::new()),
            bio: AtomicCounter::new("bdev request queue", id, 0),
        }
    }

    /// Pages up to EOF (`DIV_ROUND_UP(i_size_read(inode), PAGE_SIZE)`),
    /// an announced read of `i_size`.
    pub fn max_index(&self, label: &'static str) -> u64 {
        self.i_size.read(label).div_ceil(PAGE_SIZE)
    }

    /// The size for checkers and reports (ghost access).
    pub fn size(&self) -> u64 {
        self.i_size.peek()
    }

    /// The cached page at `index`, for checkers and reports (ghost access).
    pub fn cached(&self, index: u64) -> Option<Rc<Folio>> {
        self.i_pages.peek().get(&index).cloned()
    }
}

/// `struct anon_vma_chain` (include/linux/rmap.h, v2.6.34 and v6.1): the
/// link between one VMA and one anon_vma, on the VMA's `same_vma` list
/// (`Vma::anon_vma_chain`) and on the anon_vma's `same_anon_vma` list
/// (v2.6.34 `anon_vma->head`) or interval tree (v6.1 `rb_root`, here in
/// insertion order: no walk in the model depends on the tree's order).
/// Allocated from `anon_vma_chain_cachep`, a plain slab cache: freed by
/// `anon_vma_chain_free()`, after which any use is a use after free.
pub struct AnonVmaChain {
    pub id: u64,
    /// `avc->vma`. Set at allocation, immutable. The VMA may be freed
    /// while an avc still points to it only through a kernel bug (the
    /// 2.6.34-rc3 `anon_vma_fork()` error path): rmap walks check it.
    pub vma: Weak<Vma>,
    /// `avc->anon_vma`. Set at allocation, immutable.
    pub anon_vma: Rc<AnonVma>,
    pub life: Lifetime,
}

/// `struct anon_vma` (v6.1; v2.6.34 has a spinlock and no refcount or
/// root beyond KSM's).
pub struct AnonVma {
    pub id: u64,
    /// `anon_vma->rwsem` with the anon_vma_chains linking the VMAs it
    /// covers (`same_anon_vma`, in list order: `anon_vma_chain_link()`
    /// appends). Writers: anon_vma_prepare, anon_vma_clone/fork (vma
    /// split, copy, fork) and unlink_anon_vmas; readers: rmap walks.
    pub rwsem: RwSem<Vec<Rc<AnonVmaChain>>>,
    /// `anon_vma->refcount`: one for being some VMA's anon_vma while its
    /// tree is not empty, one per child anon_vma whose root it is
    /// (`anon_vma_fork`), and the pins of `folio_get_anon_vma()`. Atomic;
    /// `atomic_inc_not_zero()` runs on a freed anon_vma under RCU
    /// (SLAB_TYPESAFE_BY_RCU keeps the memory an anon_vma), so it is read
    /// after the free too. Invariant: zero exactly when `life` is freed.
    pub refcount: AtomicCounter,
    /// `anon_vma->root`: the anon_vma of the oldest ancestor (itself for
    /// a root, `None` here). A child holds a reference on its root.
    pub root: Option<Rc<AnonVma>>,
    /// Freed by `anon_vma_free()` when the refcount drops to zero.
    pub life: Lifetime,
    /// `Kernel::anon_vma_frees` after this anon_vma's free (0 while live).
    pub freed_seq: Cell<u64>,
}

impl AnonVma {
    /// A fresh anon_vma, refcount 1, whose root is `root` (`anon_vma_fork()`
    /// from v2.6.36; `None`: its own root, or 2.6.34's rootless design).
    pub fn with_root(id: u64, root: Option<Rc<AnonVma>>) -> AnonVma {
        AnonVma {
            id,
            rwsem: RwSem::new(&ANON_VMA_LOCK, id, Vec::new()),
            refcount: AtomicCounter::new("anon_vma->refcount", id, 1),
            root,
            life: Lifetime::new(ANON_VMA_CLASS, id),
            freed_seq: Cell::new(0),
        }
    }
}
