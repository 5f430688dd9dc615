//! Kernel profiles: named sets of knob values. Profiles are data, never
//! `cfg`: any knob can be overridden at run time (`--knob name=value`).
//!
//! Each knob documents the commit that changed the behaviour it selects.

use crate::arch::x86::pgtable_v3::NumaBit;
use crate::arch::x86::swap::SwapTypes;

/// The x86-64 page-table entry layout of the kernel, and with it the era of
/// the pte-level code paths (fault, mprotect, zap) the model runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PteLayout {
    /// v3.8..v3.15: `_PAGE_NUMA` shares bit 8 with `_PAGE_PROTNONE`
    /// (arch/x86/pgtable_v3.rs); 3.12-era fault/mprotect/zap paths.
    V3_12,
    /// c46a7c817e66 (v3.16): `_PAGE_NUMA` moves to bit 9, with the same
    /// 3.12-era code paths (a what-if for seed 000: the layout change alone)
    /// but what that commit changed with the layout: `pte_special()` needs
    /// `_PAGE_PRESENT` (bit 9 is `_PAGE_SPECIAL` too), `vm_normal_page()`
    /// lets `pte_numa()` entries through and tests `is_zero_pfn()` late.
    V3_16,
    /// v4.19+ (6b28baca9b1f adds the L1TF pfn inversion; NUMA hinting uses
    /// PROT_NONE entries since v4.0): arch/x86/pgtable.rs, 6.1-era paths.
    V4_19,
    /// v2.6.34: no `_PAGE_NUMA`, no L1TF inversion; a swap entry keeps its
    /// type in bits 1..5 and its offset from bit 9 (`__swp_entry()`,
    /// arch/x86/include/asm/pgtable_64.h), so it is never present nor
    /// PROTNONE (bit 8) nor a nonlinear file pte (bit 6). The 6.1-era pte
    /// paths run, with swap-out and swap-in (the only era with swap).
    V2_6_34,
}

impl PteLayout {
    /// `_PAGE_NUMA`'s place, for the 3.x layouts.
    pub fn numa_bit(self) -> Option<NumaBit> {
        match self {
            PteLayout::V3_12 => Some(NumaBit::AliasProtNone),
            PteLayout::V3_16 => Some(NumaBit::Softw1),
            PteLayout::V4_19 | PteLayout::V2_6_34 => None,
        }
    }
}

/// What the kernel runs on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Platform {
    /// Bare metal or an HVM guest: native `pv_mmu_ops`.
    Native,
    /// A 64-bit Xen PV guest: present entries hold machine frames.
    XenPv,
}

/// How the kernel prints pointers and `check_mm()` counters.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LogStyle {
    /// v3.12: raw `%p` pointers; `Bad rss-counter state mm:%p idx:%d val:%ld`.
    V3_12,
    /// v6.1: hashed `%p` (ad67b74d2469, v4.15); `type:%s` counter names.
    V6_1,
}

/// How `change_pmd_range()` decides whether a pmd needs `pmd_clear_bad()`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PmdCheck {
    /// v5.5 and older: `!is_swap_pmd(*pmd) && !pmd_trans_huge(*pmd) &&
    /// !pmd_devmap(*pmd) && pmd_none_or_clear_bad(pmd)`, four reads.
    Legacy,
    /// 8b272b3cbbb5 (v5.6): none/huge/bad tested on one snapshot by
    /// `pmd_none_or_clear_bad_unless_trans_huge()`, but is_swap and devmap
    /// still read `*pmd` separately (v5.6..v6.4, 6.1.y up to 6.1.159).
    UnlessTransHuge,
    /// 91750c8a4be4 (6.1.160, stable backport of 670ddd8cdcbd): one `_pmd`
    /// snapshot for every check, `pmd_old` passed to change_pte_range and
    /// re-checked after taking the PTL, `pmd_trans_unstable()` removed.
    SingleSnapshotBackport,
    /// 670ddd8cdcbd + 0d940a9b270b (v6.5): `pmd_none(*pmd)` skip, one
    /// `pmdp_get_lockless()` snapshot for the huge decision, and
    /// `pte_offset_map_lock()` that may fail (`-EAGAIN`, `goto again`).
    Upstream65,
}

/// How `pte_offset_map_lock()` derives and takes the PTE lock.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PteOffsetMapLock {
    /// Before 0d940a9b270b (v6.5): the lock pointer comes from
    /// `pmd_page(*pmd)` unconditionally; it never fails.
    Pre65,
    /// 0d940a9b270b (v6.5) `__pte_offset_map_lock()`: snapshot the pmd, fail
    /// for none/migration/huge/devmap, `pmd_clear_bad()` a bad one, lock the
    /// snapshot's table and retry unless `pmd_same()` under the lock.
    Post65,
}

/// How `change_huge_pmd()` rewrites a huge pmd.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HugeUpdateStyle {
    /// Before ced108037c2a (v4.11): `pmdp_huge_get_and_clear()`, leaving the
    /// pmd transiently none.
    ClearThenSet,
    /// ced108037c2a (v4.11): `pmdp_invalidate()`, the pmd stays huge.
    Invalidate,
}

/// How a NUMA hinting fault migrates a misplaced THP.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NumaThpMigration {
    /// Up to v5.13: `migrate_misplaced_transhuge_page()`, an ad hoc path
    /// that copies under the page lock and replaces the PROT_NONE pmd by
    /// the new huge pmd in one `set_pmd_at()` (no migration entry).
    MisplacedTranshuge,
    /// c5fc5c3ae0c8 "mm: thp: refactor NUMA fault handling" (v5.14):
    /// `migrate_misplaced_page()` and the generic THP migration with a PMD
    /// migration entry.
    Generic,
}

/// Which code merges and adjusts VMAs (mprotect, mmap).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum VmaMergeCode {
    /// v2.6.34 mm/mmap.c: `vma_merge()` cases 1-8 call `vma_adjust()`,
    /// which picks an importer for the anon_vma (knob
    /// `vma_adjust_exporter`) and ends a removal with `anon_vma_merge()`.
    V2_6_34,
    /// v6.18 mm/vma.c: `vma_merge_existing_range()`/`vma_merge_new_range()`.
    V6_18,
}

