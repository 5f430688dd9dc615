//! The page cache of regular files (seed 003): lookup, insertion and
//! removal, the fault handlers `filemap_nopage()` (v2.6.22) and
//! `filemap_fault()` (v2.6.23), `->populate` for nonlinear mappings,
//! buffered and O_DIRECT I/O, and write-back.
//!
//! Models mm/filemap.c of v2.6.22 and v2.6.23; the fixes of Nick Piggin's
//! "fault vs truncate/invalidate race fix" series are knobs
//! (`fault_locks_page`, `remove_mapped_check`). The file system is ext2-like
//! and simple: one block per page, `->readpage` and `->writepage` are one
//! synchronous bio each, no buffer heads (`PagePrivate` is never set), no
//! readahead.

use std::rc::Rc;

use explore::{Finding, FindingKind};

use crate::memory::{get_folio, put_folio, VM_FAULT_OOM, VM_FAULT_SIGBUS};
use crate::mm_types::{AddressSpace, Folio, FolioKind, Kernel, PageData, Task, PAGE_SIZE};

/// `find_get_page()` (v2.6.22): the cached page at `index` with a reference,
/// looked up under `tree_lock`; no page lock.
pub fn find_get_page(file: &AddressSpace, index: u64) -> Option<Rc<Folio>> {
    let tree = file
        .i_pages
        .lock("find_get_page: read_lock(&mapping->tree_lock)");
    let page = tree.get(&index).cloned();
    if let Some(p) = &page {
        get_folio(p);
    }
    tree.unlock("find_get_page: read_unlock(&mapping->tree_lock)");
    page
}

/// `find_lock_page()` (v2.6.22): the cached page at `index`, locked, with a
/// reference. After `lock_page()` it re-checks `page->mapping`: a page
/// truncated or invalidated while this task slept on its lock is dropped
/// and the lookup repeated.
pub fn find_lock_page(k: &Kernel, file: &AddressSpace, index: u64) -> Option<Rc<Folio>> {
    loop {
        let page = find_get_page(file, index)?;
        page.lock.lock("find_lock_page: lock_page");
        if page
            .mapping
            .read("find_lock_page: page->mapping != mapping")
            == Some(file.id)
        {
            return Some(page);
        }
        page.lock.unlock("find_lock_page: unlock_page");
        put_folio(k, &page);
    }
}

/// `add_to_page_cache()` (v2.6.22): insert the new, locked `page` at
/// `index` under `tree_lock`, unless a page is there already (-EEXIST:
/// `false`). The page cache takes a reference.
fn add_to_page_cache(file: &AddressSpace, page: &Rc<Folio>, index: u64) -> bool {
    let mut tree = file
        .i_pages
        .lock("add_to_page_cache: write_lock_irq(&mapping->tree_lock)");
    if tree.contains_key(&index) {
        tree.unlock("add_to_page_cache: write_unlock_irq(&mapping->tree_lock)");
        return false;
    }
    get_folio(page);
    page.index.set(index);
    page.mapping
        .write("add_to_page_cache: page->mapping = mapping", Some(file.id));
    tree.insert(index, page.clone());
    tree.unlock("add_to_page_cache: write_unlock_irq(&mapping->tree_lock)");
    true
}

/// `__remove_from_page_cache()` (v2.6.22), called with `tree_lock` held
/// for writing and the page locked: delete it from the tree and clear
/// `page->mapping`. With `remove_mapped_check` (45426812d6b6) it then
/// asserts the page is not mapped: `BUG_ON(page_mapped(page))` as its
/// last statement in v2.6.23, "BUG: Bad page cache" in current kernels
/// (`filemap_unaccount_folio()`).
pub fn remove_from_page_cache_locked(
    k: &Kernel,
    file: &AddressSpace,
    tree: &mut std::collections::BTreeMap<u64, Rc<Folio>>,
    page: &Folio,
) {
    tree.remove(&page.index.get());
    page.mapping
        .write("__remove_from_page_cache: page->mapping = NULL", None);
    if k.profile.knobs.remove_mapped_check
        && page
            .mapcount
            .read("__remove_from_page_cache: BUG_ON(page_mapped(page))")
            > 0
    {
        explore::oops(bad_page_cache(k, file, page));
    }
}

/// Line of `BUG_ON(page_mapped(page))` in `__remove_from_page_cache()`,
/// mm/filemap.c of v2.6.23.
pub const REMOVE_MAPPED_BUG_LINE: u32 = 123;

