//! The `mmrace` command line as library functions, so tests can call every
//! command without spawning the binary. `main.rs` only parses arguments and
//! maps outcomes to exit codes.

pub mod bench;
pub mod conform;
pub mod hunt;
pub mod json;
pub mod run;
pub mod seeds;
pub mod verify;

use std::fmt;

/// Exit codes (docs/EXPLORER.md).
pub const EXIT_CLEAN: i32 = 0;
pub const EXIT_FINDING: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_INTERNAL: i32 = 70;

/// Why a command could not do its job.
#[derive(Debug)]
pub enum CliError {
    /// Bad input: unreadable or malformed scenario, unknown profile or knob,
    /// impossible parameters, a scenario the model cannot run (exit 2).
    Usage(String),
    /// A bug in mmrace itself (exit 70).
    Internal(String),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) => write!(f, "{m}"),
            CliError::Internal(m) => write!(f, "internal error in mmrace (please report): {m}"),
        }
    }
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Internal(_) => EXIT_INTERNAL,
        }
    }
}

impl From<explore::InternalError> for CliError {
    fn from(e: explore::InternalError) -> Self {
        match e.kind {
            explore::InternalKind::Bug => CliError::Internal(e.message),
            explore::InternalKind::Unsupported | explore::InternalKind::ReplayDiverged => {
                CliError::Usage(e.to_string())
            }
        }
    }
}
