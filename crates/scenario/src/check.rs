//! Semantic checks: turns the raw tree into a [`Scenario`] or explains
//! what is wrong with it.
//!
//! Every item and statement is checked independently and the earliest
//! error in the file wins. Checking everything (instead of stopping at the
//! first problem found) matters because items may come in any order: a
//! `machine` line at the end of the file must still constrain the threads
//! above it, and an error in it must win over the threads' errors.

use std::collections::{HashMap, HashSet};

use crate::ast::{
    self, map_flags, prot, Advice, Expect, ExpectedVerdict, Expr, FileDecl, Machine, Op, Platform,
    Process, Scenario, Span, Stmt, Thp, Thread,
};
use crate::diag::Error;
use crate::lexer::parse_int;
use crate::parser::{
    BinOp, Block, Item, RawArg, RawExpr, RawFile, RawKind, RawOutcome, RawProcess, RawStmt,
    RawThread, RawVerdict, Setting,
};

type CResult<T> = Result<T, Error>;

/// Highest `numa-nodes` accepted; the model's node masks are small.
const MAX_NUMA_NODES: u64 = 8;

/// The file being checked, for the parts of [`Scenario`] that do not come
/// from the raw tree.
pub(crate) struct Source<'a> {
    pub file: &'a str,
    pub text: &'a str,
    /// Where end of file is, to blame a file with no process.
    pub end: Span,
}

/// Checks `raw` and builds the scenario, or returns the earliest error.
pub(crate) fn check(source: &Source<'_>, raw: &RawFile) -> CResult<Scenario> {
    let mut checker = Checker::default();
    let header = checker.header(&raw.items);
    let files: HashSet<String> = header.files.iter().map(|f| f.name.clone()).collect();
    let processes = checker.processes(&raw.items, header.machine, &files);
    if let Some(first) = checker
        .errors
        .into_iter()
        .min_by_key(|e| (e.span.line, e.span.col))
    {
        return Err(first);
    }
    require_threads(&processes, source.end)?;
    Ok(Scenario {
        name: header.name.unwrap_or_else(|| file_stem(source.file)),
        file: source.file.to_string(),
        machine: header.machine.unwrap_or_default(),
        budget: header.budget,
        expects: header.expects,
        files: header.files,
        processes,
        source: source.text.to_string(),
    })
}

/// The scenario name used when the file has no `scenario` line.
fn file_stem(file: &str) -> String {
    std::path::Path::new(file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| file.to_string())
}

/// A scenario without threads has nothing to interleave, so it is
/// certainly a mistake.
fn require_threads(processes: &[Process], end: Span) -> CResult<()> {
    let Some(first) = processes.first() else {
        return Err(Error::new(
            end,
            "scenario has no process; expected at least one 'process <name> { ... }'",
        ));
    };
    let mut family = processes.iter().flat_map(Process::family);
    if family.all(|p| p.threads.is_empty()) {
        return Err(Error::new(
            first.span,
            "scenario has no threads; expected at least one 'thread <name> { ... }' in a process",
        ));
    }
    Ok(())
}

/// Everything outside the processes.
#[derive(Default)]
struct Header {
    name: Option<String>,
    /// `None` if the `machine` line is invalid (its error is recorded).
    machine: Option<Machine>,
    budget: Option<u64>,
    expects: Vec<Expect>,
    files: Vec<FileDecl>,
}

/// Where each once-only line was first seen.
#[derive(Default)]
struct Seen {
    scenario: Option<Span>,
    machine: Option<Span>,
    budget: Option<Span>,
}

#[derive(Default)]
struct Checker {
    errors: Vec<Error>,
}

impl Checker {
    /// Keeps the error (if any) and carries on checking.
    fn record<T>(&mut self, result: CResult<T>) -> Option<T> {
        result.map_err(|e| self.errors.push(e)).ok()
    }

    fn header(&mut self, items: &[Item]) -> Header {
        let mut header = Header {
            machine: Some(Machine::default()),
            ..Header::default()
        };
        let mut seen = Seen::default();
        for item in items {
            let result = header_item(item, &mut header, &mut seen);
            if result.is_err() && matches!(item, Item::Machine { .. }) {
                header.machine = None;
            }
            self.record(result);
        }
        header
    }
}

/// Applies one top-level item (other than a process) to `header`.
fn header_item(item: &Item, header: &mut Header, seen: &mut Seen) -> CResult<()> {
    match item {
        Item::Scenario {
            name,
            name_span,
            span,
        } => {
            once(&mut seen.scenario, "scenario", *span)?;
            if name.trim().is_empty() {
                return Err(Error::new(*name_span, "scenario name is empty"));
            }
            header.name = Some(name.clone());
        }
        Item::Machine { settings, span } => {
            once(&mut seen.machine, "machine", *span)?;
            header.machine = Some(machine(settings)?);
        }
        Item::Budget {
            text,
            value_span,
            span,
        } => {
            once(&mut seen.budget, "budget", *span)?;
            header.budget = Some(budget(text, *value_span)?);
        }
        Item::Expect {
            profile,
            profile_span,
            knobs,
            verdict,
            span,
        } => {
            let knobs = expect_knobs(knobs)?;
            let verdict = expected_verdict(verdict)?;
            let key = std::iter::once(profile.clone())
                .chain(knobs.iter().map(|(k, v)| format!("{k}={v}")))
                .collect::<Vec<_>>()
                .join(" ");
            // Several findings may be expected of one profile (each met by
            // some execution); a clean expectation excludes any other.
            let clean = verdict == ExpectedVerdict::Clean;
            let same = |e: &Expect| e.profile == *profile && e.knobs == knobs;
            let clash = header.expects.iter().find(|e| {
                same(e) && (clean || e.verdict == ExpectedVerdict::Clean || e.verdict == verdict)
            });
            if let Some(first) = clash {
                return Err(Error::new(
                    *profile_span,
                    format!(
                        "duplicate or contradictory expectation for '{key}'; the first one is at line {}",
                        first.span.line
                    ),
                ));
            }
            header.expects.push(Expect {
                profile: profile.clone(),
                knobs,
                verdict,
                span: *span,
            });
        }
        Item::File {
            name,
            name_span,
            settings,
            span,
        } => {
            if let Some(first) = header.files.iter().find(|f| f.name == *name) {
                return Err(duplicate("file", name, *name_span, first.span));
            }
            header.files.push(file_decl(name, settings, *span)?);
        }
        Item::Process(_) => {}
    }
    Ok(())
}

