//! Page migration for NUMA balancing: `migrate_misplaced_page()` →
//! `migrate_pages()` → `unmap_and_move()` → `__unmap_and_move()`, and
//! `remove_migration_ptes()`.
//!
//! Models mm/migrate.c (v6.1), for anonymous folios (small or PMD-sized).

use std::rc::Rc;

use crate::arch::x86::pgtable::{
    mk_huge_pmd, pfn_pte, pmd_mkdirty, pmd_mkwrite, pte_mkwrite, pte_val, Pmd, Pte, HPAGE_PMD_MASK,
};
use crate::arch::x86::swap::{is_writable_migration_entry, pte_to_swp_entry};
use crate::huge_memory::remove_migration_pmd;
use crate::memory::{get_folio, put_folio};
use crate::mm_types::{Folio, FolioKind, Kernel, Vma};
use crate::page_vma_mapped::{page_vma_mapped_walk, Mapped};
use crate::rmap::{page_add_anon_rmap, rmap_walk_anon, try_to_migrate};

/// `MIGRATEPAGE_SUCCESS` and the errors migration distinguishes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MigrateResult {
    Success,
    /// -EAGAIN: try again in a later pass.
    Again,
    /// -ENOMEM: no destination folio.
    NoMem,
}

/// Passes `migrate_pages()` makes over pages that returned -EAGAIN.
const MIGRATE_PASSES: u32 = 10;

/// `migrate_misplaced_page()` (v6.1). The caller holds a reference
/// (numa_migrate_prep); returns whether the folio moved to `node`.
pub fn migrate_misplaced_page(k: &Kernel, folio: &Rc<Folio>, _vma: &Vma, node: u32) -> bool {
    let _f = explore::enter("migrate_misplaced_page");
    if !numamigrate_isolate_page(k, folio) {
        put_folio(k, folio);
        return false;
    }
    let rc = migrate_pages(k, folio, node);
    if rc != MigrateResult::Success {
        putback_lru_page(k, folio);
        return false;
    }
    true
}

/// `numamigrate_isolate_page()`: take the folio off the LRU (with a
/// reference of its own) and drop the caller's reference.
fn numamigrate_isolate_page(k: &Kernel, folio: &Folio) -> bool {
    if !folio.lru.get() {
        return false;
    }
    folio.lru.set(false);
    get_folio(folio);
    put_folio(k, folio);
    true
}

/// `putback_lru_page()`: back on the LRU, drop the isolation reference.
fn putback_lru_page(k: &Kernel, folio: &Folio) {
    folio.lru.set(true);
    put_folio(k, folio);
}

/// `migrate_pages(..., MIGRATE_ASYNC, MR_NUMA_MISPLACED)` for one folio.
fn migrate_pages(k: &Kernel, folio: &Rc<Folio>, node: u32) -> MigrateResult {
    let _f = explore::enter("migrate_pages");
    let mut rc = MigrateResult::Again;
    for _pass in 0..MIGRATE_PASSES {
        rc = unmap_and_move(k, folio, node);
        if rc != MigrateResult::Again {
            break;
        }
    }
    rc
}

/// `unmap_and_move()` (v6.1).
fn unmap_and_move(k: &Kernel, folio: &Rc<Folio>, node: u32) -> MigrateResult {
    let _f = explore::enter("unmap_and_move");
    if folio
        .refcount
        .read("unmap_and_move: folio_ref_count(src) == 1")
        == 1
    {
        // Freed under us: only the isolation reference is left, and
        // migrate_folio_done() drops it.
        put_folio(k, folio);
        return MigrateResult::Success;
    }
    let Some(new) = k.mem.alloc_pages(node, folio.order, FolioKind::Anon) else {
        explore::mark("migrate: no destination folio");
        return MigrateResult::NoMem;
    };
    let rc = unmap_and_move_locked(k, folio, &new);
    if rc == MigrateResult::Success {
        explore::mark(if folio.order == 0 {
            "migrate: small folio moved"
        } else {
            "migrate: THP moved"
        });
        // The isolation reference: the source is freed with it.
        put_folio(k, folio);
    } else {
        put_folio(k, &new);
    }
    rc
}

