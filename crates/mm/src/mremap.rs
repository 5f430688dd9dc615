//! `mremap()`: shrink, expand in place, and move (`MREMAP_MAYMOVE |
//! MREMAP_FIXED`, `MREMAP_DONTUNMAP`), with `copy_vma()` and
//! `move_page_tables()`.
//!
//! Models mm/mremap.c (v6.16 structure: `do_mremap` → `mremap_to` /
//! `mremap_at`, `move_vma`, `remap_is_valid`) with two version-dependent
//! rules as knobs: `mremap_expand_merge` (ca3d76b0aa80, v6.1: an in-place
//! expansion merges with the next VMA) and `mremap_multi_vma_move` (v6.17:
//! a fixed move of unchanged size may span several VMAs and the gaps
//! between them). Moving to an address the kernel chooses
//! (`MREMAP_MAYMOVE` without `MREMAP_FIXED` when in-place expansion fails)
//! is unsupported: the model cannot reproduce the kernel's placement.

use std::rc::Rc;

use crate::memory::{pmd_alloc, pte_alloc, pud_alloc};
use crate::mm_types::{vm_flags, Kernel, MmapState, Task, Vma, PAGE_SHIFT, PAGE_SIZE};
use crate::mmap::{insert_vma, munmap_locked, vm_area_dup, EFAULT, EINVAL, ENOMEM, TASK_SIZE};
use crate::pgtable::{peek_pmd, pgd_offset, pte_offset, EntryRef};
use crate::vma::{vma_merge_new_range, MergeRange};

pub const MREMAP_MAYMOVE: u64 = 1;
pub const MREMAP_FIXED: u64 = 2;
pub const MREMAP_DONTUNMAP: u64 = 4;

/// One mremap request (`struct vma_remap_struct`).
struct Remap {
    addr: u64,
    old_len: u64,
    new_len: u64,
    flags: u64,
    new_addr: u64,
}

impl Remap {
    fn implies_new_addr(&self) -> bool {
        self.flags & (MREMAP_FIXED | MREMAP_DONTUNMAP) != 0
    }
}

/// `mremap(addr, old_len, new_len, flags, new_addr)` (`do_mremap`).
pub fn do_mremap(
    k: &Kernel,
    task: &Task,
    addr: u64,
    old_len: u64,
    new_len: u64,
    flags: u64,
    new_addr: u64,
) -> Result<u64, i32> {
    let _f = explore::enter("do_mremap");
    let mut r = Remap {
        addr,
        old_len,
        new_len,
        flags,
        new_addr,
    };
    check_mremap_params(&r)?;
    r.old_len = r.old_len.next_multiple_of(PAGE_SIZE);
    r.new_len = r.new_len.next_multiple_of(PAGE_SIZE);
    // The v6.17 series validates the target range before looking at VMAs
    // [I: from the host's behaviour].
    if k.profile.knobs.mremap_multi_vma_move && r.implies_new_addr() {
        check_new_range(&r)?;
    }
    let mut mmap = task.mm.mmap_lock.write("mmap_write_lock");
    let result = if mmap.vma_lookup(r.addr).is_none() {
        Err(EFAULT)
    } else if r.implies_new_addr() {
        mremap_to(k, task, &mut mmap, &mut r)
    } else {
        mremap_at(k, task, &mut mmap, &r)
    };
    mmap.unlock("mmap_write_unlock");
    result
}

/// `check_mremap_params()` (v6.16).
fn check_mremap_params(r: &Remap) -> Result<(), i32> {
    if r.flags & !(MREMAP_FIXED | MREMAP_MAYMOVE | MREMAP_DONTUNMAP) != 0
        || !r.addr.is_multiple_of(PAGE_SIZE)
        || r.new_len
            .checked_next_multiple_of(PAGE_SIZE)
            .is_none_or(|l| l == 0)
    {
        return Err(EINVAL);
    }
    if !r.implies_new_addr() {
        return Ok(());
    }
    if !r.new_addr.is_multiple_of(PAGE_SIZE)
        || r.flags & MREMAP_MAYMOVE == 0
        || (r.flags & MREMAP_DONTUNMAP != 0 && r.old_len != r.new_len)
    {
        return Err(EINVAL);
    }
    Ok(())
}