/// The `knob=value` overrides of an `expect` line, each a known knob with
/// an allowed value.
fn expect_knobs(settings: &[Setting]) -> CResult<Vec<(String, String)>> {
    let mut knobs: Vec<(String, String)> = Vec::new();
    for setting in settings {
        let (value, value_span) = value(setting, "fault_locks_page=off")?;
        let Some(def) = mm::profile::KNOBS.iter().find(|d| d.name == setting.key) else {
            let names: Vec<&str> = mm::profile::KNOBS.iter().map(|d| d.name).collect();
            return Err(Error::new(
                setting.key_span,
                format!(
                    "unknown knob '{}'; known knobs: {}",
                    setting.key,
                    names.join(", ")
                ),
            ));
        };
        if !def.values.contains(&value) {
            return Err(Error::new(
                value_span,
                format!(
                    "knob '{}' cannot be '{value}'; allowed values: {}",
                    def.name,
                    def.values.join(", ")
                ),
            ));
        }
        if knobs.iter().any(|(k, _)| *k == setting.key) {
            return Err(Error::new(
                setting.key_span,
                format!("knob '{}' is given twice", setting.key),
            ));
        }
        knobs.push((setting.key.clone(), value.to_string()));
    }
    Ok(knobs)
}

/// Largest file a `file` line may declare (the model keeps a page per
/// 4 KiB, and checkers walk every page of a file).
const MAX_FILE_SIZE: u64 = 64 << 20;

/// `file <name> size=N [fill=V]`.
fn file_decl(name: &str, settings: &[Setting], span: Span) -> CResult<FileDecl> {
    let mut size = None;
    let mut fill = 0u8;
    for setting in settings {
        match setting.key.as_str() {
            "size" => {
                let (text, vspan) = value(setting, "size=8K")?;
                let n = parse_int(text).map_err(|m| Error::new(vspan, m))?;
                if n > MAX_FILE_SIZE {
                    return Err(Error::new(
                        vspan,
                        format!(
                            "file size {n:#x} is larger than the model allows ({MAX_FILE_SIZE:#x})"
                        ),
                    ));
                }
                size = Some(n);
            }
            "fill" => {
                let (text, vspan) = value(setting, "fill=0x11")?;
                let n = parse_int(text).map_err(|m| Error::new(vspan, m))?;
                fill = u8::try_from(n).map_err(|_| {
                    Error::new(
                        vspan,
                        format!("fill {n} does not fit in a byte; expected 0..=255"),
                    )
                })?;
            }
            other => {
                return Err(Error::new(
                    setting.key_span,
                    format!("unknown file setting '{other}'; expected size=N or fill=V"),
                ))
            }
        }
    }
    let Some(size) = size else {
        return Err(Error::new(
            span,
            format!("file '{name}' needs a size, e.g. size=8K"),
        ));
    };
    Ok(FileDecl {
        name: name.to_string(),
        size,
        fill,
        span,
    })
}

/// Rejects a second `what` line, pointing at the first one.
fn once(first: &mut Option<Span>, what: &str, span: Span) -> CResult<()> {
    match first {
        Some(previous) => Err(Error::new(
            span,
            format!(
                "duplicate '{what}' line; the first one is at line {}",
                previous.line
            ),
        )),
        None => {
            *first = Some(span);
            Ok(())
        }
    }
}

fn expected_verdict(raw: &RawVerdict) -> CResult<ExpectedVerdict> {
    match raw {
        RawVerdict::Clean => Ok(ExpectedVerdict::Clean),
        RawVerdict::Finding(text, _) if !text.is_empty() => {
            Ok(ExpectedVerdict::Finding(text.clone()))
        }
        RawVerdict::Finding(_, span) => Err(Error::new(
            *span,
            "the finding substring is empty, so it would match any finding",
        )),
    }
}

fn budget(text: &str, span: Span) -> CResult<u64> {
    match parse_int(text) {
        Ok(0) => Err(Error::new(
            span,
            "budget must be at least 1 execution, found 0",
        )),
        Ok(n) => Ok(n),
        Err(message) => Err(Error::new(span, message)),
    }
}

fn machine(settings: &[Setting]) -> CResult<Machine> {
    let mut machine = Machine::default();
    let mut seen = HashSet::new();
    for setting in settings {
        if !seen.insert(setting.key.as_str()) {
            return Err(Error::new(
                setting.key_span,
                format!("machine setting '{}' is given twice", setting.key),
            ));
        }
        match setting.key.as_str() {
            "numa-nodes" => machine.numa_nodes = numa_nodes(setting)?,
            "thp" => machine.thp = thp(setting)?,
            flag @ ("xen-pv" | "native") => {
                bare_flag(setting)?;
                if machine.platform.is_some() {
                    return Err(Error::new(
                        setting.key_span,
                        "the machine line names two platforms; keep one of 'xen-pv' and 'native'",
                    ));
                }
                machine.platform = Some(if flag == "native" {
                    Platform::Native
                } else {
                    Platform::XenPv
                });
            }
            "failslab" => {
                bare_flag(setting)?;
                machine.failslab = true;
            }
            other => {
                return Err(Error::new(
                    setting.key_span,
                    format!(
                    "unknown machine setting '{other}'; expected one of: numa-nodes, thp, xen-pv, native, \
                     failslab"
                ),
                ))
            }
        }
    }
    Ok(machine)
}

/// A bare flag such as `xen-pv` or `failslab`: `flag=value` is an error.
fn bare_flag(setting: &Setting) -> CResult<()> {
    match setting.value {
        Some(_) => {
            let flag = &setting.key;
            Err(Error::new(
                setting.span,
                format!(
                    "machine setting '{flag}' is a flag and takes no value; write just '{flag}'"
                ),
            ))
        }
        None => Ok(()),
    }
}

/// The value of `key=value`, or an error showing an example.
fn value<'s>(setting: &'s Setting, example: &str) -> CResult<(&'s str, Span)> {
    setting
        .value
        .as_ref()
        .map(|(text, span)| (text.as_str(), *span))
        .ok_or_else(|| {
            Error::new(
                setting.span,
                format!("setting '{}' needs a value, e.g. {example}", setting.key),
            )
        })
}

