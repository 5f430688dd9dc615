//! End-to-end tests of the `mmrace` command line (DESIGN.md §5, §7): exit
//! codes and error messages, `--json`, byte-for-byte replay, determinism
//! across `--jobs`, knob ablation, the report text (insta snapshot), `list`
//! and `seeds`.
//!
//! Most tests spawn the real binary with the workspace root as current
//! directory, so scenario paths (and therefore replay tokens) are the
//! relative paths a user would type. Budgets are small: the whole file runs
//! in a few seconds in a debug build.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use mmrace::run::{replay_token, run, RunOptions};
use serde_json::Value;

const SEED001: &str = "scenarios/seeds/001-bad-pmd.mmr";
const VARIANT_DONTNEED: &str = "scenarios/seeds/001-variant-madv-dontneed.mmr";
/// Seed 001 is a finding here (within ~100 executions at seed 0) ...
const BUGGY: &str = "linux-6.1.159";
/// ... and clean here.
const FIXED: &str = "linux-6.5";

/// The knobs that turn linux-6.5's change_pmd_range back into 6.1.159's.
const OLD_PMD_KNOBS: [&str; 3] = [
    "pmd_check=unless_trans_huge",
    "pte_offset_map_lock=pre65",
    "change_pte_range_unstable_check=on",
];

/// Coverage mark of the window that the 6.1.160 backport does not survive:
/// the `_pmd` snapshot was huge but `change_huge_pmd()` found it no longer
/// huge, so change_pmd_range falls through to the pte level.
const MARK_FALL_THROUGH: &str = "change_huge_pmd: pmd no longer huge, fall through";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// What one `mmrace` process did.
struct Out {
    args: Vec<String>,
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    /// Asserts the exit code, showing everything the process printed
    /// otherwise.
    fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "mmrace {:?} exited {} (expected {code})\n--- stdout\n{}\n--- stderr\n{}",
            self.args, self.code, self.stdout, self.stderr
        );
        self
    }

    /// Exit 2, nothing on stdout, an `mmrace: ` message on stderr that
    /// contains every needle.
    fn expect_usage_error(&self, needles: &[&str]) -> &Self {
        self.expect_code(2);
        assert_eq!(
            self.stdout, "",
            "usage error printed to stdout: {:?}",
            self.args
        );
        assert!(
            self.stderr.starts_with("mmrace: "),
            "stderr of {:?} does not start with 'mmrace: ':\n{}",
            self.args,
            self.stderr
        );
        for n in needles {
            assert!(
                self.stderr.contains(n),
                "stderr of {:?} lacks {n:?}:\n{}",
                self.args,
                self.stderr
            );
        }
        self
    }

    /// Every stderr line starts with `mmrace: `.
    fn expect_prefixed_stderr(&self) -> &Self {
        assert!(!self.stderr.is_empty(), "no stderr from {:?}", self.args);
        for line in self.stderr.lines() {
            assert!(
                line.starts_with("mmrace: "),
                "stderr line of {:?} is not prefixed with 'mmrace: ': {line:?}\n--- stderr\n{}",
                self.args,
                self.stderr
            );
        }
        self
    }

    /// stdout as JSON lines, one object each.
    fn json_lines(&self) -> Vec<Value> {
        assert!(!self.stdout.is_empty(), "no stdout from {:?}", self.args);
        self.stdout
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("not JSON ({e}) from {:?}: {l}", self.args));
                assert!(v.is_object(), "not a JSON object: {l}");
                v
            })
            .collect()
    }
}

fn mmrace_in(dir: &Path, args: &[&str]) -> Out {
    let o = Command::new(env!("CARGO_BIN_EXE_mmrace"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("spawn mmrace");
    Out {
        args: args.iter().map(|s| s.to_string()).collect(),
        code: o.status.code().expect("mmrace was killed by a signal"),
        stdout: String::from_utf8(o.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(o.stderr).expect("stderr is UTF-8"),
    }
}

/// Runs `mmrace ARGS` in the workspace root.
fn mmrace(args: &[&str]) -> Out {
    mmrace_in(&workspace(), args)
}

/// `run FILE --profile P` plus extra arguments.
fn run_cli(file: &str, profile: &str, extra: &[&str]) -> Out {
    let mut args = vec!["run", file, "--profile", profile];
    args.extend_from_slice(extra);
    mmrace(&args)
}

/// `--knob K=V` for each knob.
fn knob_args<'a>(knobs: &[&'a str]) -> Vec<&'a str> {
    knobs.iter().flat_map(|k| ["--knob", *k]).collect()
}

/// The report `run` printed for a finding: everything from the title line
/// to the `replay:` line, which must be the report's last line.
fn report_of_run(stdout: &str) -> String {
    let mut lines = stdout.lines();
    let summary = lines.next().unwrap_or_default();
    assert!(
        summary.contains(": found by execution "),
        "first line of run output is not a finding summary: {summary:?}\n{stdout}"
    );
    assert_eq!(
        lines.next(),
        Some(""),
        "no blank line after the summary:\n{stdout}"
    );
    let mut report = String::new();
    for line in lines.by_ref() {
        report.push_str(line);
        report.push('\n');
        if line.starts_with("replay: ") {
            let rest: Vec<&str> = lines.collect();
            assert!(
                rest.iter().all(|l| l.trim().is_empty()),
                "the replay: line is not the last line of the report: {rest:?}"
            );
            return report;
        }
    }
    panic!("no replay: line in run output:\n{stdout}");
}

