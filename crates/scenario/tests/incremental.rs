//! The incremental checkers (`mm::checkers::incremental`) against the full
//! ones: after every step of every execution, `CheckMode::Compare` runs
//! both and makes any disagreement an internal error, on every seed,
//! sanity and example scenario under each profile it names, and on a few
//! hundred generated scenarios over the language's statements; and a run
//! finds the same finding at the same step, execution and schedule in
//! either mode.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::portfolio;
use explore::strategy::Rng;
use explore::{explore, RunOutcome};
use scenario::interp::{CheckMode, ScenarioHarness};
use scenario::Scenario;

fn scenario_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let mut files = Vec::new();
    for dir in ["seeds", "sanity", "examples"] {
        let mut here: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .expect("scenario directory")
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "mmr"))
            .collect();
        here.sort();
        files.extend(here);
    }
    files
}

fn harness(s: &Arc<Scenario>, profile: &str, check: CheckMode) -> Option<ScenarioHarness> {
    let p = mm::profile(profile).expect("known profile");
    ScenarioHarness::new(s.clone(), p)
        .ok()
        .map(|h| h.with_check(check))
}

fn run(s: &Arc<Scenario>, profile: &str, check: CheckMode, budget: u64) -> RunOutcome {
    let h = harness(s, profile, check).expect("the scenario runs under its profile");
    explore(&h, &portfolio(budget, 200_000)).unwrap_or_else(|e| {
        panic!(
            "{} under {profile} with --check {}: {}",
            s.file,
            check.name(),
            e.message
        )
    })
}

/// What a run found, where: the finding, its execution and schedule, and
/// the step it was made at.
#[derive(Debug, PartialEq, Eq)]
struct Where {
    title: String,
    also: Vec<String>,
    execution: u64,
    choices: Vec<u32>,
    step: u64,
}

fn found_at(o: &RunOutcome) -> Option<Where> {
    o.found.as_ref().map(|f| Where {
        title: f.finding.title.clone(),
        also: f.finding.also.clone(),
        execution: f.index,
        choices: f.choices.clone(),
        step: f.steps,
    })
}

#[test]
fn every_scenario_file_finds_the_same_in_both_modes() {
    let mut runs = 0;
    for file in scenario_files() {
        let s = Arc::new(scenario::parse_file(&file).expect("scenario parses"));
        for e in &s.expects {
            // Every step compared (a disagreement is an internal error,
            // which `run` turns into a panic naming the file).
            run(&s, &e.profile, CheckMode::Compare, 120);
            let full = run(&s, &e.profile, CheckMode::Full, 120);
            let incremental = run(&s, &e.profile, CheckMode::Incremental, 120);
            assert_eq!(
                found_at(&full),
                found_at(&incremental),
                "{} under {}: the modes report different findings",
                file.display(),
                e.profile
            );
            assert_eq!(full.executions, incremental.executions);
            assert_eq!(full.steps, incremental.steps);
            runs += 1;
        }
    }
    assert!(runs >= 50, "only {runs} (file, profile) pairs ran");
}

/// A profile and the machine lines and statements that make sense under it.
struct Era {
    profile: &'static str,
    thp: bool,
    swap: bool,
    xen: bool,
}

const ERAS: &[Era] = &[
    Era {
        profile: "linux-6.5",
        thp: true,
        swap: false,
        xen: false,
    },
    Era {
        profile: "linux-6.1.159",
        thp: true,
        swap: false,
        xen: false,
    },
    Era {
        profile: "linux-5.5",
        thp: true,
        swap: false,
        xen: false,
    },
    Era {
        profile: "linux-2.6.34-rc3",
        thp: false,
        swap: true,
        xen: false,
    },
    Era {
        profile: "linux-2.6.36",
        thp: false,
        swap: true,
        xen: false,
    },
    Era {
        profile: "linux-3.12.7-xen",
        thp: false,
        swap: false,
        xen: true,
    },
];

