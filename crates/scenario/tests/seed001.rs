//! Seed 001 end to end on the library API: every expectation of every 001
//! scenario, replay of each finding, coverage marks proving the fixed
//! profiles met the race window, knob ablation, and determinism.

use explore::{explore, replay, RunConfig, RunOutcome, StrategyKind};
use scenario::interp::ScenarioHarness;
use scenario::ExpectedVerdict;

mod common;
use common::{harness, load};

fn run(h: &ScenarioHarness, budget: u64, seed: u64, jobs: usize) -> RunOutcome {
    let config = RunConfig {
        shard: explore::Shard::WHOLE,
        progress: None,
        strategy: StrategyKind::Portfolio,
        seed,
        budget,
        jobs,
        steps_max: 20_000,
        wanted: None,
    };
    explore(h, &config).expect("no internal error")
}

/// Coverage marks that show the scanner met a pmd another actor was
/// changing (the window of the 001 races).
const RACE_WINDOW_MARKS: &[&str] = &[
    "change_pmd_range: *pmd changed between the legacy reads",
    "change_pmd_range: *pmd changed between is_swap_pmd and pmd_devmap",
    "change_pmd_range: *pmd changed before pmd_read_atomic",
    "change_pmd_range: snapshot is a pmd migration entry",
    "change_huge_pmd: met a pmd migration entry (THP mid-migration)",
    "change_huge_pmd: pmd no longer huge, fall through",
];

/// Budget for buggy profiles: the files' own budget (findings come early).
const FIND_BUDGET: u64 = 100_000;
/// Budget for fixed profiles in tests (the `seeds` command runs the files'
/// larger budgets).
const CLEAN_BUDGET: u64 = 2_000;

#[test]
fn every_001_expectation_holds_and_findings_replay() {
    let mut checked = 0;
    for name in [
        "001-bad-pmd.mmr",
        "001-variant-madv-dontneed.mmr",
        "001-variant-unrelated-thread.mmr",
    ] {
        let s = load(name);
        for e in &s.expects {
            let h = harness(&s, &e.profile, &[]);
            match &e.verdict {
                ExpectedVerdict::Finding(title) => {
                    let out = run(&h, FIND_BUDGET, 0, 1);
                    let found = out
                        .found
                        .unwrap_or_else(|| panic!("{name} {}: no finding", e.profile));
                    assert!(
                        found.finding.title.contains(title.as_str()),
                        "{name} {}: {}",
                        e.profile,
                        found.finding.title
                    );
                    let again = replay(&h, found.choices.clone(), 20_000).unwrap();
                    assert_eq!(
                        again.finding.map(|f| f.title),
                        Some(found.finding.title),
                        "{name} replay"
                    );
                }
                ExpectedVerdict::Clean => {
                    let out = run(&h, CLEAN_BUDGET, 0, 1);
                    assert!(
                        out.found.is_none(),
                        "{name} {}: {:?}",
                        e.profile,
                        out.found.map(|f| f.finding.title)
                    );
                    assert_eq!(out.executions, CLEAN_BUDGET);
                    // A clean run proves nothing unless the scanner met the
                    // pmd while another actor changed it (DESIGN §7).
                    assert!(
                        out.marks.keys().any(|m| RACE_WINDOW_MARKS.contains(m)),
                        "{name} {}: race window never reached: {:?}",
                        e.profile,
                        out.marks
                    );
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 10, "every expectation of the three 001 files");
}

#[test]
fn fixed_profiles_reach_the_race_window() {
    // A clean run proves nothing unless the scanner met the THP while it
    // was being migrated: the mark says it did.
    let s = load("001-bad-pmd.mmr");
    for profile in ["linux-6.5", "linux-6.1.160"] {
        let out = run(&harness(&s, profile, &[]), CLEAN_BUDGET, 0, 1);
        assert!(out.found.is_none());
        let hits = out
            .marks
            .get("change_pmd_range: snapshot is a pmd migration entry")
            .copied()
            .unwrap_or(0);
        assert!(
            hits > 0,
            "{profile}: race window never reached: {:?}",
            out.marks
        );
    }
}

#[test]
fn turning_off_one_fix_brings_back_its_bug() {
    let s = load("001-bad-pmd.mmr");
    // 670ddd8cdcbd off (pmd checks back to 6.1's) under an otherwise fixed kernel.
    let h = harness(&s, "linux-6.5", &[("pmd_check", "unless_trans_huge")]);
    let f = run(&h, FIND_BUDGET, 0, 1).found.expect("bad pmd is back");
    assert!(f.finding.title.contains("bad pmd"), "{}", f.finding.title);
    // Without THP migration there is no migration entry to trip over.
    let h = harness(&s, "linux-6.1.159", &[("thp_migration", "off")]);
    assert!(run(&h, CLEAN_BUDGET, 0, 1).found.is_none());

    let v = load("001-variant-madv-dontneed.mmr");
    // Fedor Pchelkin's proposed fix (restore pmd_trans_unstable()) on 6.1.160.
    let h = harness(
        &v,
        "linux-6.1.160",
        &[("change_pte_range_unstable_check", "on")],
    );
    let out = run(&h, CLEAN_BUDGET, 0, 1);
    assert!(
        out.found.is_none(),
        "{:?}",
        out.found.map(|f| f.finding.title)
    );
    // Non-split page-table locks: the pte lock is mm->page_table_lock, so
    // the none pmd no longer yields a NULL lock pointer.
    let h = harness(&v, "linux-6.1.160", &[("split_ptlocks", "off")]);
    let out = run(&h, CLEAN_BUDGET, 0, 1);
    assert!(
        out.found
            .as_ref()
            .is_none_or(|f| !f.finding.title.contains("NULL")),
        "{:?}",
        out.found.map(|f| f.finding.title)
    );
}

#[test]
fn findings_do_not_depend_on_jobs_and_repeat() {
    let s = load("001-bad-pmd.mmr");
    let h = harness(&s, "linux-6.1.159", &[]);
    for seed in [0, 1, 2] {
        let one = run(&h, FIND_BUDGET, seed, 1).found.expect("finding");
        let again = run(&h, FIND_BUDGET, seed, 1).found.expect("finding");
        let two = run(&h, FIND_BUDGET, seed, 2).found.expect("finding");
        assert_eq!((one.index, &one.choices), (again.index, &again.choices));
        assert_eq!(
            (one.index, &one.choices),
            (two.index, &two.choices),
            "seed {seed}"
        );
        let a = replay(&h, one.choices.clone(), 20_000).unwrap();
        let b = replay(&h, one.choices.clone(), 20_000).unwrap();
        assert_eq!(a.trace, b.trace, "same token, same trace");
    }
}
