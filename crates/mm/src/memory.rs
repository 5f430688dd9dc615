//! Page faults and unmapping: `handle_mm_fault()` down to
//! `do_anonymous_page()`, `do_wp_page()`, `do_numa_page()`, and the zap
//! path `unmap_page_range()` → `zap_pmd_range()` → `zap_pte_range()`.
//!
//! Models mm/memory.c (v6.1), and the pte-level paths of v3.12 where they
//! differ (`*_v3`: `pte_numa()` hinting faults, `vm_normal_page()` on the
//! paravirt `pte_pfn()`, the zap of v3.12). Entries are made, decoded and
//! stored through the profile's era (`Kernel::pfn_pte`, `Kernel::pte_pfn`,
//! `Kernel::set_pte_at`).

use std::rc::Rc;

use explore::{Finding, FindingKind};

use crate::arch::x86::pgtable::{
    is_swap_pmd, pmd_addr_end, pmd_devmap, pmd_none, pmd_protnone, pmd_trans_huge, pmd_write,
    pte_mkdirty, pte_mkspecial, pte_mkwrite, pte_mkyoung, pte_modify, pte_present, pte_protnone,
    pte_special, pte_val, pte_write, Pmd, Pte,
};
use crate::arch::x86::pgtable::{pte_dirty, pte_young, _PAGE_PRESENT};
use crate::arch::x86::pgtable_v3::{self, NumaBit};
use crate::arch::x86::swap::{is_migration_entry, pfn_swap_entry_to_pfn, pte_to_swp_entry};
use crate::debug::{print_bad_pte_v3, vm_normal_page_v3, PageRef};
use crate::huge_memory::{
    do_huge_pmd_anonymous_page, do_huge_pmd_numa_page, do_huge_pmd_wp_page, split_huge_pmd,
    zap_huge_pmd,
};
use crate::locking::{PMD_LOCK, PTE_LOCK};
use crate::mempolicy::numa_migrate_prep;
use crate::migrate::{migrate_misplaced_page, migration_entry_wait_on_locked};
use crate::mm_types::MM_FILEPAGES;
use crate::mm_types::{
    vm_flags, Folio, FolioKind, Kernel, MmStruct, MmapState, Task, Vma, HPAGE_PMD_SIZE,
    MM_ANONPAGES, PAGE_SIZE,
};
use crate::mm_types::{AddressSpace, MM_SHMEMPAGES};
use crate::pgtable::{
    alloc_table, free_table, pgd_offset, pmd_lock, pmd_offset, populate_val, pte_lockptr,
    pte_offset, pud_offset, table_of, upper_populate_val, EntryRef, Ptl,
};
use crate::pgtable_generic::{
    pmd_none_or_trans_huge_or_clear_bad, pte_offset_map_lock, spin_lock_derived,
};
use crate::profile::{PteLayout, PteOffsetMapLock};
use crate::rmap::{anon_vma_prepare, page_add_new_anon_rmap, page_remove_rmap};
use crate::shmem::{cached_folio, fault_around_window, file_index, shmem_fault};

/// `vm_fault_t` bits (include/linux/mm_types.h).
pub const VM_FAULT_OOM: u32 = 0x0001;
pub const VM_FAULT_SIGBUS: u32 = 0x0002;
pub const VM_FAULT_SIGSEGV: u32 = 0x0040;
pub const VM_FAULT_FALLBACK: u32 = 0x0800;
pub const VM_FAULT_ERROR: u32 = VM_FAULT_OOM | VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV;

/// `FAULT_FLAG_WRITE`.
pub const FAULT_FLAG_WRITE: u32 = 0x01;

/// `struct vm_fault`: what one fault carries down the handlers.
pub struct VmFault<'a> {
    pub k: &'a Kernel,
    pub task: &'a Task,
    pub vma: &'a Vma,
    pub address: u64,
    pub flags: u32,
    pub pmd: EntryRef,
    pub orig_pmd: u64,
}

impl VmFault<'_> {
    pub fn mm(&self) -> &MmStruct {
        &self.task.mm
    }

    pub fn is_write(&self) -> bool {
        self.flags & FAULT_FLAG_WRITE != 0
    }
}

/// `handle_mm_fault()` → `__handle_mm_fault()` (v6.1), called with
/// mmap_lock held for read.
pub fn handle_mm_fault(k: &Kernel, task: &Task, vma: &Vma, address: u64, flags: u32) -> u32 {
    let _f = explore::enter("handle_mm_fault");
    let mm = &task.mm;
    let pgd = pgd_offset(mm, address);
    let Some(pud) = pud_alloc(k, task, &pgd, address) else {
        return VM_FAULT_OOM;
    };
    let Some(pmd) = pmd_alloc(k, task, &pud, address) else {
        return VM_FAULT_OOM;
    };
    let mut vmf = VmFault {
        k,
        task,
        vma,
        address,
        flags,
        pmd,
        orig_pmd: 0,
    };
    if pmd_none(Pmd(vmf.pmd.read("__handle_mm_fault: pmd_none(*pmd)")))
        && hugepage_vma_check(k, vma)
    {
        let ret = do_huge_pmd_anonymous_page(&vmf);
        if ret & VM_FAULT_FALLBACK == 0 {
            return ret;
        }
    } else {
        vmf.orig_pmd = vmf.pmd.read("__handle_mm_fault: vmf.orig_pmd = *pmd");
        let orig = Pmd(vmf.orig_pmd);
        if is_swap_pmd(orig) {
            pmd_migration_entry_wait(&vmf);
            return 0;
        }
        if pmd_trans_huge(orig) || pmd_devmap(orig) {
            if pmd_protnone(orig) && vma.is_accessible() {
                return do_huge_pmd_numa_page(&vmf);
            }
            if vmf.is_write() && !pmd_write(orig) {
                let ret = do_huge_pmd_wp_page(&vmf);
                if ret & VM_FAULT_FALLBACK == 0 {
                    return ret;
                }
            } else {
                huge_pmd_set_accessed(&vmf);
                return 0;
            }
        }
    }
    handle_pte_fault(&vmf)
}

/// `huge_pmd_set_accessed()` (v6.1): under the pmd lock, mark the huge pmd
/// young (and dirty for a write) if it is still what the fault saw. Taking
/// the lock is what makes a fault on a transiently invalid pmd wait for the
/// updater instead of spinning.
fn huge_pmd_set_accessed(vmf: &VmFault<'_>) {
    let _f = explore::enter("huge_pmd_set_accessed");
    let ptl = pmd_lock(vmf.k, vmf.mm(), &vmf.pmd);
    if vmf
        .pmd
        .read_locked("huge_pmd_set_accessed: pmd_same(*pmd, orig_pmd) under pmd lock")
        == vmf.orig_pmd
    {
        let mut entry = crate::arch::x86::pgtable::pmd_mkyoung(Pmd(vmf.orig_pmd));
        if vmf.is_write() {
            entry = crate::arch::x86::pgtable::pmd_mkdirty(entry);
        }
        if entry.0 != vmf.orig_pmd {
            vmf.pmd.write("pmdp_set_access_flags", entry.0);
        }
    }
    ptl.unlock("spin_unlock(pmd_lock)");
}

/// `hugepage_vma_check()` for an anonymous fault: THP enabled for the VMA
/// and the aligned 2 MiB range inside it (`transhuge_vma_suitable()`).
pub fn hugepage_vma_check(k: &Kernel, vma: &Vma) -> bool {
    use crate::mm_types::Thp;
    let f = vma.flags();
    let enabled = match k.machine.thp {
        Thp::Always => f & vm_flags::VM_NOHUGEPAGE == 0,
        Thp::Madvise => f & vm_flags::VM_HUGEPAGE != 0,
        Thp::Never => false,
    };
    enabled && vma.end() - vma.start() >= HPAGE_PMD_SIZE
}

/// `transhuge_vma_suitable()`: the huge page at `haddr` fits in the VMA.
pub fn transhuge_vma_suitable(vma: &Vma, haddr: u64) -> bool {
    haddr >= vma.start() && haddr + HPAGE_PMD_SIZE <= vma.end()
}

/// `pmd_migration_entry_wait()`: sleep until the migration that owns the
/// entry unlocks the folio, then let the fault retry.
fn pmd_migration_entry_wait(vmf: &VmFault<'_>) {
    let _f = explore::enter("pmd_migration_entry_wait");
    let ptl = pmd_lock(vmf.k, vmf.mm(), &vmf.pmd);
    let v = Pmd(vmf
        .pmd
        .read_locked("pmd_migration_entry_wait: *pmd under pmd lock"));
    if !crate::arch::x86::swap::is_pmd_migration_entry(&vmf.k.profile.swap_types, v) {
        ptl.unlock("spin_unlock(pmd_lock)");
        return;
    }
    let pfn = pfn_swap_entry_to_pfn(crate::arch::x86::swap::pmd_to_swp_entry(v));
    let folio = vmf.k.mem.pfn_folio(pfn);
    ptl.unlock("spin_unlock(pmd_lock)");
    if let Some(folio) = folio {
        migration_entry_wait_on_locked(&folio);
    }
}

