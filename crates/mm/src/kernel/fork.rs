//! kernel/fork.c: the life of an mm. `mm_alloc()`, `dup_mmap()` for
//! `fork()`, `mmget()`/`mmput()` counting the tasks that use it, and
//! `check_mm()`, the accounting checks the kernel runs when an mm is freed.
//!
//! `check_mm()` models kernel/fork.c (v6.1): `"BUG: Bad rss-counter state
//! mm:%p type:%s val:%ld"` for every non-zero counter, then `"BUG: non-zero
//! pgtables_bytes on freeing mm: %ld"`.

use explore::{Finding, FindingKind};

use crate::mm_types::{Kernel, MmStruct, RSS_NAMES};
use crate::profile::LogStyle;

/// The lines `check_mm()` prints for `mm` (empty when all is well), in
/// the format of the profile's version.
pub fn check_mm_lines(k: &Kernel, mm: &MmStruct) -> Vec<String> {
    match k.profile.log_style {
        LogStyle::V3_12 => check_mm_lines_v3(mm),
        LogStyle::V6_1 => check_mm_lines_v6(mm),
    }
}

/// `check_mm()` (v3.12): `"BUG: Bad rss-counter state mm:%p idx:%d
/// val:%ld"` for each of the three counters (FILE, ANON, SWAPENTS) with a
/// raw pointer; no page-table byte count yet.
fn check_mm_lines_v3(mm: &MmStruct) -> Vec<String> {
    let ptr = mm.pointer(LogStyle::V3_12);
    (0..NR_MM_COUNTERS_V3)
        .filter_map(|idx| {
            let v = mm.rss[idx].get();
            (v != 0).then(|| format!("BUG: Bad rss-counter state mm:{ptr} idx:{idx} val:{v}"))
        })
        .collect()
}

/// rss counters of v3.12 (MM_SHMEMPAGES came in v4.5).
const NR_MM_COUNTERS_V3: usize = 3;

/// `check_mm()` (v6.1).
fn check_mm_lines_v6(mm: &MmStruct) -> Vec<String> {
    let mut lines = Vec::new();
    for (counter, name) in mm.rss.iter().zip(RSS_NAMES) {
        let v = counter.get();
        if v != 0 {
            lines.push(format!(
                "BUG: Bad rss-counter state mm:{} type:{name} val:{v}",
                mm.pointer(LogStyle::V6_1)
            ));
        }
    }
    let bytes = mm.pgtables_bytes.get();
    if bytes != 0 {
        lines.push(format!(
            "BUG: non-zero pgtables_bytes on freeing mm: {bytes}"
        ));
    }
    lines
}

/// `check_mm()`: raises a kernel finding if any counter is off.
pub fn check_mm(k: &Kernel, mm: &MmStruct) {
    let lines = check_mm_lines(k, mm);
    let Some(first) = lines.first() else { return };
    let mut f = Finding::new(FindingKind::Kernel, "check_mm()", first.clone());
    f.details = lines;
    explore::raise(f);
}

/// `mm_alloc()` + `pgd_alloc()`: a fresh mm with an empty PGD, registered
/// with the kernel so checkers can find it.
pub fn mm_alloc(k: &crate::mm_types::Kernel) -> Option<std::rc::Rc<MmStruct>> {
    let pgd = k
        .mem
        .alloc_pages_nofail(0, 0, crate::mm_types::FolioKind::PageTable(4))?;
    let mm = std::rc::Rc::new(MmStruct::new(k.next_id(), pgd));
    k.mms.borrow_mut().push(mm.clone());
    Some(mm)
}

/// `mmget()`: one more task uses `mm` (`copy_mm()` of a
/// `clone(CLONE_VM)`, a new thread of the process).
pub fn mmget(mm: &MmStruct) {
    mm.users.add_return("mmget: atomic_inc(&mm->mm_users)", 1);
}

