//! INV-LIFETIME, recomputed from scratch: no present or migration entry
//! leads to a page that is back in the allocator (a use-after-free the
//! next access or zap would act on); and no live reference leads to a
//! freed anon_vma, anon_vma_chain or VMA (seed-bugs.md §3.5): a live VMA's
//! `anon_vma` and chain, the VMAs an anon_vma's list links, and the
//! `page->mapping` of a page that is mapped or that swap ptes will map
//! again.

use explore::{Finding, FindingKind};

use super::walk::{Census, Leaf};
use crate::mm_types::{AnonVma, Folio, Kernel, MmStruct};

pub fn check(k: &Kernel, censuses: &[(&MmStruct, Census)]) -> Option<Finding> {
    censuses
        .iter()
        .find_map(|(mm, c)| {
            c.leaves
                .iter()
                .find_map(|(va, leaf)| check_leaf(k, mm, *va, leaf))
        })
        .or_else(|| check_vmas(k, censuses.iter().map(|(mm, _)| *mm)))
        .or_else(|| k.mem.folios().iter().find_map(|f| check_folio(k, f)))
}

/// No leaf entry leads to a freed page.
pub fn check_leaf(k: &Kernel, mm: &MmStruct, va: u64, leaf: &Leaf) -> Option<Finding> {
    let Leaf::Dangling { val, pmd } = leaf else {
        return None;
    };
    let what = if *pmd {
        k.describe_pmd(*val)
    } else {
        k.describe_pte(*val)
    };
    Some(
        Finding::new(
            FindingKind::Invariant,
            "INV-LIFETIME",
            format!("INV-LIFETIME: the entry mapping {va:#x} points to a freed page"),
        )
        .detail(format!("mm {}: entry {val:#018x} ({what})", mm.id)),
    )
}

/// The anon_vma side of INV-LIFETIME for the VMAs of `mms`: their
/// anon_vma, their chains, and the lists those chains lead to.
pub fn check_vmas<'a>(k: &Kernel, mms: impl Iterator<Item = &'a MmStruct>) -> Option<Finding> {
    for mm in mms {
        for vma in &mm.mmap_lock.peek().vmas {
            if let Some(av) = vma.anon_vma.get().filter(|a| a.life.is_freed()) {
                return Some(freed_anon_vma(
                    k,
                    av,
                    format!(
                        "vma {} of mm {} still has it as its anon_vma",
                        vma.describe(),
                        mm.id
                    ),
                ));
            }
            for avc in vma.anon_vma_chain.borrow().iter() {
                if avc.life.is_freed() || avc.anon_vma.life.is_freed() {
                    return Some(freed_anon_vma(
                        k,
                        &avc.anon_vma,
                        format!(
                            "vma {} of mm {} still links it by anon_vma_chain {}",
                            vma.describe(),
                            mm.id,
                            avc.id
                        ),
                    ));
                }
                for other in avc.anon_vma.rwsem.peek().iter() {
                    if other.vma.upgrade().is_none_or(|v| v.life.is_freed()) {
                        return Some(lifetime(format!(
                            "anon_vma {} lists anon_vma_chain {} of a freed vma: the next rmap walk \
                             dereferences avc->vma",
                            avc.anon_vma.id, other.id
                        )));
                    }
                }
            }
        }
    }
    None
}

/// A page that is mapped, or that swap ptes will map again, does not
/// point to a freed anon_vma.
pub fn check_folio(k: &Kernel, folio: &Folio) -> Option<Finding> {
    let av = folio.anon_vma.peek().filter(|a| a.life.is_freed())?;
    let mapped = folio.mapcount.peek() > 0;
    // An unmapped swap-cache page keeps a stale mapping harmlessly
    // while its next first mapping resets it (2.6.34's
    // __page_set_anon_rmap); from 288468c334e9 a PageAnon page keeps
    // its mapping when swapped in, so swap ptes left must not outlive it.
    let keeps_mapping = k.profile.knobs.set_anon_rmap == crate::profile::SetAnonRmap::Root;
    let swapped = keeps_mapping
        && folio
            .swap
            .get()
            .is_some_and(|o| k.swap.count(o) & !crate::swapfile::SWAP_HAS_CACHE != 0);
    if !mapped && !swapped {
        return None;
    }
    let how = if mapped {
        "is mapped"
    } else {
        "has swap ptes to map it again"
    };
    Some(freed_anon_vma(
        k,
        &av,
        format!(
            "page pfn {:#x} {how} with page->mapping pointing to it",
            folio.pfn
        ),
    ))
}

fn freed_anon_vma(k: &Kernel, av: &AnonVma, by: String) -> Finding {
    lifetime(format!(
        "anon_vma {} ({}) was freed, yet {by}",
        av.id,
        crate::kaddr::raw(crate::kaddr::anon_vma(k.profile.log_style, av))
    ))
}

fn lifetime(what: String) -> Finding {
    Finding::new(
        FindingKind::Invariant,
        "INV-LIFETIME",
        format!("INV-LIFETIME: {what}"),
    )
}