fn numa_nodes(setting: &Setting) -> CResult<u32> {
    let (text, span) = value(setting, "numa-nodes=2")?;
    let n = parse_int(text).map_err(|m| Error::new(span, m))?;
    if !(1..=MAX_NUMA_NODES).contains(&n) {
        return Err(Error::new(
            span,
            format!("numa-nodes must be between 1 and {MAX_NUMA_NODES}, found {n}"),
        ));
    }
    u32::try_from(n).map_err(|_| Error::new(span, "numa-nodes is too large"))
}

fn thp(setting: &Setting) -> CResult<Thp> {
    let (text, span) = value(setting, "thp=always")?;
    match text {
        "always" => Ok(Thp::Always),
        "madvise" => Ok(Thp::Madvise),
        "never" => Ok(Thp::Never),
        other => Err(Error::new(
            span,
            format!("unknown thp mode '{other}'; expected one of: always, madvise, never"),
        )),
    }
}

// Processes and threads.

/// What the statements of a block may name: integer variables, and the
/// child processes forked so far, each with where it was bound.
#[derive(Clone, Default)]
struct Scope {
    vars: HashMap<String, Span>,
    children: HashMap<String, Span>,
    /// The scenario's files (`file` lines), which calls name.
    files: HashSet<String>,
}

/// A `c = fork()`: where it is, and what the child inherits (the
/// parent's names bound before it).
struct ForkPoint {
    child: String,
    span: Span,
    inherited: Scope,
    /// Forked by a thread (concurrently with the others), not a setup.
    in_thread: bool,
}

/// The kind of block a statement is in.
#[derive(Clone, Copy)]
enum Place<'a> {
    /// The setup of `process` (e.g. "process 'app'"), which has threads
    /// or not.
    Setup {
        process: &'a str,
        has_threads: bool,
    },
    Thread,
}

/// Names that are unique across the whole scenario, with where each was
/// first seen: processes (children included) and threads.
#[derive(Default)]
struct Names<'r> {
    processes: HashMap<&'r str, Span>,
    threads: HashMap<&'r str, Span>,
}

impl Checker {
    fn processes(
        &mut self,
        items: &[Item],
        machine: Option<Machine>,
        files: &HashSet<String>,
    ) -> Vec<Process> {
        let mut names = Names::default();
        let mut processes = Vec::new();
        for item in items {
            let Item::Process(raw) = item else { continue };
            let label = format!("process '{}'", raw.name);
            let scope = Scope {
                files: files.clone(),
                ..Scope::default()
            };
            processes.push(self.process(raw, &label, machine, &mut names, scope));
        }
        processes
    }

    /// A process or child called `label` in messages, whose statements
    /// start with the names in `inherited`.
    fn process<'r>(
        &mut self,
        raw: &'r RawProcess,
        label: &str,
        machine: Option<Machine>,
        names: &mut Names<'r>,
        inherited: Scope,
    ) -> Process {
        if let Some(first) = names.processes.insert(&raw.name, raw.span) {
            self.errors
                .push(duplicate("process", &raw.name, raw.span, first));
        }
        let has_threads = raw.blocks.iter().any(|b| matches!(b, Block::Thread(_)));
        let place = Place::Setup {
            process: label,
            has_threads,
        };
        let mut scope = inherited;
        let mut forks = Vec::new();
        let mut setup = Vec::new();
        let mut setup_span: Option<Span> = None;
        for block in &raw.blocks {
            let Block::Setup { span, body } = block else {
                continue;
            };
            if let Err(e) = once(&mut setup_span, "setup", *span) {
                let message = format!("{label} has more than one setup block");
                self.errors.push(Error::new(e.span, message));
            }
            setup.extend(self.stmts(body, &mut scope, place, &mut forks));
        }
        let mut threads = Vec::new();
        for block in &raw.blocks {
            let Block::Thread(thread) = block else {
                continue;
            };
            if let Some(first) = names.threads.insert(&thread.name, thread.span) {
                self.errors
                    .push(duplicate("thread", &thread.name, thread.span, first));
            }
            threads.push(self.thread(thread, machine, &scope, &mut forks));
        }
        let children = self.children(raw, label, machine, names, &forks);
        Process {
            name: raw.name.clone(),
            setup,
            threads,
            children,
            span: raw.span,
        }
    }

    /// The `child` blocks of `raw`, each matched with the `fork()` that
    /// creates it, in fork order.
    fn children<'r>(
        &mut self,
        raw: &'r RawProcess,
        label: &str,
        machine: Option<Machine>,
        names: &mut Names<'r>,
        forks: &[ForkPoint],
    ) -> Vec<Process> {
        let mut children = Vec::new();
        for block in &raw.blocks {
            let Block::Child(child) = block else {
                continue;
            };
            let Some(at) = forks.iter().position(|f| f.child == child.name) else {
                self.errors.push(Error::new(
                    child.span,
                    format!(
                        "child '{0}' is never forked; expected '{0} = fork()' in {label}",
                        child.name
                    ),
                ));
                continue;
            };
            let child_label = format!("child '{}'", child.name);
            let inherited = forks[at].inherited.clone();
            if forks[at].in_thread
                && child
                    .blocks
                    .iter()
                    .any(|b| !matches!(b, Block::Setup { .. }))
            {
                self.errors.push(Error::new(
                    child.span,
                    format!(
                        "child '{}' is forked by a thread, so it may only have a setup (which \
                         the forking thread runs, in the child, at the fork): threads and \
                         children of their own need a fork in a setup",
                        child.name
                    ),
                ));
            }
            children.push((
                at,
                self.process(child, &child_label, machine, names, inherited),
            ));
        }
        for fork in forks {
            if !children
                .iter()
                .any(|(at, _)| forks[*at].child == fork.child)
            {
                self.errors.push(Error::new(
                    fork.span,
                    format!(
                        "fork() binds '{0}' but {label} has no 'child {0} {{ ... }}' block \
                         saying what the child runs",
                        fork.child
                    ),
                ));
            }
        }
        children.sort_by_key(|(at, _)| *at);
        children.into_iter().map(|(_, child)| child).collect()
    }

    /// Threads see the setup's names but not each other's.
    fn thread(
        &mut self,
        raw: &RawThread,
        machine: Option<Machine>,
        setup_scope: &Scope,
        forks: &mut Vec<ForkPoint>,
    ) -> Thread {
        let node = self.record(thread_node(raw, machine)).unwrap_or(0);
        let mut scope = setup_scope.clone();
        Thread {
            name: raw.name.clone(),
            node,
            body: self.stmts(&raw.body, &mut scope, Place::Thread, forks),
            span: raw.span,
        }
    }

    /// Checks statements in order, binding names into `scope` as it goes
    /// and noting each `fork()` in `forks`.
    fn stmts(
        &mut self,
        raw: &[RawStmt],
        scope: &mut Scope,
        place: Place<'_>,
        forks: &mut Vec<ForkPoint>,
    ) -> Vec<Stmt> {
        let mut stmts = Vec::new();
        let mut exited: Option<Span> = None;
        for stmt in raw {
            if let Some(exit) = exited.take() {
                self.errors.push(after_exit(stmt.span, exit));
            }
            let checked = lower_stmt(stmt, scope, place);
            if stmt.call == "exit" {
                exited = Some(stmt.span);
            }
            // Bind even if the statement is wrong, so that later uses of
            // the name (or the child block of a fork) do not produce a
            // second, misleading error.
            if let Some((name, span)) = &stmt.bind {
                let in_thread = matches!(place, Place::Thread);
                bind(stmt, (name, *span), scope, forks, in_thread);
            }
            stmts.extend(self.record(checked));
        }
        stmts
    }
}

