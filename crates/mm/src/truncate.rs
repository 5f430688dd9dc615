//! Truncation and invalidation of the page cache of regular files:
//! `vmtruncate()`, `truncate_inode_pages_range()` (both passes) and
//! `invalidate_inode_pages2_range()` as O_DIRECT writes call it.
//!
//! Models mm/truncate.c and `vmtruncate()` of mm/memory.c, v2.6.22; what
//! d00806b18315 changed is behind the knobs `truncate_unmaps_locked_page`,
//! `invalidate_unmap_under_lock` and `truncate_second_unmap`.

use std::rc::Rc;

use explore::{Finding, FindingKind};

use crate::filemap::{find_lock_page, remove_from_page_cache, remove_from_page_cache_locked};
use crate::memory::{put_folio, unmap_mapping_range};
use crate::mm_types::{AddressSpace, Folio, Kernel, PAGE_SIZE};

/// `pagevec_lookup()`: up to `PAGEVEC_SIZE` cached pages from `start` on,
/// each with a reference, under `tree_lock`.
fn pagevec_lookup(file: &AddressSpace, start: u64, end: u64) -> Vec<Rc<Folio>> {
    const PAGEVEC_SIZE: usize = 14;
    let tree = file
        .i_pages
        .lock("pagevec_lookup: read_lock(&mapping->tree_lock)");
    let pages: Vec<Rc<Folio>> = tree
        .range(start..=end)
        .take(PAGEVEC_SIZE)
        .map(|(_, p)| p.clone())
        .collect();
    for p in &pages {
        crate::memory::get_folio(p);
    }
    tree.unlock("pagevec_lookup: read_unlock(&mapping->tree_lock)");
    pages
}

/// `pagevec_release()`: drop the lookup's references.
fn pagevec_release(k: &Kernel, pages: &[Rc<Folio>]) {
    for p in pages {
        put_folio(k, p);
    }
}

/// `vmtruncate()` (v2.6.22), `i_mutex` held: shrink `i_size`, unmap every
/// mapping of the pages past it (private COW copies too), drop them from
/// the page cache, and with `truncate_second_unmap` (d00806b18315) unmap
/// again for COW copies a racing fault made meanwhile. Then the file
/// system frees the blocks (`->truncate`).
pub fn vmtruncate(k: &Kernel, file: &Rc<AddressSpace>, offset: u64) {
    let _f = explore::enter("vmtruncate");
    if file.i_size.read("vmtruncate: inode->i_size < offset") < offset {
        file.i_size.write("i_size_write (expand)", offset);
        return;
    }
    file.i_size
        .write("vmtruncate: i_size_write(inode, offset)", offset);
    let holebegin = offset + PAGE_SIZE - 1;
    unmap_mapping_range(k, file, holebegin, 0, true);
    truncate_inode_pages(k, file, offset);
    if k.profile.knobs.truncate_second_unmap {
        unmap_mapping_range(k, file, holebegin, 0, true);
    }
    fs_truncate_blocks(file, offset);
}

/// `ext2_truncate()`: free the blocks past `offset` and zero the tail of
/// the last one.
fn fs_truncate_blocks(file: &AddressSpace, offset: u64) {
    let mut disk = file.disk.borrow_mut();
    disk.retain(|&index, _| index < offset.div_ceil(PAGE_SIZE));
    if !offset.is_multiple_of(PAGE_SIZE) {
        if let Some(block) = disk.get_mut(&(offset / PAGE_SIZE)) {
            block.fill_range((offset % PAGE_SIZE) as u16, PAGE_SIZE as u32, 0);
        }
    }
}

/// `truncate_inode_pages(mapping, lstart)`.
pub fn truncate_inode_pages(k: &Kernel, file: &Rc<AddressSpace>, lstart: u64) {
    truncate_inode_pages_range(k, file, lstart, u64::MAX);
}

/// `truncate_inode_pages_range()` (v2.6.22): a first pass that only
/// trylocks (skipping pages others hold locked), the partial page zeroed,
/// and a second pass that sleeps on each page lock until none is left.
pub fn truncate_inode_pages_range(k: &Kernel, file: &Rc<AddressSpace>, lstart: u64, lend: u64) {
    let _f = explore::enter("truncate_inode_pages_range");
    let start = lstart.div_ceil(PAGE_SIZE);
    let partial = lstart % PAGE_SIZE;
    let end = lend / PAGE_SIZE;
    let mut next = start;
    while next <= end {
        let pages = pagevec_lookup(file, next, end);
        if pages.is_empty() {
            break;
        }
        for page in &pages {
            next = page.index.get() + 1;
            if !page
                .lock
                .try_lock("truncate_inode_pages_range: TestSetPageLocked")
            {
                continue;
            }
            unmap_if_mapped(k, file, page);
            truncate_complete_page(k, file, page);
            page.lock.unlock("truncate_inode_pages_range: unlock_page");
        }
        pagevec_release(k, &pages);
    }
    if partial != 0 {
        if let Some(page) = find_lock_page(k, file, start - 1) {
            page.data.borrow_mut()[0].fill_range(partial as u16, PAGE_SIZE as u32, 0);
            page.lock.unlock("truncate_partial_page: unlock_page");
            put_folio(k, &page);
        }
    }
    loop {
        let pages = pagevec_lookup(file, start, end);
        if pages.is_empty() {
            break;
        }
        for page in &pages {
            page.lock.lock("truncate_inode_pages_range: lock_page");
            unmap_if_mapped(k, file, page);
            truncate_complete_page(k, file, page);
            page.lock.unlock("truncate_inode_pages_range: unlock_page");
        }
        pagevec_release(k, &pages);
    }
}