/// The token of a report's `replay: mmrace replay '<token>'` line.
fn token_of_report(report: &str) -> String {
    let last = report.lines().last().unwrap_or_default();
    last.strip_prefix("replay: mmrace replay '")
        .and_then(|t| t.strip_suffix('\''))
        .unwrap_or_else(|| panic!("last report line is not a replay command: {last:?}"))
        .to_string()
}

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("mmrace-cli-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        fs::write(&p, text).expect("write temp file");
        p
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("temp dir path is UTF-8")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A copy of a seed scenario with its `budget` line rewritten.
fn seed_with_budget(dir: &TempDir, seed: &str, budget: u64) -> PathBuf {
    let text = fs::read_to_string(workspace().join(seed)).expect("read seed scenario");
    let mut rewritten = 0;
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("budget ") {
                rewritten += 1;
                format!("budget {budget}")
            } else {
                l.to_string()
            }
        })
        .collect();
    assert_eq!(rewritten, 1, "{seed} should have exactly one budget line");
    let name = Path::new(seed).file_name().unwrap().to_str().unwrap();
    dir.write(name, &(out.join("\n") + "\n"))
}

/// The profiles named by a scenario's `expect` lines, in order.
fn expected_profiles(file: &Path) -> Vec<String> {
    let text = fs::read_to_string(file).expect("read scenario");
    let profiles: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("expect "))
        .map(|rest| rest.split(':').next().unwrap().trim().to_string())
        .collect();
    assert!(
        !profiles.is_empty(),
        "{} has no expect lines",
        file.display()
    );
    profiles
}

// ---------------------------------------------------------------------------
// 1. Exit codes and error messages

#[test]
fn exit_1_on_finding() {
    let out = run_cli(SEED001, BUGGY, &[]);
    out.expect_code(1);
    assert!(
        out.stdout.contains("bad pmd"),
        "no bad pmd in:\n{}",
        out.stdout
    );
    assert_eq!(out.stderr, "");
}

/// `run FILE --profile P --budget B` exits 0 saying the whole budget was
/// clean, with nothing on stderr.
fn expect_clean_run(file: &str, profile: &str, budget: u64) {
    let out = run_cli(file, profile, &["--budget", &budget.to_string()]);
    out.expect_code(0);
    assert!(
        out.stdout.starts_with(&format!(
            "{file} under {profile}: clean after {budget} executions"
        )),
        "{}",
        out.stdout
    );
    assert_eq!(out.stderr, "");
}

/// `seeds --quiet --dir DIR` exits 0 with `n` verdicts matching.
fn expect_seeds_pass(dir: &str, n: usize) -> Out {
    let out = mmrace(&["seeds", "--quiet", "--dir", dir]);
    out.expect_code(0);
    assert_eq!(
        out.stdout.lines().last(),
        Some(format!("{n} passed, 0 failed").as_str()),
        "{}",
        out.stdout
    );
    out
}

#[test]
fn exit_0_when_clean() {
    expect_clean_run(SEED001, FIXED, 500);
}

#[test]
fn exit_2_on_malformed_scenario_names_file_line_col() {
    let dir = TempDir::new("malformed");
    let cases = [
        (
            "unknown-call.mmr",
            "scenario \"x\"\nmachine numa-nodes=2 thp=always\nbudget 10\n\nprocess app {\n  thread t { frobnicate(p) }\n}\n",
            ":6:14",
            "unknown call 'frobnicate'",
        ),
        (
            "bad-item.mmr",
            "scenario \"x\"\nmachine numa-nodes=2 thp=always\nbudgett 10\n",
            ":3:1",
            "found 'budgett'",
        ),
        (
            "unclosed.mmr",
            "scenario \"x\"\nmachine numa-nodes=2\nprocess app {\n  thread t { mmap( }\n}\n",
            ":4:20",
            "expected an expression",
        ),
    ];
    for (name, text, at, what) in cases {
        let path = dir.write(name, text);
        let path = path.to_str().unwrap();
        let out = run_cli(path, FIXED, &["--budget", "10"]);
        out.expect_usage_error(&[&format!("{path}{at}"), what]);
        // Without --profile the file is parsed for its expect lines first.
        mmrace(&["run", path]).expect_usage_error(&[&format!("{path}{at}"), what]);
    }
}

#[test]
fn exit_2_on_unknown_profile_lists_known_ones() {
    let out = run_cli(SEED001, "linux-9.9", &["--budget", "10"]);
    let known: Vec<&str> = mm::profiles().iter().map(|p| p.name).collect();
    assert!(known.len() >= 4, "too few profiles: {known:?}");
    let mut needles = vec!["unknown profile 'linux-9.9'"];
    needles.extend(known.iter().copied());
    out.expect_usage_error(&needles).expect_prefixed_stderr();
}

#[test]
fn exit_2_on_unknown_knob_or_bad_knob_value() {
    let out = run_cli(SEED001, FIXED, &["--budget", "10", "--knob", "nope=1"]);
    let mut needles = vec!["unknown knob 'nope'"];
    needles.extend(mm::profile::KNOBS.iter().map(|k| k.name));
    out.expect_usage_error(&needles).expect_prefixed_stderr();

    let out = run_cli(
        SEED001,
        FIXED,
        &["--budget", "10", "--knob", "pmd_check=bogus"],
    );
    out.expect_usage_error(&[
        "knob 'pmd_check' cannot be 'bogus'",
        "legacy",
        "unless_trans_huge",
        "upstream65",
    ])
    .expect_prefixed_stderr();

    let out = run_cli(
        SEED001,
        FIXED,
        &["--budget", "10", "--knob", "split_ptlocks=maybe"],
    );
    out.expect_usage_error(&["allowed values: on, off"])
        .expect_prefixed_stderr();
}

