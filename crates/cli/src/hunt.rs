//! `mmrace hunt`: blind discovery. Generates scenarios from the language's
//! vocabulary, explores each with a small budget, groups the findings by
//! [`Signature`], shrinks each new one to a small scenario and writes it,
//! with its report, to the output directory the moment it is confirmed.
//!
//! Scenario `i` of a hunt depends only on the seed and `i`, and each is
//! explored with exploration seed 0, so a written scenario reproduces with
//! a plain `mmrace run --profile P FILE`. Scenarios run in batches of
//! `--jobs`, one worker each, and their results are taken in index order:
//! what a hunt reports does not depend on `--jobs`. After every batch the
//! state (`hunt-state.json`) is replaced atomically, so a killed hunt
//! resumes from its last batch and loses no finding.

pub mod generate;
pub mod signature;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use explore::{explore, replay, Found, RunConfig, Shard, StrategyKind, Token};
use scenario::interp::Capabilities;
use serde::{Deserialize, Serialize};

use crate::run::{harness, render_token};
use crate::CliError;
use generate::{generate, Draft, GenOptions, VOCABULARY};
use signature::{is_reportable, stable_phrase, where_it_fired, Signature};

/// When a hunt stops.
#[derive(Clone, Copy, Debug)]
pub enum Stop {
    /// After this long (whole batches: the last one may overrun it).
    Time(Duration),
    /// After scenario index N (counting those a resumed hunt already ran).
    Scenarios(u64),
}

/// Everything `hunt` needs.
#[derive(Clone, Debug)]
pub struct HuntOptions {
    pub profile: String,
    /// Knob overrides (`--knob`): hunt under an ablation of the profile.
    pub knobs: Vec<(String, String)>,
    pub ops: BTreeSet<&'static str>,
    pub threads: (u32, u32),
    pub processes: (u32, u32),
    pub machine: Option<String>,
    pub stop: Stop,
    pub seed: u64,
    pub jobs: usize,
    pub shard: Shard,
    pub out: PathBuf,
    /// Executions per generated scenario.
    pub budget: u64,
    pub steps_max: u64,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// Executions per generated scenario unless `--budget` says.
pub const DEFAULT_HUNT_BUDGET: u64 = 200;

/// Attempts the scenario shrinker may spend on one finding.
const SHRINK_ATTEMPTS: u32 = 150;

const STATE_FILE: &str = "hunt-state.json";

impl HuntOptions {
    pub fn new(profile: &str, out: &Path) -> HuntOptions {
        HuntOptions {
            profile: profile.to_string(),
            knobs: Vec::new(),
            ops: VOCABULARY.iter().copied().collect(),
            threads: (2, 3),
            processes: (1, 2),
            machine: None,
            stop: Stop::Scenarios(1000),
            seed: 0,
            jobs: 1,
            shard: Shard::WHOLE,
            out: out.to_path_buf(),
            budget: DEFAULT_HUNT_BUDGET,
            steps_max: crate::run::DEFAULT_STEPS_MAX,
            progress: false,
        }
    }

    /// What makes two hunts the same hunt (a resumed one must match).
    fn identity(&self) -> String {
        let ops: Vec<&str> = self.ops.iter().copied().collect();
        format!(
            "profile={}{} seed={} ops={} threads={}..{} processes={}..{} machine={} budget={} \
             shard={}/{} steps-max={}",
            self.profile,
            knob_text(&self.knobs),
            self.seed,
            ops.join(","),
            self.threads.0,
            self.threads.1,
            self.processes.0,
            self.processes.1,
            self.machine.as_deref().unwrap_or("-"),
            self.budget,
            self.shard.index,
            self.shard.count,
            self.steps_max
        )
    }
}

/// ` knob=value ...` as an `expect` line writes overrides ("" for none).
fn knob_text(knobs: &[(String, String)]) -> String {
    knobs.iter().map(|(k, v)| format!(" {k}={v}")).collect()
}

/// Parses `--ops`: names from [`VOCABULARY`], comma-separated.
pub fn parse_ops(s: &str) -> Result<BTreeSet<&'static str>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(|w| {
            VOCABULARY
                .iter()
                .copied()
                .find(|v| *v == w)
                .ok_or_else(|| format!("unknown op '{w}' (known: {})", VOCABULARY.join(", ")))
        })
        .collect::<Result<BTreeSet<_>, _>>()
        .and_then(|ops| {
            if ops.is_empty() {
                Err("--ops names no op".into())
            } else {
                Ok(ops)
            }
        })
}