/// `__pud_alloc()` when the pgd entry is empty; returns the pud slot.
/// Page tables are allocated on the faulting task's node.
pub fn pud_alloc(k: &Kernel, task: &Task, pgd: &EntryRef, addr: u64) -> Option<EntryRef> {
    let v = pgd.read("pud_alloc: read *pgd");
    if let Some(pud) = pud_offset(k, v, addr) {
        return Some(pud);
    }
    populate_upper(k, task, pgd, 3)?;
    pud_offset(k, pgd.read("pud_offset: read *pgd"), addr)
}

/// `__pmd_alloc()` when the pud entry is empty; returns the pmd slot.
pub fn pmd_alloc(k: &Kernel, task: &Task, pud: &EntryRef, addr: u64) -> Option<EntryRef> {
    let v = pud.read("pmd_alloc: read *pud");
    if let Some(pmd) = pmd_offset(k, v, addr) {
        return Some(pmd);
    }
    populate_upper(k, task, pud, 2)?;
    pmd_offset(k, pud.read("pmd_offset: read *pud"), addr)
}

/// Allocates a table of `level` and installs it in `slot` under
/// `mm->page_table_lock` unless someone else did first.
fn populate_upper(k: &Kernel, task: &Task, slot: &EntryRef, level: u8) -> Option<()> {
    let mm = &task.mm;
    // A PMD table carries the split pmd lock; PUD tables need none.
    let class = (level == 2).then_some(&PMD_LOCK);
    let table = alloc_table(k, task.node, level, class)?;
    crate::arch::x86::xen::mmu_pv::xen_alloc_pt(k, mm, &table);
    let ptl = Ptl::lock(
        mm.page_table_lock.clone(),
        "spin_lock(&mm->page_table_lock)",
    );
    if slot.read_locked("__p*d_alloc: p*d_none(*slot) under page_table_lock") == 0 {
        mm.inc_pgtables_bytes();
        slot.write(
            if level == 2 {
                "pud_populate"
            } else {
                "p4d_populate"
            },
            upper_populate_val(k, &table),
        );
    } else {
        free_table(k, &table);
    }
    ptl.unlock("spin_unlock(&mm->page_table_lock)");
    Some(())
}

/// `__pte_alloc(mm, pmd)`: install a PTE table under the pmd lock unless
/// the pmd was populated meanwhile. Returns false on allocation failure.
pub fn pte_alloc(k: &Kernel, task: &Task, pmd: &EntryRef) -> bool {
    let mm = &task.mm;
    if !pmd_none(Pmd(pmd.read("pte_alloc: pmd_none(*pmd)"))) {
        return true;
    }
    let _f = explore::enter("__pte_alloc");
    let Some(table) = alloc_table(k, task.node, 1, Some(&PTE_LOCK)) else {
        return false;
    };
    crate::arch::x86::xen::mmu_pv::xen_alloc_pt(k, mm, &table);
    let ptl = pmd_lock(k, mm, pmd);
    if pmd_none(Pmd(
        pmd.read_locked("__pte_alloc: pmd_none(*pmd) under pmd lock")
    )) {
        mm.inc_pgtables_bytes();
        k.pv.set_pmd(pmd, Pmd(populate_val(k, &table)), "pmd_populate");
    } else {
        free_table(k, &table);
    }
    ptl.unlock("spin_unlock(pmd_lock)");
    true
}

/// `handle_pte_fault()` (v6.1).
fn handle_pte_fault(vmf: &VmFault<'_>) -> u32 {
    let _f = explore::enter("handle_pte_fault");
    let k = vmf.k;
    let mut orig_pte = None;
    if !pmd_none(Pmd(vmf.pmd.read("handle_pte_fault: pmd_none(*pmd)"))) {
        let v = Pmd(vmf.pmd.read("pmd_devmap_trans_unstable: read *pmd"));
        if pmd_devmap(v) || pmd_none_or_trans_huge_or_clear_bad(k, &vmf.pmd) {
            return 0;
        }
        let Some(pte) = pte_offset(k, vmf.pmd.read("pte_offset_map: read *pmd"), vmf.address)
        else {
            return 0;
        };
        let v = Pte(pte.read("vmf->orig_pte = *pte"));
        if !k.pte_none(v) {
            orig_pte = Some((pte, v));
        }
    }
    let Some((pte, orig)) = orig_pte else {
        return match vmf.vma.vm_file.get() {
            Some(file) if file.backing == crate::mm_types::Backing::Disk => {
                do_file_fault_v2_6(vmf, file)
            }
            Some(file) => do_fault(vmf, file),
            None => do_anonymous_page(vmf),
        };
    };
    if let Some(file) = vmf.vma.vm_file.get().filter(|_| {
        k.profile.knobs.pte_layout == PteLayout::V2_6_34
            && crate::arch::x86::swap::v2_6_34::pte_file(orig)
    }) {
        return do_nonlinear_file_fault(vmf, file, orig);
    }
    if let Some(numa) = k.profile.numa_bit() {
        return handle_pte_fault_v3(vmf, numa, &pte, orig);
    }
    if !pte_present(orig) {
        return do_swap_page(vmf, orig);
    }
    if pte_protnone(orig) && vmf.vma.is_accessible() {
        return do_numa_page(vmf, &pte, orig);
    }
    access_fault(vmf, orig)
}

/// `handle_pte_fault()` (v3.12) for a pte that is not none: `pte_numa()`
/// entries take a NUMA hinting fault (a PROT_NONE vma never gets here:
/// do_page_fault refused the access).
fn handle_pte_fault_v3(vmf: &VmFault<'_>, numa: NumaBit, pte: &EntryRef, orig: Pte) -> u32 {
    if !pgtable_v3::pte_present(numa, orig) {
        return do_swap_page(vmf, orig);
    }
    if pgtable_v3::pte_numa(numa, orig) {
        return do_numa_page_v3(vmf, numa, pte, orig);
    }
    access_fault(vmf, orig)
}

/// The tail of handle_pte_fault (v3.12 and v6.1): under the PTL, a write
/// to a read-only pte is a COW fault; otherwise set young (and dirty).
fn access_fault(vmf: &VmFault<'_>, orig: Pte) -> u32 {
    let k = vmf.k;
    let Some(map) = pte_offset_map_lock(k, vmf.mm(), &vmf.pmd, vmf.address) else {
        return 0;
    };
    if map
        .pte
        .read_locked("handle_pte_fault: pte_same(*pte, entry) under ptl")
        != pte_val(orig)
    {
        map.ptl.unlock("pte_unmap_unlock");
        return 0;
    }
    if vmf.is_write() && !pte_write(orig) {
        return do_wp_page(vmf, map.pte, map.ptl, orig);
    }
    let mut entry = pte_mkyoung(orig);
    if vmf.is_write() {
        entry = pte_mkdirty(entry);
    }
    if entry != orig {
        k.set_pte_at(&map.pte, entry, "ptep_set_access_flags");
    }
    map.ptl.unlock("pte_unmap_unlock");
    0
}

/// `do_swap_page()` for the only non-present PTEs the model creates:
/// migration entries, on which the fault waits.
fn do_swap_page(vmf: &VmFault<'_>, orig: Pte) -> u32 {
    if vmf.k.profile.knobs.pte_layout == PteLayout::V2_6_34 {
        return do_swap_page_v2_6_34(vmf, orig);
    }
    let _f = explore::enter("do_swap_page");
    let entry = pte_to_swp_entry(orig);
    if is_migration_entry(&vmf.k.profile.swap_types, entry) {
        if let Some(folio) = vmf.k.mem.pfn_folio(pfn_swap_entry_to_pfn(entry)) {
            migration_entry_wait_on_locked(&folio);
        }
        return 0;
    }
    explore::oops(
        Finding::new(
            FindingKind::Kernel,
            "do_swap_page()",
            "BUG: unexpected swap entry in an anonymous VMA",
        )
        .detail(format!(
            "pte {:#x}: the model has no swap device",
            pte_val(orig)
        )),
    )
}

