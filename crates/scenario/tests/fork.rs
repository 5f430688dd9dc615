//! fork() and exit() in the interpreter: the child gets a copy-on-write
//! copy of its parent's address space, exit() tears an mm down when its
//! last task leaves (and only then, and only once), and forks the model
//! cannot do are input errors at their line and column.

use std::path::Path;
use std::sync::Arc;

use explore::rt::{run_execution, ExecutionConfig, ExecutionResult, Workspace};
use explore::strategy::RandomWalk;
use explore::trace::What;
use explore::verify::{Mode, VerifyConfig, VerifyOutcome};
use explore::InternalKind;
use scenario::interp::ScenarioHarness;
use scenario::Scenario;

mod common;
use common::{harness, portfolio};

const EXAMPLE: &str = "scenarios/examples/fork-cow-exit.mmr";

fn example_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(EXAMPLE);
    std::fs::read_to_string(path).expect("read the fork example")
}

fn parse(name: &str, src: &str) -> Arc<Scenario> {
    Arc::new(scenario::parse_str(name, src).unwrap_or_else(|e| panic!("{e}")))
}

/// Every interleaving within two preemptions, collecting every finding
/// and final state.
fn verify_all(h: &ScenarioHarness, mode: Mode) -> VerifyOutcome {
    let config = VerifyConfig {
        mode,
        stop_at_finding: false,
        ..VerifyConfig::new(2, 100_000, 200_000, 1)
    };
    let out = explore::verify(h, &config).expect("no internal error");
    assert!(out.complete, "verification did not complete");
    out
}

/// The line of a final state that describes process `name`.
fn process_line<'a>(state: &'a str, name: &str) -> &'a str {
    let alive = format!("(process {name})");
    let exited = format!("(process {name}, exited)");
    state
        .lines()
        .find(|l| l.contains(&alive) || l.contains(&exited))
        .unwrap_or_else(|| panic!("no line for process {name} in:\n{state}"))
}

#[test]
fn the_child_reads_what_the_parent_held_at_the_fork() {
    let s = parse(EXAMPLE, &example_text());
    for profile in ["linux-6.1.159", "linux-6.5"] {
        let out = verify_all(&harness(&s, profile, &[]), Mode::Dpor);
        assert_eq!(out.findings.len(), 0, "{profile}: {:?}", out.findings);
        assert!(!out.final_states.is_empty());
        for state in &out.final_states {
            // The reader thread keeps the parent alive to the end with
            // both its pages; the child's only thread exited, so its
            // copy is gone before the teardown.
            let parent = process_line(state, "parent");
            assert!(parent.contains("(process parent): MM_FILEPAGES=0 MM_ANONPAGES=2"));
            let child = process_line(state, "c");
            assert!(
                child.contains("(process c, exited): MM_FILEPAGES=0 MM_ANONPAGES=0"),
                "{child}"
            );
            assert!(child.ends_with("pgtables_bytes=0"), "{child}");
        }
    }
}

#[test]
fn a_wrong_expectation_on_either_side_of_the_fork_is_a_finding() {
    let text = example_text();
    let cases = [
        // The child sees the pre-fork byte, not the parent's later write.
        (
            "setup { read(p, expect=0x22) }",
            "setup { read(p, expect=0x11) }",
            "read returned 0x22, the scenario expected 0x11",
        ),
        // The parent does not see the child's write after COW.
        (
            "read(p + 4K, expect=0x22) }",
            "read(p + 4K, expect=0x33) }",
            "read returned 0x22, the scenario expected 0x33",
        ),
    ];
    for (right, wrong, title) in cases {
        assert!(text.contains(right), "the example lost {right:?}");
        let s = parse("wrong.mmr", &text.replacen(right, wrong, 1));
        let out = verify_all(&harness(&s, "linux-6.5", &[]), Mode::Dpor);
        assert!(
            out.findings.iter().any(|f| f.contains(title)),
            "{wrong}: {:?}",
            out.findings
        );
    }
}

/// One execution under a random schedule, traced.
fn traced(h: &ScenarioHarness, seed: u64) -> ExecutionResult {
    let config = ExecutionConfig {
        steps_max: 100_000,
        tracing: true,
        track_conflicts: false,
        racy: &[],
    };
    let mut strategy = RandomWalk::new(seed);
    run_execution(h, &mut strategy, config, &mut Workspace::default()).unwrap()
}

