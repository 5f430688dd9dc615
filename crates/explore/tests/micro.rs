//! The explorer on small concurrent programs with known answers.

use std::rc::Rc;

use explore::rt::{ActorSpec, Harness, Instance};
use explore::sync::{AtomicSlot, Lock};
use explore::{explore, replay, Finding, FindingKind, LockClass, RunConfig, StrategyKind};

static SPIN: LockClass = LockClass {
    name: "test_spinlock",
    rank: 1,
    nests: false,
    spin: true,
};
static OUTER: LockClass = LockClass {
    name: "outer_mutex",
    rank: 0,
    nests: false,
    spin: false,
};

/// Two threads increment a counter with a racy load/store (lost update), or
/// under a lock when `locked`.
struct LostUpdate {
    locked: bool,
}

struct LostUpdateRun {
    counter: Rc<AtomicSlot>,
    lock: Rc<Lock<()>>,
    locked: bool,
}

impl Harness for LostUpdate {
    fn start(&self) -> Box<dyn Instance> {
        Box::new(LostUpdateRun {
            counter: Rc::new(AtomicSlot::new("counter", 0, 0)),
            lock: Rc::new(Lock::new(&SPIN, 0, ())),
            locked: self.locked,
        })
    }
}

impl Instance for LostUpdateRun {
    fn actors(&mut self) -> Vec<ActorSpec> {
        (0..2)
            .map(|i| {
                let (c, l, locked) = (self.counter.clone(), self.lock.clone(), self.locked);
                ActorSpec {
                    name: format!("inc{i}"),
                    body: Box::new(move || {
                        let g = locked.then(|| l.lock("spin_lock"));
                        let v = c.read("load counter");
                        c.write("store counter", v + 1);
                        drop(g);
                    }),
                }
            })
            .collect()
    }

    fn teardown(&mut self) {
        let v = self.counter.peek();
        if v != 2 {
            explore::raise(Finding::new(
                FindingKind::Invariant,
                "INV-COUNTER",
                format!("lost update: counter = {v}"),
            ));
        }
    }
}

fn config(strategy: StrategyKind, jobs: usize) -> RunConfig {
    RunConfig {
        shard: explore::Shard::WHOLE,
        progress: None,
        strategy,
        seed: 7,
        budget: 1000,
        jobs,
        steps_max: 1000,
        wanted: None,
    }
}

#[test]
fn finds_lost_update_with_every_strategy() {
    for s in [
        StrategyKind::Random,
        StrategyKind::Pct { depth: 2 },
        StrategyKind::Portfolio,
    ] {
        let out = explore(&LostUpdate { locked: false }, &config(s, 1)).unwrap();
        let found = out.found.expect("lost update must be found");
        assert_eq!(found.finding.title, "lost update: counter = 1");
        assert!(
            out.executions < 100,
            "{s:?} took {} executions",
            out.executions
        );
    }
}

#[test]
fn lock_removes_the_race() {
    let out = explore(
        &LostUpdate { locked: true },
        &config(StrategyKind::Portfolio, 1),
    )
    .unwrap();
    assert!(out.found.is_none());
    assert_eq!(out.executions, 1000);
}

#[test]
fn replay_reproduces_the_finding_and_trace() {
    let h = LostUpdate { locked: false };
    let found = explore(&h, &config(StrategyKind::Random, 1))
        .unwrap()
        .found
        .unwrap();
    let a = replay(&h, found.choices.clone(), 1000).unwrap();
    let b = replay(&h, found.choices.clone(), 1000).unwrap();
    assert_eq!(a.finding.as_ref().unwrap().title, found.finding.title);
    assert_eq!(a.trace, b.trace);
    assert!(!a.trace.is_empty());
}

#[test]
fn finding_does_not_depend_on_jobs() {
    let h = LostUpdate { locked: false };
    let one = explore(&h, &config(StrategyKind::Random, 1))
        .unwrap()
        .found
        .unwrap();
    for jobs in [2, 3] {
        let many = explore(&h, &config(StrategyKind::Random, jobs))
            .unwrap()
            .found
            .unwrap();
        assert_eq!(
            (many.index, &many.choices),
            (one.index, &one.choices),
            "jobs={jobs}"
        );
    }
}

