//! The interpreter: runs a parsed scenario on the mm model as an
//! [`explore::Harness`]. Each execution builds a fresh kernel, runs every
//! process's setup in order (a `fork()` there creates the child and runs
//! the child's setup at once), then lets the explorer interleave the
//! threads of every process, children included. A task's `exit()` drops
//! its mm (`mmput`); at the end every process still alive exits
//! (`exit_mmap`, `check_mm`), and kmemleak scans for anon_vmas and
//! anon_vma_chains nobody freed (`mm::kmemleak`).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use explore::rt::{ActorSpec, Harness, Instance};
use explore::sync::AtomicSlot;
use explore::{Finding, FindingKind, Touches};
use mm::arch::x86::mm::fault::{user_read_counted, user_write_counted, Signal};
use mm::checkers::incremental::Incremental;
use mm::kernel::fork::{dup_mmap, dup_mmap_unmodelled, mm_alloc, mmget, mmput};
use mm::kernel::sched::fair::task_numa_work;
use mm::mm_types::{
    FolioKind, Kernel, Machine, MmStruct, Task, Thp, HPAGE_PMD_SIZE, PMD_CLASS, PTE_CLASS,
    RSS_NAMES,
};
use mm::profile::{Platform, PteLayout, KNOBS};
use mm::vmscan::{reclaim_range, shrink_all_memory};
use mm::{madvise, mmap, Profile};

use crate::ast::{self, Advice, Expr, Op, Scenario, Stmt};
use crate::outcome::{summarize, At, Did, StatementSummary, Tally};

/// A scenario under one profile: what the explorer runs.
pub struct ScenarioHarness {
    scenario: Arc<Scenario>,
    profile: Profile,
    check: CheckMode,
    /// What each statement did, over every execution so far (executions
    /// may run on several workers).
    tally: Arc<Mutex<Tally>>,
}

/// What the checkers look at after a step.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum CheckMode {
    /// What the step touched (`mm::checkers::incremental`); the whole
    /// state at the end of the concurrent phase and of the execution.
    #[default]
    Incremental,
    /// The whole state after every step (`--check full`): for debugging
    /// mmrace itself, and the reference the incremental mode must match.
    Full,
    /// Both after every step (`--check compare`), a disagreement being an
    /// internal error: how the tests hold the incremental mode to the full
    /// one.
    Compare,
}

impl CheckMode {
    /// `--check`'s spelling.
    pub fn name(self) -> &'static str {
        match self {
            CheckMode::Incremental => "incremental",
            CheckMode::Full => "full",
            CheckMode::Compare => "compare",
        }
    }

    /// Parses `--check`'s value.
    ///
    /// # Errors
    ///
    /// A value other than `incremental` or `full`.
    pub fn parse(s: &str) -> Result<CheckMode, String> {
        match s {
            "incremental" => Ok(CheckMode::Incremental),
            "full" => Ok(CheckMode::Full),
            "compare" => Ok(CheckMode::Compare),
            _ => Err(format!(
                "unknown check mode '{s}' (expected 'incremental', 'full' or 'compare')"
            )),
        }
    }
}

/// What the model can run under a profile: the parts of the scenario
/// language that depend on the kernel era's modelled paths. The one place
/// [`ScenarioHarness::new`] and generators (`mmrace hunt`) learn it from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// `thp=always|madvise` (the modern pte paths only).
    pub thp: bool,
    /// `file` lines and the file statements (the 2.6-era paths).
    pub files: bool,
    /// `reclaim()` and `hibernate()` (swap: the 2.6.34 era).
    pub swap: bool,
    /// The Xen PV platform (the 3.x-era and 2.6-era pte paths).
    pub xen_pv: bool,
    /// `numa_scan()`: NUMA balancing (v3.8, so not the 2.6 era).
    pub numa_balancing: bool,
    /// `fork()` at all: not under Xen PV with the 3.x-era paths
    /// (`xen_dup_mmap()` is modelled for the 2.6 era only). Whatever the
    /// profile, the model's `dup_mmap()` copies no THP and no swap or
    /// migration entry: such a fork is refused at run time.
    pub fork: bool,
    /// A NUMA hinting fault that finds a small page on another node
    /// migrates it: not with the 3.x-era paths (`migrate_misplaced_page`
    /// is not modelled there), which refuse it at run time.
    pub misplaced_small_pages: bool,
}

impl Capabilities {
    pub fn of(profile: &Profile) -> Capabilities {
        let era3 = profile.numa_bit().is_some();
        let era2_6 = profile.knobs.pte_layout == PteLayout::V2_6_34;
        Capabilities {
            thp: !era3 && !era2_6,
            files: era2_6,
            swap: era2_6,
            xen_pv: era3 || era2_6,
            numa_balancing: !era2_6,
            fork: profile.knobs.platform != Platform::XenPv || era2_6,
            misplaced_small_pages: !era3,
        }
    }
}

