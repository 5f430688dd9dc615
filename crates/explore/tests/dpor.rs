//! Soundness of partial-order reduction: on small concurrent programs,
//! DPOR reaches the same final states and findings as the exhaustive
//! bounded search, in no more executions. Each test prints both counts.

use std::cell::Cell;
use std::rc::Rc;

use explore::rt::{ActorSpec, Harness, Instance};
use explore::sync::{AtomicCounter, AtomicSlot, BitLock, Lifetime, Lock, SlotArray};
use explore::verify::UNBOUNDED;
use explore::{verify, Finding, FindingKind, LockClass, Mode, VerifyConfig, VerifyOutcome};

static SPIN: LockClass = LockClass {
    name: "test_spinlock",
    rank: 1,
    nests: true,
    spin: true,
};

fn run(h: &dyn Harness, mode: Mode, preemptions: u32, jobs: usize) -> VerifyOutcome {
    let config = VerifyConfig {
        mode,
        stop_at_finding: false,
        ..VerifyConfig::new(preemptions, 10_000, 1_000_000, jobs)
    };
    let out = verify(h, &config).expect("no internal error");
    assert!(out.complete, "{mode:?} did not complete");
    out
}

/// Runs both searches at several bounds and compares what they reach.
/// Returns (DPOR, exhaustive) executions at the largest bound.
fn same_as_exhaustive(name: &str, h: &dyn Harness) -> (u64, u64) {
    let mut counts = (0, 0);
    for k in [0, 1, 2, 3] {
        let dpor = run(h, Mode::Dpor, k, 1);
        let full = run(h, Mode::Exhaustive, k, 1);
        println!(
            "{name}, {k} preemptions: DPOR {} executions ({} steps), exhaustive {} executions ({} steps)",
            dpor.executions, dpor.steps, full.executions, full.steps
        );
        assert_eq!(
            dpor.final_states, full.final_states,
            "{name} K={k}: final states"
        );
        assert_eq!(dpor.findings, full.findings, "{name} K={k}: findings");
        assert!(dpor.executions <= full.executions, "{name} K={k}");
        let two = run(h, Mode::Dpor, k, 2);
        assert_eq!(two.final_states, full.final_states, "{name} K={k}, 2 jobs");
        assert_eq!(two.findings, full.findings, "{name} K={k}, 2 jobs");
        counts = (dpor.executions, full.executions);
    }
    counts
}

fn invariant(what: &str) -> Finding {
    Finding::new(FindingKind::Invariant, "INV-TEST", what)
}

/// Three threads increment a counter with a racy load and store.
struct LostUpdate;
struct LostUpdateRun {
    counter: Rc<AtomicSlot>,
}

impl Harness for LostUpdate {
    fn start(&self) -> Box<dyn Instance> {
        Box::new(LostUpdateRun {
            counter: Rc::new(AtomicSlot::new("counter", 0, 0)),
        })
    }
}

impl Instance for LostUpdateRun {
    fn actors(&mut self) -> Vec<ActorSpec> {
        (0..3)
            .map(|i| {
                let c = self.counter.clone();
                ActorSpec {
                    name: format!("inc{i}"),
                    body: Box::new(move || {
                        let v = c.read("load counter");
                        c.write("store counter", v + 1);
                    }),
                }
            })
            .collect()
    }

    fn teardown(&mut self) {
        if self.counter.peek() != 3 {
            explore::raise(invariant("lost update"));
        }
    }

    fn final_state(&self) -> Option<String> {
        Some(format!("counter={}", self.counter.peek()))
    }
}

#[test]
fn lost_update() {
    same_as_exhaustive("lost update", &LostUpdate);
    // Every step touches the counter, but reads commute and so do the
    // threads' start steps: without a bound, DPOR runs far fewer.
    let dpor = run(&LostUpdate, Mode::Dpor, UNBOUNDED, 1);
    let full = run(&LostUpdate, Mode::Exhaustive, UNBOUNDED, 1);
    println!(
        "lost update, unbounded: DPOR {} executions, exhaustive {}",
        dpor.executions, full.executions
    );
    assert_eq!(dpor.final_states, full.final_states);
    assert!(dpor.executions * 2 < full.executions);
}

