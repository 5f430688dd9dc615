//! The checked syntax tree of a scenario.
//!
//! Everything here has already passed the semantic checks in
//! the checker: calls have the right arity, flags are valid for their
//! position, variables are bound before use and the machine is consistent
//! with the threads. The interpreter can therefore trust the shape of the
//! tree and only has to deal with run-time facts (the value of an address,
//! arithmetic on it), which is why [`Expr::eval`] still returns a `Result`.

use std::fmt;

/// Where a node came from in the source, so that later stages (the
/// interpreter, the explorer's reports) can blame the right place.
///
/// Spans never cross a line: multi-line constructs (process, thread) are
/// blamed on their header. `line` and `col` are 1-based and count
/// characters, `len` is the number of characters covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub line: u32,
    pub col: u32,
    pub len: u32,
}

impl Span {
    /// A span starting at `line:col` covering `len` characters.
    pub fn new(line: u32, col: u32, len: u32) -> Self {
        Span { line, col, len }
    }

    /// The smallest span covering `self` and `end`, used to blame a whole
    /// construct (an expression, a `key=value` setting) rather than one token.
    /// If the two are on different lines, `self` is returned unchanged
    /// because spans cannot cross lines.
    pub fn to(self, end: Span) -> Span {
        if end.line != self.line || end.col < self.col {
            return self;
        }
        let stop = end.col.saturating_add(end.len);
        Span {
            len: stop.saturating_sub(self.col),
            ..self
        }
    }
}

/// A whole scenario file after parsing and checking.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// From the `scenario "<name>"` line, or the file stem when absent.
    pub name: String,
    /// The file name given to the parser, used in diagnostics.
    pub file: String,
    pub machine: Machine,
    /// Number of executions the explorer may spend, if the file says so.
    pub budget: Option<u64>,
    pub expects: Vec<Expect>,
    /// Regular files (`file` lines), in declaration order.
    pub files: Vec<FileDecl>,
    pub processes: Vec<Process>,
    /// The full source text, kept so that run-time errors can quote it.
    pub source: String,
}

/// The simulated machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Machine {
    pub numa_nodes: u32,
    pub thp: Thp,
    /// `xen-pv` or `native` pins the platform for every profile the
    /// scenario runs under; absent, the profile's `platform` knob decides.
    pub platform: Option<Platform>,
    /// `failslab`: CONFIG_FAILSLAB fault injection (the `fail_slab_alloc`
    /// knob) for every profile: `anon_vma_alloc()` and
    /// `anon_vma_chain_alloc()` may fail, as explored choices.
    pub failslab: bool,
}

/// The platform a machine line pins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// Bare metal or an HVM guest.
    Native,
    /// A Xen PV guest.
    XenPv,
}

impl Default for Machine {
    /// One node, no THP, bare metal, no fault injection: the least
    /// surprising machine.
    fn default() -> Self {
        Machine {
            numa_nodes: 1,
            thp: Thp::Never,
            platform: None,
            failslab: false,
        }
    }
}

/// The `transparent_hugepage/enabled` policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thp {
    Always,
    Madvise,
    Never,
}

/// `file <name> size=N fill=V`: a regular file on disk whose blocks all
/// hold `fill`, nothing of it cached, before any process starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDecl {
    pub name: String,
    pub size: u64,
    pub fill: u8,
    pub span: Span,
}

/// What the scenario author expects when running against one kernel profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    pub profile: String,
    /// `knob=value` overrides (an ablation of the profile).
    pub knobs: Vec<(String, String)>,
    pub verdict: ExpectedVerdict,
    pub span: Span,
}

/// The expected outcome of exploring a scenario under one profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectedVerdict {
    /// No execution reports anything.
    Clean,
    /// Some execution reports a finding whose text contains this substring.
    Finding(String),
}

/// One simulated process: a sequential setup, then concurrent threads.
/// A `child` is a process too, created by a `fork()` in its parent's setup.
#[derive(Debug, Clone, PartialEq)]
pub struct Process {
    pub name: String,
    /// Runs to completion before any thread starts; empty when absent.
    pub setup: Vec<Stmt>,
    pub threads: Vec<Thread>,
    /// The processes this one's setup forks (`c = fork()` with a
    /// `child c { ... }` block), in the order of their `fork()`s.
    pub children: Vec<Process>,
    /// `process <name>` or `child <name>`.
    pub span: Span,
}

