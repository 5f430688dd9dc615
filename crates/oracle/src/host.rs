//! Running ops against the host kernel, in a forked child.
//!
//! Touches are probed in process with a signal handler that fixes up the
//! instruction pointer (no longjmp, no unwinding across frames): the load or
//! store sits at a known label in a tiny assembly routine; on SIGSEGV or
//! SIGBUS at that label the handler records the signal and `si_code` in RAX
//! and resumes at the routine's end. Any other fault restores the default
//! action and re-faults, so a real crash still crashes.

use std::ffi::CString;

use crate::ops::{
    fnv1a, uses_file, FileView, Obs, Op, ProcView, Request, SequenceResult, Touch, VmaView,
    FILE_PAGES,
};
use crate::{PAGE, WINDOW_BASE, WINDOW_PAGES};

std::arch::global_asm!(
    ".globl mmrace_probe_read",
    "mmrace_probe_read:",
    "    xor eax, eax",
    ".globl mmrace_probe_read_insn",
    "mmrace_probe_read_insn:",
    "    movzx eax, byte ptr [rdi]",
    ".globl mmrace_probe_read_end",
    "mmrace_probe_read_end:",
    "    ret",
    ".globl mmrace_probe_write",
    "mmrace_probe_write:",
    "    xor eax, eax",
    ".globl mmrace_probe_write_insn",
    "mmrace_probe_write_insn:",
    "    mov byte ptr [rdi], sil",
    ".globl mmrace_probe_write_end",
    "mmrace_probe_write_end:",
    "    ret",
);

extern "C" {
    fn mmrace_probe_read(addr: *const u8) -> u32;
    fn mmrace_probe_write(addr: *mut u8, value: u8) -> u32;
    static mmrace_probe_read_insn: u8;
    static mmrace_probe_read_end: u8;
    static mmrace_probe_write_insn: u8;
    static mmrace_probe_write_end: u8;
}

/// Set in RAX by the handler: a fault happened (bits 16..24 the signal,
/// 0..16 `si_code`).
const FAULTED: u32 = 1 << 31;

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid ucontext_t and siginfo_t to an
    // SA_SIGINFO handler; only registers of the interrupted context change.
    unsafe {
        let uc = ctx.cast::<libc::ucontext_t>();
        let rip = &mut (*uc).uc_mcontext.gregs[libc::REG_RIP as usize];
        let resume = if *rip == std::ptr::addr_of!(mmrace_probe_read_insn) as i64 {
            std::ptr::addr_of!(mmrace_probe_read_end) as i64
        } else if *rip == std::ptr::addr_of!(mmrace_probe_write_insn) as i64 {
            std::ptr::addr_of!(mmrace_probe_write_end) as i64
        } else {
            // Not a probe: a genuine crash, which must stay one.
            libc::signal(sig, libc::SIG_DFL);
            return;
        };
        let code = ((*info).si_code as u32) & 0xffff;
        (*uc).uc_mcontext.gregs[libc::REG_RAX as usize] =
            i64::from(FAULTED | ((sig as u32 & 0xff) << 16) | code);
        *rip = resume;
    }
}

fn install_handlers() {
    // SAFETY: a plain sigaction with an async-signal-safe handler.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_fault as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGSEGV, &sa, std::ptr::null_mut());
        libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut());
    }
}

fn decode_probe(r: u32) -> Touch {
    if r & FAULTED == 0 {
        return Touch::Ok(r as u8);
    }
    let (sig, code) = ((r >> 16) & 0xff, r & 0xffff);
    match (sig as i32, code as i32) {
        (libc::SIGBUS, _) => Touch::BusAdrErr,
        (_, 1) => Touch::SegvMapErr,
        _ => Touch::SegvAccErr,
    }
}

fn errno() -> i64 {
    // SAFETY: reading the thread's errno.
    i64::from(unsafe { *libc::__errno_location() })
}

fn addr(pg: u64) -> u64 {
    WINDOW_BASE + pg * PAGE
}