/// Two actors take two locks in opposite order: a deadlock finding.
struct AbBa;
struct AbBaRun {
    a: Rc<Lock<()>>,
    b: Rc<Lock<()>>,
}

static A: LockClass = LockClass {
    name: "a_mutex",
    rank: 5,
    nests: true,
    spin: false,
};

impl Harness for AbBa {
    fn start(&self) -> Box<dyn Instance> {
        Box::new(AbBaRun {
            a: Rc::new(Lock::new(&A, 0, ())),
            b: Rc::new(Lock::new(&A, 1, ())),
        })
    }
}

impl Instance for AbBaRun {
    fn actors(&mut self) -> Vec<ActorSpec> {
        let mk = |x: Rc<Lock<()>>, y: Rc<Lock<()>>| ActorSpec {
            name: "t".into(),
            body: Box::new(move || {
                let _gx = x.lock("lock x");
                let _gy = y.lock("lock y");
            }),
        };
        vec![
            mk(self.a.clone(), self.b.clone()),
            mk(self.b.clone(), self.a.clone()),
        ]
    }
}

#[test]
fn detects_deadlock() {
    let out = explore(&AbBa, &config(StrategyKind::Random, 1)).unwrap();
    let f = out.found.expect("ABBA deadlock").finding;
    assert_eq!(f.kind, FindingKind::Deadlock);
    assert_eq!(f.details.len(), 2);
}

/// Acquiring a lower-ranked lock while holding a higher one is a lockdep
/// finding even when the schedule does not deadlock.
struct Inversion;
struct InversionRun {
    outer: Rc<Lock<()>>,
    inner: Rc<Lock<()>>,
}

impl Harness for Inversion {
    fn start(&self) -> Box<dyn Instance> {
        Box::new(InversionRun {
            outer: Rc::new(Lock::new(&OUTER, 0, ())),
            inner: Rc::new(Lock::new(&SPIN, 0, ())),
        })
    }
}

impl Instance for InversionRun {
    fn actors(&mut self) -> Vec<ActorSpec> {
        let (o, i) = (self.outer.clone(), self.inner.clone());
        vec![ActorSpec {
            name: "t".into(),
            body: Box::new(move || {
                let _gi = i.lock("spin_lock");
                let _go = o.lock("mutex_lock");
            }),
        }]
    }
}

#[test]
fn detects_lock_order_inversion() {
    let out = explore(&Inversion, &config(StrategyKind::Random, 1)).unwrap();
    let f = out.found.expect("inversion").finding;
    assert!(f.title.contains("circular locking"), "{}", f.title);
}

/// A panic in model code is an internal error, not a finding.
struct Panics;
struct PanicsRun;
impl Harness for Panics {
    fn start(&self) -> Box<dyn Instance> {
        Box::new(PanicsRun)
    }
}
impl Instance for PanicsRun {
    fn actors(&mut self) -> Vec<ActorSpec> {
        vec![ActorSpec {
            name: "t".into(),
            body: Box::new(|| panic!("model bug")),
        }]
    }
}

#[test]
fn panic_is_internal_error() {
    let err = explore(&Panics, &config(StrategyKind::Random, 1)).unwrap_err();
    assert!(err.message.contains("model bug"));
}

/// One actor: a checker-visible corruption (step 1), a kernel message
/// (step 2), then an oops (step 3, only when `oops_late`), then a message
/// the oops prevents; teardown prints one more kernel line.
struct Later {
    oops_late: bool,
}

struct LaterRun {
    word: Rc<AtomicSlot>,
    oops_late: bool,
}

impl Harness for Later {
    fn start(&self) -> Box<dyn Instance> {
        Box::new(LaterRun {
            word: Rc::new(AtomicSlot::new("word", 0, 0)),
            oops_late: self.oops_late,
        })
    }
}

