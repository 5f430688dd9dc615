//! `mmrace verify`: DPOR on the seed 001 race against exhaustive search,
//! and the command line end to end.

use std::path::{Path, PathBuf};
use std::process::Command;

use explore::verify::{Mode, VerifyConfig};
use mmrace::run::{harness, load};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const SEED_001: &str = "scenarios/seeds/001-bad-pmd.mmr";

/// DPOR and exhaustive search of seed 001 reach the same findings and the
/// same final address spaces, at every bound up to 2.
#[test]
fn seed_001_dpor_matches_exhaustive() {
    for profile in ["linux-6.1.159", "linux-6.5"] {
        let s = load(&workspace().join(SEED_001)).unwrap();
        let h = harness(s, profile, &[]).unwrap();
        for k in 0..=2 {
            let run = |mode| {
                let config = VerifyConfig {
                    mode,
                    stop_at_finding: false,
                    ..VerifyConfig::new(k, 200_000, 1_000_000, 1)
                };
                explore::verify(&h, &config).unwrap()
            };
            let (dpor, full) = (run(Mode::Dpor), run(Mode::Exhaustive));
            println!(
                "seed 001 under {profile}, {k} preemptions: DPOR {} executions, exhaustive {}; findings {:?}, {} final states",
                dpor.executions,
                full.executions,
                full.findings,
                full.final_states.len()
            );
            assert!(dpor.complete && full.complete);
            assert_eq!(dpor.findings, full.findings, "{profile} K={k}");
            assert_eq!(dpor.final_states, full.final_states, "{profile} K={k}");
            assert!(dpor.executions <= full.executions);
            let buggy = full.findings.iter().any(|t| t.contains("bad pmd"));
            // The race needs two preemptions: into the scanner's window and back.
            assert_eq!(
                buggy,
                profile == "linux-6.1.159" && k >= 2,
                "{profile} K={k}"
            );
        }
    }
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn mmrace(args: &[&str]) -> Out {
    let o = Command::new(env!("CARGO_BIN_EXE_mmrace"))
        .args(args)
        .current_dir(workspace())
        .output()
        .expect("spawn mmrace");
    Out {
        code: o.status.code().expect("not killed"),
        stdout: String::from_utf8(o.stdout).unwrap(),
        stderr: String::from_utf8(o.stderr).unwrap(),
    }
}

/// `mmrace verify SEED_001 --profile PROFILE EXTRA...`.
fn verify_seed(profile: &str, extra: &[&str]) -> Out {
    let mut args = vec!["verify", SEED_001, "--profile", profile];
    args.extend_from_slice(extra);
    mmrace(&args)
}

#[test]
fn fixed_kernel_verifies_within_two_preemptions() {
    let o = verify_seed("linux-6.5", &["--preemptions", "2"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains("verified within 2 preemptions: ") && o.stdout.contains(", complete"),
        "{}",
        o.stdout
    );
}

#[test]
fn buggy_kernel_reports_the_bad_pmd_with_a_replayable_token() {
    let o = verify_seed("linux-6.1.159", &["--preemptions", "2"]);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("bad pmd"), "{}", o.stdout);
    let replay = o
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("replay: mmrace replay '"))
        .and_then(|l| l.strip_suffix('\''))
        .unwrap_or_else(|| panic!("no replay line in {}", o.stdout));
    let r = mmrace(&["replay", replay]);
    assert_eq!(r.code, 1);
    let report = &o.stdout[o.stdout.find("mm/pgtable-generic.c").unwrap()..];
    assert_eq!(r.stdout, report);
}

#[test]
fn zero_preemptions_cannot_reach_the_race() {
    let o = verify_seed("linux-6.1.159", &["--preemptions", "0"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains("verified within 0 preemptions"),
        "{}",
        o.stdout
    );
}

#[test]
fn json_names_the_verdict_and_counts() {
    let o = verify_seed("linux-6.5", &["--preemptions", "1", "--json"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v: serde_json::Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(v["verdict"], "verified");
    assert_eq!(v["complete"], true);
    assert!(v["executions"].as_u64().unwrap() > 1);
    assert!(v["steps"].as_u64().unwrap() > v["executions"].as_u64().unwrap());
}

#[test]
fn a_small_budget_is_reported_as_incomplete() {
    let o = verify_seed("linux-6.5", &["--budget", "3"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("NOT verified"), "{}", o.stdout);
    assert!(o.stdout.contains("incomplete"), "{}", o.stdout);
}

#[test]
fn bad_arguments_are_usage_errors() {
    for args in [
        &["verify", SEED_001, "--profile", "linux-9.9"][..],
        &[
            "verify",
            SEED_001,
            "--profile",
            "linux-6.5",
            "--preemptions",
            "two",
        ],
        &["verify", SEED_001, "--profile", "linux-6.5", "--jobs", "0"],
        &[
            "verify",
            SEED_001,
            "--profile",
            "linux-6.5",
            "--preemptions",
            "-1",
        ],
        &[
            "verify",
            SEED_001,
            "--profile",
            "linux-6.5",
            "--preemptions",
            "4294967295",
        ],
        &["verify", "--profile", "linux-6.5"],
        &["verify", "no-such-file.mmr", "--profile", "linux-6.5"],
        &[
            "verify",
            SEED_001,
            "--profile",
            "linux-6.5",
            "--knob",
            "nope=1",
        ],
    ] {
        let o = mmrace(args);
        assert_eq!(o.code, 2, "{args:?}: {}{}", o.stdout, o.stderr);
        assert!(o.stderr.starts_with("mmrace: "), "{args:?}: {}", o.stderr);
    }
}

/// Two workers reach the same verdicts as one.
#[test]
fn two_workers_agree_with_one() {
    for (profile, code) in [("linux-6.5", 0), ("linux-6.1.159", 1)] {
        let o = verify_seed(profile, &["--preemptions", "2", "--jobs", "2"]);
        assert_eq!(o.code, code, "{profile}: {}{}", o.stdout, o.stderr);
    }
}

/// Without a bound (sleep sets on), the fixed kernel is verified outright
/// and the buggy one still shows the bad pmd.
#[test]
fn unbounded_search_verifies_the_fix_and_finds_the_bug() {
    let o = verify_seed("linux-6.5", &["--preemptions", "unbounded"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains("verified with no preemption bound"),
        "{}",
        o.stdout
    );
    let o = verify_seed("linux-6.1.159", &["--preemptions", "unbounded", "--json"]);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    let v: serde_json::Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(v["verdict"], "finding");
    assert!(v["preemptions"].is_null());
    assert!(v["finding"]["title"].as_str().unwrap().contains("bad pmd"));
}

/// Fault injection: every allocation may fail, at most `--failures` per
/// execution; the fix still verifies.
#[test]
fn fault_injection_is_explored_within_the_failure_bound() {
    let o = verify_seed(
        "linux-6.5",
        &[
            "--preemptions",
            "1",
            "--knob",
            "fail_page_alloc=on",
            "--failures",
            "1",
            "--json",
        ],
    );
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    let with: serde_json::Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(with["verdict"], "verified");
    let o = verify_seed("linux-6.5", &["--preemptions", "1", "--json"]);
    let without: serde_json::Value = serde_json::from_str(o.stdout.trim()).unwrap();
    // Failing allocations are branches of their own.
    assert!(with["executions"].as_u64() > without["executions"].as_u64());
}
