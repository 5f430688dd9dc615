//! `mmrace hunt`: the same seed gives the same scenarios and findings
//! whatever `--jobs`; a hunt killed at any moment resumes to the result an
//! uninterrupted one has; findings group by signature; each written
//! scenario reproduces its finding with a plain `run`.

use std::path::{Path, PathBuf};
use std::process::Command;

use mmrace::hunt::{self, HuntOptions, HuntState, Stop};
use mmrace::run::{run, RunOptions};

/// A small hunt under the buggy seed-003 profile: two threads, one
/// process, loads, stores and writes to a file. It finds the fault vs
/// invalidate race (INV-PC-COHERENT) in a few of its scenarios.
fn options(out: &Path, scenarios: u64) -> HuntOptions {
    let mut o = HuntOptions::new("linux-2.6.22", out);
    o.ops = hunt::parse_ops("read,write,pwrite").unwrap();
    o.threads = (2, 2);
    o.processes = (1, 1);
    o.stop = Stop::Scenarios(scenarios);
    o
}

/// A hunt's output directory, removed when the test is done with it.
struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("mmrace-hunt-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    TempDir(dir)
}

/// The state with what depends on time or on the directory taken out.
fn comparable(mut s: HuntState, dir: &Path) -> HuntState {
    s.seconds = 0.0;
    let strip = |p: &mut String| *p = p.replace(&dir.display().to_string(), "DIR");
    for d in &mut s.distinct {
        strip(&mut d.scenario);
        strip(&mut d.report);
    }
    s
}

/// Every written file, by name, with the directory's path taken out.
fn files(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "mmr" || x == "txt"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                text.replace(&dir.display().to_string(), "DIR"),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn the_same_seed_gives_the_same_scenarios_and_findings_whatever_the_jobs() {
    let (a, b) = (temp_dir("det-a"), temp_dir("det-b"));
    let mut one = options(&a, 60);
    one.jobs = 1;
    let mut two = options(&b, 60);
    two.jobs = 2;
    let sa = hunt::hunt(&one).unwrap();
    let sb = hunt::hunt(&two).unwrap();
    assert!(!sa.distinct.is_empty(), "the hunt found nothing to compare");
    assert_eq!(comparable(sa, &a), comparable(sb, &b));
    assert_eq!(files(&a), files(&b));
    for i in [0, 7, 59] {
        assert_eq!(
            hunt::scenario_text(&one, i).unwrap(),
            hunt::scenario_text(&two, i).unwrap()
        );
    }
    let mut other = options(&a, 60);
    other.seed = 1;
    assert_ne!(
        hunt::scenario_text(&one, 3).unwrap(),
        hunt::scenario_text(&other, 3).unwrap(),
        "another seed generates other scenarios"
    );
}

#[test]
fn findings_group_by_signature_and_each_written_scenario_reproduces() {
    let dir = temp_dir("group");
    let state = hunt::hunt(&options(&dir, 60)).unwrap();
    let found: u64 = state.distinct.iter().map(|d| d.count).sum();
    assert_eq!(
        found,
        state.scenarios - state.clean - state.coverage.unsupported.len() as u64
    );
    assert!(
        found > state.distinct.len() as u64,
        "no two scenarios shared a signature ({found} findings, {} distinct)",
        state.distinct.len()
    );
    for d in &state.distinct {
        let text = std::fs::read_to_string(&d.scenario).unwrap();
        let want = text
            .lines()
            .find_map(|l| l.strip_prefix("expect linux-2.6.22: finding \""))
            .and_then(|l| l.strip_suffix('"'))
            .unwrap_or_else(|| panic!("no expect line in\n{text}"))
            .to_string();
        assert!(
            d.shape.contains(&want) || d.check == want,
            "{want} / {}",
            d.shape
        );
        let r = run(Path::new(&d.scenario), &RunOptions::new("linux-2.6.22")).unwrap();
        let f = r.outcome.found.expect("the written scenario reproduces");
        assert!(f.finding.title.contains(&want), "{}", f.finding.title);
        let report = std::fs::read_to_string(&d.report).unwrap();
        assert!(report.starts_with(&f.finding.title), "{report}");
        assert!(report.contains("replay: mmrace replay 'mmr1:linux-2.6.22:"));
        // Shrunk: one process and at most the generated two threads.
        assert_eq!(text.matches("process ").count(), 1, "{text}");
    }
}

#[test]
fn a_resumed_hunt_ends_as_an_uninterrupted_one() {
    let (whole, parts) = (temp_dir("whole"), temp_dir("parts"));
    let fresh = hunt::hunt(&options(&whole, 60)).unwrap();
    hunt::hunt(&options(&parts, 25)).unwrap();
    let resumed = hunt::hunt(&options(&parts, 60)).unwrap();
    assert_eq!(comparable(fresh, &whole), comparable(resumed, &parts));
    assert_eq!(files(&whole), files(&parts));
}

#[test]
fn a_killed_hunt_resumes_and_loses_nothing() {
    let (whole, killed) = (temp_dir("uncut"), temp_dir("killed"));
    let fresh = hunt::hunt(&options(&whole, 60)).unwrap();
    let bin = env!("CARGO_BIN_EXE_mmrace");
    let args = |dir: &Path| {
        vec![
            "hunt".to_string(),
            "--profile=linux-2.6.22".into(),
            "--ops=read,write,pwrite".into(),
            "--threads=2".into(),
            "--processes=1".into(),
            "--scenarios=60".into(),
            "--jobs=1".into(),
            "--quiet".into(),
            format!("--out={}", dir.display()),
        ]
    };
    // Killed at some point of its run: wherever that is, the directory
    // holds a consistent state to resume from.
    let mut child = Command::new(bin).args(args(&killed)).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(400));
    let _ = child.kill();
    let _ = child.wait();
    let out = Command::new(bin).args(args(&killed)).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state: HuntState =
        serde_json::from_str(&std::fs::read_to_string(killed.join("hunt-state.json")).unwrap())
            .unwrap();
    assert_eq!(comparable(fresh, &whole), comparable(state, &killed));
    assert_eq!(files(&whole), files(&killed));
}

