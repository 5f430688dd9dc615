//! Transparent huge pages mapped by a PMD: faults, NUMA hinting faults,
//! protection changes, zapping, and PMD migration entries.
//!
//! Models mm/huge_memory.c (v6.1; `change_huge_pmd` also v4.10 for the
//! clear-then-set update style).

use std::rc::Rc;

use crate::arch::x86::pgtable::{
    is_swap_pmd, mk_huge_pmd, pfn_pte, pmd_devmap, pmd_dirty, pmd_mkdirty, pmd_mkold,
    pmd_mksoft_dirty, pmd_mkwrite, pmd_mkyoung, pmd_modify, pmd_none, pmd_pfn, pmd_present,
    pmd_protnone, pmd_soft_dirty, pmd_trans_huge, pmd_val, pmd_write, pmd_young, pte_mkdirty,
    pte_mkold, pte_mkspecial, pte_mkwrite, pte_val, PgProt, Pmd, Pte, HPAGE_PMD_MASK,
};
use crate::arch::x86::swap::{
    is_migration_entry_dirty, is_migration_entry_young, is_pmd_migration_entry,
    is_writable_migration_entry, make_migration_entry_dirty, make_migration_entry_young,
    make_readable_exclusive_migration_entry, make_readable_migration_entry,
    make_writable_migration_entry, pfn_swap_entry_to_pfn, pmd_swp_mksoft_dirty, pmd_swp_soft_dirty,
    pmd_to_swp_entry, readable_from_writable_migration_entry, swp_entry_to_pmd, swp_entry_to_pte,
    SwapTypes, SwpEntry,
};
use crate::locking::PTE_LOCK;
use crate::memory::{
    get_folio, put_folio, transhuge_vma_suitable, VmFault, VM_FAULT_FALLBACK, VM_FAULT_OOM,
};
use crate::mempolicy::numa_migrate_prep;
use crate::migrate::migrate_misplaced_page;
use crate::mm_types::{
    Folio, FolioKind, Kernel, MmStruct, Vma, HPAGE_PMD_NR, HPAGE_PMD_ORDER, HPAGE_PMD_SIZE,
    MM_ANONPAGES, PAGE_SIZE,
};
use crate::pgtable::{alloc_table, free_table, pmd_lock, populate_val, EntryRef, Ptl};
use crate::pgtable_generic::{is_huge_or_swap, pmdp_invalidate};
use crate::profile::{HugeUpdateStyle, NumaThpMigration};
use crate::rmap::{anon_vma_prepare, page_add_anon_rmap, page_add_new_anon_rmap, page_remove_rmap};

/// `is_huge_zero_pmd()`.
pub fn is_huge_zero_pmd(k: &Kernel, v: Pmd) -> bool {
    pmd_present(v) && k.huge_zero.get().is_some_and(|z| pmd_pfn(v) == z.pfn)
}

/// `mm_get_huge_zero_page()`: the huge zero folio, allocated once.
fn huge_zero_folio(k: &Kernel) -> Option<Rc<Folio>> {
    if let Some(z) = k.huge_zero.get() {
        return Some(z.clone());
    }
    let z = k.mem.alloc_pages(0, HPAGE_PMD_ORDER, FolioKind::HugeZero)?;
    let _ = k.huge_zero.set(z.clone());
    Some(z)
}

/// `pgtable_trans_huge_deposit()`: keep a PTE table for a later split.
/// Called with the pmd lock held.
fn pgtable_trans_huge_deposit(pmd: &EntryRef, pgtable: Rc<Folio>) {
    pmd.table.pmd_huge_pte.borrow_mut().push(pgtable);
}

/// `pgtable_trans_huge_withdraw()`. Called with the pmd lock held.
fn pgtable_trans_huge_withdraw(pmd: &EntryRef) -> Option<Rc<Folio>> {
    pmd.table.pmd_huge_pte.borrow_mut().pop()
}

/// `zap_deposited_table()`: withdraw and free the deposited table.
fn zap_deposited_table(k: &Kernel, mm: &MmStruct, pmd: &EntryRef) {
    match pgtable_trans_huge_withdraw(pmd) {
        Some(t) => {
            free_table(k, &t);
            mm.dec_pgtables_bytes();
        }
        None => explore::oops(crate::debug::bug_on(
            "zap_deposited_table: no deposited page table",
        )),
    }
}

