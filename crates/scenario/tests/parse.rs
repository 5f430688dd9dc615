//! End-to-end tests of the scenario language through the public API.

use proptest::prelude::*;
use scenario::{
    map_flags::*, parse_file, parse_str, prot::*, Advice, ExpectedVerdict, Expr, Machine, Op, Span,
    Thp,
};

const EXAMPLE: &str = r#"# 001: NUMA scan vs THP migration (comment to end of line, '#')
scenario "numa-scan-vs-thp-migration"
machine numa-nodes=2 thp=always
budget 100000
expect linux-6.1.159: finding "bad pmd"
expect linux-6.5:     clean

process app {
  setup {
    p = mmap(NULL, 2M, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, align=2M)
    write(p, 0..2M, 0x5a)        # fill the whole range with byte 0x5a
    numa_scan(p, 2M)
  }
  thread scanner { numa_scan(p, 2M) }
  thread user node=1 {
    read(p + 4096)
    madvise(p, 2M, MADV_DONTNEED)
  }
}
"#;

const MB2: u64 = 2 << 20;

fn var(name: &str, line: u32, col: u32) -> Expr {
    Expr::Var(name.to_string(), Span::new(line, col, 1))
}

#[test]
fn example_parses_into_the_expected_tree() {
    let s = parse_str("001.txt", EXAMPLE).expect("example parses");
    assert_eq!(s.name, "numa-scan-vs-thp-migration");
    assert_eq!(s.file, "001.txt");
    assert_eq!(s.source, EXAMPLE);
    assert_eq!(
        s.machine,
        Machine {
            numa_nodes: 2,
            thp: Thp::Always,
            platform: None,
            failslab: false
        }
    );
    assert_eq!(s.budget, Some(100_000));
    assert_eq!(s.expects.len(), 2);
    assert_eq!(s.expects[0].profile, "linux-6.1.159");
    assert_eq!(
        s.expects[0].verdict,
        ExpectedVerdict::Finding("bad pmd".to_string())
    );
    assert_eq!(s.expects[0].span, Span::new(5, 1, 39));
    assert_eq!(s.expects[1].profile, "linux-6.5");
    assert_eq!(s.expects[1].verdict, ExpectedVerdict::Clean);

    assert_eq!(s.processes.len(), 1);
    let app = &s.processes[0];
    assert_eq!(app.name, "app");
    assert_eq!(app.span, Span::new(8, 1, 11));
    assert_eq!(app.setup.len(), 3);

    let mmap = &app.setup[0];
    assert_eq!(mmap.bind.as_deref(), Some("p"));
    assert_eq!(mmap.span, Span::new(10, 5, 77));
    assert_eq!(
        mmap.op,
        Op::Mmap {
            addr: Expr::Int(0),
            len: Expr::Int(MB2),
            prot: PROT_READ | PROT_WRITE,
            flags: MAP_PRIVATE | MAP_ANONYMOUS,
            align: Some(Expr::Int(MB2)),
            file: None,
        }
    );
    assert_eq!(
        app.setup[1].op,
        Op::Write {
            addr: var("p", 11, 11),
            range: Some((Expr::Int(0), Expr::Int(MB2))),
            value: 0x5a,
        }
    );
    assert_eq!(app.setup[1].bind, None);

    assert_eq!(app.threads.len(), 2);
    let scanner = &app.threads[0];
    assert_eq!((scanner.name.as_str(), scanner.node), ("scanner", 0));
    assert_eq!(scanner.span, Span::new(14, 3, 14));
    assert_eq!(
        scanner.body[0].op,
        Op::NumaScan {
            addr: var("p", 14, 30),
            len: Expr::Int(MB2)
        }
    );

    let user = &app.threads[1];
    assert_eq!((user.name.as_str(), user.node), ("user", 1));
    assert_eq!(
        user.body[0].op,
        Op::Read {
            addr: Expr::Add(Box::new(var("p", 16, 10)), Box::new(Expr::Int(4096))),
            range: None,
            expect: None,
        }
    );
    assert_eq!(
        user.body[1].op,
        Op::Madvise {
            addr: var("p", 17, 13),
            len: Expr::Int(MB2),
            advice: Advice::DontNeed
        }
    );
}

