//! The model's syscall and fault paths run sequentially (one execution, no
//! concurrent actors): semantics a user can observe, kernel accounting at
//! exit, and the checkers on a healthy state.

use std::rc::Rc;

use explore::rt::{run_execution, ActorSpec, ExecutionConfig, Harness, Instance, Workspace};
use explore::strategy::RandomWalk;
use explore::Finding;
use mm::arch::x86::mm::fault::{user_read, user_write, Signal};
use mm::kernel::fork::{check_mm_lines, mm_alloc};
use mm::kernel::sched::fair::task_numa_work;
use mm::madvise::{do_madvise, MADV_DONTNEED};
use mm::mm_types::{Kernel, Machine, Task, Thp, HPAGE_PMD_SIZE, MM_ANONPAGES, PAGE_SIZE};
use mm::mmap::{
    do_mmap, do_mprotect, do_munmap, exit_mmap, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE,
};

/// Runs `body` as the sequential setup of one execution; returns the
/// finding it raised, if any.
fn sequential(profile: &'static str, thp: Thp, body: fn(&Kernel, &Task)) -> Option<Finding> {
    execution(profile, thp, body, false).finding
}

/// As [`sequential`], with `--knob` overrides of the profile.
fn sequential_with(
    profile: &'static str,
    knobs: &[(&str, &str)],
    body: fn(&Kernel, &Task),
) -> Option<Finding> {
    let overrides: Vec<(String, String)> = knobs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let p = mm::profile(profile)
        .unwrap()
        .with_overrides(&overrides)
        .unwrap();
    execution_of(p, Thp::Never, body, false).finding
}

