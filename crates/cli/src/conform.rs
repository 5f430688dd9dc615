//! `mmrace conform`: differential conformance of the model's syscall layer
//! against the running Linux kernel (issue 4, host-kernel-oracle.md §8).
//!
//! Random op sequences run on both sides; after every op the observations
//! are compared in levels: L0 (return value or errno, touch outcome and byte,
//! the page-granular mapping view), L1 (residency: none, zero/shared,
//! exclusive) and L2 (exact VMA boundaries). A divergence is shrunk to a
//! minimal sequence that still diverges. Version-dependent merge rules are
//! calibrated from what the host kernel does, never from its version string.

use std::path::Path;
use std::rc::Rc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use explore::rt::{run_execution, ActorSpec, ExecutionConfig, Harness, Instance, Workspace};
use explore::strategy::RandomWalk;
use explore::Finding;
use mm::arch::x86::mm::fault::{user_read, user_write, Signal};
use mm::arch::x86::pgtable::Pte;
use mm::kernel::fork::{dup_mmap, mm_alloc};
use mm::madvise::{do_madvise, MADV_DONTNEED};
use mm::mm_types::{AddressSpace, Backing, FolioKind, Kernel, Machine, Task, Thp};
use mm::mmap::{
    do_mmap, do_mmap_file, do_mprotect, do_munmap, exit_mmap, MAP_ANONYMOUS, MAP_FIXED,
    MAP_FIXED_NOREPLACE, MAP_NORESERVE, MAP_PRIVATE, MAP_SHARED,
};
use mm::mremap::do_mremap;
use mm::pgtable::{peek_pmd, pte_offset};
use mm::shmem::{shmem_file_read, shmem_file_write, shmem_setattr_size};
use mm::Profile;
use oracle::client::Oracle;
use oracle::ops::Request;
use oracle::ops::{fnv1a, page_view, uses_file, FileView, ProcView, VmaView, FILE_PAGES};
use oracle::{Obs, Op, Prot, SequenceResult, Touch, PAGE, WINDOW_BASE, WINDOW_PAGES};

use crate::CliError;

/// Full observations every this many ops on the fast path (and after the
/// last op); a divergence is then replayed with every op observed.
pub const FAST_EVERY: u64 = 16;

/// The profile the model runs conformance under, before calibration.
pub const CONFORM_PROFILE: &str = "linux-6.18";

/// What `conform` runs.
#[derive(Clone, Debug)]
pub struct ConformOptions {
    pub seed: u64,
    pub sequences: u64,
    pub ops: u64,
    /// Also generate memfd mappings, ftruncate, pwrite and pread.
    pub files: bool,
    /// Knob overrides applied after calibration (to break a rule on purpose).
    pub knobs: Vec<(String, String)>,
    /// The `mmrace` binary that serves as the oracle (`oracle-server`).
    pub program: std::path::PathBuf,
}

/// The first divergence found, shrunk.
#[derive(Clone, Debug)]
pub struct Divergence {
    /// Index of the generated sequence that diverged.
    pub sequence: u64,
    /// Its length and the op that diverged first, before shrinking.
    pub original_len: usize,
    pub original_op: usize,
    /// The shrunk sequence and its first divergent op and level.
    pub ops: Vec<Op>,
    pub op: usize,
    pub level: String,
    pub model: Obs,
    pub host: Obs,
}

/// What a conformance run did.
pub struct ConformReport {
    pub knobs: Vec<(String, String)>,
    /// L2 is compared only when calibration recognised the host's rules.
    pub l2: bool,
    pub calibration_note: Option<String>,
    pub sequences: u64,
    pub ops: u64,
    pub elapsed: Duration,
    /// Time spent in the host oracle and in the model.
    pub host_time: Duration,
    pub model_time: Duration,
    pub divergence: Option<Divergence>,
}

impl ConformReport {
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

// ---------------------------------------------------------------------------
// Generator

/// The explorer's seeded generator (SplitMix64), drawing sequences.
struct Rng(explore::strategy::Rng);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0.next_u64() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn prot(&mut self) -> Prot {
        [Prot::None, Prot::Read, Prot::ReadWrite][self.below(3) as usize]
    }
}