/// The fork example of the crate doc.
const FORK_EXAMPLE: &str = r#"process parent {
  setup {
    p = mmap(NULL, 8K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
    write(p, 0..8K, 0x22)
    c = fork()                   # dup_mmap: the child maps the same pages, COW
    write(p, 0x11)               # the parent's copy only
  }
  thread reader { read(p, expect=0x11) }
  child c {
    setup { read(p, expect=0x22); g = fork() }
    thread writer { write(p + 4K, 0x33); exit() }
    child g { thread idle { read(p + 4K, expect=0x22) } }
  }
}
"#;

#[test]
fn fork_example_parses_into_a_process_tree() {
    let s = parse_str("fork.mmr", FORK_EXAMPLE).expect("fork example parses");
    assert_eq!(s.processes.len(), 1, "children are not top-level processes");
    let parent = &s.processes[0];
    assert_eq!(parent.setup[2].bind.as_deref(), Some("c"));
    assert_eq!(
        parent.setup[2].op,
        Op::Fork {
            child: "c".to_string()
        }
    );
    assert_eq!(parent.setup[2].span, Span::new(5, 5, 10));
    let c = parent.child("c").expect("child c");
    assert_eq!(c.span, Span::new(9, 3, 7));
    assert_eq!(c.setup[1].op, Op::Fork { child: "g".into() });
    assert_eq!(c.threads[0].name, "writer");
    assert_eq!(c.threads[0].body[1].op, Op::Exit);
    // The child's statements use the parent's `p`, bound before the fork.
    assert_eq!(
        c.setup[0].op,
        Op::Read {
            addr: var("p", 10, 18),
            range: None,
            expect: Some(0x22)
        }
    );
    let g = c.child("g").expect("grandchild g");
    assert_eq!(g.threads[0].name, "idle");
    let order: Vec<&str> = s.all_processes().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(order, ["parent", "c", "g"]);
}

/// The crate doc of lib.rs, without its `//!` markers.
fn crate_doc() -> String {
    include_str!("../src/lib.rs")
        .lines()
        .filter_map(|l| l.strip_prefix("//! ").or(l.strip_prefix("//!")))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn the_crate_doc_shows_the_fork_example() {
    assert!(
        crate_doc().contains(FORK_EXAMPLE),
        "lib.rs and FORK_EXAMPLE differ"
    );
}

#[test]
fn children_come_in_fork_order_and_may_have_only_a_setup() {
    let src = "process a {\n  setup { d = fork(); c = fork() }\n  child c { setup { exit() } }\n  \
               child d { thread t { exit() } }\n}\n";
    let s = parse_str("order.mmr", src).expect("parses");
    let names: Vec<&str> = s.processes[0]
        .children
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["d", "c"], "fork order, not block order");
    assert_eq!(s.processes[0].children[1].setup[0].op, Op::Exit);
    assert!(s.processes[0].threads.is_empty());
}

/// A minimal valid scenario with `stmt` on line 4, column 5, in a thread
/// that can see `p` (a page mapped in the setup).
fn in_thread(stmt: &str) -> String {
    format!(
        "process a {{\n  setup {{ p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS) }}\n  \
         thread t {{\n    {stmt}\n  }}\n}}\n"
    )
}

#[test]
fn defaults_and_other_forms() {
    let src = format!(
        "machine xen-pv\n{}",
        in_thread(
            "x = mmap(p + 4K, (1 + 2) + 0x1_000 - 3, PROT_NONE, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED); \
             write(x, 7); read(x, 1..2, expect=0); mprotect(x - 1, 1, PROT_EXEC); munmap(x, 4096)"
        )
    );
    let s = parse_str("seeds/000_f54f.txt", &src).expect("parses");
    assert_eq!(s.name, "000_f54f", "name defaults to the file stem");
    assert_eq!(
        s.machine,
        Machine {
            numa_nodes: 1,
            thp: Thp::Never,
            platform: Some(scenario::ast::Platform::XenPv),
            failslab: false
        }
    );
    assert_eq!(s.budget, None);
    let body = &s.processes[0].threads[0].body;
    assert_eq!(body.len(), 5);
    let Op::Mmap {
        addr, len, flags, ..
    } = &body[0].op
    else {
        panic!("not mmap: {:?}", body[0].op)
    };
    assert_eq!(
        *addr,
        Expr::Add(Box::new(var("p", 5, 14)), Box::new(Expr::Int(4096)))
    );
    assert_eq!(*len, Expr::Int(4096), "constants are folded");
    assert_eq!(*flags, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED);
    assert!(matches!(
        body[1].op,
        Op::Write {
            value: 7,
            range: None,
            ..
        }
    ));
    assert!(matches!(
        body[2].op,
        Op::Read {
            expect: Some(0),
            range: Some((Expr::Int(1), Expr::Int(2))),
            ..
        }
    ));
    assert!(matches!(
        &body[3].op,
        Op::Mprotect {
            addr: Expr::Sub(..),
            prot: 4,
            ..
        }
    ));
    let value = |name: &str| (name == "x").then_some(0x10_0000);
    let Op::Mprotect { addr, .. } = &body[3].op else {
        unreachable!()
    };
    assert_eq!(addr.eval(&value), Ok(0xf_ffff));
}

