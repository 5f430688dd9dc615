//! The only way model code touches shared state.
//!
//! Every operation here is a scheduling point that first announces an
//! [`Access`]. Data protected by a lock lives inside the lock, so touching it
//! through a guard is not a scheduling point: only lock operations and
//! lockless accesses are. Outside an execution (plain unit tests) the same
//! operations run directly.

use std::cell::{Cell, UnsafeCell};
use std::ops::{Deref, DerefMut};

use crate::access::{Access, AccessKind, ObjectId};
use crate::finding::{Finding, FindingKind};
use crate::rt::{self, LockClass, LockWord, Wait};

fn access(object: ObjectId, kind: AccessKind, label: &'static str) -> Access {
    Access {
        object,
        kind,
        label,
    }
}

/// A 64-bit word read and written locklessly (a PTE or PMD entry, a
/// refcount): each access is its own scheduling point.
#[derive(Debug)]
pub struct AtomicSlot {
    id: ObjectId,
    val: Cell<u64>,
}

impl AtomicSlot {
    pub fn new(class: &'static str, detail: u64, init: u64) -> Self {
        AtomicSlot {
            id: rt::new_object(class, detail),
            val: Cell::new(init),
        }
    }

    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// A lockless load (`READ_ONCE`, a plain `*pmd`).
    #[inline]
    pub fn read(&self, label: &'static str) -> u64 {
        let a = access(self.id, AccessKind::Read, label);
        rt::point(a, Wait::Nothing);
        let v = self.val.get();
        rt::traced(a, None, Some(v));
        v
    }

    /// A store (`WRITE_ONCE`, `set_pmd_at`).
    #[inline]
    pub fn write(&self, label: &'static str, v: u64) {
        let a = access(self.id, AccessKind::Write, label);
        rt::point(a, Wait::Nothing);
        let old = self.val.replace(v);
        rt::traced(a, Some(old), Some(v));
    }

    /// An atomic exchange (`xchg`, `pmdp_establish`); returns the old value.
    pub fn xchg(&self, label: &'static str, v: u64) -> u64 {
        let a = access(self.id, AccessKind::ReadModifyWrite, label);
        rt::point(a, Wait::Nothing);
        let old = self.val.replace(v);
        rt::traced(a, Some(old), Some(v));
        old
    }

    /// An atomic add (`atomic_add_return`); returns the new value.
    pub fn add(&self, label: &'static str, delta: i64) -> u64 {
        let a = access(self.id, AccessKind::ReadModifyWrite, label);
        rt::point(a, Wait::Nothing);
        let old = self.val.get();
        let v = old.wrapping_add(delta as u64);
        self.val.set(v);
        rt::traced(a, Some(old), Some(v));
        v
    }

    /// A load by code that holds the slot's lock. It is still a scheduling
    /// point: page-table entries have writers that do not take the lock
    /// (`pmd_clear_bad()`, the MMU setting accessed and dirty bits), and a
    /// read partial-order reduction cannot see is a read it cannot reorder
    /// against them. The name records the locking for readers of the model.
    #[inline]
    pub fn read_locked(&self, label: &'static str) -> u64 {
        self.read(label)
    }

    /// The value, for checkers and reports (ghost access: no announcement).
    pub fn peek(&self) -> u64 {
        self.val.get()
    }
}

/// An `atomic_t` / `atomic_long_t` (a refcount, a mapcount): a signed
/// counter whose every operation, reads included, is a scheduling point.
#[derive(Debug)]
pub struct AtomicCounter(AtomicSlot);

impl AtomicCounter {
    pub fn new(class: &'static str, detail: u64, init: i64) -> Self {
        AtomicCounter(AtomicSlot::new(class, detail, init as u64))
    }

    pub fn id(&self) -> ObjectId {
        self.0.id()
    }

    /// `atomic_read()`.
    #[inline]
    pub fn read(&self, label: &'static str) -> i64 {
        self.0.read(label) as i64
    }

    /// `atomic_add_return()`; returns the new value.
    #[inline]
    pub fn add_return(&self, label: &'static str, delta: i64) -> i64 {
        self.0.add(label, delta) as i64
    }

    /// `atomic_set()`.
    #[inline]
    pub fn set(&self, label: &'static str, v: i64) {
        self.0.write(label, v as u64)
    }

