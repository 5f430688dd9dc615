//! Helpers shared by the scenario tests: load a seed scenario, build a
//! harness under a profile with knob overrides, and the usual run.

// Each test crate that includes this module uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use explore::{RunConfig, StrategyKind};
use scenario::interp::ScenarioHarness;
use scenario::Scenario;

pub fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/seeds")
}

pub fn load(name: &str) -> Arc<Scenario> {
    Arc::new(scenario::parse_file(&seeds_dir().join(name)).expect("seed scenario parses"))
}

pub fn harness(s: &Arc<Scenario>, profile: &str, knobs: &[(&str, &str)]) -> ScenarioHarness {
    let knobs: Vec<(String, String)> = knobs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let p = mm::profile(profile)
        .unwrap()
        .with_overrides(&knobs)
        .unwrap();
    ScenarioHarness::new(s.clone(), p).unwrap()
}

/// A portfolio run from seed 0 on one worker.
pub fn portfolio(budget: u64, steps_max: u64) -> RunConfig {
    RunConfig {
        shard: explore::Shard::WHOLE,
        progress: None,
        strategy: StrategyKind::Portfolio,
        seed: 0,
        budget,
        jobs: 1,
        steps_max,
        wanted: None,
    }
}
