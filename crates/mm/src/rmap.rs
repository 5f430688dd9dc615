//! Reverse mapping of anonymous folios: `anon_vma_prepare()`, the
//! mapcount helpers, `rmap_walk_anon()` and `try_to_migrate()`.
//!
//! Models mm/rmap.c (v6.1): VMAs and anon_vmas are linked by
//! `anon_vma_chain` objects (`anon_vma_chain_link()`), on the VMA's
//! `same_vma` list and the anon_vma's tree; rmap walks go from the folio's
//! anon_vma through its avcs to the VMAs.

use std::rc::Rc;

use crate::arch::x86::pgtable::{pte_pfn, pte_val, pte_write, Pte};
use crate::arch::x86::swap::{
    make_readable_exclusive_migration_entry, make_readable_migration_entry,
    make_writable_migration_entry, swp_entry_to_pte,
};
use crate::huge_memory::set_pmd_migration_entry;
use crate::memory::put_folio;
use crate::mm_types::{AnonVma, AnonVmaChain, Folio, Kernel, Vma, PAGE_SHIFT};
use crate::page_vma_mapped::{page_vma_mapped_walk, Mapped};
use crate::pgtable::Ptl;
use explore::sync::Lifetime;

/// `anon_vma_chain_alloc()`: a fresh avc linking `vma` and `anon_vma`
/// (the kernel fills the fields in `anon_vma_chain_link()`; they never
/// change afterwards, so the model sets them here).
fn anon_vma_chain_alloc(k: &Kernel, vma: &Vma, anon_vma: &Rc<AnonVma>) -> Rc<AnonVmaChain> {
    let id = k.next_id();
    Rc::new(AnonVmaChain {
        id,
        vma: vma.this.clone(),
        anon_vma: anon_vma.clone(),
        life: Lifetime::new("anon_vma_chain", id),
    })
}

/// `anon_vma_chain_free()`.
fn anon_vma_chain_free(avc: &AnonVmaChain) {
    avc.life.free("anon_vma_chain_free");
}

/// `anon_vma_chain_link()` (v2.6.34, v6.1): the avc goes to the head of
/// the VMA's `same_vma` list and to the anon_vma's `same_anon_vma` list
/// (its tail in v2.6.34; the interval tree in v6.1), which the caller
/// holds locked.
fn anon_vma_chain_link(
    vma: &Vma,
    avc: &Rc<AnonVmaChain>,
    same_anon_vma: &mut Vec<Rc<AnonVmaChain>>,
) {
    vma.anon_vma_chain.borrow_mut().insert(0, avc.clone());
    same_anon_vma.push(avc.clone());
}

/// `anon_vma_prepare()` (v6.1): give the VMA an anon_vma before its first
/// anonymous folio, reusing a compatible neighbour's
/// (`find_mergeable_anon_vma()`). Returns false on allocation failure.
/// When a racing fault set `vma->anon_vma` first, the avc and a newly
/// allocated anon_vma go unused and are freed.
pub fn anon_vma_prepare(k: &Kernel, vma: &Vma) -> bool {
    if vma.anon_vma.get().is_some() {
        return true;
    }
    let _f = explore::enter("__anon_vma_prepare");
    let Some(mm) = vma.mm.upgrade() else {
        return false;
    };
    // The caller holds mmap_lock for reading: the VMA list is stable.
    let (anon_vma, allocated) = match crate::vma::find_mergeable_anon_vma(mm.mmap_lock.peek(), vma)
    {
        Some(near) => (near, false),
        None => (Rc::new(AnonVma::new(k.next_id())), true),
    };
    let avc = anon_vma_chain_alloc(k, vma, &anon_vma);
    let mut list = anon_vma.rwsem.write("anon_vma_lock_write");
    let ptl = Ptl::lock(
        mm.page_table_lock.clone(),
        "spin_lock(&mm->page_table_lock)",
    );
    let linked = vma.anon_vma.get().is_none();
    if linked {
        let _ = vma.anon_vma.set(anon_vma.clone());
        anon_vma_chain_link(vma, &avc, &mut list);
    }
    ptl.unlock("spin_unlock(&mm->page_table_lock)");
    list.unlock("anon_vma_unlock_write");
    if !linked {
        if allocated {
            put_anon_vma(&anon_vma);
        }
        anon_vma_chain_free(&avc);
    }
    true
}