/// An mremap staying inside the window: in place (shrink or expand), or a
/// fixed move (MAYMOVE|FIXED, sometimes DONTUNMAP, sometimes resizing).
/// Never MAYMOVE alone, which would let the kernel place the mapping
/// outside the window.
fn mremap(rng: &mut Rng, pg: u64) -> Op {
    let room = WINDOW_PAGES - pg;
    let old_n = 1 + rng.below(room.min(8));
    let new_n = 1 + rng.below(room.min(8));
    // Mostly valid combinations; now and then an invalid one (FIXED or
    // DONTUNMAP without MAYMOVE: EINVAL).
    let flags = match rng.below(20) {
        0..=4 => 0,
        5..=11 => 3,
        12..=17 => 7,
        18 => 2,
        _ => 4,
    };
    let new_n = if flags == 7 && rng.chance(90) {
        old_n
    } else {
        new_n
    };
    let new_pg = rng.below(WINDOW_PAGES - new_n.max(old_n) + 1);
    let new_n = if flags == 0 { new_n.min(room) } else { new_n };
    Op::Mremap {
        pg,
        old_n,
        new_n,
        flags,
        new_pg,
    }
}

/// Now and then a fork, a switch between the two processes, or the
/// child's exit.
fn process_op(rng: &mut Rng, forked: &mut bool) -> Option<Op> {
    if !*forked {
        if rng.chance(2) {
            *forked = true;
            return Some(Op::Fork);
        }
        return None;
    }
    match rng.below(100) {
        0..=4 => Some(Op::Switch {
            pid: rng.below(2) as u8,
        }),
        5 => {
            *forked = false;
            Some(Op::Exit)
        }
        _ => None,
    }
}

/// A memfd op: a shared or private mapping of it, a truncation (sometimes
/// to a partial page), or a pwrite/pread, all within [`FILE_PAGES`].
fn file_op(rng: &mut Rng, pg: u64, n: u64) -> Op {
    match rng.below(10) {
        0..=4 => Op::MmapFile {
            pg,
            n,
            prot: rng.prot(),
            shared: rng.chance(50),
            file_pg: rng.below(FILE_PAGES),
        },
        5..=6 => {
            let pages = rng.below(FILE_PAGES + 1);
            let partial = if rng.chance(30) { rng.below(PAGE) } else { 0 };
            Op::Ftruncate {
                len: (pages * PAGE + partial).min(FILE_PAGES * PAGE),
            }
        }
        7..=8 => {
            let off = rng.below(FILE_PAGES * PAGE);
            Op::Pwrite {
                off,
                len: (1 + rng.below(2 * PAGE)).min(FILE_PAGES * PAGE - off),
                value: (rng.below(255) + 1) as u8,
            }
        }
        _ => Op::Pread {
            off: rng.below(FILE_PAGES * PAGE),
        },
    }
}

/// Sequence `index` of seed `seed`: the whole window mapped RW first, then
/// `len - 1` random ops, some with invalid arguments (a zero length).
pub fn generate(seed: u64, index: u64, len: u64, files: bool) -> Vec<Op> {
    let mut rng = Rng(explore::strategy::Rng::new(
        seed ^ index.wrapping_mul(0xd1b5_4a32_d192_ed03),
    ));
    let mut ops = vec![Op::Mmap {
        pg: 0,
        n: WINDOW_PAGES,
        prot: Prot::ReadWrite,
        noreserve: false,
        noreplace: false,
    }];
    let mut forked = false;
    for i in 1..len {
        if let Some(op) = process_op(&mut rng, &mut forked) {
            ops.push(op);
            continue;
        }
        let pg = rng.below(WINDOW_PAGES);
        let room = WINDOW_PAGES - pg;
        let n = if rng.chance(3) {
            0
        } else {
            1 + rng.below(room.min(8))
        };
        if files && rng.chance(25) {
            ops.push(file_op(&mut rng, pg, n));
            continue;
        }
        let op = match rng.below(100) {
            0..=14 => Op::Mmap {
                pg,
                n,
                prot: rng.prot(),
                noreserve: rng.chance(10),
                noreplace: rng.chance(10),
            },
            15..=24 => Op::Munmap { pg, n },
            25..=49 => Op::Mprotect {
                pg,
                n,
                prot: rng.prot(),
            },
            50..=59 => Op::Dontneed { pg, n },
            60..=69 => mremap(&mut rng, pg),
            _ => Op::Touch {
                pg,
                off: rng.below(PAGE),
                value: rng.chance(50).then_some((i as u8) | 1),
            },
        };
        ops.push(op);
    }
    ops
}

