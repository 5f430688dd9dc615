//! `--json`: one JSON object per run.

use serde::{Deserialize, Serialize};

use crate::run::RunResult;

#[derive(Serialize, Deserialize, Clone)]
pub struct FindingJson {
    pub title: String,
    pub kind: String,
    pub check: String,
    pub details: Vec<String>,
    pub also: Vec<String>,
    /// Kernel messages printed later in the same execution.
    pub aftermath: Vec<String>,
    pub replay: String,
    /// Index of the finding execution within the run.
    pub execution: u64,
    /// Preemptions of the reported (minimised) schedule.
    pub preemptions: u32,
    /// Preemptions of the schedule as the exploration found it.
    pub found_preemptions: Option<u32>,
}

#[derive(Serialize, Deserialize, Clone)]
pub struct RunJson {
    pub scenario: String,
    pub profile: String,
    pub knobs: Vec<String>,
    /// `K/N` for a shard of a run (`0/1`: the whole run), or the shards
    /// `mmrace merge` combined (`0,1,2/3`).
    #[serde(default = "whole")]
    pub shard: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matches: Option<bool>,
    pub verdict: String,
    pub executions: u64,
    /// Every schedule was explored (the scenario has exactly one).
    pub complete: bool,
    pub steps: u64,
    pub elapsed_ms: f64,
    pub marks: std::collections::BTreeMap<String, u64>,
    pub finding: Option<FindingJson>,
    /// The full text report of the finding (as `mmrace replay` prints it).
    pub report: Option<String>,
    /// What each statement did over the executions (a clean run's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statements: Vec<StatementJson>,
    /// Statements that failed the same way in every execution, unasked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One statement's outcomes over a run.
#[derive(Serialize, Deserialize, Clone)]
pub struct StatementJson {
    pub line: u32,
    pub col: u32,
    pub text: String,
    pub executions: u64,
    /// Each outcome (`ok`, `completed`, `faulted, fixed up`, `-ENOMEM`,
    /// `SIGSEGV (SEGV_ACCERR)`) with its count.
    pub outcomes: Vec<(String, u64)>,
    pub not_run: u64,
    pub expected: bool,
}

impl RunJson {
    pub fn of(r: &RunResult) -> RunJson {
        let o = &r.outcome;
        let finding = o
            .found
            .as_ref()
            .map(|f| FindingJson::of(f, r.token.as_deref(), r.found_preemptions));
        RunJson {
            scenario: r.scenario.clone(),
            profile: r.profile.clone(),
            knobs: r.knobs.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            shard: format!("{}/{}", r.shard.index, r.shard.count),
            expected: None,
            matches: None,
            verdict: if finding.is_some() {
                "finding"
            } else {
                "clean"
            }
            .to_string(),
            executions: o.executions,
            complete: o.complete,
            steps: o.steps,
            elapsed_ms: o.elapsed.as_secs_f64() * 1000.0,
            marks: o.marks.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            statements: statements_json(r.clean_statements()),
            warnings: warnings_of(&r.scenario, r.clean_statements()),
            finding,
            report: r.report.clone(),
        }
    }
}

/// Statement summaries as JSON.
pub fn statements_json(sts: &[scenario::outcome::StatementSummary]) -> Vec<StatementJson> {
    sts.iter()
        .map(|st| StatementJson {
            line: st.line,
            col: st.col,
            text: st.text.clone(),
            executions: st.executions,
            outcomes: st
                .outcomes
                .iter()
                .map(|(d, c)| (d.to_string(), *c))
                .collect(),
            not_run: st.not_run,
            expected: st.expected,
        })
        .collect()
}

/// The warnings of a clean run of `file`: statements that failed the same
/// way in every execution without the scenario saying it expects it.
pub fn warnings_of(file: &str, sts: &[scenario::outcome::StatementSummary]) -> Vec<String> {
    sts.iter().filter_map(|st| st.warning(file)).collect()
}

fn whole() -> String {
    "0/1".to_string()
}

/// `mmrace merge`: JSON lines of shard runs → one result per (scenario,
/// profile, knobs): the finding with the lowest execution index if any
/// shard found one (what the whole run would report), else clean with the
/// shards' executions summed. Errors name the bad line or a missing shard.
pub fn merge(text: &str) -> Result<Vec<RunJson>, String> {
    let mut groups: std::collections::BTreeMap<(String, String, Vec<String>), Vec<RunJson>> =
        std::collections::BTreeMap::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let r: RunJson = serde_json::from_str(line)
            .map_err(|e| format!("line {}: not a run result: {e}", i + 1))?;
        groups
            .entry((r.scenario.clone(), r.profile.clone(), r.knobs.clone()))
            .or_default()
            .push(r);
    }
    groups.into_values().map(merge_group).collect()
}