/// d00806b18315 (`truncate_unmaps_locked_page`): a page still mapped when
/// truncate holds its lock is unmapped before it is removed.
fn unmap_if_mapped(k: &Kernel, file: &Rc<AddressSpace>, page: &Folio) {
    if k.profile.knobs.truncate_unmaps_locked_page
        && page.mapcount.read("truncate: page_mapped(page)") > 0
    {
        let at = page.index.get() * PAGE_SIZE;
        unmap_mapping_range(k, file, at, PAGE_SIZE, false);
    }
}

/// `truncate_complete_page()` (v2.6.22): a page still in this file loses
/// its dirty state and leaves the page cache, which drops its reference.
fn truncate_complete_page(k: &Kernel, file: &AddressSpace, page: &Folio) {
    if page
        .mapping
        .read("truncate_complete_page: page->mapping != mapping")
        != Some(file.id)
    {
        return;
    }
    page.dirty.set(false);
    page.uptodate.set(false);
    remove_from_page_cache(k, file, page);
    put_folio(k, page);
}

/// `invalidate_inode_pages2_range()` (v2.6.22) over pages `[first, last]`,
/// as `generic_file_direct_IO()` calls it after a write: each cached page
/// is locked, unmapped while mapped — the first time the rest of the range
/// in one go, without private COW copies (`even_cows` 0) — and removed by
/// `invalidate_complete_page2()` unless dirty. With
/// `invalidate_unmap_under_lock` (d00806b18315) it is unmapped once and
/// must then be unmapped (`BUG_ON(page_mapped(page))`). Returns false on
/// -EIO (a dirty page stayed).
pub fn invalidate_inode_pages2_range(
    k: &Kernel,
    file: &Rc<AddressSpace>,
    first: u64,
    last: u64,
) -> bool {
    let _f = explore::enter("invalidate_inode_pages2_range");
    let mut ok = true;
    let mut did_range_unmap = false;
    let mut next = first;
    while next <= last && ok {
        let pages = pagevec_lookup(file, next, last);
        if pages.is_empty() {
            break;
        }
        for page in &pages {
            page.lock.lock("invalidate_inode_pages2_range: lock_page");
            if page
                .mapping
                .read("invalidate_inode_pages2_range: page->mapping != mapping")
                != Some(file.id)
            {
                page.lock
                    .unlock("invalidate_inode_pages2_range: unlock_page");
                continue;
            }
            let index = page.index.get();
            next = index + 1;
            unmap_for_invalidate(k, file, page, index, last, &mut did_range_unmap);
            if !invalidate_complete_page2(k, file, page) {
                ok = false;
            }
            page.lock
                .unlock("invalidate_inode_pages2_range: unlock_page");
        }
        pagevec_release(k, &pages);
    }
    ok
}

/// The unmap step of invalidate_inode_pages2_range: v2.6.22's `while
/// (page_mapped(page))` loop, or d00806b18315's single unmap and
/// `BUG_ON(page_mapped(page))`.
fn unmap_for_invalidate(
    k: &Kernel,
    file: &Rc<AddressSpace>,
    page: &Folio,
    index: u64,
    last: u64,
    did_range_unmap: &mut bool,
) {
    let mapped = |label| page.mapcount.read(label) > 0;
    let unmap = |did: &mut bool| {
        let len = if *did {
            PAGE_SIZE
        } else {
            (last - index + 1) * PAGE_SIZE
        };
        *did = true;
        unmap_mapping_range(k, file, index * PAGE_SIZE, len, false);
    };
    if !k.profile.knobs.invalidate_unmap_under_lock {
        while mapped("invalidate_inode_pages2_range: while (page_mapped(page))") {
            unmap(did_range_unmap);
        }
        return;
    }
    if mapped("invalidate_inode_pages2_range: if (page_mapped(page))") {
        unmap(did_range_unmap);
    }
    if mapped("invalidate_inode_pages2_range: BUG_ON(page_mapped(page))") {
        explore::oops(
            Finding::new(
                FindingKind::Kernel,
                "invalidate_inode_pages2_range()",
                "kernel BUG at mm/truncate.c:438!",
            )
            .detail(format!(
                "page pfn:{:05x} index {index} is mapped again after unmap_mapping_range",
                page.pfn
            )),
        );
    }
}

/// `invalidate_complete_page2()` (v2.6.22): under `tree_lock`, a clean
/// page leaves the page cache (a dirty one stays: false), then the page
/// cache's reference is dropped.
fn invalidate_complete_page2(k: &Kernel, file: &AddressSpace, page: &Folio) -> bool {
    let mut tree = file
        .i_pages
        .lock("invalidate_complete_page2: write_lock_irq(&mapping->tree_lock)");
    if page.dirty.get() {
        tree.unlock("invalidate_complete_page2: write_unlock_irq (PageDirty)");
        return false;
    }
    remove_from_page_cache_locked(k, file, &mut tree, page);
    tree.unlock("invalidate_complete_page2: write_unlock_irq(&mapping->tree_lock)");
    page.uptodate.set(false);
    put_folio(k, page);
    true
}