fn kernel(title: &str) -> Finding {
    Finding::new(FindingKind::Kernel, "kernel", title)
}

impl Instance for LaterRun {
    fn actors(&mut self) -> Vec<ActorSpec> {
        let (w, oops_late) = (self.word.clone(), self.oops_late);
        vec![ActorSpec {
            name: "t".into(),
            body: Box::new(move || {
                w.write("corrupt", 1);
                w.write("notice", 2);
                explore::raise(kernel("BUG: noticed late").detail("continuation line"));
                w.write("go on", 3);
                if oops_late {
                    explore::oops(kernel("BUG: unable to handle page fault"));
                }
                explore::raise(kernel("never after an oops"));
            }),
        }]
    }

    fn teardown(&mut self) {
        explore::raise(kernel("BUG: Bad rss-counter state"));
    }

    fn check(&self) -> Option<Finding> {
        (self.word.peek() != 0)
            .then(|| Finding::new(FindingKind::Invariant, "INV-WORD", "INV-WORD: word is set"))
    }
}

#[test]
fn aftermath_collects_later_kernel_messages() {
    let h = Later { oops_late: false };
    let found = explore(&h, &config(StrategyKind::Random, 1))
        .unwrap()
        .found
        .unwrap();
    let f = &found.finding;
    assert_eq!(f.title, "INV-WORD: word is set");
    assert_eq!(
        f.aftermath,
        [
            "BUG: noticed late",
            "continuation line",
            "never after an oops",
            "BUG: Bad rss-counter state"
        ]
    );
    // The aftermath is not part of the token: replay gives the same report,
    // and the step count ends at the finding.
    let r = replay(&h, found.choices.clone(), 1000).unwrap();
    assert_eq!(r.finding.as_ref().unwrap(), f);
    assert_eq!(r.steps, 2, "start point and the corrupting store");
}

/// One actor corrupts the checked word inside a spinlock section and the
/// kernel notices before the lock is dropped: the checkers may not look
/// at the finding, so the invariant is reported once the lock is released.
struct Hidden;

struct HiddenRun {
    word: Rc<AtomicSlot>,
    lock: Rc<Lock<()>>,
}

impl Harness for Hidden {
    fn start(&self) -> Box<dyn Instance> {
        Box::new(HiddenRun {
            word: Rc::new(AtomicSlot::new("word", 0, 0)),
            lock: Rc::new(Lock::new(&SPIN, 0, ())),
        })
    }
}

impl Instance for HiddenRun {
    fn actors(&mut self) -> Vec<ActorSpec> {
        let (w, l) = (self.word.clone(), self.lock.clone());
        vec![ActorSpec {
            name: "t".into(),
            body: Box::new(move || {
                l.lock_raw("spin_lock");
                w.write("corrupt", 1);
                explore::raise(kernel("BUG: noticed under the lock"));
                w.write("go on", 2);
                l.unlock_raw("spin_unlock");
            }),
        }]
    }

    fn check(&self) -> Option<Finding> {
        (self.word.peek() != 0)
            .then(|| Finding::new(FindingKind::Invariant, "INV-WORD", "INV-WORD: word is set"))
    }
}

#[test]
fn invariants_hidden_by_a_lock_at_the_finding_are_checked_once_it_is_released() {
    let found = explore(&Hidden, &config(StrategyKind::Random, 1))
        .unwrap()
        .found
        .unwrap();
    let f = &found.finding;
    assert_eq!(f.title, "BUG: noticed under the lock");
    assert_eq!(
        f.also,
        ["INV-WORD: word is set (checked at the next state where no actor held a spinlock)"]
    );
    let r = replay(&Hidden, found.choices.clone(), 1000).unwrap();
    assert_eq!(r.finding.as_ref().unwrap(), f);
}

#[test]
fn aftermath_ends_at_an_oops() {
    let h = Later { oops_late: true };
    let found = explore(&h, &config(StrategyKind::Random, 1))
        .unwrap()
        .found
        .unwrap();
    assert_eq!(
        found.finding.aftermath,
        [
            "BUG: noticed late",
            "continuation line",
            "BUG: unable to handle page fault"
        ]
    );
}