/// `do_swap_page()` (v2.6.34): the only era with swap in the model, and a
/// body of its own (modern do_swap_page has swap-cache folios, exclusive
/// markers and batching the 2.6.34 one does not). Find the page in the
/// swap cache or read it in, lock it, re-check the pte under the PTL, map
/// it (writable at once if `reuse_swap_page()`), `page_add_anon_rmap()`
/// — whose first mapping decides `page->mapping` — and `swap_free()` the
/// pte's reference; a write the page could not be reused for goes on to
/// `do_wp_page()`. A VMA reaching here always has an anon_vma.
fn do_swap_page_v2_6_34(vmf: &VmFault<'_>, orig: Pte) -> u32 {
    use crate::arch::x86::swap::v2_6_34::{is_swap_pte, swp_offset};
    let _f = explore::enter("do_swap_page");
    let (k, vma, mm) = (vmf.k, vmf.vma, vmf.mm());
    if !is_swap_pte(orig) {
        crate::debug::print_bad_pte(k, mm, vma, vmf.address, orig);
        return VM_FAULT_SIGBUS;
    }
    let offset = swp_offset(orig);
    let Some(page) = crate::swap_state::read_swap_cache_async(k, vmf.task.node, offset) else {
        return VM_FAULT_OOM;
    };
    page.lock.lock("do_swap_page: lock_page");
    let Some(map) = pte_offset_map_lock(k, mm, &vmf.pmd, vmf.address) else {
        page.lock.unlock("unlock_page");
        put_folio(k, &page);
        return 0;
    };
    if map
        .pte
        .read_locked("do_swap_page: pte_same(*page_table, orig_pte)")
        != pte_val(orig)
    {
        // out_nomap: another fault mapped it first.
        map.ptl.unlock("pte_unmap_unlock");
        page.lock.unlock("unlock_page");
        put_folio(k, &page);
        return 0;
    }
    mm.add_mm_counter(MM_ANONPAGES, 1);
    mm.add_mm_counter(crate::mm_types::MM_SWAPENTS, -1);
    let mut pte = k.pfn_pte(page.pfn, vma.vm_page_prot.get());
    let mut write = vmf.is_write();
    let mut exclusive = false;
    if write && crate::swapfile::reuse_swap_page(k, &page) {
        pte = pte_mkwrite(pte_mkdirty(pte));
        write = false;
        exclusive = k.profile.knobs.swapin_exclusive_rmap;
    }
    k.set_pte_at(&map.pte, pte_mkyoung(pte), "do_swap_page: set_pte_at");
    crate::rmap::do_page_add_anon_rmap(k, &page, vma, vmf.address, exclusive);
    crate::swapfile::swap_free(k, offset);
    page.lock.unlock("do_swap_page: unlock_page");
    if write {
        return do_wp_page(vmf, map.pte, map.ptl, pte_mkyoung(pte));
    }
    map.ptl.unlock("pte_unmap_unlock");
    0
}

/// The zero page (`ZERO_PAGE(0)`), allocated on first use.
fn zero_folio(k: &Kernel) -> Option<Rc<Folio>> {
    if let Some(f) = k.zero_page.get() {
        return Some(f.clone());
    }
    // Allocated at boot in the kernel: never an injected failure.
    let f = k.mem.alloc_pages_nofail(0, 0, FolioKind::Zero)?;
    let _ = k.zero_page.set(f.clone());
    Some(f)
}

/// `do_anonymous_page()` (v6.1; v3.12 has the same steps: `mk_pte()`,
/// `pte_mkwrite(pte_mkdirty())`, PTL, rss, `page_add_new_anon_rmap()`,
/// `set_pte_at()`, with the era's paravirt `__pte()`/`set_pte_at()`).
fn do_anonymous_page(vmf: &VmFault<'_>) -> u32 {
    let _f = explore::enter("do_anonymous_page");
    let (k, vma) = (vmf.k, vmf.vma);
    if !pte_alloc(k, vmf.task, &vmf.pmd) {
        return VM_FAULT_OOM;
    }
    // Up to v6.4: another thread may have installed a huge pmd since the
    // pmd_none() test (we hold mmap_lock for read only), so
    // pte_offset_map() must not be used on it. From v6.5 the failing
    // pte_offset_map_lock() covers this.
    if k.profile.knobs.pte_offset_map_lock == PteOffsetMapLock::Pre65
        && pmd_none_or_trans_huge_or_clear_bad(k, &vmf.pmd)
    {
        explore::mark("do_anonymous_page: pmd became huge after pte_alloc");
        return 0;
    }
    if !vmf.is_write() {
        let Some(zero) = zero_folio(k) else {
            return VM_FAULT_OOM;
        };
        let entry = pte_mkspecial(k.pfn_pte(zero.pfn, vma.vm_page_prot.get()));
        return install_pte(vmf, entry, None);
    }
    if !anon_vma_prepare(k, vma) {
        return VM_FAULT_OOM;
    }
    let Some(folio) = k.mem.alloc_pages(vmf.task.node, 0, FolioKind::Anon) else {
        return VM_FAULT_OOM;
    };
    let entry = pte_mkwrite(pte_mkdirty(k.pfn_pte(folio.pfn, vma.vm_page_prot.get())));
    install_pte(vmf, entry, Some(folio))
}

/// `do_fault()` (v6.18) for a shmem file VMA: read, COW or shared fault.
fn do_fault(vmf: &VmFault<'_>, file: &Rc<AddressSpace>) -> u32 {
    let _f = explore::enter("do_fault");
    if !pte_alloc(vmf.k, vmf.task, &vmf.pmd) {
        return VM_FAULT_OOM;
    }
    if !vmf.is_write() {
        do_read_fault(vmf, file)
    } else if vmf.vma.flags() & vm_flags::VM_SHARED == 0 {
        do_cow_fault(vmf, file)
    } else {
        do_shared_fault(vmf, file)
    }
}

/// `do_read_fault()`: fault-around first (map cached neighbours, and the
/// page itself if cached), then `__do_fault()` and `finish_fault()`.
fn do_read_fault(vmf: &VmFault<'_>, file: &Rc<AddressSpace>) -> u32 {
    let _f = explore::enter("do_read_fault");
    let (k, vma) = (vmf.k, vmf.vma);
    for addr in fault_around_window(vma, vmf.address).step_by(PAGE_SIZE as usize) {
        if let Some(folio) = cached_folio(file, file_index(vma, addr)) {
            let entry = k.pfn_pte(folio.pfn, vma.vm_page_prot.get());
            finish_fault(vmf, addr, entry, folio, MM_SHMEMPAGES);
        }
    }
    if pte_mapped(vmf, vmf.address) {
        return 0;
    }
    let folio = match shmem_fault(k, file, file_index(vma, vmf.address)) {
        Ok(f) => f,
        Err(ret) => return ret,
    };
    let entry = k.pfn_pte(folio.pfn, vma.vm_page_prot.get());
    finish_fault(vmf, vmf.address, entry, folio, MM_SHMEMPAGES);
    0
}

/// `do_cow_fault()`: a write fault on a private file mapping copies the
/// file page (allocated in the page cache if it was a hole) into a new
/// anonymous page.
fn do_cow_fault(vmf: &VmFault<'_>, file: &Rc<AddressSpace>) -> u32 {
    let _f = explore::enter("do_cow_fault");
    let (k, vma) = (vmf.k, vmf.vma);
    if !anon_vma_prepare(k, vma) {
        return VM_FAULT_OOM;
    }
    let Some(new) = k.mem.alloc_pages(vmf.task.node, 0, FolioKind::Anon) else {
        return VM_FAULT_OOM;
    };
    let page = match shmem_fault(k, file, file_index(vma, vmf.address)) {
        Ok(f) => f,
        Err(ret) => {
            k.mem.free_folio(&new);
            return ret;
        }
    };
    new.data.borrow_mut()[0] = page.data.borrow()[0].clone();
    put_folio(k, &page);
    let entry = pte_mkwrite(pte_mkdirty(k.pfn_pte(new.pfn, vma.vm_page_prot.get())));
    finish_fault(vmf, vmf.address, entry, new, MM_ANONPAGES);
    0
}

/// `do_shared_fault()`: a write fault on a shared mapping maps the page
/// cache page writable and dirty (shmem has no `page_mkwrite`).
fn do_shared_fault(vmf: &VmFault<'_>, file: &Rc<AddressSpace>) -> u32 {
    let _f = explore::enter("do_shared_fault");
    let (k, vma) = (vmf.k, vmf.vma);
    let folio = match shmem_fault(k, file, file_index(vma, vmf.address)) {
        Ok(f) => f,
        Err(ret) => return ret,
    };
    let entry = pte_mkwrite(pte_mkdirty(k.pfn_pte(folio.pfn, vma.vm_page_prot.get())));
    finish_fault(vmf, vmf.address, entry, folio, MM_SHMEMPAGES);
    0
}

/// Whether the pte of `addr` (in the fault's PTE table) is not none.
fn pte_mapped(vmf: &VmFault<'_>, addr: u64) -> bool {
    let pmd = vmf.pmd.read("pte_offset_map: read *pmd");
    pte_offset(vmf.k, pmd, addr).is_some_and(|p| p.read("vmf->orig_pte = *pte") != 0)
}

