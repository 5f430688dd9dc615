//! Bounded verification: every interleaving with at most K preemptions, up
//! to commuting independent steps, by dynamic partial-order reduction.
//!
//! A stateless depth-first search over scheduling decisions in the manner
//! of Flanagan and Godefroid (POPL 2005): each execution is re-run from the
//! start, following a prefix of decisions and then the default schedule
//! (the running actor goes on; else the lowest-numbered enabled one). After
//! an execution, its steps are checked for races: two steps of different
//! actors that conflict on an object (`conflicting`), with no
//! happens-before path between them (vector clocks over program order and
//! earlier conflicting steps). Each race's reversal is added at the
//! decision before the earlier step as a source set (Abdulla, Aronis,
//! Jonsson and Sagonas, POPL 2014): one actor that can start the reversed
//! order, unless one already is a backtrack point there.
//!
//! Under a preemption bound, as in bounded partial-order reduction (Coons,
//! Musuvathi and McKinley, OOPSLA 2013), the reversal is also tried where
//! the earlier step's run of steps began, and wherever in that run its
//! actor held a lock the other actor waits for (`blocks_actor_before`).
//! Without a bound, sleep sets (Godefroid) prune branches that lead only
//! to explored interleavings; under a bound they would lose states.
//!
//! With `Mode::Exhaustive` every enabled actor is a backtrack point at
//! every decision: the plain bounded DFS the soundness tests compare
//! against. docs/EXPLORER.md section 7a has the whole story.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use crate::access::{Access, AccessKind, ObjectId};
use crate::explorer::Found;
use crate::finding::InternalError;
use crate::rt::{
    run_execution, ActorId, ExecutionConfig, ExecutionResult, Harness, StepEvent, Workspace,
};
use crate::strategy::Strategy;

/// Which search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Partial-order reduction.
    Dpor,
    /// Every enabled actor at every decision (for tests).
    Exhaustive,
}

/// A preemption bound that bounds nothing: plain DPOR, without the extra
/// backtrack points a bound needs.
pub const UNBOUNDED: u32 = u32::MAX;

/// Limits of a verification.
#[derive(Clone, Debug)]
pub struct VerifyConfig {
    pub preemptions: u32,
    pub steps_max: u64,
    /// Stop (incomplete) after this many executions.
    pub max_executions: u64,
    pub mode: Mode,
    /// Stop at the first finding (`verify`), or go on and collect every
    /// finding and final state (tests).
    pub stop_at_finding: bool,
    /// Worker threads.
    pub jobs: usize,
    /// Data choices (allocation failures) that may take a value other than
    /// the first in one execution: fault injection explored in full is
    /// exponential in the allocations.
    pub max_failures: u32,
    /// Sleep sets (Godefroid): skip branches that lead only to explored
    /// interleavings. Sound without a bound; with one, a branch put to
    /// sleep may be reachable within the bound only in an order that was
    /// not, so `new` turns them on only for `UNBOUNDED`.
    pub sleep_sets: bool,
    /// Executions done so far, for a progress bar.
    pub progress: Option<Arc<AtomicU64>>,
    /// Findings so far (with `stop_at_finding`, at most one).
    pub progress_findings: Option<Arc<AtomicU64>>,
    /// Only findings this accepts count (`found`, stopping); the others
    /// end their execution and the search goes on (see
    /// `RunConfig::wanted`). `None`: every finding.
    pub wanted: Option<crate::Wanted>,
}

impl VerifyConfig {
    /// DPOR within `preemptions`, stopping at the first finding.
    pub fn new(preemptions: u32, steps_max: u64, max_executions: u64, jobs: usize) -> Self {
        VerifyConfig {
            preemptions,
            steps_max,
            max_executions,
            mode: Mode::Dpor,
            stop_at_finding: true,
            jobs,
            sleep_sets: preemptions == UNBOUNDED,
            max_failures: 1,
            progress: None,
            progress_findings: None,
            wanted: None,
        }
    }
}

/// What a verification did.
#[derive(Clone, Debug, Default)]
pub struct VerifyOutcome {
    pub executions: u64,
    /// Scheduling points over all executions.
    pub steps: u64,
    /// The first finding (in search order), with its replayable choices.
    pub found: Option<Found>,
    /// Every decision within the bound was explored.
    pub complete: bool,
    /// Backtrack points dropped because no decision within the bound could
    /// take them.
    pub pruned: u64,
    /// Executions abandoned as redundant (every enabled actor asleep).
    pub sleep_blocked: u64,
    /// Distinct finding titles and final states (when not stopping early).
    pub findings: BTreeSet<String>,
    pub final_states: BTreeSet<String>,
}

