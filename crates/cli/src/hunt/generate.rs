//! Scenario generation for `mmrace hunt`: random but valid programs over
//! the scenario language's vocabulary, with swarm testing (each scenario
//! draws its own subset of the allowed statements and machine settings)
//! and mostly in-range addresses.
//!
//! A [`Draft`] keeps the statements as text in their blocks, so the
//! minimiser can drop any of them and render the rest; whether what is
//! left still parses is the scenario checker's question, not ours.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use explore::strategy::{execution_seed, Rng};
use scenario::interp::Capabilities;

/// The statements a hunt may generate (`--ops`), by their scenario names.
pub const VOCABULARY: &[&str] = &[
    "mmap",
    "munmap",
    "mprotect",
    "madvise",
    "write",
    "read",
    "numa_scan",
    "reclaim",
    "hibernate",
    "fork",
    "exit",
    "pwrite",
    "pread",
    "ftruncate",
    "remap_file_pages",
    "msync",
];

/// The statements that need a file.
const FILE_OPS: &[&str] = &["pwrite", "pread", "ftruncate", "remap_file_pages", "msync"];

/// What generation may use: the vocabulary, the ranges, what the profile
/// can run, and a fixed machine line if the user gave one.
#[derive(Clone, Debug)]
pub struct GenOptions {
    pub ops: BTreeSet<&'static str>,
    pub threads: (u32, u32),
    pub processes: (u32, u32),
    pub machine: Option<String>,
    pub can: Capabilities,
}

impl GenOptions {
    /// The statements this profile can run out of `wanted`.
    pub fn new(
        wanted: &BTreeSet<&'static str>,
        can: Capabilities,
        threads: (u32, u32),
        processes: (u32, u32),
        machine: Option<String>,
    ) -> GenOptions {
        let ops = wanted
            .iter()
            .copied()
            .filter(|op| runnable(op, can))
            .collect();
        GenOptions {
            ops,
            threads,
            processes,
            machine,
            can,
        }
    }
}

/// Whether the model runs `op` under a profile that can do `can`.
fn runnable(op: &str, can: Capabilities) -> bool {
    match op {
        "reclaim" | "hibernate" => can.swap,
        "numa_scan" => can.numa_balancing,
        "fork" => can.fork,
        op if FILE_OPS.contains(&op) => can.files,
        _ => true,
    }
}