/// Check-then-act on a pointer, the shape of seed 001: a reader tests the
/// pointer, then reads it again to use it, while a writer clears it; each
/// thread also does unrelated work on its own object.
struct CheckThenAct {
    own_work: usize,
}
struct CheckThenActRun {
    ptr: Rc<AtomicSlot>,
    own: [Rc<AtomicSlot>; 2],
    seen: Rc<Cell<u64>>,
    own_work: usize,
}

impl Harness for CheckThenAct {
    fn start(&self) -> Box<dyn Instance> {
        Box::new(CheckThenActRun {
            ptr: Rc::new(AtomicSlot::new("ptr", 0, 7)),
            own: [
                Rc::new(AtomicSlot::new("own", 0, 0)),
                Rc::new(AtomicSlot::new("own", 1, 0)),
            ],
            seen: Rc::new(Cell::new(u64::MAX)),
            own_work: self.own_work,
        })
    }
}

impl Instance for CheckThenActRun {
    fn actors(&mut self) -> Vec<ActorSpec> {
        let (p, own, seen, n) = (
            self.ptr.clone(),
            self.own[0].clone(),
            self.seen.clone(),
            self.own_work,
        );
        let reader = ActorSpec {
            name: "reader".into(),
            body: Box::new(move || {
                for i in 0..n {
                    own.write("own work", i as u64);
                }
                if p.read("check ptr") != 0 {
                    let v = p.read("use ptr");
                    seen.set(v);
                    if v == 0 {
                        explore::raise(invariant("NULL pointer used after check"));
                    }
                }
            }),
        };
        let (p, own) = (self.ptr.clone(), self.own[1].clone());
        let writer = ActorSpec {
            name: "writer".into(),
            body: Box::new(move || {
                for i in 0..n {
                    own.write("own work", i as u64);
                }
                p.write("clear ptr", 0);
            }),
        };
        vec![reader, writer]
    }

    fn final_state(&self) -> Option<String> {
        Some(format!("seen={}", self.seen.get() as i64))
    }
}

#[test]
fn check_then_act() {
    let (dpor, full) = same_as_exhaustive("check-then-act", &CheckThenAct { own_work: 3 });
    assert!(
        dpor * 2 < full,
        "independent work is not reduced: {dpor} vs {full}"
    );
}

/// Two threads take two locks in opposite orders: some schedules deadlock.
struct AbBa;
struct AbBaRun {
    a: Rc<Lock<()>>,
    b: Rc<Lock<()>>,
    done: Rc<AtomicSlot>,
}

impl Harness for AbBa {
    fn start(&self) -> Box<dyn Instance> {
        Box::new(AbBaRun {
            a: Rc::new(Lock::new(&SPIN, 0, ())),
            b: Rc::new(Lock::new(&SPIN, 1, ())),
            done: Rc::new(AtomicSlot::new("done", 0, 0)),
        })
    }
}

impl Instance for AbBaRun {
    fn actors(&mut self) -> Vec<ActorSpec> {
        let mk = |x: Rc<Lock<()>>, y: Rc<Lock<()>>, done: Rc<AtomicSlot>, bit: u64| ActorSpec {
            name: "t".into(),
            body: Box::new(move || {
                let gx = x.lock("lock x");
                let gy = y.lock("lock y");
                let d = done.read("load done");
                done.write("store done", d | bit);
                drop(gy);
                drop(gx);
            }),
        };
        vec![
            mk(self.a.clone(), self.b.clone(), self.done.clone(), 1),
            mk(self.b.clone(), self.a.clone(), self.done.clone(), 2),
        ]
    }

    fn final_state(&self) -> Option<String> {
        Some(format!("done={}", self.done.peek()))
    }
}

#[test]
fn lock_order_inversion() {
    let full = run(&AbBa, Mode::Exhaustive, 2, 1);
    assert!(
        full.findings.iter().any(|t| t.contains("deadlock")),
        "{:?}",
        full.findings
    );
    same_as_exhaustive("lock order inversion", &AbBa);
}

/// Message passing: data, then a flag; the receiver reads the flag, then
/// the data. Under sequential consistency a set flag implies the data.
struct MessagePassing;
struct MessagePassingRun {
    data: Rc<AtomicSlot>,
    flag: Rc<AtomicSlot>,
    got: Rc<Cell<(u64, u64)>>,
}