/// `__unmap_and_move()` (v6.1, MIGRATE_ASYNC).
fn unmap_and_move_locked(k: &Kernel, src: &Rc<Folio>, dst: &Rc<Folio>) -> MigrateResult {
    let _f = explore::enter("__unmap_and_move");
    if !src.lock.try_lock("folio_trylock(src)") {
        return MigrateResult::Again;
    }
    if !dst.lock.try_lock("folio_trylock(dst)") {
        src.lock.unlock("folio_unlock(src)");
        return MigrateResult::Again;
    }
    // An anonymous folio's anon_vma must outlive the migration entries.
    let anon_vma = crate::rmap::folio_get_anon_vma(k, src);
    let was_mapped = src.mapcount.read("__unmap_and_move: folio_mapped(src)") > 0;
    if was_mapped {
        try_to_migrate(k, src);
    }
    let mut rc = MigrateResult::Again;
    if src.mapcount.read("__unmap_and_move: !folio_mapped(src)") == 0 {
        rc = move_to_new_folio(src, dst);
    }
    if was_mapped {
        let target = if rc == MigrateResult::Success {
            dst
        } else {
            src
        };
        remove_migration_ptes(k, src, target);
    }
    dst.lock.unlock("folio_unlock(dst)");
    if let Some(av) = anon_vma {
        crate::rmap::put_anon_vma(k, &av);
    }
    src.lock.unlock("folio_unlock(src)");
    if rc == MigrateResult::Success {
        dst.lru.set(true);
        put_folio(k, dst);
    }
    rc
}

/// `move_to_new_folio()` → `migrate_folio()`: refuse if someone else holds
/// a reference (`folio_migrate_mapping` refcount check), else copy the data
/// and the mapping.
fn move_to_new_folio(src: &Folio, dst: &Folio) -> MigrateResult {
    let _f = explore::enter("move_to_new_folio");
    if src
        .refcount
        .read("folio_migrate_mapping: folio_ref_count(src) != expected")
        != 1
    {
        explore::mark("migrate: extra reference, -EAGAIN");
        return MigrateResult::Again;
    }
    *dst.data.borrow_mut() = src.data.borrow().clone();
    dst.anon_vma.write(
        "folio_migrate_mapping: newfolio->mapping = folio->mapping",
        src.anon_vma.peek(),
    );
    dst.index.set(src.index.get());
    dst.last_cpupid_nid.set(src.last_cpupid_nid.get());
    explore::note!(
        "folio_migrate_copy: pfn {:#x} -> pfn {:#x} (node {} -> {})",
        src.pfn,
        dst.pfn,
        src.node,
        dst.node
    );
    MigrateResult::Success
}

/// `remove_migration_ptes(src, dst)`: replace the migration entries that
/// point to `src` by mappings of `dst` (which is `src` after a failure).
pub fn remove_migration_ptes(k: &Kernel, src: &Folio, dst: &Folio) {
    let _f = explore::enter("remove_migration_ptes");
    rmap_walk_anon(dst, |vma, addr| {
        page_vma_mapped_walk(k, src, vma, addr, true, &mut |m: &Mapped| match m {
            Mapped::Pmd(pmd) => remove_migration_pmd(k, vma, pmd, dst, addr),
            Mapped::Pte(pte, at) => remove_migration_pte(k, vma, pte, src, dst, *at),
        });
        true
    });
}

/// The pte branch of `remove_migration_pte()` (v6.1).
fn remove_migration_pte(
    k: &Kernel,
    vma: &Vma,
    pte: &crate::pgtable::EntryRef,
    src: &Folio,
    dst: &Folio,
    at: u64,
) {
    let cur = Pte(pte.read_locked("remove_migration_pte: *pvmw.pte under ptl"));
    let entry = pte_to_swp_entry(cur);
    let sub = crate::arch::x86::swap::pfn_swap_entry_to_pfn(entry) - src.pfn;
    get_folio(dst);
    let t = &k.profile.swap_types;
    let mut v = pfn_pte(dst.pfn + sub, vma.vm_page_prot.get());
    if is_writable_migration_entry(t, entry)
        && vma.flags() & crate::mm_types::vm_flags::VM_WRITE != 0
    {
        v = pte_mkwrite(v);
    }
    use crate::arch::x86::pgtable::{pte_mkdirty, pte_mkold};
    use crate::arch::x86::swap::{is_migration_entry_dirty, is_migration_entry_young};
    if !is_migration_entry_young(entry, t.migration_ad) {
        v = pte_mkold(v);
    }
    if is_migration_entry_dirty(entry, t.migration_ad) {
        v = pte_mkdirty(v);
    }
    page_add_anon_rmap(k, dst, vma, at, false);
    dst.anon_exclusive.set(migration_entry_exclusive(t, entry));
    pte.write("remove_migration_pte: set_pte_at", pte_val(v));
}

/// remove_migration_pte's `RMAP_EXCLUSIVE` (v6.1): a writable or
/// readable-exclusive migration entry gives the page back its
/// `PageAnonExclusive`, which try_to_migrate_one moved into the entry; a
/// readable one (a page fork had shared) leaves it clear.
pub fn migration_entry_exclusive(
    t: &crate::arch::x86::swap::SwapTypes,
    entry: crate::arch::x86::swap::SwpEntry,
) -> bool {
    use crate::arch::x86::swap::{migration_kind, MigrationKind};
    matches!(
        migration_kind(t, entry),
        Some(MigrationKind::Write | MigrationKind::ReadExclusive)
    )
}