impl ScenarioHarness {
    /// Checks that the model can run the scenario at all.
    /// A `xen-pv`/`native` machine line overrides the profile's `platform`,
    /// and `failslab` turns on its `fail_slab_alloc`.
    ///
    /// # Errors
    ///
    /// A scenario the model cannot run under this profile: Xen PV outside
    /// the 3.x-era paths, THP in the 3.x or 2.6.34 era, `reclaim()` and
    /// `hibernate()` outside the 2.6.34 era (the only one with swap), or
    /// `numa_scan()` in it (NUMA balancing came in v3.8).
    pub fn new(scenario: Arc<Scenario>, mut profile: Profile) -> Result<Self, String> {
        match scenario.machine.platform {
            Some(ast::Platform::XenPv) => profile.knobs.platform = Platform::XenPv,
            Some(ast::Platform::Native) => profile.knobs.platform = Platform::Native,
            None => {}
        }
        if scenario.machine.failslab {
            profile.knobs.fail_slab_alloc = true;
        }
        let file = &scenario.file;
        let name = profile.name;
        let layout = pte_layout(&profile);
        let can = Capabilities::of(&profile);
        if profile.knobs.platform == Platform::XenPv && !can.xen_pv {
            return Err(format!(
                "{file}: Xen PV is modelled with the 3.x-era and 2.6-era pte paths only; profile \
                 {name} has pte_layout={layout} (use a linux-3.* or linux-2.6.2x-xen profile, or \
                 --knob pte_layout=v3_12)"
            ));
        }
        if scenario.machine.thp != ast::Thp::Never && !can.thp {
            let (era, why) = if profile.numa_bit().is_some() {
                ("the 3.x-era pte paths", "")
            } else {
                ("the 2.6.34 era", "; THP came in 2.6.38")
            };
            return Err(format!(
                "{file}: THP is not modelled for {era} (profile {name}{why}); use thp=never"
            ));
        }
        if !can.files && !scenario.files.is_empty() {
            return Err(format!(
                "{file}: regular files (file lines) are modelled for the 2.6-era paths only \
                 (do_no_page/__do_fault, truncate, O_DIRECT; profile {name} has \
                 pte_layout={layout}); use linux-2.6.22 or linux-2.6.23"
            ));
        }
        if !can.swap && uses_swap(&scenario) {
            return Err(format!(
                "{file}: reclaim()/hibernate() need swap, which is modelled for the 2.6.34 era \
                 only (profile {name} has pte_layout={layout}); use a linux-2.6.34-* or \
                 linux-2.6.36 profile"
            ));
        }
        if !can.numa_balancing {
            if let Some(span) = first_stmt(&scenario, |op| matches!(op, Op::NumaScan { .. })) {
                return Err(scenario
                    .diagnostic(
                        span,
                        format!(
                            "numa_scan(): NUMA balancing came in v3.8, and profile {name} \
                             models the 2.6 era (pte_layout={layout})"
                        ),
                    )
                    .to_string());
            }
        }
        Ok(ScenarioHarness {
            scenario,
            profile,
            check: CheckMode::default(),
            tally: Arc::default(),
        })
    }

    /// Sets what the checkers look at after a step.
    #[must_use]
    pub fn with_check(mut self, check: CheckMode) -> Self {
        self.check = check;
        self
    }

    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// What each statement did over the executions run so far, in source
    /// order (meaningful for a clean run, whose every execution ran).
    pub fn statement_summary(&self) -> Vec<StatementSummary> {
        let tally = self.tally.lock().unwrap_or_else(|e| e.into_inner());
        summarize(&self.scenario, &tally)
    }

    /// The profile the scenario runs under, with the machine line's
    /// platform and `failslab` applied.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    fn machine(&self) -> Machine {
        let m = &self.scenario.machine;
        let thp = match m.thp {
            ast::Thp::Always => Thp::Always,
            ast::Thp::Madvise => Thp::Madvise,
            ast::Thp::Never => Thp::Never,
        };
        Machine {
            nodes: m.numa_nodes,
            thp,
            thp_use_zero_page: true,
        }
    }
}

/// The `pte_layout` knob's value as `--knob` spells it.
fn pte_layout(profile: &Profile) -> &'static str {
    KNOBS
        .iter()
        .find(|knob| knob.name == "pte_layout")
        .expect("the knob table has pte_layout")
        .get(&profile.knobs)
}