impl Harness for MessagePassing {
    fn start(&self) -> Box<dyn Instance> {
        Box::new(MessagePassingRun {
            data: Rc::new(AtomicSlot::new("data", 0, 0)),
            flag: Rc::new(AtomicSlot::new("flag", 0, 0)),
            got: Rc::new(Cell::new((9, 9))),
        })
    }
}

impl Instance for MessagePassingRun {
    fn actors(&mut self) -> Vec<ActorSpec> {
        let (d, f) = (self.data.clone(), self.flag.clone());
        let sender = ActorSpec {
            name: "sender".into(),
            body: Box::new(move || {
                d.write("store data", 42);
                f.write("store flag", 1);
            }),
        };
        let (d, f, got) = (self.data.clone(), self.flag.clone(), self.got.clone());
        let receiver = ActorSpec {
            name: "receiver".into(),
            body: Box::new(move || {
                let r1 = f.read("load flag");
                let r2 = d.read("load data");
                got.set((r1, r2));
                if r1 == 1 && r2 != 42 {
                    explore::raise(invariant("flag without data"));
                }
            }),
        };
        vec![sender, receiver]
    }

    fn final_state(&self) -> Option<String> {
        let (r1, r2) = self.got.get();
        Some(format!("flag={r1} data={r2}"))
    }
}

#[test]
fn message_passing() {
    let full = run(&MessagePassing, Mode::Exhaustive, 3, 1);
    assert_eq!(full.final_states.len(), 3, "{:?}", full.final_states);
    assert!(full.findings.is_empty());
    same_as_exhaustive("message passing", &MessagePassing);
}

/// The shape of `pmd_clear_bad()` against a pmd-lock holder: one thread
/// takes the lock and reads the slot under it, twice (`pmd_same()` after
/// `pmd_lock()`); the other clears the slot without the lock, then takes
/// the lock for unrelated work. The reader can see the value before, after
/// or between its two reads of the clear: partial-order reduction must see
/// the locked reads to reach all three.
struct LockedReaderLocklessWriter;
struct LockedReaderLocklessWriterRun {
    slot: Rc<AtomicSlot>,
    other: Rc<AtomicSlot>,
    lock: Rc<Lock<()>>,
    seen: Rc<Cell<(u64, u64)>>,
}

impl Harness for LockedReaderLocklessWriter {
    fn start(&self) -> Box<dyn Instance> {
        Box::new(LockedReaderLocklessWriterRun {
            slot: Rc::new(AtomicSlot::new("pmd", 0, 7)),
            other: Rc::new(AtomicSlot::new("other", 0, 0)),
            lock: Rc::new(Lock::new(&SPIN, 0, ())),
            seen: Rc::new(Cell::new((9, 9))),
        })
    }
}

impl Instance for LockedReaderLocklessWriterRun {
    fn actors(&mut self) -> Vec<ActorSpec> {
        let (slot, lock, seen) = (self.slot.clone(), self.lock.clone(), self.seen.clone());
        let reader = ActorSpec {
            name: "reader".into(),
            body: Box::new(move || {
                let g = lock.lock("pmd_lock");
                let first = slot.read_locked("pmd_same(*pmd) under pmd lock");
                let second = slot.read_locked("*pmd again under pmd lock");
                seen.set((first, second));
                drop(g);
            }),
        };
        let (slot, other, lock) = (self.slot.clone(), self.other.clone(), self.lock.clone());
        let clearer = ActorSpec {
            name: "clearer".into(),
            body: Box::new(move || {
                slot.write("pmd_clear_bad: pmd_clear(pmd)", 0);
                let g = lock.lock("unrelated lock");
                other.write("unrelated store", 1);
                drop(g);
            }),
        };
        vec![reader, clearer]
    }

    fn final_state(&self) -> Option<String> {
        let (first, second) = self.seen.get();
        Some(format!("first={first} second={second}"))
    }
}

#[test]
fn locked_reader_races_lockless_writer() {
    let full = run(&LockedReaderLocklessWriter, Mode::Exhaustive, 3, 1);
    assert_eq!(full.final_states.len(), 3, "{:?}", full.final_states);
    same_as_exhaustive(
        "locked reader, lockless writer",
        &LockedReaderLocklessWriter,
    );
}