#[test]
fn crlf_line_endings_are_accepted() {
    let src = in_thread("read(p)").replace('\n', "\r\n");
    assert!(parse_str("crlf.txt", &src).is_ok());
}

/// Each case: input, expected line, expected column, message substring.
fn malformed_cases() -> Vec<(String, u32, u32, &'static str)> {
    let t = in_thread;
    vec![
        (t("frob()"), 4, 5, "unknown call 'frob'; expected one of: mmap, munmap, mprotect, madvise, write, read, numa_scan, reclaim, hibernate, fork, exit"),
        (t("fork()"), 4, 5, "fork() needs a name for the child"),
        (t("munmap(p, 4096, 1)"), 4, 21, "too many arguments to 'munmap'; expected munmap(addr, len)"),
        (t("munmap(p)"), 4, 13, "missing argument 'len' to 'munmap'"),
        (t("read(p"), 4, 11, "expected ')' after arguments, found newline"),
        (t("read(p 1)"), 4, 12, "expected ',' or ')' after argument, found '1'"),
        (format!("machine numa=2\n{}", t("read(p)")), 1, 9, "unknown machine setting 'numa'; expected one of: numa-nodes, thp, xen-pv, native, failslab"),
        ("machine numa-nodes=2\nprocess a {\n  thread user node=3 { read(0) }\n}\n".to_string(), 3, 15, "thread 'user' runs on node 3 but the machine has 2 NUMA nodes (numa-nodes=2)"),
        ("process a {\n  thread user node=1 { read(0) }\n}\n".to_string(), 2, 15, "runs on node 1 but the machine has 1 NUMA node (numa-nodes=1)"),
        (t("read(q)"), 4, 10, "unbound variable 'q'"),
        (t("read(r); r = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS)"), 4, 10, "unbound variable 'r'"),
        ("process a {\n  thread t1 { q = mmap(NULL, 1, PROT_READ, MAP_SHARED|MAP_ANONYMOUS) }\n  thread t2 { read(q) }\n}\n".to_string(), 3, 20, "unbound variable 'q'"),
        (format!("expect linux-6.5: clean\nexpect linux-6.5: finding \"x\"\n{}", t("read(p)")), 2, 8, "duplicate or contradictory expectation for 'linux-6.5'; the first one is at line 1"),
        (t("write(p, 256)"), 4, 14, "value 256 does not fit in a byte; expected 0..=255"),
        (t("read(p, expect=0x100)"), 4, 20, "expect value 256 does not fit in a byte"),
        (t("read(0xffffffffffffffff + 1)"), 4, 10, "integer overflow"),
        (t("read(1 - 2)"), 4, 10, "integer underflow"),
        (t("read(0x1_0000_0000_0000_0000)"), 4, 10, "does not fit in 64 bits"),
        (t("read(12ab)"), 4, 10, "invalid integer literal '12ab'"),
        (t("munmap(PROT_READ, 4096)"), 4, 12, "flag 'PROT_READ' is not allowed here"),
        (t("mprotect(p, 4096, 3)"), 4, 23, "expected PROT_* flags for 'prot', found an integer"),
        (t("mprotect(p, 4096, p)"), 4, 23, "expected PROT_* flags for 'prot', found 'p'"),
        (t("mprotect(p, 4096, MAP_SHARED)"), 4, 23, "expected PROT_* flags for 'prot', found 'MAP_SHARED'"),
        (t("madvise(p, 4096, MADV_FREE)"), 4, 22, "unknown flag 'MADV_FREE'; expected one of: MADV_DONTNEED"),
        (t("madvise(p, 4096, MADV_HUGEPAGE|MADV_DONTNEED)"), 4, 35, "single MADV_* advice"),
        (t("read(p | 1)"), 4, 12, "'|' combines flags"),
        (t("mmap(NULL, 4096, PROT_READ, MAP_PRIVATE)"), 4, 33, "a file mapping needs a file"),
        (t("mmap(NULL, 4096, PROT_READ, MAP_SHARED|MAP_ANONYMOUS, f)"), 4, 33, "MAP_ANONYMOUS takes no file"),
        (t("mmap(NULL, 4096, PROT_READ, MAP_SHARED, nofile)"), 4, 45, "no file named 'nofile'"),
        (format!("file f size=4K\n{}", t("mmap(NULL, 4096, PROT_READ, MAP_SHARED, f, 100)")), 5, 48, "not a multiple of the page size"),
        (format!("file f size=4K\n{}", t("pwrite(f, 0, 1, 7, O_SYNC)")), 5, 24, "the only pwrite flag is O_DIRECT"),
        (format!("file f size=4K\n{}", t("pwrite(f, 0, 1, 300)")), 5, 21, "value 300 does not fit in a byte"),
        (format!("file f\n{}", t("read(p)")), 1, 1, "file 'f' needs a size"),
        (format!("file f size=4K colour=red\n{}", t("read(p)")), 1, 16, "unknown file setting 'colour'"),
        (format!("file f size=4K fill=256\n{}", t("read(p)")), 1, 21, "fill 256 does not fit in a byte"),
        (format!("file f size=4K\nfile f size=8K\n{}", t("read(p)")), 2, 6, "duplicate file name 'f'"),
        (format!("expect linux-2.6.23 nope=on: clean\n{}", t("read(p)")), 1, 21, "unknown knob 'nope'"),
        (t("read(p) => ENOMEM"), 4, 16, "'read' cannot fail with ENOMEM; expected ok, SIGSEGV or SIGBUS"),
        (t("munmap(p, 4096) => SIGSEGV"), 4, 24, "'munmap' cannot raise SIGSEGV"),
        (t("write(p, 1) => SIGSEGV(BUS_ADRERR)"), 4, 28, "unknown si_code 'BUS_ADRERR' for SIGSEGV"),
        (t("munmap(p, 4096) => EWHAT"), 4, 24, "unknown outcome 'EWHAT'"),
        (t("munmap(p, 4096) => ENOMEM(X)"), 4, 31, "only a signal takes a si_code"),
        (t("munmap(p, 4096) =>"), 4, 23, "an outcome after '=>'"),
        (t("read(p) => 3"), 4, 16, "'read' has no value 3"),
        (format!("expect linux-2.6.23 fault_locks_page=maybe: clean\n{}", t("read(p)")), 1, 38, "knob 'fault_locks_page' cannot be 'maybe'"),
        (format!("expect linux-2.6.23 fault_locks_page=off: clean\nexpect linux-2.6.23 fault_locks_page=off: finding \"x\"\n{}", t("read(p)")), 2, 8, "duplicate or contradictory expectation"),
        (t("mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_SHARED|MAP_ANONYMOUS)"), 4, 33, "mutually exclusive"),
        (t("mmap(NULL, 4096, PROT_READ, MAP_ANONYMOUS)"), 4, 33, "exactly one of MAP_PRIVATE or MAP_SHARED"),
        (t("mmap(NULL, 4096, PROT_READ, MAP_SHARED|MAP_ANONYMOUS, align=3000)"), 4, 65, "align must be a power of two"),
        (t("write(p, 10..5, 1)"), 4, 14, "empty range 10..5"),
        (t("write(p, 0..5)"), 4, 18, "missing argument 'value' to 'write'"),
        (t("x = read(p)"), 4, 5, "'read' returns nothing to bind"),
        (t("NULL = mmap(NULL, 1, PROT_READ, MAP_SHARED|MAP_ANONYMOUS)"), 4, 5, "cannot bind 'NULL'"),
        (t("read(p, expct=1)"), 4, 13, "unknown named argument 'expct' for 'read'; expected: expect"),
        (t("read(p) read(p)"), 4, 13, "expected newline, ';' or '}' after statement, found 'read'"),
        (t("read(p @ 1)"), 4, 12, "found '@'"),
        ("process a {\n  thread t {\n    read(0)\n".to_string(), 3, 12, "expected '}' to close thread 't' (opened at line 2), found end of file"),
        ("process a {\n  thread t { read(0) }\n".to_string(), 2, 23, "expected '}' to close process 'a' (opened at line 1), found end of file"),
        (format!("scenario \"abc\n{}", t("read(p)")), 1, 10, "unterminated string"),
        (format!("expect x: finding \"a\\qb\"\n{}", t("read(p)")), 1, 21, "unknown escape"),
        (format!("expect linux-6.5 clean\n{}", t("read(p)")), 1, 18, "expected ':' after profile 'linux-6.5', found 'clean'"),
        (format!("expect linux: finding \"\"\n{}", t("read(p)")), 1, 23, "finding substring is empty"),
        (format!("machine thp=sometimes\n{}", t("read(p)")), 1, 13, "unknown thp mode 'sometimes'; expected one of: always, madvise, never"),
        (format!("machine numa-nodes=9\n{}", t("read(p)")), 1, 20, "numa-nodes must be between 1 and 8, found 9"),
        (format!("machine numa-nodes\n{}", t("read(p)")), 1, 9, "setting 'numa-nodes' needs a value"),
        (format!("machine xen-pv=1\n{}", t("read(p)")), 1, 9, "'xen-pv' is a flag and takes no value"),
        (format!("machine native=yes\n{}", t("read(p)")), 1, 9, "'native' is a flag and takes no value"),
        (format!("machine xen-pv native\n{}", t("read(p)")), 1, 16, "the machine line names two platforms"),
        (format!("machine\nmachine thp=always\n{}", t("read(p)")), 2, 1, "duplicate 'machine' line; the first one is at line 1"),
        (format!("budget 0\n{}", t("read(p)")), 1, 8, "budget must be at least 1"),
        (format!("budget many\n{}", t("read(p)")), 1, 8, "expected a number of executions after 'budget', found 'many'"),
        ("proces a {}\n".to_string(), 1, 1, "expected a top-level item (scenario, machine, budget, expect, file or process), found 'proces'"),
        ("process a {\n  read(0)\n}\n".to_string(), 2, 3, "statements go inside 'setup { ... }' or 'thread <name> { ... }'"),
        ("process a {\n  setup { read(0) }\n}\n".to_string(), 1, 1, "scenario has no threads"),
        ("# nothing\nmachine thp=always\n".to_string(), 2, 19, "scenario has no process"),
        ("process a {\n  thread t { read(0) }\n}\nprocess b {\n  thread t { read(0) }\n}\n".to_string(), 5, 3, "duplicate thread name 't'; the first one is at line 2"),
        ("process a {\n  thread t { read(0) }\n}\nprocess a {\n  thread u { read(0) }\n}\n".to_string(), 4, 1, "duplicate process name 'a'"),
        ("process a {\n  setup { read(0) }\n  setup { read(0) }\n  thread t { read(0) }\n}\n".to_string(), 3, 3, "more than one setup block"),
        ("process a {\n  thread t cpu=1 { read(0) }\n}\n".to_string(), 2, 12, "unknown thread setting 'cpu'; expected: node"),
        ("process a {\n  thread t\n  { read(0) }\n}\n".to_string(), 2, 11, "expected '{' to open thread 't', found newline"),
        // The earliest error wins even when items come out of order.
        ("process a {\n  thread t node=1 { read(q) }\n}\nmachine numa-nodes=0\n".to_string(), 2, 26, "unbound variable 'q'"),
        ("process a {\n  thread t node=1 { read(0) }\n}\nmachine numa-nodes=0\n".to_string(), 4, 20, "numa-nodes must be between 1 and 8, found 0"),
        // reclaim(), hibernate() and `machine failslab`.
        (t("reclaim(p)"), 4, 14, "missing argument 'len' to 'reclaim'; expected reclaim(addr, len)"),
        (t("reclaim()"), 4, 13, "missing argument 'addr' to 'reclaim'"),
        (t("reclaim(p, 4K, 4K)"), 4, 20, "too many arguments to 'reclaim'; expected reclaim(addr, len)"),
        (t("reclaim(p, len=4K)"), 4, 16, "unknown named argument 'len' for 'reclaim'; it takes none"),
        (t("reclaim(p, PROT_READ)"), 4, 16, "flag 'PROT_READ' is not allowed here"),
        (t("reclaim(q, 4K)"), 4, 13, "unbound variable 'q'"),
        (t("n = reclaim(p, 4K)"), 4, 5, "'reclaim' returns nothing to bind"),
        (t("hibernate(p)"), 4, 15, "too many arguments to 'hibernate'; expected hibernate()"),
        (t("hibernate(now=1)"), 4, 15, "unknown named argument 'now' for 'hibernate'; it takes none"),
        (t("n = hibernate()"), 4, 5, "'hibernate' returns nothing to bind"),
        (t("hibernate"), 4, 14, "expected '('"),
        (format!("machine failslab=on\n{}", t("read(p)")), 1, 9, "machine setting 'failslab' is a flag and takes no value; write just 'failslab'"),
        (format!("machine failslab thp=never failslab\n{}", t("read(p)")), 1, 28, "machine setting 'failslab' is given twice"),
    ]
}

