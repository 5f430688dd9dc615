//! Address-space changes: `do_mmap()` for anonymous memory and shmem
//! files, `do_munmap()`, `do_mprotect_pkey()`, `__split_vma()` and
//! `exit_mmap()`; merging is in vma.rs, mremap in mremap.rs.
//!
//! Models mm/mmap.c, mm/vma.c and mm/mprotect.c (v6.18 where they differ
//! from v6.1). Not modelled: regular files, anonymous `MAP_SHARED`, stack
//! growth, and accounting limits.

use std::cell::{Cell, OnceCell, RefCell};
use std::rc::{Rc, Weak};

use crate::arch::x86::pgtable::vm_get_page_prot;
use crate::kernel::fork::check_mm;
use crate::memory::{
    free_pgtables, handle_mm_fault, unmap_page_range, FAULT_FLAG_WRITE, VM_FAULT_ERROR,
};
use crate::mm_types::{
    vm_flags, AddressSpace, Kernel, MmStruct, MmapState, Task, Vma, HPAGE_PMD_SIZE, PAGE_SHIFT,
    PAGE_SIZE,
};
use crate::mprotect::{change_protection, ChangeProt};
use crate::profile::VmaMergeCode;
use crate::rmap::unlink_anon_vmas;
use crate::vma::{vma_merge_existing_range, vma_merge_new_range, MergeRange};

pub const EINVAL: i32 = 22;
pub const EIO: i32 = 5;
pub const ENOMEM: i32 = 12;
pub const EEXIST: i32 = 17;
pub const EFAULT: i32 = 14;

/// `PROT_*` and `MAP_*` (include/uapi/asm-generic/mman-common.h, x86).
pub const PROT_NONE: u32 = 0;
pub const PROT_READ: u32 = 1;
pub const PROT_WRITE: u32 = 2;
pub const PROT_EXEC: u32 = 4;
pub const MAP_SHARED: u32 = 0x01;
pub const MAP_PRIVATE: u32 = 0x02;
pub const MAP_FIXED: u32 = 0x10;
pub const MAP_FIXED_NOREPLACE: u32 = 0x100000;
pub const MAP_ANONYMOUS: u32 = 0x20;
pub const MAP_NORESERVE: u32 = 0x4000;
pub const MAP_POPULATE: u32 = 0x8000;

/// Highest user address (x86-64, 4-level: TASK_SIZE_MAX rounded down).
pub const TASK_SIZE: u64 = 0x7fff_ffff_f000;

/// `calc_vm_prot_bits()` + the VM_MAY* bits do_mmap adds.
fn calc_vm_flags(prot: u32, flags: u32) -> u64 {
    let mut f = vm_flags::VM_MAYREAD | vm_flags::VM_MAYWRITE | vm_flags::VM_MAYEXEC;
    f |= prot_to_vm(prot);
    if flags & MAP_SHARED != 0 {
        f |= vm_flags::VM_SHARED | vm_flags::VM_MAYSHARE;
    }
    if flags & MAP_NORESERVE != 0 {
        f |= vm_flags::VM_NORESERVE;
    } else if flags & MAP_SHARED == 0 && prot & PROT_WRITE != 0 {
        f |= vm_flags::VM_ACCOUNT;
    }
    f
}

fn prot_to_vm(prot: u32) -> u64 {
    let mut f = 0;
    if prot & PROT_READ != 0 {
        f |= vm_flags::VM_READ;
    }
    if prot & PROT_WRITE != 0 {
        f |= vm_flags::VM_WRITE;
    }
    if prot & PROT_EXEC != 0 {
        f |= vm_flags::VM_EXEC;
    }
    f
}

/// `vm_get_page_prot(vm_flags)` for the access bits.
fn page_prot_of(flags: u64) -> crate::arch::x86::pgtable::PgProt {
    vm_get_page_prot(flags & (vm_flags::VM_ACCESS_FLAGS | vm_flags::VM_SHARED))
}

