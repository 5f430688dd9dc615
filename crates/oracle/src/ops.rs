//! The op language and the observations, shared by the model and the host.
//!
//! Addresses are window-relative page numbers; lengths are in pages, except
//! where an op deliberately carries an invalid byte length.

use std::fmt;

use serde::{Deserialize, Serialize};

/// `PROT_*` combinations the generator uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Prot {
    None,
    Read,
    ReadWrite,
}

impl Prot {
    pub fn bits(self) -> i32 {
        match self {
            Prot::None => 0,
            Prot::Read => 1,
            Prot::ReadWrite => 3,
        }
    }
}

/// One operation of a sequence.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Op {
    /// `mmap(base + pg, n pages, prot, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED
    /// [|MAP_NORESERVE])`; `noreplace` uses MAP_FIXED_NOREPLACE instead.
    Mmap {
        pg: u64,
        n: u64,
        prot: Prot,
        noreserve: bool,
        noreplace: bool,
    },
    /// `munmap(base + pg, n pages)`.
    Munmap { pg: u64, n: u64 },
    /// `mprotect(base + pg, n pages, prot)`.
    Mprotect { pg: u64, n: u64, prot: Prot },
    /// `madvise(base + pg, n pages, MADV_DONTNEED)`.
    Dontneed { pg: u64, n: u64 },
    /// `mremap(base + pg, old_n pages, new_n pages, flags, base + new_pg)`
    /// with `flags` of MREMAP_MAYMOVE (1), MREMAP_FIXED (2) and
    /// MREMAP_DONTUNMAP (4).
    Mremap {
        pg: u64,
        old_n: u64,
        new_n: u64,
        flags: u64,
        new_pg: u64,
    },
    /// `mmap(base + pg, n pages, prot, MAP_SHARED or MAP_PRIVATE | MAP_FIXED,
    /// memfd, file_pg pages)`.
    MmapFile {
        pg: u64,
        n: u64,
        prot: Prot,
        shared: bool,
        file_pg: u64,
    },
    /// `ftruncate(memfd, len)` (bytes).
    Ftruncate { len: u64 },
    /// `pwrite(memfd, [value; len], off)` (bytes).
    Pwrite { off: u64, len: u64, value: u8 },
    /// `pread(memfd, 1 byte, off)`: `ret` is the bytes read, `touch` the byte.
    Pread { off: u64 },
    /// `fork()` of process 0: the child is process 1 (ignored, `ret` 1, if
    /// a child exists). Ops keep running in the current process.
    Fork,
    /// Run the following ops in process `pid` (-ESRCH if it does not exist).
    Switch { pid: u8 },
    /// Process 1 exits (-ESRCH without one); process 0 becomes current.
    Exit,
    /// A user load (`value: None`) or store of one byte at `base + pg*4096 + off`.
    Touch {
        pg: u64,
        off: u64,
        value: Option<u8>,
    },
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Mmap {
                pg,
                n,
                prot,
                noreserve,
                noreplace,
            } => {
                let fixed = if *noreplace {
                    "MAP_FIXED_NOREPLACE"
                } else {
                    "MAP_FIXED"
                };
                let nr = if *noreserve { "|MAP_NORESERVE" } else { "" };
                write!(
                    f,
                    "mmap(pg {pg}, {n} pages, {prot:?}, MAP_PRIVATE|MAP_ANONYMOUS|{fixed}{nr})"
                )
            }
            Op::Munmap { pg, n } => write!(f, "munmap(pg {pg}, {n} pages)"),
            Op::Mprotect { pg, n, prot } => write!(f, "mprotect(pg {pg}, {n} pages, {prot:?})"),
            Op::Dontneed { pg, n } => write!(f, "madvise(pg {pg}, {n} pages, MADV_DONTNEED)"),
            Op::Mremap {
                pg,
                old_n,
                new_n,
                flags,
                new_pg,
            } => {
                let names: Vec<&str> = [(1, "MAYMOVE"), (2, "FIXED"), (4, "DONTUNMAP")]
                    .iter()
                    .filter(|(b, _)| flags & b != 0)
                    .map(|(_, n)| *n)
                    .collect();
                let names = if names.is_empty() {
                    "0".to_string()
                } else {
                    names.join("|")
                };
                write!(
                    f,
                    "mremap(pg {pg}, {old_n} -> {new_n} pages, {names}, new pg {new_pg})"
                )
            }
            Op::MmapFile {
                pg,
                n,
                prot,
                shared,
                file_pg,
            } => {
                let kind = if *shared { "MAP_SHARED" } else { "MAP_PRIVATE" };
                write!(f, "mmap(pg {pg}, {n} pages, {prot:?}, {kind}|MAP_FIXED, memfd, file pg {file_pg})")
            }
            Op::Ftruncate { len } => write!(f, "ftruncate(memfd, {len:#x})"),
            Op::Pwrite { off, len, value } => {
                write!(f, "pwrite(memfd, {value:#04x} x {len:#x}, {off:#x})")
            }
            Op::Pread { off } => write!(f, "pread(memfd, 1, {off:#x})"),
            Op::Fork => write!(f, "fork()"),
            Op::Switch { pid } => write!(f, "switch to process {pid}"),
            Op::Exit => write!(f, "exit of process 1"),
            Op::Touch { pg, off, value } => match value {
                None => write!(f, "read  pg {pg} + {off:#x}"),
                Some(v) => write!(f, "write pg {pg} + {off:#x} = {v:#04x}"),
            },
        }
    }
}