/// What was decided at one point of the current path.
#[derive(Clone, Debug)]
enum Kind {
    /// Which actor runs next.
    Actor {
        enabled: Vec<ActorId>,
        last: Option<ActorId>,
    },
    /// A data choice among `n` values (allocation failure): always
    /// explored in full, since values do not commute.
    Value { n: u32 },
}

/// One decision on the current path: what could be chosen, what was,
/// what must still be (`backtrack`) and what has been (`done`).
#[derive(Clone, Debug)]
struct Node {
    kind: Kind,
    chosen: u32,
    backtrack: BTreeSet<u32>,
    done: BTreeSet<u32>,
    /// Sleep set on reaching this decision: actors whose next step leads
    /// only to interleavings equivalent to ones explored elsewhere, with
    /// that step's accesses.
    sleep: Vec<(u32, StepAccesses)>,
    /// The step each explored branch ran here (the same state, so the same
    /// step whichever execution took it).
    steps_of: BTreeMap<u32, StepAccesses>,
}

/// Every shared access of one step (its announced operation and the locks
/// it released).
type StepAccesses = Vec<(ObjectId, AccessKind)>;

/// Whether a step with these accesses conflicts with `(object, kind)`.
fn step_conflicts(step: &StepAccesses, object: ObjectId, kind: AccessKind) -> bool {
    step.iter()
        .any(|&(o, k)| o == object && conflicting(k, kind))
}

impl Node {
    fn is_asleep(&self, a: u32) -> bool {
        self.sleep.iter().any(|(q, _)| *q == a)
    }

    fn can_choose(&self, c: u32) -> bool {
        match &self.kind {
            Kind::Actor { enabled, .. } => enabled.contains(&(c as ActorId)),
            Kind::Value { n } => c < *n,
        }
    }

    /// Choosing actor `a` here switches away from a runner that could have
    /// gone on.
    fn is_preemption(&self, a: u32) -> bool {
        match &self.kind {
            Kind::Actor { enabled, last } => {
                last.is_some_and(|l| l as u32 != a && enabled.contains(&l))
            }
            Kind::Value { .. } => false,
        }
    }

    fn enabled(&self) -> Vec<u32> {
        match &self.kind {
            Kind::Actor { enabled, .. } => enabled.iter().map(|&a| a as u32).collect(),
            Kind::Value { n } => (0..*n).collect(),
        }
    }
}

/// Follows the prefix of decisions, then the default schedule: the
/// running actor goes on, else the lowest-numbered enabled one; data
/// choices take their first value. With sleep sets, actors asleep are not
/// chosen, and an execution where every enabled actor sleeps is abandoned.
struct Prefix {
    choices: Vec<u32>,
    next: usize,
    sleep: Option<Sleep>,
}

/// Sleep-set state of one execution that takes a new branch at decision
/// `branch`.
struct Sleep {
    branch: usize,
    /// The branch's sleep set before its own step wakes anyone: the sleep
    /// set at the decision and the branches explored there before.
    candidates: Vec<(u32, StepAccesses)>,
    /// Decision `branch` was taken; the branch's step comes next.
    armed: bool,
    /// The current sleep set (from the branch's step on).
    set: Option<Vec<(u32, StepAccesses)>>,
    /// The sleep set at each later decision.
    log: BTreeMap<usize, Vec<(u32, StepAccesses)>>,
    /// An actor asleep had to run: everything from here is redundant.
    blocked: bool,
}

impl Sleep {
    fn asleep(&self, a: ActorId) -> bool {
        self.set
            .as_ref()
            .is_some_and(|s| s.iter().any(|(q, _)| *q as ActorId == a))
    }

    /// Decision `index` is being made: activate at the branch, log later.
    fn at_decision(&mut self, index: usize, value: bool) {
        if index == self.branch {
            if value {
                self.set = Some(std::mem::take(&mut self.candidates));
            } else {
                self.armed = true;
            }
        } else if let Some(set) = &self.set {
            self.log.insert(index, set.clone());
        }
    }

    fn observe(&mut self, actor: ActorId, access: Access) {
        if self.armed {
            self.armed = false;
            self.set = Some(std::mem::take(&mut self.candidates));
        }
        let Some(set) = self.set.as_mut() else { return };
        if set.iter().any(|(q, _)| *q as ActorId == actor) {
            self.blocked = true;
        }
        set.retain(|(_, step)| !step_conflicts(step, access.object, access.kind));
    }
}

impl Prefix {
    fn take(&mut self) -> Option<u32> {
        let c = self.choices.get(self.next).copied();
        self.next += 1;
        c
    }
}

