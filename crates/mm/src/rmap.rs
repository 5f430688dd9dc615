//! Reverse mapping of anonymous folios: `anon_vma_prepare()`, the
//! mapcount helpers, `rmap_walk_anon()` and `try_to_migrate()`.
//!
//! Models mm/rmap.c (v6.1): VMAs and anon_vmas are linked by
//! `anon_vma_chain` objects (`anon_vma_chain_link()`), on the VMA's
//! `same_vma` list and the anon_vma's tree; rmap walks go from the folio's
//! anon_vma through its avcs to the VMAs.

use std::rc::Rc;

use crate::arch::x86::pgtable::{pte_mkold, pte_val, pte_write, pte_young, Pte};
use crate::arch::x86::swap::{
    make_readable_exclusive_migration_entry, make_readable_migration_entry,
    make_writable_migration_entry, swp_entry_to_pte,
};
use crate::huge_memory::set_pmd_migration_entry;
use crate::memory::put_folio;
use crate::mm_types::{AnonVma, AnonVmaChain, Folio, Kernel, Vma, PAGE_SHIFT};
use crate::page_vma_mapped::{page_vma_mapped_walk, Mapped};
use crate::pgtable::{EntryRef, Ptl};
use crate::profile::SetAnonRmap;
use explore::sync::Lifetime;

/// `anon_vma_chain_alloc()`: a fresh avc linking `vma` and `anon_vma`
/// (the kernel fills the fields in `anon_vma_chain_link()`; they never
/// change afterwards, so the model sets them here). With fault injection
/// (`fail_slab_alloc`, CONFIG_FAILSLAB) the allocation may fail.
fn anon_vma_chain_alloc(k: &Kernel, vma: &Vma, anon_vma: &Rc<AnonVma>) -> Option<Rc<AnonVmaChain>> {
    if !explore::sync::alloc("anon_vma_chain_alloc", k.profile.knobs.fail_slab_alloc) {
        return None;
    }
    let id = k.next_id();
    let avc = Rc::new(AnonVmaChain {
        id,
        vma: vma.this.clone(),
        anon_vma: anon_vma.clone(),
        life: Lifetime::new("anon_vma_chain", id),
    });
    crate::kmemleak::kmemleak_alloc(k, crate::kmemleak::Object::Avc(avc.clone()));
    Some(avc)
}

