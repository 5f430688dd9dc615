//! `madvise()`: MADV_DONTNEED (zap under mmap_lock held for read),
//! MADV_HUGEPAGE and MADV_NOHUGEPAGE.
//!
//! Models mm/madvise.c (v6.1).

use crate::memory::unmap_page_range;
use crate::mm_types::{vm_flags, Kernel, Task, PAGE_SHIFT, PAGE_SIZE};

pub const MADV_DONTNEED: u32 = 4;
pub const MADV_HUGEPAGE: u32 = 14;
pub const MADV_NOHUGEPAGE: u32 = 15;

/// `do_madvise()`. Returns -ENOMEM (as `Err(12)`) if part of the range is
/// unmapped, after advising the mapped parts, as the kernel does.
pub fn do_madvise(k: &Kernel, task: &Task, start: u64, len: u64, advice: u32) -> Result<(), i32> {
    let _f = explore::enter("do_madvise");
    if !start.is_multiple_of(PAGE_SIZE) {
        return Err(crate::mmap::EINVAL);
    }
    let end = start
        .checked_add(len.next_multiple_of(PAGE_SIZE))
        .ok_or(crate::mmap::EINVAL)?;
    match advice {
        MADV_DONTNEED => madvise_dontneed(k, task, start, end),
        MADV_HUGEPAGE | MADV_NOHUGEPAGE => madvise_hugepage(k, task, start, end, advice),
        _ => Err(crate::mmap::EINVAL),
    }
}

/// `madvise_dontneed_free()` → `zap_page_range()` for each VMA, with
/// mmap_lock held for read (so it races with faults and NUMA scanning).
fn madvise_dontneed(k: &Kernel, task: &Task, start: u64, end: u64) -> Result<(), i32> {
    let mm = &task.mm;
    let mmap = mm.mmap_lock.read("mmap_read_lock");
    k.ghost
        .discard_begin(mm.id, start >> PAGE_SHIFT, end >> PAGE_SHIFT);
    let mut hole = false;
    let mut at = start;
    for vma in mmap
        .vmas
        .iter()
        .filter(|v| v.end() > start && v.start() < end)
    {
        hole |= vma.start() > at;
        unmap_page_range(k, mm, vma, start.max(vma.start()), end.min(vma.end()));
        at = vma.end();
    }
    hole |= at < end;
    k.ghost
        .discard_end(mm.id, start >> PAGE_SHIFT, end >> PAGE_SHIFT);
    mmap.unlock("mmap_read_unlock");
    if hole {
        Err(crate::mmap::ENOMEM)
    } else {
        Ok(())
    }
}

/// `madvise_update_vma()` with `hugepage_madvise()`: split the VMAs at the
/// range boundaries and set VM_HUGEPAGE or VM_NOHUGEPAGE on each.
fn madvise_hugepage(k: &Kernel, task: &Task, start: u64, end: u64, advice: u32) -> Result<(), i32> {
    let mut mmap = task.mm.mmap_lock.write("mmap_write_lock");
    crate::mmap::split_to_range(k, &mut mmap, start, end);
    for vma in mmap
        .vmas
        .iter()
        .filter(|v| v.end() > start && v.start() < end)
    {
        let f = vma.flags() & !(vm_flags::VM_HUGEPAGE | vm_flags::VM_NOHUGEPAGE);
        let set = if advice == MADV_HUGEPAGE {
            vm_flags::VM_HUGEPAGE
        } else {
            vm_flags::VM_NOHUGEPAGE
        };
        vma.vm_flags.set(f | set);
    }
    mmap.unlock("mmap_write_unlock");
    Ok(())
}