/// Parses `--threads 2..3` / `--processes 2` (a range or one number).
pub fn parse_range(s: &str) -> Result<(u32, u32), String> {
    let num = |t: &str| {
        t.trim()
            .parse::<u32>()
            .map_err(|_| format!("'{s}' is not a count or a range LO..HI"))
    };
    let (lo, hi) = match s.split_once("..") {
        Some((lo, hi)) => (num(lo)?, num(hi)?),
        None => (num(s)?, num(s)?),
    };
    if lo == 0 || lo > hi || hi > 8 {
        return Err(format!("'{s}': need 1 <= LO <= HI <= 8"));
    }
    Ok((lo, hi))
}

/// Parses `--time 10m` (`s`, `m` or `h`; a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = match s.trim().char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 90s, 10m or 1h"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("'{s}': the unit must be s, m or h")),
    };
    if secs == 0 {
        return Err("--time must be at least 1s".into());
    }
    Ok(Duration::from_secs(secs))
}

/// One distinct finding of a hunt.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Distinct {
    /// The signature's key, also the stem of its files in the output
    /// directory.
    pub key: String,
    pub check: String,
    pub function: String,
    /// The title, numbers folded (the signature's shape).
    pub shape: String,
    /// The first scenario that found it.
    pub first: u64,
    /// Scenarios that found it.
    pub count: u64,
    /// The shrunk scenario and its report.
    pub scenario: String,
    pub report: String,
}

/// What the hunt could not explore: the model's coverage of the language.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Coverage {
    /// Scenarios that hit a bug in mmrace (exit 70 territory).
    pub internal: Vec<Problem>,
    /// Scenarios whose execution hit the step bound.
    pub livelock: Vec<Problem>,
    /// Scenarios the model refused: a statement or combination it does
    /// not model, or a generated scenario the checker rejects.
    pub unsupported: Vec<Problem>,
}

/// A scenario the hunt could not explore, and why (the first few of each
/// kind keep their scenario file under `DIR/coverage/`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Problem {
    pub scenario: u64,
    pub message: String,
}

/// Problems of each kind whose scenario is written out.
const PROBLEM_FILES: usize = 5;

/// A hunt's state and result (`hunt-state.json`, and `--json`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct HuntState {
    /// [`HuntOptions::identity`] of the hunt that wrote it.
    pub hunt: String,
    /// The next scenario index to run.
    pub next: u64,
    pub scenarios: u64,
    pub executions: u64,
    pub clean: u64,
    pub distinct: Vec<Distinct>,
    pub coverage: Coverage,
    /// Seconds spent over every session of the hunt.
    pub seconds: f64,
}

/// What one generated scenario came to.
enum Verdict {
    Clean {
        executions: u64,
    },
    Found {
        executions: u64,
        signature: Signature,
        /// Shrunk and reported, when the signature was new at the start of
        /// its batch.
        shrunk: Option<Box<Shrunk>>,
    },
    Livelock(String),
    Unsupported(String),
    Internal(String),
}

/// Renders a shrunk finding's report once its scenario is written at the
/// path given (the replay token names that file).
type ReportFor = Box<dyn FnOnce(&Path) -> Result<String, CliError> + Send>;

/// A shrunk finding, ready to be written.
struct Shrunk {
    draft: Draft,
    title: String,
    report_for: ReportFor,
}

/// The generator's options for a hunt, checked.
fn gen_options(opts: &HuntOptions) -> Result<GenOptions, CliError> {
    let profile = mm::profile(&opts.profile).map_err(CliError::Usage)?;
    let profile = profile
        .with_overrides(&opts.knobs)
        .map_err(CliError::Usage)?;
    let gen = GenOptions::new(
        &opts.ops,
        Capabilities::of(&profile),
        opts.threads,
        opts.processes,
        opts.machine.clone(),
    );
    if gen.ops.is_empty() {
        return Err(CliError::Usage(format!(
            "none of --ops runs under {} (its era models no files/swap)",
            opts.profile
        )));
    }
    if let Some(m) = &opts.machine {
        check_machine_line(m)?;
    }
    Ok(gen)
}