/// A process `a` whose setup maps `p` and then runs `setup` (line 3),
/// with a thread `t` (line 4) and `rest` (from line 5 on).
fn forking(setup: &str, rest: &str) -> String {
    format!(
        "process a {{\n  setup {{ p = mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)\n    \
         {setup} }}\n  thread t {{ read(p) }}\n{rest}}}\n"
    )
}

/// fork() and exit(), as `malformed_cases`.
fn fork_and_exit_cases() -> Vec<(String, u32, u32, &'static str)> {
    let t = in_thread;
    let child = "  child c { thread u { read(p) } }\n";
    vec![
        (forking("read(p)", child), 5, 3, "child 'c' is never forked; expected 'c = fork()' in process 'a'"),
        (forking("c = fork()", ""), 3, 5, "fork() binds 'c' but process 'a' has no 'child c { ... }' block saying what the child runs"),
        (forking("c = fork(); c = fork()", child), 3, 17, "'c' is already bound to the child process forked at line 3; a child process needs a name of its own"),
        (forking("p = fork()", "  child p { thread u { read(0) } }\n"), 3, 5, "'p' is already bound to a variable at line 2"),
        (forking("c = fork(); c = mmap(NULL, 1, PROT_READ, MAP_SHARED|MAP_ANONYMOUS)", child), 3, 17, "'c' is already bound to the child process forked at line 3"),
        (forking("c = fork(); read(c)", child), 3, 22, "'c' is a child process (bound by fork() at line 3), not an integer"),
        (forking("c = fork()", "  thread t2 { write(c + 1, 0) }\n  child c { thread u { read(p) } }\n"), 5, 21, "'c' is a child process"),
        (forking("fork()", ""), 3, 5, "fork() needs a name for the child: write 'c = fork()'"),
        (forking("c = fork(p)", child), 3, 14, "too many arguments to 'fork'"),
        // A fork in a thread is refused, and its child block is not
        // blamed for it.
        ("process a {\n  thread t { c = fork() }\n  child c { thread u { read(0) } }\n}\n".to_string(), 3, 3, "child 'c' is forked by a thread, so it may only have a setup"),
        (forking("c = fork()", "  child c {\n    setup { q = mmap(NULL, 1, PROT_READ, MAP_SHARED|MAP_ANONYMOUS) }\n    thread u { d = fork() }\n  }\n"), 7, 16, "fork() binds 'd' but child 'c' has no 'child d { ... }' block"),
        // The child inherits what the parent bound before the fork only.
        (forking("c = fork(); q = mmap(NULL, 1, PROT_READ, MAP_SHARED|MAP_ANONYMOUS)", "  child c { thread u { read(q) } }\n"), 5, 29, "unbound variable 'q'"),
        // A grandchild's fork belongs in the child's setup.
        (forking("c = fork(); g = fork()", "  child c {\n    thread u { read(p) }\n    child g { thread v { read(p) } }\n  }\n"), 3, 17, "fork() binds 'g' but process 'a' has no 'child g { ... }' block"),
        (forking("c = fork()", "  child c {\n    thread u { read(p) }\n    child g { thread v { read(p) } }\n  }\n"), 7, 5, "child 'g' is never forked; expected 'g = fork()' in child 'c'"),
        (forking("c = fork()", "  child c { thread t { read(p) } }\n"), 5, 13, "duplicate thread name 't'; the first one is at line 4"),
        (forking("a = fork()", "  child a { thread u { read(p) } }\n"), 5, 3, "duplicate process name 'a'; the first one is at line 1"),
        (forking("c = fork()", "  child c { thread u { read(p) } }\n  child c { thread v { read(p) } }\n"), 6, 3, "duplicate process name 'c'; the first one is at line 5"),
        (forking("c = fork()", "  child c {\n    setup { read(p) }\n    setup { read(p) }\n  }\n"), 7, 5, "child 'c' has more than one setup block"),
        ("child c { thread u { read(0) } }\n".to_string(), 1, 1, "a 'child' block goes inside the process whose setup forks it"),
        ("process a {\n  thread t { read(0) }\n  child c thread\n}\n".to_string(), 3, 11, "expected '{' after child 'c', found 'thread'"),
        ("process a {\n  setup { c = fork() }\n  thread t { read(0) }\n  child c { read(0) }\n}\n".to_string(), 4, 13, "expected 'setup' or 'thread' in child 'c', found statement 'read'"),
        (t("exit(); read(p)"), 4, 13, "statement after exit() (line 4): the task has exited; exit() must be the last statement of its block"),
        (t("exit(1)"), 4, 10, "too many arguments to 'exit'; expected exit()"),
        (t("x = exit()"), 4, 5, "'exit' returns nothing to bind"),
        (forking("exit()", ""), 3, 5, "exit() in the setup of process 'a', which has threads that would never start"),
        (forking("c = fork()", "  child c {\n    setup { exit() }\n    thread u { read(p) }\n  }\n"), 6, 13, "exit() in the setup of child 'c', which has threads"),
    ]
}