/// The labels of every access `body` made, in order (a traced execution).
fn access_labels(profile: &'static str, thp: Thp, body: fn(&Kernel, &Task)) -> Vec<&'static str> {
    execution(profile, thp, body, true)
        .trace
        .iter()
        .filter_map(|e| match &e.what {
            explore::trace::What::Access { access, .. } => Some(access.label),
            _ => None,
        })
        .collect()
}

fn execution(
    profile: &'static str,
    thp: Thp,
    body: fn(&Kernel, &Task),
    tracing: bool,
) -> explore::ExecutionResult {
    execution_of(mm::profile(profile).unwrap(), thp, body, tracing)
}

fn execution_of(
    profile: mm::Profile,
    thp: Thp,
    body: fn(&Kernel, &Task),
    tracing: bool,
) -> explore::ExecutionResult {
    struct H(mm::Profile, Thp, fn(&Kernel, &Task));
    struct I(Rc<Kernel>);
    impl Harness for H {
        fn start(&self) -> Box<dyn Instance> {
            let machine = Machine {
                nodes: 2,
                thp: self.1,
                thp_use_zero_page: true,
            };
            let k = Rc::new(Kernel::new(self.0.clone(), machine));
            let mm = mm_alloc(&k).unwrap();
            let task = Task {
                name: "t".into(),
                node: 0,
                mm,
            };
            (self.2)(&k, &task);
            Box::new(I(k))
        }
    }
    impl Instance for I {
        fn actors(&mut self) -> Vec<ActorSpec> {
            Vec::new()
        }
        fn check(&self) -> Option<Finding> {
            mm::checkers::check_all(&self.0)
        }
    }
    let config = ExecutionConfig {
        steps_max: 1000,
        tracing,
        track_conflicts: false,
        racy: &[],
    };
    let h = H(profile, thp, body);
    run_execution(
        &h,
        &mut RandomWalk::new(0),
        config,
        &mut Workspace::default(),
    )
    .unwrap()
}

/// The folio the pte for `addr` maps (ghost walk).
fn folio_mapped_at(k: &Kernel, t: &Task, addr: u64) -> std::rc::Rc<mm::mm_types::Folio> {
    let pmd = mm::pgtable::peek_pmd(k, &t.mm, addr).unwrap().peek();
    let pte = mm::arch::x86::pgtable::Pte(mm::pgtable::pte_offset(k, pmd, addr).unwrap().peek());
    k.mem
        .pfn_folio(mm::arch::x86::pgtable::pte_pfn(pte))
        .unwrap()
}

fn anon(k: &Kernel, t: &Task, len: u64, align: u64) -> u64 {
    do_mmap(
        k,
        t,
        0,
        len,
        PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS,
        align,
    )
    .unwrap()
}

#[test]
fn small_pages_read_zero_then_hold_writes() {
    let f = sequential("linux-6.5", Thp::Never, |k, t| {
        let p = anon(k, t, 4 * PAGE_SIZE, 0);
        assert_eq!(
            user_read(k, t, p, 0, 4).unwrap(),
            vec![0; 4],
            "fresh anonymous memory reads zero"
        );
        user_write(k, t, p, 1, 3, 0xab).unwrap();
        assert_eq!(user_read(k, t, p, 0, 4).unwrap(), vec![0, 0xab, 0xab, 0]);
        assert_eq!(
            t.mm.rss[MM_ANONPAGES].get(),
            1,
            "the zero page was replaced by one anon page"
        );
        assert!(mm::checkers::check_all(k).is_none());
        exit_mmap(k, &t.mm);
        assert!(
            check_mm_lines(k, &t.mm).is_empty(),
            "{:?}",
            check_mm_lines(k, &t.mm)
        );
    });
    assert!(f.is_none(), "{f:?}");
}

#[test]
fn thp_fault_accounts_512_pages_and_a_deposited_table() {
    let f = sequential("linux-6.1.159", Thp::Always, |k, t| {
        let p = anon(k, t, HPAGE_PMD_SIZE, HPAGE_PMD_SIZE);
        user_write(k, t, p, 0, 1, 7).unwrap();
        assert_eq!(t.mm.rss[MM_ANONPAGES].get(), 512);
        // PUD + PMD table + the deposited PTE table.
        assert_eq!(t.mm.pgtables_bytes.get(), 3 * PAGE_SIZE as i64);
        do_munmap(k, t, p, HPAGE_PMD_SIZE).unwrap();
        assert_eq!(t.mm.rss[MM_ANONPAGES].get(), 0);
        assert_eq!(t.mm.pgtables_bytes.get(), 0, "munmap freed every table");
    });
    assert!(f.is_none(), "{f:?}");
}

#[test]
fn protections_and_holes_give_the_right_signals() {
    let f = sequential("linux-6.5", Thp::Never, |k, t| {
        let p = anon(k, t, 2 * PAGE_SIZE, 0);
        user_write(k, t, p, 0, 1, 1).unwrap();
        do_mprotect(k, t, p, PAGE_SIZE, PROT_READ).unwrap();
        assert_eq!(user_write(k, t, p, 0, 1, 2), Err(Signal::SegvAccErr));
        assert_eq!(
            user_read(k, t, p, 0, 1).unwrap(),
            vec![1],
            "the data survives mprotect"
        );
        user_write(k, t, p + PAGE_SIZE, 0, 1, 3).unwrap();
        do_munmap(k, t, p, PAGE_SIZE).unwrap();
        assert_eq!(user_read(k, t, p, 0, 1), Err(Signal::SegvMapErr));
        assert_eq!(user_read(k, t, p + PAGE_SIZE, 0, 1).unwrap(), vec![3]);
        assert_eq!(
            do_mprotect(k, t, p, 2 * PAGE_SIZE, PROT_READ),
            Err(mm::mmap::ENOMEM)
        );
    });
    assert!(f.is_none(), "{f:?}");
}

#[test]
fn dontneed_zeroes_and_numa_hinting_keeps_data() {
    let f = sequential("linux-6.1.159", Thp::Always, |k, t| {
        let p = anon(k, t, HPAGE_PMD_SIZE, HPAGE_PMD_SIZE);
        user_write(k, t, p, 0, HPAGE_PMD_SIZE, 0x5a).unwrap();
        assert_eq!(task_numa_work(k, t, p, HPAGE_PMD_SIZE), Some(512));
        // A hinting fault from node 0 on a node-0 THP restores the pmd.
        assert_eq!(user_read(k, t, p + 4096, 0, 1).unwrap(), vec![0x5a]);
        do_madvise(k, t, p, HPAGE_PMD_SIZE, MADV_DONTNEED).unwrap();
        assert_eq!(user_read(k, t, p + 4096, 0, 2).unwrap(), vec![0, 0]);
        assert_eq!(
            t.mm.rss[MM_ANONPAGES].get(),
            0,
            "the huge zero page is not counted"
        );
    });
    assert!(f.is_none(), "{f:?}");
}

#[test]
fn numa_hinting_fault_from_another_node_migrates_the_thp() {
    let f = sequential("linux-6.1.159", Thp::Always, |k, t| {
        let p = anon(k, t, HPAGE_PMD_SIZE, HPAGE_PMD_SIZE);
        user_write(k, t, p, 0, HPAGE_PMD_SIZE, 0x5a).unwrap();
        task_numa_work(k, t, p, HPAGE_PMD_SIZE);
        let remote = Task {
            name: "remote".into(),
            node: 1,
            mm: t.mm.clone(),
        };
        assert_eq!(user_read(k, &remote, p + 8192, 0, 1).unwrap(), vec![0x5a]);
        let pmd = mm::pgtable::peek_pmd(k, &t.mm, p).unwrap().peek();
        let folio = k
            .mem
            .pfn_folio(mm::arch::x86::pgtable::pmd_pfn(
                mm::arch::x86::pgtable::Pmd(pmd),
            ))
            .unwrap();
        assert_eq!(folio.node, 1, "the THP moved to the faulting node");
        assert_eq!(t.mm.rss[MM_ANONPAGES].get(), 512);
    });
    assert!(f.is_none(), "{f:?}");
}

#[test]
fn check_mm_reports_a_leak_in_kernel_format() {
    let f = sequential("linux-6.1.159", Thp::Always, |k, t| {
        let p = anon(k, t, HPAGE_PMD_SIZE, HPAGE_PMD_SIZE);
        user_write(k, t, p, 0, 1, 1).unwrap();
        // Drop the mapping behind the kernel's back, as pmd_clear_bad does.
        let pmd = mm::pgtable::peek_pmd(k, &t.mm, p).unwrap();
        pmd.write("test: pmd_clear", 0);
        exit_mmap(k, &t.mm);
    });
    let f = f.expect("a finding");
    assert!(
        f.title.starts_with("BUG: Bad rss-counter state mm:"),
        "{}",
        f.title
    );
    assert!(
        f.title.ends_with("type:MM_ANONPAGES val:512"),
        "{}",
        f.title
    );
    assert_eq!(
        f.details.last().map(String::as_str),
        Some("BUG: non-zero pgtables_bytes on freeing mm: 4096")
    );
}

#[test]
fn partial_munmap_splits_the_thp_and_keeps_the_rest() {
    let f = sequential("linux-6.1.159", Thp::Always, |k, t| {
        let p = anon(k, t, HPAGE_PMD_SIZE, HPAGE_PMD_SIZE);
        user_write(k, t, p, 0, HPAGE_PMD_SIZE, 0x5a).unwrap();
        do_munmap(k, t, p + 4 * PAGE_SIZE, PAGE_SIZE).unwrap();
        assert_eq!(t.mm.rss[MM_ANONPAGES].get(), 511, "one subpage unmapped");
        let pmd = mm::pgtable::peek_pmd(k, &t.mm, p).unwrap().peek();
        let table = mm::pgtable::table_of(k, pmd).expect("the pmd now points to a pte table");
        let pte = mm::arch::x86::pgtable::Pte(table.entries().peek(5));
        let folio = k
            .mem
            .pfn_folio(mm::arch::x86::pgtable::pte_pfn(pte))
            .unwrap();
        assert_eq!(folio.order, 9, "the THP stays one folio, mapped by ptes");
        assert_eq!((folio.mapcount.peek(), folio.refcount.peek()), (511, 511));
        assert_eq!(
            user_read(k, t, p + 5 * PAGE_SIZE, 0, 2).unwrap(),
            vec![0x5a, 0x5a]
        );
        assert_eq!(
            user_read(k, t, p + 4 * PAGE_SIZE, 0, 1),
            Err(Signal::SegvMapErr)
        );
        user_write(k, t, p + 6 * PAGE_SIZE, 0, 1, 7).unwrap();
        do_mprotect(k, t, p, PAGE_SIZE, PROT_READ).unwrap();
        assert!(mm::checkers::check_all(k).is_none());
        exit_mmap(k, &t.mm);
        assert!(
            check_mm_lines(k, &t.mm).is_empty(),
            "{:?}",
            check_mm_lines(k, &t.mm)
        );
        assert!(
            k.mem.pfn_folio(folio.pfn).is_none(),
            "the THP was freed with its last pte"
        );
    });
    assert!(f.is_none(), "{f:?}");
}

#[test]
fn a_pte_left_pointing_at_a_freed_page_is_inv_lifetime() {
    let f = sequential("linux-6.5", Thp::Never, |k, t| {
        let p = anon(k, t, PAGE_SIZE, 0);
        user_write(k, t, p, 0, 1, 1).unwrap();
        assert!(mm::checkers::check_all(k).is_none());
        let folio = folio_mapped_at(k, t, p);
        // Free the page behind the page tables' back.
        k.mem.free_folio(&folio);
        let found = mm::checkers::check_all(k).expect("a use-after-free");
        assert!(
            found.title.starts_with("INV-LIFETIME: the entry mapping"),
            "{}",
            found.title
        );
        assert!(
            found.details[0].contains("present pfn"),
            "{:?}",
            found.details
        );
    });
    // The explorer's own final check reports it too.
    let f = f.expect("the final check finds it");
    assert!(f.title.starts_with("INV-LIFETIME"), "{}", f.title);
}

#[test]
fn a_reference_nobody_drops_is_a_page_leak_after_exit() {
    let f = sequential("linux-6.5", Thp::Never, |k, t| {
        let p = anon(k, t, PAGE_SIZE, 0);
        user_write(k, t, p, 0, 1, 1).unwrap();
        let folio = folio_mapped_at(k, t, p);
        mm::memory::get_folio(&folio);
        exit_mmap(k, &t.mm);
        assert!(
            check_mm_lines(k, &t.mm).is_empty(),
            "the counters are fine; the page is not"
        );
    });
    let f = f.expect("the final check finds the leak");
    assert!(
        f.title.starts_with("INV-ACCT: page leak: folio pfn"),
        "{}",
        f.title
    );
    assert!(f.title.ends_with("refcount 1 mapcount 0"), "{}", f.title);
}

/// The VMA, its anon_vma and the PTE table of `addr` (ghost lookups).
fn vma_anon_vma_and_table(
    k: &Kernel,
    t: &Task,
    addr: u64,
) -> (
    Rc<mm::mm_types::Vma>,
    Rc<mm::mm_types::AnonVma>,
    Rc<mm::mm_types::Folio>,
) {
    let vma = t.mm.mmap_lock.peek().vma_lookup(addr).unwrap().clone();
    let anon_vma = vma.anon_vma.get().unwrap().clone();
    let pmd = mm::pgtable::peek_pmd(k, &t.mm, addr).unwrap().peek();
    let table = mm::pgtable::table_of(k, pmd).unwrap();
    (vma, anon_vma, table)
}

#[test]
fn munmap_frees_the_vma_its_anon_vma_and_its_page_table() {
    let f = sequential("linux-6.5", Thp::Never, |k, t| {
        let p = anon(k, t, PAGE_SIZE, 0);
        user_write(k, t, p, 0, 1, 1).unwrap();
        let (vma, anon_vma, table) = vma_anon_vma_and_table(k, t, p);
        assert!(!vma.life.is_freed() && !anon_vma.life.is_freed());
        assert_eq!(anon_vma.refcount.peek(), 1);
        do_munmap(k, t, p, PAGE_SIZE).unwrap();
        assert!(vma.life.is_freed(), "vm_area_free");
        assert!(
            anon_vma.life.is_freed(),
            "the last VMA took the last reference"
        );
        assert_eq!(anon_vma.refcount.peek(), 0);
        assert!(
            table.entries().is_freed(),
            "free_pgtables freed the PTE table"
        );
    });
    assert!(f.is_none(), "{f:?}");
}

#[test]
fn a_pinned_folio_unmapped_from_under_its_anon_vma_is_not_pinned_again() {
    let f = sequential("linux-6.5", Thp::Never, |k, t| {
        let p = anon(k, t, PAGE_SIZE, 0);
        user_write(k, t, p, 0, 1, 1).unwrap();
        let folio = folio_mapped_at(k, t, p);
        let pinned = mm::rmap::folio_get_anon_vma(k, &folio).expect("a mapped folio");
        mm::rmap::put_anon_vma(k, &pinned);
        mm::memory::get_folio(&folio);
        do_munmap(k, t, p, PAGE_SIZE).unwrap();
        // folio->mapping still points to the freed anon_vma, as in the
        // kernel; folio_mapped() is what tells the lockless reader.
        let stale = folio.anon_vma.peek().expect("mapping left in place");
        assert!(stale.life.is_freed());
        assert!(mm::rmap::folio_get_anon_vma(k, &folio).is_none());
        mm::memory::put_folio(k, &folio);
    });
    assert!(f.is_none(), "{f:?}");
}

#[test]
fn an_rmap_walk_that_reaches_a_freed_vma_is_a_kasan_use_after_free() {
    let f = sequential("linux-6.5", Thp::Never, |k, t| {
        let p = anon(k, t, PAGE_SIZE, 0);
        user_write(k, t, p, 0, 1, 1).unwrap();
        let folio = folio_mapped_at(k, t, p);
        let (vma, _, _) = vma_anon_vma_and_table(k, t, p);
        // Free the VMA behind the anon_vma tree's back.
        mm::mmap::vm_area_free(&vma);
        mm::rmap::rmap_walk_anon(&folio, |_, _| true);
    });
    let f = f.expect("KASAN reports the walk");
    assert_eq!(f.title, "BUG: KASAN: use-after-free in rmap_walk_anon");
    assert!(
        f.details.iter().any(|d| d == "freed by: vm_area_free"),
        "{:?}",
        f.details
    );
}

/// A written THP is scanned, then migrated by a hinting fault from node 1
/// (a read). Returns the hint pmd the scan left and the pmd after the
/// migration.
fn written_thp_scanned_then_migrated(k: &Kernel, t: &Task) -> (u64, u64) {
    let p = anon(k, t, HPAGE_PMD_SIZE, HPAGE_PMD_SIZE);
    user_write(k, t, p, 0, HPAGE_PMD_SIZE, 0x5a).unwrap();
    task_numa_work(k, t, p, HPAGE_PMD_SIZE);
    let hint = mm::pgtable::peek_pmd(k, &t.mm, p).unwrap().peek();
    let remote = Task {
        name: "remote".into(),
        node: 1,
        mm: t.mm.clone(),
    };
    assert_eq!(user_read(k, &remote, p + 8192, 0, 1).unwrap(), vec![0x5a]);
    let after = mm::pgtable::peek_pmd(k, &t.mm, p).unwrap().peek();
    (hint, after)
}

#[test]
fn numa_hinting_keeps_a_thp_writable_through_migration_on_6_1() {
    use mm::arch::x86::pgtable::{pmd_dirty, pmd_protnone, pmd_write, Pmd};
    let f = sequential("linux-6.1.159", Thp::Always, |k, t| {
        let (hint, after) = written_thp_scanned_then_migrated(k, t);
        assert!(pmd_protnone(Pmd(hint)), "{hint:#x}");
        assert!(
            pmd_write(Pmd(hint)),
            "savedwrite keeps RW on the hint: {hint:#x}"
        );
        // The write migration entry maps the new THP writable again, and
        // its dirty bit came through the entry (2e3468778dbe).
        assert!(pmd_write(Pmd(after)), "{after:#x}");
        assert!(pmd_dirty(Pmd(after)), "{after:#x}");
    });
    assert!(f.is_none(), "{f:?}");
}

#[test]
fn numa_hinting_makes_the_hint_read_only_on_6_5() {
    use mm::arch::x86::pgtable::{pmd_protnone, pmd_write, Pmd};
    let f = sequential("linux-6.5", Thp::Always, |k, t| {
        let (hint, after) = written_thp_scanned_then_migrated(k, t);
        assert!(
            pmd_protnone(Pmd(hint)) && !pmd_write(Pmd(hint)),
            "{hint:#x}"
        );
        // A readable-exclusive migration entry maps the new THP read-only;
        // the next store takes a write fault that reuses it.
        assert!(!pmd_write(Pmd(after)), "{after:#x}");
    });
    assert!(f.is_none(), "{f:?}");
}

#[test]
fn the_mmu_walk_sets_accessed_on_a_load_and_dirty_on_a_store() {
    use mm::arch::x86::pgtable::{pte_dirty, pte_mkclean, pte_mkold, pte_young, Pte};
    let f = sequential("linux-6.5", Thp::Never, |k, t| {
        let p = anon(k, t, PAGE_SIZE, 0);
        user_write(k, t, p, 0, 1, 1).unwrap();
        let pmd = mm::pgtable::peek_pmd(k, &t.mm, p).unwrap().peek();
        let slot = mm::pgtable::pte_offset(k, pmd, p).unwrap();
        // As fork or reclaim would leave it: old and clean.
        slot.write(
            "test: pte_mkold(pte_mkclean(pte))",
            pte_mkold(pte_mkclean(Pte(slot.peek()))).0,
        );
        user_read(k, t, p, 0, 1).unwrap();
        let read = Pte(slot.peek());
        assert!(pte_young(read) && !pte_dirty(read), "{:#x}", read.0);
        user_write(k, t, p, 0, 1, 2).unwrap();
        let written = Pte(slot.peek());
        assert!(pte_young(written) && pte_dirty(written), "{:#x}", written.0);
    });
    assert!(f.is_none(), "{f:?}");
}

/// A corrupt pmd (a table entry with NX set, which `pmd_bad()` rejects)
/// met by the NUMA scan: every 6.1.y kernel reports and clears it with
/// `pmd_clear_bad()`, the 6.1.160 backport from its single snapshot.
fn scan_over_a_bad_pmd(k: &Kernel, t: &Task) {
    let p = anon(k, t, PAGE_SIZE, 0);
    user_write(k, t, p, 0, 1, 1).unwrap();
    let slot = mm::pgtable::peek_pmd(k, &t.mm, p).unwrap();
    slot.write("test: corrupt the pmd", slot.peek() | 1 << 63);
    task_numa_work(k, t, p, PAGE_SIZE);
}

#[test]
fn the_6_1_160_snapshot_clears_a_bad_pmd() {
    for profile in ["linux-6.1.159", "linux-6.1.160"] {
        let f = sequential(profile, Thp::Never, scan_over_a_bad_pmd);
        let f = f.unwrap_or_else(|| panic!("{profile}: no finding"));
        assert!(
            f.title.starts_with("mm/pgtable-generic.c:51: bad pmd "),
            "{profile}: {}",
            f.title
        );
    }
}

#[test]
fn zap_pmd_range_reads_the_pmd_once_per_test_as_the_kernel_does() {
    fn unmap_one_page(k: &Kernel, t: &Task) {
        let p = anon(k, t, PAGE_SIZE, 0);
        user_write(k, t, p, 0, 1, 1).unwrap();
        do_munmap(k, t, p, PAGE_SIZE).unwrap();
    }
    for (profile, last) in [
        ("linux-6.1.159", "pmd_read_atomic(pmd)"),
        ("linux-6.5", "zap_pmd_range: pmd_none(*pmd)"),
    ] {
        let labels = access_labels(profile, Thp::Never, unmap_one_page);
        let at = labels
            .iter()
            .position(|l| *l == "zap_pmd_range: is_swap_pmd(*pmd)")
            .unwrap_or_else(|| panic!("{profile}: {labels:?}"));
        assert_eq!(
            &labels[at..at + 4],
            &[
                "zap_pmd_range: is_swap_pmd(*pmd)",
                "zap_pmd_range: pmd_trans_huge(*pmd)",
                "zap_pmd_range: pmd_devmap(*pmd)",
                last
            ],
            "{profile}"
        );
    }
}

/// A written page is unmapped for migration, the NUMA scan meets its
/// writable migration entry, and the migration is undone.
fn migration_entry_met_by_the_scan(k: &Kernel, t: &Task) {
    use mm::arch::x86::pgtable::{pte_dirty, pte_write, pte_young, Pte};
    use mm::arch::x86::swap::{
        is_migration_entry_dirty, is_migration_entry_young, is_readable_exclusive_migration_entry,
        pte_to_swp_entry,
    };
    let p = anon(k, t, PAGE_SIZE, 0);
    user_write(k, t, p, 0, 1, 1).unwrap();
    let folio = folio_mapped_at(k, t, p);
    let pmd = mm::pgtable::peek_pmd(k, &t.mm, p).unwrap().peek();
    let slot = mm::pgtable::pte_offset(k, pmd, p).unwrap();
    // Migration holds a reference of its own (the isolation).
    mm::memory::get_folio(&folio);
    mm::rmap::try_to_migrate(k, &folio);
    task_numa_work(k, t, p, PAGE_SIZE);
    let types = &k.profile.swap_types;
    let entry = pte_to_swp_entry(Pte(slot.peek()));
    assert!(
        is_readable_exclusive_migration_entry(types, entry),
        "change_pte_range made the writable entry readable: {:#x}",
        slot.peek()
    );
    assert!(is_migration_entry_young(entry, types.migration_ad));
    assert!(is_migration_entry_dirty(entry, types.migration_ad));
    mm::migrate::remove_migration_ptes(k, &folio, &folio);
    mm::memory::put_folio(k, &folio);
    let back = Pte(slot.peek());
    assert!(!pte_write(back), "mapped back read-only: {:#x}", back.0);
    assert!(pte_young(back) && pte_dirty(back), "{:#x}", back.0);
}

#[test]
fn the_scan_makes_a_writable_migration_entry_readable_keeping_young_and_dirty() {
    let f = sequential("linux-6.1.159", Thp::Never, migration_entry_met_by_the_scan);
    assert!(f.is_none(), "{f:?}");
}

#[test]
fn page_vma_mapped_walk_tests_the_pte_before_taking_the_lock() {
    let labels = access_labels("linux-6.1.159", Thp::Never, migration_entry_met_by_the_scan);
    let precheck = labels
        .iter()
        .position(|l| *l == "map_pte: *pvmw->pte (lockless pre-check)")
        .expect("map_pte's lockless test");
    assert_eq!(
        labels[precheck + 1],
        "map_pte: pte_lockptr(*pmd)",
        "{labels:?}"
    );
}

/// A THP under migration (its pmd a migration entry) is split.
fn split_a_pmd_migration_entry(k: &Kernel, t: &Task) {
    let p = anon(k, t, HPAGE_PMD_SIZE, HPAGE_PMD_SIZE);
    user_write(k, t, p, 0, HPAGE_PMD_SIZE, 3).unwrap();
    let pmd = mm::pgtable::peek_pmd(k, &t.mm, p).unwrap();
    let folio = k
        .mem
        .pfn_folio(mm::arch::x86::pgtable::pmd_pfn(
            mm::arch::x86::pgtable::Pmd(pmd.peek()),
        ))
        .unwrap();
    mm::memory::get_folio(&folio);
    mm::rmap::try_to_migrate(k, &folio);
    let vma = t.mm.mmap_lock.peek().vma_lookup(p).unwrap().clone();
    mm::huge_memory::split_huge_pmd(k, &t.mm, &vma, &pmd, p);
    mm::migrate::remove_migration_ptes(k, &folio, &folio);
    mm::memory::put_folio(k, &folio);
    assert_eq!(user_read(k, t, p + 3 * PAGE_SIZE, 0, 1).unwrap(), vec![3]);
}

#[test]
fn only_kernels_before_3a5a8d343e1c_invalidate_a_migration_entry_they_split() {
    for (profile, invalidates) in [("linux-6.5", true), ("linux-6.18", false)] {
        let labels = access_labels(profile, Thp::Always, split_a_pmd_migration_entry);
        let split = labels
            .iter()
            .position(|l| *l == "__split_huge_pmd: *pmd under pmd lock")
            .unwrap_or_else(|| panic!("{profile}: {labels:?}"));
        let populate = split
            + labels[split..]
                .iter()
                .position(|l| *l == "pmd_populate")
                .unwrap();
        let invalidated = labels[split..populate].contains(&"pmdp_invalidate");
        assert_eq!(
            invalidated,
            invalidates,
            "{profile}: {:?}",
            &labels[split..=populate]
        );
    }
}

/// The ids of the anon_vmas on `vma`'s chain, in list order.
fn chain_ids(vma: &mm::mm_types::Vma) -> Vec<u64> {
    vma.anon_vma_chain
        .borrow()
        .iter()
        .map(|avc| avc.anon_vma.id)
        .collect()
}

/// The only VMA of a task.
fn only_vma(t: &Task) -> Rc<mm::mm_types::Vma> {
    let mmap = t.mm.mmap_lock.peek();
    assert_eq!(mmap.vmas.len(), 1);
    mmap.vmas[0].clone()
}

/// A written page, then a child and a grandchild by fork: the chains of
/// the three VMAs, as anon_vma ids (parent's own first).
fn three_generations(k: &Kernel, t: &Task) -> [Vec<u64>; 3] {
    let p = anon(k, t, PAGE_SIZE, 0);
    user_write(k, t, p, 0, 1, 1).unwrap();
    let child = mm::kernel::fork::dup_mmap(k, t, "child").unwrap();
    let grandchild = mm::kernel::fork::dup_mmap(k, &child, "grandchild").unwrap();
    [t, &child, &grandchild].map(|x| chain_ids(&only_vma(x)))
}

#[test]
fn fork_keeps_the_chain_in_order_with_the_oldest_anon_vma_last() {
    let f = sequential("linux-6.1.159", Thp::Never, |k, t| {
        let [parent, child, grandchild] = three_generations(k, t);
        let a = parent[0];
        assert_eq!(parent, [a]);
        let b = child[0];
        assert_eq!(child, [b, a]);
        let c = grandchild[0];
        assert_eq!(
            grandchild,
            [c, b, a],
            "646d87b481da: the clone keeps the order"
        );
    });
    assert!(f.is_none(), "{f:?}");
}

#[test]
fn the_forward_clone_of_2_6_34_rc3_reverses_the_order_at_each_fork() {
    let f = sequential_with(
        "linux-6.1.159",
        &[("anon_vma_clone_reverse", "off")],
        |k, t| {
            let [parent, child, grandchild] = three_generations(k, t);
            let (a, b, c) = (parent[0], child[0], grandchild[0]);
            assert_eq!(child, [b, a]);
            // Linus' changelog: [B, A] cloned forward is [A, B]; with the
            // grandchild's own: the last entry is B, not the oldest A.
            assert_eq!(grandchild, [c, a, b]);
        },
    );
    assert!(f.is_none(), "{f:?}");
}

#[test]
fn unlinking_a_forked_vma_frees_its_avcs_and_keeps_the_parents_anon_vma() {
    let f = sequential("linux-6.1.159", Thp::Never, |k, t| {
        let p = anon(k, t, PAGE_SIZE, 0);
        user_write(k, t, p, 0, 1, 1).unwrap();
        let child = mm::kernel::fork::dup_mmap(k, t, "child").unwrap();
        let vma = only_vma(&child);
        let avcs: Vec<_> = vma.anon_vma_chain.borrow().clone();
        let (own, parents) = (avcs[0].anon_vma.clone(), avcs[1].anon_vma.clone());
        assert_eq!(
            parents.rwsem.peek().len(),
            2,
            "the parent's and the child's avc"
        );
        exit_mmap(k, &child.mm);
        assert!(
            avcs.iter().all(|avc| avc.life.is_freed()),
            "anon_vma_chain_free"
        );
        assert!(own.life.is_freed(), "the child's own anon_vma emptied");
        assert!(!parents.life.is_freed());
        assert_eq!(
            parents.rwsem.peek().len(),
            1,
            "only the parent's avc is left"
        );
        assert_eq!(
            parents.refcount.peek(),
            1,
            "the child's root reference is dropped"
        );
        exit_mmap(k, &t.mm);
        assert!(parents.life.is_freed());
    });
    assert!(f.is_none(), "{f:?}");
}

/// ad8c2ee801a (2.6.36, knob `swapin_exclusive_rmap`): a page a write
/// fault swaps in and may keep (the parent unmapped its copy) goes to the
/// child's own anon_vma; without it, a swap-in is never exclusive and
/// 2.6.36 puts it in the root, the parent's.
#[test]
fn an_exclusive_write_swapin_goes_to_the_vmas_own_anon_vma() {
    fn body(k: &Kernel, t: &Task) {
        let p = anon(k, t, PAGE_SIZE, 0);
        user_write(k, t, p, 0, 1, 0x5a).unwrap();
        let child = mm::kernel::fork::dup_mmap(k, t, "child").unwrap();
        assert_eq!(mm::vmscan::reclaim_range(k, t, p, PAGE_SIZE), 1);
        do_munmap(k, t, p, PAGE_SIZE).unwrap();
        user_write(k, &child, p, 0, 1, 0x11).unwrap();
        let folio = folio_mapped_at(k, &child, p);
        let vma = only_vma(&child);
        let own = vma.anon_vma.get().unwrap().id;
        let root = *chain_ids(&vma).last().unwrap();
        let mapping = folio.anon_vma.peek().unwrap().id;
        let want = if k.profile.knobs.swapin_exclusive_rmap {
            own
        } else {
            root
        };
        assert_eq!(mapping, want, "own {own}, root {root}");
        assert_ne!(own, root);
    }
    assert!(sequential_with("linux-2.6.36", &[], body).is_none());
    assert!(sequential_with("linux-2.6.36", &[("swapin_exclusive_rmap", "off")], body).is_none());
}