    /// `atomic_inc_not_zero()` (a cmpxchg loop: one atomic step); returns
    /// whether it incremented.
    pub fn inc_not_zero(&self, label: &'static str) -> bool {
        let a = access(self.id(), AccessKind::ReadModifyWrite, label);
        rt::point(a, Wait::Nothing);
        let old = self.0.val.get();
        if old != 0 {
            self.0.val.set(old.wrapping_add(1));
        }
        rt::traced(a, Some(old), Some(self.0.val.get()));
        old != 0
    }

    /// `atomic_cmpxchg()` (`page_freeze_refs()`): one atomic step; returns
    /// whether the counter was `old` (and is now `new`).
    pub fn cmpxchg(&self, label: &'static str, old: i64, new: i64) -> bool {
        let a = access(self.id(), AccessKind::ReadModifyWrite, label);
        rt::point(a, Wait::Nothing);
        let cur = self.0.val.get();
        let hit = cur == old as u64;
        if hit {
            self.0.val.set(new as u64);
        }
        rt::traced(a, Some(cur), Some(self.0.val.get()));
        hit
    }

    /// The value, for checkers and reports (ghost access).
    pub fn peek(&self) -> i64 {
        self.0.peek() as i64
    }
}

/// A lock holding the data it protects. Spinlocks and sleeping mutexes
/// differ only in their [`LockClass`] (invariant checks wait for spinlocks
/// to be released, not for mutexes).
pub struct Lock<T> {
    id: ObjectId,
    class: &'static LockClass,
    word: Cell<LockWord>,
    data: UnsafeCell<T>,
}

/// `spinlock_t` with the data it protects.
pub type SpinLock<T> = Lock<T>;
/// `struct mutex` with the data it protects.
pub type Mutex<T> = Lock<T>;

impl<T> Lock<T> {
    pub fn new(class: &'static LockClass, detail: u64, data: T) -> Self {
        Lock {
            id: rt::new_object(class.name, detail),
            class,
            word: Cell::new(LockWord::default()),
            data: UnsafeCell::new(data),
        }
    }

    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// Acquires the lock, blocking while another actor holds it.
    pub fn lock(&self, label: &'static str) -> LockGuard<'_, T> {
        let a = access(self.id, AccessKind::Acquire, label);
        rt::point(a, Wait::Exclusive(&self.word));
        self.grant(a)
    }

    /// `spin_lock()` without a guard, for kernel-style code that unlocks in
    /// another function; pair with [`Lock::unlock_raw`].
    pub fn lock_raw(&self, label: &'static str) {
        std::mem::forget(self.lock(label));
    }

    /// `spin_lock_nest_lock(lock, outer)`: like [`Lock::lock_raw`], for
    /// code that holds several locks of this class at once under `outer`
    /// (a lock it already holds, which serialises the nesting: lockdep's
    /// nest_lock annotation). Checked against the order like any lock,
    /// but not against the other locks of its class.
    pub fn lock_nest_raw(&self, label: &'static str, outer: ObjectId) {
        let a = access(self.id, AccessKind::Acquire, label);
        rt::point(a, Wait::Exclusive(&self.word));
        if !self.word.get().is_free() {
            rt::oops(self_deadlock(a));
        }
        self.word.set(LockWord {
            writer: rt::current_owner(),
            readers: 0,
        });
        rt::acquired_nested(self.id, self.class, outer);
        rt::traced(a, None, None);
    }

    /// `spin_unlock()` of a lock taken with [`Lock::lock_raw`].
    pub fn unlock_raw(&self, label: &'static str) {
        self.release(label);
    }

    /// Tries once; never blocks.
    pub fn try_lock(&self, label: &'static str) -> Option<LockGuard<'_, T>> {
        let a = access(self.id, AccessKind::TryAcquire, label);
        rt::point(a, Wait::Nothing);
        if !self.word.get().is_free() {
            rt::traced(a, None, Some(0));
            return None;
        }
        Some(self.grant(a))
    }

    fn grant(&self, a: Access) -> LockGuard<'_, T> {
        let ordered = a.kind != AccessKind::TryAcquire;
        if !self.word.get().is_free() {
            // Only reachable outside concurrent execution (the scheduler
            // never resumes a blocked acquisition): the sequential phase
            // blocked on itself.
            rt::oops(self_deadlock(a));
        }
        self.word.set(LockWord {
            writer: rt::current_owner(),
            readers: 0,
        });
        if ordered {
            rt::acquired(self.id, self.class);
        } else {
            rt::acquired_try(self.id, self.class);
        }
        rt::traced(a, None, None);
        LockGuard { lock: self }
    }

    fn release(&self, label: &'static str) {
        self.word.set(LockWord::default());
        rt::released(self.id);
        rt::traced(access(self.id, AccessKind::Release, label), None, None);
    }

    pub fn is_locked(&self) -> bool {
        !self.word.get().is_free()
    }

    /// The protected data without the lock, for checkers only (ghost access
    /// between steps, when no actor is inside a critical section that
    /// matters to the checker).
    pub fn peek(&self) -> &T {
        // SAFETY: executions are single-threaded and checkers run between
        // steps; model code does not keep references into guarded data
        // across scheduling points.
        unsafe { &*self.data.get() }
    }
}

fn self_deadlock(a: Access) -> crate::Finding {
    crate::Finding::new(
        crate::FindingKind::Deadlock,
        "self-deadlock",
        "BUG: spinlock recursion",
    )
    .detail(format!("{} acquires a lock its own context holds", a.label))
}

/// Guard of a [`Lock`]; releases on drop or [`LockGuard::unlock`].
pub struct LockGuard<'a, T> {
    lock: &'a Lock<T>,
}