/// Records what `name = <stmt>` binds: a child process for `fork()`, an
/// integer otherwise.
fn bind(
    stmt: &RawStmt,
    (name, span): (&str, Span),
    scope: &mut Scope,
    forks: &mut Vec<ForkPoint>,
    in_thread: bool,
) {
    if stmt.call != "fork" {
        scope.vars.insert(name.to_string(), span);
        return;
    }
    if !forks.iter().any(|f| f.child == name) {
        forks.push(ForkPoint {
            child: name.to_string(),
            span: stmt.span,
            inherited: scope.clone(),
            in_thread,
        });
    }
    scope.children.insert(name.to_string(), span);
}

/// The error for a statement after `exit()` in the same block.
fn after_exit(stmt: Span, exit: Span) -> Error {
    Error::new(
        stmt,
        format!(
            "statement after exit() (line {}): the task has exited; exit() must be the \
             last statement of its block",
            exit.line
        ),
    )
}

fn duplicate(what: &str, name: &str, span: Span, first: Span) -> Error {
    Error::new(
        span,
        format!(
            "duplicate {what} name '{name}'; the first one is at line {}",
            first.line
        ),
    )
}

/// The `node=` of a thread. Skips the range check when the machine line
/// is invalid, because its own error is the one worth reporting.
fn thread_node(raw: &RawThread, machine: Option<Machine>) -> CResult<u32> {
    let mut node = None;
    for setting in &raw.settings {
        if setting.key != "node" {
            return Err(Error::new(
                setting.key_span,
                format!("unknown thread setting '{}'; expected: node", setting.key),
            ));
        }
        if node.is_some() {
            return Err(Error::new(
                setting.span,
                "thread setting 'node' is given twice",
            ));
        }
        let (text, span) = value(setting, "node=1")?;
        let n = parse_int(text).map_err(|m| Error::new(span, m))?;
        if let Some(machine) = machine {
            check_node(&raw.name, n, machine, setting.span)?;
        }
        node = Some(u32::try_from(n).map_err(|_| Error::new(span, "node number is too large"))?);
    }
    Ok(node.unwrap_or(0))
}

fn check_node(thread: &str, node: u64, machine: Machine, span: Span) -> CResult<()> {
    let nodes = machine.numa_nodes;
    if node < u64::from(nodes) {
        return Ok(());
    }
    let plural = if nodes == 1 { "" } else { "s" };
    Err(Error::new(
        span,
        format!(
            "thread '{thread}' runs on node {node} but the machine has {nodes} NUMA node{plural} \
             (numa-nodes={nodes})"
        ),
    ))
}

// Statements.

/// The calls of v2 and how to write them, for error messages.
const CALLS: &[(&str, &str)] = &[
    (
        "mmap",
        "mmap(addr, len, prot, flags [, file, offset] [, align=N])",
    ),
    ("munmap", "munmap(addr, len)"),
    ("mprotect", "mprotect(addr, len, prot)"),
    ("madvise", "madvise(addr, len, advice)"),
    ("write", "write(addr, value) or write(addr, lo..hi, value)"),
    ("read", "read(addr [, lo..hi] [, expect=V])"),
    ("numa_scan", "numa_scan(addr, len)"),
    ("reclaim", "reclaim(addr, len)"),
    ("hibernate", "hibernate()"),
    ("fork", "c = fork() with a 'child c { ... }' block"),
    ("exit", "exit()"),
    ("ftruncate", "ftruncate(file, len)"),
    ("pwrite", "pwrite(file, off, len, value [, O_DIRECT])"),
    ("pread", "pread(file, off, len [, expect=V])"),
    ("remap_file_pages", "remap_file_pages(addr, len, pgoff)"),
    ("msync", "msync(addr, len)"),
];

/// The calls that return something to bind.
const BINDING_CALLS: [&str; 2] = ["mmap", "fork"];