// ---------------------------------------------------------------------------
// The model side

/// Runs `ops` on the model (as the sequential setup of one execution, so a
/// kernel finding of the model is caught and reported) and observes it.
pub fn run_model(profile: &Profile, ops: &[Op], every: u64) -> Result<Vec<Obs>, String> {
    let (finding, (obs, invariant)) = execute_model(profile, ops, every)?;
    if let Some(f) = finding {
        return Err(format!("the model raised: {}", f.title));
    }
    match invariant {
        Some((op, title)) => Err(format!("after op {op}: {title}")),
        None => Ok(obs),
    }
}

/// What the model side of a sequence gave: observations, or the first op
/// after which one of the model's own checkers failed.
type ModelOut = (Vec<Obs>, Option<(usize, String)>);

/// Runs `ops` on the model, checking the model's invariants at every full
/// observation; a violation ends the run at that op.
fn run_model_checked(profile: &Profile, ops: &[Op], every: u64) -> Result<ModelOut, String> {
    let (finding, (obs, mut invariant)) = execute_model(profile, ops, every)?;
    if let (Some(f), None) = (finding, &invariant) {
        invariant = Some((obs.len().saturating_sub(1), f.title));
    }
    Ok((obs, invariant))
}

/// One execution of `ops` on the model: the kernel finding it raised, if
/// any, and what the harness observed.
fn execute_model(
    profile: &Profile,
    ops: &[Op],
    every: u64,
) -> Result<(Option<explore::Finding>, ModelOut), String> {
    let h = ModelRun {
        profile: profile.clone(),
        req: Request {
            ops: ops.to_vec(),
            every,
        },
        out: Mutex::new((Vec::new(), None)),
    };
    // The harness builds the model in start(); the Mutex hands the
    // observations back.
    let config = ExecutionConfig {
        steps_max: 1 << 20,
        tracing: false,
        track_conflicts: false,
        racy: &[],
    };
    let r = run_execution(
        &h,
        &mut RandomWalk::new(0),
        config,
        &mut Workspace::default(),
    )
    .map_err(|e| e.to_string())?;
    let out = std::mem::take(&mut *h.out.lock().unwrap());
    Ok((r.finding, out))
}

struct ModelRun {
    profile: Profile,
    req: Request,
    out: Mutex<ModelOut>,
}

impl Harness for ModelRun {
    fn start(&self) -> Box<dyn Instance> {
        let machine = Machine {
            nodes: 1,
            thp: Thp::Never,
            thp_use_zero_page: true,
        };
        let k = Kernel::new(self.profile.clone(), machine);
        let Some(mm) = mm_alloc(&k) else {
            explore::unsupported("no memory for the conformance process")
        };
        let task = Task {
            name: "conform".into(),
            node: 0,
            mm,
        };
        let ops = &self.req.ops;
        let file = uses_file(ops).then(|| Rc::new(AddressSpace::new(k.next_id(), Backing::Shmem)));
        let mut procs = Procs {
            tasks: vec![task],
            current: 0,
        };
        let mut obs = Vec::new();
        let mut invariant = None;
        for (i, op) in ops.iter().enumerate() {
            let full = self.req.full_at(i, ops.len());
            obs.push(procs.run(&k, file.as_ref(), op, full));
            if let Some(f) = full.then(|| mm::checkers::check_all(&k)).flatten() {
                invariant = Some((i, f.title));
                break;
            }
        }
        if invariant.is_none() {
            procs.exit_child(&k);
        }
        *self.out.lock().unwrap() = (obs, invariant);
        Box::new(ModelDone(k))
    }
}

struct ModelDone(Kernel);

