//! Models of kernel/sched/.

pub mod fair;
