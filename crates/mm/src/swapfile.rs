//! The swap device (v2.6.34 mm/swapfile.c): `swap_map` counts per slot,
//! `get_swap_page()`, `swap_duplicate()`, `swap_free()`,
//! `swapcache_free()`, `page_swapcount()`, `reuse_swap_page()`,
//! `try_to_free_swap()` and `free_swap_and_cache()`; and the slots'
//! contents, which `swap_writepage()` fills and a swap-in reads back.
//!
//! One swap area (type 0), large enough never to be `vm_swap_full()`.
//! Offset 0 holds the swap header and is never handed out.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::mm_types::{Folio, Kernel, PageData};

/// `SWAP_HAS_CACHE`: the slot's page is in the swap cache.
pub const SWAP_HAS_CACHE: u8 = 0x40;
/// `SWAP_MAP_MAX`: more references need a count continuation (not
/// modelled: a scenario has far fewer mappings).
pub const SWAP_MAP_MAX: u8 = 0x3e;

/// `struct swap_info_struct` of the one swap area, with `swapper_space`.
///
/// Protected by: `swap_lock` (`swap_map`) and `swapper_space.tree_lock`
/// (the cache). Each operation below is one step of the model, as the
/// kernel does it under those spinlocks; nobody reads them locklessly
/// except `page_swapcount()` callers, who hold the page lock.
#[derive(Default)]
pub struct SwapInfo {
    /// `swap_map[offset]`: pte references | `SWAP_HAS_CACHE`. A slot is
    /// free when absent. Invariant (INV-ACCT): the count equals the swap
    /// ptes holding the slot.
    map: RefCell<BTreeMap<u64, u8>>,
    /// `swapper_space`: offset → the page in the swap cache. Each such page
    /// has `Folio::swap == Some(offset)` and holds a reference for the cache.
    cache: RefCell<BTreeMap<u64, Rc<Folio>>>,
    /// What `swap_writepage()` wrote to each slot.
    disk: RefCell<BTreeMap<u64, PageData>>,
}

impl SwapInfo {
    /// `swap_map[offset]` (ghost read for checkers too).
    pub fn count(&self, offset: u64) -> u8 {
        self.map.borrow().get(&offset).copied().unwrap_or(0)
    }

    /// Every slot in use: offset and `swap_map` value.
    pub fn slots(&self) -> Vec<(u64, u8)> {
        self.map.borrow().iter().map(|(o, c)| (*o, *c)).collect()
    }

    /// `find_get_page(&swapper_space, entry.val)` without the reference.
    pub fn cached(&self, offset: u64) -> Option<Rc<Folio>> {
        self.cache.borrow().get(&offset).cloned()
    }

    /// Every page in the swap cache.
    pub fn cached_pages(&self) -> Vec<Rc<Folio>> {
        self.cache.borrow().values().cloned().collect()
    }

    /// The slot's contents as last written.
    pub fn disk(&self, offset: u64) -> Option<PageData> {
        self.disk.borrow().get(&offset).cloned()
    }

    pub(crate) fn cache_insert(&self, offset: u64, folio: Rc<Folio>) {
        self.cache.borrow_mut().insert(offset, folio);
    }

    pub(crate) fn cache_remove(&self, offset: u64) {
        self.cache.borrow_mut().remove(&offset);
    }

    pub(crate) fn write_disk(&self, offset: u64, data: PageData) {
        self.disk.borrow_mut().insert(offset, data);
    }

    fn set(&self, offset: u64, v: u8) {
        if v == 0 {
            self.map.borrow_mut().remove(&offset);
            self.disk.borrow_mut().remove(&offset);
        } else {
            self.map.borrow_mut().insert(offset, v);
        }
    }
}

/// `get_swap_page()`: the lowest free slot, its count `SWAP_HAS_CACHE`.
pub fn get_swap_page(k: &Kernel) -> u64 {
    let map = k.swap.map.borrow();
    let offset = (1..).find(|o| !map.contains_key(o)).expect("a free slot");
    drop(map);
    k.swap.set(offset, SWAP_HAS_CACHE);
    offset
}

