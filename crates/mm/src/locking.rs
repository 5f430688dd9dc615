//! The lock order of the model, in one place.
//!
//! Each lock class has a rank; a lock may be taken while holding only locks
//! of lower rank (the explorer's lockdep-lite checks this on every
//! acquisition). The order follows the comment at the top of mm/rmap.c
//! (v6.1), restricted to the locks the model has:
//!
//! ```text
//! inode->i_mutex
//!   mmap_lock
//!     folio_lock (PG_locked)
//!       mapping->i_mmap_lock
//!         anon_vma->rwsem
//!           mm->page_table_lock or pte_lock / pmd_lock
//!             mapping->tree_lock
//! ```
//!
//! `i_mutex` above `mmap_lock` and `tree_lock` innermost are from the
//! comment at the top of mm/filemap.c (v2.6.22), `i_mmap_lock` between the
//! page lock and the anon_vma lock from mm/rmap.c (v2.6.22).
//!
//! `docs/LOCKING.md` repeats this table; a test keeps the two in step.

use explore::LockClass;

/// `inode->i_mutex`: truncate and file writes.
pub static I_MUTEX: LockClass = LockClass {
    name: "i_mutex",
    rank: 5,
    nests: false,
    spin: false,
};
/// `mm->mmap_lock` (rw_semaphore).
pub static MMAP_LOCK: LockClass = LockClass {
    name: "mmap_lock",
    rank: 10,
    nests: false,
    spin: false,
};
/// `PG_locked` of a folio (sleeping bit lock). Migration holds two: the
/// source and the destination folio.
pub static FOLIO_LOCK: LockClass = LockClass {
    name: "folio_lock",
    rank: 20,
    nests: true,
    spin: false,
};
/// `mapping->i_mmap_lock` (v2.6.22; `i_mmap_rwsem` today).
pub static I_MMAP_LOCK: LockClass = LockClass {
    name: "i_mmap_lock",
    rank: 25,
    nests: false,
    spin: true,
};
/// `anon_vma->root->rwsem`.
pub static ANON_VMA_LOCK: LockClass = LockClass {
    name: "anon_vma->rwsem",
    rank: 30,
    nests: false,
    spin: false,
};
/// `mm->page_table_lock`: populating upper-level tables, and the pmd lock
/// when split PMD locks are off.
pub static PAGE_TABLE_LOCK: LockClass = LockClass {
    name: "mm->page_table_lock",
    rank: 40,
    nests: false,
    spin: true,
};
/// Split PMD lock: `ptlock_ptr(pmd table page)`.
pub static PMD_LOCK: LockClass = LockClass {
    name: "pmd_lock",
    rank: 41,
    nests: false,
    spin: true,
};
/// Split PTE lock: `ptlock_ptr(pte table page)`.
pub static PTE_LOCK: LockClass = LockClass {
    name: "pte_lock",
    rank: 42,
    nests: false,
    spin: true,
};

/// `mapping->tree_lock` (v2.6.22; the `i_pages` xarray lock today).
pub static TREE_LOCK: LockClass = LockClass {
    name: "tree_lock",
    rank: 50,
    nests: false,
    spin: true,
};

/// Every lock class, in acquisition order (lowest rank first).
pub static LOCK_ORDER: [&LockClass; 9] = [
    &I_MUTEX,
    &MMAP_LOCK,
    &FOLIO_LOCK,
    &I_MMAP_LOCK,
    &ANON_VMA_LOCK,
    &PAGE_TABLE_LOCK,
    &PMD_LOCK,
    &PTE_LOCK,
    &TREE_LOCK,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_increase_along_the_order() {
        for w in LOCK_ORDER.windows(2) {
            assert!(w[0].rank < w[1].rank, "{} before {}", w[0].name, w[1].name);
        }
    }
}