/// `finish_fault()` / `set_pte_range()`: under the PTL, install `entry`
/// for `folio` at `addr` if the pte is still none; account it in rss
/// counter `member`. The folio's reference passes to the mapping, or is
/// dropped if the pte was taken meanwhile.
fn finish_fault(vmf: &VmFault<'_>, addr: u64, entry: Pte, folio: Rc<Folio>, member: usize) {
    let (k, mm) = (vmf.k, vmf.mm());
    let Some(map) = pte_offset_map_lock(k, mm, &vmf.pmd, addr) else {
        put_folio(k, &folio);
        return;
    };
    if !k.pte_none(Pte(map
        .pte
        .read_locked("finish_fault: pte_none(*pte) under ptl")))
    {
        map.ptl.unlock("pte_unmap_unlock");
        put_folio(k, &folio);
        return;
    }
    mm.add_mm_counter(member, 1);
    if folio.kind.get() == FolioKind::Anon {
        page_add_new_anon_rmap(k, &folio, vmf.vma, addr);
        folio.lru.set(true);
    } else {
        folio.mapcount.add_return(
            "page_add_file_rmap: atomic_inc_and_test(&page->_mapcount)",
            1,
        );
    }
    k.set_pte_at(&map.pte, entry, "set_pte_range");
    map.ptl.unlock("pte_unmap_unlock");
}

/// The locked tail of do_anonymous_page: install `entry` if the pte is
/// still none, accounting a new anonymous folio.
fn install_pte(vmf: &VmFault<'_>, entry: Pte, folio: Option<Rc<Folio>>) -> u32 {
    let (k, mm) = (vmf.k, vmf.mm());
    let Some(map) = pte_offset_map_lock(k, mm, &vmf.pmd, vmf.address) else {
        if let Some(f) = folio {
            k.mem.free_folio(&f);
        }
        return 0;
    };
    if !k.pte_none(Pte(map
        .pte
        .read_locked("do_anonymous_page: pte_none(*pte) under ptl")))
    {
        map.ptl.unlock("pte_unmap_unlock");
        if let Some(f) = folio {
            k.mem.free_folio(&f);
        }
        return 0;
    }
    if let Some(f) = &folio {
        mm.add_mm_counter(MM_ANONPAGES, 1);
        page_add_new_anon_rmap(k, f, vmf.vma, vmf.address);
        f.lru.set(true);
    }
    k.set_pte_at(&map.pte, entry, "set_pte_at");
    map.ptl.unlock("pte_unmap_unlock");
    0
}

/// `do_wp_page()` (v6.1) for private anonymous memory: reuse an exclusive
/// folio, or copy (from the zero page or a shared folio) into a new one.
/// Called with the PTE lock held; releases it.
fn do_wp_page(vmf: &VmFault<'_>, pte: EntryRef, ptl: Ptl, orig: Pte) -> u32 {
    let _f = explore::enter("do_wp_page");
    let k = vmf.k;
    if vmf.vma.flags() & vm_flags::VM_SHARED != 0 {
        // wp_page_shared(): shmem and the model's file system have no
        // page_mkwrite, so it goes straight to wp_page_reuse(); a regular
        // file's page is dirtied (`set_page_dirty_balance()`, v2.6.22).
        if let Some(page) = k.mem.pfn_folio(k.pte_pfn(orig)) {
            crate::filemap::set_page_dirty(&page);
        }
        return wp_page_reuse(k, &pte, ptl, orig);
    }
    let old = (!pte_special(orig))
        .then(|| k.mem.pfn_folio(k.pte_pfn(orig)))
        .flatten();
    // v6.1's do_wp_page reuses a page that is PageAnonExclusive() (a
    // subpage of a PTE-mapped THP too) without looking further; else
    // wp_can_reuse_anon_folio() (v6.18) reuses a small folio only if
    // nobody else holds it (after fork, the other process's mapping holds
    // a reference), makes it this VMA's (folio_move_anon_rmap()) and
    // exclusive again. Large folios are never shared by fork in the model
    // (dup_mmap refuses to copy one): always this mm's.
    if let Some(f) = old.as_ref().filter(|f| f.kind.get() == FolioKind::Anon) {
        if crate::rmap::has_page_anon_exclusive(k) && crate::rmap::page_anon_exclusive(f) {
            return wp_page_reuse(k, &pte, ptl, orig);
        }
        let reuse = if k.profile.knobs.pte_layout == PteLayout::V2_6_34 {
            reuse_anon_page_v2_6_34(k, f)
        } else {
            f.order > 0
                || f.refcount
                    .read("wp_can_reuse_anon_folio: folio_ref_count() == 1")
                    == 1
        };
        if reuse {
            f.anon_vma.write(
                "folio_move_anon_rmap: WRITE_ONCE(folio->mapping)",
                vmf.vma.anon_vma.get().cloned(),
            );
            f.anon_exclusive.set(true);
            return wp_page_reuse(k, &pte, ptl, orig);
        }
    }
    // The copy runs without the PTE lock: hold the old page (`get_page`
    // before `pte_unmap_unlock`) so that reclaim or an unmap cannot free
    // it under the copy.
    if let Some(f) = &old {
        get_folio(f);
    }
    ptl.unlock("pte_unmap_unlock");
    let ret = wp_page_copy(vmf, orig, old.as_ref());
    if let Some(f) = &old {
        put_folio(k, f);
    }
    ret
}

/// do_wp_page's reuse test for an anonymous page (v2.6.34): under the
/// page lock, `reuse_swap_page()` — its mapcount plus the swap references
/// of its slot at most one (the page then leaves the swap cache). The
/// caller holds the PTE lock, so the page lock is only tried, as the
/// kernel's `trylock_page()`; the kernel then sleeps for it and re-checks
/// the pte, the model copies instead.
fn reuse_anon_page_v2_6_34(k: &Kernel, page: &Folio) -> bool {
    if !page.lock.try_lock("do_wp_page: trylock_page(old_page)") {
        return false;
    }
    let reuse = crate::swapfile::reuse_swap_page(k, page);
    page.lock.unlock("do_wp_page: unlock_page(old_page)");
    reuse
}

/// `wp_page_reuse()` (v6.18): the faulting pte becomes young, dirty and
/// writable in place; releases the PTE lock.
fn wp_page_reuse(k: &Kernel, pte: &EntryRef, ptl: Ptl, orig: Pte) -> u32 {
    k.set_pte_at(
        pte,
        pte_mkyoung(pte_mkdirty(pte_mkwrite(orig))),
        "wp_page_reuse: ptep_set_access_flags",
    );
    ptl.unlock("pte_unmap_unlock");
    0
}

/// `wp_page_copy()`: allocate, copy, and replace the pte if unchanged.
fn wp_page_copy(vmf: &VmFault<'_>, orig: Pte, old: Option<&Rc<Folio>>) -> u32 {
    let _f = explore::enter("wp_page_copy");
    let (k, vma, mm) = (vmf.k, vmf.vma, vmf.mm());
    if !anon_vma_prepare(k, vma) {
        return VM_FAULT_OOM;
    }
    let Some(new) = k.mem.alloc_pages(vmf.task.node, 0, FolioKind::Anon) else {
        return VM_FAULT_OOM;
    };
    if let Some(old) = old {
        let sub = (k.pte_pfn(orig) - old.pfn) as usize;
        new.data.borrow_mut()[0] = old.data.borrow()[sub].clone();
    }
    let Some(map) = pte_offset_map_lock(k, mm, &vmf.pmd, vmf.address) else {
        k.mem.free_folio(&new);
        return 0;
    };
    if map
        .pte
        .read_locked("wp_page_copy: pte_same(*pte, orig) under ptl")
        != pte_val(orig)
    {
        map.ptl.unlock("pte_unmap_unlock");
        k.mem.free_folio(&new);
        return 0;
    }
    if old.is_none_or(|f| f.kind.get() != FolioKind::Anon) {
        mm.add_mm_counter(MM_ANONPAGES, 1);
    }
    page_add_new_anon_rmap(k, &new, vma, vmf.address);
    new.lru.set(true);
    let entry = pte_mkwrite(pte_mkdirty(k.pfn_pte(new.pfn, vma.vm_page_prot.get())));
    k.set_pte_at(&map.pte, entry, "ptep_clear_flush + set_pte_at");
    match old {
        Some(old) if old.kind.get() == FolioKind::Anon => {
            page_remove_rmap(old, false);
            put_folio(k, old);
        }
        Some(old) if matches!(old.kind.get(), FolioKind::Shmem | FolioKind::File) => {
            let member = if old.kind.get() == FolioKind::File {
                MM_FILEPAGES
            } else {
                MM_SHMEMPAGES
            };
            mm.add_mm_counter(member, -1);
            page_remove_rmap(old, false);
            put_folio(k, old);
        }
        _ => {}
    }
    map.ptl.unlock("pte_unmap_unlock");
    0
}