/// Which anon_vma `__page_set_anon_rmap()` gives a page mapped for the
/// first time.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SetAnonRmap {
    /// v2.6.34-rc3: always `vma->anon_vma`, the newest one; a page swapped
    /// in by a child lands in the child's anon_vma, which the parent's VMA
    /// is not linked to.
    VmaAnonVma,
    /// ea90002b0fa7 (v2.6.34-rc4): the last entry of `vma->anon_vma_chain`,
    /// the oldest anon_vma (with 646d87b481da's chain order).
    Oldest,
    /// e8a03feb54ca (v2.6.34-rc5): `exclusive` pages (page_add_new_anon_rmap)
    /// go to `vma->anon_vma`, others to the oldest.
    Exclusive,
    /// 288468c334e9 (v2.6.36): exclusive pages to `vma->anon_vma`, others to
    /// `anon_vma->root`; a page that is already PageAnon keeps its mapping.
    Root,
}

/// How a fault on a regular file's VMA gets its page (seed 003).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NonlinearFault {
    /// v2.6.22: linear faults run `do_no_page()` → `->nopage`
    /// (`filemap_nopage()`); a nonlinear (`pte_file`) fault runs
    /// `do_file_page()` → `->populate` (`filemap_populate()` →
    /// `install_page()`), which `remap_file_pages()` calls too.
    Populate,
    /// 54cb8821de07 "mm: merge populate and nopage into fault (fixes
    /// nonlinear)" with d0217ac04ca6 "mm: fault feedback #1" (v2.6.23):
    /// linear and nonlinear faults both run `__do_fault()` → `->fault`
    /// (`filemap_fault()`); `remap_file_pages()` installs file ptes
    /// (`populate_range()`) and faults them in.
    Fault,
}

/// How Xen PV pins and unpins an mm's page tables (seed 004).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum XenPin {
    /// v2.6.23 `xen_pgd_pin()`: every page-table page made read-only in
    /// one multicall batch, then the whole tree pinned (`MMUEXT_PIN_L4`);
    /// `xen_pgd_unpin()`: unpin the tree, then every page read-write —
    /// under `mm->page_table_lock` only.
    WholeTreeThenPin,
    /// 74260714c56d "xen: lock pte pages while pinning/unpinning"
    /// (v2.6.24): each PTE page is made read-only and pinned on its own
    /// (`MMUEXT_PIN_L1_TABLE`) with its split pte lock held until the
    /// batch is issued; on unpin each PTE page is unpinned and made
    /// writable under its lock.
    PerPtePageUnderPtl,
}

/// How reclaim clears a pte's accessed bit (`ptep_clear_flush_young()`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum YoungClear {
    /// Every mainline i386 kernel: a locked `test_and_clear_bit()` on the
    /// pte (`clear_bit()` before 10a8d6ae4b31): a direct store into the
    /// page-table page.
    DirectStore,
    /// Hypothetical (Jeremy Fitzhardinge's option 1 in the seed thread):
    /// through `set_pte_at()`, a hypercall, which Xen performs whatever
    /// the page's state.
    Hypercall,
}

