//! What an actor announces before every scheduling point.
//!
//! Strategies, traces, reports and (later) DPOR are built on these
//! announcements: an [`Access`] names the shared object, what is done to it
//! and a static label such as `"change_pmd_range: read *pmd"`.

/// Identity of a shared object within one execution.
///
/// Ids are handed out in creation order, so the same schedule creates the
/// same ids: reports and replay tokens depend on that.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct ObjectId(pub u32);

/// What an access does to its object.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AccessKind {
    Read,
    Write,
    /// Read-modify-write (xchg, cmpxchg, atomic add).
    ReadModifyWrite,
    /// Lock acquisition (exclusive).
    Acquire,
    /// Shared acquisition of a reader-writer lock.
    AcquireShared,
    /// A trylock: never blocks, may fail.
    TryAcquire,
    Release,
    /// Sleep until the lock is free (wait_on_page_locked and friends).
    WaitUnlocked,
    Alloc,
    Free,
}

impl AccessKind {
    /// Whether the access changes shared state (what reports show by default).
    pub fn changes_state(self) -> bool {
        !matches!(self, AccessKind::Read | AccessKind::WaitUnlocked)
    }

    /// Whether the access changes data an invariant may read (lock
    /// operations cannot break a state invariant): the step that executes
    /// it makes the state due for checking.
    pub fn changes_data(self) -> bool {
        matches!(
            self,
            AccessKind::Write | AccessKind::ReadModifyWrite | AccessKind::Free
        )
    }

    /// Whether two such accesses commute with each other: loads, shared
    /// acquisitions, and waits for a lock to be free.
    pub fn is_read_like(self) -> bool {
        matches!(
            self,
            AccessKind::Read | AccessKind::AcquireShared | AccessKind::WaitUnlocked
        )
    }

    /// Short name used in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            AccessKind::Read => "read",
            AccessKind::Write => "write",
            AccessKind::ReadModifyWrite => "rmw",
            AccessKind::Acquire => "acquire",
            AccessKind::AcquireShared => "acquire-shared",
            AccessKind::TryAcquire => "try-acquire",
            AccessKind::Release => "release",
            AccessKind::WaitUnlocked => "wait-unlocked",
            AccessKind::Alloc => "alloc",
            AccessKind::Free => "free",
        }
    }
}

/// One announced access: object, kind and a static label naming the code.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Access {
    pub object: ObjectId,
    pub kind: AccessKind,
    pub label: &'static str,
}

/// A data change an invariant check may have to look at: the object a
/// step's announced write, read-modify-write or free named, with its
/// registration (class and detail as `rt::new_objects` recorded them, and
/// the index within a block such as a page table's 512 entries).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Touched {
    pub kind: AccessKind,
    pub class: &'static str,
    pub detail: u64,
    pub index: u32,
}