/// The report of a page removed from the page cache while still mapped.
fn bad_page_cache(k: &Kernel, file: &AddressSpace, page: &Folio) -> Finding {
    let comm = explore::rt::current_comm();
    let mapped = format!(
        "page pfn:{:05x} index {} of file {} is still mapped (mapcount {}) when deleted from the page cache",
        page.pfn,
        page.index.get(),
        file.id,
        page.mapcount.peek()
    );
    if k.profile.knobs.pte_layout == crate::profile::PteLayout::V4_19 {
        return Finding::new(
            FindingKind::Kernel,
            "filemap_unaccount_folio()",
            format!(
                "BUG: Bad page cache in process {comm}  pfn:{:05x}",
                page.pfn
            ),
        )
        .detail(format!(
            "page: refcount:{} mapcount:{} mapping:file {} index:{:#x} pfn:{:#x}",
            page.refcount.peek(),
            page.mapcount.peek(),
            file.id,
            page.index.get(),
            page.pfn
        ))
        .detail("page dumped because: still mapped when deleted");
    }
    Finding::new(
        FindingKind::Kernel,
        "__remove_from_page_cache()",
        format!("kernel BUG at mm/filemap.c:{REMOVE_MAPPED_BUG_LINE}!"),
    )
    .detail("------------[ cut here ]------------")
    .detail(format!(
        "kernel BUG at mm/filemap.c:{REMOVE_MAPPED_BUG_LINE}!"
    ))
    .detail("invalid opcode: 0000 [1] SMP")
    .detail(format!(
        "Pid: {}, comm: {comm} Not tainted {}",
        crate::debug::task_pid(),
        k.profile.name.trim_start_matches("linux-")
    ))
    .detail(mapped)
}

/// `remove_from_page_cache()`: `__remove_from_page_cache()` under
/// `tree_lock`; the caller holds the page lock.
pub fn remove_from_page_cache(k: &Kernel, file: &AddressSpace, page: &Folio) {
    let mut tree = file
        .i_pages
        .lock("remove_from_page_cache: write_lock_irq(&mapping->tree_lock)");
    remove_from_page_cache_locked(k, file, &mut tree, page);
    tree.unlock("remove_from_page_cache: write_unlock_irq(&mapping->tree_lock)");
}

/// `mapping->a_ops->readpage()` of the model's file system: one
/// synchronous bio reads the block into the locked page, which is then
/// up to date and unlocked (`end_bio` → `unlock_page()`).
fn readpage(file: &AddressSpace, page: &Folio) {
    // block_read_full_page(): a block at or past the one holding i_size
    // is not looked up but zeroed (a read racing a truncate that already
    // shrank i_size brings in zeroes, not the blocks it is freeing).
    let last_block = file
        .i_size
        .read("block_read_full_page: i_size_read(inode)")
        .div_ceil(PAGE_SIZE);
    let index = page.index.get();
    file.bio.read("readpage: submit_bio(READ)");
    let block = if index < last_block {
        file.disk.borrow().get(&index).cloned().unwrap_or_default()
    } else {
        PageData::default()
    };
    page.data.borrow_mut()[0] = block;
    page.uptodate.set(true);
    page.lock.unlock("readpage: end_io unlock_page");
}

/// `page_cache_read()` (v2.6.22): allocate a page, add it to the page
/// cache locked, and read it. A page another task added first wins.
/// `false` when memory is exhausted.
fn page_cache_read(k: &Kernel, node: u32, file: &AddressSpace, index: u64) -> bool {
    let _f = explore::enter("page_cache_read");
    let Some(page) = k.mem.alloc_pages(node, 0, FolioKind::File) else {
        return false;
    };
    page.lock.lock("page_cache_read: SetPageLocked (new page)");
    if add_to_page_cache(file, &page, index) {
        page.lru.set(true);
        readpage(file, &page);
    } else {
        page.lock.unlock("page_cache_read: unlock (-EEXIST)");
    }
    put_folio(k, &page);
    true
}

/// What `->nopage`/`->fault` hands the fault path.
pub enum Nopage {
    /// The page, with a reference; locked when the handler locks it.
    Page(Rc<Folio>),
    /// A `VM_FAULT_*` error (`NOPAGE_SIGBUS`, `NOPAGE_OOM`).
    Error(u32),
}

