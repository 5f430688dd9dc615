//! Changing protections: `change_protection()` → `change_protection_range()`
//! → `change_pud_range()` → `change_pmd_range()` → `change_huge_pmd()` /
//! `change_pte_range()`, and the mprotect syscall.
//!
//! Models mm/mprotect.c: v5.5, v6.1, the 6.1.160 stable backport
//! (91750c8a4be4) and v6.5, chosen by the `pmd_check` knob; the pte loop
//! of v3.12 (with or without 1667918b6483) for the 3.x-era profiles. Where the
//! kernel reads `*pmd` several times, the model reads it as often.

use crate::arch::x86::pgtable::pte_mkwrite;
use crate::arch::x86::pgtable::_PAGE_PRESENT;
use crate::arch::x86::pgtable::{
    is_swap_pmd, pgd_addr_end, pmd_addr_end, pmd_bad, pmd_devmap, pmd_none, pmd_trans_huge,
    pte_present, pte_protnone, pte_val, pte_write, pud_addr_end, PgProt, Pmd, Pte,
};
use crate::arch::x86::pgtable_v3::{self, NumaBit};
use crate::debug::vm_normal_page_v3;
use crate::huge_memory::{change_huge_pmd, split_huge_pmd, MM_CP_PROT_NUMA};
use crate::mm_types::{
    vm_flags, FolioKind, Kernel, MmStruct, Vma, HPAGE_PMD_NR, HPAGE_PMD_SIZE, PAGE_SIZE,
};
use crate::pgtable::{pgd_offset, pmd_offset, pud_offset, EntryRef};
use crate::pgtable_generic::{
    is_huge_or_swap, pmd_clear_bad, pmd_none_or_trans_huge_or_clear_bad, pte_offset_map_lock,
    PteMap,
};
use crate::profile::PmdCheck;

/// What change_pte_range returns: pages changed, or -EAGAIN (6.1.160, 6.5).
enum PteRange {
    Changed(u64),
    Again,
}

/// `change_protection()` (v6.1) over `[start, end)` of `vma`.
/// `node` is `numa_node_id()` of the CPU running the change (used by the
/// prot_numa shortcut for single-threaded processes).
pub struct ChangeProt<'a> {
    pub k: &'a Kernel,
    pub mm: &'a MmStruct,
    pub vma: &'a Vma,
    pub newprot: PgProt,
    pub cp_flags: u32,
    pub node: u32,
}

/// `change_protection()` (v6.1) over `[start, end)` of the VMA.
pub fn change_protection(cp: &ChangeProt<'_>, start: u64, end: u64) -> u64 {
    let _f = explore::enter("change_protection");
    change_protection_range(cp, start, end)
}

/// `change_protection_range()` with the folded p4d level.
fn change_protection_range(cp: &ChangeProt<'_>, start: u64, end: u64) -> u64 {
    let _f = explore::enter("change_protection_range");
    let mut pages = 0;
    let mut addr = start;
    while addr < end {
        let next = pgd_addr_end(addr, end);
        let pgd = pgd_offset(cp.mm, addr).read("pgd_none_or_clear_bad(pgd)");
        if pgd != 0 {
            pages += change_p4d_range(cp, pgd, addr, next);
        }
        addr = next;
    }
    pages
}

/// `change_p4d_range()`: the p4d level is folded into the pgd on 4-level
/// x86-64, so its one entry is the pgd entry already read.
fn change_p4d_range(cp: &ChangeProt<'_>, p4d: u64, start: u64, end: u64) -> u64 {
    let _f = explore::enter("change_p4d_range");
    change_pud_range(cp, p4d, start, end)
}