/// `do_huge_pmd_anonymous_page()` (v6.1).
pub fn do_huge_pmd_anonymous_page(vmf: &VmFault<'_>) -> u32 {
    let _f = explore::enter("do_huge_pmd_anonymous_page");
    let (k, vma) = (vmf.k, vmf.vma);
    let haddr = vmf.address & HPAGE_PMD_MASK;
    if !transhuge_vma_suitable(vma, haddr) {
        return VM_FAULT_FALLBACK;
    }
    if !anon_vma_prepare(k, vma) {
        return VM_FAULT_OOM;
    }
    if !vmf.is_write() && k.machine.thp_use_zero_page {
        return map_huge_zero_page(vmf, haddr);
    }
    let Some(folio) = k
        .mem
        .alloc_pages(vmf.task.node, HPAGE_PMD_ORDER, FolioKind::Anon)
    else {
        explore::mark("thp: fault fallback (no huge page)");
        return VM_FAULT_FALLBACK;
    };
    do_huge_pmd_anonymous_page_locked(vmf, folio, haddr)
}

/// `set_huge_zero_page()` path of do_huge_pmd_anonymous_page.
fn map_huge_zero_page(vmf: &VmFault<'_>, haddr: u64) -> u32 {
    let (k, mm) = (vmf.k, vmf.mm());
    let Some(pgtable) = alloc_table(k, vmf.task.node, 1, Some(&PTE_LOCK)) else {
        return VM_FAULT_OOM;
    };
    let Some(zero) = huge_zero_folio(k) else {
        free_table(k, &pgtable);
        return VM_FAULT_FALLBACK;
    };
    let ptl = pmd_lock(k, mm, &vmf.pmd);
    if pmd_none(Pmd(vmf.pmd.read_locked(
        "do_huge_pmd_anonymous_page: pmd_none(*pmd) under pmd lock (zero page)",
    ))) {
        let entry = mk_huge_pmd(zero.pfn, vmf.vma.vm_page_prot.get());
        pgtable_trans_huge_deposit(&vmf.pmd, pgtable);
        vmf.pmd
            .write("set_huge_zero_page: set_pmd_at", pmd_val(entry));
        mm.inc_pgtables_bytes();
        explore::note!("huge zero page mapped at {haddr:#x}");
    } else {
        free_table(k, &pgtable);
    }
    ptl.unlock("spin_unlock(pmd_lock)");
    0
}

/// `__do_huge_pmd_anonymous_page()` (v6.1).
fn do_huge_pmd_anonymous_page_locked(vmf: &VmFault<'_>, folio: Rc<Folio>, haddr: u64) -> u32 {
    let (k, mm, vma) = (vmf.k, vmf.mm(), vmf.vma);
    let Some(pgtable) = alloc_table(k, vmf.task.node, 1, Some(&PTE_LOCK)) else {
        put_folio(k, &folio);
        return VM_FAULT_OOM;
    };
    let ptl = pmd_lock(k, mm, &vmf.pmd);
    if !pmd_none(Pmd(vmf.pmd.read_locked(
        "__do_huge_pmd_anonymous_page: pmd_none(*pmd) under pmd lock",
    ))) {
        ptl.unlock("spin_unlock(pmd_lock)");
        free_table(k, &pgtable);
        put_folio(k, &folio);
        return 0;
    }
    let entry = maybe_pmd_mkwrite(
        pmd_mkdirty(mk_huge_pmd(folio.pfn, vma.vm_page_prot.get())),
        vma,
    );
    page_add_new_anon_rmap(k, &folio, vma, haddr);
    folio.lru.set(true);
    pgtable_trans_huge_deposit(&vmf.pmd, pgtable);
    vmf.pmd
        .write("__do_huge_pmd_anonymous_page: set_pmd_at", pmd_val(entry));
    mm.add_mm_counter(MM_ANONPAGES, HPAGE_PMD_NR as i64);
    mm.inc_pgtables_bytes();
    ptl.unlock("spin_unlock(pmd_lock)");
    0
}

/// `maybe_pmd_mkwrite()`.
fn maybe_pmd_mkwrite(v: Pmd, vma: &Vma) -> Pmd {
    if vma.flags() & crate::mm_types::vm_flags::VM_WRITE != 0 {
        pmd_mkwrite(v)
    } else {
        v
    }
}