/// `MAP_FIXED_NOREPLACE` (glibc 2.28 headers may lack it).
const MAP_FIXED_NOREPLACE: i32 = 0x100000;
/// `PR_SET_MEMORY_MERGE` (6.4+).
const PR_SET_MEMORY_MERGE: i32 = 67;

/// The child's open files and the way it reads VMAs.
struct Host {
    pagemap: libc::c_int,
    maps: libc::c_int,
    procmap_query: bool,
    /// The sequence's memfd (-1 without file ops).
    memfd: libc::c_int,
    /// Process 1, once forked.
    child: std::cell::RefCell<Option<ChildProc>>,
    /// The process ops run in (0 or 1).
    current: std::cell::Cell<u8>,
    /// The zero page's pfn as pagemap shows it (0 when PFNs are hidden).
    zero_pfn: u64,
}

/// Bits 0..54 of a pagemap entry: the pfn.
const PM_PFN_MASK: u64 = (1 << 55) - 1;

/// Process 1 as process 0 sees it: its pid and command pipes.
struct ChildProc {
    pid: libc::pid_t,
    cmd: std::fs::File,
    reply: std::io::BufReader<std::fs::File>,
}

/// What process 0 asks process 1.
#[derive(serde::Serialize, serde::Deserialize)]
enum ChildCmd {
    Run(Op),
    Observe,
    Exit,
}

impl ChildProc {
    fn ask<R: serde::de::DeserializeOwned>(&mut self, cmd: &ChildCmd) -> Option<R> {
        use std::io::{BufRead, Write};
        let mut line = serde_json::to_vec(cmd).ok()?;
        line.push(b'\n');
        self.cmd.write_all(&line).ok()?;
        let mut reply = String::new();
        self.reply.read_line(&mut reply).ok()?;
        serde_json::from_str(&reply).ok()
    }
}

impl Host {
    /// A host process's view over its open pagemap, maps and memfd: finds
    /// out whether PROCMAP_QUERY works and which pfn the zero page has.
    fn over(pagemap: libc::c_int, maps: libc::c_int, memfd: libc::c_int) -> Host {
        let mut host = Host {
            pagemap,
            maps,
            procmap_query: true,
            memfd,
            child: std::cell::RefCell::new(None),
            current: std::cell::Cell::new(0),
            zero_pfn: 0,
        };
        host.procmap_query = host.query_vmas().is_some();
        host.zero_pfn = zero_page_pfn(pagemap);
        host
    }

    /// THP and KSM off, fences around the window, probes installed.
    fn setup(files: bool) -> Result<Host, String> {
        // SAFETY: prctl, memfd and mmap calls with valid arguments; the
        // fences are placed with MAP_FIXED_NOREPLACE, so nothing is replaced.
        unsafe {
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
            libc::prctl(PR_SET_MEMORY_MERGE, 0, 0, 0, 0);
            let name = CString::new("mmrace-fence").unwrap();
            let fd = libc::memfd_create(name.as_ptr(), 0);
            if fd < 0 || libc::ftruncate(fd, PAGE as i64) != 0 {
                return Err(format!("memfd for the fences: errno {}", errno()));
            }
            for at in [WINDOW_BASE - PAGE, WINDOW_BASE + WINDOW_PAGES * PAGE] {
                let p = libc::mmap(
                    at as *mut libc::c_void,
                    PAGE as usize,
                    libc::PROT_NONE,
                    libc::MAP_SHARED | MAP_FIXED_NOREPLACE,
                    fd,
                    0,
                );
                if p as u64 != at {
                    return Err(format!("fence at {at:#x}: errno {}", errno()));
                }
            }
            libc::close(fd);
            let pagemap = open("/proc/self/pagemap")?;
            let maps = open("/proc/self/maps")?;
            install_handlers();
            let memfd = if files {
                let name = CString::new("mmrace-file").unwrap();
                let fd = libc::memfd_create(name.as_ptr(), 0);
                if fd < 0 {
                    return Err(format!("memfd for the file ops: errno {}", errno()));
                }
                fd
            } else {
                -1
            };
            Ok(Host::over(pagemap, maps, memfd))
        }
    }