/// `change_pud_range()` (v6.1).
fn change_pud_range(cp: &ChangeProt<'_>, pgd: u64, start: u64, end: u64) -> u64 {
    let _f = explore::enter("change_pud_range");
    let Some(first) = pud_offset(cp.k, pgd, start) else {
        return 0;
    };
    let mut pages = 0;
    let mut addr = start;
    while addr < end {
        let next = pud_addr_end(addr, end);
        let pud = EntryRef::new(
            first.table.clone(),
            crate::arch::x86::pgtable::pud_index(addr) as usize,
        );
        let v = pud.read("pud_none_or_clear_bad(pud)");
        if let Some(pmd) = pmd_offset(cp.k, v, addr) {
            pages += change_pmd_range(cp, pmd, addr, next);
        }
        addr = next;
    }
    pages
}

/// `change_pmd_range()`, in the form the profile's kernel has.
fn change_pmd_range(cp: &ChangeProt<'_>, first: EntryRef, start: u64, end: u64) -> u64 {
    let _f = explore::enter("change_pmd_range");
    let k = cp.k;
    let cx = Cx {
        k,
        mm: cp.mm,
        vma: cp.vma,
        newprot: cp.newprot,
        cp_flags: cp.cp_flags,
        node: cp.node,
    };
    let mut pages = 0;
    let mut addr = start;
    while addr < end {
        let next = pmd_addr_end(addr, end);
        let pmd = EntryRef::new(
            first.table.clone(),
            crate::arch::x86::pgtable::pmd_index(addr) as usize,
        );
        pages += match k.profile.knobs.pmd_check {
            PmdCheck::Legacy => cx.one_pmd_legacy(&pmd, addr, next),
            PmdCheck::UnlessTransHuge => cx.one_pmd_unless_trans_huge(&pmd, addr, next),
            PmdCheck::SingleSnapshotBackport => cx.one_pmd_backport(&pmd, addr, next),
            PmdCheck::Upstream65 => cx.one_pmd_upstream65(&pmd, addr, next),
        };
        addr = next;
    }
    pages
}

/// Runs `change` on each pte slot of `[start, end)` in the mapped table;
/// returns how many it changed (change_pte_range's `pages`).
fn for_each_pte(
    map: &PteMap,
    start: u64,
    end: u64,
    mut change: impl FnMut(&EntryRef, u64) -> bool,
) -> u64 {
    let mut pages = 0;
    let mut addr = start;
    while addr < end {
        let index = crate::arch::x86::pgtable::pte_index(addr) as usize;
        let pte = EntryRef::new(map.pte.table.clone(), index);
        pages += u64::from(change(&pte, addr));
        addr += PAGE_SIZE;
    }
    pages
}

/// The arguments every level of the walk passes down.
struct Cx<'a> {
    k: &'a Kernel,
    mm: &'a MmStruct,
    vma: &'a Vma,
    newprot: PgProt,
    cp_flags: u32,
    node: u32,
}