/// Scenario `index` of the hunt `opts` describes, as it is explored.
pub fn scenario_text(opts: &HuntOptions, index: u64) -> Result<String, CliError> {
    let gen = gen_options(opts)?;
    let draft = generate(opts.seed, index, &gen);
    Ok(draft.render(&[], &scenario_name(index), opts.budget, &[]))
}

/// `mmrace hunt`. Returns the state at the end (also in the output
/// directory).
pub fn hunt(opts: &HuntOptions) -> Result<HuntState, CliError> {
    let gen = gen_options(opts)?;
    if opts.jobs == 0 || opts.budget == 0 {
        return Err(CliError::Usage(
            "--jobs and --budget must be at least 1".into(),
        ));
    }
    std::fs::create_dir_all(&opts.out)
        .map_err(|e| CliError::Usage(format!("{}: {e}", opts.out.display())))?;
    let mut state = load_state(opts)?;
    let started = Instant::now();
    let seconds_before = state.seconds;
    let bar = opts.progress.then(|| progress_bar(opts, &state));
    while !stopped(opts, &state, started) {
        let batch = next_batch(opts, &state);
        let known: BTreeSet<String> = state.distinct.iter().map(|d| d.key.clone()).collect();
        let verdicts = run_batch(opts, &gen, &batch, &known);
        for (index, verdict) in batch.iter().zip(verdicts) {
            take(opts, &gen, &mut state, *index, verdict)?;
        }
        state.next = batch.last().map_or(state.next, |i| i + 1);
        state.seconds = seconds_before + started.elapsed().as_secs_f64();
        save_state(opts, &state)?;
        if let Some(bar) = &bar {
            show(bar, opts, &state, started);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(state)
}

/// A `--machine` line is checked once, by the scenario parser itself.
fn check_machine_line(m: &str) -> Result<(), CliError> {
    let text = format!("machine {m}\nprocess p {{ thread t {{ mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS) }} }}\n");
    scenario::parse_str("--machine", &text)
        .map(|_| ())
        .map_err(|d| CliError::Usage(format!("--machine: {d}")))
}

fn stopped(opts: &HuntOptions, state: &HuntState, started: Instant) -> bool {
    match opts.stop {
        Stop::Time(t) => started.elapsed() >= t,
        Stop::Scenarios(n) => state.next >= n,
    }
}

/// The scenario indices of the next batch: this shard's, from `next`.
fn next_batch(opts: &HuntOptions, state: &HuntState) -> Vec<u64> {
    let limit = match opts.stop {
        Stop::Scenarios(n) => n,
        Stop::Time(_) => u64::MAX,
    };
    (state.next..limit)
        .filter(|i| i % opts.shard.count == opts.shard.index)
        .take(opts.jobs)
        .collect()
}

fn run_batch(
    opts: &HuntOptions,
    gen: &GenOptions,
    batch: &[u64],
    known: &BTreeSet<String>,
) -> Vec<Verdict> {
    if batch.len() <= 1 {
        return batch.iter().map(|&i| judge(opts, gen, i, known)).collect();
    }
    std::thread::scope(|s| {
        let workers: Vec<_> = batch
            .iter()
            .map(|&i| s.spawn(move || judge(opts, gen, i, known)))
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Verdict::Internal("a hunt worker panicked".into()))
            })
            .collect()
    })
}

/// The name a generated scenario goes by in messages and tokens.
fn scenario_name(index: u64) -> String {
    format!("hunt-{index}")
}

/// Generates scenario `index`, explores it and, for a finding whose
/// signature is not `known`, shrinks it.
fn judge(opts: &HuntOptions, gen: &GenOptions, index: u64, known: &BTreeSet<String>) -> Verdict {
    let draft = generate(opts.seed, index, gen);
    let name = scenario_name(index);
    let run = match explore_draft(opts, &draft, &name) {
        Ok(run) => run,
        Err(v) => return v,
    };
    let Some((found, signature)) = run.found else {
        return Verdict::Clean {
            executions: run.executions,
        };
    };
    if !is_reportable(found.finding.kind) {
        return Verdict::Livelock(found.finding.title);
    }
    let shrunk = (!known.contains(&signature.key())).then(|| {
        let header = header(opts, &signature);
        Box::new(shrink(opts, draft, (&name, header), &signature, found))
    });
    Verdict::Found {
        executions: run.executions,
        signature,
        shrunk,
    }
}