/// `mremap_at()`: no move requested: same size, shrink, or expand in place.
fn mremap_at(k: &Kernel, task: &Task, mmap: &mut MmapState, r: &Remap) -> Result<u64, i32> {
    if r.new_len == r.old_len {
        return Ok(r.addr);
    }
    if r.new_len < r.old_len {
        munmap_locked(k, &task.mm, mmap, r.addr + r.new_len, r.old_len - r.new_len);
        return Ok(r.addr);
    }
    let vma = mmap.vma_lookup(r.addr).cloned().ok_or(EFAULT)?;
    remap_is_valid(&vma, r)?;
    let delta = r.new_len - r.old_len;
    if vma.end() - r.addr == r.old_len && vma_expandable(mmap, &vma, delta) {
        expand_vma_in_place(k, mmap, &vma, delta);
        return Ok(r.addr);
    }
    if r.flags & MREMAP_MAYMOVE == 0 {
        return Err(ENOMEM);
    }
    explore::unsupported(
        "mremap(MREMAP_MAYMOVE) moving to an address of the kernel's choosing (give MREMAP_FIXED)",
    )
}

/// `remap_is_valid()` (v6.16): the old range lies in `vma`.
fn remap_is_valid(vma: &Vma, r: &Remap) -> Result<(), i32> {
    if r.old_len == 0 && vma.flags() & vm_flags::VM_SHARED == 0 {
        return Err(EINVAL);
    }
    if r.old_len > vma.end() - r.addr {
        return Err(EFAULT);
    }
    Ok(())
}

/// `vma_expandable()`: nothing mapped in the `delta` bytes after the VMA.
fn vma_expandable(mmap: &MmapState, vma: &Vma, delta: u64) -> bool {
    let end = vma.end() + delta;
    end <= TASK_SIZE
        && !mmap
            .vmas
            .iter()
            .any(|v| v.start() < end && v.end() > vma.end())
}

/// `expand_vma_in_place()` → `vma_merge_extend()`: the VMA grows by
/// `delta`; from ca3d76b0aa80 (v6.1) it also merges with a compatible next
/// VMA it now touches.
fn expand_vma_in_place(k: &Kernel, mmap: &mut MmapState, vma: &Rc<Vma>, delta: u64) {
    if k.profile.knobs.mremap_expand_merge {
        let r = MergeRange {
            start: vma.end(),
            end: vma.end() + delta,
            flags: vma.flags(),
            pgoff: vma.vm_pgoff.get() + ((vma.end() - vma.start()) >> PAGE_SHIFT),
            anon_vma: vma.anon_vma.get().map(|a| a.id),
            file: vma.vm_file.get().cloned(),
            copied_from: None,
            // vma_merge_extend(): "vmg.middle = NULL".
            src: None,
        };
        if vma_merge_new_range(k, mmap, &r).is_some() {
            return;
        }
    }
    vma.vm_end.set(vma.end() + delta);
}

/// `mremap_to()`: a move to `new_addr` (MREMAP_FIXED) or, with
/// MREMAP_DONTUNMAP alone, to an address the kernel chooses (unsupported).
fn mremap_to(k: &Kernel, task: &Task, mmap: &mut MmapState, r: &mut Remap) -> Result<u64, i32> {
    if r.flags & MREMAP_FIXED == 0 {
        explore::unsupported(
            "MREMAP_DONTUNMAP without MREMAP_FIXED (the kernel picks the address)",
        );
    }
    check_new_range(r)?;
    let multi_ok = k.profile.knobs.mremap_multi_vma_move && r.old_len == r.new_len;
    if k.profile.knobs.mremap_multi_vma_move {
        // The v6.17 series checks the source before unmapping anything
        // [I: from the host's behaviour; the ordering came with the
        // multi-VMA refactor].
        let vma = mmap.vma_lookup(r.addr).cloned().ok_or(EFAULT)?;
        if !multi_ok && r.old_len.min(r.new_len) > vma.end() - r.addr {
            return Err(EFAULT);
        }
    }
    let first = mmap.vma_lookup(r.addr).cloned().ok_or(EFAULT)?;
    if multi_ok && r.old_len > first.end() - r.addr {
        return remap_move(k, task, mmap, r);
    }
    munmap_locked(k, &task.mm, mmap, r.new_addr, r.new_len);
    mmap.vma_lookup(r.addr).ok_or(EFAULT)?;
    if r.new_len < r.old_len {
        munmap_locked(k, &task.mm, mmap, r.addr + r.new_len, r.old_len - r.new_len);
        r.old_len = r.new_len;
    }
    let vma = mmap.vma_lookup(r.addr).cloned().ok_or(EFAULT)?;
    remap_is_valid(&vma, r)?;
    move_vma(
        k, task, mmap, &vma, r.addr, r.old_len, r.new_len, r.new_addr, r.flags,
    );
    Ok(r.new_addr)
}