/// Whether any statement of any process, children included, reclaims:
/// `reclaim()` or `hibernate()`.
fn uses_swap(scenario: &Scenario) -> bool {
    first_stmt(scenario, |op| {
        matches!(op, Op::Reclaim { .. } | Op::Hibernate)
    })
    .is_some()
}

/// The first statement, in any process or child, whose op `is`.
fn first_stmt(scenario: &Scenario, is: impl Fn(&Op) -> bool) -> Option<ast::Span> {
    scenario.all_processes().iter().find_map(|p| {
        p.setup
            .iter()
            .chain(p.threads.iter().flat_map(|t| &t.body))
            .find(|stmt| is(&stmt.op))
            .map(|stmt| stmt.span)
    })
}

/// What a step touched, for an internal error's message.
fn describe_touched(touched: &Touches<'_>) -> String {
    let all: Vec<String> = touched
        .iter()
        .map(|t| format!("{} {} {:#x}[{}]", t.kind.name(), t.class, t.detail, t.index))
        .collect();
    all.join(", ")
}

/// Anonymous folios listed in a report's dump at most.
const FOLIOS_SHOWN: usize = 12;

/// Variables of one process (or thread), by name.
type Vars = BTreeMap<String, u64>;

/// One process of a running execution.
/// A child a thread forked: its `comm` and its mm.
type Forked = (String, Rc<MmStruct>);

struct ProcessRun {
    /// The scenario's name for it, which reports use.
    name: String,
    /// Its `comm`: the top-level process's name, which a fork copies.
    comm: String,
    mm: Rc<MmStruct>,
    /// Its variables after the setup: what each thread starts with.
    vars: Vars,
    threads: Vec<ast::Thread>,
    life: Rc<ProcessLife>,
}

/// A process's fate under a fatal signal: a user access that raises
/// SIGSEGV or SIGBUS kills the whole thread group (the default action).
/// Each of its threads exits at its next statement (the kernel delivers
/// the kill on the way back to user space), a thread that had finished
/// its statements wakes and exits, and the last task to drop the mm tears
/// it down (`exit_mmap`).
struct ProcessLife {
    /// `signal->flags & SIGNAL_GROUP_EXIT` (`zap_other_threads()` sets
    /// `TIF_SIGPENDING` in each thread): written by the thread that took
    /// the signal, read by its siblings before each statement, a
    /// scheduling point. Only processes with two or more threads read it:
    /// a single thread is the one killed.
    group_exit: AtomicSlot,
    /// Killed by a statement of its setup, before any thread started.
    killed_in_setup: Cell<bool>,
    /// Threads that finished their statements and still hold the mm
    /// (asleep until the end of the execution). Changed only in the step
    /// after a `group_exit` access.
    sleeping: Cell<u32>,
    threads: usize,
}

impl ProcessLife {
    fn new(mm: u64, threads: usize) -> ProcessLife {
        ProcessLife {
            group_exit: AtomicSlot::new("signal->flags", mm, 0),
            killed_in_setup: Cell::new(false),
            sleeping: Cell::new(0),
            threads,
        }
    }

    /// Whether a sibling's fatal signal is pending for this thread.
    fn killed(&self) -> bool {
        self.killed_in_setup.get()
            || (self.threads >= 2
                && self
                    .group_exit
                    .read("exit_to_user_mode: signal_group_exit(current->signal)")
                    != 0)
    }

    /// A fatal signal in a thread: the group exits. This task and every
    /// sleeping one drop the mm; the running ones will at their next
    /// statement.
    fn kill(&self, k: &Kernel, mm: &Rc<MmStruct>) {
        if self.threads >= 2 {
            self.group_exit
                .write("zap_other_threads: signal->flags = SIGNAL_GROUP_EXIT", 1);
        }
        for _ in 0..=self.sleeping.replace(0) {
            mmput(k, mm);
        }
    }

    /// A thread ran all its statements: it sleeps holding the mm, unless
    /// the group is exiting.
    fn finished(&self, k: &Kernel, mm: &Rc<MmStruct>) {
        if self.killed() {
            mmput(k, mm);
        } else {
            self.sleeping.set(self.sleeping.get() + 1);
        }
    }
}

/// One execution of the scenario.
struct Run {
    k: Rc<Kernel>,
    source: Arc<Scenario>,
    /// In creation order: each process before the children it forks,
    /// which come in fork order (the order of [`Scenario::all_processes`],
    /// less the children whose fork failed).
    processes: Vec<ProcessRun>,
    /// The address spaces as the threads left them, without frame numbers
    /// (which follow allocation order), taken before teardown.
    final_state: Option<String>,
    check: CheckMode,
    /// The incremental checkers' shadow of this execution's state.
    incremental: RefCell<Incremental>,
    /// What each statement did in this execution, in the order they ran.
    did: Rc<RefCell<Vec<(At, Did)>>>,
    /// The run's tally, which this execution's outcomes join at teardown.
    tally: Arc<Mutex<Tally>>,
    /// The mms of children a thread forked (a child forked by a thread
    /// runs only its setup, at the fork), with their `comm`: torn down at
    /// the end.
    forked: Rc<RefCell<Vec<Forked>>>,
}