impl Instance for ModelDone {
    fn actors(&mut self) -> Vec<ActorSpec> {
        Vec::new()
    }

    fn check(&self) -> Option<Finding> {
        mm::checkers::check_all(&self.0)
    }
}

/// The model's processes: process 0, and process 1 after a fork.
struct Procs {
    tasks: Vec<Task>,
    current: usize,
}

impl Procs {
    fn run(&mut self, k: &Kernel, file: Option<&Rc<AddressSpace>>, op: &Op, full: bool) -> Obs {
        let (ret, touch) = match op {
            Op::Fork => (self.fork(k), None),
            Op::Switch { pid } => (self.switch(*pid), None),
            Op::Exit => (self.exit_child(k), None),
            _ => model_op(k, &self.tasks[self.current], file, op),
        };
        if !full {
            return Obs::result_only(ret, touch);
        }
        let child = self.tasks.get(1).map(|t| ProcView {
            vmas: model_vmas(t),
            pages: model_pages(k, t),
        });
        Obs {
            ret,
            touch,
            vmas: model_vmas(&self.tasks[0]),
            pages: model_pages(k, &self.tasks[0]),
            file: file.map(|f| file_view(f)),
            child,
        }
    }

    fn fork(&mut self, k: &Kernel) -> i64 {
        if self.tasks.len() > 1 {
            return 1;
        }
        match dup_mmap(k, &self.tasks[0], "child") {
            Some(child) => {
                self.tasks.push(child);
                0
            }
            None => -12,
        }
    }

    fn switch(&mut self, pid: u8) -> i64 {
        if usize::from(pid) >= self.tasks.len() {
            return -oracle::ops::ESRCH;
        }
        self.current = usize::from(pid);
        0
    }

    fn exit_child(&mut self, k: &Kernel) -> i64 {
        let Some(child) = self.tasks.get(1).cloned() else {
            return -oracle::ops::ESRCH;
        };
        exit_mmap(k, &child.mm);
        self.tasks.truncate(1);
        self.current = 0;
        0
    }
}

fn at(pg: u64) -> u64 {
    WINDOW_BASE + pg * PAGE
}

fn status(r: Result<(), i32>) -> i64 {
    r.map_or_else(|e| -i64::from(e), |()| 0)
}

/// Runs one memory op on `task`; returns the return value and touch.
fn model_op(
    k: &Kernel,
    task: &Task,
    file: Option<&Rc<AddressSpace>>,
    op: &Op,
) -> (i64, Option<Touch>) {
    match *op {
        Op::MmapFile {
            pg,
            n,
            prot,
            shared,
            file_pg,
        } => {
            let f = file.expect("file ops have a file");
            let kind = if shared { MAP_SHARED } else { MAP_PRIVATE };
            let r = do_mmap_file(
                k,
                task,
                at(pg),
                n * PAGE,
                prot.bits() as u32,
                kind | MAP_FIXED,
                f,
                file_pg,
            );
            let ret = r.map_or_else(|e| -i64::from(e), |a| a.wrapping_sub(WINDOW_BASE) as i64);
            (ret, None)
        }
        Op::Ftruncate { len } => {
            shmem_setattr_size(k, file.expect("file ops have a file"), len);
            (0, None)
        }
        Op::Pwrite { off, len, value } => {
            let f = file.expect("file ops have a file");
            (shmem_file_write(k, f, off, len, value) as i64, None)
        }
        Op::Pread { off } => match shmem_file_read(file.expect("file ops have a file"), off) {
            Some(b) => (1, Some(Touch::Ok(b))),
            None => (0, None),
        },
        Op::Mmap {
            pg,
            n,
            prot,
            noreserve,
            noreplace,
        } => {
            let mut flags = MAP_PRIVATE | MAP_ANONYMOUS;
            flags |= if noreplace {
                MAP_FIXED_NOREPLACE
            } else {
                MAP_FIXED
            };
            if noreserve {
                flags |= MAP_NORESERVE;
            }
            let r = do_mmap(k, task, at(pg), n * PAGE, prot.bits() as u32, flags, 0);
            let ret = r.map_or_else(|e| -i64::from(e), |a| a.wrapping_sub(WINDOW_BASE) as i64);
            (ret, None)
        }
        Op::Munmap { pg, n } => (status(do_munmap(k, task, at(pg), n * PAGE)), None),
        Op::Mprotect { pg, n, prot } => (
            status(do_mprotect(k, task, at(pg), n * PAGE, prot.bits() as u32)),
            None,
        ),
        Op::Dontneed { pg, n } => (
            status(do_madvise(k, task, at(pg), n * PAGE, MADV_DONTNEED)),
            None,
        ),
        Op::Mremap {
            pg,
            old_n,
            new_n,
            flags,
            new_pg,
        } => {
            let r = do_mremap(
                k,
                task,
                at(pg),
                old_n * PAGE,
                new_n * PAGE,
                flags,
                at(new_pg),
            );
            let ret = r.map_or_else(|e| -i64::from(e), |a| a.wrapping_sub(WINDOW_BASE) as i64);
            (ret, None)
        }
        Op::Touch { pg, off, value } => {
            let addr = at(pg) + off;
            let r = match value {
                None => user_read(k, task, addr, 0, 1).map(|b| b[0]),
                Some(v) => user_write(k, task, addr, 0, 1, v).map(|()| v),
            };
            let touch = match r {
                Ok(b) => Touch::Ok(b),
                Err(Signal::SegvMapErr) => Touch::SegvMapErr,
                Err(Signal::Bus) => Touch::BusAdrErr,
                Err(_) => Touch::SegvAccErr,
            };
            (0, Some(touch))
        }
        Op::Fork | Op::Switch { .. } | Op::Exit => unreachable!("handled by Procs::run"),
    }
}

