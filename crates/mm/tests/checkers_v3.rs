//! The checkers on hand-corrupted states: each must fail on the
//! corruption it is about and pass on the healthy state (the seed-000
//! checkers on the 3.12-era model, Xen PV and native; the mapping checkers
//! on the current one).

use explore::rt::{run_execution, ActorSpec, ExecutionConfig, Harness, Instance, Workspace};
use explore::strategy::RandomWalk;
use explore::Finding;
use mm::arch::x86::mm::fault::{user_read, user_write};
use mm::arch::x86::pgtable::{Pte, _PAGE_PRESENT, _PAGE_PROTNONE, _PAGE_SPECIAL};
use mm::arch::x86::pgtable_v3::PTE_PFN_MASK;
use mm::checkers::check_all;
use mm::checkers::walk::{census, Leaf};
use mm::kernel::fork::mm_alloc;
use mm::kernel::sched::fair::task_numa_work;
use mm::mm_types::{Kernel, Machine, Task, Thp, MM_FILEPAGES};
use mm::mmap::{
    do_mmap, do_mprotect, do_munmap, MAP_ANONYMOUS, MAP_PRIVATE, PROT_NONE, PROT_READ, PROT_WRITE,
};
use mm::pgtable::{peek_pmd, pte_offset, EntryRef};
use mm::Profile;

/// Runs `body` on a fresh one-page mapping that was written once, as the
/// setup of one execution, under `profile`; returns what it raised.
fn run_with_page(profile: &'static str, body: fn(&Kernel, &Task, u64)) -> Option<Finding> {
    run_with_page_under(mm::profile(profile).unwrap(), body)
}