fn lower_stmt(raw: &RawStmt, scope: &Scope, place: Place<'_>) -> CResult<Stmt> {
    if let Some((name, span)) = &raw.bind {
        check_bindable(name, *span)?;
        check_rebinding(raw, name, *span, scope)?;
    }
    let Some(&(call, usage)) = CALLS.iter().find(|(name, _)| *name == raw.call) else {
        let known: Vec<&str> = CALLS.iter().map(|(name, _)| *name).collect();
        return Err(Error::new(
            raw.call_span,
            format!(
                "unknown call '{}'; expected one of: {}",
                raw.call,
                known.join(", ")
            ),
        ));
    };
    if let Some((_, span)) = raw.bind.as_ref().filter(|_| !BINDING_CALLS.contains(&call)) {
        return Err(Error::new(
            *span,
            format!(
                "'{call}' returns nothing to bind; only mmap (an address) and fork (a child) do"
            ),
        ));
    }
    let lower = Lower { scope };
    let op = match call {
        "mmap" => lower.mmap(&Args::new(raw, usage, &["align"])?),
        "munmap" => lower
            .addr_len(&Args::new(raw, usage, &[])?)
            .map(|(addr, len)| Op::Munmap { addr, len }),
        "mprotect" => lower.mprotect(&Args::new(raw, usage, &[])?),
        "madvise" => lower.madvise(&Args::new(raw, usage, &[])?),
        "write" => lower.write(&Args::new(raw, usage, &[])?),
        "read" => lower.read(&Args::new(raw, usage, &["expect"])?),
        "numa_scan" => lower
            .addr_len(&Args::new(raw, usage, &[])?)
            .map(|(addr, len)| Op::NumaScan { addr, len }),
        "reclaim" => lower
            .addr_len(&Args::new(raw, usage, &[])?)
            .map(|(addr, len)| Op::Reclaim { addr, len }),
        "hibernate" => Args::new(raw, usage, &[])?
            .at_most(0)
            .map(|()| Op::Hibernate),
        "fork" => fork(raw, &Args::new(raw, usage, &[])?, place),
        "ftruncate" => lower.ftruncate(&Args::new(raw, usage, &[])?),
        "pwrite" => lower.pwrite(&Args::new(raw, usage, &[])?),
        "pread" => lower.pread(&Args::new(raw, usage, &["expect"])?),
        "remap_file_pages" => lower.remap_file_pages(&Args::new(raw, usage, &[])?),
        "msync" => lower
            .addr_len(&Args::new(raw, usage, &[])?)
            .map(|(addr, len)| Op::Msync { addr, len }),
        _ => exit(&Args::new(raw, usage, &[])?, place),
    }?;
    let expect = raw
        .expect
        .iter()
        .map(|o| outcome(o, call))
        .collect::<CResult<Vec<_>>>()?;
    Ok(Stmt {
        bind: raw.bind.as_ref().map(|(name, _)| name.clone()),
        op,
        span: raw.span,
        expect,
    })
}

/// One `=> outcome` of a call: `ok`, a value, an errno (syscalls) or a
/// signal (the user accesses `read` and `write`).
fn outcome(raw: &RawOutcome, call: &str) -> CResult<ast::Outcome> {
    let access = matches!(call, "read" | "write");
    let word = raw.word.as_str();
    let wrong = |what: &str| {
        Err(Error::new(
            raw.span,
            format!(
                "'{call}' {what}; expected {}",
                if access {
                    "ok, SIGSEGV or SIGBUS (a user access)"
                } else {
                    "ok, a value or an errno such as ENOMEM (a system call)"
                }
            ),
        ))
    };
    if let Some((name, codes)) = ast::SIGNALS.iter().find(|(n, _)| *n == word) {
        if !access {
            return wrong(&format!("cannot raise {name}"));
        }
        let code = match &raw.code {
            None => None,
            Some((c, span)) => {
                Some(*codes.iter().find(|k| **k == c.as_str()).ok_or_else(|| {
                    Error::new(
                        *span,
                        format!(
                            "unknown si_code '{c}' for {name}; expected one of: {}",
                            codes.join(", ")
                        ),
                    )
                })?)
            }
        };
        return Ok(ast::Outcome::Signal(name, code));
    }
    if let Some((_, span)) = &raw.code {
        return Err(Error::new(
            *span,
            format!("only a signal takes a si_code, not '{word}'"),
        ));
    }
    if word == "ok" && !raw.negated {
        return Ok(ast::Outcome::Ok);
    }
    if let Some((name, _)) = ast::ERRNOS.iter().find(|(n, _)| *n == word) {
        if access {
            return wrong(&format!("cannot fail with {name}"));
        }
        return Ok(ast::Outcome::Errno(name));
    }
    if let Ok(v) = parse_int(word) {
        if access || raw.negated {
            return wrong(&format!(
                "has no value {}{word}",
                if raw.negated { "-" } else { "" }
            ));
        }
        return Ok(ast::Outcome::Value(v));
    }
    let errnos: Vec<&str> = ast::ERRNOS.iter().map(|(n, _)| *n).collect();
    Err(Error::new(
        raw.span,
        format!(
            "unknown outcome '{word}'; expected ok, a number, SIGSEGV, SIGBUS or an errno ({})",
            errnos.join(", ")
        ),
    ))
}

/// `c = fork()`. In a thread, the child may only have a setup (checked
/// with the child blocks): the explorer's actors exist from the start of
/// an execution, so a child's threads would have to wait for the fork.
fn fork(raw: &RawStmt, args: &Args<'_>, _place: Place<'_>) -> CResult<Op> {
    args.at_most(0)?;
    let Some((child, _)) = &raw.bind else {
        return Err(Error::new(
            raw.span,
            "fork() needs a name for the child: write 'c = fork()' and say what it runs in a \
             'child c { ... }' block",
        ));
    };
    Ok(Op::Fork {
        child: child.clone(),
    })
}

/// `exit()`. A setup that exits would leave its process's threads without
/// a task to start them.
fn exit(args: &Args<'_>, place: Place<'_>) -> CResult<Op> {
    args.at_most(0)?;
    if let Place::Setup {
        process,
        has_threads: true,
    } = place
    {
        return Err(Error::new(
            args.stmt.span,
            format!(
                "exit() in the setup of {process}, which has threads that would never start; \
                 end a thread with exit() instead"
            ),
        ));
    }
    Ok(Op::Exit)
}

/// A child's name is bound once: by its `fork()`, to nothing else.
fn check_rebinding(raw: &RawStmt, name: &str, span: Span, scope: &Scope) -> CResult<()> {
    let earlier = match (scope.children.get(name), scope.vars.get(name)) {
        (Some(fork), _) => Some(("the child process forked", fork)),
        (None, Some(var)) if raw.call == "fork" => Some(("a variable", var)),
        _ => None,
    };
    match earlier {
        Some((what, at)) => Err(Error::new(
            span,
            format!(
                "'{name}' is already bound to {what} at line {}; a child process needs a name \
                 of its own",
                at.line
            ),
        )),
        None => Ok(()),
    }
}

/// `NULL` and flag names always mean themselves, so they cannot be variables.
fn check_bindable(name: &str, span: Span) -> CResult<()> {
    if name == "NULL" || flag_family(name).is_some() {
        return Err(Error::new(
            span,
            format!("cannot bind '{name}': it is a reserved name"),
        ));
    }
    Ok(())
}