/// Every behaviour knob of the model.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Knobs {
    pub pmd_check: PmdCheck,
    pub pte_offset_map_lock: PteOffsetMapLock,
    /// `pmd_trans_unstable()` at the top of `change_pte_range()`: present up
    /// to v6.4; removed by 670ddd8cdcbd and by its 6.1.160 backport
    /// 91750c8a4be4 (whose missing check crashed, syzkaller Jan 2026).
    pub change_pte_range_unstable_check: bool,
    /// THP migration (CONFIG_ARCH_ENABLE_THP_MIGRATION, 84c3fc4e9c56, v4.14):
    /// when off, a misplaced THP is not migrated as a whole.
    pub thp_migration: bool,
    pub huge_update_style: HugeUpdateStyle,
    pub numa_thp_migration: NumaThpMigration,
    /// savedwrite: NUMA hinting keeps the write bit on the PROT_NONE pte or
    /// pmd (`pte_mk_savedwrite`/`pmd_mk_savedwrite`, which on x86 are the
    /// plain RW bit; 288bc54949fc, v4.11) and the hinting fault restores it
    /// (`was_writable`). Replaced in v6.2 by 6a56ccbcf6c6 "mm/autonuma: use
    /// can_change_(pte|pmd)_writable() to replace savedwrite": the hint
    /// entry is read-only and the fault decides writability afresh.
    pub numa_savedwrite: bool,
    /// `__split_huge_pmd_locked()` calls `pmdp_invalidate()` on a pmd
    /// migration entry too (a non-present pmd; on x86 the transient value
    /// mangles the swap offset). 3a5a8d343e1c "mm: fix race between
    /// __split_huge_pmd_locked() and GUP-fast" (v6.10, in 6.1.y by
    /// 6.1.158) reads a migration entry and never writes it before
    /// `pmd_populate()`.
    pub split_invalidates_migration_entry: bool,
    /// USE_SPLIT_PTE_PTLOCKS / USE_SPLIT_PMD_PTLOCKS (NR_CPUS >=
    /// SPLIT_PTLOCK_CPUS): per-table locks instead of `mm->page_table_lock`.
    pub split_ptlocks: bool,
    /// ALLOC_SPLIT_PTLOCKS (spinlock larger than a word, e.g. lockdep or
    /// spinlock debugging builds such as syzkaller's): `page->ptl` is a
    /// pointer, NULL for pages that are not page tables.
    pub alloc_split_ptlocks: bool,
    /// Fault injection, as CONFIG_FAIL_PAGE_ALLOC: every page allocation
    /// may fail (explored as a choice). Off in every profile; the error
    /// paths (VM_FAULT_OOM, failed migration) run when it is on.
    pub fail_page_alloc: bool,
    pub pte_layout: PteLayout,
    pub platform: Platform,
    /// 1667918b6483 "mm: numa: clear numa hinting information on mprotect"
    /// (v3.13-rc, 3.12.7 as 3d792d616ba4): change_pte_range() turns a
    /// `pte_numa()` entry back with `pte_mknonnuma()` before `pte_modify()`.
    pub mprotect_clears_numa: bool,
    /// 29c7787075c9 "mm: use paravirt friendly ops for NUMA hinting ptes"
    /// (v3.15, 3.14.5 as 402e194dfc5b): `pte_mknuma()`/`pte_mknonnuma()` use
    /// `pte_val()`/`__pte()` instead of native flag operations.
    pub numa_helpers_pv_ops: bool,
    /// a9c8e4beeeb6 "xen: properly account for _PAGE_NUMA during xen pte
    /// translations" (v3.14-rc, later reverted): Xen translates frames of
    /// PROTNONE/NUMA entries too, leaving machine frames in non-present ptes.
    pub xen_translate_protnone: bool,
    /// 879bca0a2c4f "mm/vma: fix incorrectly disallowed anonymous VMA
    /// merges" (v6.16): a faulted range may merge into an unfaulted
    /// neighbour (before: only unfaulted into faulted).
    pub anon_merge_faulted_unfaulted: bool,
    /// "mm/mprotect: allow unfaulted VMAs to be unaccounted on mprotect()"
    /// (v6.7): an anonymous VMA with no anon_vma loses VM_ACCOUNT when made
    /// read-only, so it can merge with a read-only neighbour.
    pub unaccount_unfaulted_on_mprotect: bool,
    /// ca3d76b0aa80 "mm: add merging after mremap resize" (v6.1): an
    /// in-place mremap expansion merges with a compatible next VMA.
    pub mremap_expand_merge: bool,
    /// "mm/mremap: permit mremap() move of multiple VMAs" (d23cb648e365,
    /// v6.17): an MREMAP_FIXED move of unchanged size may span VMAs and gaps.
    pub mremap_multi_vma_move: bool,
    /// 646d87b481da "anon_vma: clone the anon_vma chain in the right
    /// order" (v2.6.34-rc4): `anon_vma_clone()` walks the source chain in
    /// reverse, so that with `anon_vma_chain_link()` adding at the head the
    /// copy keeps the source's order (the oldest anon_vma last). Off: the
    /// v2.6.34-rc3 forward walk, which reverses the order at each clone.
    pub anon_vma_clone_reverse: bool,
    pub vma_merge: VmaMergeCode,
    /// d0e9fe1758f2 "Simplify and comment on anon_vma re-use for
    /// anon_vma_prepare()" (v2.6.34-rc4): `find_mergeable_anon_vma()` reuses
    /// a neighbour's anon_vma only if its chain is singular. Off: rc3 reuses
    /// any mergeable neighbour's, linking one avc where the neighbour has
    /// several.
    pub reuse_anon_vma_singleton: bool,
    /// 287d97ac0321 "vma_adjust: fix the copying of anon_vma chains"
    /// (v2.6.34-rc4): the importer clones the chain of the exporter (the
    /// VMA that has the anon_vma). Off: rc3 clones from `vma`, which may be
    /// the importer itself.
    pub vma_adjust_exporter: bool,
    pub set_anon_rmap: SetAnonRmap,
    /// 4946d54cb55e "rmap: fix anon_vma_fork() memory leak" (v2.6.34-rc4):
    /// `anon_vma_fork()` unlinks the avcs it cloned when a later allocation
    /// fails. Off: they stay on the parent's anon_vmas, pointing to the VMA
    /// dup_mmap() then frees.
    pub anon_vma_fork_unlink_on_error: bool,
    /// ad8c2ee801a "rmap: add exclusive page to private anon_vma on swapin"
    /// (v2.6.36-rc1): a page a write fault swaps in and may reuse
    /// (`reuse_swap_page()`) is mapped as exclusive
    /// (`do_page_add_anon_rmap(..., exclusive)`), into the VMA's own
    /// anon_vma. Off: every swap-in is `page_add_anon_rmap()`.
    pub swapin_exclusive_rmap: bool,
    /// 5c341ee1dfc8 "mm: track the root (oldest) anon_vma" and 76545066c852
    /// "mm: extend KSM refcounts to the anon_vma root" (v2.6.36-rc1): a
    /// forked anon_vma records its root and holds a reference on it. Off
    /// (2.6.34): an anon_vma is freed as soon as its list is empty.
    pub anon_vma_root: bool,
    /// Fault injection, as CONFIG_FAILSLAB: every `anon_vma_alloc()` and
    /// `anon_vma_chain_alloc()` may fail (an explored choice). Off in every
    /// profile; a scenario's `machine failslab` turns it on.
    pub fail_slab_alloc: bool,
    /// Linus Torvalds' debug patch from the seed 002 thread (never merged):
    /// `verify_anon_page()` in zap_pte_range WARNs "page->mapping does not
    /// exist in vma chain" for an anonymous page whose anon_vma is not on
    /// the VMA's chain.
    pub verify_anon_page: bool,
    /// d00806b18315 "mm: fix fault vs invalidate race for linear mappings"
    /// (v2.6.23-rc1): the fault path finds the page-cache page with
    /// `find_lock_page()`, re-checks `i_size` under the page lock and keeps
    /// the page locked until its pte is installed. Off: `find_get_page()`,
    /// a reference only.
    pub fault_locks_page: bool,
    /// The `mapping->truncate_count` seqcount in the fault path (v2.6.22
    /// `do_no_page()`: read before `->nopage`, compared under the PTL,
    /// retry if it moved). Removed from the fault path by d00806b18315; the
    /// increment in `unmap_mapping_range()` stays until 97a894136f29 (3.0).
    pub truncate_count: bool,
    /// d00806b18315: `invalidate_inode_pages2_range()` unmaps a mapped page
    /// once under its page lock and then asserts `!page_mapped()`. Off: the
    /// v2.6.22 `while (page_mapped(page))` loop of unmaps.
    pub invalidate_unmap_under_lock: bool,
    /// d00806b18315: `truncate_inode_pages_range()` unmaps a page that is
    /// still mapped once it holds the page lock (both passes).
    pub truncate_unmaps_locked_page: bool,
    /// d00806b18315: `vmtruncate()`/`vmtruncate_range()` call
    /// `unmap_mapping_range()` again after `truncate_inode_pages()`, to zap
    /// private COW copies a racing fault made after the first unmap.
    pub truncate_second_unmap: bool,
    /// 45426812d6b6 "mm: debug check for the fault vs invalidate race"
    /// (v2.6.23-rc1): `BUG_ON(page_mapped(page))` in
    /// `__remove_from_page_cache()`; in current kernels
    /// `filemap_unaccount_folio()`'s "BUG: Bad page cache in process".
    pub remove_mapped_check: bool,
    pub nonlinear_fault: NonlinearFault,
    pub xen_pin: XenPin,
    pub young_clear: YoungClear,
    /// Peter Xu's "mm: don't skip swap entry even if zap_details
    /// specified" (v5.18): a truncating `unmap_mapping_range()` (`even_cows`)
    /// zaps the swap entries of private COW copies too. Before it,
    /// zap_pte_range skipped every non-present entry when given details,
    /// so a swapped-out COW copy survived truncation and came back past
    /// EOF on the next fault.
    pub zap_cow_swap_entries: bool,
    /// bdb76ef5a4bc "dio: fix cache invalidation after sync writes"
    /// (v2.6.24-rc1): `generic_file_direct_IO()` invalidates the range
    /// again after `->direct_IO`. 65b8291c4000 (v2.6.21) had put that
    /// second invalidation behind `if (retval) goto out`, which a write of
    /// any bytes takes: a page a racing read or fault brought in between
    /// the first invalidation and the write stays cached with the old
    /// block's bytes.
    pub dio_invalidate_after_write: bool,
}