fn merge_group(runs: Vec<RunJson>) -> Result<RunJson, String> {
    let mut shards: Vec<(u64, u64)> = Vec::new();
    for r in &runs {
        let bad = || format!("{}: bad shard '{}'", r.scenario, r.shard);
        let (k, n) = r.shard.split_once('/').ok_or_else(bad)?;
        shards.push((k.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?));
    }
    let count = shards[0].1;
    if shards.iter().any(|s| s.1 != count) {
        return Err(format!(
            "{}: shards of different runs (N differs)",
            runs[0].scenario
        ));
    }
    let mut seen: Vec<u64> = shards.iter().map(|s| s.0).collect();
    seen.sort_unstable();
    seen.dedup();
    let first = runs
        .iter()
        .filter_map(|r| r.finding.as_ref().map(|f| (f.execution, r)))
        .min_by_key(|(e, _)| *e)
        .map(|(_, r)| r.clone());
    if first.is_none() && seen.len() as u64 != count {
        let missing: Vec<String> = (0..count)
            .filter(|k| !seen.contains(k))
            .map(|k| format!("{k}/{count}"))
            .collect();
        return Err(format!(
            "{} under {}: clean so far, but shards {} are missing",
            runs[0].scenario,
            runs[0].profile,
            missing.join(", ")
        ));
    }
    let mut merged = first.unwrap_or_else(|| runs[0].clone());
    merged.executions = runs.iter().map(|r| r.executions).sum();
    merged.steps = runs.iter().map(|r| r.steps).sum();
    merged.elapsed_ms = runs.iter().map(|r| r.elapsed_ms).sum();
    merged.shard = format!(
        "{}/{count}",
        seen.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut marks = std::collections::BTreeMap::new();
    for r in &runs {
        for (m, n) in &r.marks {
            *marks.entry(m.clone()).or_insert(0) += n;
        }
    }
    merged.marks = marks;
    if merged.finding.is_none() {
        merged.statements = merge_statements(&runs);
        merged.warnings = Vec::new();
    }
    Ok(merged)
}

/// The statement outcomes of clean shards, summed; a merged result
/// carries no warnings (each shard saw only part of the executions).
fn merge_statements(runs: &[RunJson]) -> Vec<StatementJson> {
    let mut merged: Vec<StatementJson> = Vec::new();
    for st in runs.iter().flat_map(|r| &r.statements) {
        let Some(m) = merged
            .iter_mut()
            .find(|m| (m.line, m.col) == (st.line, st.col))
        else {
            merged.push(st.clone());
            continue;
        };
        m.executions += st.executions;
        m.not_run += st.not_run;
        for (outcome, n) in &st.outcomes {
            match m.outcomes.iter_mut().find(|(o, _)| o == outcome) {
                Some((_, c)) => *c += n,
                None => m.outcomes.push((outcome.clone(), *n)),
            }
        }
    }
    merged.sort_by_key(|m| (m.line, m.col));
    merged
}

/// `conform --json`: one object for the whole run.
pub fn conform_json(r: &crate::conform::ConformReport) -> String {
    let divergence = r.divergence.as_ref().map(|d| {
        serde_json::json!({
            "sequence": d.sequence,
            "original_len": d.original_len,
            "original_op": d.original_op,
            "ops": d.ops.iter().map(|o| o.to_string()).collect::<Vec<_>>(),
            "op": d.op,
            "level": d.level,
            "model": d.model,
            "host": d.host,
        })
    });
    serde_json::json!({
        "profile": crate::conform::CONFORM_PROFILE,
        "knobs": r.knobs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "l2": r.l2,
        "calibration_note": r.calibration_note,
        "sequences": r.sequences,
        "ops": r.ops,
        "elapsed_ms": r.elapsed.as_secs_f64() * 1000.0,
        "ops_per_sec": r.ops_per_sec(),
        "divergence": divergence,
    })
    .to_string()
}

impl FindingJson {
    /// A found schedule with its token and its preemptions as found.
    pub fn of(f: &explore::Found, token: Option<&str>, found_preemptions: Option<u32>) -> Self {
        FindingJson {
            title: f.finding.title.clone(),
            kind: f.finding.kind.name().to_string(),
            check: f.finding.check.clone(),
            details: f.finding.details.clone(),
            also: f.finding.also.clone(),
            aftermath: f.finding.aftermath.clone(),
            replay: format!("mmrace replay '{}'", token.unwrap_or_default()),
            execution: f.index,
            preemptions: f.preemptions,
            found_preemptions,
        }
    }
}

/// `mmrace verify --json`: one object per (scenario, profile).
#[derive(Serialize, Deserialize)]
pub struct VerifyJson {
    pub scenario: String,
    pub profile: String,
    pub knobs: Vec<String>,
    /// The bound; null for an unbounded search.
    pub preemptions: Option<u32>,
    pub jobs: usize,
    /// `verified`, `finding` or `incomplete`.
    pub verdict: String,
    pub executions: u64,
    /// Scheduling points over all executions.
    pub steps: u64,
    /// Backtrack points the preemption bound cut off.
    pub pruned: u64,
    /// Executions abandoned by sleep sets (unbounded search only).
    pub sleep_blocked: u64,
    pub complete: bool,
    pub elapsed_ms: f64,
    pub finding: Option<FindingJson>,
    pub report: Option<String>,
    /// What each statement did over the executions (a verified run's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statements: Vec<StatementJson>,
    /// Statements that failed the same way in every execution, unasked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl VerifyJson {
    pub fn of(r: &crate::verify::VerifyResult) -> VerifyJson {
        let o = &r.outcome;
        let finding = o
            .found
            .as_ref()
            .map(|f| FindingJson::of(f, r.token.as_deref(), r.found_preemptions));
        VerifyJson {
            scenario: r.scenario.clone(),
            profile: r.profile.clone(),
            knobs: r.knobs.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            preemptions: (r.preemptions != explore::verify::UNBOUNDED).then_some(r.preemptions),
            jobs: r.jobs,
            verdict: r.verdict().to_string(),
            executions: o.executions,
            steps: o.steps,
            pruned: o.pruned,
            sleep_blocked: o.sleep_blocked,
            complete: o.complete,
            elapsed_ms: r.elapsed.as_secs_f64() * 1000.0,
            statements: statements_json(r.clean_statements()),
            warnings: warnings_of(&r.scenario, r.clean_statements()),
            finding,
            report: r.report.clone(),
        }
    }
}