impl Harness for ScenarioHarness {
    fn start(&self) -> Box<dyn Instance> {
        let mut run = Run {
            k: Rc::new(Kernel::new(self.profile.clone(), self.machine())),
            source: self.scenario.clone(),
            processes: Vec::new(),
            final_state: None,
            check: self.check,
            incremental: RefCell::default(),
            did: Rc::default(),
            tally: self.tally.clone(),
            forked: Rc::default(),
        };
        for f in &self.scenario.files {
            run.k.create_file(f.size, f.fill);
        }
        for p in &self.scenario.processes {
            let Some(mm) = mm_alloc(&run.k) else {
                explore::unsupported("the machine has no memory left for the scenario's processes")
            };
            mm::arch::x86::xen::mmu_pv::xen_activate_mm(&run.k, &mm);
            let task = Task {
                name: p.name.clone(),
                node: 0,
                mm,
            };
            explore::rt::with_comm(&p.name, || run.start_process(p, &task, Vars::new()));
        }
        Box::new(run)
    }
}

impl Run {
    /// Runs process `p` in `task`, starting with `vars`: its setup, and
    /// each child right at the `fork()` that creates it.
    fn start_process(&mut self, p: &ast::Process, task: &Task, mut vars: Vars) {
        // The setup's task goes on as the first thread and clones the
        // others (or sleeps until the end if there are none).
        for _ in 1..p.threads.len() {
            mmget(&task.mm);
        }
        let index = self.processes.len();
        let life = Rc::new(ProcessLife::new(task.mm.id, p.threads.len()));
        self.processes.push(ProcessRun {
            name: p.name.clone(),
            comm: explore::rt::current_comm(),
            mm: task.mm.clone(),
            vars: Vars::new(),
            threads: p.threads.clone(),
            life: life.clone(),
        });
        for stmt in &p.setup {
            let did = match &stmt.op {
                Op::Fork { child } => self.fork(p, child, task, &vars, stmt),
                _ => exec(&self.k, &self.source, task, &mut vars, stmt),
            };
            self.did
                .borrow_mut()
                .push(((stmt.span.line, stmt.span.col), did));
            if matches!(did, Did::Signal(..)) {
                // Killed before its threads start: they exit at once; a
                // process without threads drops its only reference.
                life.killed_in_setup.set(true);
                if p.threads.is_empty() {
                    mmput(&self.k, &task.mm);
                }
                break;
            }
        }
        self.processes[index].vars = vars;
    }

    /// `child = fork()` in the setup of `parent`, run by `task`: the child
    /// gets a copy of the address space and of the variables bound so far
    /// (the same addresses), then runs its own setup.
    fn fork(
        &mut self,
        parent: &ast::Process,
        child: &str,
        task: &Task,
        vars: &Vars,
        stmt: &Stmt,
    ) -> Did {
        explore::note!("{}: {}", task.name, stmt_text(&self.source, stmt));
        if let Some(why) = dup_mmap_unmodelled(&self.k, task) {
            explore::unsupported(
                self.source
                    .diagnostic(stmt.span, format!("the model cannot fork here: {why}"))
                    .to_string(),
            );
        }
        let Some(program) = parent.child(child) else {
            explore::unsupported(
                self.source
                    .diagnostic(stmt.span, format!("no 'child {child} {{ ... }}' block"))
                    .to_string(),
            )
        };
        let did = match dup_mmap(&self.k, task, child) {
            Some(child_task) => {
                self.start_process(program, &child_task, vars.clone());
                Did::Returned
            }
            None => {
                explore::note!("{}: fork() failed: ENOMEM", task.name);
                Did::Errno("ENOMEM")
            }
        };
        check_outcome(&self.source, stmt, did, 0);
        did
    }
}