impl<T> LockGuard<'_, T> {
    /// Releases the lock (spin_unlock) with a label for the trace.
    pub fn unlock(self, label: &'static str) {
        self.lock.release(label);
        std::mem::forget(self);
    }
}

impl<T> Deref for LockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves exclusive ownership of the lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for LockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in deref.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for LockGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.release("unlock");
    }
}

/// A reader-writer semaphore (`mmap_lock`) holding the data it protects.
pub struct RwSem<T> {
    id: ObjectId,
    class: &'static LockClass,
    word: Cell<LockWord>,
    data: UnsafeCell<T>,
}

impl<T> RwSem<T> {
    pub fn new(class: &'static LockClass, detail: u64, data: T) -> Self {
        RwSem {
            id: rt::new_object(class.name, detail),
            class,
            word: Cell::new(LockWord::default()),
            data: UnsafeCell::new(data),
        }
    }

    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// `down_read`.
    pub fn read(&self, label: &'static str) -> ReadGuard<'_, T> {
        let a = access(self.id, AccessKind::AcquireShared, label);
        rt::point(a, Wait::Shared(&self.word));
        let w = self.word.get();
        if w.writer != 0 {
            rt::oops(self_deadlock(a));
        }
        self.word.set(LockWord {
            writer: 0,
            readers: w.readers + 1,
        });
        rt::acquired(self.id, self.class);
        rt::traced(a, None, None);
        ReadGuard { sem: self }
    }

    /// `down_read_trylock`: never blocks.
    pub fn try_read(&self, label: &'static str) -> Option<ReadGuard<'_, T>> {
        let a = access(self.id, AccessKind::TryAcquire, label);
        rt::point(a, Wait::Nothing);
        let w = self.word.get();
        if w.writer != 0 {
            rt::traced(a, None, Some(0));
            return None;
        }
        self.word.set(LockWord {
            writer: 0,
            readers: w.readers + 1,
        });
        rt::acquired_try(self.id, self.class);
        rt::traced(a, None, Some(1));
        Some(ReadGuard { sem: self })
    }

    /// `down_write_nested(sem, SINGLE_DEPTH_NESTING)` while holding
    /// `outer`, a lock of the same class (`dup_mmap()` locks the new mm's
    /// mmap_lock under the old one's): not an ordering violation.
    pub fn write_nested(&self, label: &'static str, outer: ObjectId) -> WriteGuard<'_, T> {
        let a = access(self.id, AccessKind::Acquire, label);
        rt::point(a, Wait::Exclusive(&self.word));
        if !self.word.get().is_free() {
            rt::oops(self_deadlock(a));
        }
        self.word.set(LockWord {
            writer: rt::current_owner(),
            readers: 0,
        });
        rt::acquired_nested(self.id, self.class, outer);
        rt::traced(a, None, None);
        WriteGuard { sem: self }
    }

    /// `down_write`.
    pub fn write(&self, label: &'static str) -> WriteGuard<'_, T> {
        let a = access(self.id, AccessKind::Acquire, label);
        rt::point(a, Wait::Exclusive(&self.word));
        if !self.word.get().is_free() {
            rt::oops(self_deadlock(a));
        }
        self.word.set(LockWord {
            writer: rt::current_owner(),
            readers: 0,
        });
        rt::acquired_as(self.id, self.class, true);
        rt::traced(a, None, None);
        WriteGuard { sem: self }
    }

    /// The protected data without the lock, for checkers only.
    pub fn peek(&self) -> &T {
        // SAFETY: see Lock::peek.
        unsafe { &*self.data.get() }
    }

    fn release(&self, label: &'static str, shared: bool) {
        let w = self.word.get();
        let next = if shared {
            LockWord {
                writer: 0,
                readers: w.readers.saturating_sub(1),
            }
        } else {
            LockWord::default()
        };
        self.word.set(next);
        rt::released(self.id);
        rt::traced(access(self.id, AccessKind::Release, label), None, None);
    }
}

/// Shared guard of a [`RwSem`].
pub struct ReadGuard<'a, T> {
    sem: &'a RwSem<T>,
}

impl<T> ReadGuard<'_, T> {
    pub fn unlock(self, label: &'static str) {
        self.sem.release(label, true);
        std::mem::forget(self);
    }
}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: no writer holds the semaphore while a reader does.
        unsafe { &*self.sem.data.get() }
    }
}