/// `anon_vma_clone()` (v6.1; v2.6.34 by knob): `dst` (split off, copied or
/// merged from `src`) is linked into every anon_vma of `src`'s chain, each
/// write-locked while its avc goes in, and shares `src`'s anon_vma (the
/// kernel's `vm_area_dup()` copied the pointer). The source chain is walked
/// in reverse since 646d87b481da, so that head insertion keeps its order;
/// v2.6.34-rc3 walked it forward (`anon_vma_clone_reverse` off).
pub fn anon_vma_clone(k: &Kernel, dst: &Vma, src: &Vma) {
    let Some(av) = src.anon_vma.get() else { return };
    link_into_chain_of(k, dst, src);
    let _ = dst.anon_vma.set(av.clone());
}

/// The loop of `anon_vma_clone()`: one avc per entry of `src`'s chain,
/// linked into `dst` under that entry's anon_vma lock.
fn link_into_chain_of(k: &Kernel, dst: &Vma, src: &Vma) {
    let mut chain = src.anon_vma_chain.borrow().clone();
    if k.profile.knobs.anon_vma_clone_reverse {
        chain.reverse();
    }
    for pavc in &chain {
        pavc.life.assert_live("anon_vma_clone: pavc");
        let avc = anon_vma_chain_alloc(k, dst, &pavc.anon_vma);
        let mut list = pavc.anon_vma.rwsem.write("anon_vma_lock_write");
        anon_vma_chain_link(dst, &avc, &mut list);
        list.unlock("anon_vma_unlock_write");
    }
}

/// `anon_vma_fork()` (v6.1): a child VMA joins its parent's chain (it maps
/// the parent's pages copy-on-write) and gets an anon_vma of its own for
/// the pages it will copy, linked last and so at the head of its chain.
/// Nothing to do for a parent without one.
pub fn anon_vma_fork(k: &Kernel, child: &Vma, parent: &Vma) {
    let Some(pav) = parent.anon_vma.get() else {
        return;
    };
    let root = pav.root.clone().unwrap_or_else(|| pav.clone());
    // anon_vma_clone(vma, pvma) with vma->anon_vma cleared: the child does
    // not share the parent's anon_vma.
    link_into_chain_of(k, child, parent);
    get_anon_vma(&root);
    let own = Rc::new(AnonVma::with_root(k.next_id(), Some(root)));
    let avc = anon_vma_chain_alloc(k, child, &own);
    let mut list = own.rwsem.write("anon_vma_lock_write");
    let _ = child.anon_vma.set(own.clone());
    anon_vma_chain_link(child, &avc, &mut list);
    list.unlock("anon_vma_unlock_write");
}

/// Whether the VMA was forked from a parent whose pages it may still map
/// (`vma_had_uncowed_parents()`: an anon_vma chain longer than one).
pub fn vma_had_uncowed_parents(vma: &Vma) -> bool {
    vma.anon_vma.get().is_some() && vma.anon_vma_chain.borrow().len() > 1
}

/// `unlink_anon_vmas()` (v6.1): the VMA's avcs leave their anon_vmas, each
/// write-locked; an avc whose anon_vma keeps other VMAs is freed at once.
/// Then each anon_vma left empty loses the reference its VMAs held
/// (`put_anon_vma()` after the locks are dropped) and its avc is freed.
pub fn unlink_anon_vmas(vma: &Vma) {
    let chain = std::mem::take(&mut *vma.anon_vma_chain.borrow_mut());
    let mut emptied = Vec::new();
    for avc in chain {
        avc.life.assert_live("unlink_anon_vmas: avc");
        let av = &avc.anon_vma;
        av.life.assert_live("unlink_anon_vmas: avc->anon_vma");
        let mut list = av.rwsem.write("anon_vma_lock_write");
        list.retain(|a| !Rc::ptr_eq(a, &avc));
        let empty = list.is_empty();
        list.unlock("anon_vma_unlock_write");
        if empty {
            emptied.push(avc);
        } else {
            anon_vma_chain_free(&avc);
        }
    }
    for avc in emptied {
        put_anon_vma(&avc.anon_vma);
        anon_vma_chain_free(&avc);
    }
}