/// `do_numa_page()`: a NUMA hinting fault on a PROT_NONE pte. v6.1
/// restores the write bit kept on the hint (`pte_savedwrite(orig_pte)`);
/// v6.5 (`numa_savedwrite` off) decides it with `can_change_pte_writable()`
/// and maps the page back read-only after a failed migration.
fn do_numa_page(vmf: &VmFault<'_>, pte: &EntryRef, orig: Pte) -> u32 {
    let _f = explore::enter("do_numa_page");
    let (k, vma) = (vmf.k, vmf.vma);
    let savedwrite = k.profile.knobs.numa_savedwrite;
    let was_writable = savedwrite && pte_write(orig);
    let Some(ptl) = lock_if_unchanged(vmf, pte, orig) else {
        return 0;
    };
    let modified = pte_modify(orig, vma.vm_page_prot.get());
    let writable = if savedwrite {
        was_writable
    } else {
        pte_write(modified)
            || (crate::huge_memory::wants_manual_write_upgrade(vma)
                && can_change_pte_writable(k, modified))
    };
    let restored = pte_mkyoung(modified);
    let restored = if writable {
        pte_mkwrite(restored)
    } else {
        restored
    };
    let folio = k
        .mem
        .pfn_folio(k.pte_pfn(orig))
        .filter(|f| f.kind.get() == FolioKind::Anon);
    let target = folio
        .as_ref()
        .and_then(|f| numa_migrate_prep(k, vmf.task, f));
    let (Some(folio), Some(target)) = (folio, target) else {
        pte.write("do_numa_page: restore pte (out_map)", pte_val(restored));
        ptl.unlock("pte_unmap_unlock");
        return 0;
    };
    ptl.unlock("pte_unmap_unlock");
    if migrate_misplaced_page(k, &folio, vma, target) {
        return 0;
    }
    let restored = if savedwrite {
        restored
    } else {
        pte_mkyoung(modified)
    };
    let ptl = pte_lock_from_pmd(vmf);
    if pte.read_locked("do_numa_page: pte_same(*pte, orig) under ptl") == pte_val(orig) {
        pte.write("do_numa_page: restore pte (out_map)", pte_val(restored));
    }
    ptl.unlock("pte_unmap_unlock");
    0
}

/// `can_change_pte_writable()` (v6.5) as do_numa_page uses it: not
/// PROT_NONE, and an exclusive anonymous page (`PageAnonExclusive()`,
/// read under the PTE lock: a page fork shared is not, even once the
/// other process's mapping is gone, until a COW fault reuses it).
/// Soft-dirty and userfaultfd are not modelled.
fn can_change_pte_writable(k: &Kernel, pte: Pte) -> bool {
    !crate::arch::x86::pgtable::pte_protnone(pte)
        && k.mem.pfn_folio(k.pte_pfn(pte)).is_some_and(|f| {
            f.kind.get() == FolioKind::Anon && crate::rmap::page_anon_exclusive(&f)
        })
}

/// `do_numa_page()` (v3.12): a hinting fault on a `pte_numa()` entry.
/// The pte is made present again with `pte_mknonnuma()` on the raw value
/// (native flag operations before 29c7787075c9), then the page is looked
/// up through the paravirt `pte_pfn()`.
fn do_numa_page_v3(vmf: &VmFault<'_>, numa: NumaBit, pte: &EntryRef, orig: Pte) -> u32 {
    let _f = explore::enter("do_numa_page");
    let (k, vma) = (vmf.k, vmf.vma);
    let Some(ptl) = lock_if_unchanged(vmf, pte, orig) else {
        return 0;
    };
    explore::mark("do_numa_page: hinting fault on a pte_numa() pte");
    let entry = k.pte_mknonnuma(numa, orig);
    k.set_pte_at(pte, entry, "do_numa_page: set_pte_at(pte_mknonnuma)");
    let page = vm_normal_page_v3(k, vmf.mm(), vma, vmf.address, entry);
    let target = match &page {
        Some(PageRef::Folio { folio, .. }) if folio.kind.get() == FolioKind::Anon => {
            numa_migrate_prep(k, vmf.task, folio)
        }
        _ => None,
    };
    ptl.unlock("pte_unmap_unlock");
    if target.is_some() {
        explore::unsupported(
            "a misplaced small page under a 3.x-era profile (3.12 migrate_misplaced_page is not \
             modelled); run the faulting thread on the page's node",
        );
    }
    0
}

/// do_numa_page's start: take the PTE lock and go on only if the pte is
/// still `orig` (`pte_same()`), else unlock.
fn lock_if_unchanged(vmf: &VmFault<'_>, pte: &EntryRef, orig: Pte) -> Option<Ptl> {
    let ptl = pte_lock_from_pmd(vmf);
    if pte.read_locked("do_numa_page: pte_same(*pte, vmf->orig_pte) under ptl") != pte_val(orig) {
        ptl.unlock("pte_unmap_unlock");
        return None;
    }
    Some(ptl)
}

/// `vmf->ptl = pte_lockptr(mm, vmf->pmd); spin_lock(vmf->ptl);` as
/// do_numa_page does it: the lock is derived from another read of `*pmd`.
fn pte_lock_from_pmd(vmf: &VmFault<'_>) -> Ptl {
    let v = vmf.pmd.read("pte_lockptr: read *pmd");
    spin_lock_derived(vmf.k, pte_lockptr(vmf.k, vmf.mm(), v), v)
}

/// `folio_put()`: drop a reference, freeing the folio at zero.
pub fn put_folio(k: &Kernel, folio: &Folio) {
    let r = folio
        .refcount
        .add_return("folio_put: folio_put_testzero()", -1);
    if r == 0 {
        k.mem.free_folio(folio);
    } else if r < 0 {
        explore::oops(crate::debug::bad_page(
            folio,
            "nonzero _refcount: page refcount underflow",
        ));
    }
}

/// `folio_get()`.
pub fn get_folio(folio: &Folio) {
    folio.refcount.add_return("folio_get: folio_ref_inc()", 1);
}

/// `zap_page_range()` / `unmap_page_range()` over `[start, end)` of `vma`,
/// with mmap_lock held (read for MADV_DONTNEED, write for munmap/exit).
pub fn unmap_page_range(k: &Kernel, mm: &MmStruct, vma: &Vma, start: u64, end: u64) {
    unmap_page_range_details(k, mm, vma, start, end, None);
}

/// `struct zap_details` (v2.6.22): what `unmap_mapping_range()` asks the
/// zap to leave alone.
#[derive(Clone, Copy)]
pub struct ZapDetails {
    /// `check_mapping`: zap only pages whose `page->mapping` is this file
    /// (so private COW copies stay); `None` with `even_cows`.
    pub check_mapping: Option<u64>,
    /// `nonlinear_vma`: the VMA is nonlinear, so a page is zapped only if
    /// its `page->index` is in the range, and one not at its linear place
    /// leaves a file pte behind.
    pub nonlinear: bool,
    pub first_index: u64,
    pub last_index: u64,
}

/// `unmap_page_range(tlb, vma, start, end, details)`.
pub fn unmap_page_range_details(
    k: &Kernel,
    mm: &MmStruct,
    vma: &Vma,
    start: u64,
    end: u64,
    details: Option<&ZapDetails>,
) {
    let _f = explore::enter("unmap_page_range");
    let mut addr = start;
    while addr < end {
        let next = crate::arch::x86::pgtable::pud_addr_end(addr, end);
        let pgd = pgd_offset(mm, addr).read("zap: read *pgd");
        if let Some(pud) = pud_offset(k, pgd, addr) {
            if let Some(pmd) = pmd_offset(k, pud.read("zap: read *pud"), addr) {
                zap_pmd_range(k, mm, vma, pmd, addr, next, details);
            }
        }
        addr = next;
    }
}

/// `zap_pmd_range()` (v6.1).
fn zap_pmd_range(
    k: &Kernel,
    mm: &MmStruct,
    vma: &Vma,
    first: EntryRef,
    start: u64,
    end: u64,
    details: Option<&ZapDetails>,
) {
    let _f = explore::enter("zap_pmd_range");
    let mut addr = start;
    let mut pmd = first;
    loop {
        let next = pmd_addr_end(addr, end);
        if zap_one_pmd(k, mm, vma, &pmd, (addr, next), details) == Zapped::Retry {
            explore::mark("zap_pmd_range: pte_offset_map_lock failed, retry the pmd");
            continue;
        }
        addr = next;
        if addr >= end {
            return;
        }
        pmd = EntryRef::new(pmd.table.clone(), pmd.index + 1);
    }
}

#[derive(PartialEq, Eq)]
enum Zapped {
    Done,
    /// v6.5: zap_pte_range could not map the table (`addr != next`,
    /// `pmd--`): the same pmd again.
    Retry,
}