/// The swap example of the crate doc.
const SWAP_EXAMPLE: &str = r#"process app {
  setup {
    p = mmap(NULL, 4K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
    write(p, 0x5a)
    c = fork()                   # parent and child map the page, COW
  }
  thread kswapd { reclaim(p, 4K) }            # swaps it out of both
  thread user { read(p, expect=0x5a) }        # do_swap_page, or no fault
  child c { thread cuser { read(p, expect=0x5a); exit() } }
}
"#;

#[test]
fn the_crate_doc_shows_the_swap_example_and_it_parses() {
    assert!(
        crate_doc().contains(SWAP_EXAMPLE),
        "lib.rs and SWAP_EXAMPLE differ"
    );
    let s = parse_str("swap.mmr", SWAP_EXAMPLE).expect("swap example parses");
    let kswapd = &s.processes[0].threads[0];
    assert_eq!(kswapd.name, "kswapd");
    assert_eq!(kswapd.body[0].span, Span::new(7, 19, 14));
    assert_eq!(
        kswapd.body[0].op,
        Op::Reclaim {
            addr: var("p", 7, 27),
            len: Expr::Int(4096)
        }
    );
    assert_eq!(s.processes[0].child("c").unwrap().threads[0].name, "cuser");
}

#[test]
fn reclaim_and_hibernate_parse_in_setups_and_threads() {
    let src = "machine numa-nodes=2 failslab thp=never native\nprocess a {\n  \
               setup { p = mmap(NULL, 8K, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS); hibernate(); \
               reclaim(p + 4K, 8K - 4K) }\n  thread t { hibernate()\n    reclaim(p, 2) }\n}\n";
    let s = parse_str("swap.mmr", src).expect("parses");
    assert_eq!(
        s.machine,
        Machine {
            numa_nodes: 2,
            thp: Thp::Never,
            platform: Some(scenario::ast::Platform::Native),
            failslab: true
        }
    );
    let a = &s.processes[0];
    assert_eq!(a.setup[1].op, Op::Hibernate);
    assert_eq!(a.setup[1].bind, None);
    assert_eq!(
        a.setup[2].op,
        Op::Reclaim {
            addr: Expr::Add(Box::new(var("p", 3, 90)), Box::new(Expr::Int(4096))),
            len: Expr::Int(4096),
        },
        "constants are folded"
    );
    let t = &a.threads[0].body;
    assert_eq!(
        (t[0].op.clone(), t[0].span),
        (Op::Hibernate, Span::new(4, 14, 11))
    );
    assert_eq!(
        t[1].op,
        Op::Reclaim {
            addr: var("p", 5, 13),
            len: Expr::Int(2)
        }
    );
    let plain = parse_str("plain.mmr", &in_thread("hibernate()")).expect("parses");
    assert!(!plain.machine.failslab, "failslab is off unless named");
}

