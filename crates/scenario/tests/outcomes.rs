//! Statement outcomes: what each statement did over a run, the fatal
//! signal that kills a process, the warning for a statement that fails the
//! same way every time, and `=> ...` expectations, met and missed.

mod common;

use std::sync::Arc;

use common::portfolio;
use explore::{explore, FindingKind};
use scenario::ast::Outcome;
use scenario::interp::ScenarioHarness;
use scenario::outcome::{Did, StatementSummary};

fn harness(src: &str, profile: &str) -> ScenarioHarness {
    let s = Arc::new(scenario::parse_str("t.mmr", src).unwrap_or_else(|e| panic!("{e}")));
    ScenarioHarness::new(s, mm::profile(profile).unwrap()).unwrap()
}

/// Runs `src` and returns the statement summaries of a clean run.
fn summary(src: &str, budget: u64) -> Vec<StatementSummary> {
    let h = harness(src, "linux-6.5");
    let out = explore(&h, &portfolio(budget, 100_000)).unwrap();
    assert!(
        out.found.is_none(),
        "{:?}",
        out.found.map(|f| f.finding.title)
    );
    h.statement_summary()
}

fn at(summary: &[StatementSummary], line: u32) -> &StatementSummary {
    summary
        .iter()
        .find(|s| s.line == line)
        .expect("a statement on that line")
}

#[test]
fn parsed_outcomes() {
    let s = scenario::parse_str(
        "t.mmr",
        "process a {\n  thread t {\n    p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS) => ok\n    \
         write(p, 1) => SIGSEGV(SEGV_ACCERR) | ok\n    munmap(p, 4096) => 0 | -EINVAL\n  }\n}\n",
    )
    .unwrap();
    let body = &s.processes[0].threads[0].body;
    assert_eq!(body[0].expect, vec![Outcome::Ok]);
    assert_eq!(
        body[1].expect,
        vec![Outcome::Signal("SIGSEGV", Some("SEGV_ACCERR")), Outcome::Ok]
    );
    assert_eq!(
        body[2].expect,
        vec![Outcome::Value(0), Outcome::Errno("EINVAL")]
    );
}

#[test]
fn a_store_to_a_read_only_mapping_and_an_mprotect_of_nothing_say_what_they_did() {
    let src =
        "process a {\n  setup { p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS) }\n  \
               thread t {\n    write(p + 1, 3)\n  }\n}\nprocess b {\n  thread u {\n    \
               mprotect(0x1000000, 4096, PROT_NONE)\n  }\n}\n";
    let sum = summary(src, 50);
    let store = at(&sum, 4);
    assert_eq!(
        store.outcomes,
        vec![(Did::Signal("SIGSEGV", "SEGV_ACCERR"), store.executions)]
    );
    assert_eq!(
        store.line_text(),
        format!(
            "write(p + 1, 3)  line 4: SIGSEGV (SEGV_ACCERR) in {0}/{0}",
            store.executions
        )
    );
    let w = store.warning("t.mmr").expect("a warning");
    assert!(
        w.starts_with("warning: t.mmr:4:5: write(p + 1, 3) raised SIGSEGV"),
        "{w}"
    );
    let mprotect = at(&sum, 9);
    assert_eq!(
        mprotect.outcomes,
        vec![(Did::Errno("ENOMEM"), mprotect.executions)]
    );
    assert!(mprotect
        .warning("t.mmr")
        .unwrap()
        .contains("returned -ENOMEM"));
    assert!(at(&sum, 2).warning("t.mmr").is_none(), "the mmap succeeded");
}