/// An exploration of a draft: how many executions ran, and the finding.
struct Explored {
    executions: u64,
    found: Option<(Found, Signature)>,
}

fn explore_draft(opts: &HuntOptions, draft: &Draft, name: &str) -> Result<Explored, Verdict> {
    let text = draft.render(&[], name, opts.budget, &[]);
    let s = scenario::parse_str(&format!("{name}.mmr"), &text)
        .map_err(|d| Verdict::Unsupported(format!("generated scenario does not parse: {d}")))?;
    let h = harness(Arc::new(s), &opts.profile, &opts.knobs)
        .map_err(|e| Verdict::Unsupported(e.to_string()))?;
    let config = RunConfig {
        strategy: StrategyKind::Portfolio,
        seed: 0,
        budget: opts.budget,
        jobs: 1,
        steps_max: opts.steps_max,
        shard: Shard::WHOLE,
        progress: None,
        wanted: None,
    };
    let outcome = explore(&h, &config).map_err(|e| match e.kind {
        explore::InternalKind::Bug => Verdict::Internal(e.message),
        _ => Verdict::Unsupported(e.to_string()),
    })?;
    let found = match outcome.found {
        None => None,
        Some(found) => {
            let traced = replay(&h, found.choices.clone(), opts.steps_max)
                .map_err(|e| Verdict::Internal(e.to_string()))?;
            let signature = Signature::of(&found.finding, &where_it_fired(&traced.trace));
            Some((found, signature))
        }
    };
    Ok(Explored {
        executions: outcome.executions,
        found,
    })
}

/// Shrinks a finding's scenario: drops processes, child blocks, threads,
/// statements and pages, and simplifies the machine, keeping each change
/// that still finds the same signature within the budget; then the
/// schedule is shrunk to the fewest preemptions and the report rendered.
fn shrink(
    opts: &HuntOptions,
    draft: Draft,
    (name, header): (&str, Vec<String>),
    sig: &Signature,
    found: Found,
) -> Shrunk {
    let mut best = draft;
    let mut best_found = found;
    let mut attempts = 0;
    'outer: loop {
        for candidate in candidates(&best) {
            if attempts >= SHRINK_ATTEMPTS {
                break 'outer;
            }
            attempts += 1;
            let Ok(run) = explore_draft(opts, &candidate, name) else {
                continue;
            };
            if let Some((f, s)) = run.found {
                if &s == sig {
                    best = candidate;
                    best_found = f;
                    continue 'outer;
                }
            }
        }
        break;
    }
    let title = best_found.finding.title.clone();
    let profile = opts.profile.clone();
    let knobs = opts.knobs.clone();
    let steps_max = opts.steps_max;
    let budget = opts.budget;
    let draft_for_report = best.clone();
    let report_for = Box::new(move |path: &Path| -> Result<String, CliError> {
        let text = draft_for_report.render(&header, &file_stem(path), budget, &[]);
        let s = scenario::parse_str(&path.display().to_string(), &text)
            .map_err(|d| CliError::Internal(format!("a shrunk scenario does not parse: {d}")))?;
        let h = harness(Arc::new(s), &profile, &knobs)?;
        let shrunk = explore::minimize(&h, &best_found, steps_max, crate::run::MINIMIZE_BUDGET)?;
        let token = Token {
            profile: profile.clone(),
            knobs,
            choices: shrunk.choices,
            scenario: path.display().to_string(),
        };
        render_token(&h, &token, false, steps_max)
    });
    Shrunk {
        draft: best,
        title,
        report_for,
    }
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("hunt")
        .to_string()
}

/// The comment lines at the top of a written scenario.
fn header(opts: &HuntOptions, sig: &Signature) -> Vec<String> {
    vec![
        format!(
            "Found by mmrace hunt --profile {} --seed {}, then shrunk.",
            opts.profile, opts.seed
        ),
        format!(
            "Signature: {} in {}: {}",
            sig.check, sig.function, sig.shape
        ),
    ]
}

