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

use crate::mm_types::{vm_flags, AddressSpace, Kernel, MmapState, Vma, PAGE_SHIFT, PAGE_SIZE};
use crate::rmap::vma_had_uncowed_parents;

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
    crate::rmap::anon_vma_clone_or_unsupported(k, dst, src, "dup_anon_vma");
}

/// Removes a VMA swallowed by a merge (`vma_complete()` → remove_vma).
fn remove_merged(k: &Kernel, mmap: &mut MmapState, vma: &Rc<Vma>) {
    crate::rmap::unlink_anon_vmas(k, vma);
    let i = index_of(mmap, vma);
    mmap.vmas.remove(i);
    crate::mmap::vm_area_free(vma);
}

/// New bounds (start, end, pgoff) for a VMA a merge changes.
type Bounds<'a> = (&'a Vma, u64, u64, u64);

/// `commit_merge()` → `vma_prepare()` … `vma_complete()` (v6.18): the
/// target's new bounds, and those of a VMA the merge shrinks (`adjust`),
/// are set in one section under the anon_vma lock; the VMAs the merge
/// swallows are unlinked and freed after it (`vp->remove`), once the
/// target covers their range. An rmap walk thus finds every page of the
/// range through the old VMAs or the new ones, never through none.
fn commit_merge(
    k: &Kernel,
    mmap: &mut MmapState,
    target: Bounds<'_>,
    adjust: Option<Bounds<'_>>,
    remove: &[&Rc<Vma>],
) {
    let anon_vma = target
        .0
        .anon_vma
        .get()
        .or_else(|| adjust.and_then(|a| a.0.anon_vma.get()))
        .cloned();
    let guard = anon_vma
        .as_ref()
        .map(|av| av.rwsem.write("anon_vma_lock_write"));
    for (vma, start, end, pgoff) in std::iter::once(target).chain(adjust) {
        vma.vm_start.set(start);
        vma.vm_end.set(end);
        vma.vm_pgoff.set(pgoff);
    }
    if let Some(g) = guard {
        g.unlock("anon_vma_unlock_write");
    }
    for vma in remove {
        remove_merged(k, mmap, vma);
    }
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
            commit_merge(
                k,
                mmap,
                (&p, p.start(), n.end(), p.vm_pgoff.get()),
                None,
                &[&n],
            );
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
            let target = (&*p, p.start(), n.end(), p.vm_pgoff.get());
            commit_merge(k, mmap, target, None, &[vma, &n]);
            Some(p)
        }
        (Some(p), None) => {
            dup_anon_vma(k, &p, vma);
            let target = (&*p, p.start(), end, p.vm_pgoff.get());
            if right {
                commit_merge(k, mmap, target, None, &[vma]);
            } else {
                let pgoff = vma.vm_pgoff.get() + ((end - vma.start()) >> PAGE_SHIFT);
                let shrunk = (&**vma, end, vma.end(), pgoff);
                commit_merge(k, mmap, target, Some(shrunk), &[]);
            }
            Some(p)
        }
        (None, Some(n)) => {
            dup_anon_vma(k, &n, vma);
            let target = (&*n, start, n.end(), r.pgoff);
            if left {
                commit_merge(k, mmap, target, None, &[vma]);
            } else {
                let shrunk = (&**vma, vma.start(), start, vma.vm_pgoff.get());
                commit_merge(k, mmap, target, Some(shrunk), &[]);
            }
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
/// singular (not forked), as since d0e9fe1758f2 (knob
/// `reuse_anon_vma_singleton`); v2.6.34-rc3 took any mergeable
/// neighbour's anon_vma (`can_vma_merge_before/after()` with
/// `near->anon_vma` set). The chain length is read without the lock: it
/// only compares pointers (Linus, in the seed 002 thread).
fn reusable(k: &Kernel, old: &Vma) -> Option<Rc<crate::mm_types::AnonVma>> {
    let singular = old.anon_vma_chain.borrow().len() == 1;
    (singular || !k.profile.knobs.reuse_anon_vma_singleton)
        .then(|| old.anon_vma.get().cloned())
        .flatten()
}

/// `find_mergeable_anon_vma()` (v6.18): an anon_vma a neighbour could
/// share with `vma`, so the two may merge later: the next VMA's first,
/// then the previous one's (`reusable_anon_vma()`, singular chains only).
/// Called with mmap_lock held (at least for reading), which makes reading
/// the VMA list safe.
pub fn find_mergeable_anon_vma(
    k: &Kernel,
    mmap: &MmapState,
    vma: &Vma,
) -> Option<Rc<crate::mm_types::AnonVma>> {
    let next = mmap.vmas.iter().find(|v| v.start() >= vma.end());
    if let Some(av) = next
        .filter(|n| anon_vma_compatible(vma, n))
        .and_then(|n| reusable(k, n))
    {
        return Some(av);
    }
    let prev = mmap.vmas.iter().rev().find(|v| v.end() <= vma.start());
    prev.filter(|p| anon_vma_compatible(p, vma))
        .and_then(|p| reusable(k, p))
}

/// `can_vma_merge_after()` (v2.6.34): `prev` can grow over a range with
/// `flags`, anon_vma `anon_vma` and `pgoff`. An absent anon_vma on either
/// side is compatible with anything (`is_mergeable_anon_vma()`).
fn can_vma_merge_after_v2_6_34(prev: &Vma, flags: u64, anon_vma: Option<u64>, pgoff: u64) -> bool {
    is_mergeable_vma(prev, flags, &None)
        && is_mergeable_anon_vma(anon_vma, anon_id(prev))
        && prev.vm_pgoff.get() + pages(prev) == pgoff
}

/// `can_vma_merge_before()` (v2.6.34): `next` can grow down over the range.
fn can_vma_merge_before_v2_6_34(next: &Vma, flags: u64, anon_vma: Option<u64>, pgoff: u64) -> bool {
    is_mergeable_vma(next, flags, &None)
        && is_mergeable_anon_vma(anon_vma, anon_id(next))
        && next.vm_pgoff.get() == pgoff
}

/// `vma_merge()` (v2.6.34 mm/mmap.c) for an anonymous private range
/// `[addr, end)` with `flags`, the anon_vma of the VMA it comes from and
/// `pgoff`: merge it into `prev` and/or the VMA after it (cases 1-8 of
/// the kernel's comment) with `vma_adjust_v2_6_34()`. `prev` is the VMA
/// before `addr`, or the one containing it (mprotect of a VMA's tail).
/// Returns the VMA now covering the range. A whole old body beside
/// vma.rs's v6.18 merge: 2.6.34's one function with `vma_adjust()` doing
/// the anon_vma work has nothing in common with mm/vma.c's structure.
pub fn vma_merge_v2_6_34(
    k: &Kernel,
    mmap: &mut MmapState,
    prev: Option<Rc<Vma>>,
    range: (u64, u64),
    flags: u64,
    anon_vma: Option<u64>,
    pgoff: u64,
) -> Option<Rc<Vma>> {
    let (addr, end) = range;
    let pglen = (end - addr) >> PAGE_SHIFT;
    let first_after = |at: u64| mmap.vmas.iter().find(|v| v.start() >= at).cloned();
    let area = match &prev {
        Some(p) => first_after(p.end()),
        None => mmap.vmas.first().cloned(),
    };
    let mut next = area.clone();
    if next.as_ref().is_some_and(|n| n.end() == end) {
        next = first_after(end);
    }
    let next_mergeable = |n: &Rc<Vma>| {
        end == n.start() && can_vma_merge_before_v2_6_34(n, flags, anon_vma, pgoff + pglen)
    };
    if let Some(p) = prev
        .clone()
        .filter(|p| p.end() == addr && can_vma_merge_after_v2_6_34(p, flags, anon_vma, pgoff))
    {
        let to = match &next {
            Some(n) if next_mergeable(n) && is_mergeable_anon_vma(anon_id(&p), anon_id(n)) => {
                n.end() // cases 1, 6
            }
            _ => end, // cases 2, 5, 7
        };
        let ok = vma_adjust_v2_6_34(k, mmap, &p, p.start(), to, p.vm_pgoff.get());
        return ok.then_some(p);
    }
    let n = next.filter(next_mergeable)?;
    match prev.filter(|p| addr < p.end()) {
        // case 4: prev shrinks, next grows down.
        Some(p) => vma_adjust_v2_6_34(k, mmap, &p, p.start(), addr, p.vm_pgoff.get()).then_some(n),
        // cases 3, 8: area grows (or is the range) up to next's end.
        None => {
            let area = area?;
            let ok = vma_adjust_v2_6_34(k, mmap, &area, addr, n.end(), n.vm_pgoff.get() - pglen);
            ok.then_some(area)
        }
    }
}

/// `vma_adjust()` (v2.6.34 mm/mmap.c, no `insert`: the merge cases) sets
/// `vma` to `[start, end)` at `pgoff`, moving the boundary with the next
/// VMA or swallowing it. The VMA that grows over the other's range is the
/// importer and must be linked to the exporter's anon_vmas. Since
/// 287d97ac0321 (knob `vma_adjust_exporter`) it clones the exporter's
/// chain; v2.6.34-rc3 cloned `vma`'s, which is the importer itself in
/// every case but the boundary shift down, and set the importer's
/// anon_vma to next's anyway: a VMA whose anon_vma is not on its chain.
/// A swallowed next ends with `anon_vma_merge()`. Returns false
/// (`-ENOMEM`) if the clone fails. The bounds move under vma's anon_vma
/// lock (2.6.34 took none here; the model keeps rmap walks' reads of
/// them race-free).
fn vma_adjust_v2_6_34(
    k: &Kernel,
    mmap: &mut MmapState,
    vma: &Rc<Vma>,
    start: u64,
    end: u64,
    pgoff: u64,
) -> bool {
    let _f = explore::enter("vma_adjust");
    let target_end = end;
    let mut end = end;
    let next = mmap.vmas.iter().find(|v| v.start() >= vma.end()).cloned();
    let mut remove_next = 0;
    let mut adjust_next: i64 = 0;
    let mut importer_exporter = None;
    if let Some(n) = &next {
        if end >= n.end() {
            remove_next = 1 + u32::from(end > n.end());
            end = n.end();
            importer_exporter = Some((vma.clone(), n.clone()));
        } else if end > n.start() {
            adjust_next = ((end - n.start()) >> PAGE_SHIFT) as i64;
            importer_exporter = Some((vma.clone(), n.clone()));
        } else if end < vma.end() {
            adjust_next = -(((vma.end() - end) >> PAGE_SHIFT) as i64);
            importer_exporter = Some((n.clone(), vma.clone()));
        }
    }
    if !import_anon_vma(k, vma, next.as_ref(), importer_exporter) {
        return false;
    }
    set_bounds(vma, start, end, pgoff);
    if let Some(n) = next.as_ref().filter(|_| adjust_next != 0) {
        let shift = adjust_next * PAGE_SIZE as i64;
        let n_start = (n.start() as i64 + shift) as u64;
        let n_pgoff = (n.vm_pgoff.get() as i64 + adjust_next) as u64;
        set_bounds(n, n_start, n.end(), n_pgoff);
    }
    if remove_next > 0 {
        let n = next.expect("remove_next implies a next VMA");
        let i = index_of(mmap, &n);
        mmap.vmas.remove(i);
        if n.anon_vma.get().is_some() {
            anon_vma_merge(k, vma, &n);
        }
        crate::mmap::vm_area_free(&n);
        if remove_next == 2 {
            // `next = vma->vm_next; goto again` with the caller's end.
            return vma_adjust_v2_6_34(k, mmap, vma, vma.start(), target_end, vma.vm_pgoff.get());
        }
    }
    true
}

/// The anon_vma part of `vma_adjust()` (v2.6.34): link the importer to
/// the anon_vmas whose pages it takes over.
fn import_anon_vma(
    k: &Kernel,
    vma: &Rc<Vma>,
    next: Option<&Rc<Vma>>,
    importer_exporter: Option<(Rc<Vma>, Rc<Vma>)>,
) -> bool {
    let Some((importer, exporter)) = importer_exporter else {
        return true;
    };
    if importer.anon_vma.get().is_some() {
        return true;
    }
    if k.profile.knobs.vma_adjust_exporter {
        let Some(av) = exporter.anon_vma.get().cloned() else {
            return true;
        };
        if !crate::rmap::link_into_chain_of(k, &importer, &exporter) {
            return false;
        }
        let _ = importer.anon_vma.set(av);
        return true;
    }
    // rc3: anon_vma = next->anon_vma, overridden by vma's own when vma
    // has one (`if (vma->anon_vma && (insert || importer || start !=
    // vma->vm_start))`, always true here: importer is set); the chain
    // is always cloned from vma.
    let Some(av) = vma
        .anon_vma
        .get()
        .or_else(|| next.and_then(|n| n.anon_vma.get()))
        .cloned()
    else {
        return true;
    };
    if !crate::rmap::link_into_chain_of(k, &importer, vma) {
        return false;
    }
    if Rc::ptr_eq(&importer, vma) {
        explore::mark("vma_adjust: importer == vma, the clone copies its own (empty) chain");
    }
    let _ = importer.anon_vma.set(av);
    true
}

/// `anon_vma_merge()` (v2.6.34 include/linux/rmap.h): `next`, swallowed
/// by `vma`, leaves the anon_vmas it was linked to. It assumes vma's chain
/// covers next's (true when VMAs that share an anon_vma have identical
/// chains, the rule d0e9fe1758f2 established). `VM_BUG_ON(vma->anon_vma
/// != next->anon_vma)` (CONFIG_DEBUG_VM).
fn anon_vma_merge(k: &Kernel, vma: &Vma, next: &Vma) {
    let same = match (vma.anon_vma.get(), next.anon_vma.get()) {
        (Some(a), Some(b)) => Rc::ptr_eq(a, b),
        (a, b) => a.is_none() && b.is_none(),
    };
    if !same {
        explore::oops(crate::debug::bug_on(
            "anon_vma_merge: VM_BUG_ON(vma->anon_vma != next->anon_vma)",
        ));
    }
    crate::rmap::unlink_anon_vmas(k, next);
}