/// One thread frees an object (`anon_vma_free()`), another dereferences
/// it without holding what keeps it alive, and a third frees a page table
/// while a fourth reads one of its entries. Every order in which a use
/// follows its free is a KASAN use-after-free; partial-order reduction must
/// order each free against the use (for the table, through the block of
/// entries the free covers).
struct UseAfterFree;
struct UseAfterFreeRun {
    object: Rc<Lifetime>,
    table: Rc<SlotArray>,
    counter: Rc<AtomicCounter>,
}

impl Harness for UseAfterFree {
    fn start(&self) -> Box<dyn Instance> {
        Box::new(UseAfterFreeRun {
            object: Rc::new(Lifetime::new("anon_vma", 0)),
            table: Rc::new(SlotArray::new("pte", 0, 4)),
            counter: Rc::new(AtomicCounter::new("mapcount", 0, 1)),
        })
    }
}

impl Instance for UseAfterFreeRun {
    fn actors(&mut self) -> Vec<ActorSpec> {
        let (object, counter) = (self.object.clone(), self.counter.clone());
        let freer = ActorSpec {
            name: "freer".into(),
            body: Box::new(move || {
                counter.add_return("page_remove_rmap", -1);
                object.free("anon_vma_free");
            }),
        };
        let (object, counter) = (self.object.clone(), self.counter.clone());
        let user = ActorSpec {
            name: "user".into(),
            body: Box::new(move || {
                // The check-then-use of folio_get_anon_vma() without its
                // reference: a mapped folio keeps the anon_vma alive only
                // until it is unmapped.
                if counter.read("page_mapped()") > 0 {
                    object.deref("down_read(&anon_vma->root->rwsem)");
                }
            }),
        };
        let table = self.table.clone();
        let table_freer = ActorSpec {
            name: "table freer".into(),
            body: Box::new(move || table.free("pte_free")),
        };
        let table = self.table.clone();
        let walker = ActorSpec {
            name: "walker".into(),
            body: Box::new(move || {
                table.read(2, "zap_pte_range: *pte");
            }),
        };
        // Users first: the default schedule finds nothing, so only the
        // reversal of each free-use race reaches the findings.
        vec![user, freer, walker, table_freer]
    }

    fn final_state(&self) -> Option<String> {
        Some(format!(
            "object freed={} table freed={} counter={}",
            self.object.is_freed(),
            self.table.is_freed(),
            self.counter.peek()
        ))
    }
}

#[test]
fn use_after_free_of_an_object_and_of_a_page_table() {
    let full = run(&UseAfterFree, Mode::Exhaustive, 3, 1);
    let titles: Vec<&String> = full.findings.iter().collect();
    assert!(
        titles
            .iter()
            .any(|t| t.contains("use-after-free in down_read(&anon_vma->root->rwsem)")),
        "{titles:?}"
    );
    assert!(
        titles
            .iter()
            .any(|t| t.contains("use-after-free in zap_pte_range")),
        "{titles:?}"
    );
    same_as_exhaustive("use after free", &UseAfterFree);
}

/// `PageLocked()` tested locklessly while another thread locks and unlocks
/// the page: the test sees the bit clear before, set between, clear after.
struct PageLockedTest;
struct PageLockedTestRun {
    bit: Rc<BitLock>,
    seen: Rc<Cell<u64>>,
}

impl Harness for PageLockedTest {
    fn start(&self) -> Box<dyn Instance> {
        Box::new(PageLockedTestRun {
            bit: Rc::new(BitLock::new(&SPIN, 0)),
            seen: Rc::new(Cell::new(9)),
        })
    }
}

impl Instance for PageLockedTestRun {
    fn actors(&mut self) -> Vec<ActorSpec> {
        let (bit, seen) = (self.bit.clone(), self.seen.clone());
        let tester = ActorSpec {
            name: "tester".into(),
            body: Box::new(move || seen.set(u64::from(bit.test_locked("PageLocked(page)")))),
        };
        let bit = self.bit.clone();
        let locker = ActorSpec {
            name: "locker".into(),
            body: Box::new(move || {
                bit.lock("lock_page");
                bit.unlock("unlock_page");
            }),
        };
        vec![tester, locker]
    }