/// `mmput()` (v6.1): a task stops using `mm` (`exit_mm()` on exit). The
/// last user's `__mmput()` tears the address space down: `exit_mmap()`,
/// then `mmdrop()` → `__mmdrop()` → `check_mm()` (which the model's
/// `exit_mmap` ends with). Other tasks of the process keep the mm alive.
pub fn mmput(k: &crate::mm_types::Kernel, mm: &MmStruct) {
    let _f = explore::enter("mmput");
    if mm
        .users
        .add_return("mmput: atomic_dec_and_test(&mm->mm_users)", -1)
        == 0
    {
        crate::mmap::exit_mmap(k, mm);
    }
}

/// Why the model's `dup_mmap()` cannot copy `parent`'s address space as
/// it is now, if it cannot. It copies present small ptes, 2.6.34 swap
/// ptes and modern pte migration entries: there is no `copy_huge_pmd()`
/// (a THP, or a pmd migration entry), no other `copy_nonpresent_pte()`
/// case (device-private, pte markers), and no
/// `arch_dup_mmap()`, which under Xen PV pins the child's page tables
/// (`xen_dup_mmap()`). A ghost walk: no scheduling points.
pub fn dup_mmap_unmodelled(
    k: &crate::mm_types::Kernel,
    parent: &crate::mm_types::Task,
) -> Option<String> {
    if k.profile.knobs.platform == crate::profile::Platform::XenPv
        && !crate::arch::x86::xen::mmu_pv::pins_pagetables(k)
    {
        return Some(
            "fork under Xen PV is not modelled (arch_dup_mmap() -> xen_dup_mmap() pins the \
             child's page tables)"
                .to_string(),
        );
    }
    let mmap = parent.mm.mmap_lock.peek();
    mmap.vmas
        .iter()
        .filter(|vma| vma.anon_vma.get().is_some())
        .find_map(|vma| uncopyable_entry(k, &parent.mm, vma))
}

/// The first entry of `vma` that copy_page_range would have to copy with
/// code the model does not have.
fn uncopyable_entry(
    k: &crate::mm_types::Kernel,
    mm: &MmStruct,
    vma: &crate::mm_types::Vma,
) -> Option<String> {
    use crate::mm_types::PAGE_SIZE;
    let mut addr = vma.start();
    while addr < vma.end() {
        let pmd = crate::pgtable::peek_pmd(k, mm, addr).map_or(0, |slot| slot.peek());
        if pmd != 0 && crate::pgtable::table_of(k, pmd).is_none() {
            return Some(format!(
                "copy_huge_pmd() is not modelled: the parent's pmd at {addr:#x} is {}",
                k.describe_pmd(pmd)
            ));
        }
        let pte = crate::pgtable::pte_offset(k, pmd, addr).map_or(0, |slot| slot.peek());
        if let Some(why) = pte_mapped_large_folio(k, pte) {
            return Some(format!("{why}: the parent's pte at {addr:#x}"));
        }
        if pte != 0
            && !k.pte_present(crate::arch::x86::pgtable::Pte(pte))
            && !is_copyable_swap_pte(k, pte)
            && !is_migration_pte(k, pte)
        {
            return Some(format!(
                "copy_nonpresent_pte() is not modelled: the parent's pte at {addr:#x} is {}",
                k.describe_pte(pte)
            ));
        }
        addr += PAGE_SIZE;
    }
    None
}

/// Why a present pte mapping a subpage of a large folio (a THP split to
/// ptes) cannot be copied: the model keeps no per-subpage
/// `PageAnonExclusive`, which a COW fault after the fork would need.
fn pte_mapped_large_folio(k: &crate::mm_types::Kernel, pte: u64) -> Option<&'static str> {
    let pte = crate::arch::x86::pgtable::Pte(pte);
    if pte.0 == 0 || !k.pte_present(pte) {
        return None;
    }
    let folio = k.mem.pfn_folio(k.pte_pfn(pte))?;
    (folio.order > 0)
        .then_some("fork of a PTE-mapped THP is not modelled (no per-subpage PageAnonExclusive)")
}

/// A 2.6.34-era swap pte, which `copy_one_pte()` copies.
fn is_copyable_swap_pte(k: &crate::mm_types::Kernel, pte: u64) -> bool {
    k.profile.knobs.pte_layout == crate::profile::PteLayout::V2_6_34
        && crate::arch::x86::swap::v2_6_34::is_swap_pte(crate::arch::x86::pgtable::Pte(pte))
}