impl Strategy for Prefix {
    fn choose_actor(&mut self, enabled: &[ActorId], last: Option<ActorId>, _: bool) -> ActorId {
        let index = self.next;
        if let Some(s) = self.sleep.as_mut() {
            s.at_decision(index, false);
        }
        let awake = |a: &ActorId| !self.sleep.as_ref().is_some_and(|s| s.asleep(*a));
        let default = last
            .filter(|l| enabled.contains(l) && awake(l))
            .or_else(|| enabled.iter().copied().find(awake));
        let pick = self
            .take()
            .map(|c| c as ActorId)
            .filter(|c| enabled.contains(c));
        match (pick, default) {
            (Some(c), _) => c,
            (None, Some(d)) => d,
            (None, None) => {
                // Every enabled actor sleeps.
                if let Some(s) = self.sleep.as_mut() {
                    s.blocked = true;
                }
                enabled[0]
            }
        }
    }

    fn choose_value(&mut self, n: u32) -> u32 {
        let index = self.next;
        if let Some(s) = self.sleep.as_mut() {
            s.at_decision(index, true);
        }
        self.take().filter(|&c| c < n).unwrap_or(0)
    }

    fn observe(&mut self, actor: ActorId, access: Access) {
        if let Some(s) = self.sleep.as_mut() {
            s.observe(actor, access);
        }
    }

    fn abandoned(&self) -> bool {
        self.sleep.as_ref().is_some_and(|s| s.blocked)
    }
}

/// The sleep state for the execution that takes the branch chosen at the
/// last decision of `path`.
fn sleep_for_branch(path: &[Node]) -> Option<Sleep> {
    let node = path.last()?;
    let mut candidates = node.sleep.clone();
    for b in node.done.iter().filter(|&&b| b != node.chosen) {
        if let Some(step) = node.steps_of.get(b) {
            candidates.push((*b, step.clone()));
        }
    }
    Some(Sleep {
        branch: path.len() - 1,
        candidates,
        armed: false,
        set: None,
        log: BTreeMap::new(),
        blocked: false,
    })
}

/// Work shared by the workers of one verification.
struct Shared<'h> {
    harness: &'h dyn Harness,
    config: VerifyConfig,
    state: Mutex<SharedState>,
    wake: Condvar,
}

#[derive(Default)]
struct SharedState {
    /// Subtrees waiting for a worker: a path whose last decision names the
    /// branch to explore.
    queue: VecDeque<Vec<Node>>,
    /// Every branch (choices up to and including its decision) some worker
    /// has taken, so that no branch is explored twice.
    claimed: BTreeSet<Vec<u32>>,
    /// Workers waiting for work.
    idle: usize,
    /// A worker stopped the search (finding, limit or error).
    stop: bool,
    /// The search ran out of branches.
    finished: bool,
    out: VerifyOutcome,
    error: Option<InternalError>,
}

/// Explores every interleaving with at most `config.preemptions`
/// preemptions (up to independent steps, with `Mode::Dpor`), on
/// `config.jobs` workers.
///
/// With one worker the search order, and so every count and the finding
/// reported, is deterministic. With more, subtrees are handed to idle
/// workers as they ask, so execution counts and which of several
/// findings is met first can vary between runs; the verdict cannot.
pub fn verify(
    harness: &dyn Harness,
    config: &VerifyConfig,
) -> Result<VerifyOutcome, InternalError> {
    let shared = Shared {
        harness,
        config: config.clone(),
        state: Mutex::new(SharedState {
            queue: VecDeque::from([Vec::new()]),
            ..SharedState::default()
        }),
        wake: Condvar::new(),
    };
    let jobs = config.jobs.max(1);
    if jobs == 1 {
        worker(&shared);
    } else {
        std::thread::scope(|s| {
            for _ in 0..jobs {
                s.spawn(|| worker(&shared));
            }
        });
    }
    let mut state = shared.state.into_inner().unwrap_or_else(|e| e.into_inner());
    if let Some(e) = state.error.take() {
        return Err(e);
    }
    let mut out = state.out;
    out.complete = !state.stop;
    Ok(out)
}

/// Takes subtrees from the queue until there are none and every worker is
/// idle, or the search stops.
fn worker(shared: &Shared<'_>) {
    let mut pool = Workspace::default();
    while let Some(mut path) = next_task(shared) {
        if let Err(e) = explore_subtree(shared, &mut path, &mut pool) {
            let mut st = lock(shared);
            st.error.get_or_insert(e);
            st.stop = true;
            shared.wake.notify_all();
        }
    }
}