    fn run(&self, op: &Op, full: bool) -> Obs {
        let (ret, touch) = match op {
            Op::Fork => (self.fork(), None),
            Op::Switch { pid } => (self.switch(*pid), None),
            Op::Exit => (self.exit_child(), None),
            _ if self.current.get() == 1 => self.in_child(op),
            _ => self.execute(op),
        };
        if !full {
            return Obs::result_only(ret, touch);
        }
        let child = self
            .child
            .borrow_mut()
            .as_mut()
            .and_then(|c| c.ask::<ProcView>(&ChildCmd::Observe));
        Obs {
            ret,
            touch,
            vmas: self.vmas(),
            pages: self.pages(),
            file: (self.memfd >= 0).then(|| self.file_view()),
            child,
        }
    }

    /// Runs `op` in process 1.
    fn in_child(&self, op: &Op) -> (i64, Option<Touch>) {
        let mut child = self.child.borrow_mut();
        let c = child
            .as_mut()
            .expect("current is 1 only while process 1 lives");
        c.ask(&ChildCmd::Run(op.clone()))
            .unwrap_or((-libc::EIO as i64, None))
    }

    fn switch(&self, pid: u8) -> i64 {
        match pid {
            0 => self.current.set(0),
            1 if self.child.borrow().is_some() => self.current.set(1),
            _ => return -crate::ops::ESRCH,
        }
        0
    }

    /// `fork()` of process 0; process 1 serves commands until told to exit.
    fn fork(&self) -> i64 {
        if self.child.borrow().is_some() {
            return 1;
        }
        let (mut to_child, mut to_parent) = ([0; 2], [0; 2]);
        // SAFETY: pipes and fork in a single-threaded process; the new
        // process only serves commands and _exits.
        unsafe {
            if libc::pipe2(to_child.as_mut_ptr(), libc::O_CLOEXEC) != 0
                || libc::pipe2(to_parent.as_mut_ptr(), libc::O_CLOEXEC) != 0
            {
                return -errno();
            }
            let pid = libc::fork();
            if pid < 0 {
                return -errno();
            }
            if pid == 0 {
                libc::close(to_child[1]);
                libc::close(to_parent[0]);
                serve_child(self.memfd, to_child[0], to_parent[1]);
            }
            libc::close(to_child[0]);
            libc::close(to_parent[1]);
            use std::os::fd::FromRawFd;
            *self.child.borrow_mut() = Some(ChildProc {
                pid,
                cmd: std::fs::File::from_raw_fd(to_child[1]),
                reply: std::io::BufReader::new(std::fs::File::from_raw_fd(to_parent[0])),
            });
        }
        0
    }