    fn final_state(&self) -> Option<String> {
        Some(format!("locked={}", self.seen.get()))
    }
}

#[test]
fn a_lockless_page_locked_test_races_lock_and_unlock() {
    let full = run(&PageLockedTest, Mode::Exhaustive, 3, 1);
    assert_eq!(full.final_states.len(), 2, "{:?}", full.final_states);
    same_as_exhaustive("PageLocked test", &PageLockedTest);
}

/// Under a bound of zero preemptions only run-to-completion orders exist;
/// the lost update needs one preemption.
#[test]
fn bound_limits_what_is_reached() {
    let zero = run(&LostUpdate, Mode::Dpor, 0, 1);
    assert!(zero.findings.is_empty(), "{:?}", zero.findings);
    let one = run(&LostUpdate, Mode::Dpor, 1, 1);
    assert!(one.findings.contains("lost update"), "{:?}", one.findings);
}

/// With one worker, the search is deterministic down to the counts.
#[test]
fn one_worker_is_deterministic() {
    let h = CheckThenAct { own_work: 2 };
    let a = run(&h, Mode::Dpor, 2, 1);
    let b = run(&h, Mode::Dpor, 2, 1);
    assert_eq!((a.executions, a.steps), (b.executions, b.steps));
    assert_eq!(
        a.found.as_ref().map(|f| f.choices.clone()),
        b.found.as_ref().map(|f| f.choices.clone())
    );
}

/// One operation of a generated program.
#[derive(Clone, Copy, Debug)]
enum Op {
    Read(usize),
    Write(usize, u64),
    /// Take lock `l`, do one read-modify-write of object `o`, release.
    Locked(usize, usize),
    /// The same under a trylock; nothing if it fails.
    TryLocked(usize, usize),
    /// The same under a page-lock-like bit lock (release is a step).
    BitLocked(usize),
    /// Wait until the bit lock is free.
    WaitBit,
    /// Take lock `l` and read object `o` under it (`read_locked`), while
    /// other threads may write `o` without the lock, as `pmd_clear_bad()`
    /// writes a pmd other paths read under the pmd lock.
    LockedRead(usize, usize),
}

/// A generated program: a few threads of a few operations on a few
/// objects; the final state is every object and every value read.
#[derive(Debug)]
struct Program {
    threads: Vec<Vec<Op>>,
}

struct ProgramRun {
    threads: Vec<Vec<Op>>,
    objects: Vec<Rc<AtomicSlot>>,
    locks: Vec<Rc<Lock<()>>>,
    bit: Rc<BitLock>,
    reads: Rc<std::cell::RefCell<Vec<Vec<u64>>>>,
}

fn rmw(o: &AtomicSlot, t: usize) {
    let v = o.read("read");
    o.write("write", v * 3 + t as u64 + 1);
}

impl Harness for Program {
    fn start(&self) -> Box<dyn Instance> {
        let n = self.threads.len();
        Box::new(ProgramRun {
            threads: self.threads.clone(),
            objects: (0..3)
                .map(|i| Rc::new(AtomicSlot::new("x", i, 0)))
                .collect(),
            locks: (0..2).map(|i| Rc::new(Lock::new(&SPIN, i, ()))).collect(),
            bit: Rc::new(BitLock::new(&SPIN, 9)),
            reads: Rc::new(std::cell::RefCell::new(vec![Vec::new(); n])),
        })
    }
}