/// A pte migration entry of a modern layout (the 2.6.34 and 3.x models
/// never migrate a small page).
fn is_migration_pte(k: &crate::mm_types::Kernel, pte: u64) -> bool {
    use crate::arch::x86::pgtable::Pte;
    use crate::arch::x86::swap::{is_migration_entry, is_swap_pte, pte_to_swp_entry};
    k.profile.knobs.pte_layout == crate::profile::PteLayout::V4_19
        && is_swap_pte(Pte(pte))
        && is_migration_entry(&k.profile.swap_types, pte_to_swp_entry(Pte(pte)))
}

/// `copy_nonpresent_pte()` (v6.18) for a migration entry, under both pte
/// locks: the child gets the entry and counts the page in its rss (a
/// migration entry keeps its rss; the page has no mapping nor reference
/// for it). In a COW mapping a writable or exclusive entry is first made
/// readable in the parent too: the page is shared from now on, so neither
/// process may get it back writable or `PageAnonExclusive` when the
/// migration ends (`remove_migration_pte()` restores both processes'
/// entries, the child's found through the anon_vma fork linked it to).
fn copy_migration_pte(
    k: &crate::mm_types::Kernel,
    child: &crate::mm_types::Task,
    src: &crate::pgtable::EntryRef,
    dst: &crate::pgtable::EntryRef,
    orig: u64,
    cow: bool,
) {
    use crate::arch::x86::pgtable::Pte;
    use crate::arch::x86::swap::{
        is_readable_migration_entry, pfn_swap_entry_to_pfn, pte_swp_mksoft_dirty,
        pte_swp_soft_dirty, pte_to_swp_entry, swp_entry, swp_entry_to_pte, swp_offset,
    };
    explore::mark("fork: copy_nonpresent_pte() copies a migration entry");
    let t = &k.profile.swap_types;
    let entry = pte_to_swp_entry(Pte(orig));
    if let Some(folio) = k.mem.pfn_folio(pfn_swap_entry_to_pfn(entry)) {
        child.mm.add_mm_counter(rss_member(folio.kind.get()), 1);
    }
    let mut pte = Pte(orig);
    if !is_readable_migration_entry(t, entry) && cow {
        // make_readable_migration_entry(swp_offset(entry)): the whole
        // offset, so the young and dirty bits stay.
        pte = swp_entry_to_pte(swp_entry(t.migration_read, swp_offset(entry)));
        if pte_swp_soft_dirty(Pte(orig)) {
            pte = pte_swp_mksoft_dirty(pte);
        }
        src.write(
            "copy_nonpresent_pte: set_pte_at(src_mm) (readable migration entry)",
            pte.0,
        );
    }
    dst.write("copy_nonpresent_pte: set_pte_at(dst_mm)", pte.0);
}

/// `mm_counter()`: the rss counter a page of `kind` counts in.
fn rss_member(kind: crate::mm_types::FolioKind) -> usize {
    use crate::mm_types::{FolioKind, MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES};
    match kind {
        FolioKind::Anon => MM_ANONPAGES,
        FolioKind::File => MM_FILEPAGES,
        _ => MM_SHMEMPAGES,
    }
}

