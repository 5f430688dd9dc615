//! VMA merging: `vma_merge_new_range()` (mmap), `vma_merge_existing_range()`
//! (mprotect), their mergeability tests, and `find_mergeable_anon_vma()`.
//!
//! Models mm/vma.c (v6.18; the code lived in mm/mmap.c's `vma_merge()`
//! before v6.12). Two version-dependent rules are knobs:
//! `anon_merge_faulted_unfaulted` (879bca0a2c4f, v6.16) and
//! `unaccount_unfaulted_on_mprotect` (v6.7, in mprotect.rs's caller).
//!
//! A neighbour's anon_vma is reused only when its chain is singular
//! (`list_is_singular(&vma->anon_vma_chain)`: not forked), as since
//! d0e9fe1758f2 (v2.6.34-rc4).

use std::rc::Rc;

use crate::mm_types::{vm_flags, AddressSpace, Kernel, MmapState, Vma, PAGE_SHIFT};
use crate::rmap::{anon_vma_clone, vma_had_uncowed_parents};

/// Flags that do not block a merge (`VM_SOFTDIRTY` in the kernel; the
/// model has none).
const VM_IGNORE_MERGE: u64 = 0;

/// `is_mergeable_vma()`: identical flags and the same file (or none).
fn is_mergeable_vma(vma: &Vma, flags: u64, file: &Option<Rc<AddressSpace>>) -> bool {
    (vma.flags() ^ flags) & !VM_IGNORE_MERGE == 0 && same_file(vma.vm_file.get(), file.as_ref())
}

fn same_file(a: Option<&Rc<AddressSpace>>, b: Option<&Rc<AddressSpace>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => Rc::ptr_eq(a, b),
        _ => false,
    }
}

/// Whether two anon_vmas may end up in one VMA: either side has none, or
/// both have the same one (`can_vma_merge_right()`'s prev/next test).
fn is_mergeable_anon_vma(a: Option<u64>, b: Option<u64>) -> bool {
    a.is_none() || b.is_none() || a == b
}

/// `is_mergeable_anon_vma()` (v6.16): the range (anon_vma `src_anon`, from
/// VMA `src` in an existing-range merge, or copied by mremap from
/// `copied_from`) may merge into `tgt`. A side without an anon_vma takes
/// the other's (`dup_anon_vma()`), unless that VMA was forked and may still
/// map its parent's pages. The `copied_from` test is the January 2026
/// stable fix (Fixes: 879bca0a2c4f) for mremap moves in forked processes;
/// 6.16.y-6.18.y kernels before it merge there.
fn anon_compatible(
    tgt: &Vma,
    src_anon: Option<u64>,
    src: Option<&Vma>,
    copied_from: Option<&Vma>,
) -> bool {
    match (anon_id(tgt), src_anon) {
        (None, Some(_)) => {
            !src.is_some_and(vma_had_uncowed_parents)
                && !copied_from.is_some_and(vma_had_uncowed_parents)
        }
        (Some(_), None) => !vma_had_uncowed_parents(tgt),
        (a, b) => a == b,
    }
}

fn anon_id(vma: &Vma) -> Option<u64> {
    vma.anon_vma.get().map(|a| a.id)
}

fn pages(vma: &Vma) -> u64 {
    (vma.end() - vma.start()) >> PAGE_SHIFT
}

/// What is being merged: a range with its flags, pgoff and anon_vma
/// (`struct vma_merge_struct`).
pub struct MergeRange {
    pub start: u64,
    pub end: u64,
    pub flags: u64,
    pub pgoff: u64,
    pub anon_vma: Option<u64>,
    /// `vm_file` of the range.
    pub file: Option<Rc<AddressSpace>>,
    /// The VMA mremap copies the range from (`vmg->copied_from`): its
    /// anon_vma goes to whichever VMA the range merges into.
    pub copied_from: Option<Rc<Vma>>,
    /// The VMA the range belongs to, in an existing-range merge
    /// (`vmg->middle`).
    pub src: Option<Rc<Vma>>,
}

/// `can_vma_merge_after()`: `prev` can grow over the range.
fn can_merge_after(prev: &Vma, r: &MergeRange) -> bool {
    prev.end() == r.start
        && is_mergeable_vma(prev, r.flags, &r.file)
        && anon_compatible(prev, r.anon_vma, r.src.as_deref(), r.copied_from.as_deref())
        && prev.vm_pgoff.get() + pages(prev) == r.pgoff
}

