//! `check_mm()`: the accounting checks the kernel runs when an mm is freed.
//!
//! Models kernel/fork.c (v6.1): `"BUG: Bad rss-counter state mm:%p
//! type:%s val:%ld"` for every non-zero counter, then `"BUG: non-zero
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

/// `dup_mm()` → `dup_mmap()` (v6.18) for `fork()`: a new mm with a copy of
/// every VMA of the parent's (`vm_area_dup()`, `anon_vma_fork()`), and for
/// VMAs with anonymous pages their page tables (`copy_page_range()`:
/// private writable entries become read-only in both, copy-on-write). Runs
/// with the parent's mmap_lock held for writing.
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
    // The kernel also holds the new mm's lock (mmap_write_lock_nested); the
    // model fills its VMA list after, as nobody can see the mm before.
    let mmap = parent.mm.mmap_lock.write("mmap_write_lock");
    let mut vmas = Vec::new();
    for vma in &mmap.vmas {
        let tmp = crate::mmap::vm_area_copy(&mm, vma);
        crate::rmap::anon_vma_fork(k, &tmp, vma);
        if vma.anon_vma.get().is_some() {
            copy_page_range(k, &child, parent, vma);
        }
        vmas.push(tmp);
    }
    mmap.unlock("mmap_write_unlock");
    let mut child_mmap = mm.mmap_lock.write("mmap_write_lock");
    child_mmap.vmas = vmas;
    child_mmap.unlock("mmap_write_unlock");
    k.ghost.fork(parent.mm.id, mm.id);
    Some(child)
}

/// `copy_page_range()` → `copy_present_pte()` (v6.18, small pages): each
/// present entry is duplicated; in a COW mapping both copies are
/// write-protected and the child's is old. The page gains a mapping and a
/// reference; the child's rss counts it.
fn copy_page_range(
    k: &crate::mm_types::Kernel,
    child: &crate::mm_types::Task,
    parent: &crate::mm_types::Task,
    src: &crate::mm_types::Vma,
) {
    use crate::arch::x86::pgtable::{pte_mkold, pte_wrprotect, Pte};
    use crate::mm_types::{vm_flags, FolioKind, MM_ANONPAGES, MM_SHMEMPAGES, PAGE_SIZE};
    let _f = explore::enter("copy_page_range");
    let cow = src.flags() & (vm_flags::VM_SHARED | vm_flags::VM_MAYWRITE) == vm_flags::VM_MAYWRITE;
    let mut addr = src.start();
    while addr < src.end() {
        let slot = crate::pgtable::peek_pmd(k, &parent.mm, addr)
            .and_then(|pmd| crate::pgtable::pte_offset(k, pmd.peek(), addr));
        let v = slot.as_ref().map_or(0, |s| {
            s.read_locked("copy_page_range: *src entry under ptl")
        });
        if v != 0 && k.pte_present(Pte(v)) {
            let mut pte = Pte(v);
            if cow {
                pte = pte_wrprotect(pte);
                slot.as_ref()
                    .expect("a present pte")
                    .write("copy_present_pte: ptep_set_wrprotect", pte.0);
            }
            if let Some(folio) = k.mem.pfn_folio(k.pte_pfn(pte)).filter(|f| {
                matches!(f.kind.get(), FolioKind::Anon | FolioKind::Shmem) && !k.pte_special(pte)
            }) {
                folio.mapcount.add_return(
                    "copy_present_pte: page_dup_file_rmap / page_try_dup_anon_rmap",
                    1,
                );
                crate::memory::get_folio(&folio);
                let member = if folio.kind.get() == FolioKind::Anon {
                    MM_ANONPAGES
                } else {
                    MM_SHMEMPAGES
                };
                child.mm.add_mm_counter(member, 1);
            }
            let Some(new) = crate::mremap::new_pte(k, child, addr) else {
                explore::unsupported("page-table allocation failure in copy_page_range");
            };
            new.write("copy_present_pte: set_pte_at", pte_mkold(pte).0);
        }
        addr += PAGE_SIZE;
    }
}