/// Builds a VMA in its Rc (anon_vma lists point back at it weakly).
pub fn vm_area_alloc(mm: &Rc<MmStruct>, start: u64, end: u64, flags: u64, pgoff: u64) -> Rc<Vma> {
    Rc::new_cyclic(|this: &Weak<Vma>| Vma {
        this: this.clone(),
        mm: Rc::downgrade(mm),
        vm_start: Cell::new(start),
        vm_end: Cell::new(end),
        vm_flags: Cell::new(flags),
        vm_page_prot: Cell::new(page_prot_of(flags)),
        vm_pgoff: Cell::new(pgoff),
        anon_vma: OnceCell::new(),
        anon_vma_chain: RefCell::new(Vec::new()),
        life: explore::sync::Lifetime::new("vm_area_struct", start),
        vm_file: OnceCell::new(),
    })
}

/// `vm_area_free()`: the VMA is gone; the model keeps its memory, but
/// any later use of it is a use after free.
pub fn vm_area_free(vma: &Vma) {
    vma.life.free("vm_area_free");
}

/// `vm_area_dup()` for fork: the same VMA in the child's mm (`mm`).
pub fn vm_area_copy(mm: &Rc<MmStruct>, vma: &Vma) -> Rc<Vma> {
    let new = vm_area_alloc(mm, vma.start(), vma.end(), vma.flags(), vma.vm_pgoff.get());
    new.vm_page_prot.set(vma.vm_page_prot.get());
    if let Some(f) = vma.vm_file.get() {
        let _ = new.vm_file.set(f.clone());
    }
    new
}

/// `vm_area_dup()` for a part of `vma`: same flags, protection and file.
pub fn vm_area_dup(vma: &Vma, start: u64, end: u64, pgoff: u64) -> Rc<Vma> {
    let mm = vma.mm.upgrade().expect("a VMA of a live mm");
    let new = vm_area_alloc(&mm, start, end, vma.flags(), pgoff);
    new.vm_page_prot.set(vma.vm_page_prot.get());
    if let Some(f) = vma.vm_file.get() {
        let _ = new.vm_file.set(f.clone());
    }
    new
}

/// `mmap(addr, len, prot, flags)` for anonymous memory; `align` asks for a
/// huge-page-friendly placement as `thp_get_unmapped_area` gives.
pub fn do_mmap(
    k: &Kernel,
    task: &Task,
    addr: u64,
    len: u64,
    prot: u32,
    flags: u32,
    align: u64,
) -> Result<u64, i32> {
    do_mmap_pgoff(k, task, addr, len, prot, flags, align, None)
}

/// `mmap(addr, len, prot, flags, fd, pgoff pages)` of a shmem file.
#[allow(clippy::too_many_arguments)]
pub fn do_mmap_file(
    k: &Kernel,
    task: &Task,
    addr: u64,
    len: u64,
    prot: u32,
    flags: u32,
    file: &Rc<AddressSpace>,
    pgoff: u64,
) -> Result<u64, i32> {
    do_mmap_pgoff(k, task, addr, len, prot, flags, 0, Some((file, pgoff)))
}

