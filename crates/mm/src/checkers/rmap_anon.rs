//! INV-RMAP-ANON (seed-bugs.md §3.5; Linus Torvalds' `verify_vma()` and
//! `verify_anon_page()` from the seed 002 thread, generalised),
//! recomputed from scratch from the VMAs, their anon_vma chains, the
//! anon_vmas' lists and the page tables:
//!
//! (a) a VMA with an anon_vma is linked to it: an avc on its chain names it;
//! (b) every anonymous page a pte maps is where the rmap will look: its
//!     `page->mapping` anon_vma is on the chain of the VMA mapping it, and
//!     its index puts it at the address it is mapped at;
//! (c) every avc on a VMA's chain names that VMA and sits on its anon_vma's
//!     list, and every avc on an anon_vma's list sits on its VMA's chain.
//!
//! Freed objects are INV-LIFETIME's (lifetime.rs), which runs first.

use std::rc::Rc;

use explore::{Finding, FindingKind};

use super::walk::{Census, Leaf};
use crate::mm_types::{AnonVma, AnonVmaChain, Kernel, MmStruct, Vma};

pub fn check(k: &Kernel, censuses: &[(&MmStruct, Census)]) -> Option<Finding> {
    censuses.iter().find_map(|(mm, c)| {
        check_structure(mm).or_else(|| {
            c.leaves
                .iter()
                .find_map(|(va, leaf)| check_leaf(k, mm, *va, leaf))
        })
    })
}

/// (a) and (c) for every VMA of `mm` and each anon_vma its chains link.
pub fn check_structure(mm: &MmStruct) -> Option<Finding> {
    let mmap = mm.mmap_lock.peek();
    for vma in &mmap.vmas {
        if let Some(f) = check_chain(mm, vma) {
            return Some(f);
        }
    }
    // Each anon_vma linked from this mm's chains, once.
    let mut seen: Vec<&Rc<AnonVma>> = Vec::new();
    let chains: Vec<_> = mmap
        .vmas
        .iter()
        .map(|v| v.anon_vma_chain.borrow())
        .collect();
    for avc in chains.iter().flat_map(|c| c.iter()) {
        if seen.iter().any(|a| Rc::ptr_eq(a, &avc.anon_vma)) {
            continue;
        }
        seen.push(&avc.anon_vma);
        if let Some(f) = check_list(&avc.anon_vma) {
            return Some(f);
        }
    }
    None
}

/// (b) for the leaf at `va` of `mm`, if it maps an anonymous page.
pub fn check_leaf(k: &Kernel, mm: &MmStruct, va: u64, leaf: &Leaf) -> Option<Finding> {
    let Leaf::Present {
        folio,
        subpage,
        special: false,
    } = leaf
    else {
        return None;
    };
    if folio.kind.get() != crate::mm_types::FolioKind::Anon {
        return None;
    }
    let mmap = mm.mmap_lock.peek();
    let vma = mmap.vma_lookup(va)?;
    check_page(k, mm, vma, va, folio, *subpage as u64)
}

/// (a) and (c) for one VMA.
fn check_chain(mm: &MmStruct, vma: &Rc<Vma>) -> Option<Finding> {
    let chain = vma.anon_vma_chain.borrow();
    if let Some(av) = vma.anon_vma.get() {
        if !chain.iter().any(|avc| Rc::ptr_eq(&avc.anon_vma, av)) {
            return Some(
                rmap(format!(
                    "vma {} of mm {} has anon_vma {} but no anon_vma_chain entry links it",
                    vma.describe(),
                    mm.id,
                    av.id
                ))
                .detail(chain_line(&chain)),
            );
        }
    }
    for avc in chain.iter() {
        let names_vma = avc.vma.upgrade().is_some_and(|v| Rc::ptr_eq(&v, vma));
        let listed = avc.anon_vma.rwsem.peek().iter().any(|a| Rc::ptr_eq(a, avc));
        if !names_vma || !listed {
            return Some(rmap(format!(
                "anon_vma_chain {} on the chain of vma {} {}",
                avc.id,
                vma.describe(),
                if names_vma {
                    format!("is not on anon_vma {}'s list", avc.anon_vma.id)
                } else {
                    "names another vma".to_string()
                }
            )));
        }
    }
    None
}

/// (c) from the anon_vma's side: each avc on its list is on the chain of
/// the VMA it names.
fn check_list(av: &AnonVma) -> Option<Finding> {
    for avc in av.rwsem.peek().iter() {
        let Some(vma) = avc.vma.upgrade().filter(|v| !v.life.is_freed()) else {
            continue; // a freed VMA: INV-LIFETIME
        };
        if !vma
            .anon_vma_chain
            .borrow()
            .iter()
            .any(|a| Rc::ptr_eq(a, avc))
        {
            return Some(rmap(format!(
                "anon_vma {} lists anon_vma_chain {} of vma {}, which is not on that vma's chain",
                av.id,
                avc.id,
                vma.describe()
            )));
        }
    }
    None
}

/// (b) for one mapped anonymous page.
fn check_page(
    k: &Kernel,
    mm: &MmStruct,
    vma: &Vma,
    va: u64,
    folio: &crate::mm_types::Folio,
    subpage: u64,
) -> Option<Finding> {
    let chain = vma.anon_vma_chain.borrow();
    let Some(av) = folio.anon_vma.peek() else {
        return Some(rmap(format!(
            "page pfn {:#x} mapped at {va:#x} in mm {} has no anon_vma (page->mapping NULL)",
            folio.pfn, mm.id
        )));
    };
    if !chain.iter().any(|avc| Rc::ptr_eq(&avc.anon_vma, &av)) {
        return Some(
            rmap(format!(
                "page pfn {:#x} mapped at {va:#x} in vma {} of mm {}: page->mapping is \
                 anon_vma {}, which is not on the vma's chain (rmap walks miss this mapping)",
                folio.pfn,
                vma.describe(),
                mm.id,
                av.id
            ))
            .detail(chain_line(&chain))
            .detail(format!(
                "anon_vma {} at {} links {}",
                av.id,
                crate::kaddr::raw(crate::kaddr::anon_vma(k.profile.log_style, &av)),
                linked_vmas(&av)
            )),
        );
    }
    let want = vma.linear_page_index(va);
    let index = folio.index.get() + subpage;
    if index != want {
        return Some(rmap(format!(
            "page pfn {:#x} mapped at {va:#x} has index {index:#x}, the vma puts it at {want:#x}",
            folio.pfn + subpage
        )));
    }
    None
}

fn chain_line(chain: &[Rc<AnonVmaChain>]) -> String {
    let ids: Vec<String> = chain.iter().map(|a| a.anon_vma.id.to_string()).collect();
    format!(
        "the vma's anon_vma_chain (head first): [{}]",
        ids.join(", ")
    )
}

fn linked_vmas(av: &AnonVma) -> String {
    let vmas: Vec<String> = av
        .rwsem
        .peek()
        .iter()
        .map(|avc| {
            avc.vma
                .upgrade()
                .map_or_else(|| "(freed vma)".to_string(), |v| v.describe())
        })
        .collect();
    if vmas.is_empty() {
        "no vma".to_string()
    } else {
        vmas.join(", ")
    }
}

fn rmap(what: String) -> Finding {
    Finding::new(
        FindingKind::Invariant,
        "INV-RMAP-ANON",
        format!("INV-RMAP-ANON: {what}"),
    )
}