/// A random statement on the mapping `a` of `size` bytes (page-aligned
/// offsets, mostly inside it).
fn statement(rng: &mut Rng, era: &Era, size: u64) -> String {
    let pages = size / 4096;
    let off = rng.below(pages + 2) * 4096;
    let len = (1 + rng.below(pages.min(32))) * 4096;
    match rng.below(if era.swap { 9 } else { 8 }) {
        0 | 1 => format!("write(a + {off}, {})", 1 + rng.below(200)),
        2 => format!("write(a + {off}, 0..{len}, {})", 1 + rng.below(200)),
        3 => format!("read(a + {off})"),
        4 => {
            let prot = ["PROT_NONE", "PROT_READ", "PROT_READ|PROT_WRITE"][rng.below(3) as usize];
            format!("mprotect(a + {off}, {len}, {prot})")
        }
        5 => format!("madvise(a + {off}, {len}, MADV_DONTNEED)"),
        6 => format!("munmap(a + {off}, {len})"),
        // NUMA balancing (v3.8) is not in the 2.6.34 era, which has swap.
        7 if !era.swap => format!("numa_scan(a, {size})"),
        _ => format!("reclaim(a + {off}, {len})"),
    }
}

fn block(rng: &mut Rng, era: &Era, size: u64) -> String {
    let n = 1 + rng.below(3);
    let stmts: Vec<String> = (0..n).map(|_| statement(rng, era, size)).collect();
    stmts.join("; ")
}

/// A scenario of one process (and under the swap eras a forked child)
/// whose threads race over one anonymous mapping.
fn generate(rng: &mut Rng, era: &Era) -> String {
    let thp = era.thp && rng.below(2) == 0;
    let size = if thp {
        (2 + 2 * rng.below(2)) << 20
    } else {
        (4 + rng.below(28)) * 4096
    };
    let mut text = format!(
        "machine numa-nodes=2 thp={}{}\nprocess p {{\n  setup {{\n",
        if thp { "always" } else { "never" },
        if era.xen { " xen-pv" } else { "" }
    );
    text += &format!(
        "    a = mmap(NULL, {size}, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, align=2M)\n"
    );
    text += &format!(
        "    write(a, 0..{}, 7)\n",
        (1 + rng.below(size / 4096)) * 4096
    );
    if rng.below(2) == 0 && !era.swap {
        text += &format!("    numa_scan(a, {size})\n");
    }
    let fork = era.swap && rng.below(2) == 0;
    if fork {
        text += "    c = fork()\n";
    }
    text += "  }\n";
    for t in 0..2 + rng.below(2) {
        text += &format!(
            "  thread t{t} node={} {{ {} }}\n",
            t % 2,
            block(rng, era, size)
        );
    }
    if fork {
        text += &format!(
            "  child c {{ thread ct {{ {}; exit() }} }}\n",
            block(rng, era, size)
        );
    }
    text + "}\n"
}

#[test]
fn generated_scenarios_check_alike_after_every_step() {
    let mut rng = Rng::new(0x1c4e_2026);
    let mut ran = 0;
    let mut found = 0;
    for i in 0..300u64 {
        let era = &ERAS[(i % ERAS.len() as u64) as usize];
        let text = generate(&mut rng, era);
        let name = format!("generated-{i}.mmr");
        let s = Arc::new(
            scenario::parse_str(&name, &text)
                .unwrap_or_else(|d| panic!("generated scenario does not parse:\n{text}\n{d}")),
        );
        let Some(h) = harness(&s, era.profile, CheckMode::Compare) else {
            continue;
        };
        let config = portfolio(6, 20_000);
        match explore(&h, &config) {
            Ok(o) => found += usize::from(o.found.is_some()),
            Err(e) if e.kind == explore::InternalKind::Unsupported => continue,
            Err(e) => panic!(
                "{name} under {} (--check compare): {}\n{text}",
                era.profile, e.message
            ),
        }
        let outcome = |check| {
            let h = harness(&s, era.profile, check).expect("ran under compare");
            explore(&h, &config).expect("ran under compare")
        };
        let (full, incremental) = (outcome(CheckMode::Full), outcome(CheckMode::Incremental));
        assert_eq!(
            (found_at(&full), full.steps),
            (found_at(&incremental), incremental.steps),
            "{name} under {}: the modes report different findings\n{text}",
            era.profile
        );
        ran += 1;
    }
    assert!(ran >= 250, "only {ran} of 300 generated scenarios ran");
    assert!(found > 0, "no generated scenario found anything");
}
