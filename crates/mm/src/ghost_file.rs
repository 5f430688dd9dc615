//! Ghost state of regular files (seed 003's INV-DATA and the EOF clause
//! of INV-PC-COHERENT): what `read()` and every mapping of each file page
//! may legitimately show, kept by the syscall and user-access layers,
//! never by the kernel code under test.
//!
//! A file operation (pwrite, ftruncate) takes effect when it returns: while
//! it is in flight its pages are not judged (the page cache and the disk
//! legitimately hold either version). A user access (a load or store
//! through a mapping, a `read()`) to a page an O_DIRECT write is writing
//! races with it: afterwards the page may hold the old or the new data,
//! as the kernel documents for mixing O_DIRECT with buffered or mapped
//! I/O, until the page is written again.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use crate::mm_types::{PageData, PAGE_SIZE};

/// One file's expected state.
#[derive(Default, Clone)]
struct FileGhost {
    /// `i_size` as of the last size change that returned.
    size: u64,
    /// Contents each page below EOF may hold (pages absent read zero).
    pages: BTreeMap<u64, Rc<Vec<PageData>>>,
    in_flight: Vec<FileOp>,
    /// User accesses to the file in progress (begun, not returned).
    accessing: u32,
    /// `read()`s in progress: what their pages held since they began.
    reads: Vec<ReadWindow>,
}

/// What the pages a `read()` covers held while it ran: the read copies
/// each page at one instant, so any of these versions is a correct result.
#[derive(Clone)]
pub struct ReadWindow {
    token: u64,
    /// Pages `[first, last)` the read covers.
    first: u64,
    last: u64,
    /// Each page's versions since the read began; `None` once it was not
    /// judged at some point (an operation over it in flight, past EOF).
    seen: BTreeMap<u64, Option<Vec<PageData>>>,
}

impl ReadWindow {
    /// What page `index` may have been copied as, `None` if it is not
    /// judged.
    pub fn accept(&self, index: u64) -> Option<&[PageData]> {
        self.seen.get(&index)?.as_deref()
    }

    /// Page `index` now may hold `versions` (`None`: not judged).
    fn saw(&mut self, index: u64, versions: Option<&[PageData]>) {
        if !(self.first..self.last).contains(&index) {
            return;
        }
        let entry = self.seen.entry(index).or_insert(None);
        match (entry.as_mut(), versions) {
            (Some(seen), Some(new)) => seen.extend(new.iter().cloned()),
            _ => *entry = None,
        }
    }
}

#[derive(Clone)]
struct FileOp {
    token: u64,
    /// Pages `[first, last)` the operation writes.
    first: u64,
    last: u64,
    /// It changes `i_size` (ftruncate, an extending write).
    resizes: bool,
    /// A user access to its pages ran while it was in flight.
    raced: bool,
}

impl FileGhost {
    /// What page `index` may hold now, `None` if it is not judged.
    fn accept(&self, index: u64) -> Option<Rc<Vec<PageData>>> {
        let busy = self
            .in_flight
            .iter()
            .any(|o| o.resizes || (o.first..o.last).contains(&index));
        if busy || index >= self.size.div_ceil(PAGE_SIZE) {
            return None;
        }
        let accept = self
            .pages
            .get(&index)
            .cloned()
            .unwrap_or_else(|| Rc::new(vec![PageData::zero()]));
        (!accept.is_empty()).then_some(accept)
    }

    /// Every `read()` in progress saw what pages `[first, last)` may hold
    /// now.
    fn reads_see(&mut self, first: u64, last: u64) {
        for index in first..last {
            let now = self.accept(index);
            for r in &mut self.reads {
                r.saw(index, now.as_deref().map(Vec::as_slice));
            }
        }
    }

    /// The pages `[first, last)` of every `read()` in progress.
    fn read_span(&self) -> Option<(u64, u64)> {
        let first = self.reads.iter().map(|r| r.first).min()?;
        let last = self.reads.iter().map(|r| r.last).max()?;
        Some((first, last))
    }
}

/// The ghost files, by file id.
#[derive(Default)]
pub struct FileGhosts {
    files: RefCell<BTreeMap<u64, FileGhost>>,
    next_token: Cell<u64>,
    /// Files whose expected state changed since the incremental checkers
    /// last took them.
    changed: RefCell<BTreeSet<u64>>,
}

impl FileGhosts {
    /// A file of `size` bytes, every byte `fill` (zero past `size` in the
    /// last page).
    pub fn create(&self, id: u64, size: u64, fill: u8) {
        let mut g = FileGhost {
            size,
            ..FileGhost::default()
        };
        for index in 0..size.div_ceil(PAGE_SIZE) {
            let mut page = PageData::filled(fill);
            if (index + 1) * PAGE_SIZE > size {
                page.fill_range((size % PAGE_SIZE) as u16, PAGE_SIZE as u32, 0);
            }
            g.pages.insert(index, Rc::new(vec![page]));
        }
        self.files.borrow_mut().insert(id, g);
        self.changed.borrow_mut().insert(id);
    }

