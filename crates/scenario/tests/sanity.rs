//! Model sanity: scenarios in `scenarios/sanity/` exercise paths around the
//! seeds (pte-level NUMA migration, MADV_DONTNEED racing with writes, two
//! processes). A false positive here means the model or its ghost state is
//! wrong, not the kernel.

use std::path::Path;
use std::sync::Arc;

use explore::{explore, RunConfig, StrategyKind};
use scenario::interp::ScenarioHarness;
use scenario::ExpectedVerdict;

/// Fixed-profile runs use a reduced budget in tests; `mmrace seeds --dir
/// scenarios/sanity` runs the files' own.
const CLEAN_BUDGET: u64 = 1_500;

#[test]
fn sanity_scenarios_meet_their_expectations() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/sanity");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 3,
        "sanity scenarios missing in {}",
        dir.display()
    );
    for file in files {
        let s = Arc::new(scenario::parse_file(&file).unwrap());
        assert!(!s.expects.is_empty(), "{}", file.display());
        for e in &s.expects {
            let h = ScenarioHarness::new(s.clone(), mm::profile(&e.profile).unwrap()).unwrap();
            let budget = match e.verdict {
                ExpectedVerdict::Clean => CLEAN_BUDGET,
                ExpectedVerdict::Finding(_) => s.budget.unwrap_or(20_000),
            };
            let config = RunConfig {
                shard: explore::Shard::WHOLE,
                progress: None,
                strategy: StrategyKind::Portfolio,
                seed: 0,
                budget,
                jobs: 1,
                steps_max: 200_000,
            };
            let out = explore(&h, &config).unwrap();
            let title = out.found.as_ref().map(|f| f.finding.title.clone());
            match &e.verdict {
                ExpectedVerdict::Clean => {
                    assert_eq!(title, None, "{} {}", file.display(), e.profile)
                }
                ExpectedVerdict::Finding(sub) => {
                    assert!(
                        title.as_deref().is_some_and(|t| t.contains(sub.as_str())),
                        "{} {}: {title:?}",
                        file.display(),
                        e.profile
                    )
                }
            }
        }
    }
}

/// With page-allocation fault injection on, the fixed kernel stays clean
/// on every sanity and seed scenario: the model's error paths
/// (VM_FAULT_OOM, THP fallback, failed migration) are sound.
#[test]
fn fault_injection_finds_nothing_in_the_fixed_kernel() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    for dir in ["sanity", "seeds"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            let s = Arc::new(scenario::parse_file(&file).unwrap());
            let knobs = [("fail_page_alloc".to_string(), "on".to_string())];
            let p = mm::profile("linux-6.5")
                .unwrap()
                .with_overrides(&knobs)
                .unwrap();
            let h = ScenarioHarness::new(s, p).unwrap();
            let config = RunConfig {
                shard: explore::Shard::WHOLE,
                progress: None,
                strategy: StrategyKind::Portfolio,
                seed: 0,
                budget: 300,
                jobs: 1,
                steps_max: 200_000,
            };
            let out = explore(&h, &config).unwrap();
            assert!(
                out.found.is_none(),
                "{}: {:?}",
                file.display(),
                out.found.map(|f| f.finding.title)
            );
            assert!(
                out.marks.contains_key("alloc_pages: injected failure"),
                "{}: no failure injected",
                file.display()
            );
        }
    }
}
