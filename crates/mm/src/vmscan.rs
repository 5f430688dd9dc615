//! Page reclaim (v2.6.34 mm/vmscan.c) of anonymous pages: the active
//! list's `page_referenced()` pass, then `shrink_page_list()` —
//! `page_referenced()`, `add_to_swap()`, `try_to_unmap()`, the write-out
//! and `__remove_mapping()` — driven by a scenario's `reclaim(addr, len)`
//! (the pages mapped in a range, as kswapd would isolate them) and
//! `hibernate()` (`shrink_all_memory()` over every page on the LRU, the
//! path of the seed 002 oops).
//!
//! Reclaim holds no mmap_sem of the mms whose pages it takes: its rmap
//! walks find the VMAs through `page->mapping` alone.

use std::rc::Rc;

use crate::arch::x86::pgtable::Pte;
use crate::memory::put_folio;
use crate::mm_types::{Folio, FolioKind, Kernel, Task, PAGE_SIZE};
use crate::rmap::{page_referenced, try_to_unmap, SwapResult};
use crate::swap_state::{add_to_swap, remove_mapping};

/// `reclaim(addr, len)`: reclaim the anonymous pages mapped in
/// `[addr, addr + len)` of the task's mm. Returns the pages freed.
pub fn reclaim_range(k: &Kernel, task: &Task, addr: u64, len: u64) -> u64 {
    let _f = explore::enter("kswapd");
    let pages = pages_mapped_in(k, task, addr, len);
    shrink_pages(k, pages)
}

/// `hibernate()` → `hibernate_preallocate_memory()` →
/// `shrink_all_memory()` → `do_try_to_free_pages()`: reclaim every
/// anonymous page on the LRU, in pfn order. Returns the pages freed.
pub fn shrink_all_memory(k: &Kernel, _task: &Task) -> u64 {
    let _h = explore::enter("hibernate");
    let _f = explore::enter("shrink_all_memory");
    let pages = k
        .mem
        .folios()
        .into_iter()
        .filter(|f| f.kind.get() == FolioKind::Anon && f.order == 0)
        .collect();
    shrink_pages(k, pages)
}

/// The anonymous small pages the range maps, each once, in address
/// order: the page tables are read under mmap_sem like any walker's.
fn pages_mapped_in(k: &Kernel, task: &Task, addr: u64, len: u64) -> Vec<Rc<Folio>> {
    let mmap = task.mm.mmap_lock.read("down_read(&mm->mmap_sem)");
    let mut pages: Vec<Rc<Folio>> = Vec::new();
    let mut at = addr;
    while at < addr.saturating_add(len) {
        let pte = pte_of(k, task, at);
        if k.pte_present(Pte(pte)) && !k.pte_special(Pte(pte)) {
            if let Some(f) = k.mem.pfn_folio(k.pte_pfn(Pte(pte))) {
                if matches!(f.kind.get(), FolioKind::Anon | FolioKind::File)
                    && f.order == 0
                    && !pages.iter().any(|p| Rc::ptr_eq(p, &f))
                {
                    pages.push(f);
                }
            }
        }
        at += PAGE_SIZE;
    }
    mmap.unlock("up_read(&mm->mmap_sem)");
    pages
}

/// The pte mapping `addr`, read level by level like any walker holding
/// mmap_sem for reading (faults may populate the levels meanwhile).
fn pte_of(k: &Kernel, task: &Task, addr: u64) -> u64 {
    use crate::pgtable::{pgd_offset, pmd_offset, pte_offset, pud_offset};
    let pgd = pgd_offset(&task.mm, addr).read("reclaim: *pgd");
    let Some(pud) = pud_offset(k, pgd, addr) else {
        return 0;
    };
    let Some(pmd) = pmd_offset(k, pud.read("reclaim: *pud"), addr) else {
        return 0;
    };
    pte_offset(k, pmd.read("reclaim: *pmd"), addr).map_or(0, |pte| pte.read("reclaim: *pte"))
}

/// `isolate_lru_pages()`, `shrink_active_list()` (an anonymous page is
/// deactivated whether referenced or not, its accessed bits cleared), then
/// `shrink_inactive_list()` → `shrink_page_list()`, then putback.
fn shrink_pages(k: &Kernel, pages: Vec<Rc<Folio>>) -> u64 {
    let isolated: Vec<Rc<Folio>> = pages.into_iter().filter(|f| isolate_lru_page(f)).collect();
    {
        let _f = explore::enter("shrink_active_list");
        for page in &isolated {
            page_referenced(k, page, false);
        }
    }
    let _f = explore::enter("shrink_inactive_list");
    let mut reclaimed = 0;
    for page in &isolated {
        if shrink_page_list(k, page) {
            reclaimed += 1;
        } else {
            putback_lru_page(k, page);
        }
    }
    reclaimed
}