/// `do_huge_pmd_numa_page()`: a NUMA hinting fault on a PROT_NONE huge
/// pmd; migrates the THP if it is misplaced. v6.1 (savedwrite) or v6.5
/// (`can_change_pmd_writable()`) by the `numa_savedwrite` knob, or v5.5 by
/// profile.
pub fn do_huge_pmd_numa_page(vmf: &VmFault<'_>) -> u32 {
    let _f = explore::enter("do_huge_pmd_numa_page");
    if vmf.k.profile.knobs.numa_thp_migration == NumaThpMigration::MisplacedTranshuge {
        return do_huge_pmd_numa_page_v55(vmf);
    }
    let (k, mm, vma) = (vmf.k, vmf.mm(), vmf.vma);
    let oldpmd = Pmd(vmf.orig_pmd);
    // v6.1: pmd_savedwrite() of the lockless snapshot, before the lock.
    let savedwrite = k.profile.knobs.numa_savedwrite;
    let was_writable = savedwrite && pmd_write(oldpmd);
    let ptl = pmd_lock(k, mm, &vmf.pmd);
    if vmf
        .pmd
        .read_locked("do_huge_pmd_numa_page: pmd_same(oldpmd, *pmd) under pmd lock")
        != pmd_val(oldpmd)
    {
        ptl.unlock("spin_unlock(pmd_lock)");
        return 0;
    }
    let writable = if savedwrite {
        was_writable
    } else {
        numa_fault_pmd_writable(vmf, pmd_modify(oldpmd, vma.vm_page_prot.get()))
    };
    let folio = k
        .mem
        .pfn_folio(pmd_pfn(oldpmd))
        .filter(|f| f.kind.get() == FolioKind::Anon);
    let target = folio
        .as_ref()
        .and_then(|f| numa_migrate_prep(k, vmf.task, f));
    let (Some(folio), Some(target)) = (folio, target) else {
        return restore_huge_pmd(vmf, oldpmd, ptl, writable);
    };
    ptl.unlock("spin_unlock(pmd_lock)");
    // v6.5 maps the pmd back read-only after a failed migration.
    let writable = writable && savedwrite;
    if migrate_misplaced_page(k, &folio, vma, target) {
        return 0;
    }
    let ptl = pmd_lock(k, mm, &vmf.pmd);
    if vmf
        .pmd
        .read_locked("do_huge_pmd_numa_page: pmd_same(oldpmd, *pmd) after migration failed")
        != pmd_val(oldpmd)
    {
        ptl.unlock("spin_unlock(pmd_lock)");
        return 0;
    }
    restore_huge_pmd(vmf, oldpmd, ptl, writable)
}

/// v6.5's writability of the pmd a NUMA hinting fault restores:
/// `pmd_write(pmd)`, or, where the write bit is upgraded by hand
/// (`vma_wants_manual_pte_write_upgrade()`: a private writable VMA),
/// `can_change_pmd_writable()`.
fn numa_fault_pmd_writable(vmf: &VmFault<'_>, pmd: Pmd) -> bool {
    pmd_write(pmd) || (wants_manual_write_upgrade(vmf.vma) && can_change_pmd_writable(vmf, pmd))
}

/// `vma_wants_manual_pte_write_upgrade()` (v6.5) for the model's VMAs:
/// a private VMA with VM_WRITE (a shared writable one has RW in
/// vm_page_prot already; the model has no write-notify mappings).
pub fn wants_manual_write_upgrade(vma: &Vma) -> bool {
    use crate::mm_types::vm_flags::{VM_SHARED, VM_WRITE};
    vma.flags() & (VM_SHARED | VM_WRITE) == VM_WRITE
}

/// `can_change_pmd_writable()` (v6.5): not PROT_NONE, and in a private
/// VMA an exclusive anonymous page (`PageAnonExclusive`, read under the
/// pmd lock). Soft dirty tracking and userfaultfd write protection are not
/// modelled.
fn can_change_pmd_writable(vmf: &VmFault<'_>, pmd: Pmd) -> bool {
    !pmd_protnone(pmd)
        && vmf.k.mem.pfn_folio(pmd_pfn(pmd)).is_some_and(|f| {
            f.kind.get() == FolioKind::Anon && crate::rmap::page_anon_exclusive(&f)
        })
}