impl Process {
    /// This process and its descendants, parents before children and
    /// siblings in fork order: the order the interpreter creates them in.
    pub fn family(&self) -> Vec<&Process> {
        let mut all = vec![self];
        for child in &self.children {
            all.extend(child.family());
        }
        all
    }

    /// The child that `fork()` binds to `name`.
    pub fn child(&self, name: &str) -> Option<&Process> {
        self.children.iter().find(|c| c.name == name)
    }
}

impl Scenario {
    /// Every process of the scenario, children included, in creation order.
    pub fn all_processes(&self) -> Vec<&Process> {
        self.processes.iter().flat_map(Process::family).collect()
    }
}

/// One thread of a process; its body interleaves with all other threads.
#[derive(Debug, Clone, PartialEq)]
pub struct Thread {
    pub name: String,
    /// The NUMA node the thread runs on (0 unless `node=` says otherwise).
    pub node: u32,
    pub body: Vec<Stmt>,
    pub span: Span,
}

/// `[bind =] op(...)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    /// The variable receiving the result: the address `mmap` returns, or
    /// the child process of a `fork`.
    pub bind: Option<String>,
    pub op: Op,
    pub span: Span,
    /// `=> outcome | ...`: what the statement may do; empty when the
    /// scenario does not say.
    pub expect: Vec<Outcome>,
}

/// What a statement did, as a scenario expects it (`=> ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A call returned without error, or a user access completed.
    Ok,
    /// A call returned this value.
    Value(u64),
    /// A call failed with this errno (`ENOMEM`).
    Errno(&'static str),
    /// A user access raised this signal (`SIGSEGV`), with this `si_code`
    /// (`SEGV_ACCERR`) if the scenario names one.
    Signal(&'static str, Option<&'static str>),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok => f.write_str("ok"),
            Outcome::Value(v) => write!(f, "{v:#x}"),
            Outcome::Errno(e) => f.write_str(e),
            Outcome::Signal(s, None) => f.write_str(s),
            Outcome::Signal(s, Some(c)) => write!(f, "{s}({c})"),
        }
    }
}

/// The errno names a statement's outcome may name, with their numbers
/// (asm-generic/errno-base.h).
pub const ERRNOS: &[(&str, i32)] = &[
    ("EPERM", 1),
    ("ENOENT", 2),
    ("EINTR", 4),
    ("EIO", 5),
    ("EBADF", 9),
    ("EAGAIN", 11),
    ("ENOMEM", 12),
    ("EACCES", 13),
    ("EFAULT", 14),
    ("EBUSY", 16),
    ("EEXIST", 17),
    ("EINVAL", 22),
    ("EFBIG", 27),
];

/// The signals a user access may raise, with their `si_code`s.
pub const SIGNALS: &[(&str, &[&str])] = &[
    ("SIGSEGV", &["SEGV_MAPERR", "SEGV_ACCERR"]),
    ("SIGBUS", &["BUS_ADRERR"]),
];

/// A system call or kernel activity, with checked arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Mmap {
        addr: Expr,
        len: Expr,
        prot: u32,
        flags: u32,
        align: Option<Expr>,
        /// The file of a file mapping (`fd`), with the byte offset.
        file: Option<(String, Expr)>,
    },
    /// `ftruncate(f, len)`.
    Ftruncate {
        file: String,
        len: Expr,
    },
    /// `pwrite(f, off, len, value [, O_DIRECT])`: `len` bytes of `value`.
    Pwrite {
        file: String,
        off: Expr,
        len: Expr,
        value: u8,
        direct: bool,
    },
    /// `pread(f, off, len [, expect=V])`.
    Pread {
        file: String,
        off: Expr,
        len: Expr,
        expect: Option<u8>,
    },
    /// `remap_file_pages(addr, len, pgoff)`.
    RemapFilePages {
        addr: Expr,
        len: Expr,
        pgoff: Expr,
    },
    /// `msync(addr, len)` with MS_SYNC.
    Msync {
        addr: Expr,
        len: Expr,
    },
    Munmap {
        addr: Expr,
        len: Expr,
    },
    Mprotect {
        addr: Expr,
        len: Expr,
        prot: u32,
    },
    Madvise {
        addr: Expr,
        len: Expr,
        advice: Advice,
    },
    /// Store `value` at `addr`, or at every byte of `[addr+lo, addr+hi)`.
    Write {
        addr: Expr,
        range: Option<(Expr, Expr)>,
        value: u8,
    },
    /// Load `addr`, or every byte of `[addr+lo, addr+hi)`; optionally
    /// check that each loaded byte equals `expect`.
    Read {
        addr: Expr,
        range: Option<(Expr, Expr)>,
        expect: Option<u8>,
    },
    /// One pass of NUMA-balancing scanning (`task_numa_work`) over a range.
    NumaScan {
        addr: Expr,
        len: Expr,
    },
    /// `reclaim(addr, len)`: `shrink_page_list()` on the anonymous pages
    /// mapped in the range, as kswapd would (`page_referenced`,
    /// `add_to_swap`, `try_to_unmap`).
    Reclaim {
        addr: Expr,
        len: Expr,
    },
    /// `hibernate()`: `shrink_all_memory()` over every page on the LRU, the
    /// hibernation path.
    Hibernate,
    /// `fork()`: `dup_mmap` the caller's address space into the process
    /// [`Process::child`] names, which then runs its own setup.
    Fork {
        child: String,
    },
    /// `exit()`: the calling task drops its mm (`mmput`); the last user
    /// tears it down.
    Exit,
}

