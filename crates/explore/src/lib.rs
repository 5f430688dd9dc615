//! A deterministic interleaving explorer. It knows nothing about memory
//! management: a [`Harness`] builds a model instance, whose actors run as
//! stackful coroutines on one OS thread and touch shared state only through
//! [`sync`]. Every such operation is a scheduling point that announces an
//! [`Access`]; a [`strategy`] picks which enabled actor runs next.
//!
//! Findings (kernel assertions, invariant violations, deadlocks, livelocks)
//! stop an execution; a panic inside mmrace is an [`InternalError`]. A run
//! is reproducible from its replay [`Token`]: replay re-runs the recorded
//! choice list with a full trace, from which [`report`] renders the
//! CPU0/CPU1 interleaving.
//!
//! See docs/EXPLORER.md for tokens, strategies and report columns.

pub mod access;
pub mod explorer;
pub mod finding;
pub mod minimize;
pub mod report;
pub mod rt;
pub mod strategy;
pub mod sync;
pub mod token;
pub mod trace;
pub mod verify;

pub use access::{Access, AccessKind, ObjectId, Touched};
pub use explorer::{explore, replay, Found, RunConfig, RunOutcome, Shard, Wanted};
pub use finding::{Finding, FindingKind, InternalError, InternalKind};
pub use minimize::minimize;
pub use rt::{
    call_chain, choose, enter, mark, new_object, oops, raise, tracing, unsupported, ActorSpec,
    ExecutionResult, Harness, Instance, LockClass, Touches,
};
pub use strategy::StrategyKind;
pub use token::Token;
pub use verify::{verify, Mode, VerifyConfig, VerifyOutcome};
