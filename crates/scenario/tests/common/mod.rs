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

/// The seed files whose names start with `prefix` (`"003-"`), sorted.
pub fn seed_files(prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(seeds_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix) && n.ends_with(".mmr"))
        .collect();
    names.sort();
    names
}

/// Runs every `expect` line of seed file `name` (its profile, its knobs,
/// looking for its finding as `seeds` does) with `budget` executions and
/// asserts the verdict.
pub fn check_expectations(name: &str, budget: u64) {
    use scenario::ExpectedVerdict;
    let s = load(name);
    for e in &s.expects {
        let knobs: Vec<(&str, &str)> = e
            .knobs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let h = harness(&s, &e.profile, &knobs);
        let mut config = portfolio(budget, 200_000);
        if let ExpectedVerdict::Finding(sub) = &e.verdict {
            let sub = sub.clone();
            config.wanted = Some(explore::Wanted(Arc::new(move |f| {
                f.title.contains(sub.as_str())
            })));
        }
        let got = explore::explore(&h, &config)
            .expect("no internal error")
            .found
            .map(|f| f.finding.title);
        match &e.verdict {
            ExpectedVerdict::Clean => {
                assert!(got.is_none(), "{name} {} {:?}: {got:?}", e.profile, e.knobs)
            }
            ExpectedVerdict::Finding(sub) => assert!(
                got.as_deref().is_some_and(|t| t.contains(sub.as_str())),
                "{name} {} {:?}: expected {sub:?}, got {got:?}",
                e.profile,
                e.knobs
            ),
        }
    }
}
