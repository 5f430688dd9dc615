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
    Folio, FolioKind, Kernel, MmStruct, HPAGE_PMD_NR, MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES,
    MM_SWAPENTS, NR_MM_COUNTERS, PAGE_SIZE,
};

/// What one leaf entry counts for, by the kernel's accounting rules: the
/// rss counter it is in (with the pages it accounts), the folio whose
/// mapcount it is part of, and the swap slot it holds.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Contribution {
    pub rss: Option<(usize, i64)>,
    pub maps: Option<u64>,
    pub swap: Option<u64>,
}

impl Contribution {
    /// What `leaf` counts for, given what its folio is now.
    pub fn of(leaf: &Leaf) -> Contribution {
        let mut c = Contribution::default();
        match leaf {
            Leaf::Swap { offset } => {
                c.rss = Some((MM_SWAPENTS, 1));
                c.swap = Some(*offset);
            }
            Leaf::HugePresent(f) if f.kind.get() == FolioKind::Anon => {
                c.rss = Some((MM_ANONPAGES, HPAGE_PMD_NR as i64));
                c.maps = Some(f.pfn);
            }
            Leaf::HugeMigration(_) => c.rss = Some((MM_ANONPAGES, HPAGE_PMD_NR as i64)),
            Leaf::Migration { .. } => c.rss = Some((MM_ANONPAGES, 1)),
            Leaf::Present {
                folio,
                special: false,
                ..
            } => match folio.kind.get() {
                FolioKind::Anon => {
                    c.rss = Some((MM_ANONPAGES, 1));
                    c.maps = Some(folio.pfn);
                }
                FolioKind::Shmem => {
                    c.rss = Some((MM_SHMEMPAGES, 1));
                    c.maps = Some(folio.pfn);
                }
                FolioKind::File => {
                    c.rss = Some((MM_FILEPAGES, 1));
                    c.maps = Some(folio.pfn);
                }
                _ => c.rss = Some((MM_FILEPAGES, 1)),
            },
            _ => {}
        }
        c
    }
}

/// An mm's counters as its page tables account them.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Tally {
    pub rss: [i64; NR_MM_COUNTERS],
    pub tables: i64,
}

/// The census of every folio's mappings and every swap slot's swap ptes.
#[derive(Default)]
pub struct Refs {
    pub mapcounts: BTreeMap<u64, i64>,
    pub swap: BTreeMap<u64, i64>,
}

impl Refs {
    /// Adds (`sign` 1) or takes away (-1) one leaf's contribution.
    pub fn count(&mut self, c: &Contribution, sign: i64, tally: &mut Tally) {
        if let Some((member, n)) = c.rss {
            tally.rss[member] += sign * n;
        }
        if let Some(pfn) = c.maps {
            *self.mapcounts.entry(pfn).or_default() += sign;
        }
        if let Some(offset) = c.swap {
            *self.swap.entry(offset).or_default() += sign;
        }
    }
}

pub fn check(k: &Kernel, censuses: &[(&MmStruct, Census)]) -> Option<Finding> {
    let mut refs = Refs::default();
    for (mm, c) in censuses {
        let mut tally = Tally {
            tables: c.tables,
            ..Tally::default()
        };
        for (_, leaf) in &c.leaves {
            refs.count(&Contribution::of(leaf), 1, &mut tally);
        }
        if let Some(f) = check_mm(mm, &tally) {
            return Some(f);
        }
    }
    check_global(k, &refs.swap).or_else(|| {
        k.mem
            .folios()
            .iter()
            .find_map(|f| check_folio(f, refs.mapcounts.get(&f.pfn).copied().unwrap_or(0)))
    })
}

/// An mm's rss counters and pgtables_bytes against its page tables.
pub fn check_mm(mm: &MmStruct, tally: &Tally) -> Option<Finding> {
    for (member, name) in [
        (MM_FILEPAGES, "MM_FILEPAGES"),
        (MM_SHMEMPAGES, "MM_SHMEMPAGES"),
        (MM_SWAPENTS, "MM_SWAPENTS"),
        (MM_ANONPAGES, "MM_ANONPAGES"),
    ] {
        let rss = mm.rss[member].get();
        let census = tally.rss[member];
        if rss != census {
            return Some(acct(format!(
                "mm {} {name} is {rss}, its page tables account {census}",
                mm.id
            )));
        }
    }
    let bytes = tally.tables * PAGE_SIZE as i64;
    if mm.pgtables_bytes.get() != bytes {
        let have = mm.pgtables_bytes.get();
        return Some(acct(format!(
            "mm {} pgtables_bytes is {have}, it owns {bytes} bytes of page tables",
            mm.id
        )));
    }
    None
}

/// What no single mm or folio owns: swap slots against the swap ptes
/// counted (`swap_refs`), leaks once every mm is gone, and the struct
/// pages of unallocated frames.
pub fn check_global(k: &Kernel, swap_refs: &BTreeMap<u64, i64>) -> Option<Finding> {
    if let Some(f) = swap_map_mismatch(k, swap_refs) {
        return Some(f);
    }
    if let Some(f) = leaked_after_exit(k) {
        return Some(f);
    }
    let (pfn, page) = k
        .mem
        .stray_pages()
        .into_iter()
        .find(|(_, s)| s.mapcount != 0)?;
    Some(acct(format!(
        "pfn {pfn:#x} is not an allocated page, yet its struct page has mapcount {}",
        page.mapcount
    )))
}

/// An anonymous or shmem folio's mapcount against the `mapped` entries
/// that map it, and its refcount against its mapcount.
pub fn check_folio(folio: &Folio, mapped: i64) -> Option<Finding> {
    if !matches!(
        folio.kind.get(),
        FolioKind::Anon | FolioKind::Shmem | FolioKind::File
    ) {
        return None;
    }
    let m = folio.mapcount.peek();
    if m != mapped {
        return Some(acct(format!(
            "folio pfn {:#x} has mapcount {m} but {mapped} entries map it",
            folio.pfn
        )));
    }
    let r = folio.refcount.peek();
    (r < m).then(|| {
        acct(format!(
            "folio pfn {:#x} has refcount {r} below its mapcount {m}",
            folio.pfn
        ))
    })
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