/// A generated scenario, block by block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    /// The `machine` line's settings (`numa-nodes=2 thp=always`).
    pub machine: String,
    /// `file` lines.
    pub files: Vec<String>,
    pub processes: Vec<DraftProcess>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DraftProcess {
    pub name: String,
    pub setup: Vec<String>,
    pub threads: Vec<DraftThread>,
    /// `child` blocks of the processes this one forks.
    pub children: Vec<DraftProcess>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DraftThread {
    pub name: String,
    pub node: u32,
    pub stmts: Vec<String>,
}

impl Draft {
    /// The scenario file: a header of comment lines, then `scenario`,
    /// `machine`, `budget`, the `expect` lines, files and processes.
    pub fn render(&self, header: &[String], name: &str, budget: u64, expects: &[String]) -> String {
        let mut out = String::new();
        for line in header {
            let _ = writeln!(out, "# {line}");
        }
        let _ = writeln!(out, "scenario \"{name}\"");
        let _ = writeln!(out, "machine {}", self.machine);
        let _ = writeln!(out, "budget {budget}");
        for e in expects {
            let _ = writeln!(out, "{e}");
        }
        for f in &self.files {
            let _ = writeln!(out, "{f}");
        }
        for p in &self.processes {
            out.push('\n');
            render_process(&mut out, p, "process", 0);
        }
        out
    }

    /// A hand-written scenario as a draft (for `mmrace shrink`): its
    /// machine line, files, and each block's statements as written.
    pub fn from_scenario(s: &scenario::Scenario) -> Draft {
        fn process(s: &scenario::Scenario, p: &scenario::Process) -> DraftProcess {
            DraftProcess {
                name: p.name.clone(),
                setup: p.setup.iter().map(|st| s.stmt_text(st)).collect(),
                threads: p
                    .threads
                    .iter()
                    .map(|t| DraftThread {
                        name: t.name.clone(),
                        node: t.node,
                        stmts: t.body.iter().map(|st| s.stmt_text(st)).collect(),
                    })
                    .collect(),
                children: p.children.iter().map(|c| process(s, c)).collect(),
            }
        }
        Draft {
            machine: s.machine_line(),
            files: s
                .files
                .iter()
                .map(|f| format!("file {} size={} fill={:#04x}", f.name, f.size, f.fill))
                .collect(),
            processes: s.processes.iter().map(|p| process(s, p)).collect(),
        }
    }

    /// Threads and statements in the whole scenario (setups included).
    pub fn size(&self) -> (usize, usize) {
        fn count(p: &DraftProcess) -> (usize, usize) {
            let own = (
                p.threads.len(),
                p.setup.len() + p.threads.iter().map(|t| t.stmts.len()).sum::<usize>(),
            );
            p.children
                .iter()
                .map(count)
                .fold(own, |a, b| (a.0 + b.0, a.1 + b.1))
        }
        self.processes
            .iter()
            .map(count)
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    }

    /// Threads in the whole scenario.
    pub fn thread_count(&self) -> usize {
        fn count(p: &DraftProcess) -> usize {
            p.threads.len() + p.children.iter().map(count).sum::<usize>()
        }
        self.processes.iter().map(count).sum()
    }
}

fn render_process(out: &mut String, p: &DraftProcess, keyword: &str, depth: usize) {
    let pad = "  ".repeat(depth);
    let _ = writeln!(out, "{pad}{keyword} {} {{", p.name);
    if !p.setup.is_empty() {
        let _ = writeln!(out, "{pad}  setup {{");
        for s in &p.setup {
            let _ = writeln!(out, "{pad}    {s}");
        }
        let _ = writeln!(out, "{pad}  }}");
    }
    for t in &p.threads {
        let _ = writeln!(
            out,
            "{pad}  thread {} node={} {{ {} }}",
            t.name,
            t.node,
            t.stmts.join("; ")
        );
    }
    for c in &p.children {
        render_process(out, c, "child", depth + 1);
    }
    let _ = writeln!(out, "{pad}}}");
}

/// A mapping a process's setup made: what statements can aim at.
#[derive(Clone, Debug)]
struct Mapping {
    var: String,
    pages: u64,
    /// A `MAP_SHARED` mapping of the file (remap_file_pages needs one).
    shared_file: bool,
}

/// Scenario `index` of a hunt seeded with `seed`: the same pair always
/// gives the same draft.
pub fn generate(seed: u64, index: u64, opts: &GenOptions) -> Draft {
    let mut g = Gen {
        rng: Rng::new(execution_seed(seed, index)),
        opts,
        ops: Vec::new(),
        numa: 1,
        thp: "never",
        file_pages: 0,
        forks: 0,
    };
    g.swarm();
    let machine = g.machine();
    let files = g.files();
    let processes = g.processes();
    Draft {
        machine,
        files,
        processes,
    }
}

struct Gen<'a> {
    rng: Rng,
    opts: &'a GenOptions,
    /// This scenario's swarm: the statements it may use.
    ops: Vec<&'static str>,
    numa: u32,
    thp: &'static str,
    /// Pages of the file `f`, 0 when the scenario has none.
    file_pages: u64,
    forks: u32,
}