/// The arguments of one call, split into positional and named ones.
struct Args<'a> {
    stmt: &'a RawStmt,
    usage: &'static str,
    positional: Vec<&'a RawArg>,
    named: Vec<(&'a str, &'a RawExpr)>,
}

impl<'a> Args<'a> {
    /// Splits the arguments; only names in `allowed` may be used, once
    /// each, after all positional arguments.
    fn new(stmt: &'a RawStmt, usage: &'static str, allowed: &[&str]) -> CResult<Self> {
        let mut args = Args {
            stmt,
            usage,
            positional: Vec::new(),
            named: Vec::new(),
        };
        for arg in &stmt.args {
            match arg {
                RawArg::Named {
                    name,
                    name_span,
                    value,
                    ..
                } => args.add_named(name, *name_span, value, allowed)?,
                positional => {
                    if let Some((name, _)) = args.named.first() {
                        return Err(Error::new(
                            positional.span(),
                            format!(
                                "positional argument after named argument '{name}'; \
                                 named arguments go last"
                            ),
                        ));
                    }
                    args.positional.push(positional);
                }
            }
        }
        Ok(args)
    }

    fn add_named(
        &mut self,
        name: &'a str,
        span: Span,
        value: &'a RawExpr,
        allowed: &[&str],
    ) -> CResult<()> {
        if !allowed.contains(&name) {
            let expected = if allowed.is_empty() {
                "it takes none".to_string()
            } else {
                format!("expected: {}", allowed.join(", "))
            };
            return Err(Error::new(
                span,
                format!(
                    "unknown named argument '{name}' for '{}'; {expected}",
                    self.stmt.call
                ),
            ));
        }
        if self.named.iter().any(|(n, _)| *n == name) {
            return Err(Error::new(
                span,
                format!("named argument '{name}' is given twice"),
            ));
        }
        self.named.push((name, value));
        Ok(())
    }

    /// Rejects more than `max` positional arguments, blaming the first extra.
    fn at_most(&self, max: usize) -> CResult<()> {
        match self.positional.get(max) {
            Some(extra) => Err(Error::new(
                extra.span(),
                format!(
                    "too many arguments to '{}'; expected {}",
                    self.stmt.call, self.usage
                ),
            )),
            None => Ok(()),
        }
    }

    fn get(&self, index: usize) -> Option<&'a RawArg> {
        self.positional.get(index).copied()
    }

    /// Positional argument `index`, called `name` in the error if missing.
    fn arg(&self, index: usize, name: &str) -> CResult<&'a RawArg> {
        self.get(index).ok_or_else(|| {
            Error::new(
                self.stmt.close,
                format!(
                    "missing argument '{name}' to '{}'; expected {}",
                    self.stmt.call, self.usage
                ),
            )
        })
    }

    fn named(&self, name: &str) -> Option<&'a RawExpr> {
        self.named.iter().find(|(n, _)| *n == name).map(|(_, e)| *e)
    }
}

/// Argument lowering for one statement, in the scope of its block.
struct Lower<'s> {
    scope: &'s Scope,
}

