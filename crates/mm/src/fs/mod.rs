//! The VFS entry points of the file operations the model runs on regular
//! files: fs/read_write.c (`pread64`/`pwrite64`) and fs/open.c
//! (`ftruncate`), of v2.6.22.
//!
//! These are also where the file ghost (ghost_file.rs) learns what each
//! operation did: an operation takes effect, for the checkers, when it
//! returns.

pub mod open;
pub mod read_write;
