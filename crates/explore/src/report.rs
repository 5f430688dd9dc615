//! Renders a traced execution the way linux-mm threads describe races:
//! title, seed/bounds line, the CPU0/CPU1 interleaving with call depth as
//! indentation, the violated check with a dump, and the replay command last.

use std::fmt::Write;

use crate::access::AccessKind;
use crate::rt::{cpu_of, ExecutionResult, SEQUENTIAL_ACTOR};
use crate::trace::{Event, What};

/// Width of one CPU column.
const COLUMN: usize = 48;
/// More actors than this switch the table to a `step | CPU | event` list.
const COLUMNS_MAX: usize = 3;

/// What the report needs besides the traced execution.
pub struct ReportContext<'a> {
    /// E.g. `001-bad-pmd.mmr, linux-6.1.159`.
    pub subject: &'a str,
    /// E.g. `execution 17 of seed 0x0 (portfolio)`.
    pub origin: &'a str,
    /// The full replay command.
    pub replay: &'a str,
    /// Show setup/teardown events and reads too.
    pub full: bool,
}

/// Renders the report; the last line is the replay command.
pub fn render(cx: &ReportContext<'_>, r: &ExecutionResult) -> String {
    let mut out = String::new();
    let Some(f) = &r.finding else {
        let _ = writeln!(out, "no finding [{}]", cx.subject);
        let _ = writeln!(out, "replay: {}", cx.replay);
        return out;
    };
    let actors = r.actor_names.len() - 1;
    let _ = writeln!(out, "{}  [{}]", f.title, cx.subject);
    let _ = writeln!(
        out,
        "{}  steps={}  actors={}  preemptions={}",
        cx.origin, r.steps, actors, r.preemptions
    );
    out.push('\n');
    let lines = event_lines(cx, r);
    if actors <= COLUMNS_MAX {
        columns(&mut out, r, &lines);
    } else {
        list(&mut out, r, &lines);
    }
    out.push('\n');
    let _ = writeln!(out, "check: {} [{}]", f.check, f.kind.name());
    for d in &f.details {
        let _ = writeln!(out, "  {d}");
    }
    for a in &f.also {
        let _ = writeln!(out, "also: {a}");
    }
    if !f.aftermath.is_empty() {
        let _ = writeln!(out, "later in the same execution, the kernel printed:");
        for line in &f.aftermath {
            let _ = writeln!(out, "  {line}");
        }
    }
    for d in &r.dump {
        let _ = writeln!(out, "{d}");
    }
    let _ = writeln!(out, "replay: {}", cx.replay);
    out
}

/// One rendered event: actor and indented text.
struct Line {
    actor: usize,
    text: String,
}

fn event_lines(cx: &ReportContext<'_>, r: &ExecutionResult) -> Vec<Line> {
    let contended = contended_objects(&r.trace);
    let shown: Vec<bool> = r.trace.iter().map(|e| shown(cx, e, &contended)).collect();
    let mut lines = Vec::new();
    let mut hidden_setup = 0usize;
    for (i, e) in r.trace.iter().enumerate() {
        let last = matches!(e.what, What::Finding(_));
        if e.actor == SEQUENTIAL_ACTOR && !cx.full && !last {
            hidden_setup += 1;
            continue;
        }
        let keep = match e.what {
            What::Enter(_) => frame_has_shown_event(&r.trace, &shown, i),
            _ => shown[i],
        };
        if keep {
            let indent = "  ".repeat(e.depth as usize);
            let text = format!("{indent}{}", describe(r, i, e));
            lines.push(Line {
                actor: e.actor,
                text,
            });
        }
        if last {
            // The execution stops here; what the actor did on its way to
            // the next scheduling point is not part of the story.
            break;
        }
    }
    if hidden_setup > 0 {
        lines.insert(
            0,
            Line {
                actor: 0,
                text: format!(
                    "({hidden_setup} setup/teardown events not shown; --full shows them)"
                ),
            },
        );
    }
    lines
}

