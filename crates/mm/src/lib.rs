//! An executable model of the Linux memory manager.
//!
//! File and function names follow the kernel (`mprotect.rs:
//! change_pmd_range`, `huge_memory.rs: set_pmd_migration_entry`, ...); each
//! function's doc names the kernel function and version it models. Kernel
//! behaviour that changed between versions is chosen at run time by a
//! [`profile::Profile`] of knobs, never by `cfg`.
//!
//! Shared state is touched only through `explore::sync`, so the explorer
//! can interleave the modelled kernel paths. The lock order is defined once,
//! in [`locking`]. Checkers live in [`checkers`], apart from the code they
//! check.

pub mod arch;
pub mod checkers;
pub mod debug;
pub mod filemap;
pub mod fremap;
pub mod fs;
pub mod ghost;
pub mod ghost_file;
pub mod huge_memory;
pub mod kaddr;
pub mod kernel;
pub mod kmemleak;
pub mod locking;
pub mod madvise;
pub mod memory;
pub mod mempolicy;
pub mod migrate;
pub mod mm_types;
pub mod mmap;
pub mod mprotect;
pub mod mremap;
pub mod msync;
pub mod page_alloc;
pub mod page_vma_mapped;
pub mod pgtable;
pub mod pgtable_generic;
pub mod profile;
pub mod rmap;
pub mod shmem;
pub mod swap_state;
pub mod swapfile;
pub mod truncate;
pub mod vma;
pub mod vmscan;

pub use mm_types::{Kernel, Machine, MmStruct, Task, Thp};
pub use profile::{profile, profiles, Profile};