/// `anon_vma_alloc()` from `anon_vma_cachep`: refcount 1, no root (v2.6.34
/// has none; v6.1's own root is itself). May fail under fault injection.
///
/// `anon_vma_cachep` is SLAB_DESTROY_BY_RCU: in the 2.6.34-era profiles
/// (no `anon_vma->root`) the allocation may also hand out the most
/// recently freed anon_vma again (an explored choice; the default is a
/// fresh object), so that a stale `page->mapping` leads to another,
/// live anon_vma: the silent wrong walk of seed-bugs.md §3.2.
fn anon_vma_alloc(k: &Kernel, root: Option<Rc<AnonVma>>) -> Option<Rc<AnonVma>> {
    if !explore::sync::alloc("anon_vma_alloc", k.profile.knobs.fail_slab_alloc) {
        return None;
    }
    if let Some(av) = reuse_freed_anon_vma(k, &root) {
        return Some(av);
    }
    let av = Rc::new(AnonVma::with_root(k.next_id(), root));
    crate::kmemleak::kmemleak_alloc(k, crate::kmemleak::Object::AnonVma(av.clone()));
    Some(av)
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

/// `anon_vma_prepare()` (v2.6.34, v6.1): give the VMA an anon_vma before
/// its first anonymous folio, reusing a compatible neighbour's
/// (`find_mergeable_anon_vma()`). Returns false on allocation failure
/// (the avc is allocated first, then the anon_vma). When a racing fault
/// set `vma->anon_vma` first, the avc and a newly allocated anon_vma go
/// unused and are freed (31f2b0ebc01f's form; rc3 leaked the avc when the
/// anon_vma was a neighbour's — a leak only, not modelled).
pub fn anon_vma_prepare(k: &Kernel, vma: &Vma) -> bool {
    if vma.anon_vma.get().is_some() {
        return true;
    }
    let _f = explore::enter("__anon_vma_prepare");
    let Some(mm) = vma.mm.upgrade() else {
        return false;
    };
    // The caller holds mmap_lock for reading: the VMA list is stable.
    let near = crate::vma::find_mergeable_anon_vma(k, mm.mmap_lock.peek(), vma);
    let (anon_vma, allocated) = match near {
        Some(near) => (near, false),
        None => match anon_vma_alloc(k, None) {
            Some(av) => (av, true),
            None => return false,
        },
    };
    let Some(avc) = anon_vma_chain_alloc(k, vma, &anon_vma) else {
        if allocated {
            put_anon_vma(k, &anon_vma);
        }
        return false;
    };
    let mut list = anon_vma.rwsem.write(anon_vma_lock_label(k));
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
    list.unlock(anon_vma_unlock_label(k));
    if !linked {
        if allocated {
            put_anon_vma(k, &anon_vma);
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
/// Returns false (`-ENOMEM`) if an avc cannot be allocated; `dst` is then
/// unlinked from what was cloned so far.
pub fn anon_vma_clone(k: &Kernel, dst: &Vma, src: &Vma) -> bool {
    let Some(av) = src.anon_vma.get() else {
        return true;
    };
    if !link_into_chain_of(k, dst, src) {
        return false;
    }
    let _ = dst.anon_vma.set(av.clone());
    true
}

/// `anon_vma_clone()` from a caller whose `-ENOMEM` path the model does
/// not have (only fault injection, `fail_slab_alloc`, makes it fail).
pub fn anon_vma_clone_or_unsupported(k: &Kernel, dst: &Vma, src: &Vma, caller: &str) {
    if !anon_vma_clone(k, dst, src) {
        explore::unsupported(format!(
            "-ENOMEM from anon_vma_clone() in {caller}: that error path is not modelled"
        ));
    }
}

/// The loop of `anon_vma_clone()`: one avc per entry of `src`'s chain,
/// linked into `dst` under that entry's anon_vma lock. On allocation
/// failure it unlinks `dst` (`enomem_failure: unlink_anon_vmas(dst)`) and
/// returns false.
pub(crate) fn link_into_chain_of(k: &Kernel, dst: &Vma, src: &Vma) -> bool {
    let _f = explore::enter("anon_vma_clone");
    let mut chain = src.anon_vma_chain.borrow().clone();
    if k.profile.knobs.anon_vma_clone_reverse {
        chain.reverse();
    }
    for pavc in &chain {
        pavc.life.assert_live("anon_vma_clone: pavc");
        let Some(avc) = anon_vma_chain_alloc(k, dst, &pavc.anon_vma) else {
            unlink_anon_vmas(k, dst);
            return false;
        };
        let mut list = pavc.anon_vma.rwsem.write(anon_vma_lock_label(k));
        anon_vma_chain_link(dst, &avc, &mut list);
        list.unlock(anon_vma_unlock_label(k));
    }
    true
}

/// The anon_vma lock as the era names it: 2.6.34's `anon_vma->lock`
/// spinlock became a mutex in 2.6.39 and an rwsem in 3.8 (modelled by the
/// rwsem, always taken for writing in 2.6.34).
fn anon_vma_lock_label(k: &Kernel) -> &'static str {
    if k.profile.knobs.anon_vma_root {
        "anon_vma_lock_write"
    } else {
        "spin_lock(&anon_vma->lock)"
    }
}

fn anon_vma_unlock_label(k: &Kernel) -> &'static str {
    if k.profile.knobs.anon_vma_root {
        "anon_vma_unlock_write"
    } else {
        "spin_unlock(&anon_vma->lock)"
    }
}

/// `anon_vma_fork()` (v2.6.34, v6.1): a child VMA joins its parent's
/// chain (it maps the parent's pages copy-on-write) and gets an anon_vma
/// of its own for the pages it will copy, linked last and so at the head
/// of its chain. Nothing to do for a parent without one. Returns false
/// (`-ENOMEM`) if an allocation fails: since 4946d54cb55e
/// (`anon_vma_fork_unlink_on_error`) the avcs cloned so far are unlinked
/// first; before, they stay on the parent's anon_vmas.
/// With `anon_vma_root` (v2.6.36) the new anon_vma records the parent's
/// root and holds a reference on it.
pub fn anon_vma_fork(k: &Kernel, child: &Vma, parent: &Vma) -> bool {
    let Some(pav) = parent.anon_vma.get() else {
        return true;
    };
    let _f = explore::enter("anon_vma_fork");
    // anon_vma_clone(vma, pvma) with vma->anon_vma cleared: the child does
    // not share the parent's anon_vma.
    if !link_into_chain_of(k, child, parent) {
        return false;
    }
    let root = k
        .profile
        .knobs
        .anon_vma_root
        .then(|| pav.root.clone().unwrap_or_else(|| pav.clone()));
    let Some(own) = anon_vma_alloc(k, root.clone()) else {
        return anon_vma_fork_failed(k, child);
    };
    let Some(avc) = anon_vma_chain_alloc(k, child, &own) else {
        // out_error_free_anon_vma: its root reference is not taken yet.
        own.refcount
            .add_return("anon_vma_fork: out_error_free_anon_vma", -1);
        anon_vma_free(k, &own, "anon_vma_fork: anon_vma_free");
        return anon_vma_fork_failed(k, child);
    };
    if let Some(root) = &root {
        get_anon_vma(root);
    }
    let mut list = own.rwsem.write(anon_vma_lock_label(k));
    let _ = child.anon_vma.set(own.clone());
    anon_vma_chain_link(child, &avc, &mut list);
    list.unlock(anon_vma_unlock_label(k));
    true
}

/// `anon_vma_fork()`'s `out_error:` label.
fn anon_vma_fork_failed(k: &Kernel, child: &Vma) -> bool {
    if k.profile.knobs.anon_vma_fork_unlink_on_error {
        unlink_anon_vmas(k, child);
    } else {
        explore::mark("anon_vma_fork: -ENOMEM with the cloned avcs still linked");
    }
    false
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
pub fn unlink_anon_vmas(k: &Kernel, vma: &Vma) {
    let chain = std::mem::take(&mut *vma.anon_vma_chain.borrow_mut());
    let mut emptied = Vec::new();
    for avc in chain {
        avc.life.assert_live("unlink_anon_vmas: avc");
        let av = &avc.anon_vma;
        av.life.assert_live("unlink_anon_vmas: avc->anon_vma");
        let mut list = av.rwsem.write(anon_vma_lock_label(k));
        list.retain(|a| !Rc::ptr_eq(a, &avc));
        let empty = list.is_empty();
        list.unlock(anon_vma_unlock_label(k));
        if empty {
            emptied.push(avc);
        } else {
            anon_vma_chain_free(&avc);
        }
    }
    for avc in emptied {
        put_anon_vma(k, &avc.anon_vma);
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
/// In v2.6.34 (no refcount: `anon_vma_root` off) the only reference is
/// the list's, and the free is `anon_vma_unlink()`'s `if (empty)
/// anon_vma_free(anon_vma)`.
pub fn put_anon_vma(k: &Kernel, av: &Rc<AnonVma>) {
    let label = if k.profile.knobs.anon_vma_root {
        "put_anon_vma: atomic_dec_and_test(&anon_vma->refcount)"
    } else {
        "anon_vma_unlink: list_empty(&anon_vma->head) && !ksm_refcount(anon_vma)"
    };
    let left = av.refcount.add_return(label, -1);
    if left != 0 {
        return;
    }
    anon_vma_free(k, av, "__put_anon_vma: anon_vma_free");
    if let Some(root) = &av.root {
        put_anon_vma(k, root);
    }
}

/// The reallocation branch of `anon_vma_alloc()`: the last freed object,
/// if the explorer chooses it. Its list is empty (it was freed empty) and
/// the constructor does not run again (`anon_vma_ctor` runs only for a new
/// slab page): the object is simply live again, refcount 1.
fn reuse_freed_anon_vma(k: &Kernel, root: &Option<Rc<AnonVma>>) -> Option<Rc<AnonVma>> {
    if k.profile.knobs.anon_vma_root || root.is_some() {
        return None;
    }
    let last = k.anon_vma_freelist.borrow().last().cloned()?;
    if explore::rt::choose(2) == 0 {
        return None;
    }
    k.anon_vma_freelist.borrow_mut().pop();
    explore::mark("anon_vma_alloc: a freed anon_vma handed out again (SLAB_DESTROY_BY_RCU)");
    last.life
        .reuse("anon_vma_alloc: kmem_cache_alloc(anon_vma_cachep) reuses a freed object");
    last.refcount.set("anon_vma_alloc: a fresh anon_vma", 1);
    last.freed_seq.set(0);
    Some(last)
}

/// `anon_vma_free()`: back to `anon_vma_cachep`. Counts the frees for the
/// SLAB_DESTROY_BY_RCU model of [`page_lock_anon_vma`].
fn anon_vma_free(k: &Kernel, av: &Rc<AnonVma>, label: &'static str) {
    av.life.free(label);
    k.anon_vma_freelist.borrow_mut().push(av.clone());
    k.anon_vma_frees.set(k.anon_vma_frees.get() + 1);
    av.freed_seq.set(k.anon_vma_frees.get());
}

/// `folio_get_anon_vma()` (v6.1): pin the anon_vma of a folio that is not
/// locked against unmapping. Under RCU it reads `folio->mapping` and
/// `folio_mapped()` locklessly, takes a reference unless the count is
/// already zero (the anon_vma is being freed), and re-checks
/// `folio_mapped()`: an unmapped folio's anon_vma may be gone.
pub fn folio_get_anon_vma(k: &Kernel, folio: &Folio) -> Option<Rc<AnonVma>> {
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
        put_anon_vma(k, &av);
        return None;
    }
    Some(av)
}

/// `page_add_new_anon_rmap()`: first mapping of a new exclusive folio
/// (`SetPageAnonExclusive()` since 6c287605fd56).
pub fn page_add_new_anon_rmap(k: &Kernel, folio: &Folio, vma: &Vma, address: u64) {
    folio.mapcount.set(
        "page_add_new_anon_rmap: atomic_set(&folio->_mapcount, 0)",
        1,
    );
    __page_set_anon_rmap(k, folio, vma, address, true);
    folio.anon_exclusive.set(true);
}

/// Whether the profile's kernel has `PG_anon_exclusive`: 6c287605fd56 "mm:
/// remember exclusively mapped anonymous pages with PG_anon_exclusive"
/// (v5.19) added it together with the readable-exclusive migration entry
/// that carries it across a migration, so a swap-type numbering with that
/// entry type is a kernel with the flag. Before it, COW reuse and NUMA
/// write upgrades looked at reference and map counts instead.
pub fn has_page_anon_exclusive(k: &Kernel) -> bool {
    k.profile.swap_types.migration_read_exclusive.is_some()
}

/// `PageAnonExclusive()` of an anonymous folio, read under the page-table
/// lock of the entry that maps it (see [`Folio::anon_exclusive`]).
pub fn page_anon_exclusive(folio: &Folio) -> bool {
    folio.anon_exclusive.get()
}

/// `page_add_anon_rmap()`: one more mapping of an anonymous folio
/// (`compound` for a PMD mapping), never exclusive; the caller holds the
/// page lock.
pub fn page_add_anon_rmap(k: &Kernel, folio: &Folio, vma: &Vma, address: u64, _compound: bool) {
    if folio.mapcount.peek() == 0 && folio.anon_vma.peek().is_none() {
        // A folio nobody else can reach yet (the new folio of a migration
        // mapped for the first time).
        page_add_new_anon_rmap(k, folio, vma, address);
        return;
    }
    do_page_add_anon_rmap(k, folio, vma, address, false);
}

/// `do_page_add_anon_rmap()` (ad8c2ee801a, v2.6.36-rc1; the body of
/// page_add_anon_rmap before it): one more mapping, the first of which
/// decides the anon_vma; `exclusive` for a page swapped in by a write
/// fault that `reuse_swap_page()` found unshared, which then goes to the
/// faulting VMA's own anon_vma. do_swap_page calls it directly: a page
/// read in from swap has no mapping yet, and its first mapping is not a
/// new page's.
pub fn do_page_add_anon_rmap(k: &Kernel, folio: &Folio, vma: &Vma, address: u64, exclusive: bool) {
    let first = folio.mapcount.add_return(
        "page_add_anon_rmap: atomic_inc_and_test(&folio->_mapcount)",
        1,
    ) == 1;
    if first {
        __page_set_anon_rmap(k, folio, vma, address, exclusive);
    }
}

/// `__page_set_anon_rmap()`: point `page->mapping` at an anon_vma of the
/// VMA and set `page->index`. Which anon_vma is knob `set_anon_rmap`:
/// rc3 `vma->anon_vma`; ea90002b0fa7 the last (oldest) entry of the
/// chain; e8a03feb54ca that only for pages that are not `exclusive`;
/// 288468c334e9 (v2.6.36, and v6.1) `anon_vma->root` for those, and a
/// page that is already PageAnon keeps its mapping. A VMA without an
/// anon_vma is `BUG_ON(!anon_vma)`.
fn __page_set_anon_rmap(k: &Kernel, folio: &Folio, vma: &Vma, address: u64, exclusive: bool) {
    let Some(own) = vma.anon_vma.get() else {
        explore::oops(crate::debug::bug_on(
            "__page_set_anon_rmap: BUG_ON(!anon_vma)",
        ));
    };
    let anon_vma = match (k.profile.knobs.set_anon_rmap, exclusive) {
        (SetAnonRmap::Root, _) if folio.anon_vma.peek().is_some() => return,
        (SetAnonRmap::VmaAnonVma, _) | (SetAnonRmap::Exclusive | SetAnonRmap::Root, true) => {
            own.clone()
        }
        (SetAnonRmap::Oldest, _) | (SetAnonRmap::Exclusive, false) => oldest_anon_vma(vma),
        (SetAnonRmap::Root, false) => own.root.clone().unwrap_or_else(|| own.clone()),
    };
    folio.anon_vma.write(
        "__page_set_anon_rmap: WRITE_ONCE(page->mapping)",
        Some(anon_vma),
    );
    folio.index.set(vma.linear_page_index(address));
}

/// The anon_vma of the last entry of `vma->anon_vma_chain`
/// (`list_entry(vma->anon_vma_chain.prev, ...)`): the oldest ancestor's
/// when the chain kept its order (646d87b481da).
/// An empty chain under a set `vma->anon_vma` (rc3's vma_adjust with the
/// later fixes on) makes that entry the list head inside the VMA itself:
/// `avc->anon_vma` is then whatever follows it in `vm_area_struct`.
fn oldest_anon_vma(vma: &Vma) -> Rc<AnonVma> {
    let chain = vma.anon_vma_chain.borrow();
    let Some(last) = chain.last() else {
        explore::oops(
            explore::Finding::new(
                explore::FindingKind::Kernel,
                "__page_set_anon_rmap()",
                "BUG: unable to handle kernel paging request in __page_set_anon_rmap",
            )
            .detail(format!(
                "vma {} has anon_vma set but an empty anon_vma_chain: \
                 list_entry(vma->anon_vma_chain.prev) is the list head inside the vma",
                vma.describe()
            )),
        );
    };
    last.life.assert_live("__page_set_anon_rmap: avc");
    last.anon_vma.clone()
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
        let Some(vma) = linked_vma(&avc, "rmap_walk_anon") else {
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
fn linked_vma(avc: &AnonVmaChain, walker: &str) -> Option<Rc<Vma>> {
    let vma = avc.vma.upgrade();
    if vma.is_none() {
        explore::raise(
            explore::Finding::new(
                explore::FindingKind::Kernel,
                "KASAN",
                format!("BUG: KASAN: use-after-free in {walker}"),
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
    let pfn = k.pte_pfn(pteval);
    let anon_exclusive = take_anon_exclusive(k, folio);
    let entry = if pte_write(pteval) {
        make_writable_migration_entry(t, pfn)
    } else if anon_exclusive {
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

/// try_to_migrate_one's `anon_exclusive = PageAnonExclusive(subpage)` and
/// `page_try_share_anon_rmap()`: the exclusivity moves from the page into
/// the migration entry, which gives it back when it is restored. Only a
/// kernel with the flag ([`has_page_anon_exclusive`]) writes exclusive
/// entries. A large folio keeps its flag: the model keeps one per folio,
/// and the subpages after this one still need it for their own entries.
pub fn take_anon_exclusive(k: &Kernel, folio: &Folio) -> bool {
    let exclusive = has_page_anon_exclusive(k) && page_anon_exclusive(folio);
    if exclusive && folio.order == 0 {
        folio.anon_exclusive.set(false);
    }
    exclusive
}

/// What `try_to_unmap()` achieved (`SWAP_SUCCESS`, `SWAP_AGAIN`,
/// `SWAP_FAIL`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SwapResult {
    Success,
    Again,
    Fail,
}

/// `page_lock_anon_vma()` … `page_unlock_anon_vma()` around the walk of
/// `list_for_each_entry(avc, &anon_vma->head, same_anon_vma)` (v2.6.34
/// mm/rmap.c), for the rmap walkers that hold neither the page's mm's
/// mmap_sem nor a reference on the anon_vma: reclaim's page_referenced and
/// try_to_unmap. Under `rcu_read_lock()` it reads `page->mapping`, gives
/// up on an unmapped page (whose anon_vma may be gone), then takes
/// `anon_vma->lock` and visits each linked VMA where the page would be.
///
/// `anon_vma_cachep` is SLAB_DESTROY_BY_RCU: an anon_vma freed after this
/// reader's `rcu_read_lock()` is still an anon_vma (its list empty: it was
/// freed because nothing was left on it), so the walk visits nothing. But
/// `page->mapping` of a mapped page may point to one freed *before*: its
/// slab page may then be back in the page allocator and reused — an
/// explored choice — and `anon_vma->head.next` reads zero, the seed 002
/// oops.
fn page_lock_anon_vma(k: &Kernel, folio: &Folio, mut visit: impl FnMut(&Vma, u64) -> bool) {
    let _f = explore::enter("page_lock_anon_vma");
    // rcu_read_lock(): the anon_vmas freed from now on stay type-stable.
    let frees_before = k.anon_vma_frees.get();
    let Some(av) = folio
        .anon_vma
        .read("page_lock_anon_vma: ACCESS_ONCE(page->mapping)")
    else {
        return;
    };
    if folio.mapcount.read("page_lock_anon_vma: page_mapped(page)") <= 0 {
        return;
    }
    if av.life.is_freed() {
        explore::mark("page_lock_anon_vma: page->mapping of a mapped page is a freed anon_vma");
        let freed_before_rcu_lock = av.freed_seq.get() <= frees_before;
        if freed_before_rcu_lock && explore::rt::choose(2) == 0 {
            explore::oops(crate::debug::oops_anon_vma_head(k, &av));
        }
    }
    let list = av.rwsem.write(anon_vma_lock_label(k));
    let avcs: Vec<Rc<AnonVmaChain>> = list.clone();
    for avc in avcs {
        avc.life
            .assert_live("page_lock_anon_vma: list_for_each_entry(avc)");
        let Some(vma) = linked_vma(&avc, "page_lock_anon_vma") else {
            continue;
        };
        vma.life.assert_live("page_lock_anon_vma: avc->vma");
        if let Some(addr) = vma_address(folio, &vma) {
            if !visit(&vma, addr) {
                break;
            }
        }
    }
    list.unlock(anon_vma_unlock_label(k));
}

/// `page_check_address()` (v2.6.34): the pte that maps `folio` at
/// `address` in `vma`, found and locked; `visit` runs with the pte lock
/// held. The same walk as v4.13's `page_vma_mapped_walk()` for a small
/// page, which the model reuses.
fn page_check_address(
    k: &Kernel,
    folio: &Folio,
    vma: &Vma,
    address: u64,
    visit: impl FnOnce(&EntryRef),
) -> bool {
    let mut visit = Some(visit);
    let mut found = false;
    page_vma_mapped_walk(k, folio, vma, address, false, &mut |m: &Mapped| {
        if let (Mapped::Pte(pte, _), Some(v)) = (m, visit.take()) {
            found = true;
            v(pte);
        }
    });
    found
}

/// `page_referenced()` (v2.6.34; v2.6.23 for page-cache pages): how many
/// ptes had the accessed bit set (each is cleared). Reclaim calls it with
/// the page locked (`is_locked`) from shrink_page_list, unlocked from
/// shrink_active_list; an anonymous page needs no page lock here, a file
/// page is trylocked (a locked one counts as referenced).
pub fn page_referenced(k: &Kernel, folio: &Folio, is_locked: bool) -> u32 {
    let _f = explore::enter("page_referenced");
    if folio.mapcount.read("page_referenced: page_mapped(page)") <= 0 {
        return 0;
    }
    if folio.kind.get() == crate::mm_types::FolioKind::File {
        if is_locked {
            return page_referenced_file(k, folio);
        }
        if !folio
            .lock
            .try_lock("page_referenced: TestSetPageLocked(page)")
        {
            return 1;
        }
        let referenced = page_referenced_file(k, folio);
        folio.lock.unlock("page_referenced: unlock_page");
        return referenced;
    }
    if folio
        .anon_vma
        .read("page_referenced: page_rmapping(page)")
        .is_none()
    {
        return 0;
    }
    page_referenced_anon(k, folio)
}

/// `page_referenced_anon()` (v2.6.34; inlined into page_referenced, hence
/// the seed's `IP: page_referenced+0xee`).
fn page_referenced_anon(k: &Kernel, folio: &Folio) -> u32 {
    let _f = explore::enter("page_referenced_anon");
    let mut mapcount = folio
        .mapcount
        .read("page_referenced_anon: page_mapcount(page)");
    let mut referenced = 0;
    page_lock_anon_vma(k, folio, |vma, addr| {
        referenced += page_referenced_one(k, folio, vma, addr, &mut mapcount);
        mapcount > 0
    });
    referenced
}

/// `page_referenced_file()` (v2.6.23): under `i_mmap_lock`, each VMA of
/// the page's file that covers its index (the prio tree walk).
fn page_referenced_file(k: &Kernel, folio: &Folio) -> u32 {
    let _f = explore::enter("page_referenced_file");
    let Some(file) = folio
        .mapping
        .read("page_referenced_file: page->mapping")
        .and_then(|id| k.file(id))
    else {
        return 0;
    };
    let mut mapcount = folio
        .mapcount
        .read("page_referenced_file: page_mapcount(page)");
    let mut referenced = 0;
    let lock = file
        .i_mmap_lock
        .lock("page_referenced_file: spin_lock(&mapping->i_mmap_lock)");
    for (_, vma) in crate::memory::file_vmas(k, &file) {
        if vma.flags() & crate::mm_types::vm_flags::VM_NONLINEAR != 0 {
            continue;
        }
        if let Some(addr) = vma_address(folio, &vma) {
            referenced += page_referenced_one(k, folio, &vma, addr, &mut mapcount);
            if mapcount <= 0 {
                break;
            }
        }
    }
    lock.unlock("page_referenced_file: spin_unlock(&mapping->i_mmap_lock)");
    referenced
}

/// `page_referenced_one()` (v2.6.34; v2.6.23): test and clear the
/// accessed bit of the pte mapping the page at `address`
/// (`ptep_clear_flush_young`: a locked `test_and_clear_bit()` on the pte,
/// a direct store into the page table, or by knob `young_clear` a
/// hypercall).
fn page_referenced_one(
    k: &Kernel,
    folio: &Folio,
    vma: &Vma,
    address: u64,
    mapcount: &mut i64,
) -> u32 {
    let mut referenced = 0;
    page_check_address(k, folio, vma, address, |pte| {
        let v = Pte(pte.read_locked("page_referenced_one: *pte under ptl"));
        if pte_young(v) {
            clear_young(k, vma, pte, v);
            referenced = 1;
        }
        *mapcount -= 1;
    });
    referenced
}

/// `ptep_clear_flush_young()`'s store, under the pte lock.
fn clear_young(k: &Kernel, vma: &Vma, pte: &crate::pgtable::EntryRef, v: Pte) {
    if k.profile.knobs.young_clear == crate::profile::YoungClear::Hypercall {
        k.set_pte_at(
            pte,
            pte_mkold(v),
            "ptep_clear_flush_young: set_pte_at(pte_mkold)",
        );
        return;
    }
    direct_pte_store(k, vma, pte);
    pte.write(
        "page_referenced_one: ptep_clear_flush_young: test_and_clear_bit(_PAGE_BIT_ACCESSED)",
        pte_mkold(v).0,
    );
}

/// The INV-LOCKSET rule of a direct store into a PTE page by rmap.
fn direct_pte_store(k: &Kernel, vma: &Vma, pte: &crate::pgtable::EntryRef) {
    if let Some(mm) = vma.mm.upgrade() {
        crate::checkers::lockset::pte_page_access(k, &mm, &pte.table, || {
            format!("a direct store into PTE page pfn {:#x}", pte.table.pfn)
        });
    }
}

/// `try_to_unmap()` (v2.6.34) for an anonymous page in the swap cache:
/// replace every pte mapping it by a swap entry for its slot; for a
/// page-cache page (v2.6.23), clear every pte mapping it. Caller holds
/// the page lock.
pub fn try_to_unmap(k: &Kernel, folio: &Folio) -> SwapResult {
    let _f = explore::enter("try_to_unmap");
    let ret = if folio.kind.get() == crate::mm_types::FolioKind::File {
        try_to_unmap_file(k, folio)
    } else {
        try_to_unmap_anon(k, folio)
    };
    if folio.mapcount.read("try_to_unmap: page_mapped(page)") <= 0 {
        return SwapResult::Success;
    }
    ret
}

/// `try_to_unmap_file()` (v2.6.23): under `i_mmap_lock`, each linear VMA
/// of the page's file (`try_to_unmap_one()`); nonlinear VMAs are not
/// modelled here (their pages stay mapped: SWAP_FAIL).
fn try_to_unmap_file(k: &Kernel, folio: &Folio) -> SwapResult {
    let _f = explore::enter("try_to_unmap_file");
    let Some(file) = folio
        .mapping
        .read("try_to_unmap_file: page->mapping")
        .and_then(|id| k.file(id))
    else {
        return SwapResult::Again;
    };
    let mut ret = SwapResult::Again;
    let lock = file
        .i_mmap_lock
        .lock("try_to_unmap_file: spin_lock(&mapping->i_mmap_lock)");
    for (_, vma) in crate::memory::file_vmas(k, &file) {
        if vma.flags() & crate::mm_types::vm_flags::VM_NONLINEAR != 0 {
            ret = SwapResult::Fail;
            continue;
        }
        if let Some(addr) = vma_address(folio, &vma) {
            ret = try_to_unmap_one(k, folio, &vma, addr);
            if ret != SwapResult::Again
                || folio.mapcount.read("try_to_unmap_file: page_mapped(page)") <= 0
            {
                break;
            }
        }
    }
    lock.unlock("try_to_unmap_file: spin_unlock(&mapping->i_mmap_lock)");
    ret
}

/// `try_to_unmap_anon()` (v2.6.34).
fn try_to_unmap_anon(k: &Kernel, folio: &Folio) -> SwapResult {
    let _f = explore::enter("try_to_unmap_anon");
    let mut ret = SwapResult::Again;
    page_lock_anon_vma(k, folio, |vma, addr| {
        ret = try_to_unmap_one(k, folio, vma, addr);
        ret == SwapResult::Again && folio.mapcount.read("try_to_unmap_anon: page_mapped(page)") > 0
    });
    ret
}

/// `try_to_unmap_one()` (v2.6.34, TTU_UNMAP): a pte referenced since the
/// last look keeps the page (`SWAP_FAIL`); otherwise the pte becomes the
/// swap entry of the page's slot (`swap_duplicate()`), the mm's rss moves
/// from MM_ANONPAGES to MM_SWAPENTS, and the pte's mapping and page
/// reference go.
fn try_to_unmap_one(k: &Kernel, folio: &Folio, vma: &Vma, address: u64) -> SwapResult {
    let _f = explore::enter("try_to_unmap_one");
    let Some(mm) = vma.mm.upgrade() else {
        return SwapResult::Again;
    };
    let mut ret = SwapResult::Again;
    page_check_address(k, folio, vma, address, |pte| {
        let v = Pte(pte.read_locked("try_to_unmap_one: *pte under ptl"));
        if pte_young(v) {
            direct_pte_store(k, vma, pte);
            pte.write("try_to_unmap_one: ptep_clear_flush_young", pte_mkold(v).0);
            ret = SwapResult::Fail;
            return;
        }
        if folio.kind.get() == crate::mm_types::FolioKind::File {
            // ptep_clear_flush(): on i386 PAE a native xchg, a direct store.
            direct_pte_store(k, vma, pte);
            let old = Pte(pte.xchg("try_to_unmap_one: ptep_clear_flush", 0));
            if crate::arch::x86::pgtable::pte_dirty(old) {
                crate::filemap::set_page_dirty(folio);
            }
            mm.add_mm_counter(crate::mm_types::MM_FILEPAGES, -1);
            page_remove_rmap(folio, false);
            put_folio(k, folio);
            return;
        }
        let Some(offset) = folio.swap.get() else {
            explore::oops(crate::debug::bug_on(
                "try_to_unmap_one: an anonymous page outside the swap cache",
            ));
        };
        pte.xchg("ptep_clear_flush_notify", 0);
        crate::swapfile::swap_duplicate(k, offset);
        mm.add_mm_counter(crate::mm_types::MM_ANONPAGES, -1);
        mm.add_mm_counter(crate::mm_types::MM_SWAPENTS, 1);
        let swp = crate::arch::x86::swap::v2_6_34::swp_entry_to_pte(0, offset);
        pte.write(
            "try_to_unmap_one: set_pte_at(swp_entry_to_pte(entry))",
            swp.0,
        );
        page_remove_rmap(folio, false);
        put_folio(k, folio);
    });
    ret
}

/// `page_mkclean()` (v2.6.22) of a page-cache page, locked by the caller:
/// if the page is mapped, write-protect and clean every pte mapping it.
/// Returns whether one was dirty or writable.
pub fn page_mkclean(k: &Kernel, file: &crate::mm_types::AddressSpace, page: &Folio) -> bool {
    let _f = explore::enter("page_mkclean");
    if page.mapcount.read("page_mkclean: page_mapped(page)") <= 0 {
        return false;
    }
    page_mkclean_file(k, file, page)
}

/// `page_mkclean_file()` (v2.6.22): under `i_mmap_lock`, the shared VMAs
/// of the prio tree (not the nonlinear list) that cover the page.
fn page_mkclean_file(k: &Kernel, file: &crate::mm_types::AddressSpace, page: &Folio) -> bool {
    let lock = file
        .i_mmap_lock
        .lock("page_mkclean_file: spin_lock(&mapping->i_mmap_lock)");
    let mut ret = false;
    for (_, vma) in crate::memory::file_vmas(k, file) {
        let f = vma.flags();
        if f & crate::mm_types::vm_flags::VM_NONLINEAR != 0
            || f & crate::mm_types::vm_flags::VM_SHARED == 0
        {
            continue;
        }
        ret |= page_mkclean_one(k, page, &vma);
    }
    lock.unlock("page_mkclean_file: spin_unlock(&mapping->i_mmap_lock)");
    ret
}

/// `page_mkclean_one()` (v2.6.22): the pte `page_check_address()` finds,
/// if dirty or writable, is cleared and flushed (`ptep_clear_flush()`, a
/// native exchange on i386 PAE) and set again clean and read-only.
fn page_mkclean_one(k: &Kernel, page: &Folio, vma: &Vma) -> bool {
    use crate::arch::x86::pgtable::{pte_dirty, pte_mkclean, pte_write, pte_wrprotect, Pte};
    let Some(address) = vma_address(page, vma) else {
        return false;
    };
    let mut ret = false;
    page_check_address(k, page, vma, address, |pte| {
        let v = Pte(pte.read_locked("page_mkclean_one: *pte under ptl"));
        if !(pte_dirty(v) || pte_write(v)) {
            return;
        }
        direct_pte_store(k, vma, pte);
        let entry = Pte(pte.xchg("page_mkclean_one: ptep_clear_flush", 0));
        k.set_pte_at(
            pte,
            pte_mkclean(pte_wrprotect(entry)),
            "page_mkclean_one: set_pte_at(pte_mkclean(pte_wrprotect))",
        );
        ret = true;
    });
    ret
}
