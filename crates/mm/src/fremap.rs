//! Nonlinear file mappings: `remap_file_pages()`, `->populate`
//! (`filemap_populate()` → `install_page()`, v2.6.22) and the file ptes
//! of v2.6.23 (`populate_range()` → `install_file_pte()`).
//!
//! Models mm/fremap.c of v2.6.22 and v2.6.23 (knob `nonlinear_fault`).

use std::rc::Rc;

use crate::arch::x86::pgtable::{pte_dirty, pte_present, Pte};
use crate::arch::x86::swap::v2_6_34::pgoff_to_pte;
use crate::memory::{
    handle_mm_fault, pmd_alloc, pte_alloc, pud_alloc, put_folio, FAULT_FLAG_WRITE,
};
use crate::mm_types::{
    vm_flags, AddressSpace, Kernel, Task, Vma, MM_FILEPAGES, PAGE_SHIFT, PAGE_SIZE,
};
use crate::mmap::{EINVAL, ENOMEM};
use crate::pgtable::{pgd_offset, EntryRef};
use crate::pgtable_generic::{pte_offset_map_lock, PteMap};
use crate::profile::NonlinearFault;

/// `get_locked_pte()`: the pte of `addr`, tables allocated as needed,
/// with its lock held.
fn get_locked_pte(k: &Kernel, task: &Task, addr: u64) -> Option<PteMap> {
    let pgd = pgd_offset(&task.mm, addr);
    let pud = pud_alloc(k, task, &pgd, addr)?;
    let pmd: EntryRef = pmd_alloc(k, task, &pud, addr)?;
    if !pte_alloc(k, task, &pmd) {
        return None;
    }
    pte_offset_map_lock(k, &task.mm, &pmd, addr)
}

/// `zap_pte()` (v2.6.22): clear what `install_page()` or
/// `install_file_pte()` replaces; a present page is unmapped (its dirty
/// bit moved to the page). Returns whether a page was unmapped (v2.6.22
/// then leaves file_rss alone; v2.6.23's zap_pte drops it itself).
fn zap_pte(k: &Kernel, task: &Task, pte: &EntryRef, v: Pte) -> bool {
    pte.xchg("zap_pte: ptep_clear_flush", 0);
    if !pte_present(v) {
        return false;
    }
    let Some(page) = k.mem.pfn_folio(k.pte_pfn(v)) else {
        return false;
    };
    if pte_dirty(v) {
        crate::filemap::set_page_dirty(&page);
    }
    crate::rmap::page_remove_rmap(&page, false);
    put_folio(k, &page);
    if k.profile.knobs.nonlinear_fault == NonlinearFault::Fault {
        task.mm.add_mm_counter(MM_FILEPAGES, -1);
    }
    true
}

/// `install_page()` (v2.6.22): map the page-cache `page` at `addr` of a
/// nonlinear VMA. Under the PTL only — not the page lock — it checks that
/// the page is still in a file (`page->mapping`) and inside `i_size`;
/// `truncate_count` is not looked at. On success the caller's reference
/// passes to the pte.
fn install_page(
    k: &Kernel,
    task: &Task,
    vma: &Vma,
    file: &AddressSpace,
    addr: u64,
    page: &crate::mm_types::Folio,
) -> Result<(), i32> {
    let _f = explore::enter("install_page");
    let Some(map) = get_locked_pte(k, task, addr) else {
        return Err(ENOMEM);
    };
    let size = file.max_index("install_page: i_size_read(inode)");
    if page
        .mapping
        .read("install_page: if (!page->mapping)")
        .is_none()
        || page.index.get() >= size
    {
        map.ptl.unlock("pte_unmap_unlock");
        return Err(EINVAL);
    }
    let old = Pte(map.pte.read_locked("install_page: pte_none(*pte)"));
    if k.pte_none(old) || !zap_pte(k, task, &map.pte, old) {
        task.mm.add_mm_counter(MM_FILEPAGES, 1);
    }
    let entry = k.pfn_pte(page.pfn, vma.vm_page_prot.get());
    k.set_pte_at(&map.pte, entry, "install_page: set_pte_at");
    page.mapcount.add_return(
        "page_add_file_rmap: atomic_inc_and_test(&page->_mapcount)",
        1,
    );
    map.ptl.unlock("pte_unmap_unlock");
    Ok(())
}

/// `install_file_pte()` (v2.6.23): a file pte for `pgoff` at `addr`.
fn install_file_pte(k: &Kernel, task: &Task, addr: u64, pgoff: u64) -> Result<(), i32> {
    let Some(map) = get_locked_pte(k, task, addr) else {
        return Err(ENOMEM);
    };
    let old = Pte(map.pte.read_locked("install_file_pte: pte_none(*pte)"));
    if !k.pte_none(old) {
        zap_pte(k, task, &map.pte, old);
    }
    map.pte.write(
        "install_file_pte: set_pte_at(pgoff_to_pte(pgoff))",
        pgoff_to_pte(pgoff).0,
    );
    map.ptl.unlock("pte_unmap_unlock");
    Ok(())
}

