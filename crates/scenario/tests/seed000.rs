//! Seed 000 end to end on the library API: every expectation of every 000
//! scenario (the finding in the title or in the kernel's later messages),
//! the kernel's own lines in the 3.12.7-xen report, coverage marks proving
//! the clean profiles met the PROT_NONE/NUMA pte, and knob ablations.

use std::sync::Arc;

use explore::report::{render, ReportContext};
use explore::{explore, replay, Finding, RunOutcome};
use scenario::interp::ScenarioHarness;
use scenario::{ExpectedVerdict, Scenario};

mod common;
use common::{harness, load, portfolio};

fn run(h: &ScenarioHarness) -> RunOutcome {
    explore(h, &portfolio(2_000, 20_000)).expect("no internal error")
}

/// The finding's title or any later kernel line contains `text`.
fn says(f: &Finding, text: &str) -> bool {
    f.title.contains(text) || f.aftermath.iter().any(|l| l.contains(text))
}

const SCENARIOS: [&str; 3] = [
    "000-bad-page-map.mmr",
    "000-variant-hvm.mmr",
    "000-variant-numa-scan.mmr",
];

/// Marks showing a clean run met an entry whose encoding is at stake.
const WINDOW_MARKS: &[&str] = &[
    "change_pte_range: mprotect of a non-present PROT_NONE/NUMA pte",
    "zap_pte_range: unmapping a non-present PROT_NONE/NUMA pte",
];