/// The target range fits below TASK_SIZE and does not overlap the source
/// (`vrm_overlaps()`).
fn check_new_range(r: &Remap) -> Result<(), i32> {
    if r.new_len > TASK_SIZE || r.new_addr > TASK_SIZE - r.new_len {
        return Err(EINVAL);
    }
    let (old_end, new_end) = (r.addr + r.old_len, r.new_addr + r.new_len);
    if old_end > r.new_addr && new_end > r.addr {
        return Err(EINVAL);
    }
    Ok(())
}

/// v6.17 `remap_move()`: each VMA of the old range moves to the same
/// offset in the new one, unmapping only the piece of the target it moves
/// to: what the target held across the source's gaps stays mapped [I: from
/// the host's behaviour].
fn remap_move(k: &Kernel, task: &Task, mmap: &mut MmapState, r: &Remap) -> Result<u64, i32> {
    let end = r.addr + r.old_len;
    let pieces: Vec<(u64, u64)> = mmap
        .vmas
        .iter()
        .filter(|v| v.end() > r.addr && v.start() < end)
        .map(|v| (v.start().max(r.addr), v.end().min(end)))
        .collect();
    for (start, stop) in pieces {
        let len = stop - start;
        let to = r.new_addr + (start - r.addr);
        munmap_locked(k, &task.mm, mmap, to, len);
        let vma = mmap.vma_lookup(start).cloned().ok_or(EFAULT)?;
        move_vma(k, task, mmap, &vma, start, len, len, to, r.flags);
    }
    Ok(r.new_addr)
}

/// `move_vma()`: `copy_vma()` to the new place, `move_page_tables()`, then
/// unmap the old range, or with MREMAP_DONTUNMAP leave it mapped and empty.
#[allow(clippy::too_many_arguments)]
fn move_vma(
    k: &Kernel,
    task: &Task,
    mmap: &mut MmapState,
    vma: &Rc<Vma>,
    old_addr: u64,
    old_len: u64,
    new_len: u64,
    new_addr: u64,
    flags: u64,
) {
    let _f = explore::enter("move_vma");
    let mm = &task.mm;
    let whole = vma.start() == old_addr && vma.end() == old_addr + old_len;
    copy_vma(k, mmap, vma, old_addr, new_addr, new_len);
    move_page_tables(k, task, old_addr, new_addr, old_len.min(new_len));
    let (from, to, n) = (
        old_addr >> PAGE_SHIFT,
        new_addr >> PAGE_SHIFT,
        old_len.min(new_len) >> PAGE_SHIFT,
    );
    k.ghost.remap(mm.id, from, to, n);
    if flags & MREMAP_DONTUNMAP != 0 {
        dontunmap_complete(k, mmap, old_addr, new_addr, whole);
    } else {
        munmap_locked(k, mm, mmap, old_addr, old_len);
    }
}

/// `copy_vma()`: the VMA for the new range, merged into a neighbour there
/// if possible. An unfaulted anonymous VMA gets the pgoff of its new
/// address (nothing in it depends on the old one).
fn copy_vma(
    k: &Kernel,
    mmap: &mut MmapState,
    vma: &Rc<Vma>,
    old_addr: u64,
    new_addr: u64,
    len: u64,
) {
    let pgoff = match (vma.anon_vma.get(), vma.vm_file.get()) {
        (None, None) => new_addr >> PAGE_SHIFT,
        _ => vma.vm_pgoff.get() + ((old_addr - vma.start()) >> PAGE_SHIFT),
    };
    let r = MergeRange {
        start: new_addr,
        end: new_addr + len,
        flags: vma.flags(),
        pgoff,
        anon_vma: vma.anon_vma.get().map(|a| a.id),
        file: vma.vm_file.get().cloned(),
        copied_from: Some(vma.clone()),
        src: None,
    };
    if vma_merge_new_range(k, mmap, &r).is_some() {
        return;
    }
    let new = vm_area_dup(vma, new_addr, new_addr + len, pgoff);
    crate::rmap::anon_vma_clone_or_unsupported(k, &new, vma, "copy_vma");
    insert_vma(mmap, new);
}

