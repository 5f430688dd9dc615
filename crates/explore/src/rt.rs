//! The runtime of one execution: actors as coroutines, scheduling points,
//! findings, coverage marks and the trace.
//!
//! All actors of an execution run on one OS thread as stackful coroutines
//! (`corosensei`). Model code reaches the runtime only through
//! [`crate::sync`] and the free functions here; the runtime finds the
//! current execution through a thread-local pointer that is set for exactly
//! the lifetime of [`run_execution`].
//!
//! Protocol: before every shared operation an actor *announces* it
//! ([`point`]) and suspends. The scheduler picks one actor among those whose
//! announced operation is enabled (a lock acquisition is enabled only if the
//! lock can be granted) and resumes it; the actor then performs the operation
//! and runs on until its next announcement. One resume is one *step*.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::ptr;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};

use crate::access::{Access, AccessKind, ObjectId, Touched};
use crate::finding::{Finding, FindingKind, InternalError};
use crate::strategy::Strategy;
use crate::trace::{Event, What};

/// Index of an actor in an execution. Actor 0 is the sequential phase
/// (setup and teardown); concurrent actors are 1..=n.
pub type ActorId = usize;

/// The actor that runs setup and teardown.
pub const SEQUENTIAL_ACTOR: ActorId = 0;

/// State of a lock as the scheduler sees it.
///
/// Invariant: `writer != 0` implies `readers == 0`.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct LockWord {
    /// Holder + 1, or 0 when not held exclusively.
    pub writer: u32,
    /// Number of shared holders.
    pub readers: u32,
}

impl LockWord {
    pub fn is_free(self) -> bool {
        self.writer == 0 && self.readers == 0
    }
}

/// The lock class of a lock, for the lock-order check (lockdep-lite).
///
/// Classes are ordered by `rank`: a lock may be acquired while holding locks
/// of lower rank only. Locks of one class may nest (the model takes two page
/// locks in migration) unless `nests` is false.
#[derive(Debug, PartialEq, Eq)]
pub struct LockClass {
    pub name: &'static str,
    pub rank: u32,
    pub nests: bool,
    /// A spinning lock: invariants are only checked when no actor holds one,
    /// because code under a spinlock may leave them transiently broken.
    pub spin: bool,
}

/// What an announced operation waits for before it is enabled.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    Nothing,
    Exclusive(*const Cell<LockWord>),
    Shared(*const Cell<LockWord>),
    Unlocked(*const Cell<LockWord>),
}

impl Wait {
    /// Whether the operation could run now.
    ///
    /// SAFETY of the dereference: a pending wait points into a lock owned by
    /// the model's state, which the waiting actor keeps alive (it holds a
    /// reference to the state on its own stack) until it runs or is unwound.
    fn enabled(self) -> bool {
        let word = |p: *const Cell<LockWord>| unsafe { (*p).get() };
        match self {
            Wait::Nothing => true,
            Wait::Exclusive(p) => word(p).is_free(),
            Wait::Shared(p) => word(p).writer == 0,
            Wait::Unlocked(p) => word(p).is_free(),
        }
    }
}

struct Pending {
    access: Access,
    wait: Wait,
}

struct HeldLock {
    object: ObjectId,
    class: &'static LockClass,
    /// Held for writing through a rw-semaphore: the writer may leave
    /// invariants broken across scheduling points, as under a spinlock.
    writer: bool,
}

struct Actor {
    name: String,
    yielder: *const Yielder<(), ()>,
    pending: Option<Pending>,
    done: bool,
    /// The modelled functions the actor is in ([`enter`]), outermost
    /// first: its call chain. Its length is the call depth of the trace.
    frames: Vec<&'static str>,
    held: Vec<HeldLock>,
}

impl Actor {
    fn new(name: String, frames: Vec<&'static str>) -> Self {
        debug_assert!(frames.is_empty());
        Actor {
            name,
            yielder: ptr::null(),
            pending: None,
            done: false,
            frames,
            held: Vec::new(),
        }
    }

    /// Call depth, as trace events record it.
    fn depth(&self) -> u16 {
        self.frames.len() as u16
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// One actor runs setup or teardown: points do not suspend.
    Sequential,
    /// Actors interleave.
    Concurrent,
    /// A checker inspects the state: no operation may suspend.
    Ghost,
}

/// Per-object information kept for reports.
#[derive(Clone, Copy, Debug)]
pub struct ObjectInfo {
    pub class: &'static str,
    pub detail: u64,
}

struct Ctx<'s> {
    mode: Mode,
    actors: Vec<Actor>,
    current: ActorId,
    steps: u64,
    steps_max: u64,
    tracing: bool,
    trace: Vec<Event>,
    objects: Vec<(u32, ObjectInfo)>,
    /// For each object id, the index of its registration in `objects`
    /// (what a touched object is, found without a search).
    owner: Vec<u32>,
    next_object: u32,
    finding: Option<Finding>,
    dirty: bool,
    /// Held spinlocks and rw-semaphores held for writing, over all actors:
    /// checkers run only when it is zero (see [`quiescent`]).
    unquiet: u32,
    /// The finding came while an actor was inside a section the checkers
    /// must not look into: the other checks run at the aftermath's first
    /// quiescent state instead (see [`collect_also`]).
    also_pending: bool,
    marks: Vec<&'static str>,
    strategy: &'s mut dyn Strategy,
    choices: Vec<u32>,
    last_runner: Option<ActorId>,
    preemptions: u32,
    replay_error: Option<String>,
    /// The first finding stopped nothing: the execution goes on without
    /// checkers, collecting what the kernel prints later (see [`Aftermath`]).
    after: Aftermath,
    /// The first finding was fatal (an oops, a deadlock): no aftermath.
    fatal: bool,
    /// A full trace was recorded up to the finding (tracing stops for the
    /// aftermath, whose events are not part of the interleaving).
    traced_finding: bool,
    /// Steps up to the finding, and the object dump taken there.
    steps_at_finding: u64,
    dump_at_finding: Option<Vec<String>>,
    /// Objects on which concurrent actors conflict (from calibration);
    /// strategies count preemption opportunities only on these.
    racy: &'s [bool],
    /// Calibration only: per object, the actors that touched it and whether
    /// any of them wrote it, in execution order of concurrent steps.
    tracked: Option<Tracked>,
    /// The runner before the current step's (DPOR records who ran before).
    prev_runner: Option<ActorId>,
    /// Whether the current step's announced operation changes data.
    step_writes: bool,
    /// The objects the data-changing steps since the last state check
    /// named, with what they did: the incremental checkers look at these
    /// (see [`Instance::check_step`]).
    touched: Vec<(ObjectId, AccessKind)>,
    /// A checker found the model's state inconsistent with itself (a bug
    /// in mmrace, not a finding): the execution stops with this message.
    internal: Option<String>,
    /// The instance, while the concurrent phase runs (for `point`'s inline
    /// decisions).
    instance: Option<*const (dyn Instance + 'static)>,
    /// What an actor decided inline before suspending.
    inline: Option<Inline>,
    enabled_buf: Vec<ActorId>,
    /// The strategy abandoned the execution as redundant.
    abandoned: bool,
    /// Announcements may take the lean path (`lean_announce`): the
    /// concurrent phase runs, nothing is recorded for partial-order
    /// reduction, and no finding has been made yet. Derived from
    /// `instance`, `tracked` and `after` (set by `schedule`, cleared by
    /// `start_aftermath`), and kept so that the hot path tests one flag.
    lean: bool,
    /// Concurrent actors that have not finished, in id order.
    live: Vec<ActorId>,
    /// Actors whose announced operation waits for a lock (their `pending`
    /// has a wait other than `Wait::Nothing`). While it is zero, every
    /// live actor but the running one is enabled.
    waiting: u32,
}

impl Ctx<'_> {
    /// Stores `actor`'s announced operation; returns its yielder.
    fn set_pending(
        &mut self,
        actor: ActorId,
        access: Access,
        wait: Wait,
    ) -> *const Yielder<(), ()> {
        self.waiting += u32::from(!matches!(wait, Wait::Nothing));
        let actor = &mut self.actors[actor];
        debug_assert!(
            actor.pending.is_none(),
            "an actor announces one operation at a time"
        );
        actor.pending = Some(Pending { access, wait });
        actor.yielder
    }