/// `filemap_nopage()` (v2.6.22) and, with `fault_locks_page`
/// (d00806b18315), its locked form: past EOF is SIGBUS; the page is found
/// (read in if not cached) with `find_get_page()` — or `find_lock_page()`
/// with `i_size` re-checked under the page lock, returning it locked.
pub fn filemap_nopage(k: &Kernel, task: &Task, file: &AddressSpace, pgoff: u64) -> Nopage {
    let _f = explore::enter("filemap_nopage");
    find_page_for_fault(k, task, file, pgoff)
}

/// `filemap_fault()` (v2.6.23): as `filemap_nopage()` with the page lock,
/// returning `VM_FAULT_LOCKED`. With `fault_locks_page` off (an ablation
/// of d00806b18315) it finds the page with a reference only, and
/// `__do_fault()` takes the lock itself after the lookup.
pub fn filemap_fault(k: &Kernel, task: &Task, file: &AddressSpace, pgoff: u64) -> Nopage {
    let _f = explore::enter("filemap_fault");
    find_page_for_fault(k, task, file, pgoff)
}

/// The body `filemap_nopage()` and `filemap_fault()` share: the `i_size`
/// test, the lookup (`retry_find`), `page_cache_read()` of a missing
/// page, and under the page lock the second `i_size` test.
fn find_page_for_fault(k: &Kernel, task: &Task, file: &AddressSpace, pgoff: u64) -> Nopage {
    if pgoff >= file.max_index("filemap_nopage: i_size_read(inode)") {
        return Nopage::Error(VM_FAULT_SIGBUS);
    }
    let locks = k.profile.knobs.fault_locks_page;
    loop {
        let page = if locks {
            find_lock_page(k, file, pgoff)
        } else {
            match find_get_page(file, pgoff) {
                Some(p) => match wait_uptodate(k, file, p) {
                    Some(p) => Some(p),
                    None => continue,
                },
                None => None,
            }
        };
        let Some(page) = page else {
            if !page_cache_read(k, task.node, file, pgoff) {
                return Nopage::Error(VM_FAULT_OOM);
            }
            continue;
        };
        if locks && pgoff >= file.max_index("filemap_fault: i_size_read under the page lock") {
            page.lock.unlock("unlock_page (outside data content)");
            put_folio(k, &page);
            return Nopage::Error(VM_FAULT_SIGBUS);
        }
        return Nopage::Page(page);
    }
}

/// `filemap_getpage()` (v2.6.22) as `filemap_populate()` calls it
/// (blocking): the cached page with a reference, read in if missing;
/// no page lock.
pub fn filemap_getpage(
    k: &Kernel,
    node: u32,
    file: &AddressSpace,
    pgoff: u64,
) -> Option<Rc<Folio>> {
    loop {
        if let Some(page) = find_get_page(file, pgoff) {
            match wait_uptodate(k, file, page) {
                Some(page) => return Some(page),
                None => continue,
            }
        }
        if !page_cache_read(k, node, file, pgoff) {
            return None;
        }
    }
}

/// `if (!PageUptodate(page))` after a `find_get_page()` (v2.6.22
/// `do_generic_mapping_read`, `filemap_nopage`, `filemap_getpage`): a
/// page another task is still reading in is waited for with
/// `lock_page()`; one truncated meanwhile is dropped (`None`: look it up
/// again); one still not up to date is read here (`->readpage`).
fn wait_uptodate(k: &Kernel, file: &AddressSpace, page: Rc<Folio>) -> Option<Rc<Folio>> {
    if page.uptodate.get() {
        return Some(page);
    }
    page.lock.lock("page_not_uptodate: lock_page");
    if page.mapping.read("page_not_uptodate: !page->mapping") != Some(file.id) {
        page.lock
            .unlock("page_not_uptodate: unlock_page (truncated)");
        put_folio(k, &page);
        return None;
    }
    if page.uptodate.get() {
        page.lock.unlock("page_not_uptodate: unlock_page");
        return Some(page);
    }
    readpage(file, &page);
    Some(page)
}

/// `set_page_dirty()` of a page-cache page (`__set_page_dirty_nobuffers`).
pub fn set_page_dirty(page: &Folio) {
    if page.kind.get() == FolioKind::File {
        page.dirty.set(true);
    }
}