/// Smaller variants of `d`, most reducing first.
fn candidates(d: &Draft) -> Vec<Draft> {
    let mut out = Vec::new();
    for i in 0..d.processes.len() {
        if d.processes.len() > 1 {
            let mut c = d.clone();
            c.processes.remove(i);
            out.push(c);
        }
    }
    for path in process_paths(d) {
        let p = process_at(d, &path);
        for j in 0..p.children.len() {
            out.push(edit(d, &path, |p| {
                p.children.remove(j);
            }));
        }
        for t in 0..p.threads.len() {
            if d.thread_count() > 1 {
                out.push(edit(d, &path, |p| {
                    p.threads.remove(t);
                }));
            }
            for s in 0..p.threads[t].stmts.len() {
                if p.threads[t].stmts.len() > 1 {
                    out.push(edit(d, &path, |p| {
                        p.threads[t].stmts.remove(s);
                    }));
                }
            }
        }
        for s in 0..p.setup.len() {
            out.push(edit(d, &path, |p| {
                p.setup.remove(s);
            }));
            if let Some(smaller) = fewer_pages(&p.setup[s]) {
                out.push(edit(d, &path, |p| p.setup[s] = smaller));
            }
        }
    }
    for simpler in simpler_machines(&d.machine) {
        let mut c = d.clone();
        c.machine = simpler;
        out.push(c);
    }
    out
}

/// Every process and child block, as a path of child indices from a
/// top-level process.
fn process_paths(d: &Draft) -> Vec<Vec<usize>> {
    fn walk(p: &generate::DraftProcess, path: Vec<usize>, out: &mut Vec<Vec<usize>>) {
        out.push(path.clone());
        for (j, c) in p.children.iter().enumerate() {
            let mut sub = path.clone();
            sub.push(j);
            walk(c, sub, out);
        }
    }
    let mut out = Vec::new();
    for (i, p) in d.processes.iter().enumerate() {
        walk(p, vec![i], &mut out);
    }
    out
}

fn process_at<'a>(d: &'a Draft, path: &[usize]) -> &'a generate::DraftProcess {
    let mut p = &d.processes[path[0]];
    for &j in &path[1..] {
        p = &p.children[j];
    }
    p
}

fn edit(d: &Draft, path: &[usize], f: impl FnOnce(&mut generate::DraftProcess)) -> Draft {
    let mut c = d.clone();
    let mut p = &mut c.processes[path[0]];
    for &j in &path[1..] {
        p = &mut p.children[j];
    }
    f(p);
    c
}

/// An `mmap` (or a fill `write`) over half as many pages, if it has more
/// than one.
fn fewer_pages(stmt: &str) -> Option<String> {
    let (before, rest) = if stmt.contains("mmap(NULL, ") {
        stmt.split_once("mmap(NULL, ")
            .map(|(b, r)| (format!("{b}mmap(NULL, "), r))?
    } else if stmt.starts_with("write(") && stmt.contains(", 0..") {
        stmt.split_once(", 0..")
            .map(|(b, r)| (format!("{b}, 0.."), r))?
    } else {
        return None;
    };
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    let bytes: u64 = rest[..end].parse().ok()?;
    let pages = bytes / 4096;
    (pages > 1).then(|| format!("{before}{}{}", pages / 2 * 4096, &rest[end..]))
}

/// The machine line with one setting made simpler.
fn simpler_machines(m: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (from, to) in [
        (" failslab", ""),
        ("thp=always", "thp=never"),
        ("thp=madvise", "thp=never"),
        ("numa-nodes=2", "numa-nodes=1"),
    ] {
        if m.contains(from) {
            out.push(m.replacen(from, to, 1));
        }
    }
    out
}

/// Folds one scenario's verdict into the state, writing a new finding's
/// files first.
fn take(
    opts: &HuntOptions,
    gen: &GenOptions,
    state: &mut HuntState,
    index: u64,
    verdict: Verdict,
) -> Result<(), CliError> {
    state.scenarios += 1;
    match verdict {
        Verdict::Clean { executions } => {
            state.executions += executions;
            state.clean += 1;
        }
        Verdict::Found {
            executions,
            signature,
            shrunk,
        } => {
            state.executions += executions;
            let key = signature.key();
            if let Some(d) = state.distinct.iter_mut().find(|d| d.key == key) {
                d.count += 1;
                return Ok(());
            }
            let Some(shrunk) = shrunk else {
                return Err(CliError::Internal(format!(
                    "scenario {index}: signature {key} was neither known nor shrunk"
                )));
            };
            let d = write_finding(opts, &signature, index, *shrunk)?;
            state.distinct.push(d);
        }
        Verdict::Livelock(m) => {
            let list = &mut state.coverage.livelock;
            problem(opts, gen, (list, "livelock"), index, m)?;
        }
        Verdict::Unsupported(m) => {
            let list = &mut state.coverage.unsupported;
            problem(opts, gen, (list, "unsupported"), index, m)?;
        }
        Verdict::Internal(m) => {
            let list = &mut state.coverage.internal;
            problem(opts, gen, (list, "internal"), index, m)?;
        }
    }
    Ok(())
}