#[test]
fn every_000_expectation_holds_and_findings_replay() {
    let mut checked = 0;
    for name in SCENARIOS {
        let s = load(name);
        for e in &s.expects {
            let h = harness(&s, &e.profile, &[]);
            let out = run(&h);
            match &e.verdict {
                ExpectedVerdict::Finding(text) => {
                    let found = out
                        .found
                        .unwrap_or_else(|| panic!("{name} {}: no finding", e.profile));
                    assert!(
                        says(&found.finding, text),
                        "{name} {}: {:?}",
                        e.profile,
                        found.finding
                    );
                    let again = replay(&h, found.choices.clone(), 20_000).unwrap();
                    assert_eq!(
                        again.finding.as_ref(),
                        Some(&found.finding),
                        "{name} replay"
                    );
                }
                ExpectedVerdict::Clean => {
                    assert!(
                        out.found.is_none(),
                        "{name} {}: {:?}",
                        e.profile,
                        out.found.map(|f| f.finding.title)
                    );
                    assert!(
                        out.marks.keys().any(|m| WINDOW_MARKS.contains(m)),
                        "{name} {}: clean without meeting the entry: {:?}",
                        e.profile,
                        out.marks
                    );
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 13, "every expectation of the 000 scenarios ran");
}

#[test]
fn the_single_thread_test_case_is_explored_completely() {
    let s = load("000-bad-page-map.mmr");
    for profile in ["linux-3.12.7", "linux-3.14.5-xen"] {
        let out = run(&harness(&s, profile, &[]));
        assert!(out.complete && out.executions == 1, "{profile}");
    }
}

fn report(h: &ScenarioHarness, choices: Vec<u32>) -> String {
    let traced = replay(h, choices, 20_000).unwrap();
    let cx = ReportContext {
        subject: "000",
        origin: "test",
        replay: "mmrace replay ...",
        full: false,
    };
    render(&cx, &traced)
}

#[test]
fn the_3_12_7_xen_report_has_the_kernels_lines_and_both_readings_of_the_frame() {
    let s = load("000-bad-page-map.mmr");
    let h = harness(&s, "linux-3.12.7-xen", &[]);
    let found = run(&h).found.expect("3.12.7-xen breaks");
    // The checker sees the wrong pte at mprotect(PROT_READ), before munmap.
    assert!(
        found.finding.title.starts_with("INV-DECODE"),
        "{}",
        found.finding.title
    );
    let text = report(&h, found.choices);
    for line in [
        "BUG: Bad page map in process test  pte:",
        "count:0 mapcount:-1 mapping:          (null) index:0x0",
        "page flags: 0x14(referenced|dirty)",
        "vm_flags:00100071",
        "BUG: Bad rss-counter state mm:ffff880040000400 idx:0 val:-1",
        "BUG: Bad rss-counter state mm:ffff880040000400 idx:1 val:1",
        "read as an MFN (m2p) it is pfn",
        "read as a PFN it is pfn",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

#[test]
fn the_rejected_fix_hides_the_symptom_but_breaks_the_abi() {
    for name in ["000-bad-page-map.mmr", "000-variant-numa-scan.mmr"] {
        let s = load(name);
        let found = run(&harness(&s, "linux-3.13-xen-a9c8e4beeeb6", &[]))
            .found
            .expect("a9c8e4beeeb6 leaves machine frames in non-present ptes");
        assert!(found.finding.title.starts_with("INV-XEN-ABI"), "{name}");
        assert!(
            found.finding.aftermath.is_empty(),
            "{name}: the kernel itself notices nothing: {:?}",
            found.finding.aftermath
        );
    }
}

#[test]
fn ablation_turning_off_only_the_pv_friendly_helpers_brings_the_bug_back() {
    for name in ["000-bad-page-map.mmr", "000-variant-numa-scan.mmr"] {
        let s = load(name);
        assert!(run(&harness(&s, "linux-3.14.5-xen", &[])).found.is_none());
        let found = run(&harness(
            &s,
            "linux-3.14.5-xen",
            &[("numa_helpers_pv_ops", "off")],
        ))
        .found
        .unwrap_or_else(|| panic!("{name}: native NUMA helpers must break again"));
        assert!(
            says(&found.finding, "Bad page map"),
            "{name}: {:?}",
            found.finding
        );
    }
}

#[test]
fn other_ablations_match_the_history() {
    let test_case = load("000-bad-page-map.mmr");
    let scan = load("000-variant-numa-scan.mmr");
    let found = |s: &Arc<Scenario>, profile: &str, knobs: &[(&str, &str)]| {
        run(&harness(s, profile, knobs)).found.is_some()
    };
    // Without 1667918b6483 mprotect never calls pte_mknonnuma (3.12.6).
    assert!(!found(
        &test_case,
        "linux-3.12.7-xen",
        &[("mprotect_clears_numa", "off")]
    ));
    // c46a7c817e66's layout alone closes the mprotect trigger (a PROT_NONE
    // pte is no longer pte_numa) but not the scanner's native pte_mknuma:
    // INV-XEN-ABI sees the machine frame in the hinting pte (bit 9 is
    // _PAGE_NUMA there, not a special pte to skip).
    assert!(!found(
        &test_case,
        "linux-3.12.7-xen",
        &[("pte_layout", "v3_16")]
    ));
    let v3_16 = &[("pte_layout", "v3_16")];
    let xen = run(&harness(&scan, "linux-3.12.7-xen", v3_16))
        .found
        .expect("the scanner's native pte_mknuma");
    assert!(
        xen.finding.title.starts_with("INV-XEN-ABI"),
        "{:?}",
        xen.finding
    );
    // On bare metal, hinting ptes on bit 9 are normal pages to the
    // checkers and to vm_normal_page().
    assert!(!found(&scan, "linux-3.12.7", v3_16));
    // The same kernels on native pv_mmu_ops never break.
    assert!(!found(&scan, "linux-3.12.6-xen", &[("platform", "native")]));
}

#[test]
fn xen_pv_needs_a_3x_or_2_6_profile_and_3x_needs_thp_off() {
    let s = load("000-bad-page-map.mmr");
    let p = mm::profile("linux-6.5")
        .unwrap()
        .with_overrides(&[("platform".into(), "xen-pv".into())])
        .unwrap();
    let e = ScenarioHarness::new(s, p).err().expect("refused");
    assert!(
        e.contains("Xen PV is modelled with the 3.x-era and 2.6-era pte paths only"),
        "{e}"
    );
    let thp = load("001-bad-pmd.mmr");
    let e = ScenarioHarness::new(thp, mm::profile("linux-3.12.7").unwrap())
        .err()
        .expect("refused");
    assert!(
        e.contains("THP is not modelled for the 3.x-era pte paths"),
        "{e}"
    );
}
