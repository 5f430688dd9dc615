//! Findings: what an execution reports about the model it ran.
//!
//! A finding is a property of the modelled kernel (a kernel assertion, an
//! invariant violation, a deadlock, a livelock). A bug in mmrace itself is
//! never a finding: it is an [`InternalError`].

use std::fmt;

/// Which layer detected the problem.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FindingKind {
    /// The kernel's own check fired (`BUG`, `bad pmd`, `Bad page map`, oops).
    Kernel,
    /// A generic invariant checker (INV-*) failed.
    Invariant,
    /// Every live actor is blocked.
    Deadlock,
    /// `steps_max` was reached.
    Livelock,
    /// A statement did not do what its scenario said it would (`=> ...`,
    /// `read(..., expect=V)`): not a kernel finding, the scenario's own
    /// assertion.
    Scenario,
}

impl FindingKind {
    pub fn name(self) -> &'static str {
        match self {
            FindingKind::Kernel => "kernel",
            FindingKind::Invariant => "invariant",
            FindingKind::Deadlock => "deadlock",
            FindingKind::Livelock => "livelock",
            FindingKind::Scenario => "scenario expectation",
        }
    }
}

/// A violated check, with everything a report needs to explain it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Finding {
    pub kind: FindingKind,
    /// First line of the report, e.g. `mm/pgtable-generic.c:51: bad pmd ...`.
    pub title: String,
    /// The check that fired, e.g. `INV-NO-LOST-MAPPING` or `pmd_clear_bad()`.
    pub check: String,
    /// Kernel log lines and object dumps.
    pub details: Vec<String>,
    /// Further checks that failed in the same state.
    pub also: Vec<String>,
    /// What the kernel printed later in the same execution, which went on
    /// after this finding (later `Bad page map`, rss-counter lines, ...).
    pub aftermath: Vec<String>,
}

impl Finding {
    pub fn new(kind: FindingKind, check: impl Into<String>, title: impl Into<String>) -> Self {
        Finding {
            kind,
            title: title.into(),
            check: check.into(),
            details: Vec::new(),
            also: Vec::new(),
            aftermath: Vec::new(),
        }
    }

    pub fn detail(mut self, line: impl Into<String>) -> Self {
        self.details.push(line.into());
        self
    }
}

/// Why an execution could not be completed: a bug in mmrace itself (a
/// panic in the model or explorer), kernel behaviour the model does not
/// have yet, or a recorded schedule that does not fit the scenario.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct InternalError {
    pub message: String,
    pub kind: InternalKind,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum InternalKind {
    /// A bug in mmrace (exit code 70).
    Bug,
    /// The scenario asked for behaviour the model does not have (exit 2).
    Unsupported,
    /// A replayed choice list does not fit the scenario: edited since the
    /// token was made, or a token from another mmrace version (exit 2).
    ReplayDiverged,
}

impl InternalError {
    pub fn bug(message: impl Into<String>) -> Self {
        InternalError {
            message: message.into(),
            kind: InternalKind::Bug,
        }
    }

    pub fn diverged(message: impl Into<String>) -> Self {
        InternalError {
            message: message.into(),
            kind: InternalKind::ReplayDiverged,
        }
    }
}

impl fmt::Display for InternalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            InternalKind::Bug => write!(
                f,
                "internal error in mmrace (please report): {}",
                self.message
            ),
            InternalKind::Unsupported => write!(f, "cannot run this scenario: {}", self.message),
            InternalKind::ReplayDiverged => write!(
                f,
                "the replay token does not fit this scenario ({}); was the scenario edited, \
                 or the token made by another mmrace version?",
                self.message
            ),
        }
    }
}

impl std::error::Error for InternalError {}
