//! The incremental checkers against a corruption no announced access
//! names: a pte cleared behind the model's back (a mutation of the state,
//! as a model bug would make it). Checking everything after every step
//! catches it at the step that made it; checking what each step touched
//! cannot, but the whole-state check at the end of the concurrent phase
//! still does, with the same finding.

use std::cell::RefCell;
use std::rc::Rc;

use explore::rt::{run_execution, ActorSpec, ExecutionConfig, Harness, Instance, Workspace};
use explore::strategy::RandomWalk;
use explore::{ExecutionResult, Finding, Touches};
use mm::arch::x86::mm::fault::user_write;
use mm::checkers::check_all;
use mm::checkers::incremental::Incremental;
use mm::kernel::fork::mm_alloc;
use mm::mm_types::{Kernel, Machine, Task, Thp, PAGE_SIZE};
use mm::mmap::{do_mmap, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};

const PAGES: u64 = 16;
/// The page whose pte the corrupting actor clears: one the setup wrote
/// (the others are faulted in by the actors, each fault a pte store).
const VICTIM: u64 = 5;

/// How the mutating actor clears the victim's pte, if it does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mutation {
    None,
    /// Behind the explorer's back: no access announced.
    Silent,
    /// With an announced store.
    Announced,
}

struct H {
    incremental: bool,
    corrupt: Mutation,
}

struct I {
    k: Rc<Kernel>,
    task: Rc<Task>,
    base: u64,
    incremental: Option<RefCell<Incremental>>,
    corrupt: Mutation,
}

impl Harness for H {
    fn start(&self) -> Box<dyn Instance> {
        let machine = Machine {
            nodes: 1,
            thp: Thp::Never,
            thp_use_zero_page: true,
        };
        let k = Rc::new(Kernel::new(mm::profile("linux-6.5").unwrap(), machine));
        let task = Rc::new(Task {
            name: "t".into(),
            node: 0,
            mm: mm_alloc(&k).unwrap(),
        });
        let len = PAGES * PAGE_SIZE;
        let prot = PROT_READ | PROT_WRITE;
        let base = do_mmap(&k, &task, 0, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, 0).unwrap();
        user_write(&k, &task, base, 0, len / 2, 1).unwrap();
        Box::new(I {
            k,
            task,
            base,
            incremental: self.incremental.then(RefCell::default),
            corrupt: self.corrupt,
        })
    }
}

impl Instance for I {
    fn actors(&mut self) -> Vec<ActorSpec> {
        let (k, task, base) = (self.k.clone(), self.task.clone(), self.base);
        let writer = ActorSpec {
            name: "writer".into(),
            body: Box::new(move || {
                for page in 8..12 {
                    user_write(&k, &task, base + page * PAGE_SIZE, 0, 1, 2).unwrap();
                }
            }),
        };
        let (k, task, corrupt) = (self.k.clone(), self.task.clone(), self.corrupt);
        let mutator = ActorSpec {
            name: "mutator".into(),
            body: Box::new(move || {
                // A step the checkers look at first (the first check of an
                // execution is always a whole one).
                user_write(&k, &task, base + 14 * PAGE_SIZE, 0, 1, 3).unwrap();
                match corrupt {
                    Mutation::None => {}
                    Mutation::Silent => clear_pte(&k, &task, base + VICTIM * PAGE_SIZE, false),
                    Mutation::Announced => clear_pte(&k, &task, base + VICTIM * PAGE_SIZE, true),
                }
                // An announced store elsewhere: the state is checked after it.
                user_write(&k, &task, base + 12 * PAGE_SIZE, 0, 1, 3).unwrap();
                user_write(&k, &task, base + 13 * PAGE_SIZE, 0, 1, 3).unwrap();
            }),
        };
        vec![writer, mutator]
    }

    fn check(&self) -> Option<Finding> {
        check_all(&self.k)
    }

    fn check_step(&self, touched: &Touches<'_>) -> Result<Option<Finding>, String> {
        match &self.incremental {
            Some(inc) => inc.borrow_mut().check_step(&self.k, touched),
            None => Ok(check_all(&self.k)),
        }
    }
}

/// Clears the pte mapping `addr`, with an announced store or without a
/// scheduling point (then no announced access names it).
fn clear_pte(k: &Kernel, task: &Task, addr: u64, announced: bool) {
    let pmd = mm::pgtable::peek_pmd(k, &task.mm, addr).unwrap().peek();
    let pte = mm::pgtable::pte_offset(k, pmd, addr).unwrap();
    if announced {
        pte.write("test: pte cleared", 0);
    } else {
        pte.table.entries().write_unpublished(pte.index, 0);
    }
}

fn execution(incremental: bool, corrupt: bool, seed: u64) -> ExecutionResult {
    let mutation = if corrupt {
        Mutation::Silent
    } else {
        Mutation::None
    };
    execution_with(incremental, mutation, seed)
}

fn execution_with(incremental: bool, corrupt: Mutation, seed: u64) -> ExecutionResult {
    let config = ExecutionConfig {
        steps_max: 100_000,
        tracing: false,
        track_conflicts: false,
        racy: &[],
    };
    let h = H {
        incremental,
        corrupt,
    };
    run_execution(
        &h,
        &mut RandomWalk::new(seed),
        config,
        &mut Workspace::default(),
    )
    .expect("no internal error")
}

/// The check that made the finding (`INV-…`, or the kernel's own).
fn title(r: &ExecutionResult) -> Option<String> {
    r.finding.as_ref().map(|f| f.check.clone())
}

#[test]
fn an_untouched_corruption_is_caught_by_the_end_of_the_execution() {
    for seed in 0..8 {
        let clean = execution(true, false, seed);
        assert_eq!(
            title(&clean),
            None,
            "seed {seed}: healthy without the mutation"
        );
        let full = execution(false, true, seed);
        let incremental = execution(true, true, seed);
        let lost = Some("INV-NO-LOST-MAPPING".to_string());
        assert_eq!(title(&full), lost, "seed {seed}");
        assert_eq!(title(&incremental), lost, "seed {seed}");
        assert!(
            full.steps < incremental.steps,
            "seed {seed}: the full check catches it at the step ({}), the incremental one \
             only at the end ({})",
            full.steps,
            incremental.steps
        );
        assert_eq!(
            incremental.steps, clean.steps,
            "seed {seed}: found by the whole-state check after the last step"
        );
        assert_eq!(
            full.finding.as_ref().map(|f| (&f.title, &f.details)),
            incremental.finding.as_ref().map(|f| (&f.title, &f.details)),
            "seed {seed}: the same finding"
        );
    }
}

#[test]
fn a_touched_corruption_is_caught_at_its_step() {
    // The same pte cleared by an announced store (no rmap or rss update):
    // both modes see it at the step that made it.
    for seed in 0..8 {
        let full = execution_with(false, Mutation::Announced, seed);
        let incremental = execution_with(true, Mutation::Announced, seed);
        assert_eq!(title(&full), Some("INV-NO-LOST-MAPPING".to_string()));
        assert_eq!(title(&full), title(&incremental), "seed {seed}");
        assert_eq!(full.steps, incremental.steps, "seed {seed}");
        assert!(incremental.steps < execution(true, false, seed).steps);
    }
}