    /// An operation on pages `[first, last)` of file `id` starts.
    pub fn op_begin(&self, id: u64, first: u64, last: u64, resizes: bool) -> u64 {
        let token = self.next_token.get() + 1;
        self.next_token.set(token);
        if let Some(g) = self.files.borrow_mut().get_mut(&id) {
            let raced = g.accessing > 0;
            g.in_flight.push(FileOp {
                token,
                first,
                last,
                resizes,
                raced,
            });
        }
        self.changed.borrow_mut().insert(id);
        token
    }

    /// The operation `token` on file `id` returned: a write of `len`
    /// bytes of `value` at `off`, or a truncation to `size`. The pages of
    /// a write that raced with a user access are no longer judged.
    pub fn op_end(&self, id: u64, token: u64, effect: FileEffect) {
        let mut files = self.files.borrow_mut();
        let Some(g) = files.get_mut(&id) else { return };
        let Some(i) = g.in_flight.iter().position(|o| o.token == token) else {
            return;
        };
        let op = g.in_flight.remove(i);
        match effect {
            FileEffect::Write { off, len, value } => {
                crate::filemap::for_each_page_part(off, len, |index, from, to| {
                    let old = g
                        .pages
                        .get(&index)
                        .cloned()
                        .unwrap_or_else(|| Rc::new(vec![PageData::zero()]));
                    let whole = from == 0 && to == PAGE_SIZE as u32;
                    let accept: Vec<PageData> = if op.raced {
                        Vec::new()
                    } else if whole {
                        vec![PageData::filled(value)]
                    } else {
                        old.iter()
                            .map(|p| {
                                let mut p = p.clone();
                                p.fill_range(from, to, value);
                                p
                            })
                            .collect()
                    };
                    g.pages.insert(index, Rc::new(accept));
                });
                if len > 0 {
                    g.size = g.size.max(off + len);
                }
            }
            FileEffect::Truncate { size } => {
                if size < g.size {
                    g.pages.retain(|&index, _| index < size.div_ceil(PAGE_SIZE));
                    if size % PAGE_SIZE != 0 {
                        if let Some(last) = g.pages.get_mut(&(size / PAGE_SIZE)) {
                            let cut: Vec<PageData> = last
                                .iter()
                                .map(|p| {
                                    let mut p = p.clone();
                                    p.fill_range((size % PAGE_SIZE) as u16, PAGE_SIZE as u32, 0);
                                    p
                                })
                                .collect();
                            *last = Rc::new(cut);
                        }
                    }
                }
                g.size = size;
                // A write still in flight that ends past the new size
                // extends the file again if it takes i_mutex after this
                // truncation, which it may: whether it started as an
                // extending write or not, its size change is now pending.
                for o in g.in_flight.iter_mut().filter(|o| o.last * PAGE_SIZE > size) {
                    o.resizes = true;
                }
            }
        }
        if let Some((first, last)) = g.read_span() {
            g.reads_see(first, last);
        }
        drop(files);
        self.changed.borrow_mut().insert(id);
    }

    /// A user access to page `index` of file `id` (through a mapping or
    /// `read()`): it races with the operations in flight over it.
    pub fn accessed(&self, id: u64, index: u64) {
        if let Some(g) = self.files.borrow_mut().get_mut(&id) {
            for op in g
                .in_flight
                .iter_mut()
                .filter(|o| (o.first..o.last).contains(&index))
            {
                op.raced = true;
            }
        }
    }

    /// A user access to file `id` (a load or store through a mapping, a
    /// `read()`) begins; until [`FileGhosts::access_end`] it races with
    /// every operation in flight or starting.
    pub fn access_begin(&self, id: u64) {
        if let Some(g) = self.files.borrow_mut().get_mut(&id) {
            g.accessing += 1;
            for op in &mut g.in_flight {
                op.raced = true;
            }
        }
    }

    /// The access [`FileGhosts::access_begin`] announced returned.
    pub fn access_end(&self, id: u64) {
        if let Some(g) = self.files.borrow_mut().get_mut(&id) {
            g.accessing = g.accessing.saturating_sub(1);
        }
    }

    /// A user store of `value` to bytes `[from, to)` of page `index`
    /// through a shared mapping: every acceptable version now has it.
    pub fn stored(&self, id: u64, index: u64, from: u16, to: u32, value: u8) {
        self.accessed(id, index);
        if let Some(g) = self.files.borrow_mut().get_mut(&id) {
            let old = g
                .pages
                .get(&index)
                .cloned()
                .unwrap_or_else(|| Rc::new(vec![PageData::zero()]));
            let new: Vec<PageData> = old
                .iter()
                .map(|p| {
                    let mut p = p.clone();
                    p.fill_range(from, to, value);
                    p
                })
                .collect();
            g.pages.insert(index, Rc::new(new));
            g.reads_see(index, index + 1);
        }
        self.changed.borrow_mut().insert(id);
    }

