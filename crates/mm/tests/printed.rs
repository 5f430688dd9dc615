//! Printed values are derived, never copied: the pointers, call traces and
//! CPU numbers in the kernel's messages come from the model's state (the
//! objects involved, the frames entered, the actor running).

use std::rc::Rc;

use explore::rt::{run_execution, ActorSpec, ExecutionConfig, Harness, Instance, Workspace};
use explore::strategy::RandomWalk;
use explore::Finding;
use mm::arch::x86::mm::fault::user_write;
use mm::arch::x86::pgtable::Pte;
use mm::arch::x86::pgtable_v3::PTE_PFN_MASK;
use mm::kaddr::{self, Cache};
use mm::kernel::fork::{check_mm_lines, mm_alloc};
use mm::mm_types::{Kernel, Machine, Task, Thp, MM_ANONPAGES};
use mm::mmap::{do_mmap, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};
use mm::pgtable::{peek_pmd, pte_offset, EntryRef};
use mm::pgtable_generic::pte_offset_map_lock;
use mm::profile::LogStyle;

type Body = fn(&Kernel, &Task, u64);

/// Runs one execution under `profile`: a task with one written page is set
/// up, `setup` runs in the setup phase, then each of `threads` runs as its
/// own actor (actor 1, 2, ... on CPU0, CPU1, ...). Returns the finding.
fn run(profile: &'static str, setup: Body, threads: &'static [Body]) -> Option<Finding> {
    struct H(&'static str, Body, &'static [Body]);
    struct I {
        k: Rc<Kernel>,
        t: Rc<Task>,
        p: u64,
        threads: &'static [Body],
    }
    impl Harness for H {
        fn start(&self) -> Box<dyn Instance> {
            let machine = Machine {
                nodes: 1,
                thp: Thp::Never,
                thp_use_zero_page: true,
            };
            let k = Rc::new(Kernel::new(mm::profile(self.0).unwrap(), machine));
            let t = Rc::new(task(&k, "t"));
            let p = one_written_page(&k, &t);
            (self.1)(&k, &t, p);
            Box::new(I {
                k,
                t,
                p,
                threads: self.2,
            })
        }
    }
    impl Instance for I {
        fn actors(&mut self) -> Vec<ActorSpec> {
            self.threads
                .iter()
                .enumerate()
                .map(|(i, body)| {
                    let (k, t, p, body) = (self.k.clone(), self.t.clone(), self.p, *body);
                    ActorSpec {
                        name: format!("thread{i}"),
                        body: Box::new(move || body(&k, &t, p)),
                    }
                })
                .collect()
        }
    }
    let config = ExecutionConfig {
        steps_max: 1000,
        tracing: false,
        track_conflicts: false,
        racy: &[],
    };
    run_execution(
        &H(profile, setup, threads),
        &mut RandomWalk::new(0),
        config,
        &mut Workspace::default(),
    )
    .unwrap()
    .finding
}

fn task(k: &Kernel, name: &str) -> Task {
    Task {
        name: name.into(),
        node: 0,
        mm: mm_alloc(k).unwrap(),
    }
}

fn one_written_page(k: &Kernel, t: &Task) -> u64 {
    let flags = MAP_PRIVATE | MAP_ANONYMOUS;
    let p = do_mmap(k, t, 0, 4096, PROT_READ | PROT_WRITE, flags, 0).unwrap();
    user_write(k, t, p, 0, 1, 0x5a).unwrap();
    p
}

fn nothing(_: &Kernel, _: &Task, _: u64) {}

fn pte_slot(k: &Kernel, t: &Task, addr: u64) -> EntryRef {
    let pmd = peek_pmd(k, &t.mm, addr).unwrap().peek();
    pte_offset(k, pmd, addr).unwrap()
}

/// `print_bad_pte()` (v3.12) of the task's page: its vma's anon_vma is
/// printed at the address of that anon_vma's id.
fn bad_pte_v3(k: &Kernel, t: &Task, p: u64) {
    let vma = t.mm.mmap_lock.peek().vmas[0].clone();
    let pte = Pte(pte_slot(k, t, p).peek());
    mm::debug::print_bad_pte_v3(k, &t.mm, &vma, p, pte, None);
}

fn anon_vma_line(f: &Finding) -> &str {
    f.details
        .iter()
        .find(|d| d.starts_with("addr:"))
        .unwrap_or_else(|| panic!("no vma line in {f:?}"))
}

#[test]
fn anon_vmas_print_at_their_own_addresses() {
    // The second process's anon_vma has another id than the first's, so
    // its Bad page map line names another anon_vma.
    fn second_process(k: &Kernel, _: &Task, _: u64) {
        let t = task(k, "u");
        let q = one_written_page(k, &t);
        bad_pte_v3(k, &t, q);
    }
    let first = run("linux-3.12.7", bad_pte_v3, &[]).expect("print_bad_pte raises");
    let second = run("linux-3.12.7", second_process, &[]).expect("print_bad_pte raises");
    let (a, b) = (anon_vma_line(&first), anon_vma_line(&second));
    assert_ne!(a, b);
    // Each is the documented formula of the anon_vma the vma has: the
    // first process's mm is object 1, its anon_vma object 2 and the
    // anon_vma_chain linking it object 3; the second process's mm and
    // anon_vma are objects 4 and 5.
    for (line, id) in [(a, 2), (b, 5)] {
        let ptr = kaddr::slab_object(LogStyle::V3_12, Cache::AnonVma, id);
        assert_eq!(ptr, 0xffff_8800_4100_0000 + id * 0x80);
        assert!(
            line.contains(&format!("anon_vma:{ptr:016x} ")),
            "{line} (expected anon_vma {ptr:#x})"
        );
    }
}