/// What a touch did.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Touch {
    /// The access completed; the byte read (or written).
    Ok(u8),
    /// SIGSEGV, SEGV_MAPERR.
    SegvMapErr,
    /// SIGSEGV, SEGV_ACCERR.
    SegvAccErr,
    /// SIGBUS, BUS_ADRERR.
    BusAdrErr,
}

/// One VMA inside the window, in window pages.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct VmaView {
    pub start: u64,
    pub end: u64,
    /// `rw-p` style.
    pub perms: String,
}

/// What one side observed after one op.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Obs {
    /// Return value (0 or an address offset) or `-errno`; for a touch, 0.
    pub ret: i64,
    /// The touch's outcome, for a touch.
    pub touch: Option<Touch>,
    /// VMAs intersecting the window, clipped to it.
    pub vmas: Vec<VmaView>,
    /// Residency per window page: `.` none, `z` the zero page, `s` an
    /// anonymous page shared with another process (told apart from the zero
    /// page by pfn, so only where PFNs are visible: as root), `X` an
    /// exclusive anonymous page, `f` a file page.
    pub pages: String,
    /// The memfd after the op (sequences with file ops only).
    pub file: Option<FileView>,
    /// Process 1's VMAs and residency, while it exists.
    pub child: Option<ProcView>,
}

impl Obs {
    /// The op's result alone, on the fast path between full observations.
    pub fn result_only(ret: i64, touch: Option<Touch>) -> Obs {
        Obs {
            ret,
            touch,
            vmas: Vec::new(),
            pages: String::new(),
            file: None,
            child: None,
        }
    }
}

/// One process's VMAs in the window and residency.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ProcView {
    pub vmas: Vec<VmaView>,
    pub pages: String,
}

/// `ESRCH`.
pub const ESRCH: i64 = 3;

/// A file's size and contents, as FNV-1a hashes of each page up to EOF.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct FileView {
    pub size: u64,
    pub pages: Vec<u64>,
}

/// Pages the memfd may span.
pub const FILE_PAGES: u64 = 16;

/// The file view's page hash: FNV-1a over little-endian 64-bit words
/// (the tail zero-padded), then the length.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(word)).wrapping_mul(0x0100_0000_01b3);
    }
    (h ^ bytes.len() as u64).wrapping_mul(0x0100_0000_01b3)
}

/// Whether a sequence has file ops (then both sides observe the file).
pub fn uses_file(ops: &[Op]) -> bool {
    ops.iter().any(|o| {
        matches!(
            o,
            Op::MmapFile { .. } | Op::Ftruncate { .. } | Op::Pwrite { .. } | Op::Pread { .. }
        )
    })
}

/// A sequence to run, and how often to observe the whole state: after op
/// `i` when `i % every == every - 1`, and after the last op. Between, only
/// the return value and touch outcome are recorded (the fast path: a
/// divergence of hidden state shows at the next full observation).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Request {
    pub ops: Vec<Op>,
    pub every: u64,
}

impl Request {
    /// Whether op `i` of `len` is fully observed.
    pub fn full_at(&self, i: usize, len: usize) -> bool {
        let every = self.every.max(1) as usize;
        i + 1 == len || i % every == every - 1
    }
}

/// A whole sequence's observations, or why the host could not run it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum SequenceResult {
    Ran(Vec<Obs>),
    /// The child could not set up the window (e.g. the address was taken).
    SetupFailed(String),
}

/// Per-page `perms` view of a VMA list (`-` for unmapped): the L0
/// mapping view, which does not depend on merge decisions.
pub fn page_view(vmas: &[VmaView], pages: u64) -> Vec<String> {
    let mut view = vec!["----".to_string(); pages as usize];
    for v in vmas {
        for pg in v.start..v.end.min(pages) {
            view[pg as usize] = v.perms.clone();
        }
    }
    view
}
