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
    struct H(&'static str, Thp, fn(&Kernel, &Task));
    struct I(Rc<Kernel>);
    impl Harness for H {
        fn start(&self) -> Box<dyn Instance> {
            let machine = Machine {
                nodes: 2,
                thp: self.1,
                thp_use_zero_page: true,
            };
            let k = Rc::new(Kernel::new(mm::profile(self.0).unwrap(), machine));
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
        tracing: false,
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
    .finding
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
        assert_eq!((folio.mapcount.get(), folio.refcount.get()), (511, 511));
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