/// The body of zap_pmd_range's loop for one pmd. Each test of the huge
/// condition reads `*pmd` again, as the kernel's `is_swap_pmd(*pmd) ||
/// pmd_trans_huge(*pmd) || pmd_devmap(*pmd)` does (v5.5, v6.1, v6.5).
/// Then v6.1 and older skip with `pmd_none_or_trans_huge_or_clear_bad()`
/// (one snapshot); v6.5 (3db82b9374ca) with a plain `pmd_none(*pmd)`,
/// leaving the rest to `pte_offset_map_lock()`, and retries the pmd if
/// that fails.
fn zap_one_pmd(
    k: &Kernel,
    mm: &MmStruct,
    vma: &Vma,
    pmd: &EntryRef,
    (addr, next): (u64, u64),
    details: Option<&ZapDetails>,
) -> Zapped {
    let huge = is_swap_pmd(Pmd(pmd.read("zap_pmd_range: is_swap_pmd(*pmd)")))
        || pmd_trans_huge(Pmd(pmd.read("zap_pmd_range: pmd_trans_huge(*pmd)")))
        || pmd_devmap(Pmd(pmd.read("zap_pmd_range: pmd_devmap(*pmd)")));
    if huge {
        if next - addr != HPAGE_PMD_SIZE {
            split_huge_pmd(k, mm, vma, pmd, addr);
        } else if zap_huge_pmd(k, mm, vma, pmd, addr) {
            return Zapped::Done;
        }
    }
    match k.profile.knobs.pte_offset_map_lock {
        PteOffsetMapLock::Pre65 => {
            if !pmd_none_or_trans_huge_or_clear_bad(k, pmd) {
                zap_pte_range(k, mm, vma, pmd, (addr, next), details);
            }
            Zapped::Done
        }
        PteOffsetMapLock::Post65 => {
            if pmd_none(Pmd(pmd.read("zap_pmd_range: pmd_none(*pmd)")))
                || zap_pte_range(k, mm, vma, pmd, (addr, next), details)
            {
                Zapped::Done
            } else {
                Zapped::Retry
            }
        }
    }
}

/// `zap_pte_range()` (v6.1) for anonymous memory. Returns false if the
/// table could not be mapped (v6.5's `pte_offset_map_lock()` failing).
fn zap_pte_range(
    k: &Kernel,
    mm: &MmStruct,
    vma: &Vma,
    pmd: &EntryRef,
    (start, end): (u64, u64),
    details: Option<&ZapDetails>,
) -> bool {
    let _f = explore::enter("zap_pte_range");
    let Some(map) = pte_offset_map_lock(k, mm, pmd, start) else {
        return false;
    };
    let mut addr = start;
    while addr < end {
        let pte = EntryRef::new(
            map.pte.table.clone(),
            crate::arch::x86::pgtable::pte_index(addr) as usize,
        );
        let v = Pte(pte.read_locked("zap_pte_range: *pte under ptl"));
        if !k.pte_none(v) && details.is_none_or(|d| zap_wanted(k, vma, addr, v, d)) {
            pte.xchg("ptep_get_and_clear_full", 0);
            if let Some(index) = details.and_then(|d| nonlinear_leftover(k, vma, addr, v, d)) {
                pte.write(
                    "zap_pte_range: set_pte_at(pgoff_to_pte(page->index))",
                    crate::arch::x86::swap::v2_6_34::pgoff_to_pte(index).0,
                );
            }
            zap_one_pte(k, mm, vma, addr, v);
        }
        addr += PAGE_SIZE;
    }
    map.ptl.unlock("pte_unmap_unlock");
    true
}

/// Whether `unmap_mapping_range()`'s zap takes the entry `v` at `addr`
/// (v2.6.22 zap_pte_range with details): a present page is skipped if it
/// is not the file's (`check_mapping`: private COW copies, and orphans
/// whose `page->mapping` is NULL), or, in a nonlinear VMA, if its index
/// is outside the range; non-present entries stay (file ptes always, swap
/// entries unless the truncation zaps COW copies' swap entries too).
fn zap_wanted(k: &Kernel, vma: &Vma, addr: u64, v: Pte, d: &ZapDetails) -> bool {
    if !pte_present(v) {
        return k.profile.knobs.zap_cow_swap_entries
            && d.check_mapping.is_none()
            && crate::arch::x86::swap::v2_6_34::is_swap_pte(v);
    }
    let Some(page) = k.mem.pfn_folio(k.pte_pfn(v)) else {
        return true;
    };
    let _ = (vma, addr);
    if let Some(file) = d.check_mapping {
        let theirs = page.kind.get() == FolioKind::File
            && page
                .mapping
                .read("zap_pte_range: details->check_mapping != page->mapping")
                == Some(file);
        if !theirs {
            return false;
        }
    }
    !d.nonlinear || (d.first_index..=d.last_index).contains(&page.index.get())
}

/// The file pte a nonlinear zap leaves for a page mapped away from its
/// linear place (`pgoff_to_pte(page->index)`), so a fault maps it again.
fn nonlinear_leftover(k: &Kernel, vma: &Vma, addr: u64, v: Pte, d: &ZapDetails) -> Option<u64> {
    if !d.nonlinear {
        return None;
    }
    let page = k.mem.pfn_folio(k.pte_pfn(v))?;
    let index = page.index.get();
    (vma.linear_page_index(addr) != index).then_some(index)
}

/// Accounting for one zapped pte: rss, rmap, and the page reference
/// (`vm_normal_page()`, `page_remove_rmap()`, `tlb_remove_page()`).
fn zap_one_pte(k: &Kernel, mm: &MmStruct, vma: &Vma, addr: u64, v: Pte) {
    if let Some(numa) = k.profile.numa_bit() {
        return zap_one_pte_v3(k, mm, vma, addr, numa, v);
    }
    if pte_present(v) {
        if pte_special(v) {
            return;
        }
        let Some(folio) = crate::debug::vm_normal_page(k, mm, vma, addr, v) else {
            return;
        };
        let member = match folio.kind.get() {
            FolioKind::Shmem => MM_SHMEMPAGES,
            FolioKind::File => {
                if pte_dirty(v) {
                    crate::filemap::set_page_dirty(&folio);
                }
                MM_FILEPAGES
            }
            _ => MM_ANONPAGES,
        };
        mm.add_mm_counter(member, -1);
        page_remove_rmap(&folio, false);
        if k.profile.knobs.pte_layout == PteLayout::V2_6_34 {
            verify_anon_page(k, vma, &folio);
            crate::swap_state::free_swap_cache(k, &folio);
        }
        put_folio(k, &folio);
        return;
    }
    if k.profile.knobs.pte_layout == PteLayout::V2_6_34 {
        return zap_swap_pte_v2_6_34(k, mm, vma, addr, v);
    }
    let entry = pte_to_swp_entry(v);
    if is_migration_entry(&k.profile.swap_types, entry) {
        // The migration owns the folio; only the rss moves.
        mm.add_mm_counter(MM_ANONPAGES, -1);
        return;
    }
    crate::debug::print_bad_pte(k, mm, vma, addr, v);
}

/// Linus Torvalds' `verify_anon_page()` (seed 002 thread, knob
/// `verify_anon_page`; never merged), called by zap_pte_range for each
/// anonymous page it unmaps: WARN_ONCE unless the page's anon_vma is on
/// the VMA's chain. The WARNING line is the one that fired under
/// Borislav Petkov's load: mm/memory.c:909 of the patched file, inlined
/// into unmap_vmas.
fn verify_anon_page(k: &Kernel, vma: &Vma, page: &Folio) {
    if !k.profile.knobs.verify_anon_page || page.kind.get() != FolioKind::Anon {
        return;
    }
    let need = page.anon_vma.peek();
    let message = match (vma.anon_vma.get(), &need) {
        (None, _) => "anonymous page in vma without anon_vma",
        (Some(_), Some(need))
            if vma
                .anon_vma_chain
                .borrow()
                .iter()
                .any(|avc| Rc::ptr_eq(&avc.anon_vma, need)) =>
        {
            return;
        }
        _ => "page->mapping does not exist in vma chain",
    };
    let mut f = Finding::new(
        FindingKind::Kernel,
        "verify_anon_page()",
        format!("WARNING: at mm/memory.c:909 unmap_vmas() — {message}"),
    )
    .detail("------------[ cut here ]------------")
    .detail("WARNING: at mm/memory.c:909 unmap_vmas()")
    .detail(message)
    .detail(format!(
        "Pid: {}, comm: {} Not tainted {}",
        crate::debug::task_pid(),
        explore::rt::current_comm(),
        k.profile.name.trim_start_matches("linux-")
    ));
    for line in crate::debug::call_trace(k.profile.log_style) {
        f = f.detail(line);
    }
    explore::raise(f);
}

/// The non-present branch of zap_pte_range (v2.6.34): a swap pte gives
/// its slot reference back (`free_swap_and_cache()`); anything else is a
/// Bad page map.
fn zap_swap_pte_v2_6_34(k: &Kernel, mm: &MmStruct, vma: &Vma, addr: u64, v: Pte) {
    use crate::arch::x86::swap::v2_6_34::{is_swap_pte, pte_file, swp_offset};
    if pte_file(v) && vma.flags() & vm_flags::VM_NONLINEAR != 0 {
        return;
    }
    if !is_swap_pte(v) {
        crate::debug::print_bad_pte(k, mm, vma, addr, v);
        return;
    }
    mm.add_mm_counter(crate::mm_types::MM_SWAPENTS, -1);
    crate::swapfile::free_swap_and_cache(k, swp_offset(v));
}

