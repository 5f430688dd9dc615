//! Xen PV guest support (arch/x86/xen) and the hypervisor behaviour it
//! relies on.
//!
//! - [`p2m`]: the guest's pseudo-physical to machine table and the
//!   hypervisor's machine to physical table.
//! - [`mmu_pv`]: the guest's `pv_mmu_ops` (arch/x86/xen/mmu.c, renamed
//!   mmu_pv.c in v4.14): PTE value translation and page-table updates.
//! - [`hypervisor`]: the hypervisor side of `HYPERVISOR_mmu_update`
//!   (Xen's arch/x86/mm.c `mod_l1_entry()`).
//! - [`multicalls`]: hypercall batches and `xen_mc_flush()`
//!   (arch/x86/xen/multicalls.c).

pub mod hypervisor;
pub mod mmu_pv;
pub mod multicalls;
pub mod p2m;