/// The kernel functions each actor entered in one traced execution under
/// a random schedule, as (actor name, function).
fn entered(h: &ScenarioHarness, seed: u64) -> Vec<(String, &'static str)> {
    let r = traced(h, seed);
    assert_eq!(r.finding, None, "seed {seed}");
    calls_of(&r)
}

/// The kernel functions each actor of `r` entered, as (actor, function).
fn calls_of(r: &ExecutionResult) -> Vec<(String, &'static str)> {
    r.trace
        .iter()
        .filter_map(|e| match e.what {
            What::Enter(f) => Some((r.actor_names[e.actor].clone(), f)),
            _ => None,
        })
        .collect()
}

fn count(calls: &[(String, &str)], actor: &str, function: &str) -> usize {
    calls
        .iter()
        .filter(|(a, f)| a == actor && *f == function)
        .count()
}

#[test]
fn exit_tears_down_an_mm_when_its_last_task_leaves_and_only_once() {
    let s = parse(EXAMPLE, &example_text());
    let h = harness(&s, "linux-6.1.159", &[]);
    for seed in 0..20 {
        let calls = entered(&h, seed);
        // The child's only thread is its last task: its exit() runs
        // exit_mmap for the child.
        assert_eq!(count(&calls, "cwriter", "mmput"), 1, "seed {seed}");
        assert_eq!(count(&calls, "cwriter", "exit_mmap"), 1, "seed {seed}");
        // The scanner's exit() leaves the reader using the parent's mm.
        assert_eq!(count(&calls, "scanner", "mmput"), 1, "seed {seed}");
        assert_eq!(count(&calls, "scanner", "exit_mmap"), 0, "seed {seed}");
        // The teardown exits the parent, and not the child again.
        assert_eq!(count(&calls, "setup", "exit_mmap"), 1, "seed {seed}");
        let all = calls.iter().filter(|(_, f)| *f == "exit_mmap").count();
        assert_eq!(all, 2, "seed {seed}: one exit_mmap per process");
    }
}

#[test]
fn a_child_without_threads_lives_to_the_end_unless_its_setup_exits() {
    let src = |child_setup: &str| {
        format!(
            "process a {{\n  setup {{\n    p = mmap(NULL, 4K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)\n    \
             write(p, 7)\n    c = fork()\n  }}\n  thread t {{ write(p, 8) }}\n  \
             child c {{ setup {{ {child_setup} }} }}\n}}\n"
        )
    };
    let sleeping = parse("sleeping.mmr", &src("read(p, expect=7)"));
    let out = verify_all(&harness(&sleeping, "linux-6.5", &[]), Mode::Dpor);
    assert!(out.findings.is_empty(), "{:?}", out.findings);
    for state in &out.final_states {
        assert!(
            process_line(state, "c").contains("(process c): MM_FILEPAGES=0 MM_ANONPAGES=1"),
            "{state}"
        );
    }
    let exiting = parse("exiting.mmr", &src("read(p, expect=7); exit()"));
    let h = harness(&exiting, "linux-6.5", &[]);
    for state in &verify_all(&h, Mode::Dpor).final_states {
        assert!(
            process_line(state, "c").contains("(process c, exited): MM_FILEPAGES=0 MM_ANONPAGES=0"),
            "{state}"
        );
    }
    // Its exit ran in the setup, where the child's task lives.
    let calls = entered(&h, 0);
    assert_eq!(count(&calls, "setup", "exit_mmap"), 2);
}

/// The accesses to one object each actor announced in a traced execution,
/// as (actor name, label), found by the label of one of them.
fn accesses_like(h: &ScenarioHarness, seed: u64, label: &str) -> Vec<(String, &'static str)> {
    let r = traced(h, seed);
    let accesses: Vec<_> = r
        .trace
        .iter()
        .filter_map(|e| match e.what {
            What::Access { access, .. } => Some((e.actor, access)),
            _ => None,
        })
        .collect();
    let Some((_, first)) = accesses.iter().find(|(_, a)| a.label == label) else {
        return Vec::new();
    };
    accesses
        .iter()
        .filter(|(_, a)| a.object == first.object)
        .map(|(actor, a)| (r.actor_names[*actor].clone(), a.label))
        .collect()
}