fn lock<'a>(shared: &'a Shared<'_>) -> std::sync::MutexGuard<'a, SharedState> {
    shared.state.lock().unwrap_or_else(|e| e.into_inner())
}

fn next_task(shared: &Shared<'_>) -> Option<Vec<Node>> {
    let jobs = shared.config.jobs.max(1);
    let mut st = lock(shared);
    loop {
        if st.stop || st.finished {
            return None;
        }
        if let Some(path) = st.queue.pop_front() {
            return Some(path);
        }
        if st.idle + 1 == jobs {
            // Every other worker waits and nothing is queued: nothing more
            // can be found.
            st.finished = true;
            shared.wake.notify_all();
            return None;
        }
        st.idle += 1;
        st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
        st.idle -= 1;
    }
}

/// Depth-first search from `path` (empty, or a branch another worker
/// handed over). Backtrack points at any depth are taken, as long as no
/// other worker claimed the same branch first.
fn explore_subtree(
    shared: &Shared<'_>,
    path: &mut Vec<Node>,
    pool: &mut Workspace,
) -> Result<(), InternalError> {
    let config = &shared.config;
    let exec = ExecutionConfig {
        steps_max: config.steps_max,
        tracing: false,
        track_conflicts: true,
        racy: &[],
    };
    loop {
        let sleep_sets = config.sleep_sets && config.mode == Mode::Dpor;
        let mut strategy = Prefix {
            choices: path.iter().map(|n| n.chosen).collect(),
            next: 0,
            sleep: sleep_sets.then(|| sleep_for_branch(path)).flatten(),
        };
        let r = run_execution(shared.harness, &mut strategy, exec, pool)?;
        if record_execution(shared, &r) {
            return Ok(());
        }
        let log = strategy.sleep.map(|s| s.log).unwrap_or_default();
        extend_path(path, &r, log, config.max_failures);
        let mut pruned = 0;
        match config.mode {
            Mode::Dpor => add_race_backtracks(path, &r.events, config.preemptions, &mut pruned),
            Mode::Exhaustive => {
                add_all_backtracks(path, config.preemptions, config.max_failures, &mut pruned)
            }
        }
        let branch = {
            let mut st = lock(shared);
            st.out.pruned += pruned;
            let hungry = st.idle > 0;
            let claims = (config.jobs > 1).then_some(&mut st.claimed);
            let branch = next_branch(path, claims, hungry);
            if let Some(task) = branch.donated {
                st.queue.push_back(task);
                shared.wake.notify_one();
            }
            branch.go_on
        };
        if !branch {
            return Ok(());
        }
    }
}

