//! Speed against a peer: the seed 001 check-then-act race distilled to two
//! threads, with `--work N` unrelated atomic stores per thread before it,
//! run on mmrace's explorer and on shuttle 0.9 in one process.
//!
//! The reader tests a pointer and then reads it again to use it (the
//! kernel's double read of `*pmd`); the writer clears it (the racing
//! update). The race needs the writer to run between the reader's two
//! reads. Both tools run random walks from fixed seeds.
//!
//! Printed, for each tool: scheduling points per second and nanoseconds per
//! scheduling point on the race-free variant (the reader reads once; best
//! of `--repeat N` runs, default 3), and
//! mean executions to the first finding over the seeds on the racy one; then
//! the ratios.
//!
//! `--profile-mmrace [--pct] --work N` runs only mmrace's throughput loop
//! (random walk, or PCT depth 3), for `perf record`. (shuttle's PCT scheduler is left out: in 0.9.9 it failed on
//! this model with "ExecutionState is not set" after a caught failure.)

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use explore::rt::{ActorSpec, Harness, Instance};
use explore::sync::AtomicSlot;
use explore::{explore, Finding, FindingKind, RunConfig, Shard, StrategyKind};

/// The micro model's parameters.
#[derive(Clone, Copy)]
struct Model {
    work: u64,
    racy: bool,
}

// ---- mmrace's explorer ----

struct MmraceRun {
    model: Model,
    ptr: Rc<AtomicSlot>,
    own: [Rc<AtomicSlot>; 2],
}

impl Harness for Model {
    fn start(&self) -> Box<dyn Instance> {
        Box::new(MmraceRun {
            model: *self,
            ptr: Rc::new(AtomicSlot::new("ptr", 0, 7)),
            own: [
                Rc::new(AtomicSlot::new("own", 0, 0)),
                Rc::new(AtomicSlot::new("own", 1, 0)),
            ],
        })
    }
}

impl Instance for MmraceRun {
    fn actors(&mut self) -> Vec<ActorSpec> {
        let Model { work, racy } = self.model;
        let (p, own) = (self.ptr.clone(), self.own[0].clone());
        let reader = ActorSpec {
            name: "reader".into(),
            body: Box::new(move || {
                for i in 0..work {
                    own.write("unrelated work", i);
                }
                if p.read("check ptr") != 0 && racy && p.read("use ptr") == 0 {
                    explore::raise(Finding::new(
                        FindingKind::Invariant,
                        "check-then-act",
                        "pointer cleared between check and use",
                    ));
                }
            }),
        };
        let (p, own) = (self.ptr.clone(), self.own[1].clone());
        let writer = ActorSpec {
            name: "writer".into(),
            body: Box::new(move || {
                for i in 0..work {
                    own.write("unrelated work", i);
                }
                p.write("clear ptr", 0);
            }),
        };
        vec![reader, writer]
    }
}

fn mmrace_config(strategy: StrategyKind, seed: u64, budget: u64) -> RunConfig {
    RunConfig {
        strategy,
        seed,
        budget,
        jobs: 1,
        steps_max: 1_000_000,
        shard: Shard::WHOLE,
        progress: None,
    }
}

/// (scheduling points, seconds) for `executions` race-free executions.
fn mmrace_throughput(work: u64, executions: u64) -> (u64, f64) {
    mmrace_throughput_with(work, executions, StrategyKind::Random)
}

fn mmrace_throughput_with(work: u64, executions: u64, strategy: StrategyKind) -> (u64, f64) {
    let model = Model { work, racy: false };
    let started = Instant::now();
    let out = explore(&model, &mmrace_config(strategy, 1, executions)).expect("no internal error");
    assert!(out.found.is_none());
    (out.steps, started.elapsed().as_secs_f64())
}

fn mmrace_to_finding(work: u64, strategy: StrategyKind, seed: u64) -> u64 {
    let model = Model { work, racy: true };
    let out = explore(&model, &mmrace_config(strategy, seed, 10_000_000)).expect("no error");
    out.found.expect("the race is found").index + 1
}

// ---- shuttle ----

/// Scheduling points shuttle ran (each atomic operation, spawn and join).
static SHUTTLE_POINTS: AtomicU64 = AtomicU64::new(0);
static SHUTTLE_EXECUTIONS: AtomicU64 = AtomicU64::new(0);

fn shuttle_body(model: Model) {
    use shuttle::sync::atomic::AtomicU64 as ShuttleU64;
    SHUTTLE_EXECUTIONS.fetch_add(1, Ordering::Relaxed);
    let ptr = Arc::new(ShuttleU64::new(7));
    let own0 = Arc::new(ShuttleU64::new(0));
    let own1 = Arc::new(ShuttleU64::new(0));
    let p = ptr.clone();
    let count = |n: u64| SHUTTLE_POINTS.fetch_add(n, Ordering::Relaxed);
    let reader = shuttle::thread::spawn(move || {
        for i in 0..model.work {
            own0.store(i, Ordering::SeqCst);
        }
        count(model.work + 1);
        if p.load(Ordering::SeqCst) != 0 && model.racy {
            count(1);
            assert_ne!(
                p.load(Ordering::SeqCst),
                0,
                "pointer cleared between check and use"
            );
        }
    });
    for i in 0..model.work {
        own1.store(i, Ordering::SeqCst);
    }
    ptr.store(0, Ordering::SeqCst);
    reader.join().unwrap();
    // spawn, the writer's stores, join.
    count(model.work + 3);
}

fn shuttle_throughput(work: u64, executions: u64) -> (u64, f64) {
    let model = Model { work, racy: false };
    SHUTTLE_POINTS.store(0, Ordering::Relaxed);
    let started = Instant::now();
    shuttle::check_random_with_seed(move || shuttle_body(model), 1, executions as usize);
    (
        SHUTTLE_POINTS.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
    )
}