    /// The scheduler is about to run `actor`'s announced operation.
    fn clear_pending(&mut self, actor: ActorId) {
        if let Some(p) = self.actors[actor].pending.take() {
            self.waiting -= u32::from(!matches!(p.wait, Wait::Nothing));
        }
    }

    /// `actor` returned or was unwound.
    fn finished(&mut self, actor: ActorId) {
        self.actors[actor].done = true;
        self.live.retain(|&a| a != actor);
    }
}

/// Where an execution stands with respect to its first finding.
///
/// A non-fatal first finding (a kernel `pr_err` such as `bad pmd`, or an
/// invariant checker) does not end the execution: it continues with the
/// scheduler's default choices (no preemption, not recorded in the token)
/// and no checkers, to the end of teardown, and every later kernel message
/// is appended to the finding's `aftermath`. That is how a report shows both
/// the earliest detection (a checker) and what the kernel itself printed
/// later (`Bad page map` at munmap, rss-counter lines at exit).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Aftermath {
    /// No finding yet.
    Before,
    /// After a non-fatal finding: running on.
    Running,
    /// The aftermath ended early (an oops, every actor blocked, steps_max,
    /// or a state the model cannot follow).
    Ended,
}

/// What calibration learns about conflicts.
#[derive(Default)]
struct Tracked {
    /// Per object id: bit mask of actors, and whether it was written.
    objects: Vec<(u64, bool)>,
    /// Object of every concurrent step, in order.
    steps: Vec<u32>,
    /// Every concurrent step up to the first finding, for DPOR.
    events: Vec<StepEvent>,
    /// Data choices up to the first finding: (index in `choices`, n).
    values: Vec<(usize, u32)>,
}

/// One concurrent step, as partial-order reduction sees it: who ran, what
/// it accessed, who could have run instead, and who ran before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepEvent {
    pub actor: ActorId,
    pub access: Access,
    pub enabled: Vec<ActorId>,
    pub last: Option<ActorId>,
    /// Index in the execution's `choices` when more than one actor could
    /// run (a scheduling decision).
    pub decision: Option<usize>,
    /// Locks the step released after its announced access: releases are
    /// not scheduling points, but they are shared-state changes another
    /// actor's acquisition depends on.
    pub released: Vec<ObjectId>,
    /// A block of consecutive objects the announced access also covers
    /// (first id, count): freeing a page table frees its 512 entries.
    pub block: Option<(ObjectId, u32)>,
}

impl Tracked {
    fn record(&mut self, actor: ActorId, a: Access) {
        let id = a.object.0 as usize;
        if a.object.0 == u32::MAX {
            return;
        }
        if self.objects.len() <= id {
            self.objects.resize(id + 1, (0, false));
        }
        let o = &mut self.objects[id];
        o.0 |= 1u64 << (actor.min(63));
        o.1 |= !a.kind.is_read_like();
        self.steps.push(a.object.0);
    }

    /// Objects touched by two or more actors, one of them writing.
    fn racy(&self) -> Vec<bool> {
        self.objects
            .iter()
            .map(|(mask, written)| mask.count_ones() >= 2 && *written)
            .collect()
    }
}

thread_local! {
    static CTX: Cell<*mut Ctx<'static>> = const { Cell::new(ptr::null_mut()) };
    /// Mirrors `Ctx::tracing` so the hot path tests it without the context.
    static TRACING: Cell<bool> = const { Cell::new(false) };
}

/// Panic payload that stops an execution after a fatal finding.
struct Stop;

/// Panic payload for kernel behaviour the model does not have.
struct Unsupported(String);

/// Stops the run: the scenario reached kernel behaviour the model does not
/// implement (e.g. splitting a THP). Reported as a usage limit, not a bug.
pub fn unsupported(what: impl Into<String>) -> ! {
    resume_unwind(Box::new(Unsupported(what.into())))
}

fn with_ctx<R>(f: impl FnOnce(Option<&mut Ctx<'static>>) -> R) -> R {
    let p = CTX.with(|c| c.get());
    // SAFETY: the pointer is set only while `run_execution` owns the context
    // on its stack, and every use here is a short borrow that ends before
    // any coroutine switch.
    f(unsafe { p.as_mut() })
}

/// Whether a full trace is being recorded (replay); model code checks this
/// before formatting notes.
pub fn tracing() -> bool {
    TRACING.with(Cell::get)
}

/// Whether the execution reports its final state (`Instance::final_state`):
/// only verification compares final states, so instances can skip
/// computing one otherwise.
pub fn final_state_wanted() -> bool {
    with_ctx(|cx| cx.is_some_and(|cx| cx.tracked.is_some()))
}

/// Registers a shared object and returns its id.
pub fn new_object(class: &'static str, detail: u64) -> ObjectId {
    new_objects(class, detail, 1)
}

/// Registers `n` objects of one class with consecutive ids (the entries of
/// a page table); returns the first id.
pub fn new_objects(class: &'static str, detail: u64, n: u32) -> ObjectId {
    with_ctx(|cx| match cx {
        Some(cx) => {
            let first = cx.next_object;
            cx.next_object += n;
            let index = cx.objects.len() as u32;
            cx.owner.extend(std::iter::repeat_n(index, n as usize));
            cx.objects.push((first, ObjectInfo { class, detail }));
            ObjectId(first)
        }
        None => ObjectId(u32::MAX),
    })
}

/// The registration an object id belongs to.
pub fn object_info(objects: &[(u32, ObjectInfo)], id: ObjectId) -> Option<ObjectInfo> {
    let i = objects.partition_point(|(first, _)| *first <= id.0);
    objects.get(i.checked_sub(1)?).map(|(_, info)| *info)
}

/// The data changes since the last state check, resolved to their
/// objects' registrations on demand (an instance that checks everything
/// never pays for that).
pub struct Touches<'a> {
    raw: &'a [(ObjectId, AccessKind)],
    objects: &'a [(u32, ObjectInfo)],
    owner: &'a [u32],
}

impl Touches<'_> {
    /// Each change with its object's class, detail and index.
    pub fn iter(&self) -> impl Iterator<Item = Touched> + '_ {
        self.raw.iter().filter_map(|&(id, kind)| {
            let index = *self.owner.get(id.0 as usize)?;
            let (first, info) = *self.objects.get(index as usize)?;
            Some(Touched {
                kind,
                class: info.class,
                detail: info.detail,
                index: id.0 - first,
            })
        })
    }
}

/// Announces `access` and suspends until the scheduler picks this actor with
/// the operation enabled. Returns at once outside concurrent execution.
///
/// Inlined into its callers so that the suspension sits in the model
/// code's own frame: after a coroutine switch the CPU's return predictions
/// are wrong for every frame it returns through, and this keeps that to
/// the switch routine's own.
#[inline(always)]
pub(crate) fn point(access: Access, wait: Wait) {
    // The access goes in registers, field by field: a copy of it through
    // memory stalls on store forwarding, the caller having just built it.
    if let Some(y) = announce(access.object, access.kind, access.label, wait) {
        // SAFETY: the yielder belongs to the running coroutine, which is
        // this very stack.
        unsafe { (*y).suspend(()) };
    }
}