impl<T> Drop for ReadGuard<'_, T> {
    fn drop(&mut self) {
        self.sem.release("up_read", true);
    }
}

/// Exclusive guard of a [`RwSem`].
pub struct WriteGuard<'a, T> {
    sem: &'a RwSem<T>,
}

impl<T> WriteGuard<'_, T> {
    pub fn unlock(self, label: &'static str) {
        self.sem.release(label, false);
        std::mem::forget(self);
    }
}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the writer is the only holder.
        unsafe { &*self.sem.data.get() }
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in deref.
        unsafe { &mut *self.sem.data.get() }
    }
}

impl<T> Drop for WriteGuard<'_, T> {
    fn drop(&mut self) {
        self.sem.release("up_write", false);
    }
}

/// A sleeping bit lock with no data (`PG_locked`): may be released by code
/// that did not take it, as `folio_unlock` may.
pub struct BitLock {
    id: ObjectId,
    class: &'static LockClass,
    word: Cell<LockWord>,
}

impl BitLock {
    pub fn new(class: &'static LockClass, detail: u64) -> Self {
        BitLock {
            id: rt::new_object(class.name, detail),
            class,
            word: Cell::new(LockWord::default()),
        }
    }

    /// `folio_lock`: sleeps until the bit is clear, then sets it.
    pub fn lock(&self, label: &'static str) {
        let a = access(self.id, AccessKind::Acquire, label);
        rt::point(a, Wait::Exclusive(&self.word));
        if !self.word.get().is_free() {
            rt::oops(self_deadlock(a));
        }
        self.take(a);
    }

    /// `folio_trylock`.
    pub fn try_lock(&self, label: &'static str) -> bool {
        let a = access(self.id, AccessKind::TryAcquire, label);
        rt::point(a, Wait::Nothing);
        if !self.word.get().is_free() {
            rt::traced(a, None, Some(0));
            return false;
        }
        self.take(a);
        true
    }

    fn take(&self, a: Access) {
        self.word.set(LockWord {
            writer: rt::current_owner(),
            readers: 0,
        });
        if a.kind == AccessKind::TryAcquire {
            rt::acquired_try(self.id, self.class);
        } else {
            rt::acquired(self.id, self.class);
        }
        rt::traced(a, None, Some(1));
    }

    /// `folio_unlock`.
    pub fn unlock(&self, label: &'static str) {
        let a = access(self.id, AccessKind::Release, label);
        rt::point(a, Wait::Nothing);
        self.word.set(LockWord::default());
        rt::released(self.id);
        rt::traced(a, None, None);
    }

