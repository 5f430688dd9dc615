//! Tests of the x86-64 page-table entry model (`mm::arch::x86::{pgtable, swap}`).
//!
//! The truth table is the one of specs/seed-bugs.md section 2.2.

use mm::arch::x86::{pgtable::*, swap::*};

const PFN: u64 = 0x200;

/// The seed-001 report: `bad pmd 00000000af22fc02(dffffffe71fbfe02)`.
const SEED_VAL: u64 = 0xdfff_fffe_71fb_fe02;

fn huge() -> Pmd {
    // do_anonymous_huge_page-style: mk_huge_pmd, then dirty + writable.
    pmd_mkwrite(pmd_mkdirty(mk_huge_pmd(
        PFN,
        vm_get_page_prot(VM_READ | VM_WRITE),
    )))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ghost {
    None,
    Table,
    Huge,
    HugeProtNone,
    HugeInvalid,
    Migration,
    Devmap,
}

fn encode(g: Ghost) -> Pmd {
    match g {
        Ghost::None => Pmd(0),
        Ghost::Table => pmd_populate_val(0x1234),
        Ghost::Huge => huge(),
        Ghost::HugeProtNone => pmd_modify(huge(), PAGE_NONE),
        Ghost::HugeInvalid => pmd_mkinvalid(huge()),
        Ghost::Migration => pmd_swp_mksoft_dirty(swp_entry_to_pmd(make_writable_migration_entry(
            &SwapTypes::v6_1(),
            PFN,
        ))),
        Ghost::Devmap => pmd_mkdevmap(mk_huge_pmd(PFN, PAGE_SHARED)),
    }
}

type Pred = (&'static str, fn(Pmd) -> bool);

const PREDICATES: [Pred; 7] = [
    ("pmd_none", pmd_none),
    ("pmd_present", pmd_present),
    ("pmd_trans_huge", pmd_trans_huge),
    ("is_swap_pmd", is_swap_pmd),
    ("pmd_devmap", pmd_devmap),
    ("pmd_bad", pmd_bad),
    ("pmd_protnone", pmd_protnone),
];

const T: bool = true;
const F: bool = false;

/// seed-bugs.md 2.2, columns in `PREDICATES` order.
const TRUTH_TABLE: [(Ghost, [bool; 7]); 7] = [
    (Ghost::None, [T, F, F, F, F, T, F]),
    (Ghost::Table, [F, T, F, F, F, F, F]),
    (Ghost::Huge, [F, T, T, F, F, T, F]),
    (Ghost::HugeProtNone, [F, T, T, F, F, T, T]),
    (Ghost::HugeInvalid, [F, T, T, F, F, T, F]),
    (Ghost::Migration, [F, F, F, T, T, T, F]),
    (Ghost::Devmap, [F, T, F, F, T, T, F]),
];

#[test]
fn truth_table_of_seed_bugs_2_2() {
    for (ghost, row) in TRUTH_TABLE {
        let pmd = encode(ghost);
        for ((name, pred), expected) in PREDICATES.iter().zip(row) {
            assert_eq!(
                pred(pmd),
                expected,
                "{name}({ghost:?} = {:#018x})",
                pmd_val(pmd)
            );
        }
    }
}

#[test]
fn pmd_bad_is_the_same_before_v6_1_for_every_ghost_kind() {
    for (ghost, _) in TRUTH_TABLE {
        let pmd = encode(ghost);
        assert_eq!(pmd_bad(pmd), pmd_bad_pre_v6_1(pmd), "{ghost:?}");
    }
    // They differ only for a table pointer whose accessed bit is clear.
    let old_table = pmd_mkold(pmd_populate_val(0x1234));
    assert!(!pmd_bad(old_table));
    assert!(pmd_bad_pre_v6_1(old_table));
}

#[test]
fn ghost_encodings_are_classified_back() {
    let t = SwapTypes::v6_1();
    for (ghost, _) in TRUTH_TABLE {
        let kind = classify_pmd(encode(ghost), &t);
        let ok = match (ghost, kind) {
            (Ghost::None, PmdKind::None) => true,
            (Ghost::Table, PmdKind::Table { pfn }) => pfn == 0x1234,
            (Ghost::Huge, PmdKind::Huge { pfn, .. }) => pfn == PFN,
            (Ghost::HugeProtNone, PmdKind::HugeProtNone { pfn }) => pfn == PFN,
            (Ghost::HugeInvalid, PmdKind::HugeInvalid { pfn }) => pfn == PFN,
            (
                Ghost::Migration,
                PmdKind::Migration {
                    pfn,
                    kind: MigrationKind::Write,
                    soft_dirty: true,
                    uffd_wp: false,
                },
            ) => pfn == PFN,
            (Ghost::Devmap, PmdKind::Devmap { pfn, present: true }) => pfn == PFN,
            _ => false,
        };
        assert!(ok, "{ghost:?} classified as {kind:?}");
    }
}

#[test]
fn ghost_encodings_raw_details() {
    // Non-present huge pmds keep bit 58 (DEVMAP) clear: only bits 21..=51 are inverted.
    assert_eq!(pmd_val(encode(Ghost::HugeProtNone)) & _PAGE_DEVMAP, 0);
    assert_eq!(pmd_val(encode(Ghost::HugeInvalid)) & _PAGE_DEVMAP, 0);
    // ... and store the pfn inverted.
    let inv = !(PFN << PAGE_SHIFT) & PHYSICAL_PMD_PAGE_MASK;
    assert_eq!(
        pmd_val(encode(Ghost::HugeProtNone)) & PHYSICAL_PMD_PAGE_MASK,
        inv
    );
    assert_eq!(
        pmd_val(encode(Ghost::HugeInvalid)) & PHYSICAL_PMD_PAGE_MASK,
        inv
    );
    // A migration entry has bit 58 set (inverted offset bit 49), P/PSE/G clear.
    let mig = pmd_val(encode(Ghost::Migration));
    assert_ne!(mig & _PAGE_DEVMAP, 0);
    assert_eq!(mig & (_PAGE_PRESENT | _PAGE_PSE | _PAGE_PROTNONE), 0);
    // The table pointer is exactly what pmd_populate() stores.
    assert_eq!(pmd_val(encode(Ghost::Table)), (0x1234 << 12) | 0x67);
    assert_eq!(_PAGE_TABLE, 0x67);
    assert_eq!(_KERNPG_TABLE, 0x63);
    // pmd_page() of a migration entry is not the THP: no validation in the kernel.
    assert_ne!(pmd_page_pfn(encode(Ghost::Migration)), PFN);
    assert_eq!(pmd_page_pfn(Pmd(0)), 0);
}

#[test]
fn pmd_none_ignores_knl_erratum_bits() {
    assert!(pmd_none(Pmd(_PAGE_ACCESSED | _PAGE_DIRTY)));
    assert!(!pmd_none(Pmd(_PAGE_PRESENT)));
    assert!(pte_none(Pte(_PAGE_KNL_ERRATUM_MASK)));
}

#[test]
fn seed_value_decodes_as_a_5_15_write_migration_entry() {
    let pmd = make_pmd(SEED_VAL);
    let t = SwapTypes::v5_15();
    assert_eq!(t.migration_write, 27);

    assert!(is_swap_pmd(pmd));
    assert!(is_pmd_migration_entry(&t, pmd));
    let e = pmd_to_swp_entry(pmd);
    assert_eq!(swp_type(e), 27);
    assert!(is_writable_migration_entry(&t, e));
    assert_eq!(pfn_swap_entry_to_pfn(e), 0xc70200);
    assert_eq!(swp_offset(e), 0xc70200);
    assert_eq!(
        0xc70200 & (HPAGE_PMD_NR - 1),
        0,
        "THP head is 2 MiB aligned"
    );
    assert!(pmd_swp_soft_dirty(pmd));
    assert!(!pmd_swp_uffd_wp(pmd));
    assert_ne!(SEED_VAL & (1 << 58), 0, "bit 58 set");
    assert!(pmd_bad(pmd));
    assert!(pmd_devmap(pmd));
    assert!(!pmd_trans_huge(pmd));
    assert!(!pmd_none(pmd));
    assert!(!pmd_present(pmd));

    // Re-encoding gives the reported value bit for bit.
    let re = pmd_swp_mksoft_dirty(swp_entry_to_pmd(make_writable_migration_entry(
        &t, 0xc70200,
    )));
    assert_eq!(pmd_val(re), SEED_VAL);

    assert_eq!(
        describe_pmd_with(pmd, &t),
        "migration entry (write) pfn 0xc70200 soft-dirty"
    );
    // With the 6.1 numbering type 27 is SWP_DEVICE_READ, not a migration entry.
    let t61 = SwapTypes::v6_1();
    assert!(!is_pmd_migration_entry(&t61, pmd));
    assert!(non_swap_entry(&t61, e));
    assert_eq!(
        describe_pmd(pmd),
        "special swap entry type 27 offset 0xc70200"
    );
}

#[test]
fn swap_type_numbering() {
    let v55 = SwapTypes::v5_5();
    assert_eq!(
        (
            v55.max_swapfiles,
            v55.migration_read,
            v55.migration_read_exclusive,
            v55.migration_write
        ),
        (27, 28, None, 29)
    );
    let v515 = SwapTypes::v5_15();
    assert_eq!(
        (
            v515.max_swapfiles,
            v515.migration_read,
            v515.migration_read_exclusive,
            v515.migration_write
        ),
        (25, 26, None, 27)
    );
    let v61 = SwapTypes::v6_1();
    assert_eq!(
        (
            v61.max_swapfiles,
            v61.migration_read,
            v61.migration_read_exclusive,
            v61.migration_write
        ),
        (22, 23, Some(24), 25)
    );
    // seed-bugs.md 2.0: 6.1 with PTE_MARKER=n gives 24/25/26.
    let no_marker = SwapTypes::v6_1_config(true, true, false);
    assert_eq!(
        (
            no_marker.migration_read,
            no_marker.migration_read_exclusive,
            no_marker.migration_write
        ),
        (24, Some(25), 26)
    );
    // ... and with DEVICE_PRIVATE=n, PTE_MARKER=y type 27 is SWP_MIGRATION_READ.
    assert_eq!(SwapTypes::v6_1_config(false, true, true).migration_read, 27);
}

#[test]
#[should_panic(expected = "READ_EXCLUSIVE")]
fn read_exclusive_does_not_exist_before_5_19() {
    make_readable_exclusive_migration_entry(&SwapTypes::v5_15(), PFN);
}

#[test]
fn pmd_pfn_round_trips() {
    let pfns = [0, PFN, 0xc70200, (1 << 40) - HPAGE_PMD_NR];
    for pfn in pfns {
        let present = mk_huge_pmd(pfn, PAGE_READONLY);
        assert_eq!(pmd_pfn(present), pfn, "present {pfn:#x}");
        assert_eq!(pmd_val(present) & PHYSICAL_PMD_PAGE_MASK, pfn << PAGE_SHIFT);

        let prot_none = mk_huge_pmd(pfn, PAGE_NONE);
        assert!(pmd_protnone(prot_none));
        assert_eq!(pmd_pfn(prot_none), pfn, "PROT_NONE {pfn:#x}");
        assert_eq!(
            pmd_val(prot_none) & PHYSICAL_PMD_PAGE_MASK,
            !(pfn << PAGE_SHIFT) & PHYSICAL_PMD_PAGE_MASK,
            "PROT_NONE pfn stored inverted"
        );

        let invalid = pmd_mkinvalid(present);
        assert_eq!(pmd_pfn(invalid), pfn, "invalid {pfn:#x}");
        assert!(pmd_trans_huge(invalid) && !pmd_protnone(invalid));
        // Invalidating a NUMA-hint pmd (pmdp_invalidate_ad on protnone) keeps the pfn too.
        assert_eq!(pmd_pfn(pmd_mkinvalid(prot_none)), pfn);
    }
}

#[test]
fn pfn_pmd_without_pse_reads_back_differently_when_inverted() {
    // pfn_pmd() only inverts bits 21..=51; pmd_pfn() of a non-PSE value
    // un-inverts bits 12..=51, so the low 9 pfn bits come back as ones.
    let pmd = pfn_pmd(PFN, PAGE_NONE);
    assert_eq!(pmd_pfn(pmd), PFN | 0x1ff);
    assert_eq!(pmd_pfn(pmd_mkhuge(pmd)), PFN);
}

#[test]
fn pmd_modify_numa_round_trip_keeps_pfn() {
    for pfn in [PFN, 0xc70200, (1 << 40) - HPAGE_PMD_NR] {
        let h = pmd_mkyoung(pmd_mkdirty(mk_huge_pmd(pfn, PAGE_COPY)));
        let numa = pmd_modify(h, PAGE_NONE);
        assert!(pmd_protnone(numa) && pmd_trans_huge(numa) && pmd_present(numa));
        assert_eq!(pmd_pfn(numa), pfn);
        assert!(pmd_dirty(numa) && pmd_young(numa), "A/D survive pmd_modify");
        let back = pmd_modify(numa, PAGE_READONLY);
        assert!(!pmd_protnone(back));
        assert_ne!(pmd_flags(back) & _PAGE_PRESENT, 0);
        assert_eq!(pmd_pfn(back), pfn);
        assert_eq!(pmd_val(back) & PHYSICAL_PMD_PAGE_MASK, pfn << PAGE_SHIFT);
        assert!(pmd_dirty(back) && pmd_young(back) && !pmd_write(back));
        // mprotect(PROT_READ|PROT_WRITE) on a private mapping stays read-only (COW).
        assert!(!pmd_write(pmd_modify(
            back,
            vm_get_page_prot(VM_READ | VM_WRITE)
        )));
    }
}

#[test]
fn pte_round_trips() {
    for pfn in [1, 0x1234, 0xc70201, (1 << 40) - 1] {
        let p = pfn_pte(pfn, PAGE_READONLY);
        assert_eq!(pte_pfn(p), pfn);
        assert!(pte_present(p) && !pte_protnone(p));
        let none = pte_modify(p, PAGE_NONE);
        assert!(pte_present(none) && pte_protnone(none));
        assert_eq!(pte_pfn(none), pfn);
        assert_eq!(
            pte_val(none) & PTE_PFN_MASK,
            !(pfn << PAGE_SHIFT) & PTE_PFN_MASK
        );
        let back = pte_modify(none, PAGE_SHARED);
        assert_eq!(pte_pfn(back), pfn);
        assert!(pte_write(back) && !pte_protnone(back));
        assert_eq!(pte_pfn(pfn_pte(pfn, PAGE_NONE)), pfn);
    }
    let p = pte_mkdirty(pte_mkyoung(pfn_pte(5, PAGE_SHARED)));
    assert!(pte_dirty(p) && pte_young(p) && pte_soft_dirty(p) && pte_write(p));
    let p = pte_wrprotect(pte_mkold(p));
    assert!(!pte_young(p) && !pte_write(p));
    assert!(pte_write(pte_mkwrite(p)));
}

#[test]
fn swap_entry_round_trips_through_pmd_and_pte() {
    for t in [SwapTypes::v5_5(), SwapTypes::v5_15(), SwapTypes::v6_1()] {
        for pfn in [0, 1, PFN, 0xc70200, SWP_PFN_MASK] {
            let mut entries = vec![
                make_readable_migration_entry(&t, pfn),
                make_writable_migration_entry(&t, pfn),
            ];
            if t.migration_read_exclusive.is_some() {
                entries.push(make_readable_exclusive_migration_entry(&t, pfn));
            }
            for e in entries {
                assert!(is_migration_entry(&t, e));
                assert!(non_swap_entry(&t, e));
                assert_eq!(pfn_swap_entry_to_pfn(e), pfn);

                let pmd = swp_entry_to_pmd(e);
                assert!(is_swap_pmd(pmd) && is_pmd_migration_entry(&t, pmd));
                assert_eq!(pmd_to_swp_entry(pmd), e);
                let flagged = pmd_swp_mkuffd_wp(pmd_swp_mksoft_dirty(pmd));
                assert!(is_swap_pmd(flagged));
                assert_eq!(pmd_to_swp_entry(flagged), e);
                assert!(pmd_swp_soft_dirty(flagged) && pmd_swp_uffd_wp(flagged));

                let pte = swp_entry_to_pte(e);
                assert!(is_swap_pte(pte));
                assert_eq!(pte_to_swp_entry(pte), e);
                let flagged = pte_swp_mkexclusive(pte_swp_mkuffd_wp(pte_swp_mksoft_dirty(pte)));
                assert!(is_swap_pte(flagged));
                assert_eq!(pte_to_swp_entry(flagged), e);
                assert!(pte_swp_exclusive(flagged));
            }
        }
    }
    // A real swap slot: type 3, offset at the top of the 50-bit arch field.
    let t = SwapTypes::v6_1();
    let max_off = (1 << SWP_ARCH_OFFSET_BITS) - 1;
    for off in [0, 0x1234, max_off] {
        let e = swp_entry(3, off);
        assert!(!non_swap_entry(&t, e) && !is_migration_entry(&t, e));
        assert_eq!(pte_to_swp_entry(swp_entry_to_pte(e)), e);
        assert_eq!(pmd_to_swp_entry(swp_entry_to_pmd(e)), e);
        assert_eq!(
            describe_pte(swp_entry_to_pte(e)),
            format!("swap entry type 3 offset {off:#x}")
        );
    }
}

#[test]
fn arch_layout_of_a_swap_entry() {
    let arch = __swp_entry(25, 0xc70200);
    assert_eq!(arch.val >> 59, 25);
    assert_eq!(__swp_type(arch), 25);
    assert_eq!(__swp_offset(arch), 0xc70200);
    // Low 9 bits are free for the flag bits; bits 9..=58 hold the inverted offset.
    assert_eq!(arch.val & 0x1ff, 0);
    assert_eq!((!arch.val >> 9) & ((1 << 50) - 1), 0xc70200);
    assert_eq!(SWP_OFFSET_FIRST_BIT, 9);
    assert_eq!(SWP_OFFSET_SHIFT, 14);
    assert_eq!(SWP_TYPE_SHIFT, 58);
}

#[test]
fn migration_entry_ad_bits_v6_1() {
    let t = SwapTypes::v6_1();
    let e = make_readable_migration_entry(&t, 0xc70200);
    let ad = make_migration_entry_dirty(make_migration_entry_young(e, true), true);
    assert!(is_migration_entry_young(ad, true) && is_migration_entry_dirty(ad, true));
    assert_eq!(pfn_swap_entry_to_pfn(ad), 0xc70200);
    assert_ne!(swp_offset(ad), 0xc70200);
    assert_eq!(pmd_to_swp_entry(swp_entry_to_pmd(ad)), ad);
    assert_eq!(make_migration_entry_young(e, false), e);
    assert!(!is_migration_entry_dirty(ad, false));
}

#[test]
fn pmd_addr_end_edge_cases() {
    let s = PMD_SIZE;
    assert_eq!(pmd_addr_end(0, 0x1000), 0x1000);
    assert_eq!(pmd_addr_end(0, s), s);
    assert_eq!(pmd_addr_end(0x1000, 3 * s), s);
    assert_eq!(
        pmd_addr_end(s, 3 * s),
        2 * s,
        "aligned addr advances a full PMD"
    );
    assert_eq!(pmd_addr_end(s - 1, 3 * s), s);
    assert_eq!(pmd_addr_end(s + 0x1000, s + 0x5000), s + 0x5000);
    // end == 0 means "up to the top of the address space".
    assert_eq!(pmd_addr_end(0x7fff_0000_0000, 0), 0x7fff_0020_0000);
    // The boundary after the last PMD wraps to 0: the `- 1` trick yields end.
    let last = 0u64.wrapping_sub(s);
    assert_eq!(pmd_addr_end(last, 0), 0);
    assert_eq!(pmd_addr_end(last + 0x1000, 0), 0);
    assert_eq!(pmd_addr_end(last, last + 0x3000), last + 0x3000);
    // pud/pgd variants.
    assert_eq!(pud_addr_end(0x1000, 0), PUD_SIZE);
    assert_eq!(pud_addr_end(0x1000, 0x2000), 0x2000);
    assert_eq!(pgd_addr_end(PGDIR_SIZE - 1, 5 * PGDIR_SIZE), PGDIR_SIZE);
    assert_eq!(pgd_addr_end(0u64.wrapping_sub(PGDIR_SIZE), 0), 0);
}

#[test]
fn pmd_addr_end_walk_covers_range_exactly() {
    let ranges = [
        (0x1000, 0x1000 + 5 * PMD_SIZE + 0x3000),
        (0x7fff_ffe0_0000, 0x8000_0040_0000),
        (0u64.wrapping_sub(3 * PMD_SIZE) + 0x1000, 0),
    ];
    for (start, end) in ranges {
        let mut addr = start;
        let mut steps = 0;
        loop {
            let next = pmd_addr_end(addr, end);
            assert!(
                next.wrapping_sub(addr).wrapping_sub(1) < PMD_SIZE,
                "step in one PMD"
            );
            assert!(next == end || next & (PMD_SIZE - 1) == 0);
            addr = next;
            steps += 1;
            if addr == end {
                break;
            }
            assert!(steps < 100);
        }
    }
}

#[test]
fn index_helpers() {
    let a = 0x0000_7fff_ffff_f000;
    assert_eq!(
        (pgd_index(a), pud_index(a), pmd_index(a), pte_index(a)),
        (255, 511, 511, 511)
    );
    let b = (1 << PGDIR_SHIFT) | (2 << PUD_SHIFT) | (3 << PMD_SHIFT) | (4 << PAGE_SHIFT) | 0x123;
    assert_eq!(
        (pgd_index(b), pud_index(b), pmd_index(b), pte_index(b)),
        (1, 2, 3, 4)
    );
    assert_eq!(pgd_index(0xffff_8880_0000_0000), 273);
}

#[test]
fn protections() {
    assert_eq!(pgprot_val(PAGE_NONE), 0x120);
    assert_eq!(vm_get_page_prot(0), PAGE_NONE);
    assert_eq!(vm_get_page_prot(VM_SHARED), PAGE_NONE);
    assert_eq!(vm_get_page_prot(VM_READ), PAGE_READONLY);
    assert_eq!(vm_get_page_prot(VM_READ | VM_WRITE), PAGE_COPY);
    assert_eq!(vm_get_page_prot(VM_READ | VM_EXEC), PAGE_READONLY_EXEC);
    assert_eq!(
        vm_get_page_prot(VM_READ | VM_WRITE | VM_EXEC),
        PAGE_COPY_EXEC
    );
    assert_eq!(
        vm_get_page_prot(VM_SHARED | VM_READ | VM_WRITE),
        PAGE_SHARED
    );
    assert_eq!(
        vm_get_page_prot(VM_SHARED | VM_READ | VM_WRITE | VM_EXEC),
        PAGE_SHARED_EXEC
    );
    for flags in 0..16 {
        let p = pgprot_val(vm_get_page_prot(flags));
        let writable = p & _PAGE_RW != 0;
        assert_eq!(writable, flags & VM_SHARED != 0 && flags & VM_WRITE != 0);
        assert_eq!(
            p & _PAGE_PRESENT == 0,
            flags & (VM_READ | VM_WRITE | VM_EXEC) == 0
        );
    }
}

#[test]
fn l1tf_helpers() {
    assert!(!__pte_needs_invert(0));
    assert!(!__pte_needs_invert(_PAGE_PRESENT | 0x1000));
    assert!(__pte_needs_invert(_PAGE_PROTNONE));
    assert_eq!(protnone_mask(_PAGE_PROTNONE), !0);
    assert_eq!(protnone_mask(_PAGE_PRESENT), 0);
    assert_eq!(flip_protnone_guard(1, 1, 0xf000), 1);
    assert_eq!(flip_protnone_guard(1, 0x100, 0xf000), 0xf100);
}

#[test]
fn describe_strings() {
    assert_eq!(describe_pmd(Pmd(0)), "none");
    assert_eq!(describe_pmd(pmd_populate_val(0x1234)), "table pfn 0x1234");
    assert_eq!(
        describe_pmd(mk_huge_pmd(PFN, PAGE_READONLY)),
        "huge pfn 0x200 prot P|US|A|PSE|NX"
    );
    assert_eq!(
        describe_pmd(encode(Ghost::HugeProtNone)),
        "huge protnone (NUMA hint) pfn 0x200"
    );
    assert_eq!(
        describe_pmd(encode(Ghost::HugeInvalid)),
        "huge invalid (pmdp_invalidate) pfn 0x200"
    );
    assert_eq!(
        describe_pmd(encode(Ghost::Migration)),
        "migration entry (write) pfn 0x200 soft-dirty"
    );
    assert_eq!(describe_pmd(encode(Ghost::Devmap)), "devmap pfn 0x200");
    assert_eq!(describe_pmd(Pmd(0x1234_0007)), "bad 0x0000000012340007");

    assert_eq!(describe_pte(Pte(0)), "none");
    assert_eq!(
        describe_pte(pfn_pte(0x42, PAGE_SHARED)),
        "present pfn 0x42 prot P|RW|US|A|NX"
    );
    assert_eq!(describe_pte(pfn_pte(0x42, PAGE_NONE)), "protnone pfn 0x42");
    let t = SwapTypes::v6_1();
    let mig = pte_swp_mkexclusive(swp_entry_to_pte(make_readable_exclusive_migration_entry(
        &t, 0x42,
    )));
    assert_eq!(
        describe_pte(mig),
        "migration entry (read-exclusive) pfn 0x42 exclusive"
    );
}
