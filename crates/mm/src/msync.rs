//! `msync()` (mm/msync.c, v2.6.22): with MS_SYNC, each shared file VMA in
//! the range has its file written back (`do_fsync()` →
//! `filemap_write_and_wait()`), with mmap_sem dropped around it.

use crate::mm_types::{vm_flags, Kernel, Task};
use crate::mmap::{EINVAL, ENOMEM};

/// `msync(start, len, MS_SYNC)`.
pub fn sys_msync(k: &Kernel, task: &Task, start: u64, len: u64) -> Result<(), i32> {
    let _f = explore::enter("sys_msync");
    if !start.is_multiple_of(crate::mm_types::PAGE_SIZE) {
        return Err(EINVAL);
    }
    let end = start.checked_add(len).ok_or(ENOMEM)?;
    let mut addr = start;
    while addr < end {
        let mmap = task
            .mm
            .mmap_lock
            .read("sys_msync: down_read(&mm->mmap_sem)");
        let Some(vma) = mmap.find_vma(addr).filter(|v| v.start() < end).cloned() else {
            mmap.unlock("up_read(&mm->mmap_sem)");
            return Err(ENOMEM);
        };
        mmap.unlock("up_read(&mm->mmap_sem)");
        if vma.start() > addr {
            return Err(ENOMEM);
        }
        if let Some(file) = vma
            .vm_file
            .get()
            .filter(|_| vma.flags() & vm_flags::VM_SHARED != 0)
        {
            crate::filemap::filemap_write_and_wait(k, file);
        }
        addr = vma.end();
    }
    Ok(())
}