/// `dontunmap_complete()`: the old VMA stays. If it was moved whole (and
/// not merged into the copy) it loses its anon_vma links: its pages went
/// with the page tables, so it is unfaulted again. It keeps VM_ACCOUNT:
/// "mm/mremap: correctly account old mapping after MREMAP_DONTUNMAP remap"
/// (Cc: stable, fixing b714ccb02a76) removed the clearing that v5.7..v6.16
/// did.
fn dontunmap_complete(k: &Kernel, mmap: &mut MmapState, old_addr: u64, new_addr: u64, whole: bool) {
    let Some(old) = mmap.vma_lookup(old_addr).cloned() else {
        return;
    };
    let merged_with_copy = mmap
        .vma_lookup(new_addr)
        .is_some_and(|n| Rc::ptr_eq(n, &old));
    if whole && !merged_with_copy && old.anon_vma.get().is_some() {
        crate::rmap::unlink_anon_vmas(k, &old);
        let fresh = vm_area_dup(&old, old.start(), old.end(), old.vm_pgoff.get());
        let i = mmap
            .vmas
            .iter()
            .position(|v| Rc::ptr_eq(v, &old))
            .expect("the VMA just looked up");
        mmap.vmas[i] = fresh;
        crate::mmap::vm_area_free(&old);
    }
}

/// `move_page_tables()` → `move_ptes()`: each entry of the old range moves
/// to the same offset of the new one, under the old then the new PTE lock
/// (mmap_lock is held for writing, so no fault races with it).
fn move_page_tables(k: &Kernel, task: &Task, old_addr: u64, new_addr: u64, len: u64) {
    let _f = explore::enter("move_page_tables");
    let mm = &task.mm;
    for off in (0..len).step_by(PAGE_SIZE as usize) {
        let Some(old) = old_pte(k, task, old_addr + off) else {
            continue;
        };
        if old.peek() == 0 {
            continue;
        }
        let Some(new) = new_pte(k, task, new_addr + off) else {
            explore::unsupported("page-table allocation failure in move_page_tables");
        };
        let ptl = crate::pgtable::Ptl::lock(lock_of(k, task, old_addr + off), "spin_lock(old_ptl)");
        let v = old.xchg("move_ptes: ptep_get_and_clear", 0);
        ptl.unlock("spin_unlock(old_ptl)");
        let ptl = crate::pgtable::Ptl::lock(lock_of(k, task, new_addr + off), "spin_lock(new_ptl)");
        new.write("move_ptes: set_pte_at", v);
        ptl.unlock("spin_unlock(new_ptl)");
        let _ = mm;
    }
}

/// The PTE slot of `addr`, if its tables exist.
fn old_pte(k: &Kernel, task: &Task, addr: u64) -> Option<EntryRef> {
    let pmd = peek_pmd(k, &task.mm, addr)?;
    pte_offset(k, pmd.read("move_page_tables: read *old_pmd"), addr)
}

/// The PTE slot of `addr`, allocating tables on the way (`alloc_new_pmd`,
/// `pte_alloc`).
pub(crate) fn new_pte(k: &Kernel, task: &Task, addr: u64) -> Option<EntryRef> {
    let pgd = pgd_offset(&task.mm, addr);
    let pud = pud_alloc(k, task, &pgd, addr)?;
    let pmd = pmd_alloc(k, task, &pud, addr)?;
    if !pte_alloc(k, task, &pmd) {
        return None;
    }
    pte_offset(k, pmd.read("move_page_tables: read *new_pmd"), addr)
}

fn lock_of(k: &Kernel, task: &Task, addr: u64) -> Rc<explore::sync::SpinLock<()>> {
    let pmd = peek_pmd(k, &task.mm, addr).map(|p| p.peek()).unwrap_or(0);
    match crate::pgtable::pte_lockptr(k, &task.mm, pmd) {
        crate::pgtable::PtlSource::Table(l) => l,
        _ => task.mm.page_table_lock.clone(),
    }
}