#[test]
fn exit_2_on_malformed_replay_token() {
    let cases = [
        ("garbage", "is not mmr1"),
        (
            "mmr2:linux-6.1.159:-:1:scenarios/seeds/001-bad-pmd.mmr",
            "is not mmr1",
        ),
        ("mmr1:linux-6.1.159:-:1", "no scenario field"),
        (
            "mmr1:linux-6.1.159:-:1xq:scenarios/seeds/001-bad-pmd.mmr",
            "bad run length",
        ),
        (
            "mmr1:linux-6.1.159:-:x2:scenarios/seeds/001-bad-pmd.mmr",
            "bad choice",
        ),
        (
            "mmr1:linux-6.1.159:-:1x0:scenarios/seeds/001-bad-pmd.mmr",
            "implausible",
        ),
        (
            "mmr1:linux-6.1.159:pmd_check:1:scenarios/seeds/001-bad-pmd.mmr",
            "bad knob",
        ),
        ("mmr1:linux-6.1.159:-:1:", "empty profile or scenario"),
    ];
    for (token, what) in cases {
        mmrace(&["replay", token])
            .expect_usage_error(&["bad replay token", what])
            .expect_prefixed_stderr();
    }
    // Well-formed tokens naming an unknown profile, knob or file.
    mmrace(&["replay", "mmr1:linux-9:-:1:scenarios/seeds/001-bad-pmd.mmr"])
        .expect_usage_error(&["unknown profile 'linux-9'", BUGGY])
        .expect_prefixed_stderr();
    mmrace(&[
        "replay",
        "mmr1:linux-6.1.159:nope=1:1:scenarios/seeds/001-bad-pmd.mmr",
    ])
    .expect_usage_error(&["unknown knob 'nope'"])
    .expect_prefixed_stderr();
    mmrace(&[
        "replay",
        "mmr1:linux-6.1.159:-:1:scenarios/seeds/no-such.mmr",
    ])
    .expect_usage_error(&["cannot read", "scenarios/seeds/no-such.mmr"]);
}

#[test]
fn exit_2_on_missing_file() {
    let dir = TempDir::new("missing");
    let missing = dir.0.join("no-such-scenario.mmr");
    let missing = missing.to_str().unwrap();
    run_cli(missing, FIXED, &["--budget", "10"]).expect_usage_error(&["cannot read", missing]);
    mmrace(&["run", missing]).expect_usage_error(&["cannot read", missing]);
    mmrace(&["seeds", "--quiet", "--dir", missing])
        .expect_usage_error(&["cannot read scenario directory", missing])
        .expect_prefixed_stderr();
    // A directory without scenarios is an input error too.
    mmrace(&["seeds", "--quiet", "--dir", dir.path()])
        .expect_usage_error(&["no .mmr scenarios"])
        .expect_prefixed_stderr();
}

#[test]
fn exit_2_on_zero_budget_jobs_or_steps() {
    for flag in ["--budget", "--jobs", "--steps-max"] {
        run_cli(SEED001, FIXED, &[flag, "0"])
            .expect_usage_error(&["must be at least 1"])
            .expect_prefixed_stderr();
    }
}

#[test]
fn exit_2_on_unparsable_arguments() {
    // Rejected by the argument parser itself, before mmrace's own checks.
    for extra in [
        &["--budget", "abc"][..],
        &["--knob", "pmd_check"][..],
        &["--strategy", "dfs"][..],
        &["--no-such-flag"][..],
    ] {
        let out = run_cli(SEED001, FIXED, extra);
        out.expect_code(2);
        assert_eq!(out.stdout, "", "{:?}", out.args);
        assert!(!out.stderr.is_empty(), "{:?}", out.args);
    }
    mmrace(&[]).expect_code(2);
    mmrace(&["frobnicate"]).expect_code(2);
}

/// DESIGN: every error line carries the program name, so it stands out in
/// batch logs: clap's own errors and multi-line scenario diagnostics too.
#[test]
fn every_stderr_line_is_prefixed() {
    let dir = TempDir::new("prefix");
    let bad = dir.write("bad.mmr", "scenario \"x\"\nbudgett 10\n");
    let bad = bad.to_str().unwrap();
    for args in [
        &["run", bad, "--profile", FIXED][..],
        &["run", "no-such.mmr", "--profile", FIXED][..],
        &["run", SEED001, "--profile", FIXED, "--budget", "abc"][..],
        &["run", SEED001, "--profile", FIXED, "--knob", "pmd_check"][..],
    ] {
        let out = mmrace(args);
        out.expect_code(2).expect_prefixed_stderr();
    }
}

/// A token that parses but does not fit the scenario (hand-edited,
/// truncated choices, or the scenario file changed since the token was
/// printed) is bad input, not a bug in mmrace.
#[test]
fn replay_token_that_does_not_fit_the_scenario_is_an_input_error() {
    for choices in ["-", "7x3", "1x50000"] {
        let token = format!("mmr1:{BUGGY}:-:{choices}:{SEED001}");
        let out = mmrace(&["replay", &token]);
        out.expect_usage_error(&[]).expect_prefixed_stderr();
        assert!(!out.stderr.contains("internal error"), "{}", out.stderr);
    }
}

// ---------------------------------------------------------------------------
// 2. --json

/// Checks the fields every `--json` object has; returns the verdict.
fn check_run_json(v: &Value, scenario: &str, profile: &str) -> String {
    assert_eq!(v["scenario"], scenario, "{v}");
    assert_eq!(v["profile"], profile, "{v}");
    let executions = v["executions"].as_u64().unwrap_or_else(|| panic!("{v}"));
    assert!(executions >= 1, "{v}");
    let ms = v["elapsed_ms"].as_f64().unwrap_or_else(|| panic!("{v}"));
    assert!(ms >= 0.0, "{v}");
    let verdict = v["verdict"].as_str().unwrap_or_else(|| panic!("{v}"));
    let finding = v
        .get("finding")
        .unwrap_or_else(|| panic!("no finding field: {v}"));
    match verdict {
        "finding" => {
            let title = finding["title"].as_str().unwrap_or_else(|| panic!("{v}"));
            assert!(!title.is_empty(), "{v}");
            let replay = finding["replay"].as_str().unwrap_or_else(|| panic!("{v}"));
            assert!(replay.starts_with("mmrace replay 'mmr1:"), "{v}");
            assert!(replay.ends_with(&format!(":{scenario}'")), "{v}");
            // The run stops at the first finding.
            assert_eq!(
                finding["execution"].as_u64().map(|e| e + 1),
                Some(executions),
                "{v}"
            );
        }
        "clean" => assert!(finding.is_null(), "{v}"),
        other => panic!("verdict {other:?} is neither finding nor clean: {v}"),
    }
    verdict.to_string()
}