/// The file's size and page hashes up to EOF, from the page cache.
fn file_view(file: &AddressSpace) -> FileView {
    let size = file.size();
    let pages = file.i_pages.peek();
    let hashes = (0..size.div_ceil(PAGE))
        .map(|i| {
            let len = (size - i * PAGE).min(PAGE) as usize;
            let mut bytes = vec![0u8; len];
            if let Some(f) = pages.get(&i) {
                let data = f.data.borrow();
                bytes.fill(data[0].fill);
                for (&off, &b) in data[0].bytes.range(..len as u16) {
                    bytes[off as usize] = b;
                }
            }
            fnv1a(&bytes)
        })
        .collect();
    FileView {
        size,
        pages: hashes,
    }
}

/// The model's VMAs in the window, as /proc/self/maps would show them.
fn model_vmas(task: &Task) -> Vec<VmaView> {
    let (lo, hi) = (WINDOW_BASE, WINDOW_BASE + WINDOW_PAGES * PAGE);
    let mmap = task.mm.mmap_lock.peek();
    mmap.vmas
        .iter()
        .filter(|v| v.end() > lo && v.start() < hi)
        .map(|v| VmaView {
            start: (v.start().max(lo) - lo) / PAGE,
            end: (v.end().min(hi) - lo) / PAGE,
            perms: v.perms(),
        })
        .collect()
}

