//! `mmrace bench`: time to first finding for every seed scenario under each
//! profile expected to show a bug (median and max over 20 seeds), the
//! explorer's scheduling points per second, bounded verification (DPOR)
//! of every seed scenario under each profile expected clean, on one worker
//! and on two, and how the cost of a step grows with the pages mapped.

use std::path::{Path, PathBuf};

use scenario::interp::CheckMode;
use scenario::ExpectedVerdict;

use crate::run::{load, run, RunOptions};
use crate::seeds::scenario_files;
use crate::CliError;

/// One benchmark row.
pub struct BenchRow {
    pub scenario: String,
    pub profile: String,
    pub found: usize,
    pub seeds: usize,
    pub executions_median: u64,
    pub executions_max: u64,
    pub ms_median: f64,
    pub ms_max: f64,
    pub points_per_sec: f64,
}

fn median<T: Copy + PartialOrd>(v: &mut [T]) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

/// Every (scenario file, expectation) in `dir` whose verdict `select`
/// selects, with the file's name.
fn rows_of(
    dir: &Path,
    select: impl Fn(&ExpectedVerdict) -> bool,
) -> Result<Vec<(PathBuf, String, scenario::ast::Expect)>, CliError> {
    let mut rows = Vec::new();
    for file in scenario_files(dir)? {
        let s = load(&file)?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for e in s.expects.iter().filter(|e| select(&e.verdict)) {
            rows.push((file.clone(), name.clone(), e.clone()));
        }
    }
    Ok(rows)
}

/// The profile of an expectation with its knob overrides, as tables
/// show it.
fn label(e: &scenario::ast::Expect) -> String {
    let mut label = e.profile.clone();
    for (k, v) in &e.knobs {
        label.push_str(&format!(" {k}={v}"));
    }
    label
}

/// Runs the benchmark over `dir` with `seeds` seeds per row.
pub fn bench(dir: &Path, seeds: u64, base: &RunOptions) -> Result<Vec<BenchRow>, CliError> {
    let mut rows = Vec::new();
    let buggy = |v: &ExpectedVerdict| matches!(v, ExpectedVerdict::Finding(_));
    for (file, name, e) in rows_of(dir, buggy)? {
        let mut execs = Vec::new();
        let mut ms = Vec::new();
        let (mut steps, mut secs, mut found) = (0u64, 0f64, 0usize);
        for seed in 0..seeds {
            let mut knobs = base.knobs.clone();
            knobs.extend(e.knobs.iter().cloned());
            let opts = RunOptions {
                profile: e.profile.clone(),
                knobs,
                seed,
                wanted: crate::seeds::wanted(&e.verdict),
                ..base.clone()
            };
            let r = run(&file, &opts)?;
            found += usize::from(r.outcome.found.is_some());
            execs.push(r.outcome.executions);
            ms.push(r.outcome.elapsed.as_secs_f64() * 1000.0);
            steps += r.outcome.steps;
            secs += r.outcome.elapsed.as_secs_f64();
        }
        rows.push(BenchRow {
            scenario: name,
            profile: label(&e),
            found,
            seeds: seeds as usize,
            executions_median: median(&mut execs),
            executions_max: execs.iter().copied().max().unwrap_or(0),
            ms_median: median(&mut ms),
            ms_max: ms.iter().copied().fold(0.0, f64::max),
            points_per_sec: if secs > 0.0 { steps as f64 / secs } else { 0.0 },
        });
    }
    Ok(rows)
}

/// The explorer's own cost: a micro model of `actors` actors doing `ops`
/// lockless accesses each (a private slot, and a shared counter every
/// tenth access), run under random walk. Returns (scheduling points per
/// second, nanoseconds per point).
pub fn explorer_overhead(
    actors: usize,
    ops: usize,
    executions: u64,
) -> Result<(f64, f64), CliError> {
    use std::rc::Rc;

    use explore::rt::{ActorSpec, Harness, Instance};
    use explore::sync::AtomicSlot;
    use explore::{explore, RunConfig, StrategyKind};

    struct Micro(usize, usize);
    struct Run(usize, usize, Rc<AtomicSlot>);
    impl Harness for Micro {
        fn start(&self) -> Box<dyn Instance> {
            Box::new(Run(
                self.0,
                self.1,
                Rc::new(AtomicSlot::new("shared", 0, 0)),
            ))
        }
    }
    impl Instance for Run {
        fn actors(&mut self) -> Vec<ActorSpec> {
            (0..self.0)
                .map(|i| {
                    let (ops, shared) = (self.1, self.2.clone());
                    ActorSpec {
                        name: format!("a{i}"),
                        body: Box::new(move || {
                            let private = AtomicSlot::new("private", i as u64, 0);
                            for n in 0..ops {
                                if n % 10 == 0 {
                                    shared.add("shared += 1", 1);
                                } else {
                                    let v = private.read("load");
                                    private.write("store", v + 1);
                                }
                            }
                        }),
                    }
                })
                .collect()
        }
    }
    let config = RunConfig {
        shard: explore::Shard::WHOLE,
        progress: None,
        strategy: StrategyKind::Random,
        seed: 0,
        budget: executions,
        jobs: 1,
        steps_max: u64::MAX,
        wanted: None,
    };
    let out = explore(&Micro(actors, ops), &config)?;
    let secs = out.elapsed.as_secs_f64();
    let points = out.steps as f64;
    Ok((points / secs, secs * 1e9 / points))
}

