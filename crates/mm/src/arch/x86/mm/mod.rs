//! Models of arch/x86/mm/.

pub mod fault;
