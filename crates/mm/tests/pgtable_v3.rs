//! Tests of the 3.x-era entry model (`mm::arch::x86::pgtable_v3`), the
//! paravirt backends and the Xen PV translation, against the kernel's
//! definitions (seed-bugs.md §1.2) worked out by hand, and the seed-000
//! values step by step on the model's p2m.

use mm::arch::x86::paravirt::{Paravirt, XenPv};
use mm::arch::x86::pgtable::{Pte, PAGE_NONE, PAGE_READONLY};
use mm::arch::x86::pgtable_v3::*;
use mm::arch::x86::xen::hypervisor::adjust_guest_l1e;
use mm::arch::x86::xen::mmu_pv::{pte_mfn_to_pfn, pte_pfn_to_mfn, pteval_present};
use mm::arch::x86::xen::p2m::P2m;

use NumaBit::{AliasProtNone as V3_12, Softw1 as V3_16};

fn xen(translate_protnone: bool) -> XenPv {
    XenPv {
        p2m: P2m::new(1),
        translate_protnone,
        numa_mask: V3_12.mask(),
    }
}

#[test]
fn protections_and_masks_have_the_3_12_values() {
    assert_eq!(PAGE_NONE.0, 0x120, "PROTNONE|ACCESSED");
    assert_eq!(PAGE_READONLY.0, 0x8000_0000_0000_0025, "P|USER|ACCESSED|NX");
    assert_eq!(PTE_PFN_MASK, 0x0000_3fff_ffff_f000, "pfn bits 12..45");
    assert_eq!(V3_12.mask(), 0x100, "_PAGE_NUMA == _PAGE_PROTNONE");
    assert_eq!(V3_16.mask(), 0x200, "c46a7c817e66: bit 9");
    // pfn | PCD | PWT | SPECIAL | A | D | SOFT_DIRTY, plus NUMA from 3.16.
    assert_eq!(
        V3_12.chg_mask(),
        PTE_PFN_MASK | 0x10 | 0x08 | 0x200 | 0x20 | 0x40 | 0x800
    );
    assert_eq!(V3_16.chg_mask(), V3_12.chg_mask() | 0x200);
}

#[test]
fn predicates_follow_the_kernel_definitions() {
    // (raw flags, pte_present 3.12, pte_numa 3.12, pte_present 3.16, pte_numa 3.16)
    let table: [(u64, bool, bool, bool, bool); 7] = [
        (0x000, false, false, false, false),
        (0x001, true, false, true, false),
        (0x100, true, true, true, false), // PROT_NONE: "NUMA" in 3.12 only
        (0x101, true, false, true, false),
        (0x200, false, false, true, true), // 3.16 NUMA hint (bit 9 = SPECIAL in 3.12)
        (0x300, true, true, true, false),
        (0x201, true, false, true, false),
    ];
    for (flags, p12, n12, p16, n16) in table {
        let pte = Pte((0x1234 << 12) | flags);
        assert_eq!(pte_present(V3_12, pte), p12, "pte_present 3.12 {flags:#x}");
        assert_eq!(pte_numa(V3_12, pte), n12, "pte_numa 3.12 {flags:#x}");
        assert_eq!(pte_present(V3_16, pte), p16, "pte_present 3.16 {flags:#x}");
        assert_eq!(pte_numa(V3_16, pte), n16, "pte_numa 3.16 {flags:#x}");
    }
    assert!(pte_none(Pte(0)) && !pte_none(Pte(0x20)));
}

#[test]
fn pte_special_needs_present_once_numa_is_bit_9() {
    // (raw flags, pte_special 3.12, pte_special 3.16): 3.12 tests bit 9;
    // c46a7c817e66 made it (flags & (P|SPECIAL)) == (P|SPECIAL), because
    // bit 9 is _PAGE_NUMA too and a hinting pte has P clear.
    let table: [(u64, bool, bool); 6] = [
        (0x001, false, false),
        (0x201, true, true),   // zero page, present
        (0x200, true, false),  // 3.16: a NUMA hinting pte
        (0x300, true, false),  // the same with G from Xen (PROTNONE when P is clear)
        (0x100, false, false), // PROT_NONE
        (0x101, false, false),
    ];
    for (flags, s12, s16) in table {
        let pte = Pte((0x1234 << 12) | flags);
        assert_eq!(pte_special(V3_12, pte), s12, "pte_special 3.12 {flags:#x}");
        assert_eq!(pte_special(V3_16, pte), s16, "pte_special 3.16 {flags:#x}");
    }
}

#[test]
fn native_numa_helpers_flip_flags_on_the_raw_value() {
    // pte_mknonnuma: clear NUMA, set P|A. pte_mknuma: set NUMA, clear P.
    assert_eq!(
        pte_mknonnuma_native(V3_12, Pte(0x1_0000_4960)).0,
        0x1_0000_4861
    );
    assert_eq!(
        pte_mknuma_native(V3_12, Pte(0x8000_0001_0000_4967)).0,
        0x8000_0001_0000_4966
    );
    assert_eq!(
        pte_mknuma_native(V3_16, Pte(0x1_0000_4067)).0,
        0x1_0000_4266
    );
    // Natively the paravirt forms are the same operations.
    let native = Paravirt::Native;
    for raw in [0x1_0000_4960u64, 0x8000_0001_0000_4967] {
        assert_eq!(
            pte_mknonnuma_pv(&native, V3_12, Pte(raw)),
            pte_mknonnuma_native(V3_12, Pte(raw))
        );
    }
    assert_eq!(
        pte_mknuma_pv(&native, V3_12, Pte(0x8000_0001_0000_4967)),
        pte_mknuma_native(V3_12, Pte(0x8000_0001_0000_4967))
    );
}