impl Lower<'_> {
    fn mmap(&self, args: &Args<'_>) -> CResult<Op> {
        args.at_most(6)?;
        let addr = self.int(args.arg(0, "addr")?)?;
        let len = self.int(args.arg(1, "len")?)?;
        let prot = flags(expr_arg(args.arg(2, "prot")?)?, &PROT)?;
        let flags_arg = expr_arg(args.arg(3, "flags")?)?;
        let flags = mmap_flags(flags_arg, args.get(4).is_some())?;
        let file = match args.get(4) {
            Some(fd) => {
                let file = self.file(fd)?;
                let offset = match args.get(5) {
                    Some(off) => self.int(off)?,
                    None => Expr::Int(0),
                };
                if let Expr::Int(off) = offset {
                    if off % 4096 != 0 {
                        return Err(Error::new(
                            args.arg(5, "offset")?.span(),
                            format!("mmap offset {off:#x} is not a multiple of the page size"),
                        ));
                    }
                }
                Some((file, offset))
            }
            None => None,
        };
        let align = args.named("align").map(|e| self.align(e)).transpose()?;
        Ok(Op::Mmap {
            addr,
            len,
            prot,
            flags,
            align,
            file,
        })
    }

    /// A file argument: the name of a `file` line.
    fn file(&self, arg: &RawArg) -> CResult<String> {
        let raw = expr_arg(arg)?;
        match &raw.kind {
            RawKind::Name(name) if self.scope.files.contains(name) => Ok(name.clone()),
            RawKind::Name(name) => Err(Error::new(
                raw.span,
                format!("no file named '{name}'; declare it with a line 'file {name} size=N'"),
            )),
            _ => Err(Error::new(
                raw.span,
                "expected the name of a file declared with 'file'",
            )),
        }
    }

    fn ftruncate(&self, args: &Args<'_>) -> CResult<Op> {
        args.at_most(2)?;
        let file = self.file(args.arg(0, "file")?)?;
        let len = self.int(args.arg(1, "len")?)?;
        Ok(Op::Ftruncate { file, len })
    }

    /// `pwrite(file, off, len, value [, O_DIRECT])`.
    fn pwrite(&self, args: &Args<'_>) -> CResult<Op> {
        args.at_most(5)?;
        let file = self.file(args.arg(0, "file")?)?;
        let off = self.int(args.arg(1, "off")?)?;
        let len = self.int(args.arg(2, "len")?)?;
        let value = self.byte(expr_arg(args.arg(3, "value")?)?, "value")?;
        let direct = match args.get(4) {
            None => false,
            Some(arg) => {
                let raw = expr_arg(arg)?;
                match &raw.kind {
                    RawKind::Name(n) if n == "O_DIRECT" => true,
                    _ => return Err(Error::new(raw.span, "the only pwrite flag is O_DIRECT")),
                }
            }
        };
        Ok(Op::Pwrite {
            file,
            off,
            len,
            value,
            direct,
        })
    }

    /// `pread(file, off, len [, expect=V])`.
    fn pread(&self, args: &Args<'_>) -> CResult<Op> {
        args.at_most(3)?;
        let file = self.file(args.arg(0, "file")?)?;
        let off = self.int(args.arg(1, "off")?)?;
        let len = self.int(args.arg(2, "len")?)?;
        let expect = args
            .named("expect")
            .map(|e| self.byte(e, "expect value"))
            .transpose()?;
        Ok(Op::Pread {
            file,
            off,
            len,
            expect,
        })
    }

    fn remap_file_pages(&self, args: &Args<'_>) -> CResult<Op> {
        args.at_most(3)?;
        let addr = self.int(args.arg(0, "addr")?)?;
        let len = self.int(args.arg(1, "len")?)?;
        let pgoff = self.int(args.arg(2, "pgoff")?)?;
        Ok(Op::RemapFilePages { addr, len, pgoff })
    }

    /// The `addr, len` of `munmap`, `numa_scan` and `reclaim`.
    fn addr_len(&self, args: &Args<'_>) -> CResult<(Expr, Expr)> {
        args.at_most(2)?;
        let addr = self.int(args.arg(0, "addr")?)?;
        let len = self.int(args.arg(1, "len")?)?;
        Ok((addr, len))
    }

    fn mprotect(&self, args: &Args<'_>) -> CResult<Op> {
        args.at_most(3)?;
        let addr = self.int(args.arg(0, "addr")?)?;
        let len = self.int(args.arg(1, "len")?)?;
        let prot = flags(expr_arg(args.arg(2, "prot")?)?, &PROT)?;
        Ok(Op::Mprotect { addr, len, prot })
    }

    fn madvise(&self, args: &Args<'_>) -> CResult<Op> {
        args.at_most(3)?;
        let addr = self.int(args.arg(0, "addr")?)?;
        let len = self.int(args.arg(1, "len")?)?;
        let advice = advice(expr_arg(args.arg(2, "advice")?)?)?;
        Ok(Op::Madvise { addr, len, advice })
    }

    /// `write(addr, value)` or `write(addr, lo..hi, value)`.
    fn write(&self, args: &Args<'_>) -> CResult<Op> {
        args.at_most(3)?;
        let addr = self.int(args.arg(0, "addr")?)?;
        let second = args.arg(1, "value")?;
        let (range, value) = match (second, args.get(2)) {
            (RawArg::Range { .. }, _) => (Some(self.range(second)?), args.arg(2, "value")?),
            (_, None) => (None, second),
            (_, Some(_)) => return Err(not_a_range(second)),
        };
        let value = self.byte(expr_arg(value)?, "value")?;
        Ok(Op::Write { addr, range, value })
    }

    /// `read(addr [, lo..hi] [, expect=V])`.
    fn read(&self, args: &Args<'_>) -> CResult<Op> {
        args.at_most(2)?;
        let addr = self.int(args.arg(0, "addr")?)?;
        let range = args.get(1).map(|r| self.range(r)).transpose()?;
        let expect = args
            .named("expect")
            .map(|e| self.byte(e, "expect value"))
            .transpose()?;
        Ok(Op::Read {
            addr,
            range,
            expect,
        })
    }

    /// An integer-position argument (not a range).
    fn int(&self, arg: &RawArg) -> CResult<Expr> {
        self.expr(expr_arg(arg)?)
    }

    fn range(&self, arg: &RawArg) -> CResult<(Expr, Expr)> {
        let RawArg::Range { lo, hi, span } = arg else {
            return Err(not_a_range(arg));
        };
        let (lo, hi) = (self.expr(lo)?, self.expr(hi)?);
        if let (Expr::Int(l), Expr::Int(h)) = (&lo, &hi) {
            if l >= h {
                return Err(Error::new(
                    *span,
                    format!("empty range {l}..{h}; expected lo < hi"),
                ));
            }
        }
        Ok((lo, hi))
    }

    /// A constant byte, e.g. the value to write.
    fn byte(&self, raw: &RawExpr, what: &str) -> CResult<u8> {
        match self.expr(raw)? {
            Expr::Int(v) => u8::try_from(v).map_err(|_| {
                Error::new(
                    raw.span,
                    format!("{what} {v} does not fit in a byte; expected 0..=255"),
                )
            }),
            _ => Err(Error::new(
                raw.span,
                format!("{what} must be a constant byte 0..=255, not an expression with variables"),
            )),
        }
    }

    /// `align=N`: a power of two when known at parse time.
    fn align(&self, raw: &RawExpr) -> CResult<Expr> {
        let align = self.expr(raw)?;
        match align {
            Expr::Int(v) if !v.is_power_of_two() => Err(Error::new(
                raw.span,
                format!("align must be a power of two, found {v:#x}"),
            )),
            other => Ok(other),
        }
    }

    /// An integer expression, with constant parts folded.
    fn expr(&self, raw: &RawExpr) -> CResult<Expr> {
        match &raw.kind {
            RawKind::Int(v) => Ok(Expr::Int(*v)),
            RawKind::Name(name) => self.name(name, raw.span),
            RawKind::Binary {
                op: BinOp::Or,
                op_span,
                ..
            } => Err(Error::new(
                *op_span,
                "'|' combines flags and is not allowed in an integer expression; use '+'",
            )),
            RawKind::Binary { op, lhs, rhs, .. } => {
                let (lhs, rhs) = (self.expr(lhs)?, self.expr(rhs)?);
                fold(*op, lhs, rhs).map_err(|m| Error::new(raw.span, m))
            }
        }
    }

    fn name(&self, name: &str, span: Span) -> CResult<Expr> {
        if name == "NULL" {
            return Ok(Expr::Int(0));
        }
        if flag_family(name).is_some() {
            return Err(Error::new(
                span,
                format!(
                    "flag '{name}' is not allowed here; expected an integer expression \
                     (an address, length, offset or byte)"
                ),
            ));
        }
        if let Some(fork) = self.scope.children.get(name) {
            return Err(Error::new(
                span,
                format!(
                    "'{name}' is a child process (bound by fork() at line {}), not an integer",
                    fork.line
                ),
            ));
        }
        if !self.scope.vars.contains_key(name) {
            return Err(Error::new(
                span,
                format!(
                    "unbound variable '{name}'; bind it with '{name} = mmap(...)' in the setup \
                     or earlier in the same thread"
                ),
            ));
        }
        Ok(Expr::Var(name.to_string(), span))
    }
}