impl Cx<'_> {
    /// v5.5: `if (!is_swap_pmd(*pmd) && !pmd_trans_huge(*pmd) &&
    /// !pmd_devmap(*pmd) && pmd_none_or_clear_bad(pmd)) goto next;` — four
    /// separate reads of `*pmd`.
    fn one_pmd_legacy(&self, pmd: &EntryRef, addr: u64, next: u64) -> u64 {
        let v1 = Pmd(pmd.read("change_pmd_range: is_swap_pmd(*pmd)"));
        let skip = !is_swap_pmd(v1) && {
            let v2 = Pmd(pmd.read("change_pmd_range: pmd_trans_huge(*pmd)"));
            if v2 != v1 {
                explore::mark("change_pmd_range: *pmd changed between the legacy reads");
            }
            !pmd_trans_huge(v2) && {
                let v3 = Pmd(pmd.read("change_pmd_range: pmd_devmap(*pmd)"));
                if v3 != v2 {
                    explore::mark("change_pmd_range: *pmd changed between the legacy reads");
                }
                !pmd_devmap(v3) && self.pmd_none_or_clear_bad(pmd)
            }
        };
        if skip {
            return 0;
        }
        self.huge_or_ptes(pmd, addr, next)
    }

    /// `pmd_none_or_clear_bad()` (v5.5, include/asm-generic/pgtable.h):
    /// `pmd_none(*pmd)`, then `unlikely(pmd_bad(*pmd))` on a second read;
    /// clear a bad value.
    fn pmd_none_or_clear_bad(&self, pmd: &EntryRef) -> bool {
        if pmd_none(Pmd(pmd.read("pmd_none_or_clear_bad: pmd_none(*pmd)"))) {
            return true;
        }
        if pmd_bad(Pmd(pmd.read("pmd_none_or_clear_bad: pmd_bad(*pmd)"))) {
            pmd_clear_bad(self.k, pmd);
            return true;
        }
        false
    }

    /// v5.6..v6.4 and 6.1.y up to 6.1.159 (8b272b3cbbb5):
    /// `if (!is_swap_pmd(*pmd) && !pmd_devmap(*pmd) &&
    /// pmd_none_or_clear_bad_unless_trans_huge(pmd)) goto next;`
    fn one_pmd_unless_trans_huge(&self, pmd: &EntryRef, addr: u64, next: u64) -> u64 {
        let v1 = Pmd(pmd.read("change_pmd_range: is_swap_pmd(*pmd)"));
        let skip = !is_swap_pmd(v1) && {
            let v2 = Pmd(pmd.read("change_pmd_range: pmd_devmap(*pmd)"));
            if v2 != v1 {
                explore::mark("change_pmd_range: *pmd changed between is_swap_pmd and pmd_devmap");
            }
            !pmd_devmap(v2) && self.pmd_none_or_clear_bad_unless_trans_huge(pmd, v2)
        };
        if skip {
            return 0;
        }
        self.huge_or_ptes(pmd, addr, next)
    }

    /// `pmd_none_or_clear_bad_unless_trans_huge()` (v5.6..v6.4): one
    /// `pmd_read_atomic()` decides none / huge / bad.
    fn pmd_none_or_clear_bad_unless_trans_huge(&self, pmd: &EntryRef, earlier: Pmd) -> bool {
        let _f = explore::enter("pmd_none_or_clear_bad_unless_trans_huge");
        let v = Pmd(pmd.read("pmd_read_atomic(pmd)"));
        if v != earlier {
            explore::mark("change_pmd_range: *pmd changed before pmd_read_atomic");
        }
        if pmd_none(v) {
            return true;
        }
        if pmd_trans_huge(v) {
            return false;
        }
        if pmd_bad(v) {
            pmd_clear_bad(self.k, pmd);
            return true;
        }
        false
    }

    /// The common tail of v5.5 and v6.1: `if (is_swap_pmd(*pmd) ||
    /// pmd_trans_huge(*pmd) || pmd_devmap(*pmd))` (up to three more reads),
    /// then change_huge_pmd or fall through to the pte level.
    fn huge_or_ptes(&self, pmd: &EntryRef, addr: u64, next: u64) -> u64 {
        let huge = is_swap_pmd(Pmd(
            pmd.read("change_pmd_range: is_swap_pmd(*pmd) (huge path)")
        )) || pmd_trans_huge(Pmd(
            pmd.read("change_pmd_range: pmd_trans_huge(*pmd) (huge path)")
        )) || pmd_devmap(Pmd(
            pmd.read("change_pmd_range: pmd_devmap(*pmd) (huge path)")
        ));
        if huge {
            if let Some(pages) = self.huge_pmd(pmd, addr, next) {
                return pages;
            }
        }
        match self.change_pte_range(pmd, None, addr, next) {
            PteRange::Changed(n) => n,
            PteRange::Again => 0,
        }
    }

    /// Split a partially covered huge pmd, or change it whole; `None` means
    /// "fall through to the pte level".
    fn huge_pmd(&self, pmd: &EntryRef, addr: u64, next: u64) -> Option<u64> {
        if next - addr != HPAGE_PMD_SIZE {
            split_huge_pmd(self.k, self.mm, self.vma, pmd, addr);
            return None;
        }
        match change_huge_pmd(self.k, self.mm, pmd, self.newprot, self.cp_flags) {
            0 => {
                explore::mark("change_huge_pmd: pmd no longer huge, fall through");
                None
            }
            HPAGE_PMD_NR => Some(HPAGE_PMD_NR),
            _ => Some(0),
        }
    }

    /// 6.1.160 (91750c8a4be4, backport of 670ddd8cdcbd): one `_pmd =
    /// pmd_read_atomic(pmd)` snapshot decides everything: not swap, devmap
    /// or huge, then none skips and `pmd_bad()` clears the slot with
    /// `pmd_clear_bad()`, on that same snapshot; else the huge path or
    /// change_pte_range with `pmd_old`, which re-checks it under the PTL
    /// (-EAGAIN, `goto again`). Checked against the "[PATCH V2 6.1.y 2/2]
    /// mm/mprotect: delete pmd_none_or_clear_bad_unless_trans_huge()" text
    /// as it landed in the 6.1.160 stable update.
    fn one_pmd_backport(&self, pmd: &EntryRef, addr: u64, next: u64) -> u64 {
        loop {
            let snap = Pmd(pmd.read("change_pmd_range: _pmd = pmd_read_atomic(pmd)"));
            if is_swap_pmd(snap) {
                explore::mark("change_pmd_range: snapshot is a pmd migration entry");
            }
            if !is_huge_or_swap(snap) {
                if pmd_none(snap) {
                    return 0;
                }
                if pmd_bad(snap) {
                    pmd_clear_bad(self.k, pmd);
                    return 0;
                }
            }
            if is_huge_or_swap(snap) {
                if let Some(pages) = self.huge_pmd(pmd, addr, next) {
                    return pages;
                }
            }
            match self.change_pte_range(pmd, Some(snap), addr, next) {
                PteRange::Changed(n) => return n,
                PteRange::Again => explore::mark("change_pte_range: -EAGAIN, goto again"),
            }
        }
    }

    /// v6.5 (670ddd8cdcbd): `if (pmd_none(*pmd)) goto next;` then one
    /// `pmdp_get_lockless()` snapshot; change_pte_range may return -EAGAIN.
    fn one_pmd_upstream65(&self, pmd: &EntryRef, addr: u64, next: u64) -> u64 {
        loop {
            if pmd_none(Pmd(pmd.read("change_pmd_range: pmd_none(*pmd)"))) {
                return 0;
            }
            let snap = Pmd(pmd.read("change_pmd_range: _pmd = pmdp_get_lockless(pmd)"));
            if is_swap_pmd(snap) {
                explore::mark("change_pmd_range: snapshot is a pmd migration entry");
            }
            if is_huge_or_swap(snap) {
                if let Some(pages) = self.huge_pmd(pmd, addr, next) {
                    return pages;
                }
            }
            match self.change_pte_range(pmd, None, addr, next) {
                PteRange::Changed(n) => return n,
                PteRange::Again => explore::mark("change_pte_range: -EAGAIN, goto again"),
            }
        }
    }

    /// `change_pte_range()`: v6.1 starts with `pmd_trans_unstable()`; the
    /// backport re-checks `pmd_old` under the PTL; v6.5's
    /// pte_offset_map_lock may fail.
    fn change_pte_range(
        &self,
        pmd: &EntryRef,
        pmd_old: Option<Pmd>,
        addr: u64,
        end: u64,
    ) -> PteRange {
        let _f = explore::enter("change_pte_range");
        let k = self.k;
        if k.profile.knobs.change_pte_range_unstable_check
            && pmd_none_or_trans_huge_or_clear_bad(k, pmd)
        {
            return PteRange::Changed(0);
        }
        let Some(map) = pte_offset_map_lock(k, self.mm, pmd, addr) else {
            return PteRange::Again;
        };
        if let Some(old) = pmd_old {
            if pmd.read("change_pte_range: pmd_same(pmd_old, pmd_read_atomic(pmd))") != old.0 {
                map.ptl.unlock("pte_unmap_unlock");
                return PteRange::Again;
            }
        }
        let pages = match k.profile.numa_bit() {
            Some(numa) => self.change_ptes_v3(numa, &map, addr, end),
            None => self.change_ptes(&map, addr, end),
        };
        map.ptl.unlock("pte_unmap_unlock");
        PteRange::Changed(pages)
    }

    /// The per-pte loop of change_pte_range (under the PTL).
    fn change_ptes(&self, map: &PteMap, start: u64, end: u64) -> u64 {
        let prot_numa = self.cp_flags & MM_CP_PROT_NUMA != 0;
        let target_node = self.single_threaded_target_node(prot_numa);
        for_each_pte(map, start, end, |pte, _| {
            let old = Pte(pte.read_locked("change_pte_range: *pte under ptl"));
            if crate::arch::x86::swap::is_swap_pte(old) {
                return self.change_swap_pte(pte, old);
            }
            if !pte_present(old) || (prot_numa && self.numa_skips(old, target_node)) {
                return false;
            }
            // pte_mk_savedwrite() (v6.1; removed by 6a56ccbcf6c6).
            let preserve_write =
                prot_numa && self.k.profile.knobs.numa_savedwrite && pte_write(old);
            let start = Pte(pte.xchg("ptep_modify_prot_start", 0));
            let mut new = self.k.pte_modify(start, self.newprot);
            if preserve_write {
                new = pte_mkwrite(new);
            }
            pte.write("ptep_modify_prot_commit", pte_val(new));
            true
        })
    }

    /// The swap-pte branch of change_pte_range (v6.1): a writable migration
    /// entry becomes readable ("a protection check is difficult so just be
    /// safe and disable write"), keeping its offset (young/dirty bits),
    /// soft-dirty and uffd-wp. Other swap entries stay. Returns whether the
    /// entry changed.
    fn change_swap_pte(&self, pte: &EntryRef, old: Pte) -> bool {
        use crate::arch::x86::swap::{
            is_writable_migration_entry, pfn_swap_entry_to_pfn, pte_swp_mksoft_dirty,
            pte_swp_mkuffd_wp, pte_swp_soft_dirty, pte_swp_uffd_wp, pte_to_swp_entry,
            readable_from_writable_migration_entry, swp_entry_to_pte,
        };
        let t = &self.k.profile.swap_types;
        let entry = pte_to_swp_entry(old);
        if !is_writable_migration_entry(t, entry) {
            return false;
        }
        let anon = self
            .k
            .mem
            .pfn_folio(pfn_swap_entry_to_pfn(entry))
            .is_some_and(|f| f.kind.get() == FolioKind::Anon);
        let mut new = swp_entry_to_pte(readable_from_writable_migration_entry(t, entry, anon));
        if pte_swp_soft_dirty(old) {
            new = pte_swp_mksoft_dirty(new);
        }
        if pte_swp_uffd_wp(old) {
            new = pte_swp_mkuffd_wp(new);
        }
        explore::mark("change_pte_range: writable migration entry made readable");
        pte.write(
            "change_pte_range: set_pte_at (readable migration entry)",
            pte_val(new),
        );
        true
    }

    /// The per-pte loop of change_pte_range (v3.12, under the PTL).
    ///
    /// mprotect: `ptep_modify_prot_start()`, then (1667918b6483) a
    /// `pte_numa()` entry is turned back with `pte_mknonnuma()`, then
    /// `pte_modify()` and `ptep_modify_prot_commit()`. With `_PAGE_NUMA` ==
    /// `_PAGE_PROTNONE`, a PROT_NONE pte *is* `pte_numa()`.
    ///
    /// NUMA scan (prot_numa): an entry that is not yet `pte_numa()`, mapping
    /// a page mapped once, becomes `pte_mknuma(*pte)` via `set_pte_at()`.
    /// (3.12 tests `page_mapcount() == 1`, 3.13 does not; 3.14 calls it
    /// `ptep_set_numa()`: the same for the model's private pages.)
    fn change_ptes_v3(&self, numa: NumaBit, map: &PteMap, start: u64, end: u64) -> u64 {
        let prot_numa = self.cp_flags & MM_CP_PROT_NUMA != 0;
        for_each_pte(map, start, end, |pte, addr| {
            let oldpte = Pte(pte.read_locked("change_pte_range: oldpte = *pte under ptl"));
            if !pgtable_v3::pte_present(numa, oldpte) {
                return false;
            }
            if prot_numa {
                return self.set_numa_v3(numa, pte, addr, oldpte);
            }
            self.modify_prot_v3(numa, pte, oldpte);
            true
        })
    }

    /// The `!prot_numa` branch of change_pte_range (v3.12).
    fn modify_prot_v3(&self, numa: NumaBit, pte: &EntryRef, oldpte: Pte) {
        let k = self.k;
        if oldpte.0 & _PAGE_PRESENT == 0 {
            explore::mark("change_pte_range: mprotect of a non-present PROT_NONE/NUMA pte");
        }
        let mut ptent = k.pv.ptep_modify_prot_start(pte);
        if k.profile.knobs.mprotect_clears_numa && pgtable_v3::pte_numa(numa, ptent) {
            ptent = k.pte_mknonnuma(numa, ptent);
        }
        let ptent = pgtable_v3::pte_modify(&k.pv, numa, ptent, self.newprot);
        k.pv.ptep_modify_prot_commit(pte, ptent);
    }

    /// The `prot_numa` branch of change_pte_range (v3.12).
    fn set_numa_v3(&self, numa: NumaBit, pte: &EntryRef, addr: u64, oldpte: Pte) -> bool {
        let k = self.k;
        let Some(page) = vm_normal_page_v3(k, self.mm, self.vma, addr, oldpte) else {
            return false;
        };
        if pgtable_v3::pte_numa(numa, oldpte) || page.mapcount(k) != 1 {
            return false;
        }
        let ptent = k.pte_mknuma(
            numa,
            Pte(pte.read_locked("change_pte_range: *pte under ptl (pte_mknuma)")),
        );
        k.set_pte_at(pte, ptent, "change_pte_range: set_pte_at(pte_mknuma(*pte))");
        true
    }

    /// change_pte_range's "Get target node for single threaded private
    /// VMAs": `numa_node_id()` when `mm_users` is 1, read once per call
    /// (lockless: a thread of the process may be exiting meanwhile).
    fn single_threaded_target_node(&self, prot_numa: bool) -> Option<u32> {
        let single = prot_numa
            && self.vma.flags() & vm_flags::VM_SHARED == 0
            && self
                .mm
                .users
                .read("change_pte_range: atomic_read(&vma->vm_mm->mm_users) == 1")
                == 1;
        single.then_some(self.node)
    }

    /// The prot_numa skips of change_pte_range: already PROT_NONE, not a
    /// normal anonymous page, shared COW, or already on `target_node`, the
    /// node a single-threaded process runs on.
    fn numa_skips(&self, old: Pte, target_node: Option<u32>) -> bool {
        if pte_protnone(old) {
            return true;
        }
        let pfn = self.k.pte_pfn(old);
        let Some(folio) = self
            .k
            .mem
            .pfn_folio(pfn)
            .filter(|f| f.kind.get() == FolioKind::Anon)
        else {
            return true;
        };
        if self.vma.flags() & vm_flags::VM_SHARED == 0
            && folio
                .refcount
                .read("change_pte_range: page_count(page) != 1 (COW-shared)")
                != 1
        {
            return true;
        }
        target_node == Some(folio.node)
    }
}