/// The model's residency of each window page, as pagemap would show it.
fn model_pages(k: &Kernel, task: &Task) -> String {
    (0..WINDOW_PAGES)
        .map(|pg| {
            let addr = at(pg);
            let Some(pmd) = peek_pmd(k, &task.mm, addr) else {
                return '.';
            };
            let Some(slot) = pte_offset(k, pmd.peek(), addr) else {
                return '.';
            };
            let pte = Pte(slot.peek());
            if pte.0 == 0 || !k.pte_present(pte) {
                return '.';
            }
            match k.mem.pfn_folio(k.pte_pfn(pte)) {
                Some(f) if f.kind.get() == FolioKind::Shmem => 'f',
                Some(f) if f.kind.get() == FolioKind::Anon && f.mapcount.peek() == 1 => 'X',
                Some(f) if f.kind.get() == FolioKind::Anon => 's',
                _ => 'z',
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Comparison and shrinking

/// The first op whose observations differ, and at which level.
pub fn compare(model: &[Obs], host: &[Obs], l2: bool) -> Option<(usize, &'static str)> {
    model.iter().zip(host).enumerate().find_map(|(i, (m, h))| {
        let level = if m.ret != h.ret {
            "L0 return value"
        } else if m.touch != h.touch {
            "L0 touch outcome"
        } else if page_view(&m.vmas, WINDOW_PAGES) != page_view(&h.vmas, WINDOW_PAGES) {
            "L0 mapping view"
        } else if m.file != h.file {
            "L0 file contents"
        } else if m.child.as_ref().map(|c| page_view(&c.vmas, WINDOW_PAGES))
            != h.child.as_ref().map(|c| page_view(&c.vmas, WINDOW_PAGES))
        {
            "L0 mapping view (process 1)"
        } else if m.child.as_ref().map(|c| &c.pages) != h.child.as_ref().map(|c| &c.pages) {
            "L1 residency (process 1)"
        } else if m.pages != h.pages {
            "L1 residency"
        } else if l2 && m.vmas != h.vmas {
            "L2 VMA boundaries"
        } else if l2 && m.child.as_ref().map(|c| &c.vmas) != h.child.as_ref().map(|c| &c.vmas) {
            "L2 VMA boundaries (process 1)"
        } else {
            return None;
        };
        Some((i, level))
    })
}

/// Both sides of one sequence, and the time each took.
struct Sides {
    model: Vec<Obs>,
    host: Vec<Obs>,
    /// The op after which the model's own checkers failed.
    invariant: Option<(usize, String)>,
    host_time: Duration,
    model_time: Duration,
}

impl Sides {
    /// The first op where the sides differ (or the model broke its own
    /// invariants), and how.
    fn differ(&self, l2: bool) -> Option<(usize, String)> {
        let observed = compare(&self.model, &self.host, l2).map(|(i, l)| (i, l.to_string()));
        let broken = self
            .invariant
            .as_ref()
            .map(|(i, t)| (*i, format!("model invariant: {t}")));
        match (observed, broken) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        }
    }
}

fn run_both(
    oracle: &mut Oracle,
    profile: &Profile,
    ops: &[Op],
    every: u64,
) -> Result<Sides, CliError> {
    let t0 = Instant::now();
    let host = match oracle
        .run_observing(ops, every)
        .map_err(|e| CliError::Usage(format!("oracle: {e}")))?
    {
        SequenceResult::Ran(obs) => obs,
        SequenceResult::SetupFailed(why) => {
            return Err(CliError::Usage(format!(
                "the host kernel oracle could not run a sequence: {why}"
            )))
        }
    };
    let t1 = Instant::now();
    let (model, invariant) = run_model_checked(profile, ops, every).map_err(CliError::Internal)?;
    Ok(Sides {
        model,
        host,
        invariant,
        host_time: t1 - t0,
        model_time: t1.elapsed(),
    })
}

/// Removes chunks of ops while the sequence still diverges (ddmin on the
/// op list). The oracle is deterministic, so every step replays exactly.
fn shrink(
    oracle: &mut Oracle,
    profile: &Profile,
    ops: Vec<Op>,
    l2: bool,
) -> Result<Vec<Op>, CliError> {
    let mut cur = ops;
    let mut chunk = cur.len().div_ceil(2);
    while chunk >= 1 {
        let mut i = 0;
        let mut progressed = false;
        while i < cur.len() {
            let mut candidate = cur.clone();
            candidate.drain(i..(i + chunk).min(cur.len()));
            let sides = run_both(oracle, profile, &candidate, 1)?;
            if !candidate.is_empty() && sides.differ(l2).is_some() {
                cur = candidate;
                progressed = true;
            } else {
                i += chunk;
            }
        }
        if !progressed {
            chunk /= 2;
        }
    }
    Ok(cur)
}

// ---------------------------------------------------------------------------
// Calibration

/// A probe: ops, the last op's outcome (return value and VMA layout) if
/// the newer rule holds and if the older one holds, and the knob it decides.
struct Probe {
    knob: &'static str,
    ops: Vec<Op>,
    newer: (i64, Vec<(u64, u64)>),
    older: (i64, Vec<(u64, u64)>),
}

fn probes() -> Vec<Probe> {
    let mmap = |pg, n, prot, noreserve| Op::Mmap {
        pg,
        n,
        prot,
        noreserve,
        noreplace: false,
    };
    vec![
        // S3: an unfaulted RW mapping made read-only next to a new read-only
        // one merges only if mprotect dropped VM_ACCOUNT (6.7+).
        Probe {
            knob: "unaccount_unfaulted_on_mprotect",
            ops: vec![
                mmap(0, 2, Prot::ReadWrite, false),
                Op::Mprotect {
                    pg: 0,
                    n: 2,
                    prot: Prot::Read,
                },
                mmap(2, 2, Prot::Read, false),
            ],
            newer: ((2 * PAGE) as i64, vec![(0, 4)]),
            older: ((2 * PAGE) as i64, vec![(0, 2), (2, 4)]),
        },
        // S2 (selftest mprotect_unfaulted_left): a faulted range made
        // read-only next to an unfaulted read-only one merges on 6.16+.
        Probe {
            knob: "anon_merge_faulted_unfaulted",
            ops: vec![
                mmap(1, 10, Prot::ReadWrite, true),
                Op::Mprotect {
                    pg: 1,
                    n: 5,
                    prot: Prot::Read,
                },
                Op::Touch {
                    pg: 6,
                    off: 0,
                    value: Some(0x78),
                },
                Op::Mprotect {
                    pg: 6,
                    n: 5,
                    prot: Prot::Read,
                },
            ],
            newer: (0, vec![(1, 11)]),
            older: (0, vec![(1, 6), (6, 11)]),
        },
        // S7: an in-place expansion up to a compatible next VMA merges
        // with it from ca3d76b0aa80 (6.1).
        Probe {
            knob: "mremap_expand_merge",
            ops: vec![
                mmap(0, 2, Prot::ReadWrite, false),
                mmap(4, 2, Prot::ReadWrite, false),
                Op::Mremap {
                    pg: 0,
                    old_n: 2,
                    new_n: 4,
                    flags: 0,
                    new_pg: 0,
                },
            ],
            newer: (0, vec![(0, 6)]),
            older: (0, vec![(0, 4), (4, 6)]),
        },
        // S11: a fixed move of a range spanning two VMAs (6.17+; before,
        // EFAULT with nothing moved).
        Probe {
            knob: "mremap_multi_vma_move",
            ops: vec![
                mmap(0, 2, Prot::ReadWrite, false),
                mmap(2, 2, Prot::Read, false),
                Op::Mremap {
                    pg: 0,
                    old_n: 4,
                    new_n: 4,
                    flags: 3,
                    new_pg: 10,
                },
            ],
            newer: ((10 * PAGE) as i64, vec![(10, 12), (12, 14)]),
            older: (-14, vec![(0, 2), (2, 4)]),
        },
    ]
}

/// Knob values the host follows, and why L2 is off if it is.
type Calibration = (Vec<(String, String)>, Option<String>);

/// Runs the probes on the host; returns the knob values it follows, and a
/// note if some probe matched neither known behaviour (L2 is then off).
fn calibrate(oracle: &mut Oracle) -> Result<Calibration, CliError> {
    let mut knobs = Vec::new();
    let mut note = None;
    for p in probes() {
        let SequenceResult::Ran(obs) = oracle
            .run(&p.ops)
            .map_err(|e| CliError::Usage(format!("oracle: {e}")))?
        else {
            return Err(CliError::Usage("calibration probe could not run".into()));
        };
        let layout: (i64, Vec<(u64, u64)>) = obs.last().map_or((0, Vec::new()), |o| {
            (o.ret, o.vmas.iter().map(|v| (v.start, v.end)).collect())
        });
        let value = if layout == p.newer {
            "on"
        } else if layout == p.older {
            "off"
        } else {
            note = Some(format!(
                "calibration probe for {} gave {layout:?}, matching no known kernel: \
                 VMA boundaries (L2) are not compared",
                p.knob
            ));
            continue;
        };
        knobs.push((p.knob.to_string(), value.to_string()));
    }
    Ok((knobs, note))
}

// ---------------------------------------------------------------------------
// The command

/// Whether this machine can serve as the oracle at all.
pub fn host_supported() -> Result<(), String> {
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        return Err("the host-kernel oracle needs Linux on x86-64".into());
    }
    if !Path::new("/proc/self/pagemap").exists() {
        return Err("/proc/self/pagemap is missing".into());
    }
    Ok(())
}

/// `mmrace conform`.
pub fn conform(opts: &ConformOptions) -> Result<ConformReport, CliError> {
    if opts.sequences == 0 || opts.ops == 0 {
        return Err(CliError::Usage(
            "--sequences and --ops must be at least 1".into(),
        ));
    }
    host_supported().map_err(CliError::Usage)?;
    let start = Instant::now();
    let mut oracle = Oracle::spawn(&opts.program)
        .map_err(|e| CliError::Usage(format!("cannot start the oracle server: {e}")))?;
    let (mut knobs, note) = calibrate(&mut oracle)?;
    for (name, value) in &opts.knobs {
        knobs.retain(|(k, _)| k != name);
        knobs.push((name.clone(), value.clone()));
    }
    let profile = mm::profile(CONFORM_PROFILE)
        .and_then(|p| p.with_overrides(&knobs))
        .map_err(CliError::Usage)?;
    let l2 = note.is_none();
    let mut report = ConformReport {
        knobs,
        l2,
        calibration_note: note,
        sequences: 0,
        ops: 0,
        elapsed: Duration::ZERO,
        host_time: Duration::ZERO,
        model_time: Duration::ZERO,
        divergence: None,
    };
    for index in 0..opts.sequences {
        let ops = generate(opts.seed, index, opts.ops, opts.files);
        let sides = run_both(&mut oracle, &profile, &ops, FAST_EVERY)?;
        report.sequences += 1;
        report.ops += ops.len() as u64;
        report.host_time += sides.host_time;
        report.model_time += sides.model_time;
        if sides.differ(l2).is_some() {
            report.divergence = Some(minimise(&mut oracle, &profile, index, ops, l2)?);
            break;
        }
    }
    report.elapsed = start.elapsed();
    Ok(report)
}

fn minimise(
    oracle: &mut Oracle,
    profile: &Profile,
    sequence: u64,
    ops: Vec<Op>,
    l2: bool,
) -> Result<Divergence, CliError> {
    let original_len = ops.len();
    // Observe every op to find the first one that diverges.
    let sides = run_both(oracle, profile, &ops, 1)?;
    let (first, _) = sides
        .differ(l2)
        .ok_or_else(|| CliError::Internal("a divergence vanished when observed fully".into()))?;
    let prefix = ops[..=first].to_vec();
    let ops = shrink(oracle, profile, prefix, l2)?;
    let sides = run_both(oracle, profile, &ops, 1)?;
    let (op, level) = sides
        .differ(l2)
        .ok_or_else(|| CliError::Internal("a shrunk sequence stopped diverging".into()))?;
    Ok(Divergence {
        sequence,
        original_len,
        original_op: first,
        model: sides.model[op].clone(),
        host: sides.host[op].clone(),
        ops,
        op,
        level,
    })
}

/// Text for one observation.
pub fn describe_obs(o: &Obs) -> String {
    let vmas: Vec<String> = o
        .vmas
        .iter()
        .map(|v| format!("[{}-{} {}]", v.start, v.end, v.perms))
        .collect();
    let touch = o.touch.map_or(String::new(), |t| format!(" touch={t:?}"));
    let mut text = format!(
        "ret={}{touch} vmas={} pages={}",
        o.ret,
        vmas.join(""),
        o.pages
    );
    if let Some(c) = &o.child {
        let vmas: Vec<String> = c
            .vmas
            .iter()
            .map(|v| format!("[{}-{} {}]", v.start, v.end, v.perms))
            .collect();
        text.push_str(&format!(
            "\n       process 1: vmas={} pages={}",
            vmas.join(""),
            c.pages
        ));
    }
    if let Some(f) = &o.file {
        text.push_str(&format!(
            "\n       file: size={:#x} pages={:x?}",
            f.size, f.pages
        ));
    }
    text
}
