//! The event trace recorded when an execution is replayed for a report.

use crate::access::Access;
use crate::rt::ActorId;

/// One traced event of one actor, at a call depth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub actor: ActorId,
    pub depth: u16,
    pub what: What,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum What {
    /// A modelled kernel function was entered.
    Enter(&'static str),
    /// An access at a scheduling point, with the old and new value of an
    /// atomic slot where there is one.
    Access {
        access: Access,
        old: Option<u64>,
        value: Option<u64>,
    },
    /// A state change the model describes in words.
    Note(String),
    /// A finding was raised here.
    Finding(String),
}

/// `note!(...)` formats a trace note only when a trace is being recorded.
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {
        if $crate::rt::tracing() {
            $crate::rt::note(format!($($arg)*));
        }
    };
}
