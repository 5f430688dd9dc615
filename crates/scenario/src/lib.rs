//! The mmrace scenario language (v2): lexer, parser and semantic checks.
//!
//! A scenario describes a small program run against the memory-manager
//! model: some processes, each with a sequential `setup` and concurrent
//! `thread`s, the machine they run on, and what each kernel profile is
//! expected to report. The explorer runs the threads under many
//! interleavings and compares the outcome with the expectations.
//!
//! ```text
//! # 001: NUMA scan vs THP migration       ('#' starts a comment)
//! scenario "numa-scan-vs-thp-migration"
//! machine numa-nodes=2 thp=always
//! budget 100000
//! expect linux-6.1.159: finding "bad pmd"
//! expect linux-6.5:     clean
//!
//! process app {
//!   setup {
//!     p = mmap(NULL, 2M, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, align=2M)
//!     write(p, 0..2M, 0x5a)        # fill the whole range with byte 0x5a
//!     numa_scan(p, 2M)
//!   }
//!   thread scanner { numa_scan(p, 2M) }
//!   thread user node=1 {
//!     read(p + 4096)
//!     madvise(p, 2M, MADV_DONTNEED)
//!   }
//! }
//! ```
//!
//! # Top-level items
//!
//! Each item sits on its own line(s); they may come in any order.
//!
//! * `scenario "<name>"` — optional, at most once; defaults to the file stem.
//! * `machine key=value ...` — at most once. `numa-nodes=<1..=8>` (default 1),
//!   `thp=always|madvise|never` (default never), at most one of the
//!   bare flags `xen-pv` and `native`, which pin the platform (the `platform`
//!   knob) for every profile the scenario runs under (without one, each
//!   profile's own platform applies), and the bare flag `failslab`, which
//!   turns on CONFIG_FAILSLAB fault injection (the `fail_slab_alloc` knob)
//!   for every profile: each `anon_vma_alloc()` and `anon_vma_chain_alloc()`
//!   may fail, as a choice the explorer tries both ways. Xen PV needs a
//!   3.x-era profile (`pte_layout` v3_12/v3_16); those and the 2.6.34-era
//!   profiles (`pte_layout` v2_6_34) need `thp=never`: otherwise the run is
//!   an input error.
//! * `budget <n>` — optional number of executions to explore, at least 1.
//! * `expect <profile> [knob=value ...]: clean` or `expect <profile>
//!   [knob=value ...]: finding "<substring>"` — profile names are made of
//!   letters, digits, `.`, `-`, `_` and `+`; the `knob=value` overrides
//!   (as `--knob`) make the line an ablation of the profile: one fix taken
//!   out brings back its race. `finding "X"` is met when some execution
//!   within the budget reports a finding whose title, or a kernel line the
//!   same execution printed after it (its aftermath), contains X; runs for
//!   it go on past other findings (`mmrace run --want X` does the same by
//!   hand). A profile with its overrides may have several `finding`
//!   expectations, or one `clean`.
//! * `file <name> size=<bytes> [fill=<byte>]` — a regular file on disk
//!   (seed 003), every byte `fill` (default 0), nothing of it in the page
//!   cache, created before any process starts and shared by all of them.
//!   Regular files are modelled for the 2.6-era profiles (`linux-2.6.22`,
//!   `linux-2.6.23`; `pte_layout` v2_6_34); see [Files](#files).
//! * `process <name> { ... }` — one or more, with unique names. Inside: at
//!   most one `setup { ... }` block, which runs to completion first, and any
//!   number of `thread <name> [node=<n>] { ... }` blocks, which run
//!   concurrently. Thread names are unique across the scenario, `node` must
//!   be below `numa-nodes`, and the scenario needs at least one thread.
//!   A process may also hold `child <name> { ... }` blocks (see
//!   [Processes created by fork](#processes-created-by-fork)).
//!
//! # Statements
//!
//! One per line, or separated by `;`: `[var =] call(args) [=> outcome |
//! ...]` (see [Outcomes](#outcomes)). Only `mmap` (the mapped address)
//! and `fork` (the child process) return a value to bind.
//!
//! | call | arguments |
//! |------|-----------|
//! | `mmap` | `addr, len, prot, flags [, file [, offset]] [, align=N]` — `addr` may be `NULL`; `flags` need one of `MAP_PRIVATE`/`MAP_SHARED`, and `MAP_ANONYMOUS` exactly when no file is given (`MAP_SHARED` anonymous memory is not modelled); `offset` is in bytes, page aligned; `MAP_FIXED`, `MAP_NORESERVE`, `MAP_POPULATE` are allowed |
//! | `munmap` | `addr, len` |
//! | `mprotect` | `addr, len, prot` |
//! | `madvise` | `addr, len, advice` — `MADV_DONTNEED`, `MADV_HUGEPAGE` or `MADV_NOHUGEPAGE` |
//! | `write` | `addr, value` or `addr, lo..hi, value` — stores the byte `value` (0..=255) at `addr` or at every byte of `[addr+lo, addr+hi)` |
//! | `read` | `addr [, lo..hi] [, expect=V]` — loads, optionally checking each byte equals `V` |
//! | `numa_scan` | `addr, len` — one NUMA-balancing scan pass over the range (not under the 2.6-era profiles: NUMA balancing came in v3.8) |
//! | `reclaim` | `addr, len` — `shrink_page_list()` on the anonymous pages mapped in the range, as kswapd would: `page_referenced()`, `add_to_swap()`, `try_to_unmap()` (see [Swap](#swap)) |
//! | `hibernate` | none — `shrink_all_memory()` over every page on the LRU, the hibernation path |
//! | `fork` | none; `c = fork()` creates the child process `c` |
//! | `exit` | none; the calling task exits: last statement of its block |
//! | `pwrite` | `file, off, len, value [, O_DIRECT]` — writes `len` bytes of `value` at `off` (buffered through the page cache, or straight to disk with `O_DIRECT`) |
//! | `pread` | `file, off, len [, expect=V]` — a buffered `read()`; checks the bytes against the file (INV-DATA) and, with `expect`, against `V` |
//! | `ftruncate` | `file, len` — `vmtruncate()`: shrinks (or extends) the file |
//! | `remap_file_pages` | `addr, len, pgoff` — makes `[addr, addr+len)` of a `MAP_SHARED` file mapping show the file from page `pgoff` (a nonlinear VMA) |
//! | `msync` | `addr, len` — `MS_SYNC`: writes back the files of the shared file mappings in the range |
//!
//! # Outcomes
//!
//! Every run records what each statement did: a call returned (`ok`) or
//! failed with an errno (`-ENOMEM`); a user access completed, took page
//! faults the kernel handled (`faulted, fixed up`), or raised a signal
//! with its `si_code` (`SIGSEGV (SEGV_ACCERR)`, `SIGSEGV (SEGV_MAPERR)`,
//! `SIGBUS (BUS_ADRERR)`). A clean `run`, `verify` or `seeds` prints a
//! line per statement over all executions, e.g.
//!
//! ```text
//!   write(p + 1, 3)  line 4: SIGSEGV (SEGV_ACCERR) in 1/1
//! ```
//!
//! and `--json` has them under `statements`. A statement that fails the
//! same way in every execution gets a warning on stderr with its file,
//! line and column (a mistyped address turns a race scenario into one
//! that races nothing), unless the scenario says it expects that:
//!
//! ```text
//! mprotect(p, 4096, PROT_NONE) => 0          # returns 0
//! write(p, 1) => SIGSEGV                     # raises SIGSEGV (any si_code)
//! write(p, 1) => SIGSEGV(SEGV_ACCERR)        # ... with this si_code
//! r = mmap(NULL, 4K, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS) => ok | ENOMEM
//! munmap(p, 4096) => -EINVAL                 # an errno, with or without '-'
//! ```
//!
//! `=> outcome | outcome ...` lists what the statement may do: `ok` (a
//! call returned without error, an access completed), a number (the value
//! a call returned), an errno name (`ENOMEM`, `EINVAL`, `EEXIST`, ...;
//! calls only) or a signal (`SIGSEGV`, `SIGBUS`, optionally with its
//! `si_code`; `read` and `write` only). An outcome the list does not
//! allow is a finding of its own kind, "scenario expectation" (as a
//! `read(..., expect=V)` that reads something else), not a kernel one.
//!
//! A signal is fatal, as its default action is: the whole process dies.
//! The thread that took it runs no further statement; each other thread
//! of the process stops before its next one (the kill is delivered on the
//! way back to user space, `signal_group_exit()`); a thread that had
//! finished wakes and exits; the last task to drop the mm tears it down
//! (`exit_mmap`) while the other processes go on. A signal in a setup
//! kills the process before its threads start.
//!
//! # Expressions
//!
//! Integer positions take integer literals (`4096`, `0x1000`, `1_000`, with
//! an optional `K`, `M` or `G` suffix meaning ×1024, ×1024², ×1024³), `NULL`
//! (0), variables, `+`, `-` and parentheses. Arithmetic is checked: constant
//! parts are folded at parse time and overflow is an error. Flag positions
//! (`prot`, `flags`, `advice`) take flag names combined with `|`; flags are
//! not allowed in integer positions and vice versa.
//!
//! A variable is visible in its process's threads when bound in the setup,
//! and otherwise only later in the thread that binds it.
//!
//! # Processes created by fork
//!
//! ```text
//! process parent {
//!   setup {
//!     p = mmap(NULL, 8K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
//!     write(p, 0..8K, 0x22)
//!     c = fork()                   # dup_mmap: the child maps the same pages, COW
//!     write(p, 0x11)               # the parent's copy only
//!   }
//!   thread reader { read(p, expect=0x11) }
//!   child c {
//!     setup { read(p, expect=0x22); g = fork() }
//!     thread writer { write(p + 4K, 0x33); exit() }
//!     child g { thread idle { read(p + 4K, expect=0x22) } }
//!   }
//! }
//! ```
//!
//! | construct | meaning |
//! |-----------|---------|
//! | `c = fork()` | `dup_mmap` copies the caller's address space (private pages become copy-on-write in both), the new process `c` runs its own setup at once, then the caller goes on. A failed fork (`ENOMEM`) creates no child. In a thread, the fork runs among the other threads, and the child may only have a setup (the forking thread runs it, in the child); its mm lives until the end of the execution. |
//! | `child c { ... }` | inside the block of the process whose setup binds `c = fork()`: what `c` runs, written like a process (`setup`, `thread`s, and `child` blocks for the processes `c`'s own setup forks). |
//! | `exit()` | the calling task exits: `mmput`; the last task using the mm tears it down (`exit_mmap`, then `check_mm`) while the other processes go on. |
//!
//! Rules:
//!
//! * The child starts with the variables its parent bound before the
//!   fork, with the same values (the address space is copied, so the
//!   addresses are the same); the parent's later bindings are not its own.
//! * A child is a process: its name is unique among all processes, its
//!   threads' names among all threads, and its threads run concurrently
//!   with every other thread once all setups are done. Reports name it
//!   by its scenario name.
//! * `c` names the child only: binding it again, or using it as an
//!   integer, is an error. A `child` block needs its `fork()` and a
//!   `fork()` its `child` block.
//! * A child forked by a thread may only have a setup: the explorer's
//!   actors exist from the start of an execution, and a child's threads
//!   would need to wait for the fork.
//! * `exit()` ends a thread or a setup; a statement after it in the same
//!   block is an error, and so is `exit()` in the setup of a process with
//!   threads (they would never start). A process has one task for each of
//!   its threads (`mm_users`), or one for a setup alone: a process that has
//!   no threads stays alive, like a sleeping process, until the end of the
//!   execution unless its setup ends with `exit()`. At the end, every
//!   process still alive exits.
//! * The model cannot copy a THP (`copy_huge_pmd()`, or a subpage of one
//!   mapped by a pte), a swap entry outside the 2.6.34 era or a pmd
//!   migration entry, nor fork under a 3.x-era Xen PV profile: such a fork
//!   in a setup is an input error at its line and column; in a thread,
//!   where it is looked at under the parent's mmap_lock, the scenario is
//!   refused at run time (a hunt counts it as coverage). Pte migration
//!   entries are copied (`copy_nonpresent_pte()`).
//!
//! # Swap
//!
//! Under the 2.6.34-era profiles (`linux-2.6.34-*` and `linux-2.6.36`,
//! `pte_layout` v2_6_34), `reclaim()` and `hibernate()` swap pages out:
//! each reclaimed page goes to the swap cache (`add_to_swap()`) and every
//! pte mapping it, in any process, becomes a swap entry
//! (`try_to_unmap()`). A later `read` or `write` of such a page faults it
//! back in (`do_swap_page()`); no statement is needed for that. Reclaim
//! walks the page's anon_vma without the mapping processes' `mmap_sem`,
//! so it races with their forks, exits and munmaps.
//!
//! ```text
//! process app {
//!   setup {
//!     p = mmap(NULL, 4K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
//!     write(p, 0x5a)
//!     c = fork()                   # parent and child map the page, COW
//!   }
//!   thread kswapd { reclaim(p, 4K) }            # swaps it out of both
//!   thread user { read(p, expect=0x5a) }        # do_swap_page, or no fault
//!   child c { thread cuser { read(p, expect=0x5a); exit() } }
//! }
//! ```
//!
//! The other profiles model no swap: a scenario that calls `reclaim()` or
//! `hibernate()` under one of them is an input error.
//!
//! # Files
//!
//! Seed 003's harnesses: a regular file, a shared mapping of it, a thread
//! faulting it and another writing it with `O_DIRECT` or truncating it.
//!
//! ```text
//! expect linux-2.6.22:                      finding "INV-PC-COHERENT"
//! expect linux-2.6.23:                      clean
//! expect linux-2.6.23 fault_locks_page=off: finding "INV-PC-COHERENT"
//!
//! file data size=4K fill=0x11              # one block on disk, all 0x11
//!
//! process harness {
//!   setup { p = mmap(NULL, 4K, PROT_READ|PROT_WRITE, MAP_SHARED, data, 0) }
//!   thread faulter { read(p); read(p) }
//!   thread dio { pwrite(data, 0, 4K, 0x22, O_DIRECT) }
//! }
//! ```
//!
//! A file's contents live in its page cache and on its disk blocks; loads
//! and stores through a mapping reach page-cache pages (or, in a private
//! mapping after a write, a copy). The checkers compare them with what the
//! program wrote: a `pwrite` or `ftruncate` takes effect when it returns,
//! a store through a shared mapping at once. A user access to a file
//! while a write to it is in flight makes the written pages undecided
//! (mixing O_DIRECT with mapped I/O may leave either version) until a
//! write covers them again; what such a race breaks structurally is
//! INV-PC-COHERENT's to find: a pte that maps a page the page cache no
//! longer holds (an orphan), a page at the wrong index, or, once a
//! truncate returned, anything mapped past EOF.
//!
//! # Errors
//!
//! [`parse_str`] and [`parse_file`] report the first error in the file as
//! a [`Diagnostic`], which displays like a rustc error with the offending
//! line quoted and underlined.