/// `get_anon_vma()`: a reference the holder already has a right to.
pub fn get_anon_vma(av: &AnonVma) {
    av.life.assert_live("get_anon_vma");
    av.refcount
        .add_return("get_anon_vma: atomic_inc(&anon_vma->refcount)", 1);
}

/// `put_anon_vma()` (v6.1): the last reference frees the anon_vma
/// (`__put_anon_vma`), and with it the child's reference on its root.
pub fn put_anon_vma(av: &AnonVma) {
    let left = av
        .refcount
        .add_return("put_anon_vma: atomic_dec_and_test(&anon_vma->refcount)", -1);
    if left != 0 {
        return;
    }
    av.life.free("__put_anon_vma: anon_vma_free");
    if let Some(root) = &av.root {
        put_anon_vma(root);
    }
}

/// `folio_get_anon_vma()` (v6.1): pin the anon_vma of a folio that is not
/// locked against unmapping. Under RCU it reads `folio->mapping` and
/// `folio_mapped()` locklessly, takes a reference unless the count is
/// already zero (the anon_vma is being freed), and re-checks
/// `folio_mapped()`: an unmapped folio's anon_vma may be gone.
pub fn folio_get_anon_vma(folio: &Folio) -> Option<Rc<AnonVma>> {
    let _f = explore::enter("folio_get_anon_vma");
    let av = folio
        .anon_vma
        .read("folio_get_anon_vma: READ_ONCE(folio->mapping)")?;
    if folio.mapcount.read("folio_get_anon_vma: folio_mapped()") <= 0 {
        return None;
    }
    if !av
        .refcount
        .inc_not_zero("folio_get_anon_vma: atomic_inc_not_zero(&anon_vma->refcount)")
    {
        return None;
    }
    if folio
        .mapcount
        .read("folio_get_anon_vma: folio_mapped() again")
        <= 0
    {
        put_anon_vma(&av);
        return None;
    }
    Some(av)
}

/// `page_add_new_anon_rmap()`: first mapping of a new exclusive folio.
pub fn page_add_new_anon_rmap(folio: &Folio, vma: &Vma, address: u64) {
    folio.mapcount.set(
        "page_add_new_anon_rmap: atomic_set(&folio->_mapcount, 0)",
        1,
    );
    folio.anon_vma.write(
        "__page_set_anon_rmap: WRITE_ONCE(folio->mapping)",
        vma.anon_vma.get().cloned(),
    );
    folio.index.set(vma.linear_page_index(address));
}

/// `page_add_anon_rmap()`: one more mapping of an anonymous folio
/// (`compound` for a PMD mapping).
pub fn page_add_anon_rmap(folio: &Folio, vma: &Vma, address: u64, _compound: bool) {
    if folio.mapcount.peek() == 0 && folio.anon_vma.peek().is_none() {
        // A folio nobody else can reach yet (the new folio of a migration
        // mapped for the first time).
        page_add_new_anon_rmap(folio, vma, address);
        return;
    }
    folio.mapcount.add_return(
        "page_add_anon_rmap: atomic_inc_and_test(&folio->_mapcount)",
        1,
    );
}

/// `page_remove_rmap()`: one mapping fewer.
pub fn page_remove_rmap(folio: &Folio, _compound: bool) {
    let m = folio.mapcount.add_return(
        "page_remove_rmap: atomic_add_negative(-1, &folio->_mapcount)",
        -1,
    );
    if m < 0 {
        explore::oops(crate::debug::bad_page(
            folio,
            "nonzero mapcount: page_remove_rmap underflow",
        ));
    }
}

/// `vma_address()`: where `folio` would be mapped in `vma`, if inside it.
pub fn vma_address(folio: &Folio, vma: &Vma) -> Option<u64> {
    let pgoff = folio.index.get();
    let start = vma.vm_pgoff.get();
    let npages = (vma.end() - vma.start()) >> PAGE_SHIFT;
    if pgoff + folio.nr_pages() <= start || pgoff >= start + npages {
        return None;
    }
    let addr = vma.start() as i128 + (((pgoff as i128) - start as i128) << PAGE_SHIFT);
    Some(addr.max(vma.start() as i128) as u64)
}