impl Gen<'_> {
    fn chance(&mut self, percent: u64) -> bool {
        self.rng.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.below(items.len() as u64) as usize]
    }

    fn in_range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + self.rng.below(u64::from(hi - lo) + 1) as u32
    }

    fn has(&self, op: &str) -> bool {
        self.ops.contains(&op)
    }

    /// Swarm testing: each allowed statement is in this scenario's subset
    /// with even odds, so rare combinations get scenarios of their own.
    fn swarm(&mut self) {
        let all: Vec<&'static str> = self.opts.ops.iter().copied().collect();
        self.ops = all.iter().copied().filter(|_| self.chance(50)).collect();
        if self.ops.is_empty() && !all.is_empty() {
            let op = self.pick(&all);
            self.ops.push(op);
        }
    }

    fn machine(&mut self) -> String {
        if let Some(m) = &self.opts.machine {
            self.numa = numa_nodes_of(m);
            self.thp = if m.contains("thp=always") || m.contains("thp=madvise") {
                "always"
            } else {
                "never"
            };
            return m.clone();
        }
        self.numa = if self.has("numa_scan") || self.chance(30) {
            2
        } else {
            1
        };
        if self.opts.can.thp {
            self.thp = self.pick(&["never", "always", "always", "madvise"]);
        }
        let mut m = format!("numa-nodes={} thp={}", self.numa, self.thp);
        // Fault injection, where nothing splits a VMA: the model has no
        // error path for a failed anon_vma_clone() in __split_vma().
        let splits = ["mmap", "munmap", "mprotect", "madvise"];
        if self.has("fork") && !splits.iter().any(|op| self.has(op)) && self.chance(30) {
            m += " failslab";
        }
        m
    }

    fn files(&mut self) -> Vec<String> {
        let wants_file = self.ops.iter().any(|op| FILE_OPS.contains(op));
        if !self.opts.can.files || !(wants_file || self.chance(30)) {
            return Vec::new();
        }
        self.file_pages = 1 + self.rng.below(3);
        let fill = 1 + self.rng.below(255);
        vec![format!(
            "file f size={} fill={fill:#04x}",
            self.file_pages * 4096
        )]
    }

    fn processes(&mut self) -> Vec<DraftProcess> {
        let (lo, hi) = self.opts.processes;
        let n = self.in_range(lo, hi).max(1);
        let (tlo, thi) = self.opts.threads;
        let threads = self.in_range(tlo, thi).max(n);
        // Every process gets a thread; the rest go to random processes.
        let mut per = vec![1u32; n as usize];
        for _ in n..threads {
            let i = self.rng.below(u64::from(n)) as usize;
            per[i] += 1;
        }
        let mut next_thread = 0;
        (0..n)
            .map(|i| self.process(i, per[i as usize], &mut next_thread))
            .collect()
    }

    fn process(&mut self, i: u32, threads: u32, next_thread: &mut u32) -> DraftProcess {
        let mut setup = Vec::new();
        let maps = self.mappings(&mut setup);
        let mut children = Vec::new();
        if self.can_fork() && self.chance(40) {
            let name = self.fork_name();
            setup.push(format!("{name} = fork()"));
            let stmts = self.block(&maps, &mut Vec::new(), true);
            let child_thread = self.thread(next_thread, stmts);
            children.push(DraftProcess {
                name,
                setup: Vec::new(),
                threads: vec![child_thread],
                children: Vec::new(),
            });
        }
        let threads = (0..threads)
            .map(|_| {
                let stmts = self.block(&maps, &mut children, false);
                self.thread(next_thread, stmts)
            })
            .collect();
        DraftProcess {
            name: format!("proc{i}"),
            setup,
            threads,
            children,
        }
    }

    fn thread(&mut self, next: &mut u32, stmts: Vec<String>) -> DraftThread {
        let t = *next;
        *next += 1;
        // Where a hinting fault cannot migrate a misplaced small page,
        // every thread runs on node 0, where the setup faulted its pages.
        let node = if self.opts.can.misplaced_small_pages {
            t % self.numa
        } else {
            0
        };
        DraftThread {
            name: format!("t{t}"),
            node,
            stmts,
        }
    }

    /// The model's `dup_mmap()` copies no THP: with THP on, a fork is
    /// likely refused, so this scenario does not fork.
    fn can_fork(&self) -> bool {
        self.has("fork") && self.thp == "never"
    }

    fn fork_name(&mut self) -> String {
        self.forks += 1;
        format!("c{}", self.forks - 1)
    }

    /// One or two mappings, each maybe filled and scanned.
    fn mappings(&mut self, setup: &mut Vec<String>) -> Vec<Mapping> {
        let n = 1 + self.rng.below(2);
        (0..n)
            .map(|i| {
                let m = self.mapping(i, setup);
                if self.chance(70) {
                    let fill = 1 + self.rng.below(255);
                    setup.push(format!(
                        "write({}, 0..{}, {fill:#04x})",
                        m.var,
                        m.pages * 4096
                    ));
                }
                if self.has("numa_scan") && self.chance(30) {
                    setup.push(format!("numa_scan({}, {})", m.var, m.pages * 4096));
                }
                m
            })
            .collect()
    }

    fn mapping(&mut self, i: u64, setup: &mut Vec<String>) -> Mapping {
        let var = format!("m{i}");
        if self.file_pages > 0 && self.chance(60) {
            let shared = self.chance(65);
            let flags = if shared { "MAP_SHARED" } else { "MAP_PRIVATE" };
            let pages = self.file_pages + u64::from(self.chance(20));
            setup.push(format!(
                "{var} = mmap(NULL, {}, PROT_READ|PROT_WRITE, {flags}, f, 0)",
                pages * 4096
            ));
            return Mapping {
                var,
                pages,
                shared_file: shared,
            };
        }
        let huge = self.thp != "never" && self.chance(70);
        let pages = if huge {
            512 * (1 + self.rng.below(2))
        } else {
            1 + self.rng.below(8)
        };
        let align = if huge { ", align=2M" } else { "" };
        setup.push(format!(
            "{var} = mmap(NULL, {}, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS{align})",
            pages * 4096
        ));
        Mapping {
            var,
            pages,
            shared_file: false,
        }
    }

    /// A thread's statements: one to three, maybe ending with `exit()`.
    /// A child process's thread (`in_child`) forks nothing itself.
    fn block(
        &mut self,
        maps: &[Mapping],
        children: &mut Vec<DraftProcess>,
        in_child: bool,
    ) -> Vec<String> {
        let n = 1 + self.rng.below(3);
        let mut stmts = Vec::new();
        for _ in 0..n {
            if let Some(s) = self.statement(maps, children, in_child) {
                stmts.push(s);
            }
        }
        if stmts.is_empty() {
            let i = self.rng.below(maps.len() as u64) as usize;
            stmts.push(format!("read({})", maps[i].var));
        }
        if self.has("exit") && self.chance(25) {
            stmts.push("exit()".into());
        }
        stmts
    }

    /// A page offset (mostly inside the mapping, sometimes just past it)
    /// and a length in pages from there.
    fn span(&mut self, m: &Mapping) -> (u64, u64) {
        let first = if self.chance(90) {
            self.rng.below(m.pages)
        } else {
            m.pages
        };
        let room = m.pages.saturating_sub(first).max(1);
        let len = 1 + self.rng.below(room.min(16));
        (first * 4096, len * 4096)
    }

    fn statement(
        &mut self,
        maps: &[Mapping],
        children: &mut Vec<DraftProcess>,
        in_child: bool,
    ) -> Option<String> {
        let op = self.pick(&self.ops.clone());
        let m = maps[self.rng.below(maps.len() as u64) as usize].clone();
        let var = &m.var;
        let (off, len) = self.span(&m);
        let byte = off + self.rng.below(16);
        let value = 1 + self.rng.below(255);
        let size = m.pages * 4096;
        Some(match op {
            "write" if self.chance(70) => format!("write({var} + {byte}, {value:#04x})"),
            "write" => format!("write({var} + {off}, 0..{len}, {value:#04x})"),
            "read" if self.chance(70) => format!("read({var} + {byte})"),
            "read" => format!("read({var} + {off}, 0..{len})"),
            "mprotect" => {
                let prot = self.pick(&["PROT_NONE", "PROT_READ", "PROT_READ|PROT_WRITE"]);
                format!("mprotect({var} + {off}, {len}, {prot})")
            }
            "madvise" => {
                let advice = if self.opts.can.thp && self.chance(40) {
                    self.pick(&["MADV_HUGEPAGE", "MADV_NOHUGEPAGE"])
                } else {
                    "MADV_DONTNEED"
                };
                format!("madvise({var} + {off}, {len}, {advice})")
            }
            "munmap" => format!("munmap({var} + {off}, {len})"),
            "mmap" => format!(
                "mmap({var} + {off}, {len}, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED)"
            ),
            "numa_scan" => format!("numa_scan({var}, {size})"),
            "reclaim" => format!("reclaim({var} + {off}, {len})"),
            "hibernate" => "hibernate()".into(),
            "fork" if !in_child && self.can_fork() => {
                let name = self.fork_name();
                let setup = if self.chance(50) {
                    vec![format!("read({var})")]
                } else {
                    vec!["exit()".into()]
                };
                children.push(DraftProcess {
                    name: name.clone(),
                    setup,
                    threads: Vec::new(),
                    children: Vec::new(),
                });
                format!("{name} = fork()")
            }
            "pwrite" => {
                let off = self.rng.below(self.file_pages + 1) * 4096;
                let len = self.pick(&[16, 4096]);
                let direct = if self.chance(50) { ", O_DIRECT" } else { "" };
                format!("pwrite(f, {off}, {len}, {value:#04x}{direct})")
            }
            "pread" => format!("pread(f, {}, 16)", self.rng.below(self.file_pages) * 4096),
            "ftruncate" => {
                let to = self.pick(&[0, 1, self.file_pages, self.file_pages + 1]) * 4096;
                format!("ftruncate(f, {to})")
            }
            "remap_file_pages" if m.shared_file => {
                let pgoff = self.rng.below(self.file_pages);
                format!("remap_file_pages({var} + {off}, 4096, {pgoff})")
            }
            "msync" => format!("msync({var}, {size})"),
            _ => return None,
        })
    }
}

/// `numa-nodes=N` of a machine line (1 when it does not say).
fn numa_nodes_of(machine: &str) -> u32 {
    machine
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("numa-nodes="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}