/// `do_mmap()` → `mmap_region()` (v6.18).
#[allow(clippy::too_many_arguments)]
fn do_mmap_pgoff(
    k: &Kernel,
    task: &Task,
    addr: u64,
    len: u64,
    prot: u32,
    flags: u32,
    align: u64,
    file: Option<(&Rc<AddressSpace>, u64)>,
) -> Result<u64, i32> {
    let _f = explore::enter("do_mmap");
    if len == 0
        || (flags & MAP_ANONYMOUS == 0) == file.is_none()
        || (flags & MAP_SHARED != 0) == (flags & MAP_PRIVATE != 0)
    {
        return Err(EINVAL);
    }
    let len = len.checked_next_multiple_of(PAGE_SIZE).ok_or(ENOMEM)?;
    if align != 0 && !align.is_power_of_two() {
        return Err(EINVAL);
    }
    if flags & MAP_SHARED != 0 && file.is_none() {
        explore::unsupported("not modelled yet: MAP_SHARED anonymous memory (shmem)");
    }
    let mm = &task.mm;
    let fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0;
    if fixed
        && (!addr.is_multiple_of(PAGE_SIZE) || addr.checked_add(len).is_none_or(|e| e > TASK_SIZE))
    {
        return Err(EINVAL);
    }
    let mut mmap = mm.mmap_lock.write("mmap_write_lock");
    let start = if flags & MAP_FIXED_NOREPLACE != 0 {
        if mmap
            .vmas
            .iter()
            .any(|v| v.start() < addr + len && v.end() > addr)
        {
            mmap.unlock("mmap_write_unlock");
            return Err(EEXIST);
        }
        addr
    } else if fixed {
        munmap_locked(k, mm, &mut mmap, addr, len);
        addr
    } else {
        match get_unmapped_area(&mmap, mm, len, align.max(PAGE_SIZE)) {
            Some(start) => start,
            None => {
                mmap.unlock("mmap_write_unlock");
                return Err(ENOMEM);
            }
        }
    };
    let range = MergeRange {
        start,
        end: start + len,
        flags: calc_vm_flags(prot, flags),
        pgoff: file.map_or(start >> PAGE_SHIFT, |(_, pgoff)| pgoff),
        anon_vma: None,
        file: file.map(|(f, _)| f.clone()),
        copied_from: None,
        src: None,
    };
    if merge_new_range(k, &mut mmap, &range).is_none() {
        let vma = vm_area_alloc(mm, start, start + len, range.flags, range.pgoff);
        if let Some(f) = &range.file {
            let _ = vma.vm_file.set(f.clone());
        }
        insert_vma(&mut mmap, vma);
    }
    mmap.unlock("mmap_write_unlock");
    if flags & MAP_POPULATE != 0 {
        mm_populate(k, task, start, len);
    }
    Ok(start)
}

/// The merge of a new mapping with its neighbours: v6.18's
/// `vma_merge_new_range()`, or v2.6.34's `mmap_region()` calling
/// `vma_merge(mm, prev, addr, addr + len, vm_flags, NULL, file, pgoff,
/// NULL)` for anonymous private memory only (knob `vma_merge`).
fn merge_new_range(k: &Kernel, mmap: &mut MmapState, r: &MergeRange) -> Option<Rc<Vma>> {
    if k.profile.knobs.vma_merge == VmaMergeCode::V6_18 {
        return vma_merge_new_range(k, mmap, r);
    }
    if r.file.is_some() || r.flags & vm_flags::VM_SHARED != 0 {
        return None;
    }
    let prev = mmap.vmas.iter().rev().find(|v| v.end() <= r.start).cloned();
    crate::vma::vma_merge_v2_6_34(k, mmap, prev, (r.start, r.end), r.flags, None, r.pgoff)
}

/// Lowest address mmap hands out (`mmap_min_addr`).
const MMAP_MIN_ADDR: u64 = 0x10000;

/// Top-down search below `mm.mmap_base` for a free range of `len` bytes
/// aligned to `align` (`arch_get_unmapped_area_topdown`).
fn get_unmapped_area(mmap: &MmapState, mm: &MmStruct, len: u64, align: u64) -> Option<u64> {
    let fits = |ceiling: u64, floor: u64| {
        ceiling
            .checked_sub(len)
            .map(|s| s & !(align - 1))
            .filter(|&s| s >= floor)
    };
    let mut ceiling = mm.mmap_base;
    for vma in mmap.vmas.iter().rev() {
        if vma.start() >= ceiling {
            continue;
        }
        if let Some(start) = fits(ceiling, vma.end()) {
            return Some(start);
        }
        ceiling = vma.start();
    }
    fits(ceiling, MMAP_MIN_ADDR)
}

pub(crate) fn insert_vma(mmap: &mut MmapState, vma: Rc<Vma>) {
    let at = mmap.vmas.partition_point(|v| v.start() < vma.start());
    mmap.vmas.insert(at, vma);
}