/// The announcement: the pending operation, and the inline scheduling
/// decision (`decide_inline`). Returns the yielder to suspend on, if the
/// actor must.
#[inline(never)]
fn announce(
    object: ObjectId,
    kind: AccessKind,
    label: &'static str,
    wait: Wait,
) -> Option<*const Yielder<(), ()>> {
    let access = Access {
        object,
        kind,
        label,
    };
    with_ctx(|cx| {
        let cx = cx?;
        if cx.mode != Mode::Concurrent {
            if !wait.enabled() && cx.mode == Mode::Sequential {
                cx.finding.get_or_insert_with(|| sequential_block(access));
            }
            return None;
        }
        if cx.lean {
            return lean_announce(cx, access, wait);
        }
        let yielder = cx.set_pending(cx.current, access, wait);
        if cx.after == Aftermath::Before && decide_inline(cx) {
            return None;
        }
        Some(yielder)
    })
}

/// The common announcement of a random walk or PCT run, decided in the
/// announcing actor's own frame with nothing more than the decision needs:
/// the step ends (checkers if due) and, while no actor waits for a lock,
/// the strategy picks among the live actors, all of them enabled. When the
/// same actor goes on, its announcement is never stored. A lock wait, a
/// finding or steps_max takes the general path (`decide_after_step`).
#[inline(always)]
fn lean_announce(cx: &mut Ctx<'_>, access: Access, wait: Wait) -> Option<*const Yielder<(), ()>> {
    // SAFETY: `lean` is set only while `schedule` holds the instance.
    let instance = unsafe { &*cx.instance.unwrap_unchecked() };
    end_step(cx, instance);
    let me = cx.current;
    let usual = cx.finding.is_none() & (cx.steps < cx.steps_max);
    if !usual || cx.waiting != 0 || !matches!(wait, Wait::Nothing) {
        // The step has ended already: the general path decides the rest.
        let yielder = cx.set_pending(me, access, wait);
        return (!decide_after_step(cx, instance)).then_some(yielder);
    }
    // Nobody waits for a lock, and neither will this operation: every live
    // actor is enabled.
    match lean_pick(cx, access.object) {
        Ok(next) if next == me => {
            cx.step_writes = access.kind.changes_data();
            if cx.step_writes {
                cx.touched.push((access.object, access.kind));
            }
            cx.steps += 1;
            return None;
        }
        Ok(next) => cx.inline = Some(Inline::Switch(next)),
        Err(e) => cx.inline = Some(Inline::Failed(e)),
    }
    Some(cx.set_pending(me, access, wait))
}

/// `pick` for the lean path, where the running actor `me` ran the previous
/// step too and is among `live`, all of whom are enabled: so it could go
/// on, and any other choice is a preemption.
#[inline(always)]
fn lean_pick(cx: &mut Ctx<'_>, announced: ObjectId) -> Result<ActorId, InternalError> {
    let me = cx.current;
    debug_assert_eq!(cx.last_runner, Some(me));
    let live = &cx.live;
    let next = if live.len() == 1 {
        me
    } else {
        let last_racy = cx.racy.get(announced.0 as usize) == Some(&true);
        let n = cx.strategy.choose_actor(live, Some(me), last_racy);
        if !among(live, n) {
            return Err(diverged(cx, n));
        }
        cx.choices.push(n as u32);
        n
    };
    cx.preemptions += u32::from(next != me);
    cx.prev_runner = Some(me);
    cx.last_runner = Some(next);
    Ok(next)
}

fn sequential_block(access: Access) -> Finding {
    Finding::new(
        FindingKind::Deadlock,
        "sequential phase",
        "BUG: setup or teardown blocks",
    )
    .detail(format!(
        "{} would block on a lock nobody can release",
        access.label
    ))
}

/// Records an executed access in the trace (only when tracing). Inlined:
/// off the replay path it is one thread-local flag test.
#[inline]
pub(crate) fn traced(access: Access, old: Option<u64>, value: Option<u64>) {
    if TRACING.with(Cell::get) {
        traced_slow(access, old, value);
    }
}

#[cold]
fn traced_slow(access: Access, old: Option<u64>, value: Option<u64>) {
    with_ctx(|cx| {
        let Some(cx) = cx else { return };
        if cx.tracing {
            let actor = cx.current;
            let depth = cx.actors[actor].depth();
            cx.trace.push(Event {
                actor,
                depth,
                what: What::Access { access, old, value },
            });
        }
    })
}

/// Whether the running actor holds the lock `object` (for lockset rules:
/// "writes to X hold L"). Outside an execution nobody runs concurrently,
/// so every rule holds: true.
pub fn holds(object: ObjectId) -> bool {
    with_ctx(|cx| {
        cx.is_none_or(|cx| {
            cx.mode != Mode::Concurrent
                || cx.actors[cx.current]
                    .held
                    .iter()
                    .any(|h| h.object == object)
        })
    })
}

/// Records that the current actor took a lock; checks the lock order.
pub(crate) fn acquired(object: ObjectId, class: &'static LockClass) {
    acquired_as(object, class, false)
}

/// Records a successful trylock: held, but never an ordering violation
/// (a trylock cannot deadlock; lockdep does not order it either).
pub(crate) fn acquired_try(object: ObjectId, class: &'static LockClass) {
    with_ctx(|cx| {
        if let Some(cx) = cx {
            cx.unquiet += u32::from(class.spin);
            cx.actors[cx.current].held.push(HeldLock {
                object,
                class,
                writer: false,
            });
        }
    })
}

/// As [`acquired`], for a lock nested under `outer` (held by this actor):
/// other locks of its class held under the same `outer` are no violation.
pub(crate) fn acquired_nested(object: ObjectId, class: &'static LockClass, outer: ObjectId) {
    let ok = with_ctx(|cx| {
        cx.is_none_or(|cx| {
            let held = &cx.actors[cx.current].held;
            held.iter().any(|h| h.object == outer)
                && held.iter().all(|h| h.class.rank <= class.rank)
        })
    });
    if !ok {
        return acquired(object, class);
    }
    with_ctx(|cx| {
        if let Some(cx) = cx {
            cx.unquiet += u32::from(class.spin);
            cx.actors[cx.current].held.push(HeldLock {
                object,
                class,
                writer: false,
            });
        }
    })
}

/// As [`acquired`]; `writer` marks a rw-semaphore held for writing.
pub(crate) fn acquired_as(object: ObjectId, class: &'static LockClass, writer: bool) {
    let inversion = with_ctx(|cx| {
        let cx = cx?;
        let held = &mut cx.actors[cx.current].held;
        let bad = held
            .iter()
            .find(|h| h.class.rank > class.rank || (h.class == class && !class.nests))
            .map(|h| h.class.name);
        cx.unquiet += u32::from(class.spin || writer);
        let held = &mut cx.actors[cx.current].held;
        held.push(HeldLock {
            object,
            class,
            writer,
        });
        bad
    });
    if let Some(outer) = inversion {
        raise(
            Finding::new(
                FindingKind::Kernel,
                "lock order (docs/LOCKING.md)",
                "WARNING: possible circular locking dependency detected",
            )
            .detail(format!("acquiring {} while holding {}", class.name, outer)),
        );
    }
}

/// Records that the current actor released a lock.
pub(crate) fn released(object: ObjectId) {
    with_ctx(|cx| {
        let Some(cx) = cx else { return };
        let stepping = cx.mode == Mode::Concurrent && cx.after == Aftermath::Before;
        if let Some(t) = cx.tracked.as_mut().filter(|_| stepping) {
            if let Some(e) = t.events.last_mut().filter(|e| e.actor == cx.current) {
                e.released.push(object);
            }
            let release = Access {
                object,
                kind: AccessKind::Release,
                label: "release",
            };
            cx.strategy.observe(cx.current, release);
        }
        let held = &mut cx.actors[cx.current].held;
        if let Some(i) = held.iter().rposition(|h| h.object == object) {
            let h = held.remove(i);
            cx.unquiet -= u32::from(h.class.spin || h.writer);
        }
    })
}

