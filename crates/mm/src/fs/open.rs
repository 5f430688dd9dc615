//! `ftruncate()` (fs/open.c `do_truncate()`, v2.6.22): under `i_mutex`,
//! `notify_change()` → `inode_setattr()` → `vmtruncate()`.

use std::rc::Rc;

use crate::ghost_file::FileEffect;
use crate::mm_types::{AddressSpace, Kernel, PAGE_SIZE};

/// `ftruncate(fd, length)`.
pub fn do_truncate(k: &Kernel, file: &Rc<AddressSpace>, length: u64) {
    let _f = explore::enter("do_truncate");
    let old = file.size();
    let token = k.ghost.files.op_begin(
        file.id,
        length / PAGE_SIZE,
        old.max(length).div_ceil(PAGE_SIZE),
        true,
    );
    let i_mutex = file
        .i_mutex
        .lock("do_truncate: mutex_lock(&inode->i_mutex)");
    crate::truncate::vmtruncate(k, file, length);
    i_mutex.unlock("do_truncate: mutex_unlock(&inode->i_mutex)");
    k.ghost
        .files
        .op_end(file.id, token, FileEffect::Truncate { size: length });
}