/// `do_huge_pmd_numa_page()` as in v5.5 (before c5fc5c3ae0c8): the page
/// lock serialises THP migrations, and `migrate_misplaced_transhuge_page()`
/// replaces the PROT_NONE pmd by the new huge pmd directly. [M] from the
/// pre-5.14 code; the reviewed parts are the pmd_same re-checks and the
/// absence of a migration entry.
fn do_huge_pmd_numa_page_v55(vmf: &VmFault<'_>) -> u32 {
    let (k, mm) = (vmf.k, vmf.mm());
    let oldpmd = Pmd(vmf.orig_pmd);
    let ptl = pmd_lock(k, mm, &vmf.pmd);
    if vmf
        .pmd
        .read_locked("do_huge_pmd_numa_page: pmd_same(pmd, *pmd) under pmd lock")
        != pmd_val(oldpmd)
    {
        ptl.unlock("spin_unlock(pmd_lock)");
        return 0;
    }
    let was_writable = k.profile.knobs.numa_savedwrite && pmd_write(oldpmd);
    let Some(folio) = k
        .mem
        .pfn_folio(pmd_pfn(oldpmd))
        .filter(|f| f.kind.get() == FolioKind::Anon)
    else {
        return restore_huge_pmd(vmf, oldpmd, ptl, was_writable);
    };
    if !folio.lock.try_lock("trylock_page") {
        // A migration is in flight: wait for it and retry the fault.
        ptl.unlock("spin_unlock(pmd_lock)");
        crate::migrate::migration_entry_wait_on_locked(&folio);
        return 0;
    }
    let Some(target) = numa_migrate_prep(k, vmf.task, &folio) else {
        let r = restore_huge_pmd(vmf, oldpmd, ptl, was_writable);
        folio.lock.unlock("unlock_page");
        return r;
    };
    ptl.unlock("spin_unlock(pmd_lock)");
    crate::migrate::migrate_misplaced_transhuge_page(vmf, &folio, oldpmd, target);
    0
}

/// `out_map:` of do_huge_pmd_numa_page: make the pmd accessible again,
/// writable if the fault decided so (v6.1 `was_writable`, v6.5
/// `writable`).
fn restore_huge_pmd(vmf: &VmFault<'_>, oldpmd: Pmd, ptl: Ptl, writable: bool) -> u32 {
    let mut restored = pmd_mkyoung(pmd_modify(oldpmd, vmf.vma.vm_page_prot.get()));
    if writable {
        restored = pmd_mkwrite(restored);
    }
    vmf.pmd.write(
        "do_huge_pmd_numa_page: restore pmd (out_map)",
        pmd_val(restored),
    );
    ptl.unlock("spin_unlock(pmd_lock)");
    0
}

/// `do_huge_pmd_wp_page()` (v6.1) for the cases the model has: the huge
/// zero page falls back to ptes; an exclusive anonymous THP is reused.
pub fn do_huge_pmd_wp_page(vmf: &VmFault<'_>) -> u32 {
    let _f = explore::enter("do_huge_pmd_wp_page");
    let (k, mm) = (vmf.k, vmf.mm());
    let orig = Pmd(vmf.orig_pmd);
    if is_huge_zero_pmd(k, orig) {
        split_huge_pmd(k, mm, vmf.vma, &vmf.pmd, vmf.address);
        return VM_FAULT_FALLBACK;
    }
    let ptl = pmd_lock(k, mm, &vmf.pmd);
    if vmf
        .pmd
        .read_locked("do_huge_pmd_wp_page: pmd_same(*pmd, orig_pmd) under pmd lock")
        != pmd_val(orig)
    {
        ptl.unlock("spin_unlock(pmd_lock)");
        return 0;
    }
    let exclusive = k.mem.pfn_folio(pmd_pfn(orig)).is_some_and(|f| {
        f.mapcount
            .read("do_huge_pmd_wp_page: folio_mapcount() == 1")
            == 1
    });
    if !exclusive {
        ptl.unlock("spin_unlock(pmd_lock)");
        explore::unsupported(
            "not modelled yet: copy-on-write of a shared THP (do_huge_pmd_wp_page fallback)",
        );
    }
    let entry = pmd_mkyoung(pmd_mkdirty(maybe_pmd_mkwrite(orig, vmf.vma)));
    vmf.pmd.write("pmdp_set_access_flags", pmd_val(entry));
    ptl.unlock("spin_unlock(pmd_lock)");
    0
}

