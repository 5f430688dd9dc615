//! Models of arch/x86: raw entry layouts, paravirt hooks, Xen PV and the
//! fault path.

pub mod mm;
pub mod paravirt;
pub mod pgtable;
pub mod pgtable_v3;
pub mod swap;
pub mod xen;
