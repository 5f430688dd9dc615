//! Seed 004: Xen PV pinning against reclaim's direct pte stores. Each 004
//! file's expectations hold (both windows oops under 2.6.23-rc9-xen, each
//! fix and each ablation as expected); the exit window is verified within
//! two preemptions under 2.6.24-xen; the oops has the seed's lines; and
//! INV-LOCKSET reports the broken rule on a schedule where no store lands
//! in the window.

mod common;

use std::sync::Arc;

use common::{check_expectations, harness, load, portfolio, seed_files};
use explore::{explore, FindingKind, Mode, VerifyConfig};

fn files() -> Vec<String> {
    let names = seed_files("004-");
    assert!(names.len() >= 2, "the 004 scenarios: {names:?}");
    names
}

#[test]
fn every_expectation_of_every_004_file_holds() {
    for name in files() {
        check_expectations(&name, 3000);
    }
}

#[test]
fn the_exit_window_is_verified_within_two_preemptions_under_2_6_24() {
    let s = load("004-exit-page-referenced.mmr");
    let config = VerifyConfig {
        mode: Mode::Dpor,
        ..VerifyConfig::new(2, 1_000_000, 200_000, 1)
    };
    let out = explore::verify(&harness(&s, "linux-2.6.24-xen", &[]), &config).unwrap();
    assert!(
        out.complete && out.found.is_none(),
        "{:?}",
        out.found.map(|f| f.finding.title)
    );
}

#[test]
fn the_oops_is_the_seeds() {
    let s = load("004-exit-page-referenced.mmr");
    let mut config = portfolio(3000, 200_000);
    config.wanted = Some(explore::Wanted(Arc::new(|f| {
        f.title.contains("paging request")
    })));
    let f = explore(&harness(&s, "linux-2.6.23-rc9-xen", &[]), &config)
        .unwrap()
        .found
        .expect("the exit window")
        .finding;
    assert_eq!(f.kind, FindingKind::Kernel);
    assert!(f
        .title
        .starts_with("BUG: unable to handle kernel paging request at virtual address "));
    assert!(
        f.details.iter().any(|d| d == "Oops: 0003 [#1] PREEMPT SMP"),
        "{:?}",
        f.details
    );
    assert!(
        f.details
            .iter()
            .any(|d| d == "EIP is at page_referenced_one"),
        "{:?}",
        f.details
    );
}

/// The schedule with no preemption: cc1 exits whole, then reclaim runs —
/// no store lands in the window, and INV-LOCKSET still reports that the
/// unpin changed a PTE page's Xen state without the lock rmap stores
/// under.
#[test]
fn inv_lockset_fires_where_no_store_lands_in_the_window() {
    let s = load("004-exit-page-referenced.mmr");
    let h = harness(&s, "linux-2.6.23-rc9-xen", &[]);
    let no_preemption = VerifyConfig::new(0, 200_000, 100, 1);
    let found = explore::verify(&h, &no_preemption)
        .unwrap()
        .found
        .expect("a finding");
    assert_eq!(found.preemptions, 0);
    let f = found.finding;
    assert_eq!(f.check, "INV-LOCKSET");
    assert!(
        f.title.contains("MMUEXT_UNPIN_TABLE") && f.title.contains("without its split pte lock"),
        "{}",
        f.title
    );
    assert!(
        !f.aftermath.iter().any(|l| l.contains("paging request")),
        "{:?}",
        f.aftermath
    );
    // Without split pte locks the pinner holds the page's lock: no breach.
    let fixed = harness(&s, "linux-2.6.23-xen", &[]);
    assert!(explore::verify(&fixed, &no_preemption)
        .unwrap()
        .found
        .is_none());
}