impl Instance for Run {
    fn actors(&mut self) -> Vec<ActorSpec> {
        explore::rt::set_comms(
            self.processes
                .iter()
                .flat_map(|p| p.threads.iter().map(|t| (t.name.clone(), p.comm.clone()))),
        );
        let mut actors = Vec::new();
        for p in &self.processes {
            for t in &p.threads {
                let (k, source) = (self.k.clone(), self.source.clone());
                let task = Task {
                    name: t.name.clone(),
                    node: t.node,
                    mm: p.mm.clone(),
                };
                let (mut vars, body) = (p.vars.clone(), t.body.clone());
                let (life, record) = (p.life.clone(), self.did.clone());
                let (forked, parent) = (self.forked.clone(), p.name.clone());
                actors.push(ActorSpec {
                    name: t.name.clone(),
                    body: Box::new(move || {
                        for stmt in &body {
                            if life.killed() {
                                explore::note!("{}: killed by a fatal signal", task.name);
                                mmput(&k, &task.mm);
                                return;
                            }
                            let did = match &stmt.op {
                                Op::Fork { child } => {
                                    let at = ForkAt {
                                        parent: &parent,
                                        child,
                                        stmt,
                                    };
                                    thread_fork(&k, &source, &task, &vars, &at, &forked, &record)
                                }
                                _ => exec(&k, &source, &task, &mut vars, stmt),
                            };
                            record
                                .borrow_mut()
                                .push(((stmt.span.line, stmt.span.col), did));
                            if matches!(did, Did::Signal(..)) {
                                life.kill(&k, &task.mm);
                                return;
                            }
                            if matches!(stmt.op, Op::Exit) {
                                return;
                            }
                        }
                        life.finished(&k, &task.mm);
                    }),
                });
            }
        }
        actors
    }

    fn teardown(&mut self) {
        let did = std::mem::take(&mut *self.did.borrow_mut());
        self.tally
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add_execution(&did);
        let lines: Vec<String> = self
            .describe_mms()
            .iter()
            .map(|l| without_pfns(l))
            .collect();
        self.final_state = Some(lines.join("\n"));
        for p in &self.processes {
            // A process whose last task called exit() is gone already.
            if !p.mm.exited.get() {
                explore::rt::with_comm(&p.comm, || mmap::exit_mmap(&self.k, &p.mm));
            }
        }
        for (comm, mm) in self.forked.borrow().iter() {
            if !mm.exited.get() {
                explore::rt::with_comm(comm, || mmap::exit_mmap(&self.k, mm));
            }
        }
        mm::kmemleak::kmemleak_scan(&self.k);
    }

    /// The whole state, and the lockset rules the execution broke
    /// (INV-LOCKSET is reported here only, never after a step: a breach
    /// need not hurt at once, and what it breaks later is the better
    /// report).
    fn check(&self) -> Option<Finding> {
        mm::checkers::check_all(&self.k).or_else(|| mm::checkers::lockset::check(&self.k))
    }

    fn check_step(&self, touched: &Touches<'_>) -> Result<Option<Finding>, String> {
        match self.check {
            CheckMode::Incremental => self.incremental.borrow_mut().check_step(&self.k, touched),
            CheckMode::Full => {
                self.k.ghost.take_changed();
                self.k.ghost.files.take_changed();
                Ok(mm::checkers::check_all(&self.k))
            }
            CheckMode::Compare => {
                let step = self.incremental.borrow_mut().check_step(&self.k, touched)?;
                let full = mm::checkers::check_all(&self.k);
                match (&step, &full) {
                    (None, Some(f)) => Err(format!(
                        "the full check reports \"{}\" after a step the incremental check \
                         passes (touched: {})",
                        f.title,
                        describe_touched(touched)
                    )),
                    _ => Ok(full),
                }
            }
        }
    }

    fn describe(&self, class: &'static str, value: u64) -> Option<String> {
        match class {
            PMD_CLASS => Some(self.k.describe_pmd(value)),
            PTE_CLASS => Some(self.k.describe_pte(value)),
            _ => None,
        }
    }

    fn final_state(&self) -> Option<String> {
        self.final_state.clone()
    }

    fn dump(&self) -> Vec<String> {
        let mut lines = self.describe_mms();
        lines.extend(self.describe_files());
        let folios: Vec<_> = self
            .k
            .mem
            .folios()
            .into_iter()
            .filter(|f| f.kind.get() == FolioKind::Anon)
            .collect();
        // Large folios and locked ones first: they are the ones in flight.
        let mut shown: Vec<_> = folios
            .iter()
            .filter(|f| f.order > 0 || f.lock.is_locked())
            .collect();
        shown.extend(
            folios
                .iter()
                .filter(|f| f.order == 0 && !f.lock.is_locked()),
        );
        if shown.len() > FOLIOS_SHOWN {
            lines.push(format!(
                "({} anonymous folios, the first {FOLIOS_SHOWN} shown)",
                shown.len()
            ));
            shown.truncate(FOLIOS_SHOWN);
        }
        for f in shown {
            lines.push(format!(
                "folio pfn {:#x} order {} node {}: refcount {} mapcount {}{}{}",
                f.pfn,
                f.order,
                f.node,
                f.refcount.peek(),
                f.mapcount.peek(),
                if f.lock.is_locked() { " locked" } else { "" },
                if f.lru.get() { " lru" } else { "" },
            ));
        }
        lines
    }
}

