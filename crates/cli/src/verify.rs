//! `mmrace verify`: every interleaving of a scenario with at most K
//! preemptions, up to commuting independent steps (DPOR), or the first
//! finding, reported as `mmrace run` reports one.

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use explore::{VerifyConfig, VerifyOutcome};
use scenario::interp::CheckMode;

use crate::run::{harness, load, report_found, Reporting};
use crate::CliError;

/// Everything `verify` needs besides the scenario.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    pub profile: String,
    pub knobs: Vec<(String, String)>,
    pub preemptions: u32,
    pub jobs: usize,
    pub steps_max: u64,
    /// Stop, unverified, after this many executions.
    pub max_executions: u64,
    /// Injected allocation failures per execution (with fault injection).
    pub max_failures: u32,
    pub minimize: bool,
    pub full: bool,
    /// Executions and findings so far, for a progress bar.
    pub progress: Option<(Arc<AtomicU64>, Arc<AtomicU64>)>,
    /// What the checkers look at after a step (`--check`).
    pub check: CheckMode,
}

/// Executions `verify` runs before giving up when not told otherwise.
pub const DEFAULT_MAX_EXECUTIONS: u64 = 10_000_000;

impl VerifyOptions {
    pub fn new(profile: &str, preemptions: u32) -> Self {
        VerifyOptions {
            profile: profile.to_string(),
            knobs: Vec::new(),
            preemptions,
            jobs: 1,
            steps_max: crate::run::DEFAULT_STEPS_MAX,
            max_executions: DEFAULT_MAX_EXECUTIONS,
            max_failures: 1,
            minimize: true,
            full: false,
            progress: None,
            check: CheckMode::default(),
        }
    }
}

/// A finished verification.
pub struct VerifyResult {
    pub scenario: String,
    pub profile: String,
    pub knobs: Vec<(String, String)>,
    pub preemptions: u32,
    pub jobs: usize,
    pub outcome: VerifyOutcome,
    pub elapsed: Duration,
    /// For a finding: the report (rebuilt by replay) and its token.
    pub report: Option<String>,
    pub token: Option<String>,
    /// Preemptions of the found schedule before minimisation.
    pub found_preemptions: Option<u32>,
    /// What each statement did over the executions explored.
    pub statements: Vec<scenario::outcome::StatementSummary>,
}

impl VerifyResult {
    /// The statement summary of a verified run (empty for a finding or an
    /// incomplete search).
    pub fn clean_statements(&self) -> &[scenario::outcome::StatementSummary] {
        if self.verdict() != "verified" {
            return &[];
        }
        &self.statements
    }

    /// `verified`, `finding` or `incomplete`.
    pub fn verdict(&self) -> &'static str {
        match (&self.outcome.found, self.outcome.complete) {
            (Some(_), _) => "finding",
            (None, true) => "verified",
            (None, false) => "incomplete",
        }
    }

    /// "within K preemptions", or "with no preemption bound".
    pub fn bound(&self) -> String {
        match self.preemptions {
            explore::verify::UNBOUNDED => "with no preemption bound".to_string(),
            1 => "within 1 preemption".to_string(),
            k => format!("within {k} preemptions"),
        }
    }

    /// The summary line.
    pub fn summary(&self) -> String {
        let o = &self.outcome;
        let bound = self.bound();
        let secs = self.elapsed.as_secs_f64();
        match (&o.found, o.complete) {
            (Some(f), _) => format!(
                "{} under {}: finding in execution {} of the search {bound} ({} executions, {} scheduling points, {secs:.2} s)",
                self.scenario, self.profile, f.index, o.executions, o.steps
            ),
            (None, true) => format!(
                "{} under {}: verified {bound}: {} executions, {} scheduling points, complete ({secs:.2} s)",
                self.scenario, self.profile, o.executions, o.steps
            ),
            (None, false) => format!(
                "{} under {}: NOT verified: stopped after {} executions, {} scheduling points, incomplete ({secs:.2} s); raise --budget",
                self.scenario, self.profile, o.executions, o.steps
            ),
        }
    }
}

/// `mmrace verify`: DPOR over the scenario's interleavings.
pub fn verify(path: &Path, opts: &VerifyOptions) -> Result<VerifyResult, CliError> {
    if opts.jobs == 0 || opts.steps_max == 0 || opts.max_executions == 0 {
        return Err(CliError::Usage(
            "--jobs, --steps-max and --budget must be at least 1".into(),
        ));
    }
    let s = load(path)?;
    let h = harness(s, &opts.profile, &opts.knobs)?.with_check(opts.check);
    let mut config = VerifyConfig::new(
        opts.preemptions,
        opts.steps_max,
        opts.max_executions,
        opts.jobs,
    );
    config.max_failures = opts.max_failures;
    if let Some((executions, findings)) = &opts.progress {
        config.progress = Some(executions.clone());
        config.progress_findings = Some(findings.clone());
    }
    let started = Instant::now();
    let mut outcome = explore::verify(&h, &config)?;
    let elapsed = started.elapsed();
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
    Ok(VerifyResult {
        scenario,
        profile: opts.profile.clone(),
        knobs: opts.knobs.clone(),
        preemptions: opts.preemptions,
        jobs: opts.jobs,
        outcome,
        elapsed,
        report: reported.report,
        token: reported.token,
        found_preemptions: reported.found_preemptions,
        statements,
    })
}
