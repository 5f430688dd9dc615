//! Model sanity: scenarios in `scenarios/sanity/` exercise paths around the
//! seeds (pte-level NUMA migration, MADV_DONTNEED racing with writes, two
//! processes). A false positive here means the model or its ghost state is
//! wrong, not the kernel.

use std::path::Path;
use std::sync::Arc;

use explore::explore;
use scenario::interp::ScenarioHarness;
use scenario::ExpectedVerdict;

mod common;
use common::{harness, portfolio};

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
            let out = explore(&h, &portfolio(budget, 200_000)).unwrap();
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
/// on every sanity, seed and example scenario: the model's error paths
/// (VM_FAULT_OOM, THP fallback, failed migration, a fork that fails with
/// -ENOMEM, a swap-in that cannot allocate its page) are sound.
#[test]
fn fault_injection_finds_nothing_in_the_fixed_kernel() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    for dir in ["sanity", "seeds", "examples"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            let s = Arc::new(scenario::parse_file(&file).unwrap());
            // Scenarios that need the 2.6.34-era model (swap, files) run
            // under its fixed kernel, 2.6.36, with the v5.18 zap of COW
            // copies' swap entries (truncate-swapped-cow).
            let modern = mm::profile("linux-6.5").unwrap();
            let fixed = if ScenarioHarness::new(s.clone(), modern).is_ok() {
                "linux-6.5"
            } else {
                "linux-2.6.36"
            };
            let h = harness(
                &s,
                fixed,
                &[("fail_page_alloc", "on"), ("zap_cow_swap_entries", "on")],
            );
            let out = explore(&h, &portfolio(300, 200_000)).unwrap();
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