    /// `folio_wait_locked`: sleeps until the bit is clear.
    pub fn wait_unlocked(&self, label: &'static str) {
        let a = access(self.id, AccessKind::WaitUnlocked, label);
        rt::point(a, Wait::Unlocked(&self.word));
        rt::traced(a, None, None);
    }

    /// `folio_test_locked()` / `PageLocked()`: a lockless test of the bit,
    /// a scheduling point that conflicts with the lock and unlock.
    pub fn test_locked(&self, label: &'static str) -> bool {
        let a = access(self.id, AccessKind::Read, label);
        rt::point(a, Wait::Nothing);
        let locked = !self.word.get().is_free();
        rt::traced(a, None, Some(u64::from(locked)));
        locked
    }

    /// Whether the bit is set (ghost: checkers and assertions).
    pub fn is_locked(&self) -> bool {
        !self.word.get().is_free()
    }
}

/// An allocation that may fail when failure injection is on; returns
/// whether it succeeded. Each allocation is a scheduling point.
///
/// Without failure injection an allocation always succeeds and is not a
/// scheduling point, so turning injection on is the only thing that changes
/// the explored schedules.
pub fn alloc(label: &'static str, may_fail: bool) -> bool {
    if !may_fail {
        return true;
    }
    let a = access(ObjectId(u32::MAX), AccessKind::Alloc, label);
    rt::point(a, Wait::Nothing);
    let failed = rt::choose(2) == 1;
    rt::traced(a, None, Some(u64::from(!failed)));
    !failed
}

/// An array of lockless 64-bit words registered as one block of objects
/// (a page table: 512 entries, one object id each, one registration).
pub struct SlotArray {
    base: ObjectId,
    vals: Box<[Cell<u64>]>,
    /// Where the array was freed, once it is (`pte_free()` and friends).
    freed: Cell<Option<&'static str>>,
}

impl SlotArray {
    pub fn new(class: &'static str, detail: u64, len: usize) -> Self {
        SlotArray {
            base: rt::new_objects(class, detail, len as u32),
            vals: (0..len).map(|_| Cell::new(0)).collect(),
            freed: Cell::new(None),
        }
    }

    /// Frees the whole array (a page-table page back to the allocator):
    /// one scheduling point that conflicts with every entry, after which
    /// each access to an entry is a use after free.
    pub fn free(&self, label: &'static str) {
        let a = access(self.base, AccessKind::Free, label);
        rt::point(a, Wait::Nothing);
        rt::covers_block(self.base, self.vals.len() as u32);
        if let Some(first) = self.freed.replace(Some(label)) {
            double_free(label, first);
        }
        rt::traced(a, None, None);
    }

    /// A change of what the whole array may be accessed as (a page-table
    /// page made read-only or pinned by the hypervisor): one scheduling
    /// point that conflicts with every entry, so every access to an entry
    /// is ordered against it.
    pub fn protect(&self, label: &'static str) {
        let a = access(self.base, AccessKind::Write, label);
        rt::point(a, Wait::Nothing);
        rt::covers_block(self.base, self.vals.len() as u32);
        self.check_live(label);
        rt::traced(a, None, None);
    }

    /// A store to entry `i` that `guard` may refuse first (a store the
    /// hardware faults on: `guard` oopses), run in the store's own step.
    pub fn write_guarded(&self, i: usize, label: &'static str, v: u64, guard: impl FnOnce()) {
        let a = access(self.id(i), AccessKind::Write, label);
        rt::point(a, Wait::Nothing);
        self.check_live(label);
        guard();
        let old = self.vals[i].replace(v);
        rt::traced(a, Some(old), Some(v));
    }

    /// An atomic exchange of entry `i` that `guard` may refuse first.
    pub fn xchg_guarded(&self, i: usize, label: &'static str, v: u64, guard: impl FnOnce()) -> u64 {
        let a = access(self.id(i), AccessKind::ReadModifyWrite, label);
        rt::point(a, Wait::Nothing);
        self.check_live(label);
        guard();
        let old = self.vals[i].replace(v);
        rt::traced(a, Some(old), Some(v));
        old
    }

    /// Whether the array was freed (ghost).
    pub fn is_freed(&self) -> bool {
        self.freed.get().is_some()
    }

    /// The use-after-free check of an entry access that just ran.
    #[inline]
    fn check_live(&self, label: &'static str) {
        if let Some(freed) = self.freed.get() {
            use_after_free(label, freed);
        }
    }