/// `mm_populate()` (MAP_POPULATE): fault every page in, write-faulting
/// writable memory.
fn mm_populate(k: &Kernel, task: &Task, start: u64, len: u64) {
    let _f = explore::enter("__mm_populate");
    let mmap = task.mm.mmap_lock.read("mmap_read_lock");
    let mut addr = start;
    while addr < start + len {
        let Some(vma) = mmap.vma_lookup(addr).cloned() else {
            break;
        };
        let write = vma.flags() & vm_flags::VM_WRITE != 0;
        let ret = handle_mm_fault(
            k,
            task,
            &vma,
            addr,
            if write { FAULT_FLAG_WRITE } else { 0 },
        );
        if ret & VM_FAULT_ERROR != 0 {
            break;
        }
        addr += if crate::memory::hugepage_vma_check(k, &vma) && addr.is_multiple_of(HPAGE_PMD_SIZE)
        {
            HPAGE_PMD_SIZE
        } else {
            PAGE_SIZE
        };
    }
    mmap.unlock("mmap_read_unlock");
}

/// `__split_vma()`: split `vma` at `addr`; the new VMA covers the upper
/// part, or the lower one with `new_below` (2.6.34's mprotect_fixup
/// splitting off a VMA's head; the model's other callers split off the
/// upper part). The new VMA gets a clone of vma's chain (reversed by
/// 2.6.34-rc3's forward clone). The boundary moves with the anon_vma lock
/// held for writing, so an rmap walk sees either the old VMA or both
/// halves (`vma_prepare`).
fn split_vma(k: &Kernel, mmap: &mut MmapState, vma: &Rc<Vma>, addr: u64, new_below: bool) {
    crate::huge_memory::vma_adjust_trans_huge(k, vma, addr);
    let pgoff = vma.vm_pgoff.get() + ((addr - vma.start()) >> PAGE_SHIFT);
    let new = if new_below {
        vm_area_dup(vma, vma.start(), addr, vma.vm_pgoff.get())
    } else {
        vm_area_dup(vma, addr, vma.end(), pgoff)
    };
    crate::rmap::anon_vma_clone_or_unsupported(k, &new, vma, "__split_vma");
    let guard = vma
        .anon_vma
        .get()
        .map(|av| av.rwsem.write("anon_vma_lock_write"));
    if new_below {
        vma.vm_start.set(addr);
        vma.vm_pgoff.set(pgoff);
    } else {
        vma.vm_end.set(addr);
    }
    if let Some(g) = guard {
        g.unlock("anon_vma_unlock_write");
    }
    insert_vma(mmap, new);
}

/// Splits VMAs so that `[start, end)` starts and ends on VMA boundaries.
pub(crate) fn split_to_range(k: &Kernel, mmap: &mut MmapState, start: u64, end: u64) {
    if let Some(v) = mmap
        .vma_lookup(start)
        .cloned()
        .filter(|v| v.start() < start)
    {
        split_vma(k, mmap, &v, start, false);
    }
    if let Some(v) = mmap.vma_lookup(end).cloned().filter(|v| v.start() < end) {
        split_vma(k, mmap, &v, end, false);
    }
}

/// `munmap(addr, len)`.
pub fn do_munmap(k: &Kernel, task: &Task, addr: u64, len: u64) -> Result<(), i32> {
    let _f = explore::enter("do_munmap");
    if !addr.is_multiple_of(PAGE_SIZE)
        || len == 0
        || addr.checked_add(len).is_none_or(|e| e > TASK_SIZE)
    {
        return Err(EINVAL);
    }
    let len = len.next_multiple_of(PAGE_SIZE);
    let mut mmap = task.mm.mmap_lock.write("mmap_write_lock");
    munmap_locked(k, &task.mm, &mut mmap, addr, len);
    mmap.unlock("mmap_write_unlock");
    Ok(())
}

/// `do_vmi_munmap()` with mmap_lock held for write.
pub(crate) fn munmap_locked(k: &Kernel, mm: &MmStruct, mmap: &mut MmapState, addr: u64, len: u64) {
    let end = addr + len;
    split_to_range(k, mmap, addr, end);
    // Until the zap below reaches a page, a user store through its old pte
    // still lands (the hardware walk takes no lock), then goes with it.
    let (first, last) = (addr >> PAGE_SHIFT, end >> PAGE_SHIFT);
    k.ghost.discard_begin(mm.id, first, last);
    let gone: Vec<Rc<Vma>> = mmap
        .vmas
        .iter()
        .filter(|v| v.start() >= addr && v.end() <= end)
        .cloned()
        .collect();
    for vma in &gone {
        unmap_page_range(k, mm, vma, vma.start(), vma.end());
        unlink_anon_vmas(k, vma);
    }
    mmap.vmas.retain(|v| !(v.start() >= addr && v.end() <= end));
    unlink_file_vmas(&gone);
    free_pgtables(k, mm, mmap);
    for vma in &gone {
        vm_area_free(vma);
    }
    k.ghost.discard_end(mm.id, first, last);
    k.ghost.unmap(mm.id, first, last);
}