/// Records that the current step's announced access also covers the
/// `n` objects from `first` on (for partial-order reduction: a freed page
/// table conflicts with every access to one of its entries).
pub(crate) fn covers_block(first: ObjectId, n: u32) {
    with_ctx(|cx| {
        let Some(cx) = cx else { return };
        let stepping = cx.mode == Mode::Concurrent && cx.after == Aftermath::Before;
        if let Some(t) = cx.tracked.as_mut().filter(|_| stepping) {
            if let Some(e) = t.events.last_mut().filter(|e| e.actor == cx.current) {
                e.block = Some((first, n));
            }
        }
    })
}

/// The actor on whose behalf code runs now, as the lock word encodes it.
pub(crate) fn current_owner() -> u32 {
    with_ctx(|cx| cx.map_or(1, |cx| cx.current as u32 + 1))
}

/// Name of the running actor.
pub fn current_actor_name() -> String {
    with_ctx(|cx| cx.map_or_else(String::new, |cx| cx.actors[cx.current].name.clone()))
}

/// Which process (`comm`) each actor is a thread of, and the process a
/// task running outside the actors belongs to (a setup, an exit at the
/// end of an execution). Per worker thread; the instance names them for
/// each execution.
#[derive(Default)]
struct Comms {
    by_actor: std::collections::BTreeMap<String, String>,
    outside: Vec<String>,
}

thread_local! {
    static COMMS: RefCell<Comms> = RefCell::default();
}

/// Names the process each actor is a thread of (`(actor, comm)` pairs),
/// replacing the previous execution's names. Threads share their
/// process's `comm`, so kernel lines that print `current->comm` name the
/// process.
pub fn set_comms(pairs: impl IntoIterator<Item = (String, String)>) {
    COMMS.with(|c| {
        let mut c = c.borrow_mut();
        c.by_actor = pairs.into_iter().collect();
        c.outside.clear();
    });
}

/// Runs `f` as a task of process `comm` that is none of the actors (an
/// exit at the end of the execution, a setup).
pub fn with_comm<R>(comm: &str, f: impl FnOnce() -> R) -> R {
    COMMS.with(|c| c.borrow_mut().outside.push(comm.to_string()));
    let r = f();
    COMMS.with(|c| c.borrow_mut().outside.pop());
    r
}

/// `current->comm`: the process of the task running now, as
/// [`set_comms`] and [`with_comm`] named it (the actor's own name if
/// nobody did).
pub fn current_comm() -> String {
    let name = current_actor_name();
    COMMS.with(|c| {
        let c = c.borrow();
        c.outside
            .last()
            .or_else(|| c.by_actor.get(&name))
            .cloned()
            .unwrap_or(name)
    })
}

/// Records a non-fatal finding (a kernel `pr_err`, `WARN`): the current step
/// runs to its end, the checkers run once more, then the execution stops.
pub fn raise(finding: Finding) {
    with_ctx(|cx| {
        if let Some(cx) = cx {
            if cx.after != Aftermath::Before {
                record_aftermath(cx, &finding);
                return;
            }
            if cx.tracing {
                let depth = cx.actors[cx.current].depth();
                let what = What::Finding(finding.title.clone());
                cx.trace.push(Event {
                    actor: cx.current,
                    depth,
                    what,
                });
            }
            cx.finding.get_or_insert(finding);
        }
    })
}

/// A later kernel message, in the order the kernel would print it.
/// Only the kernel's own messages: invariant checks made by model code
/// (a user read seeing wrong data) describe consequences already known.
fn record_aftermath(cx: &mut Ctx<'_>, later: &Finding) {
    let Some(f) = cx.finding.as_mut() else { return };
    if later.kind != FindingKind::Kernel {
        return;
    }
    f.aftermath.push(later.title.clone());
    for d in later.details.iter().filter(|d| **d != later.title) {
        f.aftermath.push(d.clone());
    }
}

/// Records a fatal finding (`BUG()`, an oops) and stops the execution at
/// once, unwinding the current actor.
pub fn oops(finding: Finding) -> ! {
    let inside = with_ctx(|cx| {
        let Some(cx) = cx else { return false };
        match cx.after {
            Aftermath::Before => cx.fatal = true,
            _ => cx.after = Aftermath::Ended,
        }
        true
    });
    raise(finding.clone());
    if !inside {
        panic!("kernel finding outside an execution: {}", finding.title);
    }
    resume_unwind(Box::new(Stop))
}

/// Marks a coverage point as reached (e.g. "race window: pmd changed between
/// reads"). Tests assert marks to prove a clean run reached the window.
pub fn mark(name: &'static str) {
    with_ctx(|cx| {
        if let Some(cx) = cx {
            if !cx.marks.contains(&name) {
                cx.marks.push(name);
            }
        }
    })
}

/// Appends a free-text note (a state change described by the model).
pub fn note(text: String) {
    with_ctx(|cx| {
        if let Some(cx) = cx.filter(|cx| cx.tracing) {
            let depth = cx.actors[cx.current].depth();
            cx.trace.push(Event {
                actor: cx.current,
                depth,
                what: What::Note(text),
            });
        }
    })
}

/// Enters a modelled kernel function; the returned guard leaves it.
///
/// The function joins the running actor's call chain ([`call_chain`]) in
/// every execution, traced or not, so that a finding made while exploring
/// prints the same call trace as its replay. That costs one push here and
/// one pop in the guard; only a traced execution also records an event.
pub fn enter(function: &'static str) -> Frame {
    with_ctx(|cx| {
        let Some(cx) = cx else {
            return Frame { active: false };
        };
        let actor = &mut cx.actors[cx.current];
        if cx.tracing {
            let depth = actor.depth();
            cx.trace.push(Event {
                actor: cx.current,
                depth,
                what: What::Enter(function),
            });
        }
        actor.frames.push(function);
        Frame { active: true }
    })
}

/// Guard returned by [`enter`].
#[must_use = "the frame ends when the guard is dropped"]
pub struct Frame {
    active: bool,
}

impl Drop for Frame {
    fn drop(&mut self) {
        if self.active {
            with_ctx(|cx| {
                if let Some(cx) = cx {
                    cx.actors[cx.current].frames.pop();
                }
            })
        }
    }
}

/// The running actor's call chain: the modelled functions it has entered
/// ([`enter`]) and not yet left, innermost first. Empty outside an
/// execution. This is what a kernel stack dump (`Call Trace:`) shows of
/// the model: every name is a function the model really is in at the
/// point of the call, not one the report assumes.
pub fn call_chain() -> Vec<&'static str> {
    with_ctx(|cx| {
        cx.map_or_else(Vec::new, |cx| {
            cx.actors[cx.current].frames.iter().rev().copied().collect()
        })
    })
}

/// The CPU an actor runs on, as reports number them: actor `n` (the
/// scenario's `n`-th thread, counting from 1) is CPU `n - 1`; the
/// sequential setup/teardown actor is drawn in CPU0's column and counts as
/// CPU0.
pub fn cpu_of(actor: ActorId) -> usize {
    actor.saturating_sub(1)
}

/// The CPU the running actor is on ([`cpu_of`]): what the kernel's
/// `smp_processor_id()` returns in the model. 0 outside an execution.
pub fn current_cpu() -> usize {
    with_ctx(|cx| cx.map_or(0, |cx| cpu_of(cx.current)))
}

/// The running actor's id (0: the sequential setup/teardown actor;
/// concurrent actors count from 1 in the order the instance listed them).
pub fn current_actor() -> ActorId {
    with_ctx(|cx| cx.map_or(SEQUENTIAL_ACTOR, |cx| cx.current))
}