#[test]
fn json_finding_and_clean() {
    let out = run_cli(SEED001, BUGGY, &["--json"]);
    out.expect_code(1);
    let lines = out.json_lines();
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    let v = &lines[0];
    assert_eq!(check_run_json(v, SEED001, BUGGY), "finding");
    let title = v["finding"]["title"].as_str().unwrap();
    assert!(title.contains("bad pmd"), "{v}");

    // The JSON agrees with the text report of the same run.
    let text = run_cli(SEED001, BUGGY, &[]);
    text.expect_code(1);
    let report = report_of_run(&text.stdout);
    assert!(report.starts_with(&format!("{title}  [")), "{report}");
    let replay_line = report.lines().last().unwrap();
    assert_eq!(
        Some(replay_line),
        v["finding"]["replay"]
            .as_str()
            .map(|r| format!("replay: {r}"))
            .as_deref()
    );

    let out = run_cli(SEED001, FIXED, &["--json", "--budget", "300"]);
    out.expect_code(0);
    let lines = out.json_lines();
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    assert_eq!(check_run_json(&lines[0], SEED001, FIXED), "clean");
    assert_eq!(lines[0]["executions"], 300);
}

#[test]
fn json_one_line_per_expected_profile() {
    // Without --profile, run explores every profile the expect lines name.
    let profiles = expected_profiles(&workspace().join(SEED001));
    let out = mmrace(&["run", SEED001, "--json", "--budget", "300"]);
    let lines = out.json_lines();
    assert_eq!(lines.len(), profiles.len(), "{}", out.stdout);
    let mut any_finding = false;
    for (v, p) in lines.iter().zip(&profiles) {
        any_finding |= check_run_json(v, SEED001, p) == "finding";
    }
    assert!(any_finding, "{BUGGY} must be a finding at budget 300");
    out.expect_code(1);
}

#[test]
fn seeds_json_has_expected_and_matches() {
    let dir = TempDir::new("seeds-json");
    let file = seed_with_budget(&dir, SEED001, 2000);
    let profiles = expected_profiles(&file);
    let file = file.to_str().unwrap();
    let out = mmrace(&["seeds", "--json", "--dir", dir.path()]);
    out.expect_code(0);
    let lines = out.json_lines();
    assert_eq!(lines.len(), profiles.len(), "{}", out.stdout);
    for (v, p) in lines.iter().zip(&profiles) {
        let verdict = check_run_json(v, file, p);
        let expected = v["expected"].as_str().unwrap_or_else(|| panic!("{v}"));
        assert_eq!(v["matches"], true, "{v}");
        if verdict == "finding" {
            let sub = expected
                .strip_prefix("finding \"")
                .and_then(|s| s.strip_suffix('"'))
                .unwrap_or_else(|| panic!("finding expected as {expected:?}: {v}"));
            let title = v["finding"]["title"].as_str().unwrap();
            assert!(title.contains(sub), "{v}");
        } else {
            assert_eq!(expected, "clean", "{v}");
        }
    }
}

// ---------------------------------------------------------------------------
// 3. Replay is byte for byte

/// Runs, then replays the token three times: every replay prints the
/// report exactly as `run` did, and exits 1.
fn assert_replays_byte_for_byte(run_args: &[&str], replay_extra: &[&str]) -> String {
    let out = mmrace(run_args);
    out.expect_code(1);
    let report = report_of_run(&out.stdout);
    let token = token_of_report(&report);
    for attempt in 1..=3 {
        let mut args = vec!["replay", token.as_str()];
        args.extend_from_slice(replay_extra);
        let replayed = mmrace(&args);
        replayed.expect_code(1);
        assert_eq!(replayed.stderr, "");
        assert!(
            replayed.stdout == report,
            "replay {attempt} of {token} differs from the run's report\n--- run\n{report}\n--- replay\n{}",
            replayed.stdout
        );
    }
    report
}

#[test]
fn replay_prints_the_run_report_byte_for_byte() {
    let report = assert_replays_byte_for_byte(&["run", SEED001, "--profile", BUGGY], &[]);
    assert!(
        report.lines().next().unwrap().contains("bad pmd"),
        "{report}"
    );
    // --full shows setup/teardown too; run --full and replay --full agree.
    let full =
        assert_replays_byte_for_byte(&["run", SEED001, "--profile", BUGGY, "--full"], &["--full"]);
    assert!(full.lines().count() > report.lines().count(), "{full}");
    assert!(!full.contains("setup/teardown events not shown"), "{full}");
    assert!(
        report.contains("setup/teardown events not shown"),
        "{report}"
    );
}

#[test]
fn replay_through_the_library_matches_run() {
    let path = workspace().join(SEED001);
    let r = run(&path, &RunOptions::new(BUGGY)).unwrap_or_else(|e| panic!("{e}"));
    let report = r.report.expect("a finding has a report");
    let token = r.token.expect("a finding has a token");
    assert!(report.ends_with(&format!("replay: mmrace replay '{token}'\n")));
    for _ in 0..2 {
        let (again, found) = replay_token(&token, false, mmrace::run::DEFAULT_STEPS_MAX)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(found);
        assert_eq!(again, report);
    }
}

// ---------------------------------------------------------------------------
// 4. Determinism across --jobs