/// A named kernel: knob values plus version facts used in messages.
#[derive(Clone, Debug)]
pub struct Profile {
    pub name: &'static str,
    pub summary: &'static str,
    pub knobs: Knobs,
    /// Swap-type numbering of the version's x86-64 config (migration entry
    /// encoding in raw pmd values).
    pub swap_types: SwapTypes,
    /// Line of `pmd_ERROR()` in mm/pgtable-generic.c (`pmd_clear_bad`).
    pub pmd_clear_bad_line: u32,
    /// Pointer and `check_mm()` formats of the version.
    pub log_style: LogStyle,
}

const V61: Knobs = Knobs {
    zap_cow_swap_entries: true,
    dio_invalidate_after_write: true,
    pmd_check: PmdCheck::UnlessTransHuge,
    pte_offset_map_lock: PteOffsetMapLock::Pre65,
    change_pte_range_unstable_check: true,
    thp_migration: true,
    huge_update_style: HugeUpdateStyle::Invalidate,
    numa_thp_migration: NumaThpMigration::Generic,
    numa_savedwrite: true,
    split_invalidates_migration_entry: false,
    split_ptlocks: true,
    alloc_split_ptlocks: true,
    fail_page_alloc: false,
    pte_layout: PteLayout::V4_19,
    platform: Platform::Native,
    mprotect_clears_numa: false,
    numa_helpers_pv_ops: true,
    xen_translate_protnone: false,
    anon_merge_faulted_unfaulted: false,
    unaccount_unfaulted_on_mprotect: false,
    mremap_expand_merge: true,
    mremap_multi_vma_move: false,
    anon_vma_clone_reverse: true,
    vma_merge: VmaMergeCode::V6_18,
    reuse_anon_vma_singleton: true,
    vma_adjust_exporter: true,
    set_anon_rmap: SetAnonRmap::Root,
    anon_vma_fork_unlink_on_error: true,
    swapin_exclusive_rmap: true,
    anon_vma_root: true,
    fail_slab_alloc: false,
    verify_anon_page: false,
    fault_locks_page: true,
    truncate_count: false,
    invalidate_unmap_under_lock: true,
    truncate_unmaps_locked_page: true,
    truncate_second_unmap: true,
    remove_mapped_check: true,
    nonlinear_fault: NonlinearFault::Fault,
    xen_pin: XenPin::PerPtePageUnderPtl,
    young_clear: YoungClear::DirectStore,
};

/// v2.6.23-rc9 as a Xen PV guest (seed 004): Xen pv-ops of 3b827c1b3aad
/// (v2.6.23-rc1) with split pte locks on (`SPLIT_PTLOCK_CPUS` 4), the
/// whole-tree pin, and reclaim's direct store of the accessed bit.
const V2_6_23_RC9_XEN: Knobs = Knobs {
    platform: Platform::XenPv,
    split_ptlocks: true,
    xen_pin: XenPin::WholeTreeThenPin,
    ..V2_6_23
};

/// v2.6.34-rc3 as Borislav Petkov hibernated it: the anon_vma_chain design
/// of 5beb49305251 (v2.6.34-rc1) with none of the four fixes; 2.6.34-era
/// pte layout with swap; no THP (2.6.38), no NUMA balancing.
const V2_6_34_RC3: Knobs = Knobs {
    numa_savedwrite: false,
    pte_layout: PteLayout::V2_6_34,
    mprotect_clears_numa: false,
    anon_vma_clone_reverse: false,
    vma_merge: VmaMergeCode::V2_6_34,
    reuse_anon_vma_singleton: false,
    vma_adjust_exporter: false,
    set_anon_rmap: SetAnonRmap::VmaAnonVma,
    anon_vma_fork_unlink_on_error: false,
    swapin_exclusive_rmap: false,
    anon_vma_root: false,
    ..V3_12_7
};

/// v2.6.22 (Nick Piggin's "fault vs truncate/invalidate race fix" series
/// not applied): `do_no_page()` with the `truncate_count` seqcount,
/// `install_page()` for nonlinear mappings, no debug check. The
/// 2.6.34-era pte layout (the x86-64 bits are the same, `_PAGE_FILE` bit 6
/// included) and anon_vma code: 2.6.22's single anon_vma per VMA behaves
/// as a chain of one for the processes seed 003 runs (no fork).
const V2_6_22: Knobs = Knobs {
    dio_invalidate_after_write: false,
    fault_locks_page: false,
    truncate_count: true,
    invalidate_unmap_under_lock: false,
    truncate_unmaps_locked_page: false,
    truncate_second_unmap: false,
    remove_mapped_check: false,
    nonlinear_fault: NonlinearFault::Populate,
    ..V2_6_34_RC4
};

/// v2.6.23: d00806b18315, 54cb8821de07, d0217ac04ca6 and the debug check
/// 45426812d6b6 (every `->fault` returns the page locked).
const V2_6_23: Knobs = Knobs {
    fault_locks_page: true,
    truncate_count: false,
    invalidate_unmap_under_lock: true,
    truncate_unmaps_locked_page: true,
    truncate_second_unmap: true,
    remove_mapped_check: true,
    nonlinear_fault: NonlinearFault::Fault,
    ..V2_6_22
};