/// The `madvise` advice values supported in v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advice {
    DontNeed,
    HugePage,
    NoHugePage,
}

/// An integer expression. Constant sub-expressions are already folded, so
/// only expressions involving variables remain as `Add`/`Sub`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Int(u64),
    Var(String, Span),
    Add(Box<Expr>, Box<Expr>),
    Sub(Box<Expr>, Box<Expr>),
}

impl Expr {
    /// Evaluates the expression, looking variables up with `vars`.
    ///
    /// Arithmetic is checked: addresses near the top of the address space
    /// must produce an error, not wrap around silently.
    pub fn eval(&self, vars: &dyn Fn(&str) -> Option<u64>) -> Result<u64, String> {
        match self {
            Expr::Int(v) => Ok(*v),
            Expr::Var(name, _) => vars(name).ok_or_else(|| format!("unbound variable '{name}'")),
            Expr::Add(a, b) => add(a.eval(vars)?, b.eval(vars)?),
            Expr::Sub(a, b) => sub(a.eval(vars)?, b.eval(vars)?),
        }
    }
}

/// Checked addition with the error text shared by folding and evaluation.
pub(crate) fn add(a: u64, b: u64) -> Result<u64, String> {
    a.checked_add(b)
        .ok_or_else(|| format!("integer overflow: {a:#x} + {b:#x} does not fit in 64 bits"))
}

/// Checked subtraction with the error text shared by folding and evaluation.
pub(crate) fn sub(a: u64, b: u64) -> Result<u64, String> {
    a.checked_sub(b)
        .ok_or_else(|| format!("integer underflow: {a:#x} - {b:#x} is negative"))
}

impl fmt::Display for Thp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Thp::Always => "always",
            Thp::Madvise => "madvise",
            Thp::Never => "never",
        })
    }
}

/// `PROT_*` values, as in Linux `<asm-generic/mman-common.h>`.
pub mod prot {
    pub use mm::mmap::{PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE};
}

/// `MAP_*` values, as in Linux `<asm-generic/mman-common.h>` (x86).
pub mod map_flags {
    pub use mm::mmap::{
        MAP_ANONYMOUS, MAP_FIXED, MAP_NORESERVE, MAP_POPULATE, MAP_PRIVATE, MAP_SHARED,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<u64> {
        match name {
            "p" => Some(0x1000),
            "top" => Some(u64::MAX),
            _ => None,
        }
    }

    fn var(name: &str) -> Box<Expr> {
        Box::new(Expr::Var(name.to_string(), Span::default()))
    }

    #[test]
    fn eval_adds_and_subtracts() {
        let e = Expr::Sub(
            Box::new(Expr::Add(var("p"), Box::new(Expr::Int(16)))),
            Box::new(Expr::Int(1)),
        );
        assert_eq!(e.eval(&vars), Ok(0x100f));
    }

    #[test]
    fn eval_reports_overflow_underflow_and_unbound() {
        let over = Expr::Add(var("top"), Box::new(Expr::Int(1)));
        assert!(over.eval(&vars).unwrap_err().contains("overflow"));
        let under = Expr::Sub(Box::new(Expr::Int(1)), var("p"));
        assert!(under.eval(&vars).unwrap_err().contains("underflow"));
        assert_eq!(
            var("q").eval(&vars),
            Err("unbound variable 'q'".to_string())
        );
    }

    #[test]
    fn span_to_joins_on_one_line_only() {
        let a = Span::new(3, 5, 2);
        assert_eq!(a.to(Span::new(3, 10, 3)), Span::new(3, 5, 8));
        assert_eq!(a.to(Span::new(4, 1, 1)), a);
    }
}