/// The text of a statement, for trace notes.
fn stmt_text(s: &Scenario, stmt: &Stmt) -> String {
    s.stmt_text(stmt)
}

fn eval(s: &Scenario, stmt: &Stmt, vars: &Vars, e: &Expr) -> u64 {
    match e.eval(&|name| vars.get(name).copied()) {
        Ok(v) => v,
        // The checker guarantees bound variables; overflow at run time (an
        // address near the top) is the user's input: name where it is.
        Err(msg) => explore::unsupported(
            s.diagnostic(
                stmt.span,
                format!("cannot evaluate an expression at run time: {msg}"),
            )
            .to_string(),
        ),
    }
}

/// Runs one statement on behalf of `task`.
fn exec(k: &Kernel, s: &Scenario, task: &Task, vars: &mut Vars, stmt: &Stmt) -> Did {
    explore::note!("{}: {}", task.name, stmt_text(s, stmt));
    let v = |e: &Expr| eval(s, stmt, vars, e);
    let result: Result<(Did, u64), Did> = match &stmt.op {
        Op::Mmap {
            addr,
            len,
            prot,
            flags,
            align,
            file,
        } => match file {
            Some((name, offset)) => {
                let f = file_of(k, s, name);
                let off = v(offset);
                mmap::do_mmap_file(k, task, v(addr), v(len), *prot, *flags, &f, off / 4096)
                    .map(returned)
                    .map_err(errno)
            }
            None => {
                let align = align.as_ref().map_or(0, v);
                mmap::do_mmap(k, task, v(addr), v(len), *prot, *flags, align)
                    .map(returned)
                    .map_err(errno)
            }
        },
        Op::Ftruncate { file, len } => {
            mm::fs::open::do_truncate(k, &file_of(k, s, file), v(len));
            Ok(returned(0))
        }
        Op::Pwrite {
            file,
            off,
            len,
            value,
            direct,
        } => mm::fs::read_write::sys_pwrite64(
            k,
            task,
            &file_of(k, s, file),
            v(off),
            v(len),
            *value,
            *direct,
        )
        .map(returned)
        .map_err(errno),
        Op::Pread {
            file,
            off,
            len,
            expect,
        } => {
            let bytes =
                mm::fs::read_write::sys_pread64(k, task, &file_of(k, s, file), v(off), v(len));
            check_expect(s, stmt, &bytes, *expect);
            Ok(returned(bytes.len() as u64))
        }
        Op::RemapFilePages { addr, len, pgoff } => {
            mm::fremap::sys_remap_file_pages(k, task, v(addr), v(len), v(pgoff))
                .map(|()| returned(0))
                .map_err(errno)
        }
        Op::Msync { addr, len } => mm::msync::sys_msync(k, task, v(addr), v(len))
            .map(|()| returned(0))
            .map_err(errno),
        Op::Munmap { addr, len } => mmap::do_munmap(k, task, v(addr), v(len))
            .map(|_| returned(0))
            .map_err(errno),
        Op::Mprotect { addr, len, prot } => mmap::do_mprotect(k, task, v(addr), v(len), *prot)
            .map(|_| returned(0))
            .map_err(errno),
        Op::Madvise { addr, len, advice } => {
            madvise::do_madvise(k, task, v(addr), v(len), advice_value(*advice))
                .map(|_| returned(0))
                .map_err(errno)
        }
        Op::Write { addr, range, value } => {
            let (lo, hi) = range.as_ref().map_or((0, 1), |(a, b)| (v(a), v(b)));
            let (r, faults) = user_write_counted(k, task, v(addr), (lo, hi), *value);
            r.map(|()| (accessed(faults), 0)).map_err(signalled)
        }
        Op::Read {
            addr,
            range,
            expect,
        } => {
            let (lo, hi) = range.as_ref().map_or((0, 1), |(a, b)| (v(a), v(b)));
            let (r, faults) = user_read_counted(k, task, v(addr), (lo, hi));
            match r {
                Ok(bytes) => {
                    check_expect(s, stmt, &bytes, *expect);
                    Ok((accessed(faults), bytes.first().copied().unwrap_or(0) as u64))
                }
                Err(sig) => Err(signalled(sig)),
            }
        }
        Op::NumaScan { addr, len } => Ok(returned(
            task_numa_work(k, task, v(addr), v(len)).unwrap_or(0),
        )),
        Op::Reclaim { addr, len } => Ok(returned(reclaim_range(k, task, v(addr), v(len)))),
        Op::Hibernate => Ok(returned(shrink_all_memory(k, task))),
        // The checker keeps fork() to setups, which `Run::start_process`
        // runs; a tree built by hand may not.
        Op::Fork { .. } => explore::unsupported(
            s.diagnostic(
                stmt.span,
                "fork() here is run by Run::fork or thread_fork, not exec",
            )
            .to_string(),
        ),
        Op::Exit => {
            mmput(k, &task.mm);
            Ok(returned(0))
        }
    };
    let (did, value) = match result {
        Ok((did, r)) => {
            if let Some(name) = &stmt.bind {
                vars.insert(name.clone(), r);
            }
            (did, r)
        }
        Err(did) => {
            explore::note!("{}: {} failed: {did}", task.name, stmt_text(s, stmt));
            if let Some(name) = &stmt.bind {
                vars.insert(name.clone(), u64::MAX);
            }
            (did, u64::MAX)
        }
    };
    check_outcome(s, stmt, did, value);
    did
}

