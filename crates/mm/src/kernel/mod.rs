//! Models of kernel/ files (outside mm/) that the memory manager calls.

pub mod fork;
pub mod sched;
