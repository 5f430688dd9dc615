//! Generic invariant checkers (seed-bugs.md §0.4). They live apart from the
//! code they check, read state only through ghost accesses (`peek`), and
//! recompute everything from scratch: no checker knows any specific bug.
//!
//! - INV-NO-LOST-MAPPING and INV-DATA (`mapping.rs`): data the user wrote
//!   stays reachable through the page tables and holds what was written.
//! - INV-ACCT (`acct.rs`): mapcounts, rss and pgtables_bytes equal a census
//!   of the page tables.
//! - INV-XEN-ABI and INV-DECODE (`decode.rs`): entries hold the frame kind
//!   the platform requires, and decode to the page the reverse map places
//!   there.
//! - INV-LIFETIME (`lifetime.rs`): no entry leads to a freed page; no live
//!   VMA, anon_vma list or mapped page leads to a freed anon_vma,
//!   anon_vma_chain or VMA.
//! - INV-RMAP-ANON (`rmap_anon.rs`): VMAs, anon_vma chains and lists agree,
//!   and every mapped anonymous page is where the rmap walk will look.
//! - INV-LOCK-DERIV (`lock_deriv.rs`): a page-table lock is only taken
//!   through a pointer derived from a live page table.
//! - INV-LOCKSET (`lockset.rs`): declared lock rules, checked at each
//!   access they govern and reported at the end of the concurrent phase.
//! - INV-PC-COHERENT and INV-DATA of regular files (`pagecache.rs`): a
//!   mapped file page is the page the page cache holds there, nothing
//!   stays mapped past EOF after truncate, and the file's pages, blocks
//!   and mappings hold what was written.
//!
//! [`check_all`] runs them over the whole state; after a step,
//! `incremental.rs` runs the same verdicts over what the step touched.

pub mod acct;
pub mod decode;
pub mod incremental;
pub mod lifetime;
pub mod lock_deriv;
pub mod lockset;
pub mod mapping;
pub mod pagecache;
pub mod rmap_anon;
pub mod walk;

use explore::Finding;

use crate::mm_types::Kernel;

/// Runs every state checker; the first violation wins. The page tables of
/// each live mm are walked once and shared by the checkers.
pub fn check_all(k: &Kernel) -> Option<Finding> {
    let mms = k.mms.borrow();
    let censuses: Vec<(&crate::mm_types::MmStruct, walk::Census)> = mms
        .iter()
        .filter(|m| !m.exited.get())
        .map(|m| (&**m, walk::census(k, m)))
        .collect();
    decode::check(k, &censuses)
        .or_else(|| lifetime::check(k, &censuses))
        .or_else(|| rmap_anon::check(k, &censuses))
        .or_else(|| mapping::check(k, &censuses))
        .or_else(|| pagecache::check(k, &censuses))
        .or_else(|| acct::check(k, &censuses))
}