#[test]
fn minimize_keeps_the_finding_with_fewer_preemptions() {
    let h = LostUpdate { locked: false };
    for seed in 0..20 {
        let mut c = config(StrategyKind::Random, 1);
        c.seed = seed;
        let found = explore(&h, &c).unwrap().found.unwrap();
        let small = explore::minimize(&h, &found, 1000, 500).unwrap();
        assert_eq!(small.finding.title, found.finding.title);
        assert!(small.preemptions <= found.preemptions);
        // A lost update needs one preemption: between a load and its store.
        assert_eq!(small.preemptions, 1, "seed {seed}");
        // The shrunk schedule is an ordinary token: replay reproduces it.
        let again = replay(&h, small.choices.clone(), 1000).unwrap();
        assert_eq!(
            again.finding.map(|f| f.title),
            Some(found.finding.title.clone())
        );
        assert_eq!(again.preemptions, small.preemptions);
    }
}

/// Two actors, each in its own syscall and a shared helper, increment a
/// counter; the one that comes second reports its call chain.
struct Chains;
struct ChainsRun {
    counter: Rc<AtomicSlot>,
}

impl Harness for Chains {
    fn start(&self) -> Box<dyn Instance> {
        assert!(explore::call_chain().is_empty());
        let _f = explore::enter("setup_fn");
        assert_eq!(explore::call_chain(), ["setup_fn"]);
        Box::new(ChainsRun {
            counter: Rc::new(AtomicSlot::new("counter", 0, 0)),
        })
    }
}

impl Instance for ChainsRun {
    fn actors(&mut self) -> Vec<ActorSpec> {
        ["sys_a", "sys_b"]
            .into_iter()
            .map(|syscall| {
                let c = self.counter.clone();
                ActorSpec {
                    name: syscall.into(),
                    body: Box::new(move || {
                        // The setup's frame is not part of an actor's chain.
                        assert!(explore::call_chain().is_empty());
                        let _s = explore::enter(syscall);
                        let v = {
                            let _h = explore::enter("helper");
                            // A scheduling point inside both frames: the
                            // other actor may run and enter its own.
                            let v = c.read("load counter");
                            c.write("store counter", v + 1);
                            v
                        };
                        assert_eq!(explore::call_chain(), [syscall]);
                        if v == 1 {
                            let _r = explore::enter("report");
                            let mut f =
                                Finding::new(FindingKind::Invariant, "INV-SECOND", "second");
                            f.details = explore::call_chain()
                                .iter()
                                .map(|s| s.to_string())
                                .collect();
                            explore::raise(f);
                        }
                    }),
                }
            })
            .collect()
    }
}

#[test]
fn call_chains_are_per_actor_and_the_same_traced_or_not() {
    let found = explore(&Chains, &config(StrategyKind::Random, 1))
        .unwrap()
        .found
        .expect("one actor comes second");
    let second = found.finding.details.clone();
    assert_eq!(second[0], "report");
    assert!(second[1] == "sys_a" || second[1] == "sys_b", "{second:?}");
    assert_eq!(second.len(), 2, "{second:?}");
    // The replay, which traces, names the same chain, and its trace
    // records the frames at the depths the chains imply.
    let r = replay(&Chains, found.choices.clone(), 1000).unwrap();
    assert_eq!(r.finding.unwrap().details, second);
    let enters: Vec<(usize, &str, u16)> = r
        .trace
        .iter()
        .filter_map(|e| match e.what {
            explore::trace::What::Enter(name) => Some((e.actor, name, e.depth)),
            _ => None,
        })
        .collect();
    assert!(enters.contains(&(0, "setup_fn", 0)), "{enters:?}");
    for actor in [1, 2] {
        assert!(enters
            .iter()
            .any(|&(a, n, d)| a == actor && n.starts_with("sys_") && d == 0));
        assert!(enters.contains(&(actor, "helper", 1)), "{enters:?}");
    }
}