/// `__isolate_lru_page()` (v2.6.34, under the zone's lru_lock): off the
/// LRU with a reference taken by `get_page_unless_zero()`, which fails on
/// a page whose last reference is being dropped.
fn isolate_lru_page(folio: &Folio) -> bool {
    if !folio.lru.get() || !matches!(folio.kind.get(), FolioKind::Anon | FolioKind::File) {
        return false;
    }
    if !folio
        .refcount
        .inc_not_zero("__isolate_lru_page: get_page_unless_zero")
    {
        return false;
    }
    folio.lru.set(false);
    true
}

/// `putback_lru_page()`.
fn putback_lru_page(k: &Kernel, folio: &Folio) {
    folio.lru.set(true);
    put_folio(k, folio);
}

/// `shrink_page_list()` (v2.6.34) for one isolated anonymous page.
/// Returns true if the page was freed (`free_it`); false if it goes back
/// to the LRU (`keep`, `activate_locked`).
fn shrink_page_list(k: &Kernel, page: &Rc<Folio>) -> bool {
    let _f = explore::enter("shrink_page_list");
    if !page.lock.try_lock("shrink_page_list: trylock_page") {
        return false;
    }
    let freed = reclaim_locked_page(k, page);
    if !freed {
        page.lock.unlock("shrink_page_list: unlock_page");
    }
    freed
}

/// The body of shrink_page_list for a locked page.
fn reclaim_locked_page(k: &Kernel, page: &Rc<Folio>) -> bool {
    // page_check_references(): a referenced page is activated.
    if page_referenced(k, page, true) > 0 {
        return false;
    }
    if page.kind.get() == FolioKind::File {
        return reclaim_file_page(k, page);
    }
    if page.swap.get().is_none() && !add_to_swap(k, page) {
        return false;
    }
    if page.mapcount.read("shrink_page_list: page_mapped(page)") > 0
        && try_to_unmap(k, page) != SwapResult::Success
    {
        return false;
    }
    pageout(k, page);
    if !remove_mapping(k, page) {
        return false;
    }
    // free_it: the references are frozen at zero; the page is freed
    // unlocked (`__clear_page_locked()`), which clears page->mapping.
    page.lock.unlock("shrink_page_list: __clear_page_locked");
    k.mem.free_folio(page);
    true
}

/// shrink_page_list for a locked, unreferenced page-cache page (v2.6.23):
/// unmap it everywhere, keep it if dirty (write-back from reclaim is not
/// modelled), else take it out of the page cache if nobody else holds it
/// (`remove_mapping()`: the page cache's and reclaim's references only)
/// and free it.
fn reclaim_file_page(k: &Kernel, page: &Rc<Folio>) -> bool {
    if page.mapcount.read("shrink_page_list: page_mapped(page)") > 0
        && try_to_unmap(k, page) != SwapResult::Success
    {
        return false;
    }
    if page.dirty.get() {
        return false;
    }
    let Some(file) = page
        .mapping
        .read("remove_mapping: page->mapping")
        .and_then(|id| k.file(id))
    else {
        return false;
    };
    let mut tree = file
        .i_pages
        .lock("remove_mapping: write_lock_irq(&mapping->tree_lock)");
    if !page
        .refcount
        .cmpxchg("remove_mapping: page_count(page) != 2", 2, 0)
    {
        tree.unlock("remove_mapping: write_unlock_irq(&mapping->tree_lock)");
        return false;
    }
    crate::filemap::remove_from_page_cache_locked(k, &file, &mut tree, page);
    tree.unlock("remove_mapping: write_unlock_irq(&mapping->tree_lock)");
    page.uptodate.set(false);
    page.lock.unlock("shrink_page_list: unlock_page");
    k.mem.free_folio(page);
    true
}

/// `pageout()` → `swap_writepage()`: the page's contents go to its slot.
/// The model's write completes at once, leaving the page clean.
fn pageout(k: &Kernel, page: &Folio) {
    let _f = explore::enter("pageout");
    let Some(offset) = page.swap.get() else {
        return;
    };
    let data = page.data.borrow()[0].clone();
    k.swap.write_disk(offset, data);
}