#[test]
fn pte_modify_keeps_the_change_mask_and_takes_the_rest_from_newprot() {
    let native = Paravirt::Native;
    // mprotect(PROT_NONE) of a dirty writable pte (U2): pfn, A, D and
    // SOFT_DIRTY stay, PROTNONE comes from PAGE_NONE; P/RW/US/G/NX go.
    let rw = Pte(0x8000_0001_0000_4967);
    assert_eq!(pte_modify(&native, V3_12, rw, PAGE_NONE).0, 0x1_0000_4960);
    // mprotect(PROT_READ) of that PROT_NONE pte (U3) without the hunk.
    assert_eq!(
        pte_modify(&native, V3_12, Pte(0x1_0000_4960), PAGE_READONLY).0,
        0x8000_0001_0000_4865
    );
    assert_eq!(pte_pfn(&native, Pte(0x8000_0001_0000_4865)), 0x10_0004);
    assert_eq!(
        pfn_pte(&native, 0x10_0004, PAGE_READONLY).0,
        0x8000_0001_0000_4025
    );
}

#[test]
fn xen_translates_present_values_only() {
    let x = xen(false);
    let mfn = x.p2m.p2m(0x10_0004).unwrap();
    assert_ne!(mfn, 0x10_0004, "frames are scattered");
    let present = (0x10_0004 << 12) | 0x67;
    assert_eq!(pte_pfn_to_mfn(&x, present), (mfn << 12) | 0x67);
    assert_eq!(pte_mfn_to_pfn(&x, (mfn << 12) | 0x67), present);
    // Non-present values are stored verbatim (the ABI: they hold pfns).
    let protnone = (0x10_0004 << 12) | 0x160;
    assert_eq!(pte_pfn_to_mfn(&x, protnone), protnone);
    assert_eq!(pte_mfn_to_pfn(&x, protnone), protnone);
    // A machine frame that is not the domain's: flags only, P cleared.
    assert_eq!(pte_mfn_to_pfn(&x, (0x10 << 12) | 0x67), 0x66);
    // A pfn with no machine frame: the whole value is lost.
    assert_eq!(pte_pfn_to_mfn(&x, (0x10 << 12) | 0x67), 0);
    // a9c8e4beeeb6: PROTNONE/NUMA values are translated too.
    let wrong = xen(true);
    assert!(!pteval_present(&x, protnone) && pteval_present(&wrong, protnone));
    assert_eq!(pte_pfn_to_mfn(&wrong, protnone), (mfn << 12) | 0x160);
}

#[test]
fn hypervisor_makes_present_user_ptes_global() {
    assert_eq!(
        adjust_guest_l1e(0x8000_0001_0000_4865),
        0x8000_0001_0000_4965
    );
    assert_eq!(
        adjust_guest_l1e(0x1_0000_4960),
        0x1_0000_4960,
        "not present"
    );
    assert_eq!(
        adjust_guest_l1e(0x1_0000_4063),
        0x1_0000_4063,
        "kernel mapping"
    );
}

/// Seed 000's U3 step on Xen PV with the model's p2m: the native
/// pte_mknonnuma sets P on a pfn, pte_modify's Xen pte_val takes it for a
/// machine frame, and the result maps another page; the paravirt helper
/// keeps the page.
#[test]
fn seed_000_step_u3_on_xen() {
    let pv = Paravirt::XenPv(xen(false));
    let a = 0x10_0004u64;
    let mfn_a = pv.phys_to_machine(a).unwrap();
    let protnone = Pte((a << 12) | 0x960); // after U2: pfn form, PROTNONE|A|D|SOFT_DIRTY
    assert!(
        pte_numa(V3_12, protnone),
        "a PROT_NONE pte is pte_numa in 3.12"
    );

    let native = pte_mknonnuma_native(V3_12, protnone);
    assert_eq!(
        native.0,
        (a << 12) | 0x861,
        "present, but the frame is a pfn"
    );
    let wrong = pte_modify(&pv, V3_12, native, PAGE_READONLY);
    let x = pv.machine_to_phys(a).unwrap();
    assert_ne!(x, a);
    assert_eq!(pte_pfn(&pv, wrong), x, "the pte now maps pfn x, not a");

    let friendly = pte_mknonnuma_pv(&pv, V3_12, protnone);
    assert_eq!(
        friendly.0,
        (mfn_a << 12) | 0x861,
        "P set on the machine frame"
    );
    let right = pte_modify(&pv, V3_12, friendly, PAGE_READONLY);
    assert_eq!(pte_pfn(&pv, right), a);
    assert_eq!(right.0, 0x8000_0000_0000_0000 | (mfn_a << 12) | 0x865);
}

/// The scanner's pte_mknuma (Actor N): native leaves the machine frame in a
/// non-present pte; the paravirt form stores the pfn.
#[test]
fn seed_000_numa_scan_on_xen() {
    let pv = Paravirt::XenPv(xen(false));
    let a = 0x10_0004u64;
    let mfn_a = pv.phys_to_machine(a).unwrap();
    let present = Pte(0x8000_0000_0000_0000 | (mfn_a << 12) | 0x967);
    assert_eq!(pte_pfn(&pv, present), a);
    let native = pte_mknuma_native(V3_12, present);
    assert_eq!(native.0 & PTE_PFN_MASK, mfn_a << 12, "machine frame kept");
    assert_eq!(
        pte_pfn(&pv, native),
        mfn_a,
        "Xen pte_val does not translate it back"
    );
    let friendly = pte_mknuma_pv(&pv, V3_12, present);
    assert_eq!(friendly.0 & PTE_PFN_MASK, a << 12);
    assert_eq!(pte_pfn(&pv, friendly), a);
}