#[test]
fn malformed_inputs_report_line_column_and_message() {
    for (src, line, col, needle) in malformed_cases().into_iter().chain(fork_and_exit_cases()) {
        let err = match parse_str("bad.txt", &src) {
            Ok(s) => panic!("parsed but should not:\n{src}\n{s:#?}"),
            Err(e) => e,
        };
        assert_eq!(
            (err.line, err.col),
            (line, col),
            "wrong place for:\n{src}\n{err}"
        );
        assert!(
            err.message.contains(needle),
            "message {:?} lacks {needle:?} for:\n{src}",
            err.message
        );
        assert_eq!(err.file, "bad.txt");
    }
}

#[test]
fn diagnostic_display_snapshot() {
    let src = "#\n#\n#\n#\n#\n#\n#\n#\nmachine numa-nodes=2\nprocess app {\n  \
               setup { p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS) }\n    \
               thread user node=3 { read(p) }\n}\n";
    let err = parse_str("001.txt", src).expect_err("node 3 is out of range");
    let want = "\
error: thread 'user' runs on node 3 but the machine has 2 NUMA nodes (numa-nodes=2)
  --> 001.txt:12:17
   |
12 |     thread user node=3 { read(p) }
   |                 ^^^^^^";
    assert_eq!(err.to_string(), want);
    assert_eq!(err.source_line, "    thread user node=3 { read(p) }");
}

