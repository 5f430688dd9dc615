//! `pread64()` and `pwrite64()` (fs/read_write.c, v2.6.22) on a regular
//! file: `generic_file_aio_read()` / `generic_file_aio_write()` with
//! `O_DIRECT` or buffered.

use std::rc::Rc;

use explore::{Finding, FindingKind};

use crate::filemap::{
    do_generic_mapping_read, for_each_page_part, generic_file_buffered_write,
    generic_file_direct_write,
};
use crate::ghost_file::{FileEffect, ReadWindow};
use crate::mm_types::{AddressSpace, Kernel, Task, PAGE_SIZE};

/// `pwrite64(fd, buf, len, off)` of `len` bytes of `value`: under
/// `i_mutex`, `generic_file_direct_IO()` with `direct` (O_DIRECT), else
/// `generic_file_buffered_write()`. Returns the bytes written, or the
/// errno of a failed O_DIRECT write (-EIO when the page cache over the
/// range could not be invalidated) or of a buffered write that could not
/// allocate its first page (-ENOMEM): then nothing was written.
pub fn sys_pwrite64(
    k: &Kernel,
    task: &Task,
    file: &Rc<AddressSpace>,
    off: u64,
    len: u64,
    value: u8,
    direct: bool,
) -> Result<u64, i32> {
    let _f = explore::enter("sys_pwrite64");
    if len == 0 {
        return Ok(0);
    }
    let resizes = off + len > file.size();
    let token = k.ghost.files.op_begin(
        file.id,
        off / PAGE_SIZE,
        (off + len).div_ceil(PAGE_SIZE),
        resizes,
    );
    let i_mutex = file
        .i_mutex
        .lock("generic_file_aio_write: mutex_lock(&inode->i_mutex)");
    let written = if direct {
        let written = generic_file_direct_write(k, file, off, len, value);
        if written.is_ok()
            && off + len
                > file
                    .i_size
                    .read("generic_file_direct_write: pos > i_size_read(inode)")
        {
            file.i_size.write("i_size_write", off + len);
        }
        written
    } else {
        generic_file_buffered_write(k, task.node, file, off, len, value)
    };
    i_mutex.unlock("generic_file_aio_write: mutex_unlock(&inode->i_mutex)");
    k.ghost.files.op_end(
        file.id,
        token,
        FileEffect::Write {
            off,
            len: *written.as_ref().unwrap_or(&0),
            value,
        },
    );
    written
}

/// `pread64(fd, buf, len, off)` (buffered): the bytes read, short at EOF.
/// What it returns is checked against the file ghost (INV-DATA): a page
/// no operation in flight is changing must read as the file holds it.
pub fn sys_pread64(
    k: &Kernel,
    task: &Task,
    file: &Rc<AddressSpace>,
    off: u64,
    len: u64,
) -> Vec<u8> {
    let _f = explore::enter("sys_pread64");
    let (first, last) = (off / PAGE_SIZE, (off + len).div_ceil(PAGE_SIZE));
    let window = k.ghost.files.read_begin(file.id, first, last);
    let bytes = do_generic_mapping_read(k, task.node, file, off, len);
    if let Some(window) = k.ghost.files.read_end(file.id, window) {
        check_read(task, file, off, &bytes, &window);
    }
    bytes
}

/// INV-DATA at a `read()`: each page's bytes returned are one version the
/// file's page held while the read ran.
fn check_read(task: &Task, file: &AddressSpace, off: u64, bytes: &[u8], window: &ReadWindow) {
    let mut at = 0usize;
    let mut bad = None;
    for_each_page_part(off, bytes.len() as u64, |index, from, to| {
        let n = (to - u32::from(from)) as usize;
        let got = &bytes[at..at + n];
        at += n;
        if bad.is_some() {
            return;
        }
        let Some(accept) = window.accept(index) else {
            return;
        };
        let matches = |p: &crate::mm_types::PageData| {
            got.iter()
                .enumerate()
                .all(|(i, b)| p.get(from + i as u16) == *b)
        };
        if !accept.iter().any(matches) {
            let want: Vec<String> = accept.iter().map(|p| p.describe()).collect();
            bad = Some((index, got.first().copied().unwrap_or(0), want.join(" or ")));
        }
    });
    if let Some((index, got, want)) = bad {
        explore::raise(
            Finding::new(
                FindingKind::Invariant,
                "INV-DATA",
                format!(
                    "INV-DATA: {} read() of file {} page {index} returned {got:#04x}, the file holds {want}",
                    task.name, file.id
                ),
            )
            .detail("read() goes through the page cache: it holds a page whose data is not the file's"),
        );
    }
}