/// [`run_with_page`] under a profile value (knobs overridden).
fn run_with_page_under(profile: Profile, body: fn(&Kernel, &Task, u64)) -> Option<Finding> {
    struct H(Profile, fn(&Kernel, &Task, u64));
    struct I;
    impl Harness for H {
        fn start(&self) -> Box<dyn Instance> {
            let machine = Machine {
                nodes: 1,
                thp: Thp::Never,
                thp_use_zero_page: true,
            };
            let k = Kernel::new(self.0.clone(), machine);
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

/// [`run_with_page_under`] that must raise nothing.
fn with_page_under(profile: Profile, body: fn(&Kernel, &Task, u64)) {
    let f = run_with_page_under(profile, body);
    assert!(f.is_none(), "{f:?}");
}

/// `name` with the v3.16 pte layout (c46a7c817e66: `_PAGE_NUMA` is bit 9,
/// the bit of `_PAGE_SPECIAL`).
fn v3_16(name: &str) -> Profile {
    mm::profile(name)
        .unwrap()
        .with_overrides(&[("pte_layout".into(), "v3_16".into())])
        .unwrap()
}

/// `_PAGE_NUMA` of the v3.16 layout.
const NUMA_V3_16: u64 = 1 << 9;

fn pte_slot(k: &Kernel, t: &Task, addr: u64) -> EntryRef {
    let pmd = peek_pmd(k, &t.mm, addr).unwrap().peek();
    pte_offset(k, pmd, addr).unwrap()
}

fn title(k: &Kernel) -> String {
    check_all(k).map(|f| f.title).unwrap_or_default()
}

/// Puts the machine frame of the entry's pfn into the (non-present) entry:
/// INV-XEN-ABI must fire, and stop firing once the value is restored.
fn machine_frame_is_an_abi_violation(k: &Kernel, slot: &EntryRef) {
    let raw = slot.peek();
    let pfn = (raw & PTE_PFN_MASK) >> 12;
    let mfn = k.pv.phys_to_machine(pfn).unwrap();
    slot.write("corrupt", (raw & !PTE_PFN_MASK) | (mfn << 12));
    assert!(title(k).starts_with("INV-XEN-ABI"), "{}", title(k));
    slot.write("restore", raw);
    assert!(check_all(k).is_none());
}

#[test]
fn xen_abi_rejects_a_machine_frame_in_a_non_present_pte() {
    with_page("linux-3.14.5-xen", |k, t, p| {
        do_mprotect(k, t, p, 4096, PROT_NONE).unwrap();
        assert!(check_all(k).is_none(), "PROT_NONE pte holds the pfn");
        let slot = pte_slot(k, t, p);
        assert_eq!(slot.peek() & _PAGE_PRESENT, 0);
        machine_frame_is_an_abi_violation(k, &slot);
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

/// Makes the helper's page a NUMA hinting pte with one scanner pass and
/// returns its slot and raw value (`_PAGE_NUMA` = bit 9 set, P clear; on
/// Xen PV bit 8 too, the `_PAGE_GLOBAL` the hypervisor put in the present
/// user pte).
fn numa_pte_v3_16(k: &Kernel, t: &Task, p: u64) -> (EntryRef, u64) {
    assert_eq!(task_numa_work(k, t, p, 4096), Some(1));
    let slot = pte_slot(k, t, p);
    let raw = slot.peek();
    assert_eq!(raw & (_PAGE_PRESENT | NUMA_V3_16), NUMA_V3_16);
    assert!(
        k.pte_present(Pte(raw)),
        "pte_present() tests P|PROTNONE|NUMA"
    );
    assert!(!k.pte_special(Pte(raw)), "3.16 pte_special() needs P");
    (slot, raw)
}

#[test]
fn xen_abi_rejects_a_machine_frame_in_a_v3_16_numa_pte() {
    // Bit 9 is _PAGE_NUMA and _PAGE_SPECIAL: the checker must not take the
    // hinting pte for a special one and look away.
    with_page_under(v3_16("linux-3.14.5-xen"), |k, t, p| {
        let (slot, _) = numa_pte_v3_16(k, t, p);
        assert!(check_all(k).is_none(), "the hinting pte holds the pfn");
        machine_frame_is_an_abi_violation(k, &slot);
    });
}

#[test]
fn decode_rejects_a_v3_16_numa_pte_with_another_pfn() {
    for profile in ["linux-3.12.7", "linux-3.14.5-xen"] {
        with_page_under(v3_16(profile), |k, t, p| {
            let (slot, raw) = numa_pte_v3_16(k, t, p);
            assert!(check_all(k).is_none(), "the hinting pte holds the pfn");
            slot.write("corrupt", raw + (1 << 12));
            assert!(title(k).starts_with("INV-DECODE"), "{}", title(k));
            slot.write("restore", raw);
            assert!(check_all(k).is_none());
        });
    }
}

#[test]
fn v3_16_special_ptes_are_the_present_ones_and_the_zero_page_stays_special() {
    with_page_under(v3_16("linux-3.14.5-xen"), |k, t, p| {
        let flags = MAP_PRIVATE | MAP_ANONYMOUS;
        let q = do_mmap(k, t, 0, 4096, PROT_READ | PROT_WRITE, flags, 0).unwrap();
        user_read(k, t, q, 0, 1).unwrap();
        let zero = pte_slot(k, t, q).peek();
        assert_eq!(
            zero & (_PAGE_PRESENT | _PAGE_SPECIAL),
            _PAGE_PRESENT | _PAGE_SPECIAL
        );
        assert!(k.pte_special(Pte(zero)), "a present special pte is special");
        numa_pte_v3_16(k, t, p);
        let leaf = |va: u64| {
            let c = census(k, &t.mm);
            match c.leaves.iter().find(|(at, _)| *at == va) {
                Some((_, Leaf::Present { special, .. })) => *special,
                _ => panic!("no present leaf at {va:#x}"),
            }
        };
        assert!(leaf(q), "the zero page is special");
        assert!(!leaf(p), "the hinting pte maps a normal page");
        assert!(check_all(k).is_none());
        // SPECIAL|PROTNONE is not pte_special() in 3.16, yet vm_normal_page()
        // (is_zero_pfn after check_pfn) and the census leave it out.
        do_mprotect(k, t, q, 4096, PROT_NONE).unwrap();
        let none = pte_slot(k, t, q).peek();
        assert_eq!(
            none & (_PAGE_PRESENT | _PAGE_PROTNONE | _PAGE_SPECIAL),
            _PAGE_PROTNONE | _PAGE_SPECIAL
        );
        assert!(!k.pte_special(Pte(none)));
        assert!(leaf(q));
        assert!(check_all(k).is_none());
        do_munmap(k, t, q, 4096).unwrap();
        assert!(check_all(k).is_none());
    });
}

#[test]
fn v3_16_numa_ptes_are_normal_pages_to_scan_and_zap() {
    // vm_normal_page() of c46a7c817e66 sends a pte_numa() entry to
    // check_pfn: a second scanner pass and munmap see the page, with no
    // Bad page map, on bare metal and on the fixed Xen PV kernel.
    for profile in ["linux-3.12.7", "linux-3.14.5-xen"] {
        with_page_under(v3_16(profile), |k, t, p| {
            numa_pte_v3_16(k, t, p);
            task_numa_work(k, t, p, 4096).unwrap();
            assert!(check_all(k).is_none());
            do_munmap(k, t, p, 4096).unwrap();
            assert!(check_all(k).is_none());
        });
    }
    with_page_under(v3_16("linux-3.12.7"), |k, t, p| {
        let (slot, _) = numa_pte_v3_16(k, t, p);
        assert_eq!(task_numa_work(k, t, p, 4096), Some(0), "already pte_numa()");
        assert_eq!(user_read(k, t, p, 0, 1).unwrap(), [0x5a], "hinting fault");
        assert_ne!(slot.peek() & _PAGE_PRESENT, 0, "pte_mknonnuma()");
        assert!(check_all(k).is_none());
    });
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