/// `can_vma_merge_before()`: `next` can grow down over the range.
fn can_merge_before(next: &Vma, r: &MergeRange) -> bool {
    next.start() == r.end
        && is_mergeable_vma(next, r.flags, &r.file)
        && anon_compatible(next, r.anon_vma, r.src.as_deref(), r.copied_from.as_deref())
        && r.pgoff + ((r.end - r.start) >> PAGE_SHIFT) == next.vm_pgoff.get()
}

fn index_of(mmap: &MmapState, vma: &Rc<Vma>) -> usize {
    mmap.vmas
        .iter()
        .position(|v| Rc::ptr_eq(v, vma))
        .expect("a VMA of this mm")
}

fn prev_of(mmap: &MmapState, start: u64) -> Option<Rc<Vma>> {
    mmap.vmas.iter().rev().find(|v| v.end() <= start).cloned()
}

fn next_of(mmap: &MmapState, end: u64) -> Option<Rc<Vma>> {
    mmap.vmas.iter().find(|v| v.start() >= end).cloned()
}

/// Sets a VMA's bounds (and pgoff) with its anon_vma locked for writing,
/// as `vma_prepare()`/`vma_complete()` do, so rmap walks see a consistent
/// VMA.
fn set_bounds(vma: &Vma, start: u64, end: u64, pgoff: u64) {
    let guard = vma
        .anon_vma
        .get()
        .map(|av| av.rwsem.write("anon_vma_lock_write"));
    vma.vm_start.set(start);
    vma.vm_end.set(end);
    vma.vm_pgoff.set(pgoff);
    if let Some(g) = guard {
        g.unlock("anon_vma_unlock_write");
    }
}

/// `dup_anon_vma()`: `dst` takes `src`'s anon_vma when it has none.
fn dup_anon_vma(k: &Kernel, dst: &Vma, src: &Vma) {
    if dst.anon_vma.get().is_some() {
        return;
    }
    anon_vma_clone(k, dst, src);
}

/// Removes a VMA swallowed by a merge (`vma_complete()` → remove_vma).
fn remove_merged(mmap: &mut MmapState, vma: &Rc<Vma>) {
    crate::rmap::unlink_anon_vmas(vma);
    let i = index_of(mmap, vma);
    mmap.vmas.remove(i);
    crate::mmap::vm_area_free(vma);
}

/// `vma_merge_new_range()` (v6.18): a new anonymous range `r` (already
/// free) merges with `prev` and/or `next`. Returns the VMA now covering it.
pub fn vma_merge_new_range(k: &Kernel, mmap: &mut MmapState, r: &MergeRange) -> Option<Rc<Vma>> {
    let prev = prev_of(mmap, r.start).filter(|p| can_merge_after(p, r));
    let next = next_of(mmap, r.end).filter(|n| can_merge_before(n, r));
    let next = match (&prev, next) {
        (Some(p), Some(n)) if !is_mergeable_anon_vma(anon_id(p), anon_id(&n)) => None,
        (_, n) => n,
    };
    let target = match (prev, next) {
        (Some(p), Some(n)) => {
            dup_anon_vma(k, &p, &n);
            remove_merged(mmap, &n);
            set_bounds(&p, p.start(), n.end(), p.vm_pgoff.get());
            p
        }
        (Some(p), None) => {
            set_bounds(&p, p.start(), r.end, p.vm_pgoff.get());
            p
        }
        (None, Some(n)) => {
            set_bounds(&n, r.start, n.end(), r.pgoff);
            n
        }
        (None, None) => return None,
    };
    // vma_expand(): "if we are copying from a VMA (e.g. mremap()'ing), we
    // must propagate anon_vma state".
    if let Some(src) = &r.copied_from {
        dup_anon_vma(k, &target, src);
    }
    Some(target)
}

