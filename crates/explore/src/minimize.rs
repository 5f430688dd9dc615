//! Shrinking a found schedule by replay: fewest preemptions first, then
//! fewest steps, keeping the same finding (same title, and the same kinds
//! of kernel message printed after it).
//!
//! A schedule is re-run under a *guided* strategy: a list of intended actor
//! choices, followed while the intended actor is enabled; when it is not,
//! or when the list runs out, the running actor goes on (no preemption) or
//! the lowest-numbered enabled actor runs. Candidates are made from the
//! current best by dropping one block of consecutive choices of one actor
//! (its steps then happen later, where the rest of the list or the default
//! puts them), by swapping two neighbouring blocks, or by cutting the list
//! short. Each candidate that still
//! gives the finding with fewer preemptions (or as many, in fewer steps)
//! replaces the best; the loop ends when no candidate improves or the
//! replay budget is spent. The result's actual choices make an ordinary
//! replay token.

use crate::explorer::Found;
use crate::finding::{Finding, InternalError};
use crate::rt::{run_execution, ActorId, ExecutionConfig, Harness, Workspace};
use crate::strategy::Strategy;

/// One decision of a recorded schedule.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Decision {
    Actor(ActorId),
    Value(u32),
}

/// Replays a choice list and remembers which entries were actor choices.
struct Classify {
    choices: Vec<u32>,
    next: usize,
    decisions: Vec<Decision>,
}

impl Strategy for Classify {
    fn choose_actor(&mut self, enabled: &[ActorId], _: Option<ActorId>, _: bool) -> ActorId {
        let a = self
            .choices
            .get(self.next)
            .map_or(enabled[0], |&c| c as ActorId);
        self.next += 1;
        self.decisions.push(Decision::Actor(a));
        a
    }

    fn choose_value(&mut self, _: u32) -> u32 {
        let v = self.choices.get(self.next).copied().unwrap_or(0);
        self.next += 1;
        self.decisions.push(Decision::Value(v));
        v
    }
}

/// Follows intended actor choices while they are enabled; otherwise no
/// preemption. Data choices are taken in their recorded order.
struct Guided {
    actors: Vec<ActorId>,
    values: Vec<u32>,
    next_actor: usize,
    next_value: usize,
}

impl Strategy for Guided {
    fn choose_actor(&mut self, enabled: &[ActorId], last: Option<ActorId>, _: bool) -> ActorId {
        let fallback = last.filter(|l| enabled.contains(l)).unwrap_or(enabled[0]);
        let Some(&want) = self.actors.get(self.next_actor) else {
            return fallback;
        };
        self.next_actor += 1;
        if enabled.contains(&want) {
            want
        } else {
            fallback
        }
    }

    fn choose_value(&mut self, n: u32) -> u32 {
        let v = self.values.get(self.next_value).copied().unwrap_or(0);
        self.next_value += 1;
        v.min(n.saturating_sub(1))
    }
}

/// A candidate's outcome: (preemptions, steps, actual choices, finding).
type Outcome = (u32, u64, Vec<u32>, Finding);

/// What must stay the same: the finding's title, and the kinds of kernel
/// message printed after it (each line up to its first digit, so that
/// addresses and counts may differ).
fn same_story(a: &Finding, b: &Finding) -> bool {
    let kinds = |f: &Finding| -> Vec<String> {
        f.aftermath
            .iter()
            .map(|l| l.chars().take_while(|c| !c.is_ascii_digit()).collect())
            .collect()
    };
    a.title == b.title && kinds(a) == kinds(b)
}

/// Executions the bounded search for fewer preemptions may spend at each
/// bound.
pub const FEWEST_PREEMPTIONS_EXECUTIONS: u64 = 5_000;

/// Shrinks `found`: by replay within `budget` replays (fewer preemptions,
/// then fewer steps), then by a bounded search (`verify`'s, for the same
/// finding) at each preemption bound below what is left, so that no
/// schedule within a smaller bound gives the finding when that search is
/// complete; a schedule it finds is shrunk by replay again. Returns the
/// simplest schedule found that gives a finding with the same title
/// (possibly `found`'s own).
pub fn minimize(
    harness: &dyn Harness,
    found: &Found,
    steps_max: u64,
    budget: u32,
) -> Result<Found, InternalError> {
    let best = shrink_by_replay(harness, found, steps_max, budget)?;
    let Some(fewer) = fewest_preemptions(harness, &best, steps_max)? else {
        return Ok(best);
    };
    let again = shrink_by_replay(harness, &fewer, steps_max, budget)?;
    Ok(if again.preemptions <= fewer.preemptions {
        again
    } else {
        fewer
    })
}