/// `filemap_populate()` (v2.6.22), blocking: for each of `pages` pages
/// from `addr`, -EINVAL past EOF, else the page (`filemap_getpage()`, a
/// reference and no lock) handed to `install_page()`.
pub fn filemap_populate(
    k: &Kernel,
    task: &Task,
    vma: &Vma,
    file: &AddressSpace,
    addr: u64,
    pages: u64,
    pgoff: u64,
) -> Result<(), i32> {
    let _f = explore::enter("filemap_populate");
    for i in 0..pages {
        let size = file.max_index("filemap_populate: i_size_read(inode)");
        if pgoff + pages - i > size {
            return Err(EINVAL);
        }
        let Some(page) = crate::filemap::filemap_getpage(k, task.node, file, pgoff + i) else {
            return Err(ENOMEM);
        };
        if let Err(e) = install_page(k, task, vma, file, addr + (i << PAGE_SHIFT), &page) {
            put_folio(k, &page);
            return Err(e);
        }
    }
    Ok(())
}

/// `sys_remap_file_pages(start, size, 0, pgoff, 0)`: make the range of
/// `size` bytes at `start` of a shared file VMA map the file from page
/// `pgoff`. The VMA
/// goes nonlinear (`VM_NONLINEAR`, moved to `i_mmap_nonlinear` under
/// `i_mmap_lock`, with mmap_lock held for writing). v2.6.22 populates
/// through `->populate`; v2.6.23 installs file ptes (`populate_range()`)
/// and faults them in (`make_pages_present()`). v2.6.23's emulation with
/// a linear VMA for files with dirty accounting is not modelled: the
/// VMA always goes nonlinear.
pub fn sys_remap_file_pages(
    k: &Kernel,
    task: &Task,
    start: u64,
    size: u64,
    pgoff: u64,
) -> Result<(), i32> {
    let _f = explore::enter("sys_remap_file_pages");
    let size = size.next_multiple_of(PAGE_SIZE);
    let end = start.checked_add(size).ok_or(EINVAL)?;
    let mmap = task
        .mm
        .mmap_lock
        .write("sys_remap_file_pages: down_write(&mm->mmap_sem)");
    let vma = mmap.vma_lookup(start).cloned().filter(|v| {
        v.flags() & vm_flags::VM_SHARED != 0
            && end > start
            && end <= v.end()
            && v.vm_file.get().is_some()
    });
    let Some(vma) = vma else {
        mmap.unlock("up_write(&mm->mmap_sem)");
        return Err(EINVAL);
    };
    let file: Rc<AddressSpace> = vma.vm_file.get().expect("checked above").clone();
    if vma.flags() & vm_flags::VM_NONLINEAR == 0 {
        if pgoff == vma.linear_page_index(start) {
            mmap.unlock("up_write(&mm->mmap_sem)");
            return Ok(());
        }
        let lock = file
            .i_mmap_lock
            .lock("sys_remap_file_pages: spin_lock(&mapping->i_mmap_lock)");
        vma.vm_flags.set(vma.flags() | vm_flags::VM_NONLINEAR);
        lock.unlock("sys_remap_file_pages: spin_unlock(&mapping->i_mmap_lock)");
    }
    // Populating faults the pages in on the user's behalf (a write fault
    // for a writable VMA dirties them): for the file ghost, a user access
    // to the file, racing whatever write is in flight.
    k.ghost.files.access_begin(file.id);
    let result = populate_and_fault(k, task, &vma, &file, (start, end), pgoff);
    k.ghost.files.access_end(file.id);
    mmap.unlock("up_write(&mm->mmap_sem)");
    result
}

/// The populating half of [`sys_remap_file_pages`], mmap_lock held.
fn populate_and_fault(
    k: &Kernel,
    task: &Task,
    vma: &Rc<crate::mm_types::Vma>,
    file: &Rc<AddressSpace>,
    (start, end): (u64, u64),
    pgoff: u64,
) -> Result<(), i32> {
    let pages = (end - start) >> PAGE_SHIFT;
    let result = match k.profile.knobs.nonlinear_fault {
        NonlinearFault::Populate => filemap_populate(k, task, vma, file, start, pages, pgoff),
        NonlinearFault::Fault => populate_range(k, task, start, pages, pgoff),
    };
    if result.is_err() || k.profile.knobs.nonlinear_fault == NonlinearFault::Populate {
        return result;
    }
    // make_pages_present(): the faults go through do_nonlinear_fault().
    let write = vma.flags() & vm_flags::VM_WRITE != 0;
    let mut addr = start;
    while addr < end {
        handle_mm_fault(k, task, vma, addr, if write { FAULT_FLAG_WRITE } else { 0 });
        addr += PAGE_SIZE;
    }
    Ok(())
}

/// `populate_range()` (v2.6.23): a file pte per page.
fn populate_range(k: &Kernel, task: &Task, start: u64, pages: u64, pgoff: u64) -> Result<(), i32> {
    for i in 0..pages {
        install_file_pte(k, task, start + (i << PAGE_SHIFT), pgoff + i)?;
    }
    Ok(())
}
