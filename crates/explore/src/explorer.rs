//! Runs many executions: calibration, strategies, workers, first finding.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::finding::{Finding, InternalError};
use crate::rt::{run_execution, ExecutionConfig, ExecutionResult, Harness, Workspace};
use crate::strategy::{Replay, Strategy, StrategyKind};

/// Which findings end a run (`RunConfig::wanted`).
#[derive(Clone)]
pub struct Wanted(pub std::sync::Arc<dyn Fn(&Finding) -> bool + Send + Sync>);

impl std::fmt::Debug for Wanted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Wanted(..)")
    }
}

/// Bounds and switches of a run.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub strategy: StrategyKind,
    pub seed: u64,
    /// Executions to try before declaring the run clean.
    pub budget: u64,
    /// Independent worker threads; the reported finding does not depend on it.
    pub jobs: usize,
    /// Steps after which an execution is a livelock finding.
    pub steps_max: u64,
    /// The part of the execution-index space this run covers (`--shard`).
    pub shard: Shard,
    /// Executions finished so far, for a progress display (workers add to
    /// it; it never affects what runs).
    pub progress: Option<std::sync::Arc<AtomicU64>>,
    /// Only findings this accepts end the run; the others are counted
    /// (`RunOutcome::passed_over`) and exploration goes on. `None`: the
    /// first finding ends it. A scenario's `expect ...: finding "X"` is
    /// met by *some* execution reporting X (seeds), so that an
    /// expectation about one interleaving is not hidden by another
    /// interleaving's finding met first.
    pub wanted: Option<Wanted>,
}

/// Shard `index` of `count`: the executions whose index is `index` modulo
/// `count`. Shards of one run on many machines together run exactly the
/// executions one run would (`mmrace merge` combines their results).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// The whole run.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Parses `K/N` (0 <= K < N).
    pub fn parse(s: &str) -> Result<Shard, String> {
        let bad = || format!("bad shard '{s}'; expected K/N with 0 <= K < N, e.g. 0/4");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u64, u64) =
            (k.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// Executions of a budget this shard runs.
    pub fn executions(&self, budget: u64) -> u64 {
        budget.saturating_sub(self.index).div_ceil(self.count)
    }
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            strategy: StrategyKind::Portfolio,
            seed: 0,
            budget: 10_000,
            jobs: 1,
            steps_max: 100_000,
            shard: Shard::WHOLE,
            progress: None,
            wanted: None,
        }
    }
}

/// A finding together with the execution that produced it.
#[derive(Clone, Debug)]
pub struct Found {
    /// Index of the execution within the run (deterministic for a seed).
    pub index: u64,
    pub finding: Finding,
    pub choices: Vec<u32>,
    pub steps: u64,
    pub preemptions: u32,
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// Executions up to and including the finding, or the whole budget.
    pub executions: u64,
    /// Scheduling steps over all executions that ran.
    pub steps: u64,
    pub elapsed: Duration,
    pub found: Option<Found>,
    /// How many executions reached each coverage mark.
    pub marks: BTreeMap<&'static str, u64>,
    /// Racy steps of the calibration execution (PCT's k).
    pub calibration_steps: u64,
    pub actors: usize,
    /// Findings `RunConfig::wanted` passed over.
    pub passed_over: u64,
    /// Every schedule was explored: the scenario offers no choice at all
    /// (one enabled actor at every step, no fault injection), so the one
    /// execution is all there is.
    pub complete: bool,
}

/// Always runs the lowest-numbered enabled actor: a deterministic schedule
/// with no preemption, used to measure an execution for PCT.
struct Calibrate;

impl Strategy for Calibrate {
    fn choose_actor(&mut self, enabled: &[usize], last: Option<usize>, _: bool) -> usize {
        last.filter(|l| enabled.contains(l)).unwrap_or(enabled[0])
    }
    fn choose_value(&mut self, _: u32) -> u32 {
        0
    }
}

struct Shared {
    best: AtomicU64,
    passed_over: AtomicU64,
    found: Mutex<Option<Found>>,
    error: Mutex<Option<(u64, InternalError)>>,
}

#[derive(Default)]
struct WorkerTotals {
    ran: u64,
    steps: u64,
    marks: BTreeMap<&'static str, u64>,
}