    /// Process 1 exits; process 0 reaps it.
    fn exit_child(&self) -> i64 {
        let Some(mut c) = self.child.borrow_mut().take() else {
            return -crate::ops::ESRCH;
        };
        use std::io::Write;
        let mut line = serde_json::to_vec(&ChildCmd::Exit).unwrap_or_default();
        line.push(b'\n');
        let _ = c.cmd.write_all(&line);
        drop(c.cmd);
        let mut status = 0;
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(c.pid, &mut status, 0) };
        self.current.set(0);
        0
    }

    fn execute(&self, op: &Op) -> (i64, Option<Touch>) {
        // SAFETY: every call targets the fenced window, which holds nothing
        // of this process; touches go through the fault-probing routines.
        let r = unsafe {
            match *op {
                Op::Mmap {
                    pg,
                    n,
                    prot,
                    noreserve,
                    noreplace,
                } => {
                    let mut flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
                    flags |= if noreplace {
                        MAP_FIXED_NOREPLACE
                    } else {
                        libc::MAP_FIXED
                    };
                    if noreserve {
                        flags |= libc::MAP_NORESERVE;
                    }
                    let p = libc::mmap(
                        addr(pg) as *mut libc::c_void,
                        (n * PAGE) as usize,
                        prot.bits(),
                        flags,
                        -1,
                        0,
                    );
                    if p == libc::MAP_FAILED {
                        -errno()
                    } else {
                        (p as u64).wrapping_sub(WINDOW_BASE) as i64
                    }
                }
                Op::Munmap { pg, n } => status(libc::munmap(
                    addr(pg) as *mut libc::c_void,
                    (n * PAGE) as usize,
                )),
                Op::Mprotect { pg, n, prot } => status(libc::mprotect(
                    addr(pg) as *mut libc::c_void,
                    (n * PAGE) as usize,
                    prot.bits(),
                )),
                Op::Dontneed { pg, n } => status(libc::madvise(
                    addr(pg) as *mut libc::c_void,
                    (n * PAGE) as usize,
                    libc::MADV_DONTNEED,
                )),
                Op::Mremap {
                    pg,
                    old_n,
                    new_n,
                    flags,
                    new_pg,
                } => {
                    let r = libc::syscall(
                        libc::SYS_mremap,
                        addr(pg),
                        old_n * PAGE,
                        new_n * PAGE,
                        flags,
                        addr(new_pg),
                    );
                    if r == -1 {
                        -errno()
                    } else {
                        (r as u64).wrapping_sub(WINDOW_BASE) as i64
                    }
                }
                Op::MmapFile {
                    pg,
                    n,
                    prot,
                    shared,
                    file_pg,
                } => {
                    let kind = if shared {
                        libc::MAP_SHARED
                    } else {
                        libc::MAP_PRIVATE
                    };
                    let p = libc::mmap(
                        addr(pg) as *mut libc::c_void,
                        (n * PAGE) as usize,
                        prot.bits(),
                        kind | libc::MAP_FIXED,
                        self.memfd,
                        (file_pg * PAGE) as i64,
                    );
                    if p == libc::MAP_FAILED {
                        -errno()
                    } else {
                        (p as u64).wrapping_sub(WINDOW_BASE) as i64
                    }
                }
                Op::Ftruncate { len } => status(libc::ftruncate(self.memfd, len as i64)),
                Op::Pwrite { off, len, value } => {
                    let buf = vec![value; len as usize];
                    let n = libc::pwrite(self.memfd, buf.as_ptr().cast(), buf.len(), off as i64);
                    if n < 0 {
                        -errno()
                    } else {
                        n as i64
                    }
                }
                Op::Pread { off } => {
                    let mut b = [0u8; 1];
                    let n = libc::pread(self.memfd, b.as_mut_ptr().cast(), 1, off as i64);
                    if n < 0 {
                        return (-errno(), None);
                    }
                    return (n as i64, (n == 1).then_some(Touch::Ok(b[0])));
                }
                // Process ops are handled by run(); in process 1 they are
                // not forwarded.
                Op::Fork | Op::Switch { .. } | Op::Exit => -libc::EINVAL as i64,
                Op::Touch { pg, off, value } => {
                    let at = (addr(pg) + off) as *mut u8;
                    let r = match value {
                        None => mmrace_probe_read(at),
                        Some(v) => match mmrace_probe_write(at, v) {
                            0 => u32::from(v),
                            fault => fault,
                        },
                    };
                    return (0, Some(decode_probe(r)));
                }
            }
        };
        (r, None)
    }

    /// The memfd's size and page hashes up to EOF.
    fn file_view(&self) -> FileView {
        // SAFETY: fstat and pread into owned buffers.
        unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            libc::fstat(self.memfd, &mut st);
            let size = st.st_size as u64;
            let mut buf = vec![0u8; size.min(FILE_PAGES * PAGE) as usize];
            let n = libc::pread(self.memfd, buf.as_mut_ptr().cast(), buf.len(), 0);
            buf.truncate(n.max(0) as usize);
            FileView {
                size,
                pages: buf.chunks(PAGE as usize).map(fnv1a).collect(),
            }
        }
    }

    /// Residency of the window's pages from /proc/self/pagemap.
    fn pages(&self) -> String {
        let mut buf = vec![0u8; (WINDOW_PAGES * 8) as usize];
        let off = (WINDOW_BASE / PAGE * 8) as i64;
        // SAFETY: reading into an owned buffer of the given size.
        let n = unsafe { libc::pread(self.pagemap, buf.as_mut_ptr().cast(), buf.len(), off) };
        if n != buf.len() as isize {
            return "?".repeat(WINDOW_PAGES as usize);
        }
        buf.chunks_exact(8)
            .map(|c| {
                let e = u64::from_le_bytes(c.try_into().unwrap());
                let pfn = e & PM_PFN_MASK;
                match (e >> 63 & 1, e >> 61 & 1, e >> 56 & 1) {
                    (0, _, _) => '.',
                    (_, 1, _) => 'f',
                    (_, _, 1) => 'X',
                    // Not exclusive: the zero page, or (with PFNs visible,
                    // as root) an anonymous page shared after fork.
                    _ if pfn != 0 && pfn != self.zero_pfn => 's',
                    _ => 'z',
                }
            })
            .collect()
    }

    fn vmas(&self) -> Vec<VmaView> {
        if self.procmap_query {
            if let Some(v) = self.query_vmas() {
                return v;
            }
        }
        self.text_vmas()
    }

    /// The VMAs of the window through the PROCMAP_QUERY ioctl (6.11+).
    fn query_vmas(&self) -> Option<Vec<VmaView>> {
        let end = WINDOW_BASE + WINDOW_PAGES * PAGE;
        let mut out = Vec::new();
        let mut at = WINDOW_BASE;
        while at < end {
            let mut q = ProcmapQuery {
                size: std::mem::size_of::<ProcmapQuery>() as u64,
                query_flags: PROCMAP_QUERY_COVERING_OR_NEXT_VMA,
                query_addr: at,
                ..ProcmapQuery::default()
            };
            // SAFETY: the ioctl fills the struct it is given.
            let r = unsafe { libc::ioctl(self.maps, PROCMAP_QUERY, &mut q as *mut ProcmapQuery) };
            if r != 0 {
                if errno() == i64::from(libc::ENOENT) {
                    break;
                }
                return None;
            }
            if q.vma_start >= end {
                break;
            }
            let perms = format!(
                "{}{}{}{}",
                if q.vma_flags & 1 != 0 { 'r' } else { '-' },
                if q.vma_flags & 2 != 0 { 'w' } else { '-' },
                if q.vma_flags & 4 != 0 { 'x' } else { '-' },
                if q.vma_flags & 8 != 0 { 's' } else { 'p' },
            );
            push_clipped(&mut out, q.vma_start, q.vma_end, perms);
            at = q.vma_end;
        }
        Some(out)
    }

    /// The VMAs of the window from /proc/self/maps text (before 6.11).
    fn text_vmas(&self) -> Vec<VmaView> {
        let text = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
        let mut out = Vec::new();
        for line in text.lines() {
            let mut fields = line.split_whitespace();
            let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
                continue;
            };
            let Some((s, e)) = range.split_once('-') else {
                continue;
            };
            let (Ok(s), Ok(e)) = (u64::from_str_radix(s, 16), u64::from_str_radix(e, 16)) else {
                continue;
            };
            push_clipped(&mut out, s, e, perms.to_string());
        }
        out
    }
}