pub mod ast;
mod check;
pub mod diag;
pub mod interp;
mod lexer;
pub mod outcome;
mod parser;

use std::path::Path;

pub use ast::{
    map_flags, prot, Advice, Expect, ExpectedVerdict, Expr, Machine, Op, Process, Scenario, Span,
    Stmt, Thp, Thread,
};
pub use diag::Diagnostic;

/// Parses and checks the scenario in `src`. `file` names it in diagnostics
/// and provides the default scenario name (its stem).
///
/// # Errors
///
/// The first error in the file (syntax first, then meaning), located by
/// line and column.
pub fn parse_str(file: &str, src: &str) -> Result<Scenario, Diagnostic> {
    let tokens = lexer::lex(src);
    let end = tokens.last().map_or(Span::new(1, 1, 1), |t| t.span);
    let raw = parser::parse(tokens).map_err(|e| e.into_diagnostic(file, src))?;
    let source = check::Source {
        file,
        text: src,
        end,
    };
    check::check(&source, &raw).map_err(|e| e.into_diagnostic(file, src))
}

/// Reads and parses a scenario file. A file that cannot be read (missing,
/// not UTF-8, ...) gives a diagnostic with line and column 0.
///
/// # Errors
///
/// As [`parse_str`], plus I/O errors.
pub fn parse_file(path: &Path) -> Result<Scenario, Diagnostic> {
    let src = std::fs::read_to_string(path).map_err(|e| Diagnostic::io(path, &e))?;
    parse_str(&path.display().to_string(), &src)
}

impl Scenario {
    /// A statement as its source line writes it (binding included).
    pub fn stmt_text(&self, stmt: &Stmt) -> String {
        let line = self
            .source
            .lines()
            .nth(stmt.span.line.saturating_sub(1) as usize)
            .unwrap_or("");
        let from = line.chars().skip(stmt.span.col.saturating_sub(1) as usize);
        from.take(stmt.span.len.max(1) as usize)
            .collect::<String>()
            .trim()
            .to_string()
    }

    /// The `machine` line's settings, as the file would write them.
    pub fn machine_line(&self) -> String {
        let m = &self.machine;
        let thp = match m.thp {
            Thp::Always => "always",
            Thp::Madvise => "madvise",
            Thp::Never => "never",
        };
        let mut line = format!("numa-nodes={} thp={thp}", m.numa_nodes);
        match m.platform {
            Some(ast::Platform::XenPv) => line += " xen-pv",
            Some(ast::Platform::Native) => line += " native",
            None => {}
        }
        if m.failslab {
            line += " failslab";
        }
        line
    }

    /// A diagnostic at `span` of this scenario's source, for errors found
    /// later (e.g. by the interpreter at run time).
    pub fn diagnostic(&self, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(&self.file, &self.source, span, message)
    }
}