/// A nondeterministic choice among `n` data values (allocation failure and
/// the like). Returns 0 outside an execution.
pub fn choose(n: u32) -> u32 {
    if n <= 1 {
        return 0;
    }
    with_ctx(|cx| {
        let Some(cx) = cx else { return 0 };
        if cx.after != Aftermath::Before {
            // The aftermath takes the default (first) value, unrecorded.
            return 0;
        }
        let c = cx.strategy.choose_value(n);
        if c >= n {
            cx.replay_error
                .get_or_insert_with(|| "data choice out of range".into());
            return 0;
        }
        if let Some(t) = cx.tracked.as_mut() {
            t.values.push((cx.choices.len(), n));
        }
        cx.choices.push(c);
        c
    })
}

/// Something an execution runs: the model instance built by a harness.
pub trait Instance {
    /// The concurrent actors, in CPU order.
    fn actors(&mut self) -> Vec<ActorSpec>;
    /// Sequential phase after all actors finished (process exit, check_mm).
    fn teardown(&mut self) {}
    /// Generic invariant checkers over the whole state, from scratch:
    /// called at the end of the concurrent phase and of every execution,
    /// and when a kernel message asks what else is broken.
    fn check(&self) -> Option<Finding> {
        None
    }
    /// The checkers after a step: called in quiescent states (no actor
    /// holds a spinlock or a rw-semaphore for writing) after any step that
    /// executed a lockless write, with every data change announced since
    /// the last check. An instance may look only at what those touched
    /// (plus what its checkers declare they depend on); it must report a
    /// violation at the same check as [`Instance::check`] would. `Err` is
    /// a bug in mmrace (its own bookkeeping disagrees with the state).
    fn check_step(&self, _touched: &Touches<'_>) -> Result<Option<Finding>, String> {
        Ok(self.check())
    }
    /// Decodes a value of an object class for reports (e.g. a raw pmd).
    fn describe(&self, _class: &'static str, _value: u64) -> Option<String> {
        None
    }
    /// A dump of the objects involved, appended to reports.
    fn dump(&self) -> Vec<String> {
        Vec::new()
    }
    /// A summary of the final state (tests compare the sets of final states
    /// different exploration methods reach).
    fn final_state(&self) -> Option<String> {
        None
    }
}

/// A concurrent actor: a name (thread or kthread) and its body.
pub struct ActorSpec {
    pub name: String,
    pub body: Box<dyn FnOnce()>,
}

/// Builds a fresh model instance for one execution (running the setup
/// sequentially). Shared across worker threads.
pub trait Harness: Sync {
    fn start(&self) -> Box<dyn Instance>;
}

/// What one execution produced.
pub struct ExecutionResult {
    pub finding: Option<Finding>,
    pub choices: Vec<u32>,
    pub steps: u64,
    pub preemptions: u32,
    pub marks: Vec<&'static str>,
    pub trace: Vec<Event>,
    pub actor_names: Vec<String>,
    pub objects: Vec<(u32, ObjectInfo)>,
    /// Object values decoded by the instance for the trace (replay only).
    pub described: Vec<Option<String>>,
    pub dump: Vec<String>,
    /// With `track_conflicts`: racy objects, and how many steps touched one.
    pub racy: Vec<bool>,
    pub racy_steps: u64,
    /// With `track_conflicts`: every concurrent step up to the finding.
    pub events: Vec<StepEvent>,
    /// The strategy abandoned the execution as redundant (DPOR sleep
    /// sets): it has no final state and no finding.
    pub abandoned: bool,
    /// With `track_conflicts`: every data choice up to the finding, as
    /// (index in `choices`, number of values).
    pub values: Vec<(usize, u32)>,
    /// With `track_conflicts`: the instance's final state, if it has one
    /// to report (`Instance::final_state`).
    pub final_state: Option<String>,
}

/// Limits and switches for one execution.
#[derive(Clone, Copy, Debug)]
pub struct ExecutionConfig<'a> {
    pub steps_max: u64,
    pub tracing: bool,
    /// Learn which objects the actors conflict on (calibration).
    pub track_conflicts: bool,
    /// Objects known to be racy (indexed by object id).
    pub racy: &'a [bool],
}

/// What consecutive executions on one thread reuse: coroutine stacks
/// (creating one costs far more than a switch) and the runtime's buffers
/// (a heap allocation per buffer and execution shows in the throughput of
/// short executions).
#[derive(Default)]
pub struct Workspace {
    stacks: Vec<DefaultStack>,
    coroutines: Vec<Co>,
    live: Vec<ActorId>,
    enabled: Vec<ActorId>,
    enabled_buf: Vec<ActorId>,
    choices: Vec<u32>,
    objects: Vec<(u32, ObjectInfo)>,
    owner: Vec<u32>,
    touched: Vec<(ObjectId, AccessKind)>,
    /// Emptied call-chain buffers of the actors of earlier executions.
    frames: Vec<Vec<&'static str>>,
}

/// Generous: model code runs on these stacks in debug builds too, and a
/// stack overflow in a coroutine kills the process instead of unwinding.
const STACK_SIZE: usize = 1024 * 1024;

impl Workspace {
    /// Takes back the buffers of a result its caller is done with, for the
    /// next execution.
    pub fn reclaim(&mut self, result: ExecutionResult) {
        self.choices = result.choices;
        self.choices.clear();
        self.objects = result.objects;
        self.objects.clear();
    }

    /// An empty call-chain buffer for a new actor.
    fn frames(&mut self) -> Vec<&'static str> {
        self.frames.pop().unwrap_or_default()
    }

    fn take(&mut self) -> Result<DefaultStack, InternalError> {
        match self.stacks.pop() {
            Some(s) => Ok(s),
            None => DefaultStack::new(STACK_SIZE)
                .map_err(|e| InternalError::bug(format!("cannot allocate a stack: {e}"))),
        }
    }
}

type Co = Coroutine<(), (), (), DefaultStack>;

/// Runs one execution of `harness` under `strategy`.
pub fn run_execution(
    harness: &dyn Harness,
    strategy: &mut dyn Strategy,
    config: ExecutionConfig<'_>,
    pool: &mut Workspace,
) -> Result<ExecutionResult, InternalError> {
    let mut cx = Ctx {
        mode: Mode::Sequential,
        actors: with_setup_actor(pool),
        current: SEQUENTIAL_ACTOR,
        steps: 0,
        steps_max: config.steps_max,
        tracing: config.tracing,
        trace: Vec::new(),
        objects: std::mem::take(&mut pool.objects),
        owner: std::mem::take(&mut pool.owner),
        next_object: 0,
        finding: None,
        dirty: false,
        unquiet: 0,
        also_pending: false,
        marks: Vec::new(),
        strategy,
        choices: std::mem::take(&mut pool.choices),
        last_runner: None,
        preemptions: 0,
        replay_error: None,
        after: Aftermath::Before,
        fatal: false,
        traced_finding: false,
        steps_at_finding: 0,
        dump_at_finding: None,
        racy: config.racy,
        tracked: config.track_conflicts.then(Tracked::default),
        prev_runner: None,
        step_writes: false,
        touched: std::mem::take(&mut pool.touched),
        internal: None,
        instance: None,
        inline: None,
        enabled_buf: std::mem::take(&mut pool.enabled_buf),
        abandoned: false,
        lean: false,
        live: std::mem::take(&mut pool.live),
        waiting: 0,
    };
    let guard = Installed::new(&mut cx);
    let outcome = drive(harness, guard.cx, pool);
    drop(guard);
    let (instance, mut coroutines) = outcome?;
    let described = describe_trace(&cx, instance.as_deref());
    let final_state = match (&instance, &cx.tracked) {
        (Some(i), Some(_)) => i.final_state(),
        _ => None,
    };
    let dump = match (&cx.finding, &instance, cx.dump_at_finding.take()) {
        (Some(_), _, Some(at_finding)) => at_finding,
        (Some(_), Some(i), None) if cx.tracing => i.dump(),
        _ => Vec::new(),
    };
    let steps = if cx.after == Aftermath::Before {
        cx.steps
    } else {
        cx.steps_at_finding
    };
    // Unwinding suspended actors needs no context: guards only touch locks.
    for co in coroutines.drain(..) {
        recycle(co, pool);
    }
    pool.coroutines = coroutines;
    cx.live.clear();
    pool.live = std::mem::take(&mut cx.live);
    pool.enabled_buf = std::mem::take(&mut cx.enabled_buf);
    cx.touched.clear();
    pool.touched = std::mem::take(&mut cx.touched);
    cx.owner.clear();
    pool.owner = std::mem::take(&mut cx.owner);
    drop(instance);
    if let Some(msg) = cx.internal {
        return Err(InternalError::bug(msg));
    }
    if let Some(msg) = cx.replay_error {
        return Err(InternalError::diverged(msg));
    }
    let racy = cx.tracked.as_ref().map(Tracked::racy).unwrap_or_default();
    let racy_steps = cx.tracked.as_ref().map_or(0, |t| {
        t.steps
            .iter()
            .filter(|&&o| racy.get(o as usize) == Some(&true))
            .count()
    });
    let (events, values) = cx
        .tracked
        .as_mut()
        .map(|t| (std::mem::take(&mut t.events), std::mem::take(&mut t.values)))
        .unwrap_or_default();
    Ok(ExecutionResult {
        abandoned: cx.abandoned,
        events,
        values,
        final_state,
        racy,
        racy_steps: racy_steps as u64,
        finding: cx.finding,
        choices: cx.choices,
        steps,
        preemptions: cx.preemptions,
        marks: cx.marks,
        trace: cx.trace,
        actor_names: cx
            .actors
            .into_iter()
            .map(|mut a| {
                a.frames.clear();
                pool.frames.push(a.frames);
                a.name
            })
            .collect(),
        objects: cx.objects,
        described,
        dump,
    })
}