/// A fatal signal kills the thread group: the faulting thread's later
/// statements and its sibling's next ones do not run, and the process's
/// mm is torn down (the last task to drop it runs exit_mmap) while the
/// other process goes on.
#[test]
fn a_fatal_signal_kills_the_whole_process() {
    let src = "process a {\n  setup { p = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS) }\n  \
               thread t {\n    write(p, 3)\n    read(p)\n  }\n  thread s {\n    read(p + 4096)\n    \
               read(p + 4096)\n  }\n}\nprocess b {\n  setup { q = mmap(NULL, 4096, PROT_READ|PROT_WRITE, \
               MAP_PRIVATE|MAP_ANONYMOUS) }\n  thread o {\n    write(q, 1)\n    read(q)\n  }\n}\n";
    let sum = summary(src, 300);
    let n = at(&sum, 4).executions;
    assert_eq!(
        at(&sum, 4).outcomes,
        vec![(Did::Signal("SIGSEGV", "SEGV_ACCERR"), n)]
    );
    assert_eq!(at(&sum, 5).not_run, n, "the faulting thread stops");
    let sibling_second = at(&sum, 9);
    assert!(
        sibling_second.not_run > 0,
        "the sibling is stopped in some executions"
    );
    assert!(
        sibling_second.outcomes.iter().map(|(_, c)| c).sum::<u64>() > 0,
        "and finishes before the kill in others"
    );
    assert_eq!(at(&sum, 16).not_run, 0, "the other process goes on");
    // The killed process's mm is torn down before the end of every
    // execution; the other process's is not.
    let h = harness(src, "linux-6.5");
    let config = explore::VerifyConfig {
        stop_at_finding: false,
        ..explore::VerifyConfig::new(1, 100_000, 10_000, 1)
    };
    let out = explore::verify(&h, &config).unwrap();
    assert!(out.complete && out.found.is_none());
    assert!(!out.final_states.is_empty());
    for state in &out.final_states {
        assert!(state.contains("(process a, exited)"), "{state}");
        assert!(state.contains("(process b)"), "{state}");
    }
}

#[test]
fn an_expectation_met_is_quiet_and_one_missed_is_a_scenario_finding() {
    let met =
        "process a {\n  thread t {\n    mprotect(0x1000000, 4096, PROT_NONE) => ENOMEM\n  }\n}\n";
    let sum = summary(met, 10);
    assert!(sum[0].expected && sum[0].warning("t.mmr").is_none());
    let missed =
        "process a {\n  thread t {\n    mprotect(0x1000000, 4096, PROT_NONE) => ok\n  }\n}\n";
    let h = harness(missed, "linux-6.5");
    let f = explore(&h, &portfolio(10, 100_000))
        .unwrap()
        .found
        .expect("the expectation is missed")
        .finding;
    assert_eq!(f.kind, FindingKind::Scenario);
    assert_eq!(
        f.title,
        "scenario expectation: mprotect(0x1000000, 4096, PROT_NONE) failed with -ENOMEM, the \
         scenario expects ok"
    );
    assert!(
        f.details.iter().any(|d| d.starts_with("t.mmr:3:5:")),
        "{:?}",
        f.details
    );
}

/// Every kind of outcome, each in every execution of a one-thread
/// scenario: a call that returned, a user access that faulted and was
/// fixed up, one that completed without a fault, an errno, a SIGBUS past
/// the end of a file (which kills the process).
#[test]
fn every_outcome_kind() {
    let src = "file f size=4K fill=0x11\nprocess a {\n  setup { p = mmap(NULL, 8K, PROT_READ, MAP_SHARED, f, 0) }\n  \
               thread t {\n    read(p)\n    read(p)\n    munmap(0x1001, 4096) => EINVAL\n    \
               pwrite(f, 0, 16, 7) => 16\n    read(p + 4K)\n  }\n}\n";
    let h = harness(src, "linux-2.6.23");
    let out = explore(&h, &portfolio(5, 100_000)).unwrap();
    assert!(
        out.found.is_none(),
        "{:?}",
        out.found.map(|f| f.finding.title)
    );
    let sum = h.statement_summary();
    let only = |line: u32| {
        let s = at(&sum, line);
        assert_eq!(s.outcomes.len(), 1, "line {line}: {:?}", s.outcomes);
        assert_eq!(s.outcomes[0].1, s.executions, "line {line}");
        s.outcomes[0].0
    };
    assert_eq!(only(3), Did::Returned);
    assert_eq!(only(5), Did::FixedUp);
    assert_eq!(only(6), Did::Completed);
    assert_eq!(only(7), Did::Errno("EINVAL"));
    assert_eq!(only(8), Did::Returned);
    assert_eq!(only(9), Did::Signal("SIGBUS", "BUS_ADRERR"));
    assert!(at(&sum, 9).warning("t.mmr").is_some());
    assert!(at(&sum, 7).warning("t.mmr").is_none(), "expected");
}