/// One verification benchmark row: a (scenario, profile) expected clean,
/// verified on one worker and on two.
pub struct VerifyBenchRow {
    pub scenario: String,
    pub profile: String,
    pub verdict: &'static str,
    pub executions: u64,
    pub steps: u64,
    pub secs_one: f64,
    pub secs_two: f64,
}

/// Verifies every clean expectation in `dir` within `preemptions`, with one
/// and with two workers.
pub fn verification(dir: &Path, preemptions: u32) -> Result<Vec<VerifyBenchRow>, CliError> {
    use crate::verify::{verify, VerifyOptions};
    let mut rows = Vec::new();
    let fixed = |v: &ExpectedVerdict| matches!(v, ExpectedVerdict::Clean);
    for (file, name, e) in rows_of(dir, fixed)? {
        let mut opts = VerifyOptions::new(&e.profile, preemptions);
        opts.knobs = e.knobs.clone();
        let one = verify(&file, &opts)?;
        opts.jobs = 2;
        let two = verify(&file, &opts)?;
        rows.push(VerifyBenchRow {
            scenario: name,
            profile: label(&e),
            verdict: one.verdict(),
            executions: one.outcome.executions,
            steps: one.outcome.steps,
            secs_one: one.elapsed.as_secs_f64(),
            secs_two: two.elapsed.as_secs_f64(),
        });
    }
    Ok(rows)
}

/// One row of the cost-growth benchmark: a clean scenario of two threads
/// each writing half of an anonymous mapping of `pages` pages
/// (`thp=never`, linux-6.5, one worker), with the checkers in one mode.
pub struct GrowthRow {
    pub pages: u64,
    pub check: CheckMode,
    pub executions: u64,
    pub steps_per_execution: f64,
    pub us_per_step: f64,
    pub ms_per_execution: f64,
}

/// Mapping sizes of the cost-growth benchmark, in pages.
pub const GROWTH_PAGES: [u64; 4] = [64, 256, 1024, 16_384];

/// The scenario the cost-growth benchmark runs at `pages` pages.
pub fn growth_scenario(pages: u64) -> String {
    let half = pages * 2; // KiB in half the mapping
    format!(
        "scenario \"halves-{pages}\"\nmachine thp=never\nprocess p {{\n  setup {{\n    \
         a = mmap(NULL, {}K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)\n  }}\n  \
         thread t1 {{ write(a, 0..{half}K, 1) }}\n  \
         thread t2 {{ write(a + {half}K, 0..{half}K, 2) }}\n}}\n",
        pages * 4
    )
}

/// Runs the cost-growth scenario at `pages` pages for `executions`
/// executions with the checkers in mode `check`.
pub fn growth(pages: u64, check: CheckMode, executions: u64) -> Result<GrowthRow, CliError> {
    use explore::{explore, RunConfig, StrategyKind};
    let name = format!("halves-{pages}.mmr");
    let s = scenario::parse_str(&name, &growth_scenario(pages))
        .map_err(|d| CliError::Internal(format!("the benchmark scenario: {d}")))?;
    let h = crate::run::harness(std::sync::Arc::new(s), "linux-6.5", &[])?.with_check(check);
    let config = RunConfig {
        shard: explore::Shard::WHOLE,
        progress: None,
        strategy: StrategyKind::Portfolio,
        seed: 0,
        budget: executions,
        jobs: 1,
        steps_max: u64::MAX,
        wanted: None,
    };
    let out = explore(&h, &config)?;
    if let Some(f) = out.found {
        return Err(CliError::Internal(format!(
            "the cost-growth scenario at {pages} pages is not clean: {}",
            f.finding.title
        )));
    }
    let secs = out.elapsed.as_secs_f64();
    let steps = out.steps.max(1) as f64;
    let runs = out.executions.max(1) as f64;
    Ok(GrowthRow {
        pages,
        check,
        executions: out.executions,
        steps_per_execution: steps / runs,
        us_per_step: secs * 1e6 / steps,
        ms_per_execution: secs * 1e3 / runs,
    })
}
