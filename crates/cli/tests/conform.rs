//! The conformance slice: the model's syscall layer against the running
//! kernel (skipped, with a message, where the host cannot be the oracle),
//! and a deliberately broken merge rule caught with a minimal sequence.

use std::path::PathBuf;

use mmrace::conform::{conform, generate, host_supported, run_model, ConformOptions};
use oracle::client::Oracle;
use oracle::SequenceResult;

fn program() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mmrace"))
}

fn options(sequences: u64, ops: u64, knobs: &[(&str, &str)]) -> ConformOptions {
    ConformOptions {
        seed: 0,
        sequences,
        ops,
        files: true,
        knobs: knobs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        program: program(),
    }
}

/// Whether this machine can serve as the oracle; says why not otherwise.
fn host_ok() -> bool {
    match host_supported() {
        Ok(()) => true,
        Err(why) => {
            eprintln!("skipped: the host kernel cannot serve as the oracle here: {why}");
            false
        }
    }
}

#[test]
fn the_model_conforms_to_the_host_kernel() {
    if !host_ok() {
        return;
    }
    let r = conform(&options(60, 200, &[])).expect("conform runs");
    assert!(
        r.l2,
        "calibration recognised the host: {:?}",
        r.calibration_note
    );
    for (k, v) in &r.knobs {
        assert!(v == "on" || v == "off", "{k}={v}");
    }
    if let Some(d) = &r.divergence {
        panic!(
            "divergence at op {} ({}) of {:?}\nmodel {:?}\nhost  {:?}",
            d.op, d.level, d.ops, d.model, d.host
        );
    }
    assert_eq!(r.ops, 60 * 200);
}

#[test]
fn a_broken_merge_rule_is_caught_with_a_minimal_sequence() {
    if !host_ok() {
        return;
    }
    let calibrated = conform(&options(1, 1, &[])).unwrap();
    for rule in [
        "anon_merge_faulted_unfaulted",
        "unaccount_unfaulted_on_mprotect",
    ] {
        let host_value = &calibrated
            .knobs
            .iter()
            .find(|(k, _)| k == rule)
            .expect("calibrated")
            .1;
        let broken = if host_value == "on" { "off" } else { "on" };
        let r = conform(&options(200, 200, &[(rule, broken)])).unwrap();
        let d = r
            .divergence
            .unwrap_or_else(|| panic!("{rule}={broken} must diverge from the host"));
        assert!(d.ops.len() <= 6, "{rule}: {} ops: {:?}", d.ops.len(), d.ops);
        assert_eq!(
            d.op,
            d.ops.len() - 1,
            "the last op of a minimal sequence diverges"
        );
        assert!(d.level.starts_with("L2"), "{rule}: {}", d.level);
    }
}

#[test]
fn the_oracle_is_deterministic() {
    if !host_ok() {
        return;
    }
    let mut oracle = Oracle::spawn(&program()).unwrap();
    for index in 0..5 {
        let ops = generate(7, index, 150, true);
        let a = oracle.run(&ops).unwrap();
        let b = oracle.run(&ops).unwrap();
        assert!(matches!(a, SequenceResult::Ran(_)), "{a:?}");
        assert_eq!(a, b, "sequence {index}");
    }
}

#[test]
fn sequences_are_reproducible_and_the_model_runs_them() {
    assert_eq!(generate(3, 9, 50, false), generate(3, 9, 50, false));
    assert_ne!(generate(3, 9, 50, false), generate(3, 10, 50, false));
    let profile = mm::profile(mmrace::conform::CONFORM_PROFILE).unwrap();
    let obs = run_model(&profile, &generate(3, 9, 50, false), 1).unwrap();
    assert_eq!(obs.len(), 50);
    assert_eq!(obs[0].vmas.len(), 1, "op 0 maps the whole window");
}