/// `__split_huge_pmd()` (v6.1): replace a huge pmd by a table of ptes, for
/// the huge zero page (`__split_huge_zero_page_pmd`) or an anonymous THP,
/// mapped or under migration (`__split_huge_pmd_locked`).
pub fn split_huge_pmd(k: &Kernel, mm: &MmStruct, vma: &Vma, pmd: &EntryRef, address: u64) {
    let _f = explore::enter("__split_huge_pmd");
    let ptl = pmd_lock(k, mm, pmd);
    let v = Pmd(pmd.read_locked("__split_huge_pmd: *pmd under pmd lock"));
    let haddr = address & HPAGE_PMD_MASK;
    if is_huge_zero_pmd(k, v) {
        split_huge_zero_page_pmd(k, vma, pmd, haddr);
    } else if is_huge_or_swap(v) {
        split_huge_pmd_locked(k, vma, pmd, haddr);
    }
    ptl.unlock("spin_unlock(pmd_lock)");
}

/// `__split_huge_pmd_locked()` (v6.1) for anonymous memory: invalidate the
/// pmd (a migration entry only before 3a5a8d343e1c, by the
/// `split_invalidates_migration_entry` knob), fill the deposited table with
/// one pte per subpage (or one pte migration entry per subpage of a
/// migrating THP), then publish it. Each pte mapping takes its own
/// reference and mapcount.
fn split_huge_pmd_locked(k: &Kernel, vma: &Vma, pmd: &EntryRef, haddr: u64) {
    let _f = explore::enter("__split_huge_pmd_locked");
    let t = &k.profile.swap_types;
    let old = if k.profile.knobs.split_invalidates_migration_entry {
        Pmd(pmdp_invalidate(pmd))
    } else {
        let cur = Pmd(pmd.read_locked("__split_huge_pmd_locked: is_pmd_migration_entry(*pmd)"));
        if is_pmd_migration_entry(t, cur) {
            cur
        } else {
            Pmd(pmdp_invalidate(pmd))
        }
    };
    let migration = is_pmd_migration_entry(t, old);
    let (pfn, write) = if migration {
        let entry = pmd_to_swp_entry(old);
        (
            pfn_swap_entry_to_pfn(entry),
            is_writable_migration_entry(t, entry),
        )
    } else {
        (pmd_pfn(old), pmd_write(old))
    };
    let Some(folio) = k.mem.pfn_folio(pfn) else {
        explore::oops(crate::debug::bug_on(format!(
            "__split_huge_pmd_locked: no page for pfn {pfn:#x}"
        )))
    };
    let Some(table) = pgtable_trans_huge_withdraw(pmd) else {
        explore::oops(crate::debug::bug_on(
            "__split_huge_pmd_locked: no deposited page table",
        ))
    };
    explore::mark(if migration {
        "split_huge_pmd: pmd migration entry split"
    } else {
        "split_huge_pmd: THP split"
    });
    if !migration {
        folio.refcount.add_return(
            "__split_huge_pmd_locked: page_ref_add(page, HPAGE_PMD_NR - 1)",
            HPAGE_PMD_NR as i64 - 1,
        );
    }
    for i in 0..HPAGE_PMD_NR {
        let entry = if migration {
            split_migration_pte(t, pfn + i, write, old)
        } else {
            split_present_pte(k, vma, pfn + i, write, old, &folio, haddr + i * PAGE_SIZE)
        };
        table
            .entries()
            .write_unpublished(i as usize, pte_val(entry));
    }
    if !migration {
        page_remove_rmap(&folio, true);
    }
    pmd.write("pmd_populate", populate_val(k, &table));
    explore::note!(
        "huge pmd at {haddr:#x} split into {} ptes",
        if migration { "migration" } else { "present" }
    );
}

/// One pte of a split present huge pmd (`mk_pte(page + i, vm_page_prot)`
/// with the pmd's write, young, dirty and soft-dirty bits).
fn split_present_pte(
    k: &Kernel,
    vma: &Vma,
    pfn: u64,
    write: bool,
    old: Pmd,
    folio: &Folio,
    addr: u64,
) -> Pte {
    let mut entry = pfn_pte(pfn, vma.vm_page_prot.get());
    if write {
        entry = pte_mkwrite(entry);
    }
    if !pmd_young(old) {
        entry = pte_mkold(entry);
    }
    if pmd_dirty(old) {
        entry = pte_mkdirty(entry);
    }
    page_add_anon_rmap(k, folio, vma, addr, false);
    entry
}

