//! `pv_mmu_ops`: the paravirt hooks through which page-table values are
//! made, read and written, with a native backend and a Xen PV backend.
//!
//! Models arch/x86/include/asm/paravirt.h and arch/x86/kernel/paravirt.c
//! (v3.12, `CONFIG_PARAVIRT=y`): `pte_val()`/`__pte()` and
//! `pmd_val()`/`__pmd()` call `pv_mmu_ops.{pte_val,make_pte,pmd_val,make_pmd}`;
//! `set_pte_at()` and `ptep_modify_prot_start/commit()` call the matching
//! hooks. Native hooks are the identity and plain stores; the Xen PV hooks
//! are in [`super::xen::mmu_pv`]. The flag helpers (`pte_flags()`,
//! `pte_set_flags()`, ...) are *not* paravirt: they see raw values.
//!
//! The 6.1-era paths of the model use native accessors directly; a Xen PV
//! machine is modelled with the 3.x-era paths only (checked when a
//! scenario starts).

use super::pgtable::{Pmd, Pte};
use super::xen::mmu_pv;
use super::xen::p2m::P2m;
use crate::pgtable::EntryRef;

/// The platform the kernel boots on, and so its `pv_mmu_ops`.
pub enum Paravirt {
    /// Bare metal or HVM: every hook native.
    Native,
    /// A 64-bit Xen PV guest (domU): entries hold machine frames when
    /// present, pseudo-physical frames otherwise.
    XenPv(XenPv),
}

/// The Xen PV platform: the guest's p2m/m2p view, the hypervisor's
/// ownership records, and the behaviour of the guest kernel's Xen code.
pub struct XenPv {
    pub p2m: P2m,
    /// a9c8e4beeeb6 "xen: properly account for _PAGE_NUMA during xen pte
    /// translations" (v3.14-rc, later reverted): translate whenever
    /// `P|PROTNONE|NUMA` is set (`pteval_present()`), not only for P.
    pub translate_protnone: bool,
    /// `_PAGE_NUMA` of the guest kernel's layout (what `pteval_present()`
    /// tests besides P and PROTNONE).
    pub numa_mask: u64,
}

impl Paravirt {
    /// `pv_mmu_ops.pte_val`: raw entry to the value the kernel reasons about.
    pub fn pte_val(&self, pte: Pte) -> u64 {
        match self {
            Paravirt::Native => pte.0,
            Paravirt::XenPv(x) => mmu_pv::xen_pte_val(x, pte),
        }
    }

    /// `pv_mmu_ops.make_pte` (`__pte()`): a kernel value to a raw entry.
    pub fn make_pte(&self, val: u64) -> Pte {
        match self {
            Paravirt::Native => Pte(val),
            Paravirt::XenPv(x) => mmu_pv::xen_make_pte(x, val),
        }
    }

    /// `pv_mmu_ops.pmd_val` (also `pud_val`/`pgd_val`: the same translation).
    pub fn pmd_val(&self, pmd: Pmd) -> u64 {
        match self {
            Paravirt::Native => pmd.0,
            Paravirt::XenPv(x) => mmu_pv::xen_pmd_val(x, pmd),
        }
    }

    /// `pv_mmu_ops.make_pmd` (`__pmd()`, also `__pud()`/`__pgd()`).
    pub fn make_pmd(&self, val: u64) -> Pmd {
        match self {
            Paravirt::Native => Pmd(val),
            Paravirt::XenPv(x) => mmu_pv::xen_make_pmd(x, val),
        }
    }

    /// `set_pte_at()` → `pv_mmu_ops.set_pte_at`.
    pub fn set_pte_at(&self, ptep: &EntryRef, pte: Pte, label: &'static str) {
        match self {
            Paravirt::Native => ptep.write(label, pte.0),
            Paravirt::XenPv(x) => mmu_pv::xen_set_pte_at(x, ptep, pte, label),
        }
    }

    /// `set_pmd()`/`pud_populate()`... for upper levels: a store of an
    /// already made value (`__pmd()` translated it).
    pub fn set_pmd(&self, pmdp: &EntryRef, pmd: Pmd, label: &'static str) {
        match self {
            Paravirt::Native => pmdp.write(label, pmd.0),
            Paravirt::XenPv(x) => mmu_pv::xen_set_pmd(x, pmdp, pmd, label),
        }
    }

    /// `ptep_modify_prot_start()`: native `ptep_get_and_clear()`; Xen (with
    /// XENFEAT_mmu_pt_update_preserve_ad) reads the raw entry and leaves it.
    pub fn ptep_modify_prot_start(&self, ptep: &EntryRef) -> Pte {
        match self {
            Paravirt::Native => Pte(ptep.xchg("ptep_modify_prot_start", 0)),
            Paravirt::XenPv(_) => mmu_pv::xen_ptep_modify_prot_start(ptep),
        }
    }

    /// `ptep_modify_prot_commit()`: native `set_pte_at()`; Xen an
    /// `MMU_PT_UPDATE_PRESERVE_AD` update of the raw value.
    pub fn ptep_modify_prot_commit(&self, ptep: &EntryRef, pte: Pte) {
        match self {
            Paravirt::Native => ptep.write("ptep_modify_prot_commit", pte.0),
            Paravirt::XenPv(x) => mmu_pv::xen_ptep_modify_prot_commit(x, ptep, pte),
        }
    }

    /// The guest pfn whose memory a raw *hardware-visible* frame number
    /// reaches: identity on bare metal, the hypervisor's machine-to-phys
    /// record on Xen (`None`: the frame is not this domain's). Used by the
    /// MMU walk and by checkers, never by modelled kernel code.
    pub fn machine_to_phys(&self, frame: u64) -> Option<u64> {
        match self {
            Paravirt::Native => Some(frame),
            Paravirt::XenPv(x) => x.p2m.m2p(frame),
        }
    }

    /// The machine frame backing guest pfn `pfn` (identity natively).
    pub fn phys_to_machine(&self, pfn: u64) -> Option<u64> {
        match self {
            Paravirt::Native => Some(pfn),
            Paravirt::XenPv(x) => x.p2m.p2m(pfn),
        }
    }

    pub fn is_xen_pv(&self) -> bool {
        matches!(self, Paravirt::XenPv(_))
    }
}