/// The zero page's pfn: read-fault a scratch anonymous page (outside the
/// window) and look it up in pagemap. 0 if PFNs are hidden (not root).
fn zero_page_pfn(pagemap: libc::c_int) -> u64 {
    // SAFETY: a private scratch mapping, read once through a volatile load,
    // then unmapped; pread into a local.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            PAGE as usize,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return 0;
        }
        std::ptr::read_volatile(p.cast::<u8>());
        let mut e = [0u8; 8];
        let off = (p as u64 / PAGE * 8) as i64;
        let n = libc::pread(pagemap, e.as_mut_ptr().cast(), 8, off);
        libc::munmap(p, PAGE as usize);
        if n != 8 {
            return 0;
        }
        u64::from_le_bytes(e) & PM_PFN_MASK
    }
}

fn push_clipped(out: &mut Vec<VmaView>, start: u64, end: u64, perms: String) {
    let (lo, hi) = (WINDOW_BASE, WINDOW_BASE + WINDOW_PAGES * PAGE);
    if end <= lo || start >= hi {
        return;
    }
    out.push(VmaView {
        start: (start.max(lo) - lo) / PAGE,
        end: (end.min(hi) - lo) / PAGE,
        perms,
    });
}

/// `struct procmap_query` (include/uapi/linux/fs.h, 6.11).
#[repr(C)]
#[derive(Default)]
struct ProcmapQuery {
    size: u64,
    query_flags: u64,
    query_addr: u64,
    vma_start: u64,
    vma_end: u64,
    vma_flags: u64,
    vma_page_size: u64,
    vma_offset: u64,
    inode: u64,
    dev_major: u32,
    dev_minor: u32,
    vma_name_size: u32,
    build_id_size: u32,
    vma_name_addr: u64,
    build_id_addr: u64,
}