/// Folds `lhs op rhs` when both sides are constants.
fn fold(op: BinOp, lhs: Expr, rhs: Expr) -> Result<Expr, String> {
    match (op, lhs, rhs) {
        (BinOp::Add, Expr::Int(a), Expr::Int(b)) => ast::add(a, b).map(Expr::Int),
        (BinOp::Sub, Expr::Int(a), Expr::Int(b)) => ast::sub(a, b).map(Expr::Int),
        (BinOp::Sub, lhs, rhs) => Ok(Expr::Sub(Box::new(lhs), Box::new(rhs))),
        (_, lhs, rhs) => Ok(Expr::Add(Box::new(lhs), Box::new(rhs))),
    }
}

/// The expression of a positional argument; ranges only go where
/// [`Lower::range`] asks for them.
fn expr_arg(arg: &RawArg) -> CResult<&RawExpr> {
    match arg {
        RawArg::Expr(e) => Ok(e),
        other => Err(Error::new(
            other.span(),
            "a range 'lo..hi' is only allowed as the second argument of read and write",
        )),
    }
}

fn not_a_range(arg: &RawArg) -> Error {
    Error::new(
        arg.span(),
        "expected a range 'lo..hi' here (offsets from addr), found a single expression",
    )
}

// Flags.

/// A set of flag names valid in one argument position.
struct Family {
    /// How the family is named in messages, e.g. `PROT_*`.
    label: &'static str,
    prefix: &'static str,
    /// The parameter it is used for, e.g. `prot`.
    param: &'static str,
    names: &'static [(&'static str, u32)],
}

const PROT: Family = Family {
    label: "PROT_*",
    prefix: "PROT_",
    param: "prot",
    names: &[
        ("PROT_NONE", prot::PROT_NONE),
        ("PROT_READ", prot::PROT_READ),
        ("PROT_WRITE", prot::PROT_WRITE),
        ("PROT_EXEC", prot::PROT_EXEC),
    ],
};

const MAP: Family = Family {
    label: "MAP_*",
    prefix: "MAP_",
    param: "flags",
    names: &[
        ("MAP_SHARED", map_flags::MAP_SHARED),
        ("MAP_PRIVATE", map_flags::MAP_PRIVATE),
        ("MAP_FIXED", map_flags::MAP_FIXED),
        ("MAP_ANONYMOUS", map_flags::MAP_ANONYMOUS),
        ("MAP_NORESERVE", map_flags::MAP_NORESERVE),
        ("MAP_POPULATE", map_flags::MAP_POPULATE),
    ],
};

/// Linux's `MADV_*` values, used only to tell the names apart.
const MADV: Family = Family {
    label: "MADV_*",
    prefix: "MADV_",
    param: "advice",
    names: &[
        ("MADV_DONTNEED", 4),
        ("MADV_HUGEPAGE", 14),
        ("MADV_NOHUGEPAGE", 15),
    ],
};

const FAMILIES: [&Family; 3] = [&PROT, &MAP, &MADV];

impl Family {
    fn lookup(&self, name: &str) -> Option<u32> {
        self.names.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    fn known(&self) -> String {
        let names: Vec<&str> = self.names.iter().map(|(n, _)| *n).collect();
        names.join(", ")
    }
}

/// The family a known flag name belongs to.
fn flag_family(name: &str) -> Option<&'static Family> {
    FAMILIES.into_iter().find(|f| f.lookup(name).is_some())
}

/// Flag names of `family` combined with `|`.
fn flags(raw: &RawExpr, family: &Family) -> CResult<u32> {
    let label = family.label;
    let param = family.param;
    match &raw.kind {
        RawKind::Name(name) => flag(name, raw.span, family),
        RawKind::Binary {
            op: BinOp::Or,
            lhs,
            rhs,
            ..
        } => Ok(flags(lhs, family)? | flags(rhs, family)?),
        RawKind::Binary { op_span, op, .. } => {
            let op = if *op == BinOp::Add { '+' } else { '-' };
            Err(Error::new(
                *op_span,
                format!("expected {label} flags combined with '|' for '{param}', found '{op}'"),
            ))
        }
        RawKind::Int(_) => Err(Error::new(
            raw.span,
            format!(
                "expected {label} flags for '{param}', found an integer; \
                 write flags by name (one of: {})",
                family.known()
            ),
        )),
    }
}

fn flag(name: &str, span: Span, family: &Family) -> CResult<u32> {
    if let Some(value) = family.lookup(name) {
        return Ok(value);
    }
    let (label, param) = (family.label, family.param);
    let message = if name.starts_with(family.prefix) {
        format!("unknown flag '{name}'; expected one of: {}", family.known())
    } else if flag_family(name).is_some() {
        format!("expected {label} flags for '{param}', found '{name}'")
    } else {
        format!(
            "expected {label} flags for '{param}', found '{name}'; \
             variables and integers are not allowed here"
        )
    };
    Err(Error::new(span, message))
}

/// mmap's flags: exactly one of private/shared, and anonymous (v1 has no files).
/// The flags of an anonymous mapping, or of a file mapping (`with_file`).
fn mmap_flags(raw: &RawExpr, with_file: bool) -> CResult<u32> {
    use map_flags::{MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED};
    let value = flags(raw, &MAP)?;
    let anonymous = value & MAP_ANONYMOUS != 0;
    let message = match (value & MAP_PRIVATE != 0, value & MAP_SHARED != 0) {
        (true, true) => "MAP_PRIVATE and MAP_SHARED are mutually exclusive",
        (false, false) => "mmap flags must include exactly one of MAP_PRIVATE or MAP_SHARED",
        _ if anonymous && with_file => "MAP_ANONYMOUS takes no file; drop the file argument",
        _ if !anonymous && !with_file => {
            "a file mapping needs a file: mmap(addr, len, prot, flags, file [, offset]); or add \
             MAP_ANONYMOUS"
        }
        _ => return Ok(value),
    };
    Err(Error::new(raw.span, message))
}

/// A single `MADV_*` name.
fn advice(raw: &RawExpr) -> CResult<Advice> {
    if let RawKind::Binary {
        op: BinOp::Or,
        op_span,
        ..
    } = &raw.kind
    {
        return Err(Error::new(
            *op_span,
            "madvise takes a single MADV_* advice; '|' is not allowed here",
        ));
    }
    match flags(raw, &MADV)? {
        4 => Ok(Advice::DontNeed),
        14 => Ok(Advice::HugePage),
        _ => Ok(Advice::NoHugePage),
    }
}
