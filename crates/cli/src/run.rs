//! `mmrace run` and `mmrace replay`: explore one scenario under one
//! profile, and rebuild a report from a replay token.

use std::path::Path;
use std::sync::Arc;

use explore::report::{render, ReportContext};
use explore::{explore, replay, RunConfig, RunOutcome, StrategyKind, Token};
use scenario::interp::{CheckMode, ScenarioHarness};
use scenario::Scenario;

use crate::CliError;

/// Everything `run` needs besides the scenario.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub profile: String,
    pub knobs: Vec<(String, String)>,
    pub strategy: StrategyKind,
    pub seed: u64,
    /// `None`: the scenario's `budget`, else [`DEFAULT_BUDGET`].
    pub budget: Option<u64>,
    pub jobs: usize,
    pub steps_max: u64,
    /// Show setup/teardown events and reads in the report.
    pub full: bool,
    /// Shrink a found schedule (fewest preemptions, then steps) before
    /// reporting it.
    pub minimize: bool,
    /// The part of the execution-index space to run (`--shard K/N`).
    pub shard: explore::Shard,
    /// Executions done so far, for a progress bar.
    pub progress: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
    /// What the checkers look at after a step (`--check`).
    pub check: CheckMode,
    /// Findings that end the run (`None`: any); see `RunConfig::wanted`.
    pub wanted: Option<explore::Wanted>,
}

/// Replays minimisation may spend on one finding.
pub const MINIMIZE_BUDGET: u32 = 2000;

/// Executions when neither the command line nor the scenario says.
pub const DEFAULT_BUDGET: u64 = 10_000;
pub const DEFAULT_STEPS_MAX: u64 = 200_000;

impl RunOptions {
    pub fn new(profile: &str) -> Self {
        RunOptions {
            profile: profile.to_string(),
            knobs: Vec::new(),
            strategy: StrategyKind::Portfolio,
            seed: 0,
            budget: None,
            jobs: 1,
            steps_max: DEFAULT_STEPS_MAX,
            full: false,
            minimize: true,
            shard: explore::Shard::WHOLE,
            progress: None,
            check: CheckMode::default(),
            wanted: None,
        }
    }
}

/// A finished run: the exploration outcome and, for a finding, the report
/// rebuilt by replay and the token that reproduces it.
pub struct RunResult {
    pub scenario: String,
    pub profile: String,
    pub knobs: Vec<(String, String)>,
    pub outcome: RunOutcome,
    pub report: Option<String>,
    pub token: Option<String>,
    /// Preemptions of the found schedule before minimisation.
    pub found_preemptions: Option<u32>,
    /// The shard of the execution-index space that ran.
    pub shard: explore::Shard,
    /// What each statement did over the run's executions.
    pub statements: Vec<scenario::outcome::StatementSummary>,
}

impl RunResult {
    /// The statement summary of a clean run (a run that found something
    /// did not run all its executions to the end).
    pub fn clean_statements(&self) -> &[scenario::outcome::StatementSummary] {
        if self.outcome.found.is_some() {
            return &[];
        }
        &self.statements
    }
}

/// Parses a scenario file; syntax errors become usage errors with the
/// rendered diagnostic.
pub fn load(path: &Path) -> Result<Arc<Scenario>, CliError> {
    scenario::parse_file(path)
        .map(Arc::new)
        .map_err(|d| CliError::Usage(d.to_string()))
}

/// Builds the harness for a scenario under a profile with knob overrides
/// (its checkers look at what each step touched; `with_check` changes
/// that).
pub fn harness(
    s: Arc<Scenario>,
    profile: &str,
    knobs: &[(String, String)],
) -> Result<ScenarioHarness, CliError> {
    let p = mm::profile(profile).map_err(CliError::Usage)?;
    let p = p.with_overrides(knobs).map_err(CliError::Usage)?;
    ScenarioHarness::new(s, p).map_err(CliError::Usage)
}

/// The number of executions a run of `path` with `opts` will try.
pub fn budget_of(path: &Path, opts: &RunOptions) -> Result<u64, CliError> {
    let s = load(path)?;
    Ok(opts
        .shard
        .executions(opts.budget.or(s.budget).unwrap_or(DEFAULT_BUDGET)))
}