fn problem(
    opts: &HuntOptions,
    gen: &GenOptions,
    (list, kind): (&mut Vec<Problem>, &str),
    index: u64,
    message: String,
) -> Result<(), CliError> {
    if list.len() < PROBLEM_FILES {
        let dir = opts.out.join("coverage");
        std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
        let name = format!("{kind}-{index}");
        let header = vec![format!("{kind}: {}", message.lines().next().unwrap_or(""))];
        let text = generate(opts.seed, index, gen).render(&header, &name, opts.budget, &[]);
        write_atomically(&dir.join(format!("{name}.mmr")), &text)?;
    }
    list.push(Problem {
        scenario: index,
        message,
    });
    Ok(())
}

/// Writes `DIR/<key>.mmr` (with its `expect` line) and `DIR/<key>.txt`.
fn write_finding(
    opts: &HuntOptions,
    signature: &Signature,
    index: u64,
    shrunk: Shrunk,
) -> Result<Distinct, CliError> {
    let key = signature.key();
    let path = opts.out.join(format!("{key}.mmr"));
    let header = header(opts, signature);
    let report = write_shrunk(opts, signature, shrunk, &path, &header)?;
    let report_path = opts.out.join(format!("{key}.txt"));
    write_atomically(&report_path, &report)?;
    Ok(Distinct {
        key,
        check: signature.check.clone(),
        function: signature.function.clone(),
        shape: signature.shape.clone(),
        first: index,
        count: 1,
        scenario: path.display().to_string(),
        report: report_path.display().to_string(),
    })
}

/// Writes a shrunk scenario to `path` with `header` and an `expect` line
/// naming the finding by its longest phrase without numbers; returns its
/// report, whose replay token names `path`.
fn write_shrunk(
    opts: &HuntOptions,
    signature: &Signature,
    shrunk: Shrunk,
    path: &Path,
    header: &[String],
) -> Result<String, CliError> {
    let phrase = stable_phrase(&shrunk.title);
    let want = if phrase.is_empty() {
        signature.check.clone()
    } else {
        phrase
    };
    let expect = format!(
        "expect {}{}: finding \"{}\"",
        opts.profile,
        knob_text(&opts.knobs),
        want.replace('"', "")
    );
    let text = shrunk
        .draft
        .render(header, &file_stem(path), opts.budget, &[expect]);
    write_atomically(path, &text)?;
    (shrunk.report_for)(path)
}

/// What `mmrace shrink` did.
pub struct ShrinkResult {
    /// Threads and statements before and after.
    pub before: (usize, usize),
    pub after: (usize, usize),
    pub written: PathBuf,
    pub report: String,
}

/// `mmrace shrink FILE --profile P`: explores `file` under the profile (and
/// knobs) of `opts` with its budget, and shrinks the scenario of the
/// finding as a hunt shrinks its own (processes, threads, statements,
/// pages, machine settings, keeping the same signature; then the schedule
/// to the fewest preemptions); writes it to `out` with its `expect` line.
/// `None` if the scenario finds nothing within the budget.
pub fn shrink_file(
    opts: &HuntOptions,
    file: &Path,
    out: &Path,
) -> Result<Option<ShrinkResult>, CliError> {
    let s = crate::run::load(file)?;
    let draft = Draft::from_scenario(&s);
    let name = s.name.clone();
    let run = explore_draft(opts, &draft, &name).map_err(|v| match v {
        Verdict::Internal(m) => CliError::Internal(m),
        Verdict::Unsupported(m) | Verdict::Livelock(m) => CliError::Usage(m),
        Verdict::Clean { .. } | Verdict::Found { .. } => {
            CliError::Internal("an exploration failed without a reason".into())
        }
    })?;
    let Some((found, signature)) = run.found else {
        return Ok(None);
    };
    let before = draft.size();
    let header = vec![
        format!(
            "Shrunk by mmrace shrink from {} under {}{}.",
            file.display(),
            opts.profile,
            knob_text(&opts.knobs)
        ),
        format!(
            "Signature: {} in {}: {}",
            signature.check, signature.function, signature.shape
        ),
    ];
    let shrunk = shrink(opts, draft, (&name, header.clone()), &signature, found);
    let after = shrunk.draft.size();
    let report = write_shrunk(opts, &signature, shrunk, out, &header)?;
    Ok(Some(ShrinkResult {
        before,
        after,
        written: out.to_path_buf(),
        report,
    }))
}

