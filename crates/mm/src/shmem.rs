//! shmem (tmpfs) files, as a memfd is: the page cache, `shmem_fault()`,
//! truncation (`shmem_setattr()` with `unmap_mapping_range()`), and
//! `read()`/`write()`; plus the fault-around of mm/filemap.c
//! (`filemap_map_pages()`) that maps cached pages next to a read fault.
//!
//! Models mm/shmem.c, mm/filemap.c and mm/memory.c (`do_fault_around`) of
//! v6.18 for small folios (shmem huge pages off, the memfd default).

use std::rc::Rc;

use crate::memory::{get_folio, put_folio, unmap_mapping_range, VM_FAULT_SIGBUS};
use crate::mm_types::{AddressSpace, Folio, FolioKind, Kernel, Vma, PAGE_SHIFT, PAGE_SIZE};

/// `shmem_get_folio(SGP_CACHE)`: the page-cache folio at `index`,
/// allocated zero-filled if the file has a hole there. The page cache
/// holds one reference. `None` when memory is exhausted.
pub fn shmem_get_folio(k: &Kernel, file: &AddressSpace, index: u64) -> Option<Rc<Folio>> {
    let mut tree = file.i_pages.lock("shmem_get_folio: filemap_get_entry");
    if let Some(f) = tree.get(&index).cloned() {
        tree.unlock("shmem_get_folio: xas unlock");
        return Some(f);
    }
    let Some(folio) = k.mem.alloc_pages(0, 0, FolioKind::Shmem) else {
        tree.unlock("shmem_get_folio: xas unlock");
        return None;
    };
    folio.index.set(index);
    tree.insert(index, folio.clone());
    tree.unlock("shmem_add_to_page_cache: xas unlock");
    Some(folio)
}

/// `shmem_fault()`: the folio for file page `index` with a reference for
/// the caller, or VM_FAULT_SIGBUS beyond EOF.
pub fn shmem_fault(k: &Kernel, file: &AddressSpace, index: u64) -> Result<Rc<Folio>, u32> {
    if index >= file.max_index("shmem_fault: i_size_read(inode)") {
        return Err(VM_FAULT_SIGBUS);
    }
    let folio = shmem_get_folio(k, file, index).ok_or(crate::memory::VM_FAULT_OOM)?;
    get_folio(&folio);
    Ok(folio)
}

/// The file page a VMA maps at `addr` (`linear_page_index()`).
pub fn file_index(vma: &Vma, addr: u64) -> u64 {
    vma.vm_pgoff.get() + ((addr - vma.start()) >> PAGE_SHIFT)
}

/// `fault_around_bytes` (64 KiB).
pub const FAULT_AROUND_PAGES: u64 = 16;

/// `do_fault_around()` → `filemap_map_pages()` (v6.18): the 16-entry
/// aligned window around `addr`, clamped to the VMA and the PTE table; each
/// none entry whose page is already cached (and inside EOF) is mapped.
/// `map(addr, folio)` installs one entry. Returns the window's addresses.
pub fn fault_around_window(vma: &Vma, addr: u64) -> std::ops::Range<u64> {
    let pte_off = (addr >> PAGE_SHIFT) & 511;
    let vma_off = (addr - vma.start()) >> PAGE_SHIFT;
    let from = (pte_off & !(FAULT_AROUND_PAGES - 1)).max(pte_off - pte_off.min(vma_off));
    let vma_pages = (vma.end() - vma.start()) >> PAGE_SHIFT;
    let to = (from + FAULT_AROUND_PAGES)
        .min(512)
        .min(pte_off + vma_pages - vma_off);
    let base = addr - (pte_off << PAGE_SHIFT);
    (base + (from << PAGE_SHIFT))..(base + (to << PAGE_SHIFT))
}

/// The cached folio `filemap_map_pages()` would map for `index`, with a
/// reference for the mapping.
pub fn cached_folio(file: &AddressSpace, index: u64) -> Option<Rc<Folio>> {
    if index >= file.max_index("filemap_map_pages: i_size_read(mapping->host)") {
        return None;
    }
    let folio = file.cached(index)?;
    get_folio(&folio);
    Some(folio)
}

/// `shmem_setattr()` with a new size: shrinking unmaps every mapping of
/// the pages past the new EOF (private copies too), drops them from the
/// page cache and zeroes the tail of the partial last page.
pub fn shmem_setattr_size(k: &Kernel, file: &Rc<AddressSpace>, newsize: u64) {
    let _f = explore::enter("shmem_setattr");
    let oldsize = file.i_size.read("shmem_setattr: i_size_read(inode)");
    file.i_size
        .write("shmem_setattr: i_size_write(inode, newsize)", newsize);
    if newsize > oldsize {
        return;
    }
    let holebegin = newsize.next_multiple_of(PAGE_SIZE);
    if oldsize > holebegin {
        unmap_mapping_range(k, file, holebegin, 0, true);
    }
    shmem_truncate_range(k, file, newsize);
    if oldsize > holebegin {
        unmap_mapping_range(k, file, holebegin, 0, true);
    }
}

/// `shmem_truncate_range(inode, lstart, -1)`: drop whole pages from
/// `lstart` on, zero the rest of a partial page.
fn shmem_truncate_range(k: &Kernel, file: &AddressSpace, lstart: u64) {
    let first = lstart.div_ceil(PAGE_SIZE);
    let mut tree = file.i_pages.lock("shmem_undo_range: xas lock");
    let keys: Vec<u64> = tree.range(first..).map(|(i, _)| *i).collect();
    let dropped: Vec<Rc<Folio>> = keys.iter().filter_map(|&i| tree.get(&i).cloned()).collect();
    for folio in &dropped {
        crate::filemap::remove_from_page_cache_locked(k, file, &mut tree, folio);
    }
    tree.unlock("shmem_undo_range: xas unlock");
    for folio in dropped {
        put_folio(k, &folio);
    }
    let partial = lstart % PAGE_SIZE;
    if partial != 0 {
        if let Some(f) = file.cached(lstart / PAGE_SIZE) {
            f.data.borrow_mut()[0].fill_range(partial as u16, PAGE_SIZE as u32, 0);
        }
    }
}

/// `shmem_file_write_iter()`: `len` bytes of `value` at `off`; the file
/// grows to cover them. Returns the bytes written.
pub fn shmem_file_write(k: &Kernel, file: &AddressSpace, off: u64, len: u64, value: u8) -> u64 {
    let _f = explore::enter("shmem_file_write_iter");
    let end = off + len;
    let mut at = off;
    while at < end {
        let index = at / PAGE_SIZE;
        let Some(folio) = shmem_get_folio(k, file, index) else {
            break;
        };
        let upto = ((index + 1) * PAGE_SIZE).min(end);
        folio.data.borrow_mut()[0].fill_range(
            (at % PAGE_SIZE) as u16,
            (upto - index * PAGE_SIZE) as u32,
            value,
        );
        at = upto;
        if at > file.i_size.read("shmem_write_end: pos > inode->i_size") {
            file.i_size.write("i_size_write", at);
        }
    }
    at - off
}

/// `shmem_file_read_iter()` of one byte: `None` at or past EOF; a hole
/// reads zero.
pub fn shmem_file_read(file: &AddressSpace, off: u64) -> Option<u8> {
    if off >= file.i_size.read("shmem_file_read_iter: i_size_read(inode)") {
        return None;
    }
    Some(
        file.cached(off / PAGE_SIZE)
            .map_or(0, |f| f.data.borrow()[0].get((off % PAGE_SIZE) as u16)),
    )
}