#[test]
fn finding_does_not_depend_on_jobs() {
    let path = workspace().join(SEED001);
    for seed in [0u64, 1, 2, 3, 42] {
        let mut first: Option<(u64, String, String)> = None;
        for jobs in [1usize, 2, 3] {
            let opts = RunOptions {
                seed,
                jobs,
                budget: Some(5000),
                ..RunOptions::new(BUGGY)
            };
            let r = run(&path, &opts).unwrap_or_else(|e| panic!("seed {seed} jobs {jobs}: {e}"));
            let found = r
                .outcome
                .found
                .as_ref()
                .unwrap_or_else(|| panic!("seed {seed} jobs {jobs}: no finding in 5000"));
            assert_eq!(found.index + 1, r.outcome.executions);
            let got = (
                r.outcome.executions,
                r.token.clone().expect("token"),
                r.report.clone().expect("report"),
            );
            match &first {
                None => first = Some(got),
                Some(f) => assert!(
                    *f == got,
                    "seed {seed}: --jobs {jobs} differs from --jobs 1\n{:?}\n{:?}",
                    (f.0, &f.1),
                    (got.0, &got.1)
                ),
            }
        }
    }
}

#[test]
fn finding_does_not_depend_on_jobs_cli() {
    for seed in ["1", "0x2a"] {
        let mut first: Option<(Value, String)> = None;
        for jobs in ["1", "2", "3"] {
            let common = ["--seed", seed, "--jobs", jobs, "--budget", "5000"];
            let json = run_cli(SEED001, BUGGY, &[&common[..], &["--json"]].concat());
            json.expect_code(1);
            let v = json.json_lines().remove(0);
            let key = serde_json::json!({
                "executions": v["executions"],
                "execution": v["finding"]["execution"],
                "replay": v["finding"]["replay"],
            });
            let text = run_cli(SEED001, BUGGY, &common);
            text.expect_code(1);
            let report = report_of_run(&text.stdout);
            assert_eq!(
                Some(report.lines().last().unwrap()),
                key["replay"]
                    .as_str()
                    .map(|r| format!("replay: {r}"))
                    .as_deref()
            );
            match &first {
                None => first = Some((key, report)),
                Some((k, r)) => {
                    assert_eq!(k, &key, "seed {seed} --jobs {jobs}");
                    assert_eq!(r, &report, "seed {seed} --jobs {jobs}");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 5. Knob ablation through the CLI

#[test]
fn old_pmd_knobs_bring_the_bad_pmd_back_on_linux_6_5() {
    // Same budget, fixed profile: clean without the knobs, and not
    // vacuously (some coverage mark of the racy paths was reached) ...
    let clean = run_cli(SEED001, FIXED, &["--budget", "2000", "--json"]);
    clean.expect_code(0);
    let v = clean.json_lines().remove(0);
    assert_eq!(check_run_json(&v, SEED001, FIXED), "clean");
    let marks = v["marks"].as_object().unwrap_or_else(|| panic!("{v}"));
    assert!(
        marks.values().any(|n| n.as_u64() > Some(0)),
        "{FIXED} clean but no coverage mark reached: {v}"
    );
    // ... a bad pmd with them, replayable from its token (which carries
    // the knobs).
    let mut args = vec!["run", SEED001, "--profile", FIXED, "--budget", "2000"];
    args.extend(knob_args(&OLD_PMD_KNOBS));
    let report = assert_replays_byte_for_byte(&args, &[]);
    let mut lines = report.lines();
    let title = lines.next().unwrap();
    assert!(title.contains("bad pmd"), "{report}");
    assert!(
        title.ends_with(&format!("[001-bad-pmd.mmr, {FIXED}]")),
        "{title}"
    );
    let origin = lines.next().unwrap();
    assert!(
        origin.starts_with(&format!(
            "profile={FIXED} knobs={} ",
            OLD_PMD_KNOBS.join(",")
        )),
        "{origin}"
    );
    let token = token_of_report(&report);
    assert!(
        token.starts_with(&format!("mmr1:{FIXED}:{}:", OLD_PMD_KNOBS.join(","))),
        "{token}"
    );
}

#[test]
fn unstable_check_removes_the_null_deref_on_linux_6_1_160() {
    let p = "linux-6.1.160";
    // The 6.1.160 backport dropped pmd_trans_unstable() from
    // change_pte_range: a NULL split PTE lock ...
    let out = run_cli(VARIANT_DONTNEED, p, &["--budget", "3000", "--json"]);
    out.expect_code(1);
    let v = out.json_lines().remove(0);
    assert_eq!(check_run_json(&v, VARIANT_DONTNEED, p), "finding");
    let title = v["finding"]["title"].as_str().unwrap();
    assert!(title.contains("NULL pointer dereference"), "{v}");
    // The oops's call trace is the scanner's call chain at the lock (the
    // finding as explored, untraced), not a fixed text.
    let details: Vec<&str> = v["finding"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    let at = details.iter().position(|d| *d == "Call Trace:").unwrap();
    let end = details.iter().position(|d| *d == " </TASK>").unwrap();
    assert_eq!(
        details[at + 1..end],
        [
            " <TASK>",
            " pte_offset_map_lock",
            " change_pte_range",
            " change_pmd_range",
            " change_pud_range",
            " change_p4d_range",
            " change_protection_range",
            " change_protection",
            " change_prot_numa",
            " task_numa_work",
        ],
        "{v}"
    );

    // ... which putting the check back removes. 3000 executions suffice
    // (100000 were clean too when this test was written), and the mark
    // proves the window was reached many times.
    let out = run_cli(
        VARIANT_DONTNEED,
        p,
        &[
            "--budget",
            "3000",
            "--json",
            "--knob",
            "change_pte_range_unstable_check=on",
        ],
    );
    out.expect_code(0);
    let v = out.json_lines().remove(0);
    assert_eq!(check_run_json(&v, VARIANT_DONTNEED, p), "clean");
    assert_eq!(v["executions"], 3000, "{v}");
    assert_eq!(
        v["knobs"],
        serde_json::json!(["change_pte_range_unstable_check=on"])
    );
    let reached = v["marks"][MARK_FALL_THROUGH].as_u64().unwrap_or(0);
    assert!(
        reached >= 10,
        "race window '{MARK_FALL_THROUGH}' reached {reached} times only: {v}"
    );
}

// ---------------------------------------------------------------------------
// 6. The report text

#[test]
fn report_snapshot_seed001_linux_6_1_159_seed0() {
    let out = run_cli(SEED001, BUGGY, &["--seed", "0"]);
    out.expect_code(1);
    let report = report_of_run(&out.stdout);
    insta::assert_snapshot!("seed001_linux_6_1_159_seed0_report", report);
}

// ---------------------------------------------------------------------------
// 7. list and seeds

#[test]
fn list_mentions_every_profile_knob_and_seed() {
    let out = mmrace(&["list"]);
    out.expect_code(0);
    assert_eq!(out.stderr, "");
    let profiles = mm::profiles();
    assert!(profiles.len() >= 4);
    for p in &profiles {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(p.name)),
            "profile {} not listed:\n{}",
            p.name,
            out.stdout
        );
    }
    assert!(mm::profile::KNOBS.len() >= 3);
    for k in mm::profile::KNOBS {
        let line = out
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{} ", k.name)))
            .unwrap_or_else(|| panic!("knob {} not listed:\n{}", k.name, out.stdout));
        // One value per profile, each an allowed value.
        let values = line
            .split_once('[')
            .and_then(|(_, r)| r.split_once(']'))
            .map(|(v, _)| v.split_whitespace().collect::<Vec<_>>())
            .unwrap_or_else(|| panic!("no [values] on knob line {line:?}"));
        assert_eq!(values.len(), profiles.len(), "{line}");
        for v in values {
            assert!(
                k.values.contains(&v),
                "{line}: {v} is not a value of {}",
                k.name
            );
        }
    }
    for entry in fs::read_dir(workspace().join("scenarios/seeds")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".mmr") {
            assert!(out.stdout.contains(&name), "seed {name} not listed");
        }
    }
}

#[test]
fn seeds_quiet_passes_on_seed_001() {
    let dir = TempDir::new("seeds-quiet");
    let file = seed_with_budget(&dir, SEED001, 2000);
    let n = expected_profiles(&file).len();
    let out = expect_seeds_pass(dir.path(), n);
    // --quiet prints no reports.
    assert!(!out.stdout.contains("replay: "), "{}", out.stdout);
}

#[test]
fn seeds_fails_on_a_wrong_expectation() {
    let dir = TempDir::new("seeds-wrong");
    let text = fs::read_to_string(workspace().join(SEED001)).unwrap();
    // Replace the expect lines, in place, by one true and one false one.
    let mut wrong: Vec<String> = Vec::new();
    let mut replaced = false;
    for l in text.lines() {
        if l.trim_start().starts_with("expect ") {
            if !replaced {
                wrong.push(format!("expect {BUGGY}: clean"));
                wrong.push(format!("expect {FIXED}: clean"));
                replaced = true;
            }
        } else if l.starts_with("budget ") {
            wrong.push("budget 300".to_string());
        } else {
            wrong.push(l.to_string());
        }
    }
    assert!(replaced);
    dir.write("wrong.mmr", &wrong.join("\n"));
    let out = mmrace(&["seeds", "--quiet", "--dir", dir.path()]);
    out.expect_code(1);
    assert_eq!(
        out.stdout.lines().last(),
        Some("1 passed, 1 failed"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("FAIL"), "{}", out.stdout);
}

// ---------------------------------------------------------------------------
// 8. Seed 000 (Xen PV, 3.12-era profiles)

const SEED000: &str = "scenarios/seeds/000-bad-page-map.mmr";

#[test]
fn seeds_json_lists_000_with_every_verdict_matching() {
    let dir = TempDir::new("seeds-000");
    let mut expected = Vec::new();
    for name in ["000-bad-page-map.mmr", "000-variant-numa-scan.mmr"] {
        let text = fs::read_to_string(workspace().join("scenarios/seeds").join(name)).unwrap();
        let file = dir.write(name, &text);
        for p in expected_profiles(&file) {
            expected.push((file.to_str().unwrap().to_string(), p));
        }
    }
    let out = mmrace(&["seeds", "--json", "--dir", dir.path()]);
    out.expect_code(0);
    let lines = out.json_lines();
    assert_eq!(lines.len(), expected.len(), "{}", out.stdout);
    for (v, (file, profile)) in lines.iter().zip(&expected) {
        check_run_json(v, file, profile);
        assert_eq!(v["matches"], true, "{v}");
    }
    let seed = lines
        .iter()
        .find(|v| {
            v["profile"] == "linux-3.12.7-xen"
                && v["scenario"]
                    .as_str()
                    .unwrap()
                    .ends_with("000-bad-page-map.mmr")
        })
        .expect("3.12.7-xen row");
    let later: Vec<&str> = seed["finding"]["aftermath"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        later
            .iter()
            .any(|l| l.starts_with("BUG: Bad page map in process test")),
        "{later:?}"
    );
    assert!(
        later.contains(&"BUG: Bad rss-counter state mm:ffff880040000400 idx:1 val:1"),
        "{later:?}"
    );
    assert_eq!(seed["complete"], true, "one schedule, explored completely");
}

#[test]
fn report_snapshot_seed000_linux_3_12_7_xen() {
    let out = run_cli(SEED000, "linux-3.12.7-xen", &[]);
    out.expect_code(1);
    let report = report_of_run(&out.stdout);
    insta::assert_snapshot!("seed000_linux_3_12_7_xen_report", report);
}

#[test]
fn exit_2_when_the_platform_or_layout_does_not_fit() {
    let out = run_cli(SEED000, "linux-6.5", &["--knob", "platform=xen-pv"]);
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("Xen PV is modelled with the 3.x-era and 2.6-era pte paths only"),
        "{}",
        out.stderr
    );
    let out = run_cli(SEED000, "linux-3.12.7", &["--knob", "pte_layout=v5"]);
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("allowed values: v2_6_34, v3_12, v3_16, v4_19"),
        "{}",
        out.stderr
    );
    let out = run_cli(SEED001, "linux-3.12.7-xen", &[]);
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("THP is not modelled for the 3.x-era pte paths"),
        "{}",
        out.stderr
    );
    // Swap exists in the 2.6.34 era only.
    let dir = TempDir::new("reclaim-6x");
    let file = dir.write(
        "reclaim.mmr",
        "process a {\n  setup { p = mmap(NULL, 4K, PROT_READ|PROT_WRITE, \
         MAP_PRIVATE|MAP_ANONYMOUS); write(p, 1) }\n  thread kswapd { reclaim(p, 4K) }\n}\n",
    );
    let file = file.to_str().expect("UTF-8 path");
    let out = run_cli(file, "linux-6.5", &[]);
    out.expect_code(2);
    assert!(
        out.stderr.contains(&format!(
            "{file}: reclaim()/hibernate() need swap, which is modelled for the 2.6.34 era only \
             (profile linux-6.5 has pte_layout=v4_19)"
        )),
        "{}",
        out.stderr
    );
}

const FORK_EXAMPLE: &str = "scenarios/examples/fork-cow-exit.mmr";

#[test]
fn fork_example_runs_clean_and_meets_its_expectations() {
    expect_clean_run(FORK_EXAMPLE, BUGGY, 300);
    let examples = workspace().join("scenarios/examples");
    let n: usize = std::fs::read_dir(&examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "mmr"))
        .map(|p| expected_profiles(&p).len())
        .sum();
    expect_seeds_pass("scenarios/examples", n);
}