fn shuttle_to_finding(work: u64, seed: u64) -> u64 {
    let model = Model { work, racy: true };
    SHUTTLE_EXECUTIONS.store(0, Ordering::Relaxed);
    let result = catch_unwind(AssertUnwindSafe(|| {
        shuttle::check_random_with_seed(move || shuttle_body(model), seed, 10_000_000);
    }));
    assert!(result.is_err(), "shuttle did not find the race");
    SHUTTLE_EXECUTIONS.load(Ordering::Relaxed)
}

// ---- the comparison ----

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
        .unwrap_or(default)
}

/// The run with the fewest ns per point: on a shared VM a run is sometimes
/// slowed from outside, and the minimum is the measure least disturbed by
/// that, for both tools alike.
fn fastest(runs: &[(u64, f64)]) -> (u64, f64) {
    *runs
        .iter()
        .min_by(|a, b| (a.1 / a.0 as f64).total_cmp(&(b.1 / b.0 as f64)))
        .expect("at least one run")
}

fn mean(xs: &[u64]) -> f64 {
    xs.iter().sum::<u64>() as f64 / xs.len() as f64
}

fn main() {
    let executions = arg("--executions", 20_000);
    let seeds = arg("--seeds", 20);
    let works: Vec<u64> = match arg("--work", u64::MAX) {
        u64::MAX => vec![0, 10, 100],
        w => vec![w],
    };
    // Shuttle reports each failing schedule on stderr; the counts are what
    // matter here.
    std::panic::set_hook(Box::new(|_| {}));
    std::env::set_var("SHUTTLE_SILENCE_WARNINGS", "1");
    println!("micro model: seed 001 check-then-act, 2 threads; {executions} executions for throughput, {seeds} seeds for time to finding");
    if std::env::args().any(|a| a == "--fixed") {
        let which: Vec<bool> = if std::env::args().any(|a| a == "--no-switch") {
            vec![false]
        } else {
            vec![false, true]
        };
        for switch in which {
            println!(
                "switch={switch}: {:.1} ns/point",
                fixed_experiment(works[0], switch, executions)
            );
        }
        return;
    }
    if std::env::args().any(|a| a == "--profile-mmrace") {
        // For perf: only mmrace's throughput loop.
        let strategy = if std::env::args().any(|a| a == "--pct") {
            StrategyKind::Pct { depth: 3 }
        } else {
            StrategyKind::Random
        };
        let (points, secs) = mmrace_throughput_with(works[0], executions, strategy);
        println!("{:.1} ns/point", secs * 1e9 / points as f64);
        return;
    }
    let repeat = arg("--repeat", 3).max(1);
    for work in works {
        // Interleaved, so that a slow spell of the VM hits both tools.
        let mut m = Vec::new();
        let mut sh = Vec::new();
        for _ in 0..repeat {
            m.push(mmrace_throughput(work, executions));
            sh.push(shuttle_throughput(work, executions));
        }
        let ((m_points, m_secs), (s_points, s_secs)) = (fastest(&m), fastest(&sh));
        let m_ns = m_secs * 1e9 / m_points as f64;
        let s_ns = s_secs * 1e9 / s_points as f64;
        println!("\nwork={work} (unrelated stores per thread)");
        println!(
            "  throughput   mmrace {:>12.0} points/s ({m_ns:6.1} ns/point)   shuttle {:>12.0} points/s ({s_ns:6.1} ns/point)   mmrace {:.1}x faster",
            m_points as f64 / m_secs,
            s_points as f64 / s_secs,
            s_ns / m_ns
        );
        let m: Vec<u64> = (0..seeds)
            .map(|s| mmrace_to_finding(work, StrategyKind::Random, s))
            .collect();
        let sh: Vec<u64> = (0..seeds).map(|s| shuttle_to_finding(work, s)).collect();
        println!(
            "  random walk, executions to first finding: mmrace {:>9.1}   shuttle {:>9.1}   shuttle/mmrace {:.2}",
            mean(&m),
            mean(&sh),
            mean(&sh) / mean(&m)
        );
        let pct: Vec<u64> = (0..seeds)
            .map(|s| mmrace_to_finding(work, StrategyKind::Pct { depth: 3 }, s))
            .collect();
        println!(
            "  mmrace PCT depth 3 (conflict-aware), executions to first finding: {:>9.1}",
            mean(&pct)
        );
    }
}

/// Experiment: a strategy that alternates actors at every decision
/// (predictable switches) or never switches.
pub struct Fixed(pub bool);
impl explore::strategy::Strategy for Fixed {
    fn choose_actor(&mut self, enabled: &[usize], last: Option<usize>, _: bool) -> usize {
        match last.filter(|l| enabled.contains(l)) {
            Some(l) if self.0 => *enabled.iter().find(|&&a| a != l).unwrap_or(&l),
            Some(l) => l,
            None => enabled[0],
        }
    }
    fn choose_value(&mut self, _: u32) -> u32 {
        0
    }
}

pub fn fixed_experiment(work: u64, switch: bool, executions: u64) -> f64 {
    let model = Model { work, racy: false };
    let mut pool = explore::rt::Workspace::default();
    let config = explore::rt::ExecutionConfig {
        steps_max: 1_000_000,
        tracing: false,
        track_conflicts: false,
        racy: &[],
    };
    let started = Instant::now();
    let mut steps = 0;
    for _ in 0..executions {
        let mut s = Fixed(switch);
        steps += explore::rt::run_execution(&model, &mut s, config, &mut pool)
            .unwrap()
            .steps;
    }
    started.elapsed().as_secs_f64() * 1e9 / steps as f64
}