/// `mprotect(addr, len, prot)` (`do_mprotect_pkey`, v6.18): -ENOMEM if
/// the range starts in a hole; at a later hole, -ENOMEM after changing what
/// precedes it.
pub fn do_mprotect(k: &Kernel, task: &Task, addr: u64, len: u64, prot: u32) -> Result<(), i32> {
    let _f = explore::enter("do_mprotect_pkey");
    if !addr.is_multiple_of(PAGE_SIZE) {
        return Err(EINVAL);
    }
    if len == 0 {
        return Ok(());
    }
    let len = len.checked_next_multiple_of(PAGE_SIZE).ok_or(ENOMEM)?;
    let end = addr.checked_add(len).ok_or(ENOMEM)?;
    let mm = &task.mm;
    let mut mmap = mm.mmap_lock.write("mmap_write_lock");
    let result = mprotect_vmas(k, task, &mut mmap, addr, end, prot);
    mmap.unlock("mmap_write_unlock");
    result
}

/// The VMA loop of do_mprotect_pkey, with mmap_lock held for writing.
fn mprotect_vmas(
    k: &Kernel,
    task: &Task,
    mmap: &mut MmapState,
    start: u64,
    end: u64,
    prot: u32,
) -> Result<(), i32> {
    let mut at = start;
    while at < end {
        let Some(vma) = mmap.vma_lookup(at).cloned() else {
            return Err(ENOMEM);
        };
        let tmp = vma.end().min(end);
        let newflags = (vma.flags() & !vm_flags::VM_ACCESS_FLAGS) | prot_to_vm(prot);
        mprotect_fixup(k, task, mmap, &vma, at, tmp, newflags);
        at = tmp;
    }
    Ok(())
}

/// `mprotect_fixup()` (v6.18): accounting, then merge the range into a
/// neighbour or split it out (`vma_modify_flags()`), then the page tables.
fn mprotect_fixup(
    k: &Kernel,
    task: &Task,
    mmap: &mut MmapState,
    vma: &Rc<Vma>,
    start: u64,
    end: u64,
    mut newflags: u64,
) {
    let _f = explore::enter("mprotect_fixup");
    let oldflags = vma.flags();
    if newflags == oldflags {
        return;
    }
    if newflags & vm_flags::VM_WRITE != 0 {
        let exempt = vm_flags::VM_ACCOUNT
            | vm_flags::VM_WRITE
            | vm_flags::VM_SHARED
            | vm_flags::VM_NORESERVE;
        if oldflags & exempt == 0 {
            newflags |= vm_flags::VM_ACCOUNT;
        }
    } else if k.profile.knobs.unaccount_unfaulted_on_mprotect
        && oldflags & vm_flags::VM_ACCOUNT != 0
        && vma.vm_file.get().is_none()
        && vma.anon_vma.get().is_none()
    {
        newflags &= !vm_flags::VM_ACCOUNT;
    }
    let vma = match k.profile.knobs.vma_merge {
        VmaMergeCode::V6_18 => vma_modify_flags(k, mmap, vma, start, end, newflags),
        VmaMergeCode::V2_6_34 => merge_or_split_v2_6_34(k, mmap, vma, start, end, newflags),
    };
    vma.vm_flags.set(newflags);
    vma.vm_page_prot.set(page_prot_of(newflags));
    let cp = ChangeProt {
        k,
        mm: &task.mm,
        vma: &vma,
        newprot: vma.vm_page_prot.get(),
        cp_flags: 0,
        node: task.node,
    };
    change_protection(&cp, start, end);
}