/// Objects that two or more concurrent actors touch and at least one
/// writes, in this trace: the reads of those explain a race; reads of
/// anything else (a page-table level nobody changes) are noise.
fn contended_objects(trace: &[Event]) -> std::collections::BTreeSet<crate::ObjectId> {
    let mut seen: std::collections::BTreeMap<crate::ObjectId, (u64, bool)> = Default::default();
    for e in trace.iter().filter(|e| e.actor != SEQUENTIAL_ACTOR) {
        if let What::Access { access, .. } = &e.what {
            let entry = seen.entry(access.object).or_default();
            entry.0 |= 1 << e.actor.min(63);
            entry.1 |= matches!(access.kind, AccessKind::Write | AccessKind::ReadModifyWrite);
        }
    }
    seen.into_iter()
        .filter(|(_, (actors, written))| actors.count_ones() > 1 && *written)
        .map(|(o, _)| o)
        .collect()
}

fn shown(
    cx: &ReportContext<'_>,
    e: &Event,
    contended: &std::collections::BTreeSet<crate::ObjectId>,
) -> bool {
    match &e.what {
        What::Enter(_) => false,
        What::Access { access, .. } if access.kind == AccessKind::Read => {
            cx.full || contended.contains(&access.object)
        }
        What::Access { access, .. } => cx.full || access.kind.changes_state(),
        What::Note(_) | What::Finding(_) => true,
    }
}

/// A frame is printed only if something inside it is printed.
fn frame_has_shown_event(trace: &[Event], shown: &[bool], at: usize) -> bool {
    let Event { actor, depth, .. } = trace[at];
    for (j, e) in trace.iter().enumerate().skip(at + 1) {
        if e.actor != actor {
            continue;
        }
        if e.depth <= depth {
            return false;
        }
        if shown[j] {
            return true;
        }
    }
    false
}

fn describe(r: &ExecutionResult, i: usize, e: &Event) -> String {
    let value = |v: u64| -> String {
        match r.described.get(i).cloned().flatten() {
            Some(d) => format!("{d} ({v:#x})"),
            None => format!("{v:#x}"),
        }
    };
    match &e.what {
        What::Enter(f) => format!("{f}()"),
        What::Note(n) => n.clone(),
        What::Finding(t) => format!("<== {t}"),
        What::Access {
            access,
            old,
            value: v,
        } => match (access.kind, old, v) {
            (AccessKind::Read, _, Some(v)) => format!("{} = {}", access.label, value(*v)),
            (AccessKind::Write | AccessKind::ReadModifyWrite, Some(o), Some(v)) => {
                format!("{}: {:#x} -> {}", access.label, o, value(*v))
            }
            (AccessKind::TryAcquire, _, Some(0)) => format!("{} (failed)", access.label),
            _ => access.label.to_string(),
        },
    }
}

fn columns(out: &mut String, r: &ExecutionResult, lines: &[Line]) {
    let actors = r.actor_names.len() - 1;
    let mut header = String::new();
    let mut rule = String::new();
    for (a, name) in r.actor_names.iter().enumerate().skip(1) {
        let cell = format!("CPU{}: {name}", cpu_of(a));
        let _ = write!(header, "  {cell:<width$}", width = COLUMN - 2);
        let _ = write!(rule, "  {}", "-".repeat(COLUMN - 4));
        rule.push_str("  ");
    }
    let _ = writeln!(out, "{}", header.trim_end());
    let _ = writeln!(out, "{}", rule.trim_end());
    for l in lines {
        let col = l.actor.saturating_sub(1).min(actors.saturating_sub(1));
        let pad = if l.actor == SEQUENTIAL_ACTOR {
            0
        } else {
            col * COLUMN
        };
        let _ = writeln!(out, "  {}{}", " ".repeat(pad), l.text);
    }
}

fn list(out: &mut String, r: &ExecutionResult, lines: &[Line]) {
    for (a, name) in r.actor_names.iter().enumerate().skip(1) {
        let _ = writeln!(out, "  CPU{}: {name}", cpu_of(a));
    }
    let _ = writeln!(out, "  step | CPU  | event");
    for (n, l) in lines.iter().enumerate() {
        let cpu = if l.actor == SEQUENTIAL_ACTOR {
            "-".to_string()
        } else {
            format!("{}", cpu_of(l.actor))
        };
        let indent = " ".repeat(l.actor.saturating_sub(1) * 2);
        let _ = writeln!(out, "  {n:>4} | {cpu:<4} | {indent}{}", l.text);
    }
}
