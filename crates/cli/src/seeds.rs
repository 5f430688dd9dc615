//! `mmrace seeds`: every scenario in a directory under every profile its
//! `expect` lines name; passes only if every verdict matches.

use std::path::{Path, PathBuf};

use scenario::ExpectedVerdict;

use crate::run::{load, run, RunOptions, RunResult};
use crate::CliError;

/// One (scenario, profile) run with its expectation.
pub struct SeedRow {
    pub expected: ExpectedVerdict,
    pub result: RunResult,
    pub matches: bool,
}

impl SeedRow {
    pub fn expected_text(&self) -> String {
        match &self.expected {
            ExpectedVerdict::Clean => "clean".into(),
            ExpectedVerdict::Finding(s) => format!("finding \"{s}\""),
        }
    }
}

/// Whether a run's outcome is what the scenario expected: `finding "X"`
/// matches when X is in the finding's title or in a kernel message the
/// same execution printed later (a checker may see the corruption before
/// the kernel does, as INV-DECODE sees a wrong pte before `Bad page map`).
pub fn verdict_matches(expected: &ExpectedVerdict, result: &RunResult) -> bool {
    match (expected, &result.outcome.found) {
        (ExpectedVerdict::Clean, None) => true,
        (ExpectedVerdict::Finding(sub), Some(f)) => {
            f.finding.title.contains(sub.as_str())
                || f.finding.aftermath.iter().any(|l| l.contains(sub.as_str()))
        }
        _ => false,
    }
}

/// Which findings meet an expectation: `finding "X"` is met by some
/// execution reporting X, so the run goes on past other findings;
/// `clean` stops at any.
pub fn wanted(expected: &ExpectedVerdict) -> Option<explore::Wanted> {
    match expected {
        ExpectedVerdict::Clean => None,
        ExpectedVerdict::Finding(sub) => {
            let sub = sub.clone();
            Some(explore::Wanted(std::sync::Arc::new(move |f| {
                f.title.contains(sub.as_str())
                    || f.aftermath.iter().any(|l| l.contains(sub.as_str()))
            })))
        }
    }
}

/// The scenario files of a directory, sorted by name.
pub fn scenario_files(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        CliError::Usage(format!(
            "cannot read scenario directory {}: {e}",
            dir.display()
        ))
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "mmr"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(CliError::Usage(format!(
            "no .mmr scenarios in {}",
            dir.display()
        )));
    }
    Ok(files)
}

/// Runs every expectation of every scenario in `dir`; `each` sees each row
/// as soon as it is done (for printing progress).
pub fn seeds(
    dir: &Path,
    base: &RunOptions,
    mut each: impl FnMut(&SeedRow),
) -> Result<Vec<SeedRow>, CliError> {
    let mut rows = Vec::new();
    for file in scenario_files(dir)? {
        let s = load(&file)?;
        if s.expects.is_empty() {
            return Err(CliError::Usage(format!(
                "{}: no expect lines; seeds need expectations",
                file.display()
            )));
        }
        for e in &s.expects {
            if let Err(msg) = mm::profile(&e.profile) {
                return Err(CliError::Usage(s.diagnostic(e.span, msg).to_string()));
            }
            let mut knobs = base.knobs.clone();
            knobs.extend(e.knobs.iter().cloned());
            let opts = RunOptions {
                profile: e.profile.clone(),
                knobs,
                wanted: wanted(&e.verdict),
                ..base.clone()
            };
            let result = run(&file, &opts)?;
            let row = SeedRow {
                expected: e.verdict.clone(),
                matches: verdict_matches(&e.verdict, &result),
                result,
            };
            each(&row);
            rows.push(row);
        }
    }
    Ok(rows)
}

/// The number of (scenario, profile) rows `seeds` will run in `dir`.
pub fn count_rows(dir: &Path) -> Result<u64, CliError> {
    let mut rows = 0;
    for file in scenario_files(dir)? {
        rows += load(&file)?.expects.len() as u64;
    }
    Ok(rows)
}

/// The default seed directory: `scenarios/seeds` under the current
/// directory, else next to the workspace the binary was built from.
pub fn default_dir() -> PathBuf {
    let here = PathBuf::from("scenarios/seeds");
    if here.is_dir() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/seeds")
}