    pub fn len(&self) -> usize {
        self.vals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vals.is_empty()
    }

    pub fn id(&self, i: usize) -> ObjectId {
        ObjectId(self.base.0.wrapping_add(i as u32))
    }

    /// A lockless load of entry `i`.
    pub fn read(&self, i: usize, label: &'static str) -> u64 {
        let a = access(self.id(i), AccessKind::Read, label);
        rt::point(a, Wait::Nothing);
        self.check_live(label);
        let v = self.vals[i].get();
        rt::traced(a, None, Some(v));
        v
    }

    /// A store to entry `i`.
    pub fn write(&self, i: usize, label: &'static str, v: u64) {
        self.write_guarded(i, label, v, || {});
    }

    /// An atomic exchange of entry `i`; returns the old value.
    pub fn xchg(&self, i: usize, label: &'static str, v: u64) -> u64 {
        self.xchg_guarded(i, label, v, || {})
    }

    /// A compare-and-exchange of entry `i` (`cmpxchg`, the MMU's locked
    /// update of the accessed and dirty bits): stores `new` if the entry
    /// still holds `old`; returns the value found.
    pub fn cmpxchg(&self, i: usize, label: &'static str, old: u64, new: u64) -> u64 {
        let a = access(self.id(i), AccessKind::ReadModifyWrite, label);
        rt::point(a, Wait::Nothing);
        self.check_live(label);
        let found = self.vals[i].get();
        if found == old {
            self.vals[i].set(new);
        }
        rt::traced(a, Some(found), Some(self.vals[i].get()));
        found
    }

    /// The MMU's load of entry `i` during a page-table walk: announced
    /// like [`SlotArray::read`], but a freed array yields `None` instead of
    /// a use after free. The kernel frees a page table only after the TLB
    /// shootdown that waits for every CPU's walk in progress (a walk is not
    /// interruptible), so a walk that reaches a freed table in the model is
    /// one the real hardware would have finished before the free, or begun
    /// again after it: the caller walks again.
    pub fn read_hw(&self, i: usize, label: &'static str) -> Option<u64> {
        let a = access(self.id(i), AccessKind::Read, label);
        rt::point(a, Wait::Nothing);
        let v = (!self.is_freed()).then(|| self.vals[i].get());
        rt::traced(a, None, v);
        v
    }

    /// The MMU's locked accessed/dirty update of entry `i`, as
    /// [`SlotArray::cmpxchg`]; `None` if the array was freed (see
    /// [`SlotArray::read_hw`]).
    pub fn cmpxchg_hw(&self, i: usize, label: &'static str, old: u64, new: u64) -> Option<u64> {
        let a = access(self.id(i), AccessKind::ReadModifyWrite, label);
        rt::point(a, Wait::Nothing);
        if self.is_freed() {
            rt::traced(a, None, None);
            return None;
        }
        let found = self.vals[i].get();
        if found == old {
            self.vals[i].set(new);
        }
        rt::traced(a, Some(found), Some(self.vals[i].get()));
        Some(found)
    }

    /// A store into a table no other actor can reach yet (filled before it
    /// is published, as split_huge_pmd fills the deposited table before
    /// pmd_populate): not a scheduling point.
    pub fn write_unpublished(&self, i: usize, v: u64) {
        self.vals[i].set(v);
    }

    /// A load of entry `i` under its page-table lock: a scheduling point
    /// like [`SlotArray::read`], for the reason [`AtomicSlot::read_locked`]
    /// gives.
    #[inline]
    pub fn read_locked(&self, i: usize, label: &'static str) -> u64 {
        self.read(i, label)
    }

    /// Ghost access for checkers and reports.
    pub fn peek(&self, i: usize) -> u64 {
        self.vals[i].get()
    }
}

/// `BUG: KASAN: use-after-free`: an access to an object after the kernel
/// freed it. Reported where the access ran, naming the free.
fn use_after_free(label: &'static str, freed: &'static str) {
    rt::raise(
        Finding::new(
            FindingKind::Kernel,
            "KASAN",
            format!("BUG: KASAN: use-after-free in {}", function_of(label)),
        )
        .detail(format!("access by task {}: {label}", rt::current_comm()))
        .detail(format!("freed by: {freed}")),
    );
}

