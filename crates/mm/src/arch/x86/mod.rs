//! Models of arch/x86: raw entry layouts and the fault path.

pub mod mm;
pub mod pgtable;
pub mod swap;