#[test]
fn another_hunt_in_the_same_directory_is_a_usage_error() {
    let dir = temp_dir("other");
    hunt::hunt(&options(&dir, 3)).unwrap();
    let mut other = options(&dir, 3);
    other.seed = 9;
    let e = hunt::hunt(&other).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("holds another hunt"), "{e}");
}

#[test]
fn bad_hunt_arguments_are_usage_errors_naming_the_value() {
    let e = hunt::parse_ops("read,mlock").unwrap_err();
    assert!(
        e.starts_with("unknown op 'mlock' (known: mmap, munmap"),
        "{e}"
    );
    assert!(hunt::parse_range("3..2").unwrap_err().contains("'3..2'"));
    assert!(hunt::parse_range("0").is_err());
    assert!(hunt::parse_duration("10x")
        .unwrap_err()
        .contains("s, m or h"));
    assert_eq!(hunt::parse_duration("2m").unwrap().as_secs(), 120);
    let dir = temp_dir("bad");
    let mut o = options(&dir, 1);
    o.ops = hunt::parse_ops("numa_scan").unwrap();
    let e = hunt::hunt(&o).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(
        e.to_string()
            .contains("none of --ops runs under linux-2.6.22"),
        "{e}"
    );
    let bin = env!("CARGO_BIN_EXE_mmrace");
    let out = Command::new(bin)
        .args(["hunt", "--profile", "linux-9.9", "--scenarios", "1"])
        .arg(format!("--out={}", dir.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(bin)
        .args([
            "hunt",
            "--profile",
            "linux-6.5",
            "--machine",
            "numa-nodes=99",
        ])
        .arg(format!("--out={}", dir.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--machine"));
}

#[test]
fn shrink_writes_a_smaller_scenario_that_reproduces_its_finding() {
    let dir = temp_dir("shrink");
    std::fs::create_dir_all(&*dir).unwrap();
    let seed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios/seeds/003-invalidate-linear.mmr");
    let file = dir.join("003.mmr");
    std::fs::copy(&seed, &file).unwrap();
    let bin = env!("CARGO_BIN_EXE_mmrace");
    let shrink = |profile: &str| {
        Command::new(bin)
            .args(["shrink", "--profile", profile])
            .arg(&file)
            .output()
            .unwrap()
    };
    let out = shrink("linux-2.6.22");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("shrunk from 2 thread(s), 4 statement(s) to 2 thread(s), 3 statement(s)"),
        "{stdout}"
    );
    assert!(stdout.contains("INV-PC-COHERENT"), "{stdout}");
    let shrunk = dir.join("003.shrunk.mmr");
    let text = std::fs::read_to_string(&shrunk).unwrap();
    assert!(text.contains("expect linux-2.6.22: finding \""), "{text}");
    let r = run(&shrunk, &RunOptions::new("linux-2.6.22")).unwrap();
    let f = r.outcome.found.expect("the shrunk scenario reproduces");
    assert!(f.finding.title.starts_with("INV-PC-COHERENT"));
    // Under the fixed kernel there is nothing to shrink.
    let out = shrink("linux-2.6.23");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to shrink"));
}