/// Counts one execution; returns whether the search must stop.
fn record_execution(shared: &Shared<'_>, r: &ExecutionResult) -> bool {
    let config = &shared.config;
    let mut st = lock(shared);
    if st.stop {
        return true;
    }
    let out = &mut st.out;
    out.executions += 1;
    out.steps += r.steps;
    out.sleep_blocked += u64::from(r.abandoned);
    if let Some(p) = &config.progress {
        p.store(out.executions, Ordering::Relaxed);
    }
    if let (Some(p), Some(_)) = (&config.progress_findings, &r.finding) {
        p.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(s) = r.final_state.as_ref().filter(|_| !r.abandoned) {
        out.final_states.insert(s.clone());
    }
    if let Some(f) = &r.finding {
        out.findings.insert(f.title.clone());
    }
    let accepted = r
        .finding
        .as_ref()
        .filter(|f| config.wanted.as_ref().is_none_or(|w| (w.0)(f)));
    if let Some(f) = accepted {
        let earlier = out.found.as_ref().is_some_and(|g| g.choices <= r.choices);
        if !earlier {
            out.found = Some(Found {
                index: out.executions - 1,
                finding: f.clone(),
                choices: r.choices.clone(),
                steps: r.steps,
                preemptions: r.preemptions,
            });
        }
    }
    let stop =
        (accepted.is_some() && config.stop_at_finding) || out.executions >= config.max_executions;
    if stop {
        st.stop = true;
        shared.wake.notify_all();
    }
    stop
}

/// Appends the decisions this execution made beyond the current path
/// (with their sleep sets from `sleep_log`), and notes the step each
/// decision's chosen actor ran. A data choice branches to its other values
/// while fewer than `max_failures` earlier ones took another value.
fn extend_path(
    path: &mut Vec<Node>,
    r: &ExecutionResult,
    mut sleep_log: BTreeMap<usize, Vec<(u32, StepAccesses)>>,
    max_failures: u32,
) {
    let mut kinds: BTreeMap<usize, (Kind, u32)> = BTreeMap::new();
    let mut steps: BTreeMap<usize, StepAccesses> = BTreeMap::new();
    for e in &r.events {
        if let Some(d) = e.decision {
            let kind = Kind::Actor {
                enabled: e.enabled.clone(),
                last: e.last,
            };
            kinds.insert(d, (kind, e.actor as u32));
            steps.insert(d, accesses(e).collect());
        }
    }
    for &(d, n) in &r.values {
        kinds.insert(d, (Kind::Value { n }, r.choices[d]));
    }
    for (d, node) in path.iter_mut().enumerate() {
        if let Some(step) = steps.get(&d) {
            node.steps_of
                .entry(node.chosen)
                .or_insert_with(|| step.clone());
        }
    }
    for d in path.len().. {
        let Some((kind, chosen)) = kinds.remove(&d) else {
            break;
        };
        let mut node = Node {
            kind,
            chosen,
            backtrack: BTreeSet::from([chosen]),
            done: BTreeSet::from([chosen]),
            sleep: sleep_log.remove(&d).unwrap_or_default(),
            steps_of: BTreeMap::new(),
        };
        if let Some(step) = steps.remove(&d) {
            node.steps_of.insert(chosen, step);
        }
        if matches!(node.kind, Kind::Value { .. })
            && failures_before(path, path.len()) < max_failures
        {
            // Data choices do not commute: every value is a branch, as
            // long as the failure bound allows one more.
            node.backtrack.extend(node.enabled());
        }
        path.push(node);
    }
}

/// Data choices before decision `d` that took another value than the
/// first (injected failures).
fn failures_before(path: &[Node], d: usize) -> u32 {
    path[..d]
        .iter()
        .filter(|n| matches!(n.kind, Kind::Value { .. }) && n.chosen != 0)
        .count() as u32
}

/// The preemption bound, with the preemptions the current path has made
/// before each of its decisions (computed once per analysis: the analysis
/// adds backtrack points but changes no choice).
struct Bound {
    limit: u32,
    before: Vec<u32>,
}

impl Bound {
    fn of(path: &[Node], limit: u32) -> Bound {
        let mut before = Vec::with_capacity(path.len());
        let mut used = 0;
        for n in path {
            before.push(used);
            used += u32::from(n.is_preemption(n.chosen));
        }
        Bound { limit, before }
    }

    /// Choosing `a` at decision `d` stays within the bound.
    fn allows(&self, path: &[Node], d: usize, a: u32) -> bool {
        self.limit == UNBOUNDED
            || self.before[d] + u32::from(path[d].is_preemption(a)) <= self.limit
    }
}

/// Makes `a` a backtrack point at decision `d` if choosing it there stays
/// within the preemption bound.
fn add_backtrack(path: &mut [Node], d: usize, a: u32, bound: &Bound, pruned: &mut u64) {
    if path[d].is_asleep(a) {
        // Covered: its branch only leads where an explored one did.
        return;
    }
    if path[d].can_choose(a) && bound.allows(path, d, a) {
        path[d].backtrack.insert(a);
    } else {
        *pruned += 1;
    }
}

/// Makes `a` a backtrack point at decision `d`, or every enabled actor if
/// `a` cannot run there.
fn add_backtrack_or_all(path: &mut [Node], d: usize, a: u32, bound: &Bound, pruned: &mut u64) {
    if path[d].can_choose(a) {
        add_backtrack(path, d, a, bound, pruned);
    } else {
        for b in path[d].enabled() {
            add_backtrack(path, d, b, bound, pruned);
        }
    }
}

fn add_all_backtracks(path: &mut [Node], limit: u32, max_failures: u32, pruned: &mut u64) {
    let bound = &Bound::of(path, limit);
    for d in 0..path.len() {
        let value = matches!(path[d].kind, Kind::Value { .. });
        if value && failures_before(path, d) >= max_failures {
            continue;
        }
        for a in path[d].enabled() {
            if path[d].done.contains(&a) {
                continue;
            }
            if bound.allows(path, d, a) {
                path[d].backtrack.insert(a);
            } else {
                *pruned += 1;
            }
        }
    }
}

/// Whether two accesses to the same object do not commute.
///
/// Locks follow Flanagan and Godefroid: acquisitions of one lock are
/// dependent on each other, a release on nothing but a trylock (whose
/// outcome it decides). A blocked acquisition is not enabled, so ordering
/// it against the release is the same as ordering the two acquisitions,
/// which is where the race is found.
fn conflicting(a: AccessKind, b: AccessKind) -> bool {
    use AccessKind::{Read, Release, TryAcquire};
    match (a, b) {
        // A release matters to a trylock and to a lockless test of the
        // lock word (`PageLocked()`); a blocking acquisition or wait is
        // ordered by enabledness instead.
        (Release, other) | (other, Release) => matches!(other, TryAcquire | Read),
        _ => !(a.is_read_like() && b.is_read_like()),
    }
}

/// Every shared access of a step: the announced one, the block of objects
/// it covers, and the releases that followed it.
fn accesses(e: &StepEvent) -> impl Iterator<Item = (ObjectId, AccessKind)> + '_ {
    let (first, n) = e.block.unwrap_or((e.access.object, 0));
    let block = (first.0..first.0 + n).map(move |o| (ObjectId(o), e.access.kind));
    std::iter::once((e.access.object, e.access.kind))
        .chain(block)
        .chain(e.released.iter().map(|&o| (o, AccessKind::Release)))
        .filter(|(o, _)| *o != ObjectId(u32::MAX))
}