/// `dup_mm()` → `dup_mmap()` (v6.18) for `fork()`: a new mm with a copy of
/// every VMA of the parent's (`vm_area_dup()`, `anon_vma_fork()`), and for
/// VMAs with anonymous pages their page tables (`copy_page_range()`:
/// private writable entries become read-only in both, copy-on-write). Runs
/// with the parent's mmap_lock held for writing. What the model cannot
/// copy ([`dup_mmap_unmodelled`]) is an input error, never a silent
/// partial copy. If `anon_vma_fork()` or a page table allocation fails,
/// the fork fails
/// (`None`, `-ENOMEM`): `dup_mm()` `mmput()`s the child, whose
/// `exit_mmap()` undoes what was copied so far.
pub fn dup_mmap(
    k: &crate::mm_types::Kernel,
    parent: &crate::mm_types::Task,
    name: &str,
) -> Option<crate::mm_types::Task> {
    let _f = explore::enter("dup_mmap");
    let mm = mm_alloc(k)?;
    let child = crate::mm_types::Task {
        name: name.to_string(),
        node: parent.node,
        mm: mm.clone(),
    };
    let mmap = parent.mm.mmap_lock.write("mmap_write_lock");
    let mut child_mmap = mm.mmap_lock.write_nested(
        "mmap_write_lock_nested(mm, SINGLE_DEPTH_NESTING)",
        parent.mm.mmap_lock.id(),
    );
    // Looked at under the parent's mmap_lock: a fault of another thread
    // that was migrating a page has finished.
    if let Some(why) = dup_mmap_unmodelled(k, parent) {
        explore::unsupported(why);
    }
    let mut copied = true;
    for vma in &mmap.vmas {
        let tmp = crate::mmap::vm_area_copy(&mm, vma);
        if !crate::rmap::anon_vma_fork(k, &tmp, vma) {
            // fail_nomem_anon_vma_fork: `tmp` was never linked; it is
            // freed with whatever anon_vma_fork() left on its chain.
            crate::mmap::vm_area_free(&tmp);
            copied = false;
            break;
        }
        // The kernel inserts `tmp` before copying its page tables (so a
        // failed copy is torn down with it), a file VMA on the file's
        // i_mmap under `i_mmap_lock` (`vma_prio_tree_add()`): from here
        // the reverse map reaches the child.
        let file = tmp.vm_file.get().cloned();
        let i_mmap = file.as_ref().map(|f| {
            f.i_mmap_lock
                .lock("dup_mmap: spin_lock(&file->f_mapping->i_mmap_lock)")
        });
        child_mmap.vmas.push(tmp);
        if let Some(l) = i_mmap {
            l.unlock("dup_mmap: spin_unlock(&file->f_mapping->i_mmap_lock)");
        }
        if vma.anon_vma.get().is_some() && !copy_page_range(k, &child, parent, vma) {
            copied = false;
            break;
        }
    }
    child_mmap.unlock("mmap_write_unlock");
    mmap.unlock("mmap_write_unlock");
    // The child's VMAs are on the reverse map (the file's i_mmap, the
    // anon_vmas) before its page tables are pinned: Xen's window.
    crate::arch::x86::xen::mmu_pv::arch_dup_mmap(k, &mm);
    if !copied {
        explore::mark("dup_mmap: -ENOMEM (anon_vma_fork or copy_page_range)");
        mmput(k, &mm);
        return None;
    }
    k.ghost.fork(parent.mm.id, mm.id);
    Some(child)
}