#[test]
fn mm_pointers_follow_the_mm_id() {
    fn lines(k: &Kernel) -> Vec<String> {
        let a = task(k, "a");
        let b = task(k, "b");
        a.mm.add_mm_counter(MM_ANONPAGES, 1);
        b.mm.add_mm_counter(MM_ANONPAGES, 1);
        [a, b]
            .iter()
            .flat_map(|t| {
                let want = kaddr::pointer(
                    k.profile.log_style,
                    kaddr::slab_object(k.profile.log_style, Cache::MmStruct, t.mm.id),
                );
                let got = check_mm_lines(k, &t.mm);
                assert!(got[0].contains(&format!("mm:{want} ")), "{got:?}");
                got
            })
            .collect()
    }
    for profile in ["linux-3.12.7", "linux-6.1.159"] {
        let machine = Machine {
            nodes: 1,
            thp: Thp::Never,
            thp_use_zero_page: true,
        };
        let k = Kernel::new(mm::profile(profile).unwrap(), machine);
        let got = lines(&k);
        assert_ne!(got[0], got[1], "two mms, two pointers");
    }
}

/// A pmd slot that holds no table (pmd_none), near the task's page.
fn none_pmd(k: &Kernel, t: &Task, p: u64) -> (EntryRef, u64) {
    let addr = (p & !0x1f_ffff) ^ 0x20_0000;
    let pmd = peek_pmd(k, &t.mm, addr).unwrap();
    assert_eq!(pmd.peek(), 0);
    (pmd, addr)
}

fn lock_none_pmd(k: &Kernel, t: &Task, p: u64) {
    let (pmd, addr) = none_pmd(k, t, p);
    let _ = pte_offset_map_lock(k, &t.mm, &pmd, addr);
}

#[test]
fn the_null_ptl_oops_prints_the_call_chain_it_was_reached_by() {
    // ALLOC_SPLIT_PTLOCKS (6.1.159): locking the PTE table of a none pmd
    // dereferences a NULL page->ptl. Reached from two different callers,
    // the oops names each one's own chain.
    fn from_zap(k: &Kernel, t: &Task, p: u64) {
        let _f = explore::enter("unmap_page_range");
        let _g = explore::enter("zap_pmd_range");
        lock_none_pmd(k, t, p);
    }
    fn from_mprotect(k: &Kernel, t: &Task, p: u64) {
        let _f = explore::enter("change_pte_range");
        lock_none_pmd(k, t, p);
    }
    let trace = |f: Finding| -> Vec<String> {
        assert!(f.title.contains("NULL pointer dereference"), "{}", f.title);
        let at = f.details.iter().position(|d| d == "Call Trace:").unwrap();
        let end = f.details.iter().position(|d| d == " </TASK>").unwrap();
        f.details[at..=end].to_vec()
    };
    let zap = trace(run("linux-6.1.159", from_zap, &[]).unwrap());
    assert_eq!(
        zap,
        [
            "Call Trace:",
            " <TASK>",
            " pte_offset_map_lock",
            " zap_pmd_range",
            " unmap_page_range",
            " </TASK>"
        ]
    );
    // The same from a concurrent actor, whose frames are its own.
    static MPROTECT: [Body; 2] = [nothing, from_mprotect];
    let mprotect = trace(run("linux-6.1.159", nothing, &MPROTECT).unwrap());
    assert_eq!(
        mprotect,
        [
            "Call Trace:",
            " <TASK>",
            " pte_offset_map_lock",
            " change_pte_range",
            " </TASK>"
        ]
    );
}

/// ptep_modify_prot_commit of a present frame the domain does not own:
/// the hypervisor refuses the one call of the batch.
fn refused_commit(k: &Kernel, t: &Task, p: u64) {
    let _f = explore::enter("change_pte_range");
    let slot = pte_slot(k, t, p);
    let raw = slot.peek();
    k.pv.ptep_modify_prot_commit(&slot, Pte((raw & !PTE_PFN_MASK) | (0x10 << 12)));
    assert_eq!(slot.peek(), raw, "a refused update leaves the entry");
}

#[test]
fn a_failed_multicall_warns_with_the_cpu_and_batch_that_failed() {
    static ON_CPU0: [Body; 2] = [refused_commit, nothing];
    static ON_CPU1: [Body; 2] = [nothing, refused_commit];
    let cpu0 = run("linux-3.14.5-xen", nothing, &ON_CPU0).expect("xen_mc_flush warns");
    let cpu1 = run("linux-3.14.5-xen", nothing, &ON_CPU1).expect("xen_mc_flush warns");
    // Actor 1 is CPU0 (pid 2), actor 2 is CPU1 (pid 3), as reports number
    // them.
    assert_eq!(explore::rt::cpu_of(1), 0);
    assert_eq!(explore::rt::cpu_of(2), 1);
    assert_eq!(
        cpu0.title,
        "WARNING: CPU: 0 PID: 2 at arch/x86/xen/multicalls.c:129 xen_mc_flush()"
    );
    assert_eq!(
        cpu1.title,
        "WARNING: CPU: 1 PID: 3 at arch/x86/xen/multicalls.c:129 xen_mc_flush()"
    );
    // The trace is the caller's chain; the batch is the one call built.
    assert_eq!(cpu1.details[..2], ["Call Trace:", " change_pte_range"]);
    assert!(
        cpu1.details
            .contains(&"mmrace: 1 of 1 multicall(s) in the batch failed (MC_DEBUG is 0: the kernel prints no count)".to_string()),
        "{:?}",
        cpu1.details
    );
    assert!(
        cpu1.details
            .iter()
            .any(|d| d.starts_with("mmrace:   call  1/1: op=1 (mmu_update)")
                && d.ends_with("result=-22")),
        "{:?}",
        cpu1.details
    );
}