/// v2.6.34-rc4: Rik van Riel's 4946d54cb55e and Linus' four patches.
const V2_6_34_RC4: Knobs = Knobs {
    anon_vma_fork_unlink_on_error: true,
    reuse_anon_vma_singleton: true,
    vma_adjust_exporter: true,
    anon_vma_clone_reverse: true,
    set_anon_rmap: SetAnonRmap::Oldest,
    ..V2_6_34_RC3
};

/// v3.12.7 as Steven Noonan ran it, on bare metal. No THP paths (the 3.x
/// model runs with THP off), no THP migration, pmds checked the old way.
const V3_12_7: Knobs = Knobs {
    zap_cow_swap_entries: false,
    pmd_check: PmdCheck::Legacy,
    change_pte_range_unstable_check: false,
    thp_migration: false,
    huge_update_style: HugeUpdateStyle::ClearThenSet,
    numa_thp_migration: NumaThpMigration::MisplacedTranshuge,
    split_invalidates_migration_entry: true,
    alloc_split_ptlocks: false,
    pte_layout: PteLayout::V3_12,
    mprotect_clears_numa: true,
    numa_helpers_pv_ops: false,
    mremap_expand_merge: false,
    ..V61
};

/// The same kernel booted as a Xen PV guest.
const V3_12_7_XEN: Knobs = Knobs {
    platform: Platform::XenPv,
    ..V3_12_7
};

/// A 3.x-era profile (swap numbering and pmd_ERROR line of that era are
/// not used by its code paths: no swap, no THP).
fn v3(name: &'static str, summary: &'static str, knobs: Knobs) -> Profile {
    Profile {
        name,
        summary,
        knobs,
        swap_types: SwapTypes::v5_5(),
        pmd_clear_bad_line: 0,
        log_style: LogStyle::V3_12,
    }
}

/// A 2.6.34-era profile (raw pointers; swap numbering unused: the era's
/// entries are decoded by arch/x86/swap.rs's 2.6.34 helpers).
fn v2_6(name: &'static str, summary: &'static str, knobs: Knobs) -> Profile {
    Profile {
        name,
        summary,
        knobs,
        swap_types: SwapTypes::v5_5(),
        pmd_clear_bad_line: 0,
        log_style: LogStyle::V3_12,
    }
}

/// Every profile mmrace knows.
pub fn profiles() -> Vec<Profile> {
    vec![
        v2_6(
            "linux-2.6.22",
            "seed 003: fault vs truncate/invalidate, before d00806b18315 (truncate_count, install_page)",
            V2_6_22,
        ),
        v2_6(
            "linux-2.6.23",
            "d00806b18315 lock_page over the fault, 54cb8821de07 ->fault for nonlinear, 45426812d6b6",
            V2_6_23,
        ),
        v2_6(
            "linux-2.6.23-rc9-xen",
            "seed 004: Xen PV, split pte locks, xen_pgd_pin/unpin under mm->page_table_lock only",
            V2_6_23_RC9_XEN,
        ),
        v2_6(
            "linux-2.6.23-xen",
            "67dd5a25f4ef (2.6.23 final): split pte locks off for Xen, so rmap takes the pinner's lock",
            Knobs {
                split_ptlocks: false,
                ..V2_6_23_RC9_XEN
            },
        ),
        v2_6(
            "linux-2.6.24-xen",
            "74260714c56d: each pte page pinned/unpinned under its own split pte lock",
            Knobs {
                xen_pin: XenPin::PerPtePageUnderPtl,
                dio_invalidate_after_write: true,
                ..V2_6_23_RC9_XEN
            },
        ),
        v2_6(
            "linux-2.6.34-rc3",
            "seed 002: anon_vma chains (5beb49305251) before any of the four fixes",
            V2_6_34_RC3,
        ),
        v2_6(
            "linux-2.6.34-rc4",
            "4946d54cb55e, d0e9fe1758f2, 287d97ac0321, 646d87b481da, ea90002b0fa7 (oldest anon_vma)",
            V2_6_34_RC4,
        ),
        v2_6(
            "linux-2.6.34-rc5",
            "e8a03feb54ca: exclusive pages go to the newest anon_vma, shared ones to the oldest",
            Knobs {
                set_anon_rmap: SetAnonRmap::Exclusive,
                ..V2_6_34_RC4
            },
        ),
        v2_6(
            "linux-2.6.36",
            "anon_vma->root (5c341ee1dfc8, 288468c334e9): shared pages go to the root; ad8c2ee801a",
            Knobs {
                set_anon_rmap: SetAnonRmap::Root,
                anon_vma_root: true,
                swapin_exclusive_rmap: true,
                ..V2_6_34_RC4
            },
        ),
        v3(
            "linux-3.12.6-xen",
            "Xen PV guest before 1667918b6483 reached stable: mprotect leaves pte_numa alone",
            Knobs {
                mprotect_clears_numa: false,
                ..V3_12_7_XEN
            },
        ),
        v3(
            "linux-3.12.7-xen",
            "seed 000: 1667918b6483 backported; native pte_mknonnuma sets P on a pfn under Xen PV",
            V3_12_7_XEN,
        ),
        v3(
            "linux-3.12.7",
            "the same kernel on bare metal / HVM: no frame translation, no bug",
            V3_12_7,
        ),
        v3(
            "linux-3.13-xen-a9c8e4beeeb6",
            "the rejected fix: Xen translates PROTNONE/NUMA ptes too (machine frames in non-present ptes)",
            Knobs {
                xen_translate_protnone: true,
                ..V3_12_7_XEN
            },
        ),
        v3(
            "linux-3.14.5-xen",
            "fixed: 29c7787075c9 (402e194dfc5b) makes the NUMA pte helpers paravirt friendly",
            Knobs {
                numa_helpers_pv_ops: true,
                ..V3_12_7_XEN
            },
        ),
        Profile {
            name: "linux-5.5",
            summary: "before 8b272b3cbbb5: change_pmd_range reads *pmd four times (Race 0)",
            knobs: Knobs {
                pmd_check: PmdCheck::Legacy,
                numa_thp_migration: NumaThpMigration::MisplacedTranshuge,
                split_invalidates_migration_entry: true,
                mremap_expand_merge: false,
                zap_cow_swap_entries: false,
                ..V61
            },
            swap_types: SwapTypes::v5_5(),
            pmd_clear_bad_line: 33,
            log_style: LogStyle::V6_1,
        },
        Profile {
            name: "linux-6.1.159",
            summary: "6.1.y before the backport: is_swap/devmap/bad on separate reads (Race 1)",
            knobs: V61,
            swap_types: SwapTypes::v6_1(),
            pmd_clear_bad_line: 51,
            log_style: LogStyle::V6_1,
        },
        Profile {
            name: "linux-6.1.160",
            summary: "6.1.y with backport 91750c8a4be4: Race 1 gone, NULL split PTL in pte_offset_map_lock",
            knobs: Knobs {
                pmd_check: PmdCheck::SingleSnapshotBackport,
                change_pte_range_unstable_check: false,
                ..V61
            },
            swap_types: SwapTypes::v6_1(),
            pmd_clear_bad_line: 51,
            log_style: LogStyle::V6_1,
        },
        Profile {
            name: "linux-6.5",
            summary: "mainline with 670ddd8cdcbd and 0d940a9b270b (fixed)",
            knobs: Knobs {
                pmd_check: PmdCheck::Upstream65,
                pte_offset_map_lock: PteOffsetMapLock::Post65,
                change_pte_range_unstable_check: false,
                numa_savedwrite: false,
                split_invalidates_migration_entry: true,
                ..V61
            },
            swap_types: SwapTypes::v6_1(),
            pmd_clear_bad_line: 51,
            log_style: LogStyle::V6_1,
        },
        Profile {
            name: "linux-6.18",
            summary: "current mainline: 6.5's pmd checks, 6.7 mprotect unaccounting, 6.16 anon merges",
            knobs: Knobs {
                pmd_check: PmdCheck::Upstream65,
                pte_offset_map_lock: PteOffsetMapLock::Post65,
                change_pte_range_unstable_check: false,
                numa_savedwrite: false,
                anon_merge_faulted_unfaulted: true,
                unaccount_unfaulted_on_mprotect: true,
                mremap_multi_vma_move: true,
                ..V61
            },
            swap_types: SwapTypes::v6_1(),
            pmd_clear_bad_line: 51,
            log_style: LogStyle::V6_1,
        },
    ]
}