/// Where a thread forks: its process's scenario name, the child's name,
/// and the statement.
struct ForkAt<'a> {
    parent: &'a str,
    child: &'a str,
    stmt: &'a Stmt,
}

/// `c = fork()` in a thread: `dup_mmap` among the other threads, then the
/// child's setup, run by this thread in the child at once (a child forked
/// by a thread has no threads of its own). Its outcomes join `record`.
fn thread_fork(
    k: &Kernel,
    s: &Scenario,
    task: &Task,
    vars: &Vars,
    at: &ForkAt<'_>,
    forked: &RefCell<Vec<Forked>>,
    record: &RefCell<Vec<(At, Did)>>,
) -> Did {
    let stmt = at.stmt;
    explore::note!("{}: {}", task.name, stmt_text(s, stmt));
    // What the model cannot copy is looked at by dup_mmap itself, under
    // the parent's mmap_lock: before it, another thread's fault may be in
    // the middle of a migration that will be over by then.
    let program = s
        .all_processes()
        .into_iter()
        .find(|p| p.name == at.parent)
        .and_then(|p| p.child(at.child))
        .expect("the checker pairs each fork with its child block");
    let did = match dup_mmap(k, task, at.child) {
        Some(child) => {
            let mut child_vars = vars.clone();
            for st in &program.setup {
                let d = exec(k, s, &child, &mut child_vars, st);
                record.borrow_mut().push(((st.span.line, st.span.col), d));
                if matches!(d, Did::Signal(..)) {
                    mmput(k, &child.mm);
                    break;
                }
            }
            forked
                .borrow_mut()
                .push((explore::rt::current_comm(), child.mm.clone()));
            Did::Returned
        }
        None => {
            explore::note!("{}: fork() failed: ENOMEM", task.name);
            Did::Errno("ENOMEM")
        }
    };
    check_outcome(s, stmt, did, 0);
    did
}

/// A call that returned `value`.
fn returned(value: u64) -> (Did, u64) {
    (Did::Returned, value)
}

/// A user access that completed after `faults` page faults.
fn accessed(faults: u32) -> Did {
    if faults == 0 {
        Did::Completed
    } else {
        Did::FixedUp
    }
}

/// A user access that raised `sig`.
fn signalled(sig: Signal) -> Did {
    match sig.siginfo() {
        Some((name, code)) => Did::Signal(name, code),
        // The fault paths retry VM_FAULT_OOM themselves.
        None => Did::Errno("ENOMEM"),
    }
}

/// `stmt => outcome | ...`: the scenario's own assertion on what the
/// statement did; a miss is a finding of the scenario's kind.
fn check_outcome(s: &Scenario, stmt: &Stmt, did: Did, value: u64) {
    if stmt.expect.is_empty() || stmt.expect.iter().any(|e| did.meets(*e, value)) {
        return;
    }
    let want: Vec<String> = stmt.expect.iter().map(ToString::to_string).collect();
    let got = match did {
        Did::Returned
            if stmt
                .expect
                .iter()
                .any(|e| matches!(e, ast::Outcome::Value(_))) =>
        {
            format!("returned {value:#x}")
        }
        Did::Returned => "returned".to_string(),
        Did::Errno(e) => format!("failed with -{e}"),
        Did::Signal(sig, code) => format!("raised {sig} ({code})"),
        other => other.to_string(),
    };
    explore::raise(
        Finding::new(
            FindingKind::Scenario,
            "scenario =>",
            format!(
                "scenario expectation: {} {got}, the scenario expects {}",
                stmt_text(s, stmt),
                want.join(" | ")
            ),
        )
        .detail(format!(
            "{}:{}:{}: {}",
            s.file,
            stmt.span.line,
            stmt.span.col,
            stmt_text(s, stmt)
        )),
    );
}