/// The actors of an execution before spawning: the sequential one, with
/// room for the usual few concurrent ones.
fn with_setup_actor(pool: &mut Workspace) -> Vec<Actor> {
    let mut actors = Vec::with_capacity(4);
    actors.push(Actor::new("setup".into(), pool.frames()));
    actors
}

fn recycle(mut co: Co, pool: &mut Workspace) {
    // Force-unwinding runs the actor's destructors (lock guards, Rc drops)
    // with no execution context installed: they must not suspend.
    if catch_unwind(AssertUnwindSafe(|| co.force_unwind())).is_ok() {
        pool.stacks.push(co.into_stack());
    }
}

fn describe_trace(cx: &Ctx<'_>, instance: Option<&dyn Instance>) -> Vec<Option<String>> {
    let Some(instance) = instance.filter(|_| cx.tracing || cx.traced_finding) else {
        return Vec::new();
    };
    cx.trace
        .iter()
        .map(|e| match e.what {
            What::Access {
                access,
                value: Some(v),
                ..
            } => {
                let class = object_info(&cx.objects, access.object)?.class;
                instance.describe(class, v)
            }
            _ => None,
        })
        .collect()
}

/// Installs the context pointer for the duration of an execution.
struct Installed<'a, 's> {
    cx: &'a mut Ctx<'s>,
}

impl<'a, 's> Installed<'a, 's> {
    fn new(cx: &'a mut Ctx<'s>) -> Self {
        let p: *mut Ctx<'static> = (cx as *mut Ctx<'s>).cast();
        CTX.with(|c| c.set(p));
        TRACING.with(|t| t.set(cx.tracing));
        Installed { cx }
    }
}

impl Drop for Installed<'_, '_> {
    fn drop(&mut self) {
        CTX.with(|c| c.set(ptr::null_mut()));
        TRACING.with(|t| t.set(false));
    }
}

type Driven = (Option<Box<dyn Instance>>, Vec<Co>);

fn drive(
    harness: &dyn Harness,
    cx: &mut Ctx<'_>,
    pool: &mut Workspace,
) -> Result<Driven, InternalError> {
    let Some(mut instance) = sequentially(cx, || Some(harness.start()))? else {
        return Ok((None, Vec::new()));
    };
    if cx.finding.is_some() {
        return Ok((Some(instance), Vec::new()));
    }
    let specs = instance.actors();
    let mut coroutines = spawn(cx, specs, pool)?;
    let mut enabled = std::mem::take(&mut pool.enabled);
    let scheduled = schedule(cx, &mut coroutines, instance.as_ref(), &mut enabled);
    pool.enabled = enabled;
    scheduled?;
    if cx.abandoned {
        // Actors stopped mid-step: no teardown, no checks.
        return Ok((Some(instance), coroutines));
    }
    if cx.finding.is_none() {
        // The steps were checked for what they touched; the state they
        // leave is checked whole before teardown changes it, and teardown
        // then runs as the finding's aftermath.
        check(cx, instance.as_ref());
        if cx.finding.is_some() {
            start_aftermath(cx, instance.as_ref());
        }
    }
    if cx.finding.is_none() {
        sequentially(cx, || {
            instance.teardown();
            Some(())
        })?;
        if cx.finding.is_none() {
            check(cx, instance.as_ref());
        }
    } else if cx.after == Aftermath::Running {
        let torn_down = sequentially(cx, || {
            instance.teardown();
            Some(())
        });
        if let Err(e) = torn_down {
            end_aftermath(cx, &e.message);
        }
    }
    Ok((Some(instance), coroutines))
}

/// Runs `f` as the sequential actor; a fatal finding yields `None`.
fn sequentially<R>(
    cx: &mut Ctx<'_>,
    f: impl FnOnce() -> Option<R>,
) -> Result<Option<R>, InternalError> {
    cx.mode = Mode::Sequential;
    cx.current = SEQUENTIAL_ACTOR;
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Ok(r),
        Err(payload) if payload.is::<Stop>() => Ok(None),
        Err(payload) => Err(internal(payload)),
    }
}

fn internal(payload: Box<dyn std::any::Any + Send>) -> InternalError {
    if let Some(Unsupported(what)) = payload.downcast_ref::<Unsupported>() {
        return InternalError {
            message: what.clone(),
            kind: crate::finding::InternalKind::Unsupported,
        };
    }
    let message = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    };
    InternalError::bug(message)
}

fn spawn(
    cx: &mut Ctx<'_>,
    specs: Vec<ActorSpec>,
    pool: &mut Workspace,
) -> Result<Vec<Co>, InternalError> {
    let mut coroutines = std::mem::take(&mut pool.coroutines);
    for spec in specs {
        let id = cx.actors.len();
        let mut actor = Actor::new(spec.name, pool.frames());
        // Every actor starts with a scheduling point, so the first step of
        // each actor is a scheduler decision too. The coroutine itself
        // starts only when that step is scheduled.
        actor.pending = Some(Pending {
            access: start_access(),
            wait: Wait::Nothing,
        });
        cx.actors.push(actor);
        cx.live.push(id);
        let body = spec.body;
        let stack = pool.take()?;
        coroutines.push(Co::with_stack(stack, move |y: &Yielder<(), ()>, ()| {
            with_ctx(|cx| {
                if let Some(cx) = cx {
                    cx.actors[id].yielder = y as *const _;
                }
            });
            with_stack_colour(id, body);
        }));
    }
    cx.mode = Mode::Concurrent;
    Ok(coroutines)
}

/// Runs an actor's body a few cache lines further down its stack for each
/// actor: stacks are page-aligned, so without this the actors' frames sit
/// at the same offsets modulo 4 KiB and their loads and stores alias in the
/// CPU's store-forwarding checks at every switch.
#[inline(never)]
fn with_stack_colour(id: ActorId, body: Box<dyn FnOnce()>) {
    fn padded<const N: usize>(body: Box<dyn FnOnce()>) {
        let pad = [0u8; N];
        std::hint::black_box(&pad);
        body();
    }
    match id % 4 {
        0 => padded::<0>(body),
        1 => padded::<832>(body),
        2 => padded::<1664>(body),
        _ => padded::<2496>(body),
    }
}

