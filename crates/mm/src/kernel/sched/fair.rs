//! `task_numa_work()`: the NUMA balancing scanner that runs as task_work
//! on return to user space.
//!
//! Models kernel/sched/fair.c (v6.1) for one scan pass over a given range
//! (the scenario chooses the range instead of `mm->numa_scan_offset` and
//! the scan period, which only decide *when* a range is scanned).

use crate::mempolicy::change_prot_numa;
use crate::mm_types::Kernel;
use crate::mm_types::{vm_flags, Task};

/// One pass of `task_numa_work()` over `[start, start + len)`: mark every
/// eligible VMA range PROT_NONE for hinting faults. Returns pages changed,
/// or `None` if `mmap_read_trylock()` failed and the pass was skipped.
pub fn task_numa_work(k: &Kernel, task: &Task, start: u64, len: u64) -> Option<u64> {
    let _f = explore::enter("task_numa_work");
    let mm = &task.mm;
    let mmap = mm.mmap_lock.try_read("mmap_read_trylock")?;
    let end = start.saturating_add(len);
    let mut pages = 0;
    for vma in mmap
        .vmas
        .iter()
        .filter(|v| v.end() > start && v.start() < end)
    {
        if !vma_migratable(vma) || !vma.is_accessible() {
            continue;
        }
        let from = start.max(vma.start());
        let to = end.min(vma.end());
        pages += change_prot_numa(k, task, vma, from, to);
    }
    mmap.unlock("mmap_read_unlock");
    Some(pages)
}

/// `vma_migratable()` for the anonymous VMAs of the model.
/// `vma_migratable()` (include/linux/mempolicy.h): no VM_IO/VM_PFNMAP, not
/// hugetlb. Every VMA the model creates is anonymous memory, so all are.
fn vma_migratable(vma: &crate::mm_types::Vma) -> bool {
    vma.flags() & vm_flags::VM_SHARED == 0
}
