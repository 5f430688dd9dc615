//! Seed 003: fault vs truncate/invalidate. Each 003 file's expectations
//! hold (Race I and Race N under 2.6.22, every file clean under 2.6.23,
//! each fix knob taken out of 2.6.23 bringing back its race); 2.6.23 is
//! verified within two preemptions; with the debug check on, the two
//! orders of Race I are told apart — the fault that maps the page between
//! the invalidation's `page_mapped()` test and the removal is the kernel
//! BUG, the one that maps it after the removal is an orphan only the
//! checkers see; and a report is the same on every replay.

mod common;

use std::sync::Arc;

use common::{check_expectations, harness, load, portfolio, seed_files};
use explore::{explore, Mode, VerifyConfig};
use scenario::Scenario;

/// Every 003 file of the seeds directory.
fn files() -> Vec<String> {
    let names = seed_files("003-");
    assert!(names.len() >= 5, "the 003 scenarios: {names:?}");
    names
}

#[test]
fn every_expectation_of_every_003_file_holds() {
    for name in files() {
        check_expectations(&name, 2000);
    }
}

fn verify(
    s: &Arc<Scenario>,
    profile: &str,
    knobs: &[(&str, &str)],
    stop: bool,
) -> explore::VerifyOutcome {
    let config = VerifyConfig {
        mode: Mode::Dpor,
        stop_at_finding: stop,
        ..VerifyConfig::new(2, 1_000_000, 200_000, 1)
    };
    let out = explore::verify(&harness(s, profile, knobs), &config).expect("no internal error");
    assert!(
        out.complete || (stop && out.found.is_some()),
        "verification did not complete"
    );
    out
}

#[test]
fn linux_2_6_23_is_verified_within_two_preemptions() {
    for name in files() {
        let s = load(&name);
        let out = verify(&s, "linux-2.6.23", &[], true);
        assert!(
            out.found.is_none(),
            "{name}: {:?}",
            out.found.map(|f| f.finding.title)
        );
    }
}

#[test]
fn the_debug_check_and_the_checkers_see_the_two_orders_of_race_i() {
    let s = load("003-invalidate-linear.mmr");
    let out = verify(&s, "linux-2.6.22", &[("remove_mapped_check", "on")], false);
    let titles: Vec<&String> = out.findings.iter().collect();
    assert!(
        titles
            .iter()
            .any(|t| t.contains("kernel BUG at mm/filemap.c:123!")),
        "the mapped-before-removal order: {titles:?}"
    );
    assert!(
        titles
            .iter()
            .any(|t| t.contains("INV-PC-COHERENT") && t.contains("not file 1's page 0")),
        "the orphan order: {titles:?}"
    );
    let plain = verify(&s, "linux-2.6.22", &[], false);
    assert!(
        !plain.findings.iter().any(|t| t.contains("kernel BUG")),
        "no BUG without the debug check: {:?}",
        plain.findings
    );
}

#[test]
fn a_race_i_report_is_the_same_on_every_replay() {
    let s = load("003-invalidate-linear.mmr");
    let h = harness(&s, "linux-2.6.22", &[]);
    let found = explore(&h, &portfolio(2000, 100_000))
        .unwrap()
        .found
        .expect("Race I is found");
    let render = || {
        let r = explore::replay(&h, found.choices.clone(), 100_000).unwrap();
        let f = r.finding.expect("the replay finds it again");
        (f.title, f.details)
    };
    let first = render();
    assert_eq!(first, render());
    assert!(
        first.1.iter().any(|d| d.contains("orphan")),
        "{:?}",
        first.1
    );
    assert!(
        first.1.iter().any(|d| d.contains("read() returns 0x")),
        "{:?}",
        first.1
    );
    assert!(
        first.1.iter().any(|d| d.contains("the store is lost")),
        "{:?}",
        first.1
    );
}

#[test]
fn regular_files_need_a_2_6_era_profile() {
    let s = load("003-invalidate-linear.mmr");
    let p = mm::profile("linux-6.5").unwrap();
    let err = scenario::interp::ScenarioHarness::new(s, p)
        .err()
        .expect("an input error");
    assert!(err.contains("regular files"), "{err}");
}

/// Which 003 files each fix knob of 2.6.23 brings a finding back to when
/// it alone is turned off, verified within two preemptions. d00806b18315
/// swapped the fault's `truncate_count` seqcount for the page lock, and
/// 2.6.23's `__do_fault` never had the seqcount: without the page lock
/// the fault is unprotected against invalidation (Race I, and Race N now
/// that nonlinear faults go through `__do_fault`) and truncation alike.
/// The other fixes each guard one race; the `while` loop of
/// `invalidate_unmap_under_lock` is equivalent to the single unmap once
/// the fault holds the page lock, and the debug check finds nothing the
/// fixed kernel does.
#[test]
fn each_2_6_23_fix_knob_brings_back_its_races() {
    let matrix: &[(&str, &str, &[&str])] = &[
        (
            "fault_locks_page",
            "off",
            &[
                "003-invalidate-linear.mmr",
                "003-sanity-truncate-linear.mmr",
                "003-variant-nonlinear-invalidate.mmr",
                "003-variant-private-cow-truncate.mmr",
            ],
        ),
        (
            "nonlinear_fault",
            "populate",
            &["003-variant-nonlinear-invalidate.mmr"],
        ),
        (
            "truncate_second_unmap",
            "off",
            &["003-variant-private-cow-truncate.mmr"],
        ),
        (
            "truncate_unmaps_locked_page",
            "off",
            &["003-sanity-truncate-linear.mmr"],
        ),
        ("invalidate_unmap_under_lock", "off", &[]),
        ("remove_mapped_check", "off", &[]),
    ];
    let files = files();
    for (knob, value, racy) in matrix {
        for name in &files {
            let s = load(name);
            let found = verify(&s, "linux-2.6.23", &[(knob, value)], true)
                .found
                .map(|f| f.finding.title);
            assert_eq!(
                found.is_some(),
                racy.contains(&name.as_str()),
                "{name} with {knob}={value}: {found:?}"
            );
        }
    }
}