/// `mmrace run`: explore until a finding or the budget is spent.
pub fn run(path: &Path, opts: &RunOptions) -> Result<RunResult, CliError> {
    let s = load(path)?;
    let budget = opts.budget.or(s.budget).unwrap_or(DEFAULT_BUDGET);
    if budget == 0 || opts.jobs == 0 || opts.steps_max == 0 {
        return Err(CliError::Usage(
            "--budget, --jobs and --steps-max must be at least 1".into(),
        ));
    }
    let h = harness(s.clone(), &opts.profile, &opts.knobs)?.with_check(opts.check);
    let config = RunConfig {
        shard: opts.shard,
        progress: opts.progress.clone(),
        strategy: opts.strategy,
        seed: opts.seed,
        budget,
        jobs: opts.jobs,
        steps_max: opts.steps_max,
        wanted: opts.wanted.clone(),
    };
    let mut outcome = explore(&h, &config)?;
    let statements = h.statement_summary();
    let scenario = path.display().to_string();
    let how = Reporting {
        scenario: &scenario,
        profile: &opts.profile,
        knobs: &opts.knobs,
        minimize: opts.minimize,
        full: opts.full,
        steps_max: opts.steps_max,
    };
    let reported = report_found(&h, &mut outcome.found, &how)?;
    Ok(RunResult {
        scenario,
        profile: opts.profile.clone(),
        knobs: opts.knobs.clone(),
        outcome,
        report: reported.report,
        token: reported.token,
        found_preemptions: reported.found_preemptions,
        shard: opts.shard,
        statements,
    })
}

/// How a found schedule is turned into a report.
pub(crate) struct Reporting<'a> {
    pub scenario: &'a str,
    pub profile: &'a str,
    pub knobs: &'a [(String, String)],
    pub minimize: bool,
    pub full: bool,
    pub steps_max: u64,
}

/// A finding's report, token, and preemptions before minimisation.
#[derive(Default)]
pub(crate) struct Reported {
    pub report: Option<String>,
    pub token: Option<String>,
    pub found_preemptions: Option<u32>,
}

/// Shrinks `found` (unless told not to) and renders its report by replay.
pub(crate) fn report_found(
    h: &ScenarioHarness,
    found: &mut Option<explore::Found>,
    how: &Reporting<'_>,
) -> Result<Reported, CliError> {
    let Some(original) = found.take() else {
        return Ok(Reported::default());
    };
    let found_preemptions = Some(original.preemptions);
    let shrunk = if how.minimize {
        // The schedule may come from minimisation's own search; the
        // execution that found it is still the run's.
        explore::Found {
            index: original.index,
            ..explore::minimize(h, &original, how.steps_max, MINIMIZE_BUDGET)?
        }
    } else {
        original
    };
    let token = Token {
        profile: how.profile.to_string(),
        knobs: how.knobs.to_vec(),
        choices: shrunk.choices.clone(),
        scenario: how.scenario.to_string(),
    };
    let report = render_token(h, &token, how.full, how.steps_max)?;
    *found = Some(shrunk);
    Ok(Reported {
        report: Some(report),
        token: Some(token.to_string()),
        found_preemptions,
    })
}

/// Replays `token` and renders its report. The report depends on the
/// token alone, so `mmrace replay` prints it byte for byte.
pub(crate) fn render_token(
    h: &ScenarioHarness,
    token: &Token,
    full: bool,
    steps_max: u64,
) -> Result<String, CliError> {
    let traced = replay(h, token.choices.clone(), steps_max)?;
    let subject = format!("{}, {}", file_name(&token.scenario), token.profile);
    let knobs = if token.knobs.is_empty() {
        "-".to_string()
    } else {
        token
            .knobs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let origin = format!("profile={} knobs={knobs}", token.profile);
    let command = format!("mmrace replay '{token}'");
    let cx = ReportContext {
        subject: &subject,
        origin: &origin,
        replay: &command,
        full,
    };
    Ok(render(&cx, &traced))
}

/// A token's scenario path: as written if it exists from here, else
/// relative to the mmrace checkout the binary was built from (tokens name
/// seed scenarios relative to the repository root).
fn locate(path: &str) -> std::path::PathBuf {
    let p = Path::new(path);
    if p.exists() || p.is_absolute() {
        return p.to_path_buf();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(p);
    if root.exists() {
        root
    } else {
        p.to_path_buf()
    }
}

fn file_name(path: &str) -> &str {
    Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(path)
}

/// `mmrace replay TOKEN`: the report, byte for byte as `run` printed it.
pub fn replay_token(token: &str, full: bool, steps_max: u64) -> Result<(String, bool), CliError> {
    let token: Token = token
        .parse()
        .map_err(|e: String| CliError::Usage(format!("bad replay token: {e}")))?;
    let s = load(&locate(&token.scenario))?;
    let h = harness(s, &token.profile, &token.knobs)?;
    let report = render_token(&h, &token, full, steps_max)?;
    let found = !report.starts_with("no finding");
    Ok((report, found))
}
