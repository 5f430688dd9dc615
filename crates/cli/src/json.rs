//! `--json`: one JSON object per run.

use serde::Serialize;

use crate::run::RunResult;

#[derive(Serialize)]
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

#[derive(Serialize)]
pub struct RunJson {
    pub scenario: String,
    pub profile: String,
    pub knobs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matches: Option<bool>,
    pub verdict: &'static str,
    pub executions: u64,
    /// Every schedule was explored (the scenario has exactly one).
    pub complete: bool,
    pub steps: u64,
    pub elapsed_ms: f64,
    pub marks: std::collections::BTreeMap<String, u64>,
    pub finding: Option<FindingJson>,
    /// The full text report of the finding (as `mmrace replay` prints it).
    pub report: Option<String>,
}

impl RunJson {
    pub fn of(r: &RunResult) -> RunJson {
        let o = &r.outcome;
        let finding = o.found.as_ref().map(|f| FindingJson {
            title: f.finding.title.clone(),
            kind: f.finding.kind.name().to_string(),
            check: f.finding.check.clone(),
            details: f.finding.details.clone(),
            also: f.finding.also.clone(),
            aftermath: f.finding.aftermath.clone(),
            replay: format!("mmrace replay '{}'", r.token.clone().unwrap_or_default()),
            execution: f.index,
            preemptions: f.preemptions,
            found_preemptions: r.found_preemptions,
        });
        RunJson {
            scenario: r.scenario.clone(),
            profile: r.profile.clone(),
            knobs: r.knobs.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            expected: None,
            matches: None,
            verdict: if finding.is_some() {
                "finding"
            } else {
                "clean"
            },
            executions: o.executions,
            complete: o.complete,
            steps: o.steps,
            elapsed_ms: o.elapsed.as_secs_f64() * 1000.0,
            marks: o.marks.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            finding,
            report: r.report.clone(),
        }
    }
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
