//! Minimisation reaches the minimum: for every seed scenario and each
//! profile it expects a finding under, the schedule `run` reports has no
//! fewer-preemption counterpart that `verify` can find, i.e. a bounded
//! search one preemption below it, for the same finding, comes back
//! complete and empty.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use explore::{verify, VerifyConfig, Wanted};
use mmrace::run::{harness, load, run, RunOptions};

fn seeds() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/seeds");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "mmr"))
        .collect();
    files.sort();
    files
}

/// Executions the check below may spend at one bound: enough for every
/// seed at the bounds its reports need.
const SEARCH: u64 = 60_000;

#[test]
fn the_reported_schedule_has_the_fewest_preemptions_verify_can_find() {
    let mut checked = 0;
    for file in seeds() {
        let s = load(&file).unwrap();
        for e in &s.expects {
            let scenario::ExpectedVerdict::Finding(want) = &e.verdict else {
                continue;
            };
            let mut opts = RunOptions::new(&e.profile);
            opts.knobs = e.knobs.clone();
            let want = want.clone();
            let w = want.clone();
            opts.wanted = Some(Wanted(Arc::new(move |f| f.title.contains(&w))));
            let r = run(&file, &opts).unwrap();
            let Some(found) = r.outcome.found else {
                continue; // met by an aftermath line; the title is another's
            };
            if found.preemptions == 0 {
                checked += 1;
                continue;
            }
            let h = harness(s.clone(), &e.profile, &e.knobs).unwrap();
            let title = found.finding.title.clone();
            let config = VerifyConfig {
                wanted: Some(Wanted(Arc::new(move |f| f.title == title))),
                ..VerifyConfig::new(found.preemptions - 1, 200_000, SEARCH, 1)
            };
            let out = verify(&h, &config).unwrap();
            assert!(
                out.found.is_none(),
                "{} under {} {:?}: run reports {} preemptions, verify finds {}",
                file.display(),
                e.profile,
                e.knobs,
                found.preemptions,
                out.found.unwrap().preemptions
            );
            if out.complete {
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 10,
        "only {checked} findings were checked to the end"
    );
}