/// `swap_duplicate()`: one more pte refers to the slot.
pub fn swap_duplicate(k: &Kernel, offset: u64) {
    let c = k.swap.count(offset);
    if c & !SWAP_HAS_CACHE >= SWAP_MAP_MAX {
        explore::unsupported("swap count continuations (add_swap_count_continuation)");
    }
    k.swap.set(offset, c + 1);
}

/// `swap_entry_free()`: drop one pte reference, or the cache flag
/// (`cache`); returns what is left. Dropping what is not there is the
/// kernel's "swap_free: Unused swap offset" / VM_BUG_ON.
fn swap_entry_free(k: &Kernel, offset: u64, cache: bool) -> u8 {
    let c = k.swap.count(offset);
    let left = if cache {
        if c & SWAP_HAS_CACHE == 0 {
            explore::oops(crate::debug::bug_on(format!(
                "swapcache_free: slot {offset:#x} has no SWAP_HAS_CACHE"
            )));
        }
        c & !SWAP_HAS_CACHE
    } else {
        if c & !SWAP_HAS_CACHE == 0 {
            explore::raise(explore::Finding::new(
                explore::FindingKind::Kernel,
                "swap_info_get()",
                format!("swap_free: Unused swap offset entry {:08x}", offset << 9),
            ));
            return c;
        }
        c - 1
    };
    k.swap.set(offset, left);
    left
}

/// `swap_free()`: a pte that held the slot is gone (swap-in, zap).
pub fn swap_free(k: &Kernel, offset: u64) {
    swap_entry_free(k, offset, false);
}

/// `swapcache_free()`: the page left the swap cache.
pub fn swapcache_free(k: &Kernel, offset: u64) {
    swap_entry_free(k, offset, true);
}

/// `page_swapcount()`: pte references to the slot of a swap-cache page
/// (caller holds the page lock).
pub fn page_swapcount(k: &Kernel, folio: &Folio) -> i64 {
    folio
        .swap
        .get()
        .map_or(0, |o| i64::from(k.swap.count(o) & !SWAP_HAS_CACHE))
}

/// `reuse_swap_page()` (v2.6.34): the faulting mapping is the page's only
/// user (mapcount plus swap references at most one); if so and the page
/// is in the swap cache, it leaves the cache (its slot is no longer
/// needed). Caller holds the page lock.
pub fn reuse_swap_page(k: &Kernel, folio: &Folio) -> bool {
    let mut count = folio.mapcount.read("reuse_swap_page: page_mapcount()");
    if count <= 1 && folio.swap.get().is_some() {
        count += page_swapcount(k, folio);
        if count == 1 {
            crate::swap_state::delete_from_swap_cache(k, folio);
        }
    }
    count <= 1
}

/// `try_to_free_swap()`: a locked swap-cache page no pte refers to by its
/// slot any more leaves the cache.
pub fn try_to_free_swap(k: &Kernel, folio: &Folio) -> bool {
    if folio.swap.get().is_none() || page_swapcount(k, folio) != 0 {
        return false;
    }
    crate::swap_state::delete_from_swap_cache(k, folio);
    true
}

/// `free_swap_and_cache()` (zap of a swap pte): drop the pte's reference;
/// if only the cache holds the slot and the page is unmapped and unlocked
/// (`trylock_page`), drop it from the cache too.
pub fn free_swap_and_cache(k: &Kernel, offset: u64) {
    if swap_entry_free(k, offset, false) != SWAP_HAS_CACHE {
        return;
    }
    let Some(folio) = k.swap.cached(offset) else {
        return;
    };
    if !folio.lock.try_lock("free_swap_and_cache: trylock_page") {
        return;
    }
    if folio.mapcount.read("free_swap_and_cache: page_mapped()") == 0 {
        crate::swap_state::delete_from_swap_cache(k, &folio);
    }
    folio.lock.unlock("free_swap_and_cache: unlock_page");
}

/// `swapcache_prepare()` (`__swap_duplicate(entry, SWAP_HAS_CACHE)`): claim
/// the slot for a page being read into the cache. False (-EEXIST) if a
/// page is already in the cache for it.
pub fn swapcache_prepare(k: &Kernel, offset: u64) -> bool {
    let c = k.swap.count(offset);
    if c & SWAP_HAS_CACHE != 0 {
        return false;
    }
    k.swap.set(offset, c | SWAP_HAS_CACHE);
    true
}