/// One pte migration entry of a split pmd migration entry.
fn split_migration_pte(
    t: &crate::arch::x86::swap::SwapTypes,
    pfn: u64,
    write: bool,
    old: Pmd,
) -> Pte {
    let entry = if write {
        make_writable_migration_entry(t, pfn)
    } else if t.migration_read_exclusive.is_some() {
        make_readable_exclusive_migration_entry(t, pfn)
    } else {
        make_readable_migration_entry(t, pfn)
    };
    // The pmd entry's young and dirty bits go to every pte entry.
    let pmd_entry = pmd_to_swp_entry(old);
    let entry = carry_young_dirty(
        t,
        entry,
        is_migration_entry_young(pmd_entry, t.migration_ad),
        is_migration_entry_dirty(pmd_entry, t.migration_ad),
    );
    let mut pte = swp_entry_to_pte(entry);
    if pmd_swp_soft_dirty(old) {
        pte = crate::arch::x86::swap::pte_swp_mksoft_dirty(pte);
    }
    pte
}

/// `__split_huge_zero_page_pmd()`: replace the huge zero pmd by a table of
/// zero-page ptes (the deposited table).
fn split_huge_zero_page_pmd(k: &Kernel, vma: &Vma, pmd: &EntryRef, haddr: u64) {
    pmd.xchg("pmdp_huge_clear_flush", 0);
    let Some(table) = pgtable_trans_huge_withdraw(pmd) else {
        explore::oops(crate::debug::bug_on(
            "__split_huge_zero_page_pmd: no deposited page table",
        ))
    };
    let zero = k.zero_page.get().cloned().or_else(|| {
        let z = k.mem.alloc_pages_nofail(0, 0, FolioKind::Zero)?;
        let _ = k.zero_page.set(z.clone());
        Some(z)
    });
    let Some(zero) = zero else {
        explore::oops(crate::debug::bug_on("no zero page"))
    };
    let entry = pte_mkspecial(pfn_pte(zero.pfn, vma.vm_page_prot.get()));
    for i in 0..512 {
        table
            .entries()
            .write(i, "set_pte_at (zero page)", pte_val(entry));
    }
    pmd.write("pmd_populate", populate_val(k, &table));
    explore::note!("huge zero pmd at {haddr:#x} split into zero-page ptes");
}

/// `__pmd_trans_huge_lock()` (v6.1): lock and re-check that the pmd is
/// still huge, a swap (migration) entry, or devmap.
pub fn pmd_trans_huge_lock(k: &Kernel, mm: &MmStruct, pmd: &EntryRef) -> Option<Ptl> {
    let ptl = pmd_lock(k, mm, pmd);
    if is_huge_or_swap(Pmd(
        pmd.read_locked("__pmd_trans_huge_lock: *pmd under pmd lock")
    )) {
        return Some(ptl);
    }
    ptl.unlock("spin_unlock(pmd_lock)");
    None
}

/// `zap_huge_pmd()` (v6.1). Returns whether the pmd was handled.
pub fn zap_huge_pmd(k: &Kernel, mm: &MmStruct, _vma: &Vma, pmd: &EntryRef, addr: u64) -> bool {
    let _f = explore::enter("zap_huge_pmd");
    let Some(ptl) = pmd_trans_huge_lock(k, mm, pmd) else {
        return false;
    };
    let orig = Pmd(pmd.xchg("pmdp_huge_get_and_clear_full", 0));
    if is_huge_zero_pmd(k, orig) {
        zap_deposited_table(k, mm, pmd);
        ptl.unlock("spin_unlock(pmd_lock)");
        return true;
    }
    let (folio, flush) = if pmd_present(orig) {
        let f = k.mem.pfn_folio(pmd_pfn(orig));
        if let Some(f) = &f {
            page_remove_rmap(f, true);
        }
        (f, true)
    } else if is_pmd_migration_entry(&k.profile.swap_types, orig) {
        (
            k.mem
                .pfn_folio(pfn_swap_entry_to_pfn(pmd_to_swp_entry(orig))),
            false,
        )
    } else {
        ptl.unlock("spin_unlock(pmd_lock)");
        explore::oops(crate::debug::bug_on(format!(
            "zap_huge_pmd: unexpected pmd {orig:?} at {addr:#x}"
        )));
    };
    zap_deposited_table(k, mm, pmd);
    mm.add_mm_counter(MM_ANONPAGES, -(HPAGE_PMD_NR as i64));
    ptl.unlock("spin_unlock(pmd_lock)");
    if let (Some(f), true) = (folio, flush) {
        put_folio(k, &f);
    }
    true
}