impl Instance for ProgramRun {
    fn actors(&mut self) -> Vec<ActorSpec> {
        let mut actors = Vec::new();
        for (t, ops) in self.threads.iter().enumerate() {
            let (ops, objects, locks, reads, bit) = (
                ops.clone(),
                self.objects.clone(),
                self.locks.clone(),
                self.reads.clone(),
                self.bit.clone(),
            );
            actors.push(ActorSpec {
                name: format!("t{t}"),
                body: Box::new(move || {
                    for op in ops {
                        match op {
                            Op::Read(o) => {
                                let v = objects[o].read("read");
                                reads.borrow_mut()[t].push(v);
                            }
                            Op::Write(o, v) => objects[o].write("write", v),
                            Op::Locked(l, o) => {
                                let g = locks[l].lock("lock");
                                rmw(&objects[o], t);
                                drop(g);
                            }
                            Op::TryLocked(l, o) => {
                                if let Some(g) = locks[l].try_lock("trylock") {
                                    rmw(&objects[o], t);
                                    drop(g);
                                } else {
                                    reads.borrow_mut()[t].push(99);
                                }
                            }
                            Op::BitLocked(o) => {
                                bit.lock("lock bit");
                                rmw(&objects[o], t);
                                bit.unlock("unlock bit");
                            }
                            Op::WaitBit => bit.wait_unlocked("wait bit"),
                            Op::LockedRead(l, o) => {
                                let g = locks[l].lock("lock");
                                let v = objects[o].read_locked("read under lock");
                                reads.borrow_mut()[t].push(v);
                                drop(g);
                            }
                        }
                    }
                }),
            });
        }
        actors
    }

    fn final_state(&self) -> Option<String> {
        let objects: Vec<u64> = self.objects.iter().map(|o| o.peek()).collect();
        Some(format!("{objects:?} {:?}", self.reads.borrow()))
    }
}

/// A small deterministic generator (no dependency on the host's entropy).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn generate(rng: &mut Lcg, max_threads: u64) -> Program {
    let threads = 2 + rng.below(max_threads - 1) as usize;
    let threads = (0..threads)
        .map(|_| {
            let ops = 1 + rng.below(3) as usize;
            (0..ops)
                .map(|_| {
                    let o = rng.below(3) as usize;
                    match rng.below(10) {
                        0 | 1 => Op::Read(o),
                        2 | 3 => Op::Write(o, 1 + rng.below(3)),
                        4 | 5 => Op::Locked(rng.below(2) as usize, o),
                        6 => Op::TryLocked(rng.below(2) as usize, o),
                        7 => Op::BitLocked(o),
                        8 => Op::LockedRead(rng.below(2) as usize, o),
                        _ => Op::WaitBit,
                    }
                })
                .collect()
        })
        .collect();
    Program { threads }
}

/// Compares DPOR with exhaustive search on `n` generated programs at
/// each bound in `bounds`.
fn generated_programs(seed: u64, n: usize, max_threads: u64, bounds: &[u32]) {
    let mut rng = Lcg(seed);
    let (mut dpor_total, mut full_total) = (0, 0);
    for i in 0..n {
        let p = generate(&mut rng, max_threads);
        for &k in bounds {
            let dpor = run(&p, Mode::Dpor, k, 1);
            let full = run(&p, Mode::Exhaustive, k, 1);
            let what = format!("program {i} {p:?}, {k} preemptions");
            assert_eq!(dpor.final_states, full.final_states, "{what}");
            assert_eq!(dpor.findings, full.findings, "{what}");
            if i % 10 == 0 {
                let two = run(&p, Mode::Dpor, k, 2);
                assert_eq!(two.final_states, full.final_states, "{what}, 2 jobs");
            }
            dpor_total += dpor.executions;
            full_total += full.executions;
        }
    }
    println!(
        "{n} generated programs, bounds {bounds:?}: DPOR {dpor_total} executions, exhaustive {full_total}"
    );
}

/// Two or three threads, bounds 0 to 3: the bounded search must not lose
/// a state the bounded exhaustive search reaches.
#[test]
fn generated_programs_bounded() {
    generated_programs(2014, 300, 3, &[0, 1, 2, 3]);
}

/// Two threads, no bound: plain DPOR.
#[test]
fn generated_programs_unbounded() {
    generated_programs(2005, 300, 2, &[UNBOUNDED]);
}

