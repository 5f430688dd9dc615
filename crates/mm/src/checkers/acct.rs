//! INV-ACCT, recomputed from scratch: each folio's mapcount equals the
//! number of present entries mapping it; each mm's anonymous rss equals the
//! pages its entries (present or migration) account, its file rss the
//! present non-anonymous pages (none in the model: no file mappings); the
//! struct page of an unallocated frame has mapcount 0; pgtables_bytes equals
//! 4096 times the page tables it owns (deposited ones included).

use std::collections::BTreeMap;

use explore::{Finding, FindingKind};

use super::walk::{Census, Leaf};
use crate::mm_types::{
    FolioKind, Kernel, MmStruct, HPAGE_PMD_NR, MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES,
    MM_SWAPENTS, PAGE_SIZE,
};

pub fn check(k: &Kernel, censuses: &[(&MmStruct, Census)]) -> Option<Finding> {
    let mut mapcounts: BTreeMap<u64, i64> = BTreeMap::new();
    let mut swap_refs: BTreeMap<u64, i64> = BTreeMap::new();
    for (mm, c) in censuses {
        let mut anon = 0i64;
        let mut file = 0i64;
        let mut shmem = 0i64;
        let mut swapents = 0i64;
        for (_, leaf) in &c.leaves {
            match leaf {
                Leaf::Swap { offset } => {
                    swapents += 1;
                    *swap_refs.entry(*offset).or_default() += 1;
                }
                Leaf::HugePresent(f) if f.kind.get() == FolioKind::Anon => {
                    anon += HPAGE_PMD_NR as i64;
                    *mapcounts.entry(f.pfn).or_default() += 1;
                }
                Leaf::HugeMigration(_) => anon += HPAGE_PMD_NR as i64,
                Leaf::Present {
                    folio,
                    special: false,
                    ..
                } if folio.kind.get() == FolioKind::Anon => {
                    anon += 1;
                    *mapcounts.entry(folio.pfn).or_default() += 1;
                }
                Leaf::Migration { .. } => anon += 1,
                Leaf::Present {
                    folio,
                    special: false,
                    ..
                } if folio.kind.get() == FolioKind::Shmem => {
                    shmem += 1;
                    *mapcounts.entry(folio.pfn).or_default() += 1;
                }
                Leaf::Present {
                    folio,
                    special: false,
                    ..
                } if folio.kind.get() != FolioKind::Anon => file += 1,
                _ => {}
            }
        }
        for (member, name, census) in [
            (MM_FILEPAGES, "MM_FILEPAGES", file),
            (MM_SHMEMPAGES, "MM_SHMEMPAGES", shmem),
            (MM_SWAPENTS, "MM_SWAPENTS", swapents),
        ] {
            let rss = mm.rss[member].get();
            if rss != census {
                return Some(acct(format!(
                    "mm {} {name} is {rss}, its page tables account {census}",
                    mm.id
                )));
            }
        }
        let rss = mm.rss[MM_ANONPAGES].get();
        if rss != anon {
            return Some(acct(format!(
                "mm {} MM_ANONPAGES is {rss}, its page tables account {anon}",
                mm.id
            )));
        }
        let bytes = c.tables * PAGE_SIZE as i64;
        if mm.pgtables_bytes.get() != bytes {
            let have = mm.pgtables_bytes.get();
            return Some(acct(format!(
                "mm {} pgtables_bytes is {have}, it owns {bytes} bytes of page tables",
                mm.id
            )));
        }
    }
    if let Some(f) = swap_map_mismatch(k, &swap_refs) {
        return Some(f);
    }
    if let Some(f) = leaked_after_exit(k) {
        return Some(f);
    }
    if let Some((pfn, page)) = k
        .mem
        .stray_pages()
        .into_iter()
        .find(|(_, s)| s.mapcount != 0)
    {
        return Some(acct(format!(
            "pfn {pfn:#x} is not an allocated page, yet its struct page has mapcount {}",
            page.mapcount
        )));
    }
    for folio in k
        .mem
        .folios()
        .iter()
        .filter(|f| matches!(f.kind.get(), FolioKind::Anon | FolioKind::Shmem))
    {
        let want = mapcounts.get(&folio.pfn).copied().unwrap_or(0);
        if folio.mapcount.peek() != want {
            let m = folio.mapcount.peek();
            return Some(acct(format!(
                "folio pfn {:#x} has mapcount {m} but {want} entries map it",
                folio.pfn
            )));
        }
        if folio.refcount.peek() < folio.mapcount.peek() {
            let r = folio.refcount.peek();
            return Some(acct(format!(
                "folio pfn {:#x} has refcount {r} below its mapcount {}",
                folio.pfn,
                folio.mapcount.peek()
            )));
        }
    }
    None
}

/// Each slot's `swap_map` count equals the swap ptes holding it, and its
/// `SWAP_HAS_CACHE` bit says whether its page is in the swap cache.
fn swap_map_mismatch(k: &Kernel, refs: &BTreeMap<u64, i64>) -> Option<Finding> {
    use crate::swapfile::SWAP_HAS_CACHE;
    let slots = k.swap.slots();
    let used = slots.iter().map(|(o, _)| *o);
    for offset in used.chain(refs.keys().copied()) {
        let map = k.swap.count(offset);
        let want = refs.get(&offset).copied().unwrap_or(0);
        let count = i64::from(map & !SWAP_HAS_CACHE);
        if count != want {
            return Some(acct(format!(
                "swap slot {offset:#x} has swap_map count {count}, {want} swap ptes hold it"
            )));
        }
        let cached = k.swap.cached(offset).is_some();
        if cached != (map & SWAP_HAS_CACHE != 0) {
            return Some(acct(format!(
                "swap slot {offset:#x}: SWAP_HAS_CACHE is {}, the swap cache {} a page for it",
                map & SWAP_HAS_CACHE != 0,
                if cached { "has" } else { "has no" }
            )));
        }
    }
    None
}

fn acct(what: String) -> Finding {
    Finding::new(
        FindingKind::Invariant,
        "INV-ACCT",
        format!("INV-ACCT: {what}"),
    )
}

/// Once every mm has exited, no anonymous folio may stay allocated but for
/// the swap cache's own: one that does holds a reference nobody will drop
/// (a page leak).
fn leaked_after_exit(k: &Kernel) -> Option<Finding> {
    if k.mms.borrow().iter().any(|m| !m.exited.get()) {
        return None;
    }
    let folios = k.mem.folios();
    // A swap-cache page held by the cache alone is reclaimable, not lost:
    // the zap could not take its lock (free_swap_and_cache's trylock), so
    // it waits for reclaim's __remove_mapping.
    let reclaimable = |f: &crate::mm_types::Folio| f.swap.get().is_some() && f.refcount.peek() == 1;
    let leaked = folios
        .iter()
        .find(|f| f.kind.get() == FolioKind::Anon && !reclaimable(f))?;
    Some(acct(format!(
        "page leak: folio pfn {:#x} (order {}) outlives every mm, refcount {} mapcount {}",
        leaked.pfn,
        leaked.order,
        leaked.refcount.peek(),
        leaked.mapcount.peek()
    )))
}