/// A fork the model cannot do (here: of a THP) is an input error at the
/// fork's line and column, found when the setup runs it.
#[test]
fn exit_2_on_a_fork_the_model_cannot_do() {
    let dir = TempDir::new("fork-thp");
    let file = dir.write(
        "fork-thp.mmr",
        "machine thp=always\nprocess app {\n  setup {\n    \
         p = mmap(NULL, 2M, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, align=2M)\n    \
         write(p, 1)\n    c = fork()\n  }\n  thread t { read(p) }\n  \
         child c { thread u { read(p) } }\n}\n",
    );
    let out = run_cli(file.to_str().unwrap(), FIXED, &[]);
    out.expect_usage_error(&["fork-thp.mmr:6:5", "copy_huge_pmd() is not modelled"]);
    let thread_fork = dir.write(
        "fork-in-thread.mmr",
        "process app {\n  thread t { c = fork() }\n  child c { thread u { exit() } }\n}\n",
    );
    let out = run_cli(thread_fork.to_str().unwrap(), FIXED, &[]);
    out.expect_usage_error(&[
        "fork-in-thread.mmr:3:3",
        "child 'c' is forked by a thread, so it may only have a setup",
    ]);
}

#[test]
fn seed000_ablation_from_the_command_line() {
    run_cli(SEED000, "linux-3.14.5-xen", &[]).expect_code(0);
    let out = run_cli(
        SEED000,
        "linux-3.14.5-xen",
        &["--knob", "numa_helpers_pv_ops=off"],
    );
    out.expect_code(1);
    assert!(
        out.stdout.contains("BUG: Bad page map in process test"),
        "{}",
        out.stdout
    );
}