/// The runtime decides most steps on a lean path that skips what
/// partial-order reduction records; with conflict tracking on it takes the
/// general path. Both must make the same schedule from the same strategy,
/// locks, trylocks and waits included.
#[test]
fn lean_and_general_paths_schedule_alike() {
    use explore::rt::{run_execution, ExecutionConfig, Workspace};
    use explore::strategy::{Pct, RandomWalk, Strategy};
    let mut rng = Lcg(1994);
    let mut pool = Workspace::default();
    let mut decisions = 0;
    for i in 0..150 {
        let p = generate(&mut rng, 4);
        for seed in 0..8 {
            let strategy = || -> Box<dyn Strategy> {
                match seed % 2 {
                    0 => Box::new(RandomWalk::new(seed)),
                    _ => Box::new(Pct::new(seed, p.threads.len(), 12, 3)),
                }
            };
            let outcome = |tracked: bool, pool: &mut Workspace| {
                let config = ExecutionConfig {
                    steps_max: 10_000,
                    tracing: false,
                    track_conflicts: tracked,
                    racy: &[true, false, true],
                };
                let r = run_execution(&p, strategy().as_mut(), config, pool)
                    .expect("no internal error");
                let finding = r.finding.map(|f| f.title);
                (r.choices, r.steps, r.preemptions, finding)
            };
            let lean = outcome(false, &mut pool);
            let general = outcome(true, &mut pool);
            assert_eq!(lean, general, "program {i} {p:?}, seed {seed}");
            decisions += lean.0.len();
        }
    }
    assert!(decisions > 1000, "the programs made {decisions} decisions");
}

/// Two threads allocate (with fault injection) and publish what they got;
/// a third reads both. Data choices are explored in full, up to the
/// failure bound, by both searches.
struct Allocations;
struct AllocationsRun {
    got: [Rc<AtomicSlot>; 2],
    seen: Rc<Cell<(u64, u64)>>,
}

impl Harness for Allocations {
    fn start(&self) -> Box<dyn Instance> {
        Box::new(AllocationsRun {
            got: [
                Rc::new(AtomicSlot::new("got", 0, 9)),
                Rc::new(AtomicSlot::new("got", 1, 9)),
            ],
            seen: Rc::new(Cell::new((9, 9))),
        })
    }
}

impl Instance for AllocationsRun {
    fn actors(&mut self) -> Vec<ActorSpec> {
        let mut actors: Vec<ActorSpec> = (0..2)
            .map(|i| {
                let got = self.got[i].clone();
                ActorSpec {
                    name: format!("alloc{i}"),
                    body: Box::new(move || {
                        let ok = explore::sync::alloc("alloc_pages", true);
                        got.write("publish", u64::from(ok));
                    }),
                }
            })
            .collect();
        let (a, b, seen) = (self.got[0].clone(), self.got[1].clone(), self.seen.clone());
        actors.push(ActorSpec {
            name: "reader".into(),
            body: Box::new(move || {
                let x = a.read("read got0");
                let y = b.read("read got1");
                seen.set((x, y));
            }),
        });
        actors
    }

    fn final_state(&self) -> Option<String> {
        Some(format!(
            "got {} {} seen {:?}",
            self.got[0].peek(),
            self.got[1].peek(),
            self.seen.get()
        ))
    }
}

#[test]
fn allocation_failures_within_the_bound() {
    for failures in [0, 1, 2] {
        let run = |mode| {
            let config = VerifyConfig {
                mode,
                stop_at_finding: false,
                max_failures: failures,
                ..VerifyConfig::new(2, 10_000, 1_000_000, 1)
            };
            verify(&AllocationsHarness, &config).expect("no internal error")
        };
        let (dpor, full) = (run(Mode::Dpor), run(Mode::Exhaustive));
        println!(
            "allocations, {failures} failures: DPOR {} executions, exhaustive {}",
            dpor.executions, full.executions
        );
        assert_eq!(dpor.final_states, full.final_states, "{failures} failures");
        let both_failed = full.final_states.iter().any(|s| s.starts_with("got 0 0"));
        let one_failed = full.final_states.iter().any(|s| s.starts_with("got 0 1"));
        assert_eq!(both_failed, failures >= 2);
        assert_eq!(one_failed, failures >= 1);
    }
}

use Allocations as AllocationsHarness;

/// A longer run of the generated-program comparison, for soundness work:
/// `cargo test --release -p mmrace-explore --test dpor -- --ignored`.
#[test]
#[ignore]
fn generated_programs_long() {
    for seed in 1..=5 {
        generated_programs(seed * 7919, 400, 3, &[0, 1, 2, 3]);
        generated_programs(seed * 104_729, 400, 2, &[UNBOUNDED]);
    }
}
