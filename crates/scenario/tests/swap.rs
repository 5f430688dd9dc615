//! What `ScenarioHarness::new` accepts for the 2.6.34 era: `reclaim()` and
//! `hibernate()` only where swap is modelled, no THP there, Xen PV with the
//! 2.6-era pinning (seed 004's model), and `machine failslab` turning on
//! `fail_slab_alloc` for every profile.
//! Nothing here runs reclaim itself.

use std::sync::Arc;

use scenario::interp::ScenarioHarness;
use scenario::Scenario;

fn parse(name: &str, src: &str) -> Arc<Scenario> {
    Arc::new(scenario::parse_str(name, src).unwrap_or_else(|e| panic!("{e}")))
}

/// A process `a` mapping and writing page `p`, then running `thread`.
fn with_page(machine: &str, thread: &str) -> String {
    format!(
        "{machine}\nprocess a {{\n  setup {{ p = mmap(NULL, 4K, PROT_READ|PROT_WRITE, \
         MAP_PRIVATE|MAP_ANONYMOUS); write(p, 1) }}\n  thread t {{ {thread} }}\n}}\n"
    )
}

fn refusal(s: &Arc<Scenario>, profile: &str) -> String {
    match ScenarioHarness::new(s.clone(), mm::profile(profile).unwrap()) {
        Ok(_) => panic!("{} accepted under {profile}", s.file),
        Err(e) => e,
    }
}

fn accepted(s: &Arc<Scenario>, profile: &str) -> ScenarioHarness {
    ScenarioHarness::new(s.clone(), mm::profile(profile).unwrap())
        .unwrap_or_else(|e| panic!("{} refused under {profile}: {e}", s.file))
}

#[test]
fn reclaim_outside_the_2_6_34_era_is_an_error_naming_file_and_profile() {
    let s = parse("swap/reclaim.mmr", &with_page("", "reclaim(p, 4K)"));
    assert_eq!(
        refusal(&s, "linux-6.5"),
        "swap/reclaim.mmr: reclaim()/hibernate() need swap, which is modelled for the 2.6.34 \
         era only (profile linux-6.5 has pte_layout=v4_19); use a linux-2.6.34-* or \
         linux-2.6.36 profile"
    );
    let e = refusal(&s, "linux-3.12.7");
    assert!(
        e.contains("(profile linux-3.12.7 has pte_layout=v3_12)"),
        "{e}"
    );
    for profile in [
        "linux-2.6.34-rc3",
        "linux-2.6.34-rc4",
        "linux-2.6.34-rc5",
        "linux-2.6.36",
    ] {
        accepted(&s, profile);
    }
    // The same scenario without reclaim runs anywhere.
    accepted(&parse("plain.mmr", &with_page("", "read(p)")), "linux-6.5");
}

#[test]
fn hibernate_in_a_grandchild_counts_too() {
    let src = "process a {\n  setup { p = mmap(NULL, 4K, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS); \
               c = fork() }\n  thread t { read(p) }\n  child c {\n    setup { g = fork() }\n    \
               child g { thread u { hibernate() } }\n  }\n}\n";
    let s = parse("swap/grandchild.mmr", src);
    let e = refusal(&s, "linux-6.1.159");
    assert!(
        e.starts_with("swap/grandchild.mmr: reclaim()/hibernate() need swap"),
        "{e}"
    );
    accepted(&s, "linux-2.6.36");
    // In a setup, as well.
    let setup = parse(
        "swap/setup.mmr",
        "process a {\n  setup { hibernate() }\n  thread t { exit() }\n}\n",
    );
    assert!(refusal(&setup, "linux-5.5").contains("profile linux-5.5 has pte_layout=v4_19"));
}

#[test]
fn numa_scan_is_an_error_in_the_2_6_era_at_its_line_and_column() {
    let s = parse("numa/old.mmr", &with_page("", "read(p); numa_scan(p, 4K)"));
    let e = refusal(&s, "linux-2.6.23");
    assert!(e.contains("numa/old.mmr:4:"), "{e}");
    assert!(
        e.contains(
            "numa_scan(): NUMA balancing came in v3.8, and profile linux-2.6.23 models the 2.6 \
             era (pte_layout=v2_6_34)"
        ),
        "{e}"
    );
    assert!(refusal(&s, "linux-2.6.34-rc4").contains("NUMA balancing came in v3.8"));
    accepted(&s, "linux-3.12.7");
    accepted(&s, "linux-6.5");
}

#[test]
fn thp_is_an_error_in_the_2_6_34_era() {
    let s = parse("swap/thp.mmr", &with_page("machine thp=always", "read(p)"));
    assert_eq!(
        refusal(&s, "linux-2.6.34-rc3"),
        "swap/thp.mmr: THP is not modelled for the 2.6.34 era (profile linux-2.6.34-rc3; THP \
         came in 2.6.38); use thp=never"
    );
    let madvise = parse(
        "swap/madv.mmr",
        &with_page("machine thp=madvise", "read(p)"),
    );
    assert!(refusal(&madvise, "linux-2.6.36").contains("THP is not modelled for the 2.6.34 era"));
    // The 6.x profiles have THP.
    accepted(&s, "linux-6.5");
}

#[test]
fn xen_pv_runs_in_the_2_6_34_era_and_not_in_the_6_x_era() {
    let s = parse(
        "swap/xen.mmr",
        &with_page("machine xen-pv", "reclaim(p, 4K)"),
    );
    let h = accepted(&s, "linux-2.6.34-rc4");
    assert!(h.profile().knobs.platform == mm::profile::Platform::XenPv);
    let plain = parse("swap/xen-read.mmr", &with_page("machine xen-pv", "read(p)"));
    assert_eq!(
        refusal(&plain, "linux-6.5"),
        "swap/xen-read.mmr: Xen PV is modelled with the 3.x-era and 2.6-era pte paths only; \
         profile linux-6.5 has pte_layout=v4_19 (use a linux-3.* or linux-2.6.2x-xen profile, \
         or --knob pte_layout=v3_12)"
    );
}

#[test]
fn machine_failslab_turns_on_fail_slab_alloc_for_every_profile() {
    let with = parse(
        "swap/failslab.mmr",
        &with_page("machine failslab native", "read(p)"),
    );
    let without = parse("swap/plain.mmr", &with_page("machine native", "read(p)"));
    for profile in mm::profile::profiles() {
        assert!(!profile.knobs.fail_slab_alloc, "{}", profile.name);
        let name = profile.name;
        let h = ScenarioHarness::new(with.clone(), profile.clone()).unwrap();
        assert!(h.profile().knobs.fail_slab_alloc, "{name}");
        let h = ScenarioHarness::new(without.clone(), profile).unwrap();
        assert!(!h.profile().knobs.fail_slab_alloc, "{name}");
    }
}