/// `PROCMAP_QUERY_COVERING_OR_NEXT_VMA`.
const PROCMAP_QUERY_COVERING_OR_NEXT_VMA: u64 = 0x10;
/// `_IOWR('f', 17, struct procmap_query)`.
const PROCMAP_QUERY: libc::c_ulong = (3 << 30)
    | ((std::mem::size_of::<ProcmapQuery>() as libc::c_ulong) << 16)
    | ((b'f' as libc::c_ulong) << 8)
    | 17;

fn open(path: &str) -> Result<libc::c_int, String> {
    let c = CString::new(path).unwrap();
    // SAFETY: opening a path for reading.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(format!("open {path}: errno {}", errno()));
    }
    Ok(fd)
}

fn status(r: libc::c_int) -> i64 {
    if r == 0 {
        0
    } else {
        -errno()
    }
}

/// Runs a whole sequence in this (freshly forked) process. Process 1, if
/// any, is reaped before the result is written.
pub fn run_sequence(req: &Request) -> SequenceResult {
    match Host::setup(uses_file(&req.ops)) {
        Ok(host) => {
            let obs = req
                .ops
                .iter()
                .enumerate()
                .map(|(i, op)| host.run(op, req.full_at(i, req.ops.len())))
                .collect();
            host.exit_child();
            SequenceResult::Ran(obs)
        }
        Err(e) => SequenceResult::SetupFailed(e),
    }
}

/// Process 1's loop: run ops and observe itself on request, until told to
/// exit (or its command pipe closes).
fn serve_child(memfd: libc::c_int, cmd: libc::c_int, reply: libc::c_int) -> ! {
    use std::io::{BufRead, Write};
    use std::os::fd::FromRawFd;
    // SAFETY: the descriptors are this process's ends of its pipes.
    let (input, mut output) = unsafe {
        (
            std::io::BufReader::new(std::fs::File::from_raw_fd(cmd)),
            std::fs::File::from_raw_fd(reply),
        )
    };
    let (Ok(pagemap), Ok(maps)) = (open("/proc/self/pagemap"), open("/proc/self/maps")) else {
        // SAFETY: leaving without running destructors, as after fork.
        unsafe { libc::_exit(1) }
    };
    let me = Host::over(pagemap, maps, memfd);
    for line in input.lines() {
        let Ok(line) = line else { break };
        let text = match serde_json::from_str::<ChildCmd>(&line) {
            Ok(ChildCmd::Run(op)) => serde_json::to_string(&me.execute(&op)),
            Ok(ChildCmd::Observe) => serde_json::to_string(&ProcView {
                vmas: me.vmas(),
                pages: me.pages(),
            }),
            Ok(ChildCmd::Exit) | Err(_) => break,
        };
        let Ok(mut text) = text else { break };
        text.push('\n');
        if output.write_all(text.as_bytes()).is_err() {
            break;
        }
    }
    // SAFETY: leaving without running destructors, as after fork.
    unsafe { libc::_exit(0) }
}