/// The model's file for a `file` line's name (files are created in
/// declaration order, before any process).
fn file_of(k: &Kernel, s: &Scenario, name: &str) -> Rc<mm::mm_types::AddressSpace> {
    let index = s
        .files
        .iter()
        .position(|f| f.name == name)
        .expect("the checker binds file names to file lines");
    k.files.borrow()[index].clone()
}

/// A call that failed with errno `e`.
fn errno(e: i32) -> Did {
    let name = ast::ERRNOS
        .iter()
        .find(|(_, n)| *n == e)
        .map_or("EUNKNOWN", |(name, _)| name);
    Did::Errno(name)
}

fn advice_value(a: Advice) -> u32 {
    match a {
        Advice::DontNeed => madvise::MADV_DONTNEED,
        Advice::HugePage => madvise::MADV_HUGEPAGE,
        Advice::NoHugePage => madvise::MADV_NOHUGEPAGE,
    }
}

/// `read(..., expect=V)`: the scenario's own assertion on loaded bytes.
fn check_expect(s: &Scenario, stmt: &Stmt, bytes: &[u8], expect: Option<u8>) {
    let Some(want) = expect else { return };
    if let Some(bad) = bytes.iter().find(|&&b| b != want) {
        explore::raise(
            Finding::new(
                FindingKind::Scenario,
                "scenario expect=",
                format!("read returned {bad:#04x}, the scenario expected {want:#04x}"),
            )
            .detail(format!(
                "{}:{}: {}",
                s.file,
                stmt.span.line,
                stmt_text(s, stmt)
            )),
        );
    }
}

impl Run {
    /// Each regular file: its size, page cache and disk blocks.
    fn describe_files(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (decl, file) in self.source.files.iter().zip(self.k.files.borrow().iter()) {
            let cache: Vec<String> = file
                .i_pages
                .peek()
                .iter()
                .map(|(index, page)| {
                    format!(
                        "{index}: pfn {:#x} {}{}{}",
                        page.pfn,
                        page.data.borrow()[0].describe(),
                        if page.dirty.get() { " dirty" } else { "" },
                        if page.lock.is_locked() { " locked" } else { "" }
                    )
                })
                .collect();
            let disk: Vec<String> = file
                .disk
                .borrow()
                .iter()
                .map(|(index, block)| format!("{index}: {}", block.describe()))
                .collect();
            lines.push(format!(
                "file {} ({}): i_size {} truncate_count {}; page cache [{}]; disk [{}]",
                decl.name,
                file.id,
                file.size(),
                file.truncate_count.peek(),
                cache.join(", "),
                disk.join(", ")
            ));
        }
        lines
    }

    /// Each process: rss counters, page-table bytes, VMAs and their PMDs.
    fn describe_mms(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for p in &self.processes {
            let mm = &p.mm;
            // MM_SHMEMPAGES came with v4.5.
            let counters = match self.k.profile.log_style {
                mm::profile::LogStyle::V3_12 => 3,
                mm::profile::LogStyle::V6_1 => RSS_NAMES.len(),
            };
            let rss: Vec<String> = mm
                .rss
                .iter()
                .zip(RSS_NAMES)
                .take(counters)
                .map(|(c, name)| format!("{name}={}", c.get()))
                .collect();
            let exited = if mm.exited.get() { ", exited" } else { "" };
            lines.push(format!(
                "mm:{} (process {}{exited}): {} pgtables_bytes={}",
                mm.pointer(self.k.profile.log_style),
                p.name,
                rss.join(" "),
                mm.pgtables_bytes.get()
            ));
            for vma in &mm.mmap_lock.peek().vmas {
                lines.push(format!("  {}", vma.describe()));
                let mut addr = vma.start() & !(HPAGE_PMD_SIZE - 1);
                while addr < vma.end() {
                    let pmd = mm::pgtable::peek_pmd(&self.k, mm, addr).map(|s| s.peek());
                    let text =
                        pmd.map_or_else(|| "no pmd table".to_string(), |v| self.k.describe_pmd(v));
                    lines.push(format!("    pmd {addr:x}: {text}"));
                    addr += HPAGE_PMD_SIZE;
                }
            }
        }
        lines
    }
}

/// A line of [`Run::describe_mms`] without frame numbers and raw entry
/// values: equivalent schedules may allocate frames in another order.
fn without_pfns(line: &str) -> String {
    let mut out = Vec::new();
    let mut words = line.split(' ');
    while let Some(w) = words.next() {
        if w == "pfn" {
            words.next();
            out.push("pfn _");
        } else if w.starts_with("(0x") {
            out.push("(_)");
        } else {
            out.push(w);
        }
    }
    out.join(" ")
}