#[test]
fn seed000_numa_scan_replays_byte_for_byte() {
    let report = assert_replays_byte_for_byte(
        &[
            "run",
            "scenarios/seeds/000-variant-numa-scan.mmr",
            "--profile",
            "linux-3.12.7-xen",
        ],
        &[],
    );
    assert!(report.starts_with("INV-XEN-ABI"), "{report}");
    assert!(
        report.contains("BUG: Bad page map in process test"),
        "{report}"
    );
}

#[test]
fn conform_rejects_bad_parameters() {
    let out = mmrace(&["conform", "--ops", "0"]);
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("--sequences and --ops must be at least 1"),
        "{}",
        out.stderr
    );
    mmrace(&["conform", "--sequences", "0"]).expect_code(2);
    let out = mmrace(&["conform", "--sequences", "1", "--knob", "no_such_knob=on"]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("unknown knob 'no_such_knob'"),
        "{}",
        out.stderr
    );
}

#[test]
fn conform_json_reports_the_run() {
    if mmrace::conform::host_supported().is_err() {
        eprintln!("skipped: the host kernel cannot serve as the oracle here");
        return;
    }
    let out = mmrace(&[
        "conform",
        "--sequences",
        "3",
        "--ops",
        "60",
        "--files",
        "--json",
    ]);
    out.expect_code(0);
    let v: Value = serde_json::from_str(out.stdout.trim()).expect("one JSON object");
    assert_eq!(v["sequences"], 3);
    assert_eq!(v["ops"], 180);
    assert!(v["divergence"].is_null(), "{v}");
    assert!(v["knobs"].as_array().unwrap().len() >= 4, "{v}");
    assert!(v["ops_per_sec"].as_f64().unwrap() > 0.0);
}

// ---------------------------------------------------------------------------
// 9. Shards and merge

#[test]
fn shards_merge_to_the_whole_runs_result() {
    let dir = TempDir::new("shards");
    let whole = mmrace(&["run", SEED001, "--profile", BUGGY, "--json", "--jobs", "1"]);
    whole.expect_code(1);
    let whole: Value = serde_json::from_str(whole.stdout.trim()).unwrap();
    let mut lines = String::new();
    for k in 0..3 {
        let shard = format!("{k}/3");
        let out = mmrace(&[
            "run",
            SEED001,
            "--profile",
            BUGGY,
            "--json",
            "--shard",
            &shard,
        ]);
        assert!(out.code == 0 || out.code == 1, "{}", out.stderr);
        lines.push_str(&out.stdout);
    }
    let file = dir.write("shards.jsonl", &lines);
    let merged = mmrace(&["merge", file.to_str().unwrap()]);
    merged.expect_code(1);
    let m: Value = serde_json::from_str(merged.stdout.trim()).unwrap();
    assert_eq!(
        m["finding"]["execution"], whole["finding"]["execution"],
        "{m}"
    );
    assert_eq!(m["finding"]["replay"], whole["finding"]["replay"], "{m}");
    assert_eq!(m["shard"], "0,1,2/3");

    // Clean shards add up to the whole budget; a missing shard is an error.
    let mut lines = Vec::new();
    for k in 0..3 {
        let shard = format!("{k}/3");
        let out = mmrace(&[
            "run",
            SEED001,
            "--profile",
            FIXED,
            "--json",
            "--budget",
            "100",
            "--shard",
            &shard,
        ]);
        out.expect_code(0);
        lines.push(out.stdout);
    }
    let all = dir.write("clean.jsonl", &lines.concat());
    let merged = mmrace(&["merge", all.to_str().unwrap()]);
    merged.expect_code(0);
    let m: Value = serde_json::from_str(merged.stdout.trim()).unwrap();
    assert_eq!(m["executions"], 100);
    let two = dir.write("two.jsonl", &lines[..2].concat());
    let out = mmrace(&["merge", two.to_str().unwrap()]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("shards 2/3 are missing"),
        "{}",
        out.stderr
    );
    mmrace(&["run", SEED001, "--profile", FIXED, "--shard", "3/3"]).expect_code(2);
}

