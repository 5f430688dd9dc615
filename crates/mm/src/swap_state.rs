//! The swap cache (v2.6.34 mm/swap_state.c): `add_to_swap()`,
//! `delete_from_swap_cache()`, `lookup_swap_cache()` and
//! `read_swap_cache_async()`. A page in the swap cache keeps
//! `page->mapping` (its anon_vma): only freeing the page clears it.

use std::rc::Rc;

use crate::memory::{get_folio, put_folio};
use crate::mm_types::{Folio, FolioKind, Kernel};
use crate::swapfile::{get_swap_page, swapcache_free};

/// `add_to_swap()`: give a locked anonymous page a slot and put it in the
/// swap cache (`__add_to_swap_cache()`: a reference for the cache,
/// `PG_swapcache`, `page_private`). The model's swap area never fills.
pub fn add_to_swap(k: &Kernel, folio: &Rc<Folio>) -> bool {
    // The cache's reference first: slot and cache entry then appear in
    // one step, as under swap_lock and the tree lock.
    get_folio(folio);
    let offset = get_swap_page(k);
    folio.swap.set(Some(offset));
    k.swap.cache_insert(offset, folio.clone());
    true
}

/// `delete_from_swap_cache()`: the locked page leaves the cache, its slot
/// loses `SWAP_HAS_CACHE`, and the cache's reference is dropped.
pub fn delete_from_swap_cache(k: &Kernel, folio: &Folio) {
    let Some(offset) = folio.swap.take() else {
        return;
    };
    k.swap.cache_remove(offset);
    swapcache_free(k, offset);
    put_folio(k, folio);
}

/// `lookup_swap_cache()` → `find_get_page()`: the cached page of a slot,
/// with a reference taken speculatively (`page_cache_get_speculative()`
/// fails on a page whose references reclaim froze to zero) and the cache
/// looked up again, as a page may leave it meanwhile.
pub fn lookup_swap_cache(k: &Kernel, offset: u64) -> Option<Rc<Folio>> {
    loop {
        let folio = k.swap.cached(offset)?;
        if !folio
            .refcount
            .inc_not_zero("find_get_page: page_cache_get_speculative")
        {
            continue;
        }
        if k.swap
            .cached(offset)
            .is_some_and(|f| Rc::ptr_eq(&f, &folio))
        {
            return Some(folio);
        }
        put_folio(k, &folio);
    }
}

/// `__remove_mapping()` for a swap-cache page (v2.6.34 mm/vmscan.c):
/// freeze the references at exactly two (the isolation's and the cache's:
/// nobody maps or looks it up) and take the page out of the cache in the
/// same step; the caller frees it. False if someone else holds it.
pub fn remove_mapping(k: &Kernel, folio: &Folio) -> bool {
    if !folio
        .refcount
        .cmpxchg("__remove_mapping: page_freeze_refs(page, 2)", 2, 0)
    {
        return false;
    }
    let offset = folio.swap.take().expect("a swap-cache page");
    k.swap.cache_remove(offset);
    swapcache_free(k, offset);
    true
}

/// `read_swap_cache_async()` / `swapin_readahead()` on a cache miss: a
/// new page (mapping NULL, not yet PageAnon) joins the swap cache with the
/// slot's contents (`swap_readpage()` completes at once in the model).
/// `swapcache_prepare()` claims the slot first: a racing swap-in that
/// finds `SWAP_HAS_CACHE` set (-EEXIST) frees its page and looks the cache
/// up again. Returns the page with the caller's reference, or None if the
/// page allocation failed.
pub fn read_swap_cache_async(k: &Kernel, node: u32, offset: u64) -> Option<Rc<Folio>> {
    loop {
        if let Some(folio) = lookup_swap_cache(k, offset) {
            return Some(folio);
        }
        let folio = k.mem.alloc_pages(node, 0, FolioKind::Anon)?;
        // The swap cache's reference, taken while nobody else can see the
        // page (`page_cache_get()` in `__add_to_swap_cache()`).
        get_folio(&folio);
        if !crate::swapfile::swapcache_prepare(k, offset) {
            k.mem.free_folio(&folio);
            continue;
        }
        // __add_to_swap_cache() and swap_readpage(), in the step that
        // claimed the slot: nobody sees the page before it is complete.
        if let Some(data) = k.swap.disk(offset) {
            folio.data.borrow_mut()[0] = data;
        }
        folio.swap.set(Some(offset));
        k.swap.cache_insert(offset, folio.clone());
        folio.lru.set(true);
        return Some(folio);
    }
}

/// `free_swap_cache()` (from `free_page_and_swap_cache()`, the zap's
/// `tlb_remove_page()`): a swap-cache page just unmapped leaves the cache
/// if no swap pte refers to its slot any more and its lock is free.
pub fn free_swap_cache(k: &Kernel, folio: &Folio) {
    if folio.swap.get().is_none()
        || folio.mapcount.read("free_swap_cache: page_mapped(page)") > 0
        || !folio.lock.try_lock("free_swap_cache: trylock_page")
    {
        return;
    }
    crate::swapfile::try_to_free_swap(k, folio);
    folio.lock.unlock("free_swap_cache: unlock_page");
}