/// Explores `harness` until a finding or the budget is spent.
pub fn explore(harness: &dyn Harness, config: &RunConfig) -> Result<RunOutcome, InternalError> {
    let start = Instant::now();
    let mut pool = Workspace::default();
    let exec = ExecutionConfig {
        steps_max: config.steps_max,
        tracing: false,
        track_conflicts: true,
        racy: &[],
    };
    let calibration = run_execution(harness, &mut Calibrate, exec, &mut pool)?;
    if calibration.choices.is_empty() {
        return Ok(single_schedule(calibration, start, config.wanted.as_ref()));
    }
    let actors = calibration.actor_names.len() - 1;
    let k = calibration.racy_steps.max(1);
    let racy = calibration.racy;
    let racy = racy.as_slice();
    let shared = Shared {
        best: AtomicU64::new(u64::MAX),
        passed_over: AtomicU64::new(0),
        found: Mutex::new(None),
        error: Mutex::new(None),
    };
    let jobs = config.jobs.max(1);
    let shard = config.shard;
    let totals: Vec<WorkerTotals> = if jobs == 1 {
        vec![worker(
            harness,
            config,
            shard.index,
            shard.count,
            (actors, k, racy),
            &shared,
        )]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..jobs)
                .map(|w| {
                    let shared = &shared;
                    s.spawn(move || {
                        worker(
                            harness,
                            config,
                            shard.index + w as u64 * shard.count,
                            jobs as u64 * shard.count,
                            (actors, k, racy),
                            shared,
                        )
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        })
    };
    let found = shared.found.into_inner().unwrap_or_else(|e| e.into_inner());
    if let Some((index, err)) = shared.error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        if found.as_ref().is_none_or(|f| f.index > index) {
            return Err(err);
        }
    }
    let mut outcome = RunOutcome {
        executions: found.as_ref().map_or(shard.executions(config.budget), |f| {
            (f.index - shard.index) / shard.count + 1
        }),
        steps: 0,
        elapsed: Duration::ZERO,
        found,
        marks: BTreeMap::new(),
        calibration_steps: k,
        actors,
        complete: false,
        passed_over: shared.passed_over.load(Ordering::Relaxed),
    };
    for t in totals {
        outcome.steps += t.steps;
        for (m, n) in t.marks {
            *outcome.marks.entry(m).or_default() += n;
        }
        let _ = t.ran;
    }
    outcome.elapsed = start.elapsed();
    Ok(outcome)
}

/// The outcome of a run whose calibration execution made no choice: every
/// strategy would repeat it, so it is the whole schedule space.
fn single_schedule(
    r: crate::rt::ExecutionResult,
    start: Instant,
    wanted: Option<&Wanted>,
) -> RunOutcome {
    let passed_over = u64::from(
        r.finding
            .as_ref()
            .is_some_and(|f| wanted.is_some_and(|w| !(w.0)(f))),
    );
    let finding = r.finding.filter(|_| passed_over == 0);
    let found = finding.map(|finding| Found {
        index: 0,
        finding,
        choices: Vec::new(),
        steps: r.steps,
        preemptions: r.preemptions,
    });
    RunOutcome {
        executions: 1,
        steps: r.steps,
        elapsed: start.elapsed(),
        found,
        marks: r.marks.iter().map(|m| (*m, 1)).collect(),
        calibration_steps: r.racy_steps,
        actors: r.actor_names.len() - 1,
        complete: true,
        passed_over,
    }
}

/// What calibration learned: actors, PCT's k, racy objects.
type Calibration<'a> = (usize, u64, &'a [bool]);

fn worker(
    harness: &dyn Harness,
    config: &RunConfig,
    first: u64,
    stride: u64,
    (actors, k, racy): Calibration<'_>,
    shared: &Shared,
) -> WorkerTotals {
    let mut pool = Workspace::default();
    let mut totals = WorkerTotals::default();
    let exec = ExecutionConfig {
        steps_max: config.steps_max,
        tracing: false,
        track_conflicts: false,
        racy,
    };
    let mut index = first;
    while index < config.budget && index < shared.best.load(Ordering::Relaxed) {
        let mut strategy = config.strategy.build(config.seed, index, actors, k);
        match run_execution(harness, strategy.as_strategy(), exec, &mut pool) {
            Ok(r) => {
                totals.ran += 1;
                if let Some(p) = &config.progress {
                    p.fetch_add(1, Ordering::Relaxed);
                }
                totals.steps += r.steps;
                for m in &r.marks {
                    *totals.marks.entry(m).or_default() += 1;
                }
                let unwanted = r
                    .finding
                    .as_ref()
                    .is_some_and(|f| config.wanted.as_ref().is_some_and(|w| !(w.0)(f)));
                if unwanted {
                    shared.passed_over.fetch_add(1, Ordering::Relaxed);
                    pool.reclaim(r);
                    index += stride;
                    continue;
                }
                match r.finding {
                    Some(f) => record(
                        shared,
                        Found {
                            index,
                            finding: f,
                            choices: r.choices,
                            steps: r.steps,
                            preemptions: r.preemptions,
                        },
                    ),
                    None => pool.reclaim(r),
                }
            }
            Err(e) => {
                let mut slot = shared.error.lock().unwrap_or_else(|e| e.into_inner());
                if slot.as_ref().is_none_or(|(i, _)| *i > index) {
                    *slot = Some((index, e));
                }
                shared.best.fetch_min(index, Ordering::Relaxed);
            }
        }
        index += stride;
    }
    totals
}

fn record(shared: &Shared, found: Found) {
    let mut slot = shared.found.lock().unwrap_or_else(|e| e.into_inner());
    if slot.as_ref().is_none_or(|f| f.index > found.index) {
        shared.best.fetch_min(found.index, Ordering::Relaxed);
        *slot = Some(found);
    }
}

/// Replays a recorded choice list with full tracing.
pub fn replay(
    harness: &dyn Harness,
    choices: Vec<u32>,
    steps_max: u64,
) -> Result<ExecutionResult, InternalError> {
    let mut pool = Workspace::default();
    let mut strategy = Replay::new(choices);
    let exec = ExecutionConfig {
        steps_max,
        tracing: true,
        track_conflicts: false,
        racy: &[],
    };
    let result = run_execution(harness, &mut strategy, exec, &mut pool)?;
    if !strategy.exhausted() {
        return Err(InternalError::diverged(
            "replay diverged: recorded choices left over",
        ));
    }
    Ok(result)
}
