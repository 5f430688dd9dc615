//! Helpers shared by the seed tests: load a seed scenario and build its
//! harness under a profile with knob overrides.

use std::path::{Path, PathBuf};
use std::sync::Arc;

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