fn io_error(path: &Path, e: std::io::Error) -> CliError {
    CliError::Usage(format!("{}: {e}", path.display()))
}

/// Write to a temporary file, then rename: a kill leaves the old file or
/// the new one, never half of one.
fn write_atomically(path: &Path, text: &str) -> Result<(), CliError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| io_error(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_error(path, e))
}

fn load_state(opts: &HuntOptions) -> Result<HuntState, CliError> {
    let path = opts.out.join(STATE_FILE);
    let fresh = HuntState {
        hunt: opts.identity(),
        next: 0,
        scenarios: 0,
        executions: 0,
        clean: 0,
        distinct: Vec::new(),
        coverage: Coverage::default(),
        seconds: 0.0,
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(fresh),
        Err(e) => return Err(io_error(&path, e)),
    };
    let state: HuntState = serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("{}: not a hunt state: {e}", path.display())))?;
    if state.hunt != fresh.hunt {
        return Err(CliError::Usage(format!(
            "{} holds another hunt ({}); this one is {}: use another --out to start it",
            opts.out.display(),
            state.hunt,
            fresh.hunt
        )));
    }
    Ok(state)
}

fn save_state(opts: &HuntOptions, state: &HuntState) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(state)
        .map_err(|e| CliError::Internal(format!("hunt state: {e}")))?;
    write_atomically(&opts.out.join(STATE_FILE), &text)
}

fn progress_bar(opts: &HuntOptions, state: &HuntState) -> indicatif::ProgressBar {
    let len = match opts.stop {
        Stop::Time(t) => t.as_secs(),
        Stop::Scenarios(n) => n,
    };
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template("hunt {bar:30} {pos}/{len} {msg} ETA {eta}")
            .expect("a valid template"),
    );
    bar.set_position(match opts.stop {
        Stop::Time(_) => 0,
        Stop::Scenarios(_) => state.next,
    });
    bar
}

fn show(bar: &indicatif::ProgressBar, opts: &HuntOptions, state: &HuntState, started: Instant) {
    let elapsed = started.elapsed();
    bar.set_position(match opts.stop {
        Stop::Time(_) => elapsed.as_secs(),
        Stop::Scenarios(_) => state.next,
    });
    let rate = state.scenarios as f64 / state.seconds.max(1e-3);
    bar.set_message(format!(
        "{:.1} scenarios/s, {} distinct finding(s)",
        rate,
        state.distinct.len()
    ));
}

/// The end-of-hunt summary.
pub fn render_summary(opts: &HuntOptions, state: &HuntState) -> String {
    let mut out = format!(
        "hunt under {}: {} scenarios ({} clean), {} executions, {:.1} s, {} distinct finding(s)\n",
        opts.profile,
        state.scenarios,
        state.clean,
        state.executions,
        state.seconds,
        state.distinct.len()
    );
    for d in &state.distinct {
        out += &format!(
            "  {}  ({} scenario(s), first #{})\n    {} in {}: {}\n    {}\n",
            d.key, d.count, d.first, d.check, d.function, d.shape, d.scenario
        );
    }
    let cov = &state.coverage;
    out += &format!(
        "coverage: {} internal error(s), {} livelock(s), {} unsupported scenario(s)\n",
        cov.internal.len(),
        cov.livelock.len(),
        cov.unsupported.len()
    );
    for (kind, list) in [
        ("internal", &cov.internal),
        ("livelock", &cov.livelock),
        ("unsupported", &cov.unsupported),
    ] {
        let mut by_message: BTreeMap<String, u64> = BTreeMap::new();
        for p in list {
            let first = signature::fold_numbers(p.message.lines().next().unwrap_or(""));
            *by_message.entry(first).or_default() += 1;
        }
        for (m, n) in by_message {
            out += &format!("  {kind} x{n}: {m}\n");
        }
    }
    out
}