/// Vector clocks of one execution: `event[i]` is what event `i` has seen
/// of each actor (program order and earlier dependent events).
struct Clocks {
    event: Vec<Vec<u32>>,
}

impl Clocks {
    /// Event `i` happens before event `k`.
    fn before(&self, events: &[StepEvent], i: usize, k: usize) -> bool {
        let a = events[i].actor;
        self.event[i][a] <= self.event[k][a]
    }
}

/// Race detection over one execution, adding backtrack points that
/// reverse each race. For a race between event `i` and a later event `j`
/// of another actor, the branch to add at the decision before `i` is an
/// initial of `v`: the events after `i` that do not happen after it,
/// then `j` (source sets, Abdulla et al., POPL 2014). Nothing is added if
/// the decision already has one of them.
fn add_race_backtracks(path: &mut [Node], events: &[StepEvent], limit: u32, pruned: &mut u64) {
    let bound = &Bound::of(path, limit);
    let actors = events.iter().map(|e| e.actor).max().unwrap_or(0) + 1;
    let mut actor_clock: Vec<Vec<u32>> = vec![vec![0; actors]; actors];
    let mut clocks = Clocks {
        event: Vec::with_capacity(events.len()),
    };
    // Per object, the last event of each (actor, kind): earlier ones of
    // the same actor and kind happen before it, so they add nothing.
    let mut by_object: BTreeMap<ObjectId, Vec<(ActorId, AccessKind, usize)>> = BTreeMap::new();
    let mut races: Vec<(usize, usize)> = Vec::new();
    for (j, e) in events.iter().enumerate() {
        let a = e.actor;
        let mut clock = actor_clock[a].clone();
        // The last conflicting event of each other actor: the one whose
        // race with `e` matters, unless it happens before `e` anyway.
        let mut last_of: BTreeMap<ActorId, usize> = BTreeMap::new();
        for (object, kind) in accesses(e) {
            let Some(earlier) = by_object.get(&object) else {
                continue;
            };
            for &(p, earlier_kind, i) in earlier {
                if p == a || !conflicting(earlier_kind, kind) {
                    continue;
                }
                let last = last_of.entry(p).or_insert(i);
                *last = (*last).max(i);
                for (c, v) in clock.iter_mut().zip(&clocks.event[i]) {
                    *c = (*c).max(*v);
                }
            }
        }
        for (&p, &i) in &last_of {
            if clocks.event[i][p] > actor_clock[a][p] {
                races.push((i, j));
            }
        }
        clock[a] += 1;
        actor_clock[a] = clock.clone();
        clocks.event.push(clock);
        for (object, kind) in accesses(e) {
            let entries = by_object.entry(object).or_default();
            match entries.iter_mut().find(|(p, k, _)| *p == a && *k == kind) {
                Some(entry) => entry.2 = j,
                None => entries.push((a, kind, j)),
            }
        }
    }
    let bounded = (bound.limit != UNBOUNDED).then(|| BoundedPoints::of(events));
    for (i, j) in races {
        let q = events[j].actor;
        if let Some(d) = events[i].decision.filter(|&d| d < path.len()) {
            add_reversal(path, events, &clocks, (i, j, d), bound, pruned);
        }
        if let Some(points) = &bounded {
            points.add(path, events, (i, q), bound, pruned);
        }
    }
}