/// exit() drops mm_users while a NUMA scan of the same process reads it
/// (the single-threaded shortcut): both are announced on the same
/// object, so DPOR orders them both ways, and it reaches what exhaustive
/// search reaches.
#[test]
fn dpor_matches_exhaustive_search_with_fork_and_exit() {
    let src = "machine numa-nodes=2\nprocess a {\n  setup {\n    \
               p = mmap(NULL, 8K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)\n    \
               write(p, 0..8K, 1)\n    c = fork()\n    write(p, 2)\n  }\n  \
               thread scan node=1 { numa_scan(p, 8K); read(p, expect=2) }\n  \
               thread quit { exit() }\n  \
               child c { thread cw { read(p + 4K, expect=1); exit() } }\n}\n";
    let s = parse("mm-users.mmr", src);
    let h = harness(&s, "linux-6.5", &[]);
    let read = "change_pte_range: atomic_read(&vma->vm_mm->mm_users) == 1";
    let users = accesses_like(&h, 0, read);
    assert!(users.contains(&("scan".to_string(), read)), "{users:?}");
    let put = "mmput: atomic_dec_and_test(&mm->mm_users)";
    assert!(users.contains(&("quit".to_string(), put)), "{users:?}");
    let (dpor, full) = (verify_all(&h, Mode::Dpor), verify_all(&h, Mode::Exhaustive));
    assert_eq!(dpor.findings, full.findings);
    assert_eq!(dpor.final_states, full.final_states);
    assert!(dpor.executions <= full.executions);
    assert!(full.findings.is_empty(), "{:?}", full.findings);
}

/// A fork of what the model cannot copy stops the run with an input
/// error naming the fork's line and column.
#[test]
fn forks_the_model_cannot_do_are_input_errors_at_the_fork() {
    let src = |machine: &str, align: &str| {
        format!(
            "machine {machine}\nprocess app {{\n  setup {{\n    \
             p = mmap(NULL, 2M, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS{align})\n    \
             write(p, 0x5a)\n    c = fork()\n  }}\n  thread t {{ read(p) }}\n  \
             child c {{ thread u {{ read(p) }} }}\n}}\n"
        )
    };
    let cases = [
        (
            src("thp=always", ", align=2M"),
            "linux-6.5",
            "copy_huge_pmd() is not modelled",
        ),
        (
            src("xen-pv", ""),
            "linux-3.12.7-xen",
            "fork under Xen PV is not modelled",
        ),
    ];
    for (text, profile, why) in cases {
        let s = parse("fork.mmr", &text);
        let err = match explore::explore(&harness(&s, profile, &[]), &portfolio(10, 10_000)) {
            Ok(out) => panic!("{profile}: ran, {:?}", out.found.map(|f| f.finding)),
            Err(e) => e,
        };
        assert_eq!(err.kind, InternalKind::Unsupported, "{err:?}");
        assert!(err.message.contains("fork.mmr:6:5"), "{}", err.message);
        assert!(err.message.contains(why), "{}", err.message);
    }
}

/// A page-table allocation that fails during the fork makes fork()
/// return -ENOMEM: the half-built child is torn down (no leak, no bad
/// rss counter) and the parent goes on without it.
#[test]
fn a_fork_that_runs_out_of_memory_leaves_no_trace() {
    let s = parse(EXAMPLE, &example_text());
    let h = harness(&s, "linux-6.5", &[("fail_page_alloc", "on")]);
    let out = explore::explore(&h, &portfolio(300, 100_000)).expect("no internal error");
    assert!(
        out.found.is_none(),
        "{:?}",
        out.found.map(|f| f.finding.title)
    );
    let failed = "dup_mmap: -ENOMEM (anon_vma_fork or copy_page_range)";
    assert!(out.marks.contains_key(failed), "{:?}", out.marks.keys());
    // Where the fork failed, the setup tore the half-built child down
    // (before the teardown exits the parent), and the child never ran.
    let failed_forks: Vec<ExecutionResult> = (0..100)
        .map(|seed| traced(&h, seed))
        .filter(|r| r.marks.contains(&failed))
        .collect();
    assert!(!failed_forks.is_empty(), "no failed fork in 100 executions");
    for r in failed_forks {
        let calls = calls_of(&r);
        let setup = count(&calls, "setup", "exit_mmap");
        assert_eq!(setup, 2, "the child's and the parent's exit_mmap");
        assert!(!calls.iter().any(|(actor, _)| actor == "cwriter"));
    }
}
