//! What each statement did: its outcome in one execution, the tally over
//! a run's executions, the per-statement summary a clean result prints,
//! and the warning for a statement that fails the same way every time.

use std::collections::BTreeMap;
use std::fmt;

use crate::ast::{Outcome, Scenario, Span, Stmt};

/// What one statement did in one execution.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub enum Did {
    /// A call returned without error.
    Returned,
    /// A user access completed without a page fault.
    Completed,
    /// A user access took page faults, which the kernel handled.
    FixedUp,
    /// A call failed with this errno.
    Errno(&'static str),
    /// A user access raised this signal with this `si_code`: fatal, the
    /// process is killed.
    Signal(&'static str, &'static str),
}

impl Did {
    /// Whether the statement failed (an errno or a signal).
    pub fn failed(self) -> bool {
        matches!(self, Did::Errno(_) | Did::Signal(..))
    }

    /// Whether `expect` allows this outcome; `value` is what a call
    /// returned.
    pub fn meets(self, expect: Outcome, value: u64) -> bool {
        match (expect, self) {
            (Outcome::Ok, Did::Returned | Did::Completed | Did::FixedUp) => true,
            (Outcome::Value(v), Did::Returned) => v == value,
            (Outcome::Errno(e), Did::Errno(d)) => e == d,
            (Outcome::Signal(s, code), Did::Signal(t, c)) => s == t && code.is_none_or(|k| k == c),
            _ => false,
        }
    }

    /// The expectation that names this outcome exactly (for a warning's
    /// advice).
    pub fn as_outcome(self) -> Outcome {
        match self {
            Did::Returned | Did::Completed | Did::FixedUp => Outcome::Ok,
            Did::Errno(e) => Outcome::Errno(e),
            Did::Signal(s, c) => Outcome::Signal(s, Some(c)),
        }
    }
}

impl fmt::Display for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Did::Returned => f.write_str("ok"),
            Did::Completed => f.write_str("completed"),
            Did::FixedUp => f.write_str("faulted, fixed up"),
            Did::Errno(e) => write!(f, "-{e}"),
            Did::Signal(s, c) => write!(f, "{s} ({c})"),
        }
    }
}

/// A statement's place: its line and column.
pub type At = (u32, u32);

/// The outcomes of every statement over the executions of a run.
#[derive(Default, Debug, Clone)]
pub struct Tally {
    pub executions: u64,
    pub counts: BTreeMap<At, BTreeMap<Did, u64>>,
}

impl Tally {
    /// One execution's outcomes, in the order the statements ran.
    pub fn add_execution(&mut self, did: &[(At, Did)]) {
        self.executions += 1;
        for &(at, d) in did {
            *self.counts.entry(at).or_default().entry(d).or_default() += 1;
        }
    }
}

/// One statement over a run: how often each outcome came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementSummary {
    pub line: u32,
    pub col: u32,
    /// The statement as written.
    pub text: String,
    pub executions: u64,
    /// Each outcome with the executions that had it, most frequent first.
    pub outcomes: Vec<(Did, u64)>,
    /// Executions in which the statement did not run (its process was
    /// killed, or the execution ended at a finding first).
    pub not_run: u64,
    /// The scenario says what it expects of the statement (`=> ...`).
    pub expected: bool,
}

impl StatementSummary {
    /// `write(p+1, 3)  line 2: SIGSEGV (SEGV_ACCERR) in 1/1`.
    pub fn line_text(&self) -> String {
        let n = self.executions;
        let mut parts: Vec<String> = self
            .outcomes
            .iter()
            .map(|(d, c)| format!("{d} in {c}/{n}"))
            .collect();
        if self.not_run > 0 {
            parts.push(format!("not run in {}/{n}", self.not_run));
        }
        format!("{}  line {}: {}", self.text, self.line, parts.join(", "))
    }

