//! INV-NO-LOST-MAPPING and INV-DATA, recomputed from scratch.
//!
//! Every page the user wrote (and no syscall discarded) must be reachable
//! from its mm's page tables — through a present entry or a migration
//! entry — and the page reached must hold contents the user may see.

use explore::{Finding, FindingKind};

use super::walk::{Census, Leaf};
use crate::mm_types::{Folio, Kernel, MmStruct, PageData, HPAGE_PMD_SIZE, PAGE_SHIFT};

pub fn check(k: &Kernel, censuses: &[(&MmStruct, Census)]) -> Option<Finding> {
    let must = k.ghost.must_map();
    if must.is_empty() {
        return None;
    }
    for (mm, c) in censuses {
        for (_, first, last, accept) in must.iter().filter(|r| r.0 == mm.id) {
            // The region's pages in address order against the leaves in
            // address order: one pass instead of a search per page.
            let mut after = c
                .leaves
                .partition_point(|(at, _)| *at < first << PAGE_SHIFT);
            for vpn in *first..*last {
                let va = vpn << PAGE_SHIFT;
                while c.leaves.get(after).is_some_and(|(at, _)| *at <= va) {
                    after += 1;
                }
                let below = after
                    .checked_sub(1)
                    .map(|i| (c.leaves[i].0, &c.leaves[i].1));
                if let Some(f) = check_page(k, mm.id, va, below, accept) {
                    return Some(f);
                }
            }
        }
    }
    None
}

/// Both invariants for the page at `va` of mm `mm`, which must stay
/// mapped holding one of `accept`, given the last leaf at or below `va`
/// in address order.
pub fn check_page(
    k: &Kernel,
    mm: u64,
    va: u64,
    below: Option<(u64, &Leaf)>,
    accept: &[PageData],
) -> Option<Finding> {
    let judge = |page: Option<&PageData>| match page {
        None => Some(lost(k, mm, va)),
        Some(p) if accept.contains(p) => None,
        Some(p) => Some(corrupt(va, p, accept)),
    };
    let in_folio = |f: &Folio, sub: usize| judge(f.data.borrow().get(sub));
    let Some((at, leaf)) = below else {
        return judge(None);
    };
    // The census walks the tree in order, so only the last leaf at or
    // below `va` can cover it. A swap entry leads to the slot's page in
    // the swap cache, else to what was written to the slot.
    match leaf {
        Leaf::HugePresent(f) | Leaf::HugeMigration(f) if va < at + HPAGE_PMD_SIZE => {
            in_folio(f, ((va - at) >> PAGE_SHIFT) as usize)
        }
        Leaf::Present { folio, subpage, .. } | Leaf::Migration { folio, subpage } if at == va => {
            in_folio(folio, *subpage)
        }
        Leaf::Swap { offset } if at == va => match k.swap.cached(*offset) {
            Some(f) => in_folio(&f, 0),
            None => judge(k.swap.disk(*offset).as_ref()),
        },
        _ => judge(None),
    }
}

fn lost(k: &Kernel, mm: u64, va: u64) -> Finding {
    let pmd = k
        .mms
        .borrow()
        .iter()
        .find(|m| m.id == mm)
        .and_then(|m| crate::pgtable::peek_pmd(k, m, va))
        .map(|p| p.peek());
    Finding::new(
        FindingKind::Invariant,
        "INV-NO-LOST-MAPPING",
        format!("INV-NO-LOST-MAPPING: user data at {va:#x} is no longer reachable through the page tables"),
    )
    .detail(format!(
        "no present or migration entry leads to the page; pmd is now {}",
        pmd.map_or_else(|| "not allocated".into(), |v| k.describe_pmd(v))
    ))
    .detail("no unmap (munmap, MADV_DONTNEED, exit) covered it: the mapping was dropped without rmap/rss update")
}

fn corrupt(va: u64, data: &PageData, accept: &[PageData]) -> Finding {
    let want: Vec<String> = accept.iter().map(PageData::describe).collect();
    Finding::new(
        FindingKind::Invariant,
        "INV-DATA",
        format!(
            "INV-DATA: page at {va:#x} holds {}, expected {}",
            data.describe(),
            want.join(" or ")
        ),
    )
}