/// `write_one_page()`'s I/O for a locked page: `clear_page_dirty_for_io()`
/// (with `page_mkclean()` write-protecting and cleaning every pte that
/// maps it, whose dirty bits count) and, if it was dirty, `->writepage`:
/// one bio writes the page to its block.
fn write_one_page(k: &Kernel, file: &AddressSpace, page: &Folio) {
    if crate::rmap::page_mkclean(k, file, page) {
        set_page_dirty(page);
    }
    if !page.dirty.replace(false) {
        return;
    }
    file.bio.add_return("writepage: submit_bio(WRITE)", 1);
    let data = page.data.borrow()[0].clone();
    file.disk.borrow_mut().insert(page.index.get(), data);
}

/// `filemap_write_and_wait()` (v2.6.22): write back every dirty page of
/// the file and wait for the I/O (`do_writepages` → `->writepage` per
/// page under its page lock, then `wait_on_page_writeback`; write-back is
/// synchronous here).
pub fn filemap_write_and_wait(k: &Kernel, file: &AddressSpace) {
    let _f = explore::enter("filemap_write_and_wait");
    let indexes: Vec<u64> = {
        let tree = file
            .i_pages
            .lock("pagevec_lookup_tag: read_lock(&mapping->tree_lock)");
        let keys = tree.keys().copied().collect();
        tree.unlock("pagevec_lookup_tag: read_unlock(&mapping->tree_lock)");
        keys
    };
    for index in indexes {
        let Some(page) = find_lock_page(k, file, index) else {
            continue;
        };
        write_one_page(k, file, &page);
        page.lock.unlock("write_cache_pages: unlock_page");
        put_folio(k, &page);
    }
}

/// `generic_file_direct_IO()` (v2.6.22 and v2.6.23) for a write of `len`
/// bytes of `value` at `off`, with `i_mutex` held: unmap the range from
/// every mapping if the file is mapped (`unmap_mapping_range(.., 0)`),
/// write back dirty pages, invalidate the cached pages of the range
/// (`invalidate_inode_pages2_range()`), then `->direct_IO`: the bio goes
/// straight to the disk blocks. The second invalidation after it runs
/// only when `->direct_IO` returned 0 (`if (retval) goto out`), which a
/// write of any bytes does not, until bdb76ef5a4bc (knob
/// `dio_invalidate_after_write`). A first invalidation that fails (a page
/// dirty again) fails the write with -EIO.
/// (The kernel tests `mapping->nrpages` before each invalidation; the
/// model always invalidates, which over an empty cache is a lookup that
/// finds nothing.)
pub fn generic_file_direct_write(
    k: &Kernel,
    file: &Rc<AddressSpace>,
    off: u64,
    len: u64,
    value: u8,
) -> Result<u64, i32> {
    let _f = explore::enter("generic_file_direct_IO");
    if crate::memory::mapping_mapped(k, file) {
        crate::memory::unmap_mapping_range(k, file, off, len, false);
    }
    filemap_write_and_wait(k, file);
    let first = off / PAGE_SIZE;
    let last = (off + len - 1) / PAGE_SIZE;
    // `if (retval) goto out`: a page that could not be invalidated (dirty
    // again, mapped again) fails the write with -EIO before any block is
    // written.
    if !crate::truncate::invalidate_inode_pages2_range(k, file, first, last) {
        return Err(crate::mmap::EIO);
    }
    let written = direct_io_write(file, off, len, value);
    // Pages a racing read or fault brought in since the first
    // invalidation hold the old blocks: invalidated again, unless the
    // kernel's `if (retval) goto out` skips it (a write of any bytes).
    if k.profile.knobs.dio_invalidate_after_write || written == 0 {
        crate::truncate::invalidate_inode_pages2_range(k, file, first, last);
    }
    Ok(written)
}

/// `->direct_IO` of a write (`blockdev_direct_IO`): the user's bytes go
/// to the blocks, extending the file on disk if needed. One bio: one
/// step. Returns the bytes written.
fn direct_io_write(file: &AddressSpace, off: u64, len: u64, value: u8) -> u64 {
    let _f = explore::enter("blockdev_direct_IO");
    file.bio
        .add_return("blockdev_direct_IO: submit_bio(WRITE)", 1);
    let mut disk = file.disk.borrow_mut();
    for_each_page_part(off, len, |index, from, to| {
        disk.entry(index).or_default().fill_range(from, to, value);
    });
    len
}