#[test]
fn parse_file_reads_files_and_reports_io_errors() {
    let dir = std::env::temp_dir().join(format!("mmrace-scenario-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("042_example.txt");
    std::fs::write(&path, in_thread("read(p)")).expect("write temp file");
    let parsed = parse_file(&path);
    let missing = dir.join("missing.txt");
    let err = parse_file(&missing).expect_err("missing file");
    std::fs::remove_dir_all(&dir).ok();

    let s = parsed.expect("parses");
    assert_eq!(s.name, "042_example");
    assert_eq!(s.file, path.display().to_string());
    assert_eq!((err.line, err.col), (0, 0));
    assert!(err
        .message
        .starts_with(&format!("cannot read {}: ", missing.display())));
}

#[test]
fn scenario_diagnostic_quotes_the_source() {
    let s = parse_str("ex.txt", EXAMPLE).expect("parses");
    let d = s.diagnostic(s.processes[0].threads[1].span, "boom");
    assert_eq!(d.line, 15);
    assert_eq!(d.source_line, "  thread user node=1 {");
    assert!(d.to_string().contains("   |   ^^^^^^^^^^^"));
}

/// Applies byte-level-ish edits (on characters, so the text stays UTF-8).
fn mutate(src: &str, edits: &[(u8, usize, char)]) -> String {
    let mut chars: Vec<char> = src.chars().collect();
    for &(kind, at, c) in edits {
        let at = at % (chars.len() + 1);
        match kind % 3 {
            0 if at < chars.len() => {
                chars.remove(at);
            }
            1 => chars.insert(at, c),
            _ if at < chars.len() => chars[at] = c,
            _ => chars.push(c),
        }
    }
    chars.into_iter().collect()
}

/// Characters that matter to the grammar, so mutations reach deep states.
fn interesting_char() -> impl Strategy<Value = char> {
    prop_oneof![
        prop::sample::select(vec![
            '(', ')', '{', '}', ',', '=', '|', '+', '-', ':', ';', '.', '"', '#', '\n', ' ', '\\',
            '0', '9', 'x', 'K', 'M', 'G', '_', 'p', 'é', '\t', '\r'
        ]),
        any::<char>(),
    ]
}

/// Parsing must never panic, and a failure must render.
fn check_no_panic(src: &str) {
    if let Err(e) = parse_str("fuzz.txt", src) {
        let shown = e.to_string();
        assert!(shown.starts_with("error: "));
        assert!(e.line >= 1, "errors in text have a line: {e:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_strings_never_panic(src in any::<String>()) {
        check_no_panic(&src);
    }

    #[test]
    fn token_soup_never_panics(words in prop::collection::vec(prop::sample::select(vec![
        "process", "thread", "setup", "machine", "expect", "budget", "scenario", "{", "}", "(",
        ")", "\n", ";", ",", "=", "..", "p", "mmap", "read", "write", "NULL", "PROT_READ",
        "MAP_PRIVATE|MAP_ANONYMOUS", "0x5a", "2M", "+", "-", "|", "node=1", ":", "clean",
        "\"s\"", "0xffffffffffffffff", "child", "c = fork()", "fork", "exit()", "c",
    ]), 0..40)) {
        check_no_panic(&words.join(" "));
    }

    #[test]
    fn mutated_example_never_panics(
        edits in prop::collection::vec((any::<u8>(), any::<usize>(), interesting_char()), 1..8)
    ) {
        check_no_panic(&mutate(EXAMPLE, &edits));
    }

    #[test]
    fn mutated_fork_example_never_panics(
        edits in prop::collection::vec((any::<u8>(), any::<usize>(), interesting_char()), 1..8)
    ) {
        check_no_panic(&mutate(FORK_EXAMPLE, &edits));
    }
}