    /// The warning for a statement that failed the same way in every
    /// execution without the scenario saying it expects that: a mistyped
    /// address turns a race scenario into one that races nothing.
    pub fn warning(&self, file: &str) -> Option<String> {
        match self.outcomes.as_slice() {
            [(d, c)]
                if d.failed() && *c == self.executions && self.not_run == 0 && !self.expected =>
            {
                let what = match d {
                    Did::Signal(..) => "raised",
                    _ => "returned",
                };
                Some(format!(
                    "warning: {file}:{}:{}: {} {what} {d} in every execution ({c}/{}); if that is \
                     meant, say so: `=> {}`",
                    self.line,
                    self.col,
                    self.text,
                    self.executions,
                    d.as_outcome()
                ))
            }
            _ => None,
        }
    }
}

/// Every statement of the scenario, in source order.
fn statements(s: &Scenario) -> Vec<&Stmt> {
    let mut all: Vec<&Stmt> = s
        .all_processes()
        .into_iter()
        .flat_map(|p| p.setup.iter().chain(p.threads.iter().flat_map(|t| &t.body)))
        .collect();
    all.sort_by_key(|st| (st.span.line, st.span.col));
    all
}

/// The summary of every statement of `s` over `tally`'s executions.
pub fn summarize(s: &Scenario, tally: &Tally) -> Vec<StatementSummary> {
    statements(s)
        .into_iter()
        .map(|st| {
            let at = (st.span.line, st.span.col);
            let mut outcomes: Vec<(Did, u64)> = tally
                .counts
                .get(&at)
                .map(|m| m.iter().map(|(d, c)| (*d, *c)).collect())
                .unwrap_or_default();
            outcomes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let ran: u64 = outcomes.iter().map(|(_, c)| c).sum();
            StatementSummary {
                line: st.span.line,
                col: st.span.col,
                text: source_text(s, st.span),
                executions: tally.executions,
                outcomes,
                not_run: tally.executions.saturating_sub(ran),
                expected: !st.expect.is_empty(),
            }
        })
        .collect()
}

/// The source text a span covers.
pub fn source_text(s: &Scenario, span: Span) -> String {
    let line = s
        .source
        .lines()
        .nth(span.line.saturating_sub(1) as usize)
        .unwrap_or("");
    line.chars()
        .skip(span.col.saturating_sub(1) as usize)
        .take(span.len.max(1) as usize)
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_meet_their_expectations() {
        assert!(Did::FixedUp.meets(Outcome::Ok, 0));
        assert!(Did::Returned.meets(Outcome::Value(3), 3));
        assert!(!Did::Returned.meets(Outcome::Value(3), 4));
        assert!(Did::Errno("ENOMEM").meets(Outcome::Errno("ENOMEM"), 0));
        let segv = Did::Signal("SIGSEGV", "SEGV_ACCERR");
        assert!(segv.meets(Outcome::Signal("SIGSEGV", None), 0));
        assert!(segv.meets(Outcome::Signal("SIGSEGV", Some("SEGV_ACCERR")), 0));
        assert!(!segv.meets(Outcome::Signal("SIGSEGV", Some("SEGV_MAPERR")), 0));
        assert!(!segv.meets(Outcome::Ok, 0));
        assert_eq!(segv.to_string(), "SIGSEGV (SEGV_ACCERR)");
        assert_eq!(Did::Errno("ENOMEM").to_string(), "-ENOMEM");
    }

    #[test]
    fn a_statement_failing_every_time_warns_unless_expected() {
        let mut s = StatementSummary {
            line: 2,
            col: 5,
            text: "write(p + 1, 3)".into(),
            executions: 4,
            outcomes: vec![(Did::Signal("SIGSEGV", "SEGV_ACCERR"), 4)],
            not_run: 0,
            expected: false,
        };
        let w = s.warning("a.mmr").expect("a warning");
        assert!(
            w.contains("a.mmr:2:5") && w.contains("`=> SIGSEGV(SEGV_ACCERR)`"),
            "{w}"
        );
        assert_eq!(
            s.line_text(),
            "write(p + 1, 3)  line 2: SIGSEGV (SEGV_ACCERR) in 4/4"
        );
        s.expected = true;
        assert!(s.warning("a.mmr").is_none());
        s.expected = false;
        s.outcomes = vec![
            (Did::Signal("SIGSEGV", "SEGV_ACCERR"), 3),
            (Did::FixedUp, 1),
        ];
        assert!(s.warning("a.mmr").is_none(), "not every execution");
    }
}