// ---------------------------------------------------------------------------
// Seed 003: regular files.

const SEED003: &str = "scenarios/seeds/003-invalidate-linear.mmr";

/// Race I's report: the interleaving, the orphan page, what read() returns
/// instead, and the file's page cache and disk.
#[test]
fn seed003_linux_2_6_22_report() {
    let out = run_cli(SEED003, "linux-2.6.22", &[]);
    out.expect_code(1);
    let report = report_of_run(&out.stdout);
    assert!(report.contains("it was removed from the page cache while a fault was mapping it"));
    insta::assert_snapshot!("seed003_linux_2_6_22_report", report);
}

/// `--want` goes on past findings that do not name its text: with the
/// debug check on, the first finding is the orphan (the fault maps the
/// page after its removal), and `--want "kernel BUG"` finds the order
/// that maps it before.
#[test]
fn want_looks_past_other_findings() {
    let debug = ["--knob", "remove_mapped_check=on"];
    let first = run_cli(SEED003, "linux-2.6.22", &debug);
    first.expect_code(1);
    assert!(first.stdout.contains("INV-PC-COHERENT"), "{}", first.stdout);
    let mut args = debug.to_vec();
    args.extend(["--want", "kernel BUG"]);
    let bug = run_cli(SEED003, "linux-2.6.22", &args);
    bug.expect_code(1);
    assert!(
        bug.stdout.contains("kernel BUG at mm/filemap.c:123!"),
        "{}",
        bug.stdout
    );
    let seeds = mmrace(&["seeds", "--want", "x"]);
    seeds.expect_code(2);
    assert!(
        seeds.stderr.contains("--want does not apply to seeds"),
        "{}",
        seeds.stderr
    );
}

/// A regular file needs the 2.6-era paths: an input error naming the file
/// and the profiles to use.
#[test]
fn a_file_scenario_under_a_modern_profile_is_an_input_error() {
    let out = run_cli(SEED003, "linux-6.5", &[]);
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("003-invalidate-linear.mmr: regular files")
            && out.stderr.contains("use linux-2.6.22 or linux-2.6.23"),
        "{}",
        out.stderr
    );
}

// ---------------------------------------------------------------------------
// Statement outcomes.

/// A store to a read-only mapping and an mprotect of nothing: a clean run
/// says what each did, and warns (with file:line:col) that they failed the
/// same way in every execution; `--json` carries both.
#[test]
fn a_clean_run_says_what_each_statement_did() {
    let dir = TempDir::new("outcomes");
    let file = dir.write(
        "vacuous.mmr",
        "process a {\n  setup { p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS) }\n  \
         thread t {\n    write(p + 1, 3)\n  }\n}\nprocess b {\n  thread u {\n    \
         mprotect(0x1000000, 4096, PROT_NONE)\n  }\n}\n",
    );
    let file = file.to_str().unwrap();
    let out = run_cli(file, "linux-6.5", &[]);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("write(p + 1, 3)  line 4: SIGSEGV (SEGV_ACCERR) in ")
            && out
                .stdout
                .contains("mprotect(0x1000000, 4096, PROT_NONE)  line 9: -ENOMEM in "),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains(
            "vacuous.mmr:4:5: write(p + 1, 3) raised SIGSEGV (SEGV_ACCERR) in every execution"
        ) && out
            .stderr
            .contains("vacuous.mmr:9:5: mprotect(0x1000000, 4096, PROT_NONE) returned -ENOMEM"),
        "{}",
        out.stderr
    );
    let json = run_cli(file, "linux-6.5", &["--json"]);
    let j = &json.json_lines()[0];
    let statements = j["statements"].as_array().expect("statements");
    assert!(statements
        .iter()
        .any(|s| s["line"] == 4 && s["outcomes"][0][0] == "SIGSEGV (SEGV_ACCERR)"));
    assert_eq!(j["warnings"].as_array().map(Vec::len), Some(2));
    // Saying so silences the warnings.
    let said = dir.write(
        "said.mmr",
        "process a {\n  setup { p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS) }\n  \
         thread t {\n    write(p + 1, 3) => SIGSEGV\n  }\n}\nprocess b {\n  thread u {\n    \
         mprotect(0x1000000, 4096, PROT_NONE) => -ENOMEM\n  }\n}\n",
    );
    let quiet = run_cli(said.to_str().unwrap(), "linux-6.5", &[]);
    quiet.expect_code(0);
    assert!(!quiet.stderr.contains("warning"), "{}", quiet.stderr);
}

/// The seed and sanity files need no warning: each statement that fails
/// in every execution says so.
#[test]
fn the_seed_and_sanity_files_have_no_warning() {
    for dir in ["scenarios/seeds", "scenarios/sanity"] {
        let out = mmrace(&["seeds", "--dir", dir, "--quiet", "--budget", "50"]);
        assert!(!out.stderr.contains("warning"), "{dir}: {}", out.stderr);
    }
}