/// `MM_CP_PROT_NUMA`.
pub const MM_CP_PROT_NUMA: u32 = 1 << 1;

/// `change_huge_pmd()` (v6.1). Returns 0 if the pmd was not huge any more
/// (the caller falls through to the pte level), else 1 or HPAGE_PMD_NR.
pub fn change_huge_pmd(
    k: &Kernel,
    mm: &MmStruct,
    pmd: &EntryRef,
    newprot: PgProt,
    cp_flags: u32,
) -> u64 {
    let _f = explore::enter("change_huge_pmd");
    let prot_numa = cp_flags & MM_CP_PROT_NUMA != 0;
    if prot_numa && !k.profile.knobs.thp_migration {
        return 1;
    }
    let Some(ptl) = pmd_trans_huge_lock(k, mm, pmd) else {
        return 0;
    };
    // v6.1 reads *pmd for this before the swap check (on a migration
    // entry pmd_write() sees the swap soft-dirty bit; unused there).
    let preserve_write = prot_numa
        && k.profile.knobs.numa_savedwrite
        && pmd_write(Pmd(pmd.read_locked(
            "change_huge_pmd: preserve_write = prot_numa && pmd_write(*pmd)",
        )));
    let cur = Pmd(pmd.read_locked("change_huge_pmd: *pmd under pmd lock"));
    if is_swap_pmd(cur) {
        explore::mark("change_huge_pmd: met a pmd migration entry (THP mid-migration)");
        change_huge_pmd_migration_entry(k, pmd, cur);
        ptl.unlock("spin_unlock(pmd_lock)");
        return 1;
    }
    if prot_numa && (is_huge_zero_pmd(k, cur) || pmd_protnone(cur)) {
        ptl.unlock("spin_unlock(pmd_lock)");
        return 1;
    }
    let mut entry = match k.profile.knobs.huge_update_style {
        HugeUpdateStyle::Invalidate => pmd_modify(Pmd(pmdp_invalidate(pmd)), newprot),
        HugeUpdateStyle::ClearThenSet => {
            pmd_modify(Pmd(pmd.xchg("pmdp_huge_get_and_clear_notify", 0)), newprot)
        }
    };
    if preserve_write {
        // pmd_mk_savedwrite(): on x86 the RW bit itself.
        entry = pmd_mkwrite(entry);
    }
    pmd.write("change_huge_pmd: set_pmd_at", pmd_val(entry));
    ptl.unlock("spin_unlock(pmd_lock)");
    HPAGE_PMD_NR
}

/// A writable migration entry becomes readable under mprotect/NUMA scan
/// ("a protection check is difficult so just be safe and disable write").
fn change_huge_pmd_migration_entry(k: &Kernel, pmd: &EntryRef, cur: Pmd) {
    let t = &k.profile.swap_types;
    let entry = pmd_to_swp_entry(cur);
    if !is_writable_migration_entry(t, entry) {
        return;
    }
    let anon = k
        .mem
        .pfn_folio(pfn_swap_entry_to_pfn(entry))
        .is_some_and(|f| f.kind.get() == FolioKind::Anon);
    let readable = readable_from_writable_migration_entry(t, entry, anon);
    let mut newpmd = swp_entry_to_pmd(readable);
    if pmd_swp_soft_dirty(cur) {
        newpmd = pmd_swp_mksoft_dirty(newpmd);
    }
    pmd.write(
        "change_huge_pmd: set_pmd_at (readable migration entry)",
        pmd_val(newpmd),
    );
}

/// The young and dirty bits of the entry a migration entry replaces,
/// folded into it (`make_migration_entry_young/dirty()`, 2e3468778dbe).
pub fn carry_young_dirty(t: &SwapTypes, entry: SwpEntry, young: bool, dirty: bool) -> SwpEntry {
    let entry = if young {
        make_migration_entry_young(entry, t.migration_ad)
    } else {
        entry
    };
    if dirty {
        make_migration_entry_dirty(entry, t.migration_ad)
    } else {
        entry
    }
}