/// `vma_modify_flags()`: the VMA that will cover exactly `[start, end)`
/// with `flags`: a neighbour it merged into, or `vma` split to the range.
fn vma_modify_flags(
    k: &Kernel,
    mmap: &mut MmapState,
    vma: &Rc<Vma>,
    start: u64,
    end: u64,
    flags: u64,
) -> Rc<Vma> {
    if let Some(merged) = vma_merge_existing_range(k, mmap, vma, start, end, flags) {
        return merged;
    }
    if vma.start() < start {
        split_vma(k, mmap, vma, start, false);
    }
    let middle = mmap
        .vma_lookup(start)
        .cloned()
        .expect("the range is mapped");
    if middle.end() > end {
        split_vma(k, mmap, &middle, end, false);
    }
    middle
}

/// The middle of `mprotect_fixup()` (v2.6.34): `vma_merge()` with the
/// VMA before the range (or `vma` itself when the range starts inside it,
/// sys_mprotect's `if (start > vma->vm_start) prev = vma`) and vma's
/// anon_vma; else split the range out, the head first (`new_below`).
fn merge_or_split_v2_6_34(
    k: &Kernel,
    mmap: &mut MmapState,
    vma: &Rc<Vma>,
    start: u64,
    end: u64,
    flags: u64,
) -> Rc<Vma> {
    let prev = if vma.start() < start {
        Some(vma.clone())
    } else {
        mmap.vmas.iter().rev().find(|v| v.end() <= start).cloned()
    };
    let pgoff = vma.vm_pgoff.get() + ((start - vma.start()) >> PAGE_SHIFT);
    let anon_vma = vma.anon_vma.get().map(|a| a.id);
    let merged = crate::vma::vma_merge_v2_6_34(k, mmap, prev, (start, end), flags, anon_vma, pgoff);
    if let Some(merged) = merged {
        return merged;
    }
    if start != vma.start() {
        split_vma(k, mmap, vma, start, true);
    }
    if end != vma.end() {
        split_vma(k, mmap, vma, end, false);
    }
    vma.clone()
}

/// `exit_mmap()` then `check_mm()` (mmput → __mmdrop), when the last
/// thread of the process exits.
pub fn exit_mmap(k: &Kernel, mm: &MmStruct) {
    let _f = explore::enter("exit_mmap");
    // v2.6.23: unpinned before anything is unmapped, with the VMAs still
    // on the reverse map.
    crate::arch::x86::xen::mmu_pv::arch_exit_mmap(k, mm);
    let mut mmap = mm.mmap_lock.write("mmap_write_lock");
    k.ghost.unmap(mm.id, 0, u64::MAX);
    // The VMAs stay on the file's reverse map (the model's i_mmap is the
    // VMA lists) until free_pgtables() unlinks them: a truncate or an
    // invalidation meanwhile finds them and zaps alongside.
    let vmas = mmap.vmas.clone();
    for vma in &vmas {
        unmap_page_range(k, mm, vma, vma.start(), vma.end());
        unlink_anon_vmas(k, vma);
    }
    mmap.vmas.clear();
    unlink_file_vmas(&vmas);
    free_pgtables(k, mm, &mmap);
    for vma in &vmas {
        vm_area_free(vma);
    }
    mm.exited.set(true);
    mmap.unlock("mmap_write_unlock");
    check_mm(k, mm);
}

/// `unlink_file_vma()` of each file VMA that goes (from `free_pgtables()`,
/// before the page tables are freed): off the file's i_mmap under
/// `i_mmap_lock`. The model's i_mmap is the mms' VMA lists, which the
/// VMAs left already; taking the lock is what waits for a reverse-map
/// walk (`page_referenced_file`) that found them before, so that it is
/// done with their page tables before they are freed.
fn unlink_file_vmas(vmas: &[Rc<Vma>]) {
    let mut files: Vec<&Rc<AddressSpace>> = Vec::new();
    for file in vmas.iter().filter_map(|v| v.vm_file.get()) {
        if !files.iter().any(|f| Rc::ptr_eq(f, file)) {
            files.push(file);
        }
    }
    for file in files {
        let lock = file
            .i_mmap_lock
            .lock("unlink_file_vma: spin_lock(&mapping->i_mmap_lock)");
        lock.unlock("unlink_file_vma: spin_unlock(&mapping->i_mmap_lock)");
    }
}