/// The first schedule (in `verify`'s search order) that gives `best`'s
/// finding within the smallest preemption bound below `best`'s that has
/// one; `None` if no bound below has one, or a search ran out of
/// executions first.
fn fewest_preemptions(
    harness: &dyn Harness,
    best: &Found,
    steps_max: u64,
) -> Result<Option<Found>, InternalError> {
    for bound in 0..best.preemptions {
        let story = best.finding.clone();
        let config = crate::verify::VerifyConfig {
            wanted: Some(crate::Wanted(std::sync::Arc::new(move |f: &Finding| {
                same_story(f, &story)
            }))),
            ..crate::verify::VerifyConfig::new(bound, steps_max, FEWEST_PREEMPTIONS_EXECUTIONS, 1)
        };
        let out = crate::verify::verify(harness, &config)?;
        if let Some(f) = out.found.filter(|f| f.preemptions < best.preemptions) {
            return Ok(Some(f));
        }
        if !out.complete {
            return Ok(None);
        }
    }
    Ok(None)
}

/// The replay-guided shrinking [`minimize`] starts with.
fn shrink_by_replay(
    harness: &dyn Harness,
    found: &Found,
    steps_max: u64,
    budget: u32,
) -> Result<Found, InternalError> {
    let mut pool = Workspace::default();
    let config = ExecutionConfig {
        steps_max,
        tracing: false,
        track_conflicts: false,
        racy: &[],
    };
    let mut classify = Classify {
        choices: found.choices.clone(),
        next: 0,
        decisions: Vec::new(),
    };
    run_execution(harness, &mut classify, config, &mut pool)?;
    let mut actors: Vec<ActorId> = Vec::new();
    let mut values: Vec<u32> = Vec::new();
    for d in &classify.decisions {
        match *d {
            Decision::Actor(a) => actors.push(a),
            Decision::Value(v) => values.push(v),
        }
    }
    let mut best: Outcome = (
        found.preemptions,
        found.steps,
        found.choices.clone(),
        found.finding.clone(),
    );
    let mut spent = 0u32;
    let try_guide =
        |guide: &[ActorId], pool: &mut Workspace| -> Result<Option<Outcome>, InternalError> {
            let mut g = Guided {
                actors: guide.to_vec(),
                values: values.clone(),
                next_actor: 0,
                next_value: 0,
            };
            let r = run_execution(harness, &mut g, config, pool)?;
            Ok(r.finding
                .filter(|f| same_story(f, &found.finding))
                .map(|f| (r.preemptions, r.steps, r.choices, f)))
        };
    'improve: while spent < budget {
        for candidate in candidates(&actors) {
            if spent >= budget {
                break 'improve;
            }
            spent += 1;
            let Some(out) = try_guide(&candidate, &mut pool)? else {
                continue;
            };
            if (out.0, out.1) < (best.0, best.1) {
                best = out;
                actors = candidate;
                continue 'improve;
            }
        }
        break;
    }
    let (preemptions, steps, choices, finding) = best;
    Ok(Found {
        index: found.index,
        finding,
        choices,
        steps,
        preemptions,
    })
}

/// Candidates from a guide: each block of one actor's consecutive choices
/// dropped, each pair of neighbouring blocks swapped, then the guide cut
/// at each block boundary from the end.
fn candidates(guide: &[ActorId]) -> Vec<Vec<ActorId>> {
    let mut blocks: Vec<(usize, usize)> = Vec::new();
    let mut start = 0;
    for i in 1..=guide.len() {
        if i == guide.len() || guide[i] != guide[start] {
            blocks.push((start, i));
            start = i;
        }
    }
    let mut out = Vec::new();
    for &(a, b) in &blocks {
        let mut g = guide[..a].to_vec();
        g.extend_from_slice(&guide[b..]);
        out.push(g);
    }
    // Swap neighbouring blocks: A1 B A2 can become B A1 A2 or A1 A2 B.
    for w in blocks.windows(2) {
        let ((a, b), (_, c)) = (w[0], w[1]);
        let mut g = guide[..a].to_vec();
        g.extend_from_slice(&guide[b..c]);
        g.extend_from_slice(&guide[a..b]);
        g.extend_from_slice(&guide[c..]);
        out.push(g);
    }
    for &(a, _) in blocks.iter().rev() {
        out.push(guide[..a].to_vec());
    }
    out
}