/// `BUG: KASAN: double-free`.
fn double_free(label: &'static str, first: &'static str) -> ! {
    rt::oops(
        Finding::new(
            FindingKind::Kernel,
            "KASAN",
            format!("BUG: KASAN: double-free in {}", function_of(label)),
        )
        .detail(format!("second free: {label}"))
        .detail(format!("first free: {first}")),
    )
}

/// The kernel function an access label names (`"zap_pte_range: *pte"`).
fn function_of(label: &'static str) -> &'static str {
    label.split(':').next().unwrap_or(label)
}

/// The lifetime of an object the kernel frees (`kmem_cache_free()` of an
/// anon_vma, a VMA, an anon_vma_chain): it is freed at one scheduling
/// point, and every later use is reported as KASAN would, whatever still
/// refers to it. Rust references keep the memory; the model's semantics
/// do not depend on them.
#[derive(Debug)]
pub struct Lifetime {
    id: ObjectId,
    freed: Cell<Option<&'static str>>,
}

impl Lifetime {
    pub fn new(class: &'static str, detail: u64) -> Self {
        Lifetime {
            id: rt::new_object(class, detail),
            freed: Cell::new(None),
        }
    }

    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// The free: a scheduling point, so that partial-order reduction
    /// orders it against every [`Lifetime::deref`].
    pub fn free(&self, label: &'static str) {
        let a = access(self.id, AccessKind::Free, label);
        rt::point(a, Wait::Nothing);
        if let Some(first) = self.freed.replace(Some(label)) {
            double_free(label, first);
        }
        rt::traced(a, None, None);
    }

    /// A use that may race with the free (a lockless or RCU-protected
    /// dereference): a scheduling point that reads the object.
    pub fn deref(&self, label: &'static str) {
        let a = access(self.id, AccessKind::Read, label);
        rt::point(a, Wait::Nothing);
        self.assert_live(label);
        rt::traced(a, None, None);
    }

    /// A use the caller promises cannot race with the free (it holds the
    /// lock or reference that keeps the object alive): not a scheduling
    /// point, but checked, so a broken promise is still reported.
    pub fn assert_live(&self, label: &'static str) {
        if let Some(freed) = self.freed.get() {
            use_after_free(label, freed);
        }
    }

    /// Whether the object was freed (ghost).
    pub fn is_freed(&self) -> bool {
        self.freed.get().is_some()
    }

    /// The allocator hands the freed memory out again as a new object of
    /// the same type (a type-stable slab cache such as
    /// SLAB_DESTROY_BY_RCU): a scheduling point that writes the object;
    /// stale pointers to it now reach the new object, not a freed one.
    pub fn reuse(&self, label: &'static str) {
        let a = access(self.id, AccessKind::Write, label);
        rt::point(a, Wait::Nothing);
        self.freed.set(None);
        rt::traced(a, None, None);
    }
}

/// A pointer-sized field read and written locklessly whose value is not a
/// number (`folio->mapping`, `vma->anon_vma` read under RCU): each load
/// and store is a scheduling point, as for an [`AtomicSlot`].
pub struct SharedCell<T: Clone> {
    id: ObjectId,
    val: std::cell::RefCell<T>,
}

impl<T: Clone> SharedCell<T> {
    pub fn new(class: &'static str, detail: u64, init: T) -> Self {
        SharedCell {
            id: rt::new_object(class, detail),
            val: std::cell::RefCell::new(init),
        }
    }

    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// A lockless load (`READ_ONCE(folio->mapping)`).
    pub fn read(&self, label: &'static str) -> T {
        let a = access(self.id, AccessKind::Read, label);
        rt::point(a, Wait::Nothing);
        rt::traced(a, None, None);
        self.val.borrow().clone()
    }

    /// A store (`WRITE_ONCE(folio->mapping, ...)`).
    pub fn write(&self, label: &'static str, v: T) {
        let a = access(self.id, AccessKind::Write, label);
        rt::point(a, Wait::Nothing);
        rt::traced(a, None, None);
        *self.val.borrow_mut() = v;
    }

    /// The value, for checkers and reports (ghost access).
    pub fn peek(&self) -> T {
        self.val.borrow().clone()
    }
}