/// The body of zap_pte_range's loop for one pte (v3.12): the page is found
/// through the paravirt `pte_pfn()`; an rss counter by `PageAnon()`; after
/// `page_remove_rmap()`, a negative mapcount is a Bad page map.
fn zap_one_pte_v3(k: &Kernel, mm: &MmStruct, vma: &Vma, addr: u64, numa: NumaBit, v: Pte) {
    if !pgtable_v3::pte_present(numa, v) {
        // A swap or file pte: the model has neither, so free_swap_and_cache()
        // of whatever this is fails.
        print_bad_pte_v3(k, mm, vma, addr, v, None);
        return;
    }
    if v.0 & _PAGE_PRESENT == 0 {
        explore::mark("zap_pte_range: unmapping a non-present PROT_NONE/NUMA pte");
    }
    let Some(page) = vm_normal_page_v3(k, mm, vma, addr, v) else {
        return;
    };
    if page.is_anon() {
        mm.add_mm_counter(MM_ANONPAGES, -1);
    } else {
        if let PageRef::Frame(pfn) = page {
            k.mem.update_stray_page(pfn, |s| {
                s.dirty |= pte_dirty(v);
                s.referenced |= pte_young(v);
            });
        }
        mm.add_mm_counter(MM_FILEPAGES, -1);
    }
    match &page {
        PageRef::Folio { folio, .. } => page_remove_rmap(folio, false),
        PageRef::Frame(pfn) => k.mem.update_stray_page(*pfn, |s| s.mapcount -= 1),
    }
    if page.mapcount(k) < 0 {
        print_bad_pte_v3(k, mm, vma, addr, v, Some(&page));
    }
    // tlb_remove_page() → put_page() once the TLB is flushed.
    match &page {
        PageRef::Folio { folio, .. } => put_folio(k, folio),
        PageRef::Frame(pfn) => k.mem.update_stray_page(*pfn, |s| s.refcount -= 1),
    }
}

/// `free_pgtables()`: free every page table whose span no VMA covers any
/// more (after munmap, or all of them at exit). Called with mmap_lock held
/// for write, after the range was zapped.
pub fn free_pgtables(k: &Kernel, mm: &MmStruct, mmap: &MmapState) {
    let _f = explore::enter("free_pgtables");
    let covered = |lo: u64, len: u64| {
        mmap.vmas
            .iter()
            .any(|v| v.start() < lo + len && v.end() > lo)
    };
    let pgd = mm.pgd.clone();
    for i in 0..512 {
        let Some(pud_table) = table_of(k, pgd.entries().peek(i)) else {
            continue;
        };
        let pud_base = (i as u64) << 39;
        for j in 0..512 {
            let Some(pmd_table) = table_of(k, pud_table.entries().peek(j)) else {
                continue;
            };
            let pmd_base = pud_base + ((j as u64) << 30);
            for m in 0..512 {
                let base = pmd_base + ((m as u64) << 21);
                if covered(base, HPAGE_PMD_SIZE) {
                    continue;
                }
                if let Some(pte_table) = table_of(k, pmd_table.entries().peek(m)) {
                    free_one_table(
                        k,
                        mm,
                        &pmd_table,
                        m,
                        &pte_table,
                        "pmd_clear (free_pte_range)",
                    );
                }
            }
            if !covered(pmd_base, 1 << 30) {
                free_one_table(
                    k,
                    mm,
                    &pud_table,
                    j,
                    &pmd_table,
                    "pud_clear (free_pmd_range)",
                );
            }
        }
        if !covered(pud_base, 1 << 39) {
            free_one_table(k, mm, &pgd, i, &pud_table, "p4d_clear (free_pud_range)");
        }
    }
}

/// Clears `parent[index]` and frees the table it pointed to.
fn free_one_table(
    k: &Kernel,
    mm: &MmStruct,
    parent: &Folio,
    index: usize,
    table: &Folio,
    label: &'static str,
) {
    parent.entries().write(index, label, 0);
    free_table(k, table);
    mm.dec_pgtables_bytes();
}

/// Whether the vma maps `addr` writable (for the user-access permission check).
pub fn vma_allows(vma: &Vma, write: bool) -> bool {
    let f = vma.flags();
    if write {
        f & vm_flags::VM_WRITE != 0
    } else {
        f & (vm_flags::VM_READ | vm_flags::VM_WRITE | vm_flags::VM_EXEC) != 0
    }
}

/// The VMAs that map `file`, in every live mm: the model's `i_mmap` prio
/// tree and `i_mmap_nonlinear` list (see `AddressSpace::i_mmap_lock`).
pub fn file_vmas(k: &Kernel, file: &AddressSpace) -> Vec<(Rc<MmStruct>, Rc<Vma>)> {
    let mms = k.mms.borrow().clone();
    let mut out = Vec::new();
    for mm in mms.iter().filter(|m| !m.exited.get()) {
        for vma in &mm.mmap_lock.peek().vmas {
            if vma.vm_file.get().is_some_and(|f| f.id == file.id) {
                out.push((mm.clone(), vma.clone()));
            }
        }
    }
    out
}

/// `mapping_mapped()`: some VMA maps the file (`i_mmap` or
/// `i_mmap_nonlinear` not empty).
pub fn mapping_mapped(k: &Kernel, file: &AddressSpace) -> bool {
    !file_vmas(k, file).is_empty()
}

/// `unmap_mapping_range(mapping, holebegin, holelen, even_cows)` (v2.6.22):
/// under `i_mmap_lock`, bump `truncate_count` (the fault path's seqcount
/// up to d00806b18315) and zap, in every VMA of the file, the entries of
/// the pages `[holebegin, holebegin + holelen)` (to EOF if `holelen` is
/// 0). Without `even_cows` only the file's own pages go (`check_mapping`),
/// so private COW copies — and orphans, whose `page->mapping` is NULL —
/// stay. A nonlinear VMA is zapped whole for the pages whose index is in
/// the range. The lock break (`need_lockbreak`) is not modelled.
pub fn unmap_mapping_range(
    k: &Kernel,
    file: &Rc<AddressSpace>,
    holebegin: u64,
    holelen: u64,
    even_cows: bool,
) {
    let _f = explore::enter("unmap_mapping_range");
    let first_index = holebegin >> crate::mm_types::PAGE_SHIFT;
    let last_index = if holelen == 0 {
        u64::MAX
    } else {
        first_index.saturating_add(holelen.div_ceil(PAGE_SIZE) - 1)
    };
    let lock = file
        .i_mmap_lock
        .lock("unmap_mapping_range: spin_lock(&mapping->i_mmap_lock)");
    file.truncate_count
        .add_return("unmap_mapping_range: mapping->truncate_count++", 1);
    for (mm, vma) in file_vmas(k, file) {
        let nonlinear = vma.flags() & vm_flags::VM_NONLINEAR != 0;
        let details = ZapDetails {
            check_mapping: (!even_cows).then_some(file.id),
            nonlinear,
            first_index,
            last_index,
        };
        if nonlinear {
            unmap_page_range_details(k, &mm, &vma, vma.start(), vma.end(), Some(&details));
            continue;
        }
        let pages = (vma.end() - vma.start()) >> crate::mm_types::PAGE_SHIFT;
        let (vba, vea) = (vma.vm_pgoff.get(), vma.vm_pgoff.get() + pages - 1);
        if last_index < vba || first_index > vea {
            continue;
        }
        let zba = first_index.max(vba);
        let zea = last_index.min(vea);
        let start = vma.start() + ((zba - vba) << crate::mm_types::PAGE_SHIFT);
        let end = vma.start() + ((zea - vba + 1) << crate::mm_types::PAGE_SHIFT);
        unmap_page_range_details(k, &mm, &vma, start, end, Some(&details));
    }
    lock.unlock("unmap_mapping_range: spin_unlock(&mapping->i_mmap_lock)");
}

/// A file fault of the 2.6.22/2.6.23 eras on a none pte: `do_no_page()`
/// (knob `nonlinear_fault` = populate) or `do_linear_fault()`.
fn do_file_fault_v2_6(vmf: &VmFault<'_>, file: &Rc<AddressSpace>) -> u32 {
    if !pte_alloc(vmf.k, vmf.task, &vmf.pmd) {
        return VM_FAULT_OOM;
    }
    let pgoff = vmf.vma.linear_page_index(vmf.address);
    match vmf.k.profile.knobs.nonlinear_fault {
        crate::profile::NonlinearFault::Populate => do_no_page(vmf, file, pgoff),
        crate::profile::NonlinearFault::Fault => {
            let _f = explore::enter("do_linear_fault");
            do_fault_v2_6_23(vmf, file, pgoff, Pte(0))
        }
    }
}

