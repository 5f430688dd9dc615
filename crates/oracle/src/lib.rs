//! The host-kernel oracle (`../shared/specs/host-kernel-oracle.md`): the
//! op language shared by the model and the real kernel, the observations
//! both sides produce, and the oracle server that runs sequences against
//! the running Linux kernel.
//!
//! The server is a separate single-threaded process (the `mmrace` binary's
//! hidden `oracle-server` subcommand): fork() from a multithreaded test or
//! CLI process is unsafe, and other threads would map memory into the
//! window. It forks a child per sequence; the child claims a fenced window
//! of [`WINDOW_PAGES`] pages at [`WINDOW_BASE`], turns THP and KSM off, runs
//! the ops and reports what it observed after each one.

pub mod client;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub mod host;
pub mod ops;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub mod server;

pub use ops::{Obs, Op, Prot, SequenceResult, Touch};

/// First address of the test window: 16 TiB, far below `mmap_base` and away
/// from PIE and brk, so no allocator lands there.
pub const WINDOW_BASE: u64 = 0x1000_0000_0000;
/// Pages in the window.
pub const WINDOW_PAGES: u64 = 64;
/// `PAGE_SIZE`.
pub const PAGE: u64 = 4096;