    /// A `read()` of pages `[first, last)` of file `id` begins: a user
    /// access (see [`FileGhosts::access_begin`]) whose result is judged
    /// against every version its pages hold until [`FileGhosts::read_end`].
    pub fn read_begin(&self, id: u64, first: u64, last: u64) -> u64 {
        self.access_begin(id);
        let token = self.next_token.get() + 1;
        self.next_token.set(token);
        if let Some(g) = self.files.borrow_mut().get_mut(&id) {
            let seen = (first..last)
                .map(|index| (index, g.accept(index).map(|a| a.to_vec())))
                .collect();
            g.reads.push(ReadWindow {
                token,
                first,
                last,
                seen,
            });
        }
        token
    }

    /// The `read()` [`FileGhosts::read_begin`] announced returned: what
    /// each of its pages held while it ran.
    pub fn read_end(&self, id: u64, token: u64) -> Option<ReadWindow> {
        self.access_end(id);
        let mut files = self.files.borrow_mut();
        let g = files.get_mut(&id)?;
        let i = g.reads.iter().position(|r| r.token == token)?;
        let mut window = g.reads.remove(i);
        for index in window.first..window.last {
            window.saw(index, g.accept(index).as_deref().map(Vec::as_slice));
        }
        Some(window)
    }

    /// What page `index` of file `id` may hold now, or `None` if it is
    /// not judged: past EOF, or an operation over it is in flight.
    pub fn accept(&self, id: u64, index: u64) -> Option<Rc<Vec<PageData>>> {
        self.files.borrow().get(&id)?.accept(index)
    }

    /// The size of file `id` as of the last size change that returned,
    /// `None` while one is in flight (or for a file the ghost does not
    /// know).
    pub fn size(&self, id: u64) -> Option<u64> {
        let files = self.files.borrow();
        let g = files.get(&id)?;
        (!g.in_flight.iter().any(|o| o.resizes)).then_some(g.size)
    }

    /// The files whose expected state changed since the last call.
    pub fn take_changed(&self) -> BTreeSet<u64> {
        std::mem::take(&mut *self.changed.borrow_mut())
    }
}

/// What a file operation did, applied to the ghost when it returns.
pub enum FileEffect {
    Write { off: u64, len: u64, value: u8 },
    Truncate { size: u64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(v: u8) -> PageData {
        PageData::filled(v)
    }

    #[test]
    fn a_write_takes_effect_when_it_returns() {
        let g = FileGhosts::default();
        g.create(1, 8192, 0x11);
        let t = g.op_begin(1, 0, 1, false);
        assert!(g.accept(1, 0).is_none(), "in flight: not judged");
        assert_eq!(g.accept(1, 1).unwrap().as_slice(), &[data(0x11)]);
        g.op_end(
            1,
            t,
            FileEffect::Write {
                off: 0,
                len: 4096,
                value: 0x22,
            },
        );
        assert_eq!(g.accept(1, 0).unwrap().as_slice(), &[data(0x22)]);
    }

    #[test]
    fn a_racing_access_leaves_both_versions_and_truncate_cuts() {
        let g = FileGhosts::default();
        g.create(1, 8192, 0x11);
        let t = g.op_begin(1, 0, 1, false);
        g.accessed(1, 0);
        g.op_end(
            1,
            t,
            FileEffect::Write {
                off: 0,
                len: 4096,
                value: 0x22,
            },
        );
        assert!(g.accept(1, 0).is_none(), "raced: not judged");
        let t = g.op_begin(1, 0, 1, false);
        g.op_end(
            1,
            t,
            FileEffect::Write {
                off: 0,
                len: 4096,
                value: 0x33,
            },
        );
        assert_eq!(
            g.accept(1, 0).unwrap().as_slice(),
            &[data(0x33)],
            "rewritten whole"
        );
        let t = g.op_begin(1, 0, 2, true);
        assert_eq!(g.size(1), None);
        g.op_end(1, t, FileEffect::Truncate { size: 4096 });
        assert_eq!(g.size(1), Some(4096));
        assert!(g.accept(1, 1).is_none(), "past EOF");
    }

    #[test]
    fn a_write_in_flight_past_a_truncation_may_extend_the_file() {
        let g = FileGhosts::default();
        g.create(1, 8192, 0x11);
        // Inside the file when it starts: no size change of its own.
        let w = g.op_begin(1, 0, 1, false);
        assert_eq!(g.size(1), Some(8192));
        let t = g.op_begin(1, 0, 2, true);
        g.op_end(1, t, FileEffect::Truncate { size: 0 });
        assert_eq!(g.size(1), None, "the write may extend the file again");
        g.op_end(
            1,
            w,
            FileEffect::Write {
                off: 0,
                len: 4096,
                value: 0x22,
            },
        );
        assert_eq!(g.size(1), Some(4096));
        // A write that ends below the new size stays a plain write.
        let w = g.op_begin(1, 0, 1, false);
        let t = g.op_begin(1, 0, 1, true);
        g.op_end(1, t, FileEffect::Truncate { size: 4096 });
        assert_eq!(g.size(1), Some(4096));
        g.op_end(
            1,
            w,
            FileEffect::Write {
                off: 0,
                len: 16,
                value: 0x33,
            },
        );
    }
}
