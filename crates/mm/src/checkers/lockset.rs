//! INV-LOCKSET: declared lock rules checked at every access they govern,
//! Eraser-style — a breach is a breach on every schedule, whether or not
//! another actor's access lands in the window it opens.
//!
//! The rules live with the fields they protect (`Folio::xen`,
//! `Folio::table`); this module states how to check them:
//!
//! - **A PTE page's entries and its Xen state** (seed 004): a direct store
//!   into a PTE page, and a change of the page's Xen state (read-only,
//!   pinned), hold the page's pte lock — what `pte_lockptr()` returns: its
//!   split lock, or `mm->page_table_lock` without split pte locks.
//!
//! A breach is recorded where it happens (the first of the execution) and
//! reported by [`check`] at the end of the concurrent phase if nothing
//! else was found first: the breach need not hurt in this schedule, and a
//! kernel oops the same window causes is the better report when it comes.

use explore::{Finding, FindingKind, ObjectId};

use crate::mm_types::{Folio, FolioKind, Kernel, MmStruct};

/// A rule broken: what was done, by whom, and which lock it needed.
#[derive(Clone, Debug)]
pub struct Breach {
    pub what: String,
    pub actor: String,
    pub lock: &'static str,
}

/// The lock `pte_lockptr()` returns for PTE page `table` of `mm`, with
/// its name.
fn pte_lock_of(k: &Kernel, mm: &MmStruct, table: &Folio) -> Option<(ObjectId, &'static str)> {
    if k.profile.knobs.split_ptlocks {
        let ptl = table.ptl.borrow();
        return ptl
            .as_ref()
            .map(|l| (l.id(), "its split pte lock (page->ptl)"));
    }
    Some((mm.page_table_lock.id(), "mm->page_table_lock"))
}

/// The rule of a PTE page: `what` (a direct store, a Xen state change)
/// to `table`, a page table of `mm`, holds its pte lock.
pub fn pte_page_access(k: &Kernel, mm: &MmStruct, table: &Folio, what: impl FnOnce() -> String) {
    if table.kind.get() != FolioKind::PageTable(1) || k.lockset.borrow().is_some() {
        return;
    }
    let Some((lock, name)) = pte_lock_of(k, mm, table) else {
        return;
    };
    if explore::rt::holds(lock) {
        return;
    }
    *k.lockset.borrow_mut() = Some(Breach {
        what: what(),
        actor: explore::rt::current_actor_name(),
        lock: name,
    });
}

/// The breach recorded this execution, as a finding.
pub fn check(k: &Kernel) -> Option<Finding> {
    let b = k.lockset.borrow().clone()?;
    Some(
        Finding::new(
            FindingKind::Invariant,
            "INV-LOCKSET",
            format!("INV-LOCKSET: {} without {}", b.what, b.lock),
        )
        .detail(format!("by {}", b.actor))
        .detail(
            "the pte lock is what orders a PTE page's stores and Xen state changes against each \
             other; rmap (page_referenced_one, try_to_unmap_one) takes only that lock, so it may \
             store into the page while it is read-only and not pinned",
        ),
    )
}