/// `vma_merge_existing_range()` (v6.18): the part `[start, end)` of `vma`
/// is about to get `flags`; merge it into `prev` and/or `next` if they
/// match. Returns the VMA now covering the range, or None (the caller
/// splits instead).
pub fn vma_merge_existing_range(
    k: &Kernel,
    mmap: &mut MmapState,
    vma: &Rc<Vma>,
    start: u64,
    end: u64,
    flags: u64,
) -> Option<Rc<Vma>> {
    let r = MergeRange {
        start,
        end,
        flags,
        pgoff: vma.vm_pgoff.get() + ((start - vma.start()) >> PAGE_SHIFT),
        anon_vma: anon_id(vma),
        file: vma.vm_file.get().cloned(),
        copied_from: None,
        src: Some(vma.clone()),
    };
    // Before 879bca0a2c4f (v6.16) a faulted range did not merge into an
    // unfaulted neighbour [I: the rule as the selftests describe it].
    let faulted_into = |n: &Vma| {
        k.profile.knobs.anon_merge_faulted_unfaulted || r.anon_vma.is_none() || anon_id(n).is_some()
    };
    let left = start == vma.start();
    let right = end == vma.end();
    let prev = prev_of(mmap, start).filter(|p| left && can_merge_after(p, &r) && faulted_into(p));
    let next = next_of(mmap, end).filter(|n| right && can_merge_before(n, &r) && faulted_into(n));
    let next = match (&prev, next) {
        (Some(p), Some(n)) if !is_mergeable_anon_vma(anon_id(p), anon_id(&n)) => None,
        (_, n) => n,
    };
    match (prev, next) {
        (Some(p), Some(n)) => {
            dup_anon_vma(k, &p, vma);
            dup_anon_vma(k, &p, &n);
            remove_merged(mmap, vma);
            remove_merged(mmap, &n);
            set_bounds(&p, p.start(), n.end(), p.vm_pgoff.get());
            Some(p)
        }
        (Some(p), None) => {
            dup_anon_vma(k, &p, vma);
            if right {
                remove_merged(mmap, vma);
            } else {
                let pgoff = vma.vm_pgoff.get() + ((end - vma.start()) >> PAGE_SHIFT);
                set_bounds(vma, end, vma.end(), pgoff);
            }
            set_bounds(&p, p.start(), end, p.vm_pgoff.get());
            Some(p)
        }
        (None, Some(n)) => {
            dup_anon_vma(k, &n, vma);
            if left {
                remove_merged(mmap, vma);
            } else {
                set_bounds(vma, vma.start(), start, vma.vm_pgoff.get());
            }
            set_bounds(&n, start, n.end(), r.pgoff);
            Some(n)
        }
        (None, None) => None,
    }
}

/// `anon_vma_compatible()`: `b` follows `a` directly, with the same flags
/// except the access bits, and contiguous pgoff.
fn anon_vma_compatible(a: &Vma, b: &Vma) -> bool {
    a.end() == b.start()
        && same_file(a.vm_file.get(), b.vm_file.get())
        && (a.flags() ^ b.flags()) & !(vm_flags::VM_ACCESS_FLAGS | VM_IGNORE_MERGE) == 0
        && b.vm_pgoff.get() == a.vm_pgoff.get() + pages(a)
}

/// `reusable_anon_vma()`: a neighbour's anon_vma, if its chain is
/// singular (not forked).
fn reusable(old: &Vma) -> Option<Rc<crate::mm_types::AnonVma>> {
    (old.anon_vma_chain.borrow().len() == 1)
        .then(|| old.anon_vma.get().cloned())
        .flatten()
}

/// `find_mergeable_anon_vma()` (v6.18): an anon_vma a neighbour could
/// share with `vma`, so the two may merge later: the next VMA's first,
/// then the previous one's (`reusable_anon_vma()`, singular chains only).
/// Called with mmap_lock held (at least for reading), which makes reading
/// the VMA list safe.
pub fn find_mergeable_anon_vma(
    mmap: &MmapState,
    vma: &Vma,
) -> Option<Rc<crate::mm_types::AnonVma>> {
    let next = mmap.vmas.iter().find(|v| v.start() >= vma.end());
    if let Some(av) = next
        .filter(|n| anon_vma_compatible(vma, n))
        .and_then(|n| reusable(n))
    {
        return Some(av);
    }
    let prev = mmap.vmas.iter().rev().find(|v| v.end() <= vma.start());
    prev.filter(|p| anon_vma_compatible(p, vma))
        .and_then(|p| reusable(p))
}