/// `migration_entry_wait_on_locked()`: a fault found a migration entry and
/// sleeps until the migrating folio is unlocked.
pub fn migration_entry_wait_on_locked(folio: &Folio) {
    let _f = explore::enter("migration_entry_wait_on_locked");
    folio.lock.wait_unlocked("folio_wait_bit(PG_locked)");
}

/// `migrate_misplaced_transhuge_page()` (v5.5, removed by c5fc5c3ae0c8):
/// copy under the page lock, then under the pmd lock replace the PROT_NONE
/// pmd by the new huge pmd if it did not change and nobody else holds a
/// reference (`page_ref_freeze(page, 2)`). Called with `folio` locked and a
/// reference taken by the fault; unlocks and drops both. [M]
pub fn migrate_misplaced_transhuge_page(
    vmf: &crate::memory::VmFault<'_>,
    folio: &Rc<Folio>,
    entry: Pmd,
    node: u32,
) {
    let _f = explore::enter("migrate_misplaced_transhuge_page");
    let (k, vma) = (vmf.k, vmf.vma);
    let haddr = vmf.address & HPAGE_PMD_MASK;
    let Some(new) = k.mem.alloc_pages(node, folio.order, FolioKind::Anon) else {
        misplaced_out_fail(vmf, folio, entry);
        return;
    };
    if !numamigrate_isolate_page(k, folio) {
        put_folio(k, &new);
        misplaced_out_fail(vmf, folio, entry);
        return;
    }
    new.lock.try_lock("__SetPageLocked(new_page)");
    new.anon_vma.write(
        "migrate_page_copy: new_page->mapping = page->mapping",
        folio.anon_vma.peek(),
    );
    new.index.set(folio.index.get());
    *new.data.borrow_mut() = folio.data.borrow().clone();
    explore::note!(
        "migrate_page_copy: pfn {:#x} -> pfn {:#x} (node {} -> {})",
        folio.pfn,
        new.pfn,
        folio.node,
        new.node
    );
    let ptl = crate::pgtable::pmd_lock(k, vmf.mm(), &vmf.pmd);
    if vmf
        .pmd
        .read_locked("migrate_misplaced_transhuge_page: pmd_same(*pmd, entry) under pmd lock")
        != entry.0
        || folio
            .refcount
            .read("migrate_misplaced_transhuge_page: page_count(page) != 2")
            != 2
    {
        ptl.unlock("spin_unlock(pmd_lock)");
        new.lock.unlock("unlock_page(new_page)");
        put_folio(k, &new);
        putback_lru_page(k, folio);
        get_folio(folio);
        folio.lock.unlock("unlock_page");
        put_folio(k, folio);
        return;
    }
    let v = mk_huge_pmd(new.pfn, vma.vm_page_prot.get());
    let v = if vma.flags() & crate::mm_types::vm_flags::VM_WRITE != 0 {
        pmd_mkwrite(pmd_mkdirty(v))
    } else {
        pmd_mkdirty(v)
    };
    page_add_anon_rmap(k, &new, vma, haddr, true);
    vmf.pmd
        .write("migrate_misplaced_transhuge_page: set_pmd_at", v.0);
    explore::mark("migrate_misplaced_transhuge_page: THP moved");
    crate::rmap::page_remove_rmap(folio, true);
    ptl.unlock("spin_unlock(pmd_lock)");
    new.lru.set(true);
    new.lock.unlock("unlock_page(new_page)");
    folio.lock.unlock("unlock_page");
    put_folio(k, folio);
    put_folio(k, folio);
}

/// `out_fail:` of migrate_misplaced_transhuge_page: make the pmd accessible
/// again if unchanged, unlock and drop the fault's reference.
fn misplaced_out_fail(vmf: &crate::memory::VmFault<'_>, folio: &Folio, entry: Pmd) {
    let k = vmf.k;
    let ptl = crate::pgtable::pmd_lock(k, vmf.mm(), &vmf.pmd);
    if vmf
        .pmd
        .read_locked("migrate_misplaced_transhuge_page: pmd_same(*pmd, entry) on failure")
        == entry.0
    {
        let v = crate::arch::x86::pgtable::pmd_modify(entry, vmf.vma.vm_page_prot.get());
        vmf.pmd.write(
            "migrate_misplaced_transhuge_page: restore pmd (out_fail)",
            v.0,
        );
    }
    ptl.unlock("spin_unlock(pmd_lock)");
    folio.lock.unlock("unlock_page");
    put_folio(k, folio);
}
