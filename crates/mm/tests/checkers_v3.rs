//! The checkers on hand-corrupted states: each must fail on the
//! corruption it is about and pass on the healthy state (the seed-000
//! checkers on the 3.12-era model, Xen PV and native; the mapping checkers
//! on the current one).

use explore::rt::{run_execution, ActorSpec, ExecutionConfig, Harness, Instance, Workspace};
use explore::strategy::RandomWalk;
use explore::Finding;
use mm::arch::x86::mm::fault::user_write;
use mm::arch::x86::pgtable::{Pte, _PAGE_PRESENT};
use mm::arch::x86::pgtable_v3::PTE_PFN_MASK;
use mm::checkers::check_all;
use mm::kernel::fork::mm_alloc;
use mm::mm_types::{Kernel, Machine, Task, Thp, MM_FILEPAGES};
use mm::mmap::{
    do_mmap, do_mprotect, MAP_ANONYMOUS, MAP_PRIVATE, PROT_NONE, PROT_READ, PROT_WRITE,
};
use mm::pgtable::{peek_pmd, pte_offset, EntryRef};

/// Runs `body` on a fresh one-page mapping that was written once, as the
/// setup of one execution, under `profile`; returns what it raised.
fn run_with_page(profile: &'static str, body: fn(&Kernel, &Task, u64)) -> Option<Finding> {
    struct H(&'static str, fn(&Kernel, &Task, u64));
    struct I;
    impl Harness for H {
        fn start(&self) -> Box<dyn Instance> {
            let machine = Machine {
                nodes: 1,
                thp: Thp::Never,
                thp_use_zero_page: true,
            };
            let k = Kernel::new(mm::profile(self.0).unwrap(), machine);
            let mm = mm_alloc(&k).unwrap();
            let t = Task {
                name: "t".into(),
                node: 0,
                mm,
            };
            let flags = MAP_PRIVATE | MAP_ANONYMOUS;
            let p = do_mmap(&k, &t, 0, 4096, PROT_READ | PROT_WRITE, flags, 0).unwrap();
            user_write(&k, &t, p, 0, 1, 0x5a).unwrap();
            assert!(check_all(&k).is_none(), "healthy after the first write");
            (self.1)(&k, &t, p);
            Box::new(I)
        }
    }
    impl Instance for I {
        fn actors(&mut self) -> Vec<ActorSpec> {
            Vec::new()
        }
    }
    let config = ExecutionConfig {
        steps_max: 1000,
        tracing: false,
        track_conflicts: false,
        racy: &[],
    };
    let r = run_execution(
        &H(profile, body),
        &mut RandomWalk::new(0),
        config,
        &mut Workspace::default(),
    )
    .unwrap();
    r.finding
}

/// [`run_with_page`] that must raise nothing.
fn with_page(profile: &'static str, body: fn(&Kernel, &Task, u64)) {
    let f = run_with_page(profile, body);
    assert!(f.is_none(), "{f:?}");
}

fn pte_slot(k: &Kernel, t: &Task, addr: u64) -> EntryRef {
    let pmd = peek_pmd(k, &t.mm, addr).unwrap().peek();
    pte_offset(k, pmd, addr).unwrap()
}

fn title(k: &Kernel) -> String {
    check_all(k).map(|f| f.title).unwrap_or_default()
}

#[test]
fn xen_abi_rejects_a_machine_frame_in_a_non_present_pte() {
    with_page("linux-3.14.5-xen", |k, t, p| {
        do_mprotect(k, t, p, 4096, PROT_NONE).unwrap();
        assert!(check_all(k).is_none(), "PROT_NONE pte holds the pfn");
        let slot = pte_slot(k, t, p);
        let raw = slot.peek();
        assert_eq!(raw & _PAGE_PRESENT, 0);
        let pfn = (raw & PTE_PFN_MASK) >> 12;
        let mfn = k.pv.phys_to_machine(pfn).unwrap();
        slot.write("corrupt", (raw & !PTE_PFN_MASK) | (mfn << 12));
        assert!(title(k).starts_with("INV-XEN-ABI"), "{}", title(k));
        slot.write("restore", raw);
        assert!(check_all(k).is_none());
    });
}

#[test]
fn xen_abi_rejects_a_present_frame_the_domain_does_not_own() {
    with_page("linux-3.14.5-xen", |k, t, p| {
        let slot = pte_slot(k, t, p);
        let raw = slot.peek();
        slot.write("corrupt", (raw & !PTE_PFN_MASK) | (0x10 << 12));
        assert!(title(k).starts_with("INV-XEN-ABI"), "{}", title(k));
        slot.write("restore", raw);
    });
}

#[test]
fn decode_rejects_a_pte_that_maps_another_page_than_the_rmap_says() {
    for profile in ["linux-3.12.7", "linux-3.14.5-xen"] {
        with_page(profile, |k, t, p| {
            let slot = pte_slot(k, t, p);
            let raw = slot.peek();
            // One frame up: a page nobody allocated (native) or another
            // machine frame of the domain (Xen).
            slot.write("corrupt", raw + (1 << 12));
            assert!(title(k).starts_with("INV-DECODE"), "{}", title(k));
            slot.write("restore", raw);
            assert!(check_all(k).is_none());
        });
    }
}

#[test]
fn acct_rejects_file_rss_and_mapcount_of_a_free_frame() {
    with_page("linux-3.12.7", |k, t, _| {
        t.mm.add_mm_counter(MM_FILEPAGES, -1);
        assert!(title(k).contains("MM_FILEPAGES is -1"), "{}", title(k));
        t.mm.add_mm_counter(MM_FILEPAGES, 1);
        let free = k.mem.highest_memmap_pfn();
        k.mem.update_stray_page(free, |s| s.mapcount = -1);
        assert!(title(k).contains("mapcount -1"), "{}", title(k));
        k.mem.update_stray_page(free, |s| s.mapcount = 0);
        assert!(check_all(k).is_none());
    });
}

#[test]
fn the_hypervisor_refuses_a_present_frame_the_domain_does_not_own() {
    // set_pte_at ignores the hypercall's result: the old entry stays.
    with_page("linux-3.14.5-xen", |k, t, p| {
        let slot = pte_slot(k, t, p);
        let raw = slot.peek();
        k.set_pte_at(&slot, Pte((raw & !PTE_PFN_MASK) | (0x10 << 12)), "test");
        assert_eq!(slot.peek(), raw);
    });
    // A refused update in a multicall batch is reported.
    let f = run_with_page("linux-3.14.5-xen", |k, t, p| {
        let slot = pte_slot(k, t, p);
        let raw = slot.peek();
        k.pv.ptep_modify_prot_commit(&slot, Pte((raw & !PTE_PFN_MASK) | (0x10 << 12)));
        assert_eq!(slot.peek(), raw);
    })
    .expect("xen_mc_flush reports the failed call");
    // Raised by the setup actor: CPU0, pid 1 (tests/printed.rs has CPU1).
    assert_eq!(
        f.title,
        "WARNING: CPU: 0 PID: 1 at arch/x86/xen/multicalls.c:129 xen_mc_flush()"
    );
}

/// Maps three pages after the helper's one and writes a different byte
/// to each; returns the address of the middle one.
fn three_written_pages(k: &Kernel, t: &Task) -> u64 {
    let flags = MAP_PRIVATE | MAP_ANONYMOUS;
    let q = do_mmap(k, t, 0, 3 * 4096, PROT_READ | PROT_WRITE, flags, 0).unwrap();
    for i in 0..3 {
        user_write(k, t, q + i * 4096, 0, 4096, 0x10 + i as u8).unwrap();
    }
    assert!(check_all(k).is_none(), "healthy after writing three pages");
    q + 4096
}

#[test]
fn mapping_rejects_a_page_that_lost_its_pte() {
    with_page("linux-6.1.159", |k, t, _| {
        let middle = three_written_pages(k, t);
        let slot = pte_slot(k, t, middle);
        let raw = slot.peek();
        slot.write("corrupt", 0);
        let f = check_all(k).expect("a lost mapping");
        assert!(f.title.starts_with("INV-NO-LOST-MAPPING"), "{}", f.title);
        assert!(f.title.contains(&format!("{middle:#x}")), "{}", f.title);
        slot.write("restore", raw);
        assert!(check_all(k).is_none());
    });
}

#[test]
fn mapping_rejects_a_page_whose_contents_changed() {
    with_page("linux-6.1.159", |k, t, _| {
        let middle = three_written_pages(k, t);
        let pfn = mm::arch::x86::pgtable::pte_pfn(Pte(pte_slot(k, t, middle).peek()));
        let folio = k.mem.pfn_folio(pfn).unwrap();
        let sub = (pfn - folio.pfn) as usize;
        folio.data.borrow_mut()[sub].fill_range(7, 8, 0xee);
        let f = check_all(k).expect("corrupt data");
        assert!(f.title.starts_with("INV-DATA"), "{}", f.title);
        assert!(f.title.contains(&format!("{middle:#x}")), "{}", f.title);
        folio.data.borrow_mut()[sub].fill_range(7, 8, 0x11);
        assert!(check_all(k).is_none());
    });
}