/// A fault on a nonlinear file pte: `do_file_page()` → `->populate`
/// (v2.6.22) or `do_nonlinear_fault()` → `__do_fault()` (v2.6.23).
fn do_nonlinear_file_fault(vmf: &VmFault<'_>, file: &Rc<AddressSpace>, orig: Pte) -> u32 {
    let pgoff = crate::arch::x86::swap::v2_6_34::pte_to_pgoff(orig);
    if vmf.vma.flags() & vm_flags::VM_NONLINEAR == 0 {
        crate::debug::print_bad_pte(vmf.k, vmf.mm(), vmf.vma, vmf.address, orig);
        return VM_FAULT_OOM;
    }
    match vmf.k.profile.knobs.nonlinear_fault {
        crate::profile::NonlinearFault::Populate => {
            let _f = explore::enter("do_file_page");
            let addr = vmf.address & !(PAGE_SIZE - 1);
            match crate::fremap::filemap_populate(vmf.k, vmf.task, vmf.vma, file, addr, 1, pgoff) {
                Ok(()) => 0,
                Err(crate::mmap::ENOMEM) => VM_FAULT_OOM,
                Err(_) => VM_FAULT_SIGBUS,
            }
        }
        crate::profile::NonlinearFault::Fault => {
            let _f = explore::enter("do_nonlinear_fault");
            do_fault_v2_6_23(vmf, file, pgoff, orig)
        }
    }
}

/// The early COW of a write fault on a private file mapping (v2.6.22
/// `do_no_page`, v2.6.23 `__do_fault`): `anon_vma_prepare()`, a new page,
/// and a copy of the page-cache page. `None` on OOM.
fn early_cow(vmf: &VmFault<'_>, page: &Folio) -> Option<Rc<Folio>> {
    let (k, vma) = (vmf.k, vmf.vma);
    if !anon_vma_prepare(k, vma) {
        return None;
    }
    let new = k.mem.alloc_pages(vmf.task.node, 0, FolioKind::Anon)?;
    new.data.borrow_mut()[0] = page.data.borrow()[0].clone();
    Some(new)
}

/// The pte a 2.6-era file fault installs for `page`: dirty and writable
/// for a write fault (`maybe_mkwrite(pte_mkdirty())`); for a read fault
/// on a shared writable mapping of a file with dirty accounting, read-only
/// (`vma_wants_writenotify()`), so the first store faults and dirties the
/// page.
fn file_fault_pte(vmf: &VmFault<'_>, page: &Folio) -> Pte {
    let entry = vmf.k.pfn_pte(page.pfn, vmf.vma.vm_page_prot.get());
    if vmf.is_write() {
        return pte_mkwrite(pte_mkdirty(entry));
    }
    crate::arch::x86::pgtable::pte_wrprotect(entry)
}

/// The locked tail of both 2.6-era file faults: if the pte still holds
/// `orig`, map `page` (a COW copy when `anon`) and account it. Returns
/// whether it was installed.
fn install_file_fault(
    vmf: &VmFault<'_>,
    map: &crate::pgtable_generic::PteMap,
    page: &Rc<Folio>,
    anon: bool,
    orig: Pte,
) -> bool {
    let (k, mm) = (vmf.k, vmf.mm());
    if map
        .pte
        .read_locked("do_no_page: pte_none(*page_table) / pte_same(*page_table, orig_pte)")
        != pte_val(orig)
    {
        return false;
    }
    let entry = file_fault_pte(vmf, page);
    k.set_pte_at(&map.pte, entry, "do_no_page: set_pte_at");
    if anon {
        mm.add_mm_counter(MM_ANONPAGES, 1);
        page.lru.set(true);
        page_add_new_anon_rmap(k, page, vmf.vma, vmf.address);
    } else {
        mm.add_mm_counter(MM_FILEPAGES, 1);
        page.mapcount.add_return(
            "page_add_file_rmap: atomic_inc_and_test(&page->_mapcount)",
            1,
        );
        if vmf.is_write() {
            crate::filemap::set_page_dirty(page);
        }
    }
    true
}

/// `do_no_page()` (v2.6.22) for a regular file: the page from
/// `filemap_nopage()`, an early COW for a private write, then under the
/// PTL the `truncate_count` re-check (knob `truncate_count`: retry if an
/// `unmap_mapping_range()` ran since the first read) and the install if
/// the pte is still none. With `fault_locks_page` (d00806b18315) the page
/// stays locked from `->nopage` until after the install and the PTL
/// unlock, and the seqcount is gone.
fn do_no_page(vmf: &VmFault<'_>, file: &Rc<AddressSpace>, pgoff: u64) -> u32 {
    let _f = explore::enter("do_no_page");
    let k = vmf.k;
    let knobs = &k.profile.knobs;
    let mut sequence = knobs.truncate_count.then(|| {
        file.truncate_count
            .read("do_no_page: sequence = mapping->truncate_count")
    });
    loop {
        let nopage = match crate::filemap::filemap_nopage(k, vmf.task, file, pgoff) {
            crate::filemap::Nopage::Page(p) => p,
            crate::filemap::Nopage::Error(e) => return e,
        };
        let cow = vmf.is_write() && vmf.vma.flags() & vm_flags::VM_SHARED == 0;
        let page = if cow {
            let Some(new) = early_cow(vmf, &nopage) else {
                release_nopage(k, &nopage);
                return VM_FAULT_OOM;
            };
            if !knobs.fault_locks_page {
                put_folio(k, &nopage);
            }
            new
        } else {
            nopage.clone()
        };
        let Some(map) = pte_offset_map_lock(k, vmf.mm(), &vmf.pmd, vmf.address) else {
            put_folio(k, &page);
            if knobs.fault_locks_page {
                release_nopage_after(k, &nopage, cow);
            }
            return 0;
        };
        if let Some(seq) = sequence {
            let now = file
                .truncate_count
                .read("do_no_page: sequence != mapping->truncate_count");
            if now != seq {
                map.ptl.unlock("pte_unmap_unlock");
                put_folio(k, &page);
                if knobs.fault_locks_page {
                    release_nopage_after(k, &nopage, cow);
                }
                explore::mark("do_no_page: truncate_count moved, retry");
                sequence = Some(now);
                continue;
            }
        }
        let installed = install_file_fault(vmf, &map, &page, cow, Pte(0));
        map.ptl.unlock("pte_unmap_unlock");
        if !installed {
            put_folio(k, &page);
        }
        if knobs.fault_locks_page {
            release_nopage_after(k, &nopage, cow);
        }
        return 0;
    }
}

/// The fault's hold on the `->nopage` page after an error.
fn release_nopage(k: &Kernel, page: &Folio) {
    if k.profile.knobs.fault_locks_page {
        page.lock.unlock("do_no_page: unlock_page(nopage_page)");
    }
    put_folio(k, page);
}

/// d00806b18315's `out:` of do_no_page and __do_fault: unlock the
/// page-cache page, and drop its reference if a COW copy was mapped
/// instead.
fn release_nopage_after(k: &Kernel, page: &Folio, cow: bool) {
    page.lock.unlock("unlock_page(vmf.page)");
    if cow {
        put_folio(k, page);
    }
}

/// `__do_fault()` (v2.6.23), a body of its own: the structure of the
/// 2.6.23 fault path (`->fault` with `VM_FAULT_LOCKED`, `pte_same()` of
/// the original pte for linear and nonlinear faults alike) is neither
/// v2.6.22's `do_no_page()` nor today's `__do_fault()` + `finish_fault()`.
/// `filemap_fault()` returns the page locked unless `fault_locks_page` is
/// off, in which case `__do_fault()` locks it itself after the lookup
/// (`if (!(ret & VM_FAULT_LOCKED)) lock_page(vmf.page)`), without
/// re-checking `page->mapping`.
fn do_fault_v2_6_23(vmf: &VmFault<'_>, file: &Rc<AddressSpace>, pgoff: u64, orig: Pte) -> u32 {
    let _f = explore::enter("__do_fault");
    let k = vmf.k;
    let page = match crate::filemap::filemap_fault(k, vmf.task, file, pgoff) {
        crate::filemap::Nopage::Page(p) => p,
        crate::filemap::Nopage::Error(e) => return e,
    };
    if !k.profile.knobs.fault_locks_page {
        page.lock.lock("__do_fault: lock_page(vmf.page)");
    }
    let cow = vmf.is_write() && vmf.vma.flags() & vm_flags::VM_SHARED == 0;
    let mapped = if cow {
        match early_cow(vmf, &page) {
            Some(new) => new,
            None => {
                release_nopage_after(k, &page, true);
                return VM_FAULT_OOM;
            }
        }
    } else {
        page.clone()
    };
    let installed = match pte_offset_map_lock(k, vmf.mm(), &vmf.pmd, vmf.address) {
        Some(map) => {
            let done = install_file_fault(vmf, &map, &mapped, cow, orig);
            map.ptl.unlock("pte_unmap_unlock");
            done
        }
        None => false,
    };
    if !installed {
        put_folio(k, &mapped);
    }
    release_nopage_after(k, &page, cow);
    0
}