/// Calls `f(index, from, to)` for each page part of `[off, off + len)`.
pub fn for_each_page_part(off: u64, len: u64, mut f: impl FnMut(u64, u16, u32)) {
    let (mut at, end) = (off, off + len);
    while at < end {
        let index = at / PAGE_SIZE;
        let upto = ((index + 1) * PAGE_SIZE).min(end);
        f(
            index,
            (at % PAGE_SIZE) as u16,
            (upto - index * PAGE_SIZE) as u32,
        );
        at = upto;
    }
}

/// `generic_file_buffered_write()` (v2.6.22), `i_mutex` held: per page,
/// `__grab_cache_page()` (find it locked, or add a new locked page),
/// `->prepare_write` (read the block for a partial write of a page not up
/// to date), copy the user's bytes, `->commit_write` (dirty the page,
/// extend `i_size`), unlock. Returns the bytes written, or, when the
/// first page cannot be allocated, `-ENOMEM` (`written ? written :
/// status`).
pub fn generic_file_buffered_write(
    k: &Kernel,
    node: u32,
    file: &AddressSpace,
    off: u64,
    len: u64,
    value: u8,
) -> Result<u64, i32> {
    let _f = explore::enter("generic_file_buffered_write");
    let mut written = 0;
    let mut parts = Vec::new();
    for_each_page_part(off, len, |index, from, to| parts.push((index, from, to)));
    for (index, from, to) in parts {
        let Some(page) = grab_cache_page(k, node, file, index) else {
            break;
        };
        page.data.borrow_mut()[0].fill_range(from, to, value);
        set_page_dirty(&page);
        let end = index * PAGE_SIZE + u64::from(to);
        if end
            > file
                .i_size
                .read("generic_commit_write: pos > inode->i_size")
        {
            file.i_size.write("i_size_write", end);
        }
        page.lock.unlock("generic_file_buffered_write: unlock_page");
        put_folio(k, &page);
        written += u64::from(to) - u64::from(from);
    }
    if written == 0 {
        return Err(crate::mmap::ENOMEM);
    }
    Ok(written)
}

/// `__grab_cache_page()`: the page at `index`, locked, read from disk if
/// it was not cached (the model's `->prepare_write` reads every new page:
/// a whole-page write overwrites it anyway).
fn grab_cache_page(k: &Kernel, node: u32, file: &AddressSpace, index: u64) -> Option<Rc<Folio>> {
    loop {
        if let Some(page) = find_lock_page(k, file, index) {
            return Some(page);
        }
        let page = k.mem.alloc_pages(node, 0, FolioKind::File)?;
        page.lock
            .lock("__grab_cache_page: SetPageLocked (new page)");
        if add_to_page_cache(file, &page, index) {
            page.lru.set(true);
            file.bio.read("prepare_write: submit_bio(READ)");
            let block = file.disk.borrow().get(&index).cloned().unwrap_or_default();
            page.data.borrow_mut()[0] = block;
            page.uptodate.set(true);
            return Some(page);
        }
        page.lock.unlock("__grab_cache_page: unlock (-EEXIST)");
        put_folio(k, &page);
    }
}

/// `do_generic_mapping_read()` (v2.6.22): for each page of `[off, off +
/// len)` inside `i_size`, `find_get_page()` (reading a missing page in)
/// and copy out. Returns the bytes read (short at EOF).
pub fn do_generic_mapping_read(
    k: &Kernel,
    node: u32,
    file: &AddressSpace,
    off: u64,
    len: u64,
) -> Vec<u8> {
    let _f = explore::enter("do_generic_mapping_read");
    let mut out = Vec::new();
    let mut parts = Vec::new();
    for_each_page_part(off, len, |index, from, to| parts.push((index, from, to)));
    for (index, from, to) in parts {
        let isize = file
            .i_size
            .read("do_generic_mapping_read: i_size_read(inode)");
        let start = index * PAGE_SIZE + u64::from(from);
        if start >= isize {
            break;
        }
        let Some(page) = filemap_getpage(k, node, file, index) else {
            break;
        };
        let stop = u64::from(to).min(isize - index * PAGE_SIZE);
        let data: PageData = page.data.borrow()[0].clone();
        out.extend((u64::from(from)..stop).map(|b| data.get(b as u16)));
        put_folio(k, &page);
    }
    out
}