/// `set_pmd_migration_entry()` (v6.1): replace a huge pmd mapping `folio` by
/// a migration entry. Called with the pmd lock held (page_vma_mapped_walk).
pub fn set_pmd_migration_entry(k: &Kernel, vma: &Vma, pmd: &EntryRef, folio: &Folio) {
    let _f = explore::enter("set_pmd_migration_entry");
    let pmdval = Pmd(pmdp_invalidate(pmd));
    let t = &k.profile.swap_types;
    let anon_exclusive = crate::rmap::take_anon_exclusive(k, folio);
    let entry = if pmd_write(pmdval) {
        make_writable_migration_entry(t, folio.pfn)
    } else if anon_exclusive {
        make_readable_exclusive_migration_entry(t, folio.pfn)
    } else {
        make_readable_migration_entry(t, folio.pfn)
    };
    let entry = carry_young_dirty(t, entry, pmd_young(pmdval), pmd_dirty(pmdval));
    let mut pmdswp = swp_entry_to_pmd(entry);
    if pmd_soft_dirty(pmdval) {
        pmdswp = pmd_swp_mksoft_dirty(pmdswp);
    }
    let _ = vma;
    pmd.write("set_pmd_migration_entry: set_pmd_at", pmd_val(pmdswp));
    page_remove_rmap(folio, true);
    put_folio(k, folio);
}

/// `remove_migration_pmd()` (v6.1): map `new` where the migration entry is.
/// Called with the pmd lock held.
pub fn remove_migration_pmd(k: &Kernel, vma: &Vma, pmd: &EntryRef, new: &Folio, address: u64) {
    let _f = explore::enter("remove_migration_pmd");
    let cur = Pmd(pmd.read_locked("remove_migration_pmd: *pvmw.pmd under pmd lock"));
    let entry = pmd_to_swp_entry(cur);
    get_folio(new);
    let mut pmde = mk_huge_pmd(new.pfn, vma.vm_page_prot.get());
    if pmd_swp_soft_dirty(cur) {
        pmde = pmd_mksoft_dirty(pmde);
    }
    let t = &k.profile.swap_types;
    if is_writable_migration_entry(t, entry) {
        pmde = maybe_pmd_mkwrite(pmde, vma);
    }
    if !is_migration_entry_young(entry, t.migration_ad) {
        pmde = pmd_mkold(pmde);
    }
    // PageDirty(new): folio_migrate_flags() copied the dirty flag that
    // set_pmd_migration_entry() set from the same pmd_dirty().
    if is_migration_entry_dirty(entry, t.migration_ad) {
        pmde = pmd_mkdirty(pmde);
    }
    page_add_anon_rmap(k, new, vma, address & HPAGE_PMD_MASK, true);
    new.anon_exclusive
        .set(crate::migrate::migration_entry_exclusive(t, entry));
    pmd.write("remove_migration_pmd: set_pmd_at", pmd_val(pmde));
}

/// Whether `v` is a huge pmd that maps (or migrates) pfns overlapping
/// `folio` (`check_pmd()` of page_vma_mapped.c).
pub fn pmd_maps_folio(k: &Kernel, v: Pmd, folio: &Folio, migration: bool) -> bool {
    let pfn = if migration {
        if !is_pmd_migration_entry(&k.profile.swap_types, v) {
            return false;
        }
        pfn_swap_entry_to_pfn(pmd_to_swp_entry(v))
    } else {
        if !(pmd_trans_huge(v) || pmd_devmap(v)) {
            return false;
        }
        pmd_pfn(v)
    };
    pfn + HPAGE_PMD_NR > folio.pfn && pfn < folio.pfn + folio.nr_pages()
}

/// `split_huge_pmd_address()` via `vma_adjust_trans_huge()` (v6.1): when a
/// VMA boundary moves to `address` inside a huge pmd the VMA covers, split
/// that pmd first, so no huge pmd ever straddles two VMAs.
pub fn vma_adjust_trans_huge(k: &Kernel, vma: &Vma, address: u64) {
    let haddr = address & HPAGE_PMD_MASK;
    if haddr == address || haddr < vma.start() || haddr + HPAGE_PMD_SIZE > vma.end() {
        return;
    }
    let Some(mm) = vma.mm.upgrade() else { return };
    let pgd = crate::pgtable::pgd_offset(&mm, address).read("split_huge_pmd_address: read *pgd");
    let Some(pud) = crate::pgtable::pud_offset(k, pgd, address) else {
        return;
    };
    let pud = pud.read("split_huge_pmd_address: read *pud");
    if let Some(pmd) = crate::pgtable::pmd_offset(k, pud, address) {
        split_huge_pmd(k, &mm, vma, &pmd, address);
    }
}