/// Under a preemption bound, reversing a race right before its earlier
/// step `i` may cost a preemption the bound does not allow, or need more
/// later. So, as in bounded partial-order reduction (Coons, Musuvathi and
/// McKinley, OOPSLA 2013), the later actor `q` is also tried where the run
/// of steps containing `i` began (switching there costs no more than the
/// switch the execution made); and before each later step of that run `q`
/// conflicts with somewhere in the execution (steps it does not conflict
/// with commute with it); and every actor waiting for a lock the run's
/// actor holds is tried where it holds it (it may block and hand the CPU
/// on without a preemption). The last two were added for programs the
/// generated-program tests found.
struct BoundedPoints {
    /// What each actor accesses over the execution.
    touched: Vec<Touched>,
    /// Every access that waits while a lock is held: (actor, lock, kind).
    waits: Vec<(ActorId, ObjectId, AccessKind)>,
    /// The locks each step's actor held right before it.
    held_before: Vec<Vec<(ObjectId, AccessKind)>>,
}

impl BoundedPoints {
    fn of(events: &[StepEvent]) -> BoundedPoints {
        let waits = events
            .iter()
            .filter(|e| may_block(e.access.kind))
            .map(|e| (e.actor, e.access.object, e.access.kind))
            .collect();
        let actors = events.iter().map(|e| e.actor).max().unwrap_or(0) + 1;
        let mut held: Vec<Vec<(ObjectId, AccessKind)>> = vec![Vec::new(); actors];
        let mut held_before = Vec::with_capacity(events.len());
        for e in events {
            let mine = &mut held[e.actor];
            held_before.push(mine.clone());
            if matches!(
                e.access.kind,
                AccessKind::Acquire | AccessKind::AcquireShared | AccessKind::TryAcquire
            ) {
                mine.push((e.access.object, e.access.kind));
            }
            for r in &e.released {
                if let Some(p) = mine.iter().rposition(|h| h.0 == *r) {
                    mine.remove(p);
                }
            }
        }
        BoundedPoints {
            touched: Touched::of(events),
            waits,
            held_before,
        }
    }

    fn add(
        &self,
        path: &mut [Node],
        events: &[StepEvent],
        (i, q): (usize, ActorId),
        bound: &Bound,
        pruned: &mut u64,
    ) {
        let start = block_start(events, i);
        if let Some(d) = events[start]
            .decision
            .filter(|&d| d < path.len() && start < i)
        {
            add_backtrack_or_all(path, d, q as u32, bound, pruned);
        }
        for k in start + 1..i {
            let Some(d) = events[k].decision.filter(|&d| d < path.len()) else {
                continue;
            };
            if self.touched[q].conflicts_with(&events[k]) {
                add_backtrack(path, d, q as u32, bound, pruned);
            }
            for w in self.waiters_at(events, k) {
                add_backtrack(path, d, w as u32, bound, pruned);
            }
        }
    }

    /// The other actors that wait, somewhere in the execution, for a lock
    /// the actor of step `k` held right before it.
    fn waiters_at(&self, events: &[StepEvent], k: usize) -> BTreeSet<ActorId> {
        let held = &self.held_before[k];
        if held.is_empty() {
            return BTreeSet::new();
        }
        self.waits
            .iter()
            .filter(|&&(w, lock, wait)| {
                w != events[k].actor
                    && held
                        .iter()
                        .any(|&(h, kind)| h == lock && conflicting(kind, wait))
            })
            .map(|&(w, _, _)| w)
            .collect()
    }
}

/// What one actor accesses over an execution, by object.
#[derive(Default)]
struct Touched(BTreeMap<ObjectId, Vec<AccessKind>>);

impl Touched {
    /// Every actor's accesses, indexed by actor.
    fn of(events: &[StepEvent]) -> Vec<Touched> {
        let actors = events.iter().map(|e| e.actor).max().unwrap_or(0) + 1;
        let mut touched: Vec<Touched> = (0..actors).map(|_| Touched::default()).collect();
        for e in events {
            for (object, kind) in accesses(e) {
                let kinds = touched[e.actor].0.entry(object).or_default();
                if !kinds.contains(&kind) {
                    kinds.push(kind);
                }
            }
        }
        touched
    }

    fn conflicts_with(&self, e: &StepEvent) -> bool {
        accesses(e).any(|(object, kind)| {
            self.0
                .get(&object)
                .is_some_and(|kinds| kinds.iter().any(|&k| conflicting(k, kind)))
        })
    }
}

/// Accesses that wait while a lock is held.
fn may_block(kind: AccessKind) -> bool {
    matches!(
        kind,
        AccessKind::Acquire | AccessKind::AcquireShared | AccessKind::WaitUnlocked
    )
}