/// Looks a profile up by name.
pub fn profile(name: &str) -> Result<Profile, String> {
    profiles()
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| {
            let names: Vec<&str> = profiles().iter().map(|p| p.name).collect();
            format!(
                "unknown profile '{name}'; known profiles: {}",
                names.join(", ")
            )
        })
}

/// A knob as the command line sees it.
pub struct KnobDef {
    pub name: &'static str,
    pub doc: &'static str,
    pub values: &'static [&'static str],
    get: fn(&Knobs) -> &'static str,
    set: fn(&mut Knobs, &str) -> bool,
}

impl KnobDef {
    pub fn get(&self, k: &Knobs) -> &'static str {
        (self.get)(k)
    }
}

fn onoff(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

fn parse_onoff(v: &str) -> Option<bool> {
    match v {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    }
}

/// A knob over a bool field, spelled `on`/`off`.
macro_rules! bool_knob {
    ($name:literal, $field:ident, $doc:expr) => {
        KnobDef {
            name: $name,
            doc: $doc,
            values: &["on", "off"],
            get: |k| onoff(k.$field),
            set: |k: &mut Knobs, v: &str| parse_onoff(v).map(|b| k.$field = b).is_some(),
        }
    };
}

/// A knob over an enum field: each value spelling names one variant.
macro_rules! enum_knob {
    ($name:literal, $field:ident, $doc:expr, { $($value:literal => $variant:path),+ $(,)? }) => {
        KnobDef {
            name: $name,
            doc: $doc,
            values: &[$($value),+],
            get: |k| match k.$field {
                $($variant => $value,)+
            },
            set: |k: &mut Knobs, v: &str| {
                k.$field = match v {
                    $($value => $variant,)+
                    _ => return false,
                };
                true
            },
        }
    };
}

/// The knob table: names, allowed values, and the commits behind them.
pub static KNOBS: &[KnobDef] = &[
    enum_knob!(
        "pmd_check",
        pmd_check,
        "change_pmd_range pmd validation: legacy (<=5.5), unless_trans_huge (8b272b3cbbb5, 5.6), \
         single_snapshot_backport (91750c8a4be4, 6.1.160), upstream65 (670ddd8cdcbd, 6.5)",
        {
            "legacy" => PmdCheck::Legacy,
            "unless_trans_huge" => PmdCheck::UnlessTransHuge,
            "single_snapshot_backport" => PmdCheck::SingleSnapshotBackport,
            "upstream65" => PmdCheck::Upstream65,
        }
    ),
    enum_knob!(
        "pte_offset_map_lock",
        pte_offset_map_lock,
        "pre65: lock derived from *pmd, never fails; post65 (0d940a9b270b): snapshot, may fail, \
         pmd_same retry",
        { "pre65" => PteOffsetMapLock::Pre65, "post65" => PteOffsetMapLock::Post65 }
    ),
    bool_knob!(
        "change_pte_range_unstable_check",
        change_pte_range_unstable_check,
        "pmd_trans_unstable() at the top of change_pte_range (removed by 670ddd8cdcbd / 91750c8a4be4)"
    ),
    bool_knob!(
        "thp_migration",
        thp_migration,
        "CONFIG_ARCH_ENABLE_THP_MIGRATION (84c3fc4e9c56, 4.14): migrate a THP whole via a pmd \
         migration entry"
    ),
    enum_knob!(
        "huge_update_style",
        huge_update_style,
        "change_huge_pmd: clear_then_set (before ced108037c2a, 4.11) or invalidate (pmdp_invalidate)",
        { "clear_then_set" => HugeUpdateStyle::ClearThenSet, "invalidate" => HugeUpdateStyle::Invalidate }
    ),
    enum_knob!(
        "numa_thp_migration",
        numa_thp_migration,
        "NUMA hinting fault on a THP: misplaced_transhuge (<=5.13, no migration entry) or generic \
         (c5fc5c3ae0c8, 5.14: migrate_misplaced_page with a PMD migration entry)",
        {
            "misplaced_transhuge" => NumaThpMigration::MisplacedTranshuge,
            "generic" => NumaThpMigration::Generic,
        }
    ),
    bool_knob!(
        "numa_savedwrite",
        numa_savedwrite,
        "NUMA hint entries keep RW (savedwrite, 288bc54949fc) and the fault restores it; off: \
         6a56ccbcf6c6 (6.2) clears RW and the fault uses can_change_{pte,pmd}_writable()"
    ),
    bool_knob!(
        "split_invalidates_migration_entry",
        split_invalidates_migration_entry,
        "__split_huge_pmd_locked invalidates a pmd migration entry too (off: 3a5a8d343e1c, 6.10, \
         6.1.158: a migration entry is only read)"
    ),
    bool_knob!(
        "split_ptlocks",
        split_ptlocks,
        "USE_SPLIT_PTE_PTLOCKS/USE_SPLIT_PMD_PTLOCKS: per-table locks (off: mm->page_table_lock)"
    ),
    bool_knob!(
        "fail_page_alloc",
        fail_page_alloc,
        "fault injection as CONFIG_FAIL_PAGE_ALLOC: every page allocation may fail (an explored choice)"
    ),
    bool_knob!(
        "alloc_split_ptlocks",
        alloc_split_ptlocks,
        "ALLOC_SPLIT_PTLOCKS: page->ptl is a pointer (NULL for non-table pages) rather than embedded"
    ),
    enum_knob!(
        "pte_layout",
        pte_layout,
        "x86-64 entry layout and pte-level code era: v3_12 (_PAGE_NUMA = _PAGE_PROTNONE, bit 8), \
         v3_16 (c46a7c817e66: _PAGE_NUMA = bit 9), v4_19 (PROT_NONE hinting, L1TF inversion), \
         v2_6_34 (no _PAGE_NUMA; swap entries type<<1 | offset<<9; swap-out and swap-in)",
        {
            "v2_6_34" => PteLayout::V2_6_34,
            "v3_12" => PteLayout::V3_12,
            "v3_16" => PteLayout::V3_16,
            "v4_19" => PteLayout::V4_19,
        }
    ),
    enum_knob!(
        "platform",
        platform,
        "native (bare metal/HVM) or xen-pv (present ptes hold machine frames); a scenario's \
         machine line may pin it",
        { "native" => Platform::Native, "xen-pv" => Platform::XenPv }
    ),
    bool_knob!(
        "mprotect_clears_numa",
        mprotect_clears_numa,
        "1667918b6483 (3.13-rc, 3.12.7): change_pte_range applies pte_mknonnuma to pte_numa entries \
         before pte_modify"
    ),
    bool_knob!(
        "numa_helpers_pv_ops",
        numa_helpers_pv_ops,
        "29c7787075c9 (3.15, 3.14.5): pte_mknuma/pte_mknonnuma through pte_val/__pte (off: native \
         flag ops)"
    ),
    bool_knob!(
        "xen_translate_protnone",
        xen_translate_protnone,
        "a9c8e4beeeb6 (3.14-rc, reverted): Xen translates frames of PROTNONE/NUMA ptes too"
    ),
    bool_knob!(
        "anon_merge_faulted_unfaulted",
        anon_merge_faulted_unfaulted,
        "879bca0a2c4f (6.16): a faulted anonymous range may merge into an unfaulted neighbour"
    ),
    bool_knob!(
        "unaccount_unfaulted_on_mprotect",
        unaccount_unfaulted_on_mprotect,
        "6.7: mprotect drops VM_ACCOUNT from an unfaulted anonymous VMA made read-only"
    ),
    bool_knob!(
        "mremap_expand_merge",
        mremap_expand_merge,
        "ca3d76b0aa80 (6.1): an in-place mremap expansion merges with the next VMA"
    ),
    bool_knob!(
        "mremap_multi_vma_move",
        mremap_multi_vma_move,
        "d23cb648e365 (6.17): an MREMAP_FIXED move of unchanged size may span several VMAs"
    ),
    bool_knob!(
        "anon_vma_clone_reverse",
        anon_vma_clone_reverse,
        "646d87b481da (2.6.34-rc4): anon_vma_clone copies the chain in reverse, keeping its order \
         (off: 2.6.34-rc3's forward walk reverses it)"
    ),
    enum_knob!(
        "vma_merge",
        vma_merge,
        "VMA merging code: v2_6_34 (mm/mmap.c vma_merge + vma_adjust with importer and \
         anon_vma_merge) or v6_18 (mm/vma.c)",
        { "v2_6_34" => VmaMergeCode::V2_6_34, "v6_18" => VmaMergeCode::V6_18 }
    ),
    bool_knob!(
        "reuse_anon_vma_singleton",
        reuse_anon_vma_singleton,
        "d0e9fe1758f2 (2.6.34-rc4): find_mergeable_anon_vma reuses a neighbour's anon_vma only if \
         its chain is singular (off: any mergeable neighbour's)"
    ),
    bool_knob!(
        "vma_adjust_exporter",
        vma_adjust_exporter,
        "287d97ac0321 (2.6.34-rc4): vma_adjust's importer clones the exporter's chain (off: clones \
         from vma, possibly itself)"
    ),
    enum_knob!(
        "set_anon_rmap",
        set_anon_rmap,
        "__page_set_anon_rmap's anon_vma: vma_anon_vma (2.6.34-rc3), oldest (ea90002b0fa7, rc4), \
         exclusive (e8a03feb54ca, rc5), root (288468c334e9, 2.6.36)",
        {
            "vma_anon_vma" => SetAnonRmap::VmaAnonVma,
            "oldest" => SetAnonRmap::Oldest,
            "exclusive" => SetAnonRmap::Exclusive,
            "root" => SetAnonRmap::Root,
        }
    ),
    bool_knob!(
        "anon_vma_fork_unlink_on_error",
        anon_vma_fork_unlink_on_error,
        "4946d54cb55e (2.6.34-rc4): anon_vma_fork unlinks its cloned avcs when an allocation fails"
    ),
    bool_knob!(
        "swapin_exclusive_rmap",
        swapin_exclusive_rmap,
        "ad8c2ee801a (2.6.36-rc1): a write swap-in that reuse_swap_page() allows maps the page \
         exclusive, into the VMA's own anon_vma"
    ),
    bool_knob!(
        "anon_vma_root",
        anon_vma_root,
        "5c341ee1dfc8/76545066c852 (2.6.36): anon_vma->root, and a child anon_vma's reference on it"
    ),
    bool_knob!(
        "fail_slab_alloc",
        fail_slab_alloc,
        "fault injection as CONFIG_FAILSLAB: anon_vma_alloc and anon_vma_chain_alloc may fail (an \
         explored choice; a scenario's `machine failslab` sets it)"
    ),
    bool_knob!(
        "verify_anon_page",
        verify_anon_page,
        "Linus' debug patch (seed 002 thread): zap_pte_range WARNs \"page->mapping does not exist \
         in vma chain\""
    ),
    bool_knob!(
        "fault_locks_page",
        fault_locks_page,
        "d00806b18315 (2.6.23-rc1): the file fault finds the page with find_lock_page, re-checks \
         i_size and keeps it locked until the pte is set (off: find_get_page, a reference only)"
    ),
    bool_knob!(
        "truncate_count",
        truncate_count,
        "2.6.22 do_no_page's mapping->truncate_count seqcount: read before ->nopage, re-checked \
         under the PTL (dropped from the fault path by d00806b18315)"
    ),
    bool_knob!(
        "invalidate_unmap_under_lock",
        invalidate_unmap_under_lock,
        "d00806b18315: invalidate_inode_pages2_range unmaps a mapped page once under its lock and \
         BUG_ONs if still mapped (off: 2.6.22's while (page_mapped) unmap loop)"
    ),
    bool_knob!(
        "truncate_unmaps_locked_page",
        truncate_unmaps_locked_page,
        "d00806b18315: truncate_inode_pages_range unmaps a page still mapped once it holds its lock"
    ),
    bool_knob!(
        "truncate_second_unmap",
        truncate_second_unmap,
        "d00806b18315: vmtruncate calls unmap_mapping_range again after truncate_inode_pages \
         (zaps private COW copies made after the first unmap)"
    ),
    bool_knob!(
        "remove_mapped_check",
        remove_mapped_check,
        "45426812d6b6 (2.6.23-rc1): BUG_ON(page_mapped(page)) in __remove_from_page_cache; modern \
         kernels: \"BUG: Bad page cache in process\" (filemap_unaccount_folio)"
    ),
    enum_knob!(
        "xen_pin",
        xen_pin,
        "Xen PV pin/unpin: whole_tree (2.6.23: all pages RO then PIN, under mm->page_table_lock) or \
         per_pte_page (74260714c56d, 2.6.24: each pte page RO+PIN_L1 under its split pte lock)",
        { "whole_tree" => XenPin::WholeTreeThenPin, "per_pte_page" => XenPin::PerPtePageUnderPtl }
    ),
    enum_knob!(
        "young_clear",
        young_clear,
        "ptep_clear_flush_young: direct_store (every i386 kernel: test_and_clear_bit on the pte) \
         or hypercall (hypothetical, the seed thread's option 1)",
        { "direct_store" => YoungClear::DirectStore, "hypercall" => YoungClear::Hypercall }
    ),
    bool_knob!(
        "dio_invalidate_after_write",
        dio_invalidate_after_write,
        "bdb76ef5a4bc (2.6.24-rc1): O_DIRECT writes invalidate the page cache again after the \
         write (off: 65b8291c4000's goto skips it, leaving pages a racing fault read in stale)"
    ),
    bool_knob!(
        "zap_cow_swap_entries",
        zap_cow_swap_entries,
        "\"mm: don't skip swap entry even if zap_details specified\" (v5.18): truncation zaps the \
         swap entries of private COW copies (off: they survive it and fault back past EOF)"
    ),
    enum_knob!(
        "nonlinear_fault",
        nonlinear_fault,
        "file faults: populate (2.6.22: do_no_page/->nopage, nonlinear via do_file_page/->populate/ \
         install_page) or fault (54cb8821de07, 2.6.23: __do_fault/->fault for both)",
        { "populate" => NonlinearFault::Populate, "fault" => NonlinearFault::Fault }
    ),
];

impl Profile {
    /// `_PAGE_NUMA`'s place when the profile runs the 3.x-era paths.
    pub fn numa_bit(&self) -> Option<NumaBit> {
        self.knobs.pte_layout.numa_bit()
    }

    /// Applies `name=value` overrides; errors name the bad knob or value.
    pub fn with_overrides(mut self, overrides: &[(String, String)]) -> Result<Profile, String> {
        for (name, value) in overrides {
            let def = KNOBS.iter().find(|d| d.name == name).ok_or_else(|| {
                let names: Vec<&str> = KNOBS.iter().map(|d| d.name).collect();
                format!("unknown knob '{name}'; known knobs: {}", names.join(", "))
            })?;
            if !(def.set)(&mut self.knobs, value) {
                return Err(format!(
                    "knob '{name}' cannot be '{value}'; allowed values: {}",
                    def.values.join(", ")
                ));
            }
        }
        Ok(self)
    }
}

/// Parses `name=value`.
pub fn parse_override(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() && !v.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("bad knob override '{s}'; expected name=value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_knob_round_trips_every_value() {
        for def in KNOBS {
            for v in def.values {
                let p = profile("linux-6.1.159").unwrap();
                let p = p
                    .with_overrides(&[(def.name.into(), v.to_string())])
                    .unwrap();
                assert_eq!(def.get(&p.knobs), *v);
            }
        }
    }

    #[test]
    fn bad_overrides_name_the_problem() {
        let p = profile("linux-6.5").unwrap();
        let e = p
            .clone()
            .with_overrides(&[("nope".into(), "on".into())])
            .unwrap_err();
        assert!(e.contains("unknown knob 'nope'"), "{e}");
        let e = p
            .with_overrides(&[("split_ptlocks".into(), "maybe".into())])
            .unwrap_err();
        assert!(e.contains("allowed values: on, off"), "{e}");
        assert!(profile("linux-9").unwrap_err().contains("linux-6.5"));
        assert!(parse_override("x").is_err());
    }
}