fn start_access() -> Access {
    Access {
        object: ObjectId(u32::MAX),
        kind: AccessKind::Read,
        label: "start",
    }
}

/// Resumes one actor; converts panics into findings or internal errors.
fn resume_actor(cx: &mut Ctx<'_>, co: &mut Co) -> Result<(), InternalError> {
    let id = cx.current;
    cx.clear_pending(id);
    match catch_unwind(AssertUnwindSafe(|| co.resume(()))) {
        Ok(CoroutineResult::Yield(())) => Ok(()),
        Ok(CoroutineResult::Return(())) => {
            cx.finished(id);
            Ok(())
        }
        Err(payload) if payload.is::<Stop>() => {
            cx.finished(id);
            Ok(())
        }
        Err(payload) => Err(internal(payload)),
    }
}

fn schedule(
    cx: &mut Ctx<'_>,
    coroutines: &mut [Co],
    instance: &dyn Instance,
    enabled: &mut Vec<ActorId>,
) -> Result<(), InternalError> {
    // SAFETY: the instance outlives this call, and `point` only uses the
    // pointer while an actor runs inside it.
    cx.instance = Some(unsafe {
        std::mem::transmute::<*const dyn Instance, *const (dyn Instance + 'static)>(instance)
    });
    cx.lean = cx.tracked.is_none();
    let result = schedule_loop(cx, coroutines, instance, enabled);
    cx.lean = false;
    cx.instance = None;
    result
}

fn schedule_loop(
    cx: &mut Ctx<'_>,
    coroutines: &mut [Co],
    instance: &dyn Instance,
    enabled: &mut Vec<ActorId>,
) -> Result<(), InternalError> {
    let mut decided = None;
    loop {
        let next = match decided.take() {
            Some(next) => next,
            None => match decide(cx, instance, enabled)? {
                Some(next) => next,
                None => return Ok(()),
            },
        };
        begin_step(cx, next, enabled);
        let after = cx.after == Aftermath::Running;
        if let Err(e) = resume_actor(cx, &mut coroutines[next - 1]) {
            if !after {
                return Err(e);
            }
            end_aftermath(cx, &e.message);
            return Ok(());
        }
        // The actor may have gone on inline (see `point`) and decided the
        // next step itself.
        match cx.inline.take() {
            Some(Inline::Switch(n)) => {
                // The enabled set it was chosen from is in the buffer
                // when partial-order reduction records it (the lean path,
                // which picks from `live`, never runs then).
                if cx.tracked.is_some() {
                    std::mem::swap(enabled, &mut cx.enabled_buf);
                }
                decided = Some(n);
            }
            Some(Inline::Stop) => return Ok(()),
            Some(Inline::Failed(e)) => return Err(e),
            None => end_step(cx, instance),
        }
    }
}

/// What an actor that decided the next step itself (in `point`) left for
/// the scheduler.
enum Inline {
    /// Run this other actor next.
    Switch(ActorId),
    /// The execution is over (or needs the scheduler's own handling).
    Stop,
    Failed(InternalError),
}

/// Picks the next actor, or `None` when the execution's concurrent phase
/// is over (everyone done, deadlock, steps_max, a fatal finding).
fn decide(
    cx: &mut Ctx<'_>,
    instance: &dyn Instance,
    enabled: &mut Vec<ActorId>,
) -> Result<Option<ActorId>, InternalError> {
    match cx.after {
        Aftermath::Before if cx.finding.is_some() => {
            collect_also(cx, instance);
            if cx.fatal {
                return Ok(None);
            }
            start_aftermath(cx, instance);
        }
        Aftermath::Ended => return Ok(None),
        Aftermath::Running if cx.also_pending && quiescent(cx) => {
            cx.also_pending = false;
            collect_also(cx, instance);
        }
        _ => {}
    }
    let after = cx.after == Aftermath::Running;
    enabled.clear();
    for (a, actor) in cx.actors.iter().enumerate().skip(1) {
        if actor.pending.as_ref().is_some_and(|p| p.wait.enabled()) {
            enabled.push(a);
        }
    }
    if enabled.is_empty() {
        if cx.actors[1..].iter().any(|a| !a.done) {
            if after {
                end_aftermath(cx, "every remaining task is blocked");
            } else {
                cx.finding = Some(deadlock(cx));
            }
        }
        return Ok(None);
    }
    if cx.steps >= cx.steps_max {
        if after {
            end_aftermath(cx, "steps_max reached");
        } else {
            cx.finding = Some(livelock(cx));
        }
        return Ok(None);
    }
    let next = if after {
        aftermath_pick(cx, enabled)
    } else {
        pick(cx, enabled)?
    };
    if cx.tracked.is_some() && !after {
        if let Some(p) = cx.actors[next].pending.as_ref() {
            cx.strategy.observe(next, p.access);
        }
        if cx.strategy.abandoned() {
            cx.abandoned = true;
            return Ok(None);
        }
    }
    Ok(Some(next))
}

/// Starts a step of `next`: records it for DPOR and conflict tracking and
/// notes whether its announced operation changes data.
fn begin_step(cx: &mut Ctx<'_>, next: ActorId, enabled: &[ActorId]) {
    let after = cx.after == Aftermath::Running;
    if let (Some(t), Some(p)) = (cx.tracked.as_mut(), cx.actors[next].pending.as_ref()) {
        t.record(next, p.access);
        if !after {
            let decision = (enabled.len() > 1).then(|| cx.choices.len() - 1);
            t.events.push(StepEvent {
                actor: next,
                access: p.access,
                enabled: enabled.to_vec(),
                last: cx.prev_runner,
                decision,
                released: Vec::new(),
                block: None,
            });
        }
    }
    // The step starts by executing the announced operation: only data
    // changes can break a state invariant (lock operations cannot), and
    // the flag stays set until a quiescent state has been checked.
    let written = cx.actors[next]
        .pending
        .as_ref()
        .map(|p| p.access)
        .filter(|a| a.kind.changes_data());
    cx.step_writes = written.is_some();
    if let Some(a) = written.filter(|_| cx.after == Aftermath::Before) {
        cx.touched.push((a.object, a.kind));
    }
    cx.current = next;
    cx.steps += 1;
}

/// Ends the current step: checks the invariants if data changed and no
/// actor is inside a section the checkers must not look into.
fn end_step(cx: &mut Ctx<'_>, instance: &dyn Instance) {
    cx.dirty |= std::mem::take(&mut cx.step_writes);
    if cx.dirty && cx.finding.is_none() && quiescent(cx) {
        cx.dirty = false;
        check_step(cx, instance);
    }
}

/// The inline fast path of `point`: the actor that just announced its next
/// operation ends its step and makes the scheduling decision itself, so
/// that when it goes on (the common case) no coroutine switch happens.
/// Returns whether the actor goes on; otherwise it must suspend, with
/// `cx.inline` telling the scheduler what was decided.
fn decide_inline(cx: &mut Ctx<'_>) -> bool {
    let Some(instance) = cx.instance else {
        return false;
    };
    // SAFETY: set by `schedule` for the duration of the concurrent phase,
    // which this actor's step is part of.
    let instance = unsafe { &*instance };
    end_step(cx, instance);
    decide_after_step(cx, instance)
}

/// `decide_inline` once the step has ended.
fn decide_after_step(cx: &mut Ctx<'_>, instance: &dyn Instance) -> bool {
    if cx.finding.is_some() {
        // Findings, their aftermath and the report's dump are the
        // scheduler's business.
        return false;
    }
    let mut enabled = std::mem::take(&mut cx.enabled_buf);
    let decided = decide(cx, instance, &mut enabled);
    let me = cx.current;
    let goes_on = matches!(decided, Ok(Some(n)) if n == me);
    match decided {
        Ok(Some(n)) if n == me => {
            begin_step(cx, n, &enabled);
            cx.clear_pending(me);
        }
        Ok(Some(n)) => cx.inline = Some(Inline::Switch(n)),
        Ok(None) => cx.inline = Some(Inline::Stop),
        Err(e) => cx.inline = Some(Inline::Failed(e)),
    }
    cx.enabled_buf = enabled;
    goes_on
}

/// Picks among `enabled` (not empty) through the strategy and records the
/// choice (`lean_pick` is its lean-path counterpart).
fn pick(cx: &mut Ctx<'_>, enabled: &[ActorId]) -> Result<ActorId, InternalError> {
    let next = if enabled.len() == 1 {
        enabled[0]
    } else {
        let last_racy = cx
            .last_runner
            .filter(|l| enabled.contains(l))
            .is_some_and(|l| {
                let object = cx.actors[l]
                    .pending
                    .as_ref()
                    .map_or(u32::MAX, |p| p.access.object.0);
                cx.racy.get(object as usize) == Some(&true)
            });
        let n = cx.strategy.choose_actor(enabled, cx.last_runner, last_racy);
        if !among(enabled, n) {
            return Err(diverged(cx, n));
        }
        cx.choices.push(n as u32);
        n
    };
    if let Some(last) = cx.last_runner {
        let could_go_on = enabled.contains(&last);
        cx.preemptions += u32::from((last != next) & could_go_on);
    }
    cx.prev_runner = cx.last_runner;
    cx.last_runner = Some(next);
    Ok(next)
}

/// Whether the strategy's choice `n` is among `enabled` (a replayed token
/// may name an actor that cannot run). Without early exit: `n` is random,
/// and an unpredictable loop exit costs more than comparing with every
/// enabled actor.
#[inline(always)]
fn among(enabled: &[ActorId], n: ActorId) -> bool {
    enabled.iter().fold(false, |found, &a| found | (a == n))
}

#[cold]
fn diverged(cx: &mut Ctx<'_>, n: ActorId) -> InternalError {
    let msg = format!("actor {n} is not enabled at step {}", cx.steps);
    cx.replay_error.get_or_insert(msg);
    InternalError::diverged("a recorded choice names an actor that cannot run")
}

/// Switches to the aftermath: tracing stops (the interleaving ends at the
/// finding), and later kernel messages accumulate on the finding.
fn start_aftermath(cx: &mut Ctx<'_>, instance: &dyn Instance) {
    cx.after = Aftermath::Running;
    cx.lean = false;
    cx.steps_at_finding = cx.steps;
    if cx.tracing {
        let saved = cx.mode;
        cx.mode = Mode::Ghost;
        cx.dump_at_finding = Some(instance.dump());
        cx.mode = saved;
    }
    cx.traced_finding = cx.tracing;
    cx.tracing = false;
    TRACING.with(|t| t.set(false));
}

/// Ends the aftermath early, saying why in the finding.
fn end_aftermath(cx: &mut Ctx<'_>, why: &str) {
    cx.after = Aftermath::Ended;
    if let Some(f) = cx.finding.as_mut() {
        f.aftermath
            .push(format!("(mmrace stopped following the execution: {why})"));
    }
}

/// The aftermath's schedule: the last runner goes on while it can, else the
/// lowest-numbered enabled actor. Not a choice: nothing is recorded.
fn aftermath_pick(cx: &mut Ctx<'_>, enabled: &[ActorId]) -> ActorId {
    let next = cx
        .last_runner
        .filter(|l| enabled.contains(l))
        .unwrap_or(enabled[0]);
    cx.last_runner = Some(next);
    next
}

fn quiescent(cx: &Ctx<'_>) -> bool {
    cx.unquiet == 0
}

/// Runs the instance's checkers on what the steps since the last check
/// touched. Inlined: it runs after most steps, and what it costs beyond
/// the checkers themselves is the explorer's overhead.
#[inline(always)]
fn check_step(cx: &mut Ctx<'_>, instance: &dyn Instance) {
    let saved = cx.mode;
    cx.mode = Mode::Ghost;
    let touched = Touches {
        raw: &cx.touched,
        objects: &cx.objects,
        owner: &cx.owner,
    };
    let found = instance.check_step(&touched);
    cx.touched.clear();
    cx.mode = saved;
    match found {
        Ok(Some(f)) => checked_finding(cx, f),
        Ok(None) => {}
        Err(message) => inconsistent(cx, message),
    }
}

/// Runs every checker on the whole state, from scratch: at the end of the
/// concurrent phase and of every execution, whatever the steps touched.
fn check(cx: &mut Ctx<'_>, instance: &dyn Instance) {
    cx.touched.clear();
    let saved = cx.mode;
    cx.mode = Mode::Ghost;
    let found = instance.check();
    cx.mode = saved;
    if let Some(f) = found {
        checked_finding(cx, f);
    }
}

/// A checker found the state inconsistent with the checkers' own record
/// of it: a bug in mmrace. The execution stops and becomes an internal
/// error.
#[cold]
fn inconsistent(cx: &mut Ctx<'_>, message: String) {
    cx.internal.get_or_insert(message);
    cx.fatal = true;
    cx.finding
        .get_or_insert_with(|| Finding::new(FindingKind::Invariant, "mmrace", "internal error"));
}

#[cold]
fn checked_finding(cx: &mut Ctx<'_>, f: Finding) {
    if cx.tracing {
        // The state was checked as of the step's last access; what the
        // actor did after it (entering its next syscall) comes later.
        let at = cx
            .trace
            .iter()
            .rposition(|e| matches!(e.what, What::Access { .. }))
            .map_or(cx.trace.len(), |i| i + 1);
        let (actor, depth) = cx
            .trace
            .get(at.wrapping_sub(1))
            .map_or((cx.current, 0), |e| (e.actor, e.depth));
        let what = What::Finding(f.title.clone());
        cx.trace.insert(at, Event { actor, depth, what });
    }
    cx.finding = Some(f);
}

/// After a kernel message, record which invariants fail in the same state.
/// When an actor is inside a section the checkers must not look into (a
/// page-table lock is held), the checks wait for the aftermath's first
/// quiescent state, and the line says so: the kernel message stopped the
/// interleaving, but what it broke is often seen only a few steps later.
fn collect_also(cx: &mut Ctx<'_>, instance: &dyn Instance) {
    if !quiescent(cx) {
        cx.also_pending = cx.after == Aftermath::Before;
        return;
    }
    let late = cx.after == Aftermath::Running;
    let saved = cx.mode;
    cx.mode = Mode::Ghost;
    let extra = instance.check();
    cx.mode = saved;
    if let (Some(extra), Some(f)) = (extra, cx.finding.as_mut()) {
        if extra.title != f.title {
            f.also.push(if late {
                format!(
                    "{} (checked at the next state where no actor held a spinlock)",
                    extra.title
                )
            } else {
                extra.title
            });
        }
    }
}

fn deadlock(cx: &Ctx<'_>) -> Finding {
    let mut f = Finding::new(
        FindingKind::Deadlock,
        "deadlock",
        "INFO: task blocked forever (deadlock)",
    );
    for a in cx.actors[1..].iter().filter(|a| !a.done) {
        let label = a.pending.as_ref().map_or("?", |p| p.access.label);
        f.details.push(format!("{} blocked at {}", a.name, label));
    }
    f
}

fn livelock(cx: &Ctx<'_>) -> Finding {
    Finding::new(
        FindingKind::Livelock,
        "steps_max",
        format!(
            "INFO: no progress after {} steps (livelock or unbounded retry)",
            cx.steps
        ),
    )
    .detail("a long but finite scenario needs a larger --steps-max")
}
