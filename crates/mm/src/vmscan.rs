//! Page reclaim (v2.6.34 mm/vmscan.c): `shrink_page_list()` on anonymous
//! pages — `page_referenced()`, `add_to_swap()`, `try_to_unmap()`, the
//! write-out and `__remove_mapping()` — driven by a scenario's
//! `reclaim(addr, len)` (the pages mapped in a range, as kswapd would
//! isolate them) and `hibernate()` (`shrink_all_memory()` over every page
//! on the LRU, the path of the seed 002 oops).

use crate::mm_types::{Kernel, Task};

/// `reclaim(addr, len)`: isolate the anonymous pages mapped in
/// `[addr, addr + len)` of the task's mm and run `shrink_page_list()` on
/// them. Returns the number of pages reclaimed.
pub fn reclaim_range(_k: &Kernel, _task: &Task, _addr: u64, _len: u64) -> u64 {
    explore::unsupported("reclaim(): under construction")
}

/// `hibernate()` → `hibernate_preallocate_memory()` →
/// `shrink_all_memory()`: reclaim every page on the LRU. Returns the number
/// of pages reclaimed.
pub fn shrink_all_memory(_k: &Kernel, _task: &Task) -> u64 {
    explore::unsupported("hibernate(): under construction")
}
