//! Seed 002: the four anon_vma_chain bugs of 2.6.34-rc. Each 002 scenario
//! is a finding under rc3 and clean under the fixed kernels; with every
//! fix on (rc5), turning off exactly one fix knob brings back exactly its
//! bug; the swap-in report has the seed's oops shape; Linus' debug check
//! fires in the kernel's words; and a replay is deterministic.

mod common;

use std::sync::Arc;

use common::{harness, load, portfolio};
use explore::{explore, RunOutcome};
use scenario::Scenario;

/// Every 002 file with the bug it reproduces.
const FILES: &[(&str, Bug)] = &[
    ("002-vma-adjust-importer.mmr", Bug::VmaAdjust),
    ("002-variant-vma-adjust-shift.mmr", Bug::VmaAdjust),
    ("002-swapin-child-anon-vma.mmr", Bug::SwapinChild),
    ("002-variant-swapin-grandchild.mmr", Bug::ChainOrder),
    ("002-reuse-nonsingleton-merge.mmr", Bug::Reuse),
    ("002-variant-reuse-nonsingleton-munmap.mmr", Bug::Reuse),
    ("002-anon-vma-fork-enomem.mmr", Bug::ForkEnomem),
    ("002-variant-fork-enomem-walk.mmr", Bug::ForkEnomem),
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Bug {
    VmaAdjust,
    SwapinChild,
    ChainOrder,
    Reuse,
    ForkEnomem,
}

fn run(s: &Arc<Scenario>, profile: &str, knobs: &[(&str, &str)]) -> RunOutcome {
    explore(&harness(s, profile, knobs), &portfolio(3000, 100_000)).expect("no internal error")
}

#[test]
fn every_002_file_is_a_finding_under_rc3_and_clean_when_fixed() {
    for (name, _) in FILES {
        let s = load(name);
        assert!(
            run(&s, "linux-2.6.34-rc3", &[]).found.is_some(),
            "{name}: rc3 must find its bug"
        );
        for fixed in ["linux-2.6.34-rc4", "linux-2.6.36"] {
            let out = run(&s, fixed, &[]);
            assert!(
                out.found.is_none(),
                "{name} under {fixed}: {:?}",
                out.found.map(|f| f.finding.title)
            );
        }
    }
}

/// With all fixes on (rc5), one knob back to its rc3 value brings back the
/// files of its bug and no other.
#[test]
fn turning_off_one_fix_brings_back_exactly_its_bug() {
    let ablations: &[(&str, &str, &[Bug])] = &[
        ("vma_adjust_exporter", "off", &[Bug::VmaAdjust]),
        ("reuse_anon_vma_singleton", "off", &[Bug::Reuse]),
        ("anon_vma_clone_reverse", "off", &[Bug::ChainOrder]),
        (
            "set_anon_rmap",
            "vma_anon_vma",
            &[Bug::SwapinChild, Bug::ChainOrder],
        ),
        ("anon_vma_fork_unlink_on_error", "off", &[Bug::ForkEnomem]),
    ];
    let scenarios: Vec<(Arc<Scenario>, &str, Bug)> = FILES
        .iter()
        .map(|(name, bug)| (load(name), *name, *bug))
        .collect();
    for (knob, value, bugs) in ablations {
        for (s, name, bug) in &scenarios {
            let out = run(s, "linux-2.6.34-rc5", &[(knob, value)]);
            assert_eq!(
                out.found.is_some(),
                bugs.contains(bug),
                "{knob}={value} on {name}: {:?}",
                out.found.map(|f| f.finding.title)
            );
        }
    }
}

#[test]
fn the_swapin_report_has_the_seed_oops_shape() {
    let s = load("002-swapin-child-anon-vma.mmr");
    let found = run(&s, "linux-2.6.34-rc3", &[]).found.expect("a finding");
    let after = &found.finding.aftermath;
    let has = |want: &str| after.iter().any(|l| l.contains(want));
    assert!(
        has("BUG: unable to handle kernel NULL pointer dereference at (null)"),
        "{after:?}"
    );
    assert!(has("IP: page_referenced_anon"), "{after:?}");
    assert!(has("R13: ffffffffffffffe0"), "{after:?}");
    assert!(has("shrink_all_memory"), "{after:?}");
    // The checkers saw the corruption first: a page mapped with a freed
    // anon_vma, or one its VMA is not linked to.
    let title = &found.finding.title;
    assert!(
        title.starts_with("INV-LIFETIME") || title.starts_with("INV-RMAP-ANON"),
        "{title}"
    );
}

/// Linus' verify_anon_page() patch (knob `verify_anon_page`) as it fired
/// under Borislav's load: at the zap of a page whose anon_vma is not on
/// the VMA's chain. Here the parent's exit zaps the page the child's
/// swap-in put into the child's anon_vma (no reclaim walk comes first).
#[test]
fn linus_debug_check_fires_in_its_words() {
    let text = "\
scenario \"verify\"
process parent {
  setup {
    p = mmap(NULL, 4K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
    write(p, 0x5a)
    c = fork()
    reclaim(p, 4K)
  }
  thread preader { read(p, expect=0x5a) }
  child c { thread creader { read(p, expect=0x5a) } }
}
";
    let s = Arc::new(scenario::parse_str("verify.mmr", text).expect("parses"));
    let words = "page->mapping does not exist in vma chain";
    let says = |f: &explore::Finding| {
        f.title.contains(words) || f.aftermath.iter().any(|l| l.contains(words))
    };
    let found = run(&s, "linux-2.6.34-rc3", &[("verify_anon_page", "on")])
        .found
        .expect("a finding");
    assert!(says(&found.finding), "{:?}", found.finding);
    assert!(found
        .finding
        .aftermath
        .iter()
        .any(|l| l.contains("WARNING: at mm/memory.c:909 unmap_vmas()")));
    // Off, the kernel says nothing of the kind; on, a fixed kernel is quiet.
    let quiet = run(&s, "linux-2.6.34-rc3", &[]).found.expect("a finding");
    assert!(!says(&quiet.finding));
    assert!(run(&s, "linux-2.6.34-rc4", &[("verify_anon_page", "on")])
        .found
        .is_none());
}

#[test]
fn a_002_run_is_deterministic() {
    let s = load("002-variant-swapin-grandchild.mmr");
    let a = run(&s, "linux-2.6.34-rc3", &[]).found.expect("a finding");
    let b = run(&s, "linux-2.6.34-rc3", &[]).found.expect("a finding");
    assert_eq!(a.choices, b.choices);
    assert_eq!(a.finding.title, b.finding.title);
    assert_eq!(a.finding.aftermath, b.finding.aftermath);
}

/// SLAB_DESTROY_BY_RCU reuse: an anon_vma freed by munmap may be handed
/// out again to the next mapping's fault (an explored choice of the
/// 2.6.34-era allocator), and a correct sequence stays clean with it.
#[test]
fn a_freed_anon_vma_may_come_back_as_another() {
    let text = "\
scenario \"reuse\"
process app {
  setup {
    p = mmap(NULL, 4K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
    write(p, 0x5a)
    munmap(p, 4K)
  }
  thread user { q = mmap(NULL, 4K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS); write(q, 1) }
  thread kswapd { hibernate() }
}
";
    let s = Arc::new(scenario::parse_str("reuse.mmr", text).expect("parses"));
    for profile in ["linux-2.6.34-rc3", "linux-2.6.34-rc4"] {
        let out = run(&s, profile, &[]);
        assert!(
            out.found.is_none(),
            "{profile}: {:?}",
            out.found.map(|f| f.finding.title)
        );
        let mark = "anon_vma_alloc: a freed anon_vma handed out again (SLAB_DESTROY_BY_RCU)";
        assert!(
            out.marks.contains_key(mark),
            "{profile}: {:?}",
            out.marks.keys()
        );
    }
    // 2.6.36's anon_vmas carry a root and its reference: never reused here.
    let out = run(&s, "linux-2.6.36", &[]);
    assert!(out.found.is_none());
    assert!(!out
        .marks
        .keys()
        .any(|m| m.starts_with("anon_vma_alloc: a freed anon_vma")));
}