/// `rmap_walk_anon()` (v6.1): visit every VMA that may map `folio`, with
/// the anon_vma read-locked. `visit` returns false to stop early.
pub fn rmap_walk_anon(folio: &Folio, mut visit: impl FnMut(&Vma, u64) -> bool) {
    let _f = explore::enter("rmap_walk_anon");
    // The caller holds the folio lock and a reference on the anon_vma
    // (folio_get_anon_vma), so folio->mapping is stable and alive.
    let Some(av) = folio.anon_vma.peek() else {
        return;
    };
    av.life.assert_live("rmap_walk_anon: anon_vma_lock_read");
    let list = av.rwsem.read("anon_vma_lock_read");
    let avcs: Vec<Rc<AnonVmaChain>> = list.clone();
    for avc in avcs {
        avc.life.assert_live("rmap_walk_anon: avc");
        let Some(vma) = linked_vma(&avc) else {
            continue;
        };
        vma.life.assert_live("rmap_walk_anon: avc->vma");
        if let Some(addr) = vma_address(folio, &vma) {
            if !visit(&vma, addr) {
                break;
            }
        }
    }
    list.unlock("anon_vma_unlock_read");
}

/// The VMA an avc on an anon_vma's tree links. A VMA freed while an avc
/// still points to it (freed without `unlink_anon_vmas()`) is a use after
/// free of `avc->vma`.
fn linked_vma(avc: &AnonVmaChain) -> Option<Rc<Vma>> {
    let vma = avc.vma.upgrade();
    if vma.is_none() {
        explore::raise(
            explore::Finding::new(
                explore::FindingKind::Kernel,
                "KASAN",
                "BUG: KASAN: use-after-free in rmap_walk_anon",
            )
            .detail("an anon_vma tree links a VMA that was freed without unlink_anon_vmas()"),
        );
    }
    vma
}

/// `try_to_migrate()` (v6.1): replace every mapping of `folio` by a
/// migration entry.
pub fn try_to_migrate(k: &Kernel, folio: &Folio) {
    let _f = explore::enter("try_to_migrate");
    rmap_walk_anon(folio, |vma, addr| {
        try_to_migrate_one(k, folio, vma, addr);
        folio.mapcount.read("try_to_migrate: folio_mapped()") > 0
    });
}

/// `try_to_migrate_one()` (v6.1).
fn try_to_migrate_one(k: &Kernel, folio: &Folio, vma: &Vma, address: u64) {
    let _f = explore::enter("try_to_migrate_one");
    page_vma_mapped_walk(k, folio, vma, address, false, &mut |m: &Mapped| match m {
        Mapped::Pmd(pmd) => set_pmd_migration_entry(k, vma, pmd, folio),
        Mapped::Pte(pte, _) => set_pte_migration_entry(k, pte, folio),
    });
}

/// The pte branch of try_to_migrate_one: clear, then install a migration
/// entry for the subpage, then drop the mapping.
fn set_pte_migration_entry(k: &Kernel, pte: &crate::pgtable::EntryRef, folio: &Folio) {
    let pteval = Pte(pte.xchg("ptep_clear_flush", 0));
    let t = &k.profile.swap_types;
    let pfn = pte_pfn(pteval);
    let entry = if pte_write(pteval) {
        make_writable_migration_entry(t, pfn)
    } else if t.migration_read_exclusive.is_some() {
        make_readable_exclusive_migration_entry(t, pfn)
    } else {
        make_readable_migration_entry(t, pfn)
    };
    let entry = crate::huge_memory::carry_young_dirty(
        t,
        entry,
        crate::arch::x86::pgtable::pte_young(pteval),
        crate::arch::x86::pgtable::pte_dirty(pteval),
    );
    pte.write(
        "try_to_migrate_one: set_pte_at (migration entry)",
        pte_val(swp_entry_to_pte(entry)),
    );
    page_remove_rmap(folio, false);
    put_folio(k, folio);
}