/// `copy_page_range()` → `copy_present_pte()` (v6.18, small pages): each
/// present entry is duplicated; in a COW mapping both copies are
/// write-protected and the child's is old. The page gains a mapping and a
/// reference; the child's rss counts it. Returns false if a page table of
/// the child cannot be allocated (`-ENOMEM`); the child's table comes
/// first, as `copy_pte_range()` allocates it before copying entries.
fn copy_page_range(
    k: &crate::mm_types::Kernel,
    child: &crate::mm_types::Task,
    parent: &crate::mm_types::Task,
    src: &crate::mm_types::Vma,
) -> bool {
    use crate::arch::x86::pgtable::{pte_mkold, pte_wrprotect, Pte};
    use crate::mm_types::{vm_flags, FolioKind, PAGE_SIZE};
    let _f = explore::enter("copy_page_range");
    let cow = src.flags() & (vm_flags::VM_SHARED | vm_flags::VM_MAYWRITE) == vm_flags::VM_MAYWRITE;
    let mut addr = src.start();
    while addr < src.end() {
        let slot = crate::pgtable::peek_pmd(k, &parent.mm, addr)
            .and_then(|pmd| crate::pgtable::pte_offset(k, pmd.peek(), addr));
        let Some(locks) = lock_pte_pair(k, child, parent, addr, slot.is_some()) else {
            return false;
        };
        let v = slot.as_ref().map_or(0, |s| {
            s.read_locked("copy_page_range: *src entry under ptl")
        });
        if v != 0 && is_copyable_swap_pte(k, v) {
            // copy_one_pte() (v2.6.34) for a swap pte: one more reference
            // to the slot (`swap_duplicate()`), counted in the child's rss.
            let Some(new) = crate::mremap::new_pte(k, child, addr) else {
                return false;
            };
            let offset = crate::arch::x86::swap::v2_6_34::swp_offset(Pte(v));
            crate::swapfile::swap_duplicate(k, offset);
            child.mm.add_mm_counter(crate::mm_types::MM_SWAPENTS, 1);
            new.write("copy_one_pte: set_pte_at (swap entry)", v);
        } else if v != 0 && k.pte_present(Pte(v)) {
            if let Some(why) = pte_mapped_large_folio(k, v) {
                explore::unsupported(format!("{why}: the parent's pte at {addr:#x}"));
            }
            let Some(new) = crate::mremap::new_pte(k, child, addr) else {
                return false;
            };
            let mut pte = Pte(v);
            if cow {
                pte = pte_wrprotect(pte);
                slot.as_ref()
                    .expect("a present pte")
                    .write("copy_present_pte: ptep_set_wrprotect", pte.0);
            }
            if let Some(folio) = k.mem.pfn_folio(k.pte_pfn(pte)).filter(|f| {
                matches!(
                    f.kind.get(),
                    FolioKind::Anon | FolioKind::Shmem | FolioKind::File
                ) && !k.pte_special(pte)
            }) {
                folio.mapcount.add_return(
                    "copy_present_pte: page_dup_file_rmap / page_try_dup_anon_rmap",
                    1,
                );
                // page_try_dup_anon_rmap(): the page is now shared, and a
                // write in either process copies it (no DMA pins in the
                // model, so the dup never fails).
                folio.anon_exclusive.set(false);
                crate::memory::get_folio(&folio);
                child.mm.add_mm_counter(rss_member(folio.kind.get()), 1);
            }
            new.write("copy_present_pte: set_pte_at", pte_mkold(pte).0);
        } else if v != 0 && is_migration_pte(k, v) {
            let Some(new) = crate::mremap::new_pte(k, child, addr) else {
                return false;
            };
            let src = slot.as_ref().expect("a migration entry");
            copy_migration_pte(k, child, src, &new, v, cow);
        } else if v != 0 {
            // An entry that became non-present after dup_mmap_unmodelled()
            // looked (through another process's rmap walk) and that the
            // model cannot copy: refused here rather than dropped from
            // the child.
            explore::unsupported(format!(
                "copy_nonpresent_pte() is not modelled: the parent's pte at {addr:#x} became {} \
                 during the fork",
                k.describe_pte(v)
            ));
        }
        unlock_pte_pair(locks);
        addr += PAGE_SIZE;
    }
    true
}

/// The locks `copy_pte_range()` holds while it copies a pte: the child's
/// pte lock (`pte_alloc_map_lock()`, allocating the child's tables), then
/// the parent's, nested (`spin_lock_nested(src_ptl)`). `None` if a table
/// cannot be allocated; no locks if the parent has no pte table there.
fn lock_pte_pair(
    k: &crate::mm_types::Kernel,
    child: &crate::mm_types::Task,
    parent: &crate::mm_types::Task,
    addr: u64,
    present: bool,
) -> Option<Vec<std::rc::Rc<explore::sync::SpinLock<()>>>> {
    use crate::pgtable::{peek_pmd, pte_lockptr, PtlSource};
    if !present {
        return Some(Vec::new());
    }
    crate::mremap::new_pte(k, child, addr)?;
    let lock_of = |mm: &MmStruct| {
        let pmd = peek_pmd(k, mm, addr).map_or(0, |p| p.peek());
        match pte_lockptr(k, mm, pmd) {
            PtlSource::Table(l) => l,
            _ => mm.page_table_lock.clone(),
        }
    };
    let (dst, src) = (lock_of(&child.mm), lock_of(&parent.mm));
    dst.lock_raw("copy_pte_range: pte_alloc_map_lock(dst_mm)");
    src.lock_nest_raw("copy_pte_range: spin_lock_nested(src_ptl)", dst.id());
    Some(vec![src, dst])
}

fn unlock_pte_pair(locks: Vec<std::rc::Rc<explore::sync::SpinLock<()>>>) {
    for l in locks {
        l.unlock_raw("copy_pte_range: spin_unlock(ptl)");
    }
}