/// The first step of the run of consecutive steps by the actor of `i`.
fn block_start(events: &[StepEvent], i: usize) -> usize {
    let actor = events[i].actor;
    let mut start = i;
    while start > 0 && events[start - 1].actor == actor {
        start -= 1;
    }
    start
}

/// Adds a backtrack point at decision `d` (the one before event `i`) that
/// reverses the race between `i` and `j`, unless one is there already.
fn add_reversal(
    path: &mut [Node],
    events: &[StepEvent],
    clocks: &Clocks,
    (i, j, d): (usize, usize, usize),
    bound: &Bound,
    pruned: &mut u64,
) {
    let q = events[j].actor as u32;
    if path[d].backtrack.contains(&q) {
        return;
    }
    let candidates: Vec<u32> = initials_of_reversal(events, clocks, i, j)
        .into_iter()
        .map(|a| a as u32)
        .filter(|&a| path[d].can_choose(a))
        .collect();
    if candidates.iter().any(|&c| path[d].is_asleep(c)) {
        // An initial sleeps here: the reversal was explored already.
        return;
    }
    if candidates.contains(&q) {
        add_backtrack(path, d, q, bound, pruned);
    } else if candidates.is_empty() {
        add_backtrack_or_all(path, d, q, bound, pruned);
    } else if !candidates.iter().any(|c| path[d].backtrack.contains(c)) {
        add_backtrack(path, d, candidates[0], bound, pruned);
    }
}

/// The actors that can start `v` = (events after `i` not after it) . `j`:
/// those whose first event in `v` has no other event of `v` before it.
fn initials_of_reversal(events: &[StepEvent], clocks: &Clocks, i: usize, j: usize) -> Vec<ActorId> {
    let v: Vec<usize> = (i + 1..j)
        .filter(|&k| !clocks.before(events, i, k))
        .chain(std::iter::once(j))
        .collect();
    let mut seen: BTreeSet<ActorId> = BTreeSet::new();
    let mut initials = Vec::new();
    for (n, &k) in v.iter().enumerate() {
        let a = events[k].actor;
        if !seen.insert(a) {
            continue;
        }
        if !v[..n].iter().any(|&g| clocks.before(events, g, k)) {
            initials.push(a);
        }
    }
    initials
}

/// Where the search goes next.
struct Branch {
    /// A branch of this worker's path to explore now.
    go_on: bool,
    /// A branch handed to an idle worker.
    donated: Option<Vec<Node>>,
}

/// Moves to the deepest decision with an unexplored backtrack point.
/// With `hungry`, first hands the shallowest such branch to the queue for
/// an idle worker. With several workers (`claims`), a branch another
/// worker already claimed is skipped.
fn next_branch(
    path: &mut Vec<Node>,
    mut claims: Option<&mut BTreeSet<Vec<u32>>>,
    hungry: bool,
) -> Branch {
    let donated = match claims.as_deref_mut() {
        Some(claimed) if hungry => donate_shallowest(path, claimed),
        _ => None,
    };
    while let Some(d) = path.len().checked_sub(1) {
        if let Some(a) = take_branch(path, d, claims.as_deref_mut()) {
            path[d].chosen = a;
            return Branch {
                go_on: true,
                donated,
            };
        }
        path.pop();
    }
    Branch {
        go_on: false,
        donated,
    }
}

/// Marks the next unexplored backtrack point of decision `d` done and
/// returns it, skipping (with `claims`) those another worker claimed.
fn take_branch(
    path: &mut [Node],
    d: usize,
    mut claims: Option<&mut BTreeSet<Vec<u32>>>,
) -> Option<u32> {
    let todo: Vec<u32> = path[d]
        .backtrack
        .difference(&path[d].done)
        .copied()
        .collect();
    for a in todo {
        path[d].done.insert(a);
        if claims.as_deref_mut().is_none_or(|c| claim(path, d, a, c)) {
            return Some(a);
        }
    }
    None
}

/// Claims branch `a` at decision `d`; false if another worker has it.
fn claim(path: &[Node], d: usize, a: u32, claimed: &mut BTreeSet<Vec<u32>>) -> bool {
    let mut key: Vec<u32> = path[..d].iter().map(|n| n.chosen).collect();
    key.push(a);
    claimed.insert(key)
}

/// Hands the shallowest unexplored branch to another worker.
fn donate_shallowest(path: &mut [Node], claimed: &mut BTreeSet<Vec<u32>>) -> Option<Vec<Node>> {
    for d in 0..path.len() {
        if let Some(a) = take_branch(path, d, Some(&mut *claimed)) {
            let mut task: Vec<Node> = path[..=d].to_vec();
            task[d].chosen = a;
            return Some(task);
        }
    }
    None
}
