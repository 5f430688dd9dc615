//! The checkers after a step, for what the step touched (DESIGN.md §4:
//! "after a step they recompute only what the step's accesses touched,
//! plus declared dependencies, and everything at the end of each
//! execution").
//!
//! The verdicts are the same predicates as the full checkers' (`check_all`
//! runs each of them over the whole state); here they run over a *scope*:
//! the leaf entries, pages and folios the touched objects can have changed
//! the verdict of. Finding the scope needs to know where a touched entry
//! sits and which entries map a touched folio, so this module keeps a
//! *shadow census*: the census `walk.rs` takes of every live mm, kept up
//! to date by re-walking, after each step, exactly the entries the step
//! wrote (and everything below them). The shadow is the checker's own
//! record, derived from ghost reads of the page tables, never from the
//! model's bookkeeping (rmap, mapcounts, rss).
//!
//! What each touched object brings into the scope:
//!
//! | touched | re-walked | verdicts recomputed |
//! |---|---|---|
//! | a page-table entry (write, xchg, cmpxchg) | the entry and all below it | every leaf found or lost there, and the pages those map |
//! | a page table freed | the entry that pointed to it | as above |
//! | `folio->_refcount`, `_mapcount` | the leaves mapping the folio, if it was freed | the folio's counts (and, if freed, its leaves and their pages) |
//! | `folio->mapping` | nothing | the leaves mapping the folio, the folio's counts |
//! | an anon_vma freed | nothing | every folio's `page->mapping` (INV-LIFETIME) |
//! | a file's ghost state (an operation started or returned, a store through a mapping) | nothing | every leaf of the file's VMAs (INV-PC-COHERENT, INV-DATA) |
//!
//! Declared dependencies, recomputed at every check whatever was touched
//! (their cost grows with the number of VMAs, anon_vmas and swap slots,
//! not with the pages mapped): the VMAs and their anon_vma chains and
//! lists (INV-RMAP-ANON (a)/(c), the VMA side of INV-LIFETIME), each mm's
//! rss counters and pgtables_bytes against the shadow's tally, swap slots,
//! stray struct pages, and each regular file's pages against its ghost
//! (INV-DATA: the page cache, else the disk; cost grows with the file's
//! pages). A VMA whose shape (bounds, pgoff, anon_vma, chain)
//! changed brings the leaves of its old and new ranges into the scope, and
//! a ghost page whose expected contents changed brings that page.
//!
//! A violation found here is re-checked by the full checkers, whose finding
//! is the one reported, so a report does not depend on the check mode. If
//! the full checkers see nothing, the shadow disagrees with the state: a
//! bug in mmrace, reported as an internal error.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use explore::{AccessKind, Finding, ObjectId, Touched, Touches};

use super::acct::{self, Contribution, Refs, Tally};
use super::walk::{entry_span, walk_entry, Leaf, Visit};
use super::{check_all, decode, lifetime, mapping, pagecache, rmap_anon};
use crate::mm_types::{
    Folio, FolioKind, Kernel, MmStruct, ANON_VMA_CLASS, FOLIO_MAPCOUNT_CLASS, FOLIO_MAPPING_CLASS,
    FOLIO_REFCOUNT_CLASS, PAGE_SHIFT, PGD_CLASS, PMD_CLASS, PTE_CLASS, PUD_CLASS,
};
use crate::pgtable::{pgd_offset, pmd_offset, pte_offset, pud_offset};

/// The incremental checkers' state for one execution.
#[derive(Default)]
pub struct Incremental {
    shadow: Option<Shadow>,
}

impl Incremental {
    /// Checks the state after the steps that made the `touched` changes.
    ///
    /// # Errors
    ///
    /// The incremental verdict and the full one disagree: a bug in mmrace.
    pub fn check_step(
        &mut self,
        k: &Kernel,
        touched: &Touches<'_>,
    ) -> Result<Option<Finding>, String> {
        let Some(shadow) = self.shadow.as_mut() else {
            // The first check of the execution takes the census whole.
            self.shadow = Some(Shadow::build(k));
            k.ghost.take_changed();
            k.ghost.files.take_changed();
            return Ok(check_all(k));
        };
        let live = live_mms(k);
        let scope = shadow.update(k, &live, touched);
        let Some(found) = shadow.check(k, &live, &scope) else {
            return Ok(None);
        };
        match check_all(k) {
            Some(full) => Ok(Some(full)),
            None => Err(format!(
                "incremental check reports \"{}\", which the full check does not see (the \
                 checkers' shadow census disagrees with the page tables)",
                found.title
            )),
        }
    }
}

/// One leaf of the shadow census: the entry's level and value, what it
/// leads to, and what it counts for (as counted when it was recorded, so
/// that taking it away later undoes exactly that).
struct Recorded {
    level: u8,
    raw: u64,
    leaf: Leaf,
    counts: Contribution,
}

/// The shadow census of one mm.
#[derive(Default)]
struct MmShadow {
    leaves: BTreeMap<u64, Recorded>,
    /// Entries that point to page tables, by (address, level of the
    /// entry): the table's pfn and the pages of page tables it counts.
    tables: BTreeMap<(u64, u8), (u64, i64)>,
    tally: Tally,
    vmas: Vec<VmaShape>,
}

/// What the verdicts read of a VMA: its bounds and offset (where the
/// reverse map places a page), its anon_vma and chain, its file.
#[derive(Clone, PartialEq, Eq)]
struct VmaShape {
    id: ObjectId,
    start: u64,
    end: u64,
    pgoff: u64,
    anon_vma: Option<u64>,
    chain: Vec<u64>,
    file: Option<u64>,
}

/// Whether the VMAs of `mm` still have the shapes `shapes` records
/// (compared in place: the common case changes nothing and allocates
/// nothing).
fn same_shapes(mm: &MmStruct, shapes: &[VmaShape]) -> bool {
    let mmap = mm.mmap_lock.peek();
    mmap.vmas.len() == shapes.len()
        && mmap.vmas.iter().zip(shapes).all(|(v, s)| {
            let chain = v.anon_vma_chain.borrow();
            v.life.id() == s.id
                && v.vm_start.get() == s.start
                && v.vm_end.get() == s.end
                && v.vm_pgoff.get() == s.pgoff
                && v.anon_vma.get().map(|a| a.id) == s.anon_vma
                && v.vm_file.get().map(|f| f.id) == s.file
                && chain.len() == s.chain.len()
                && chain
                    .iter()
                    .zip(&s.chain)
                    .all(|(c, id)| c.anon_vma.id == *id)
        })
}

fn vma_shapes(mm: &MmStruct) -> Vec<VmaShape> {
    mm.mmap_lock
        .peek()
        .vmas
        .iter()
        .map(|v| VmaShape {
            id: v.life.id(),
            start: v.vm_start.get(),
            end: v.vm_end.get(),
            pgoff: v.vm_pgoff.get(),
            anon_vma: v.anon_vma.get().map(|a| a.id),
            chain: v
                .anon_vma_chain
                .borrow()
                .iter()
                .map(|c| c.anon_vma.id)
                .collect(),
            file: v.vm_file.get().map(|f| f.id),
        })
        .collect()
}

/// Where a page table sits: the mm, the address its first entry maps and
/// its level (1 = PTE table … 4 = PGD).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Place {
    mm: u64,
    base: u64,
    level: u8,
}

/// The shadow census of every live mm, with the indexes the scope needs.
#[derive(Default)]
struct Shadow {
    mms: BTreeMap<u64, MmShadow>,
    index: Index,
}

/// What the shadow knows across mms.
#[derive(Default)]
struct Index {
    /// Each reachable page table by pfn.
    places: BTreeMap<u64, Place>,
    /// The leaves leading to each folio (by head pfn): (mm, address).
    by_folio: BTreeMap<u64, BTreeSet<(u64, u64)>>,
    refs: Refs,
}

/// What the verdicts are recomputed for.
#[derive(Default)]
struct Scope {
    /// Leaves (mm, address) whose verdicts may have changed.
    leaves: BTreeSet<(u64, u64)>,
    /// Pages whose reachability or contents may have changed: (mm, first
    /// vpn, last vpn).
    pages: Vec<(u64, u64, u64)>,
    /// Folios (head pfn) whose counts or mapping may have changed.
    folios: BTreeSet<u64>,
    /// Swap slots whose swap ptes changed (their cached page's mapping
    /// may now have swap ptes to map it again, or none).
    swap_slots: BTreeSet<u64>,
    /// An anon_vma was freed: every folio's mapping is in question.
    every_folio: bool,
}

impl Scope {
    fn pages_of(&mut self, mm: u64, va: u64, level: u8) {
        let first = va >> PAGE_SHIFT;
        self.pages
            .push((mm, first, first + (entry_span(level) >> PAGE_SHIFT)));
    }
}

/// Records what a walk finds into one mm's shadow, noting each leaf in
/// the scope.
struct Recorder<'a> {
    mm: u64,
    ms: &'a mut MmShadow,
    index: &'a mut Index,
    /// Where found leaves go to be judged (`None` while the first check
    /// takes the census, which the whole check judges).
    scope: Option<&'a mut Scope>,
}

impl Visit for Recorder<'_> {
    fn table(&mut self, va: u64, level: u8, table: &Rc<Folio>, pages: i64) {
        self.ms.tables.insert((va, level), (table.pfn, pages));
        self.ms.tally.tables += pages;
        let place = Place {
            mm: self.mm,
            base: va,
            level: level - 1,
        };
        self.index.places.insert(table.pfn, place);
    }

    fn leaf(&mut self, va: u64, level: u8, raw: u64, leaf: Leaf) {
        let counts = Contribution::of(&leaf);
        self.index.refs.count(&counts, 1, &mut self.ms.tally);
        if let Some(pfn) = folio_of(&leaf) {
            self.index
                .by_folio
                .entry(pfn)
                .or_default()
                .insert((self.mm, va));
        }
        if let Some(scope) = self.scope.as_deref_mut() {
            note_counts(scope, &counts);
            scope.leaves.insert((self.mm, va));
            scope.pages_of(self.mm, va, level);
        }
        self.ms.leaves.insert(
            va,
            Recorded {
                level,
                raw,
                leaf,
                counts,
            },
        );
    }
}

/// The folio a leaf leads to.
fn folio_rc(leaf: &Leaf) -> Option<&Rc<Folio>> {
    match leaf {
        Leaf::HugePresent(f) | Leaf::HugeMigration(f) => Some(f),
        Leaf::Present { folio, .. } | Leaf::Migration { folio, .. } => Some(folio),
        _ => None,
    }
}

/// The folio (head pfn) a leaf leads to.
fn folio_of(leaf: &Leaf) -> Option<u64> {
    folio_rc(leaf).map(|f| f.pfn)
}

/// A leaf counted or uncounted changes its folio's census and its swap
/// slot's: both go in the scope.
fn note_counts(scope: &mut Scope, counts: &Contribution) {
    scope.folios.extend(counts.maps);
    scope.swap_slots.extend(counts.swap);
}

/// The level of the entries of a page-table object class.
fn table_level(class: &str) -> Option<u8> {
    match class {
        PTE_CLASS => Some(1),
        PMD_CLASS => Some(2),
        PUD_CLASS => Some(3),
        PGD_CLASS => Some(4),
        _ => None,
    }
}

fn live_mms(k: &Kernel) -> Vec<Rc<MmStruct>> {
    k.mms
        .borrow()
        .iter()
        .filter(|m| !m.exited.get())
        .cloned()
        .collect()
}

impl Shadow {
    fn build(k: &Kernel) -> Shadow {
        let mut shadow = Shadow::default();
        for mm in live_mms(k) {
            shadow.add_mm(k, &mm, None);
        }
        shadow
    }

    fn add_mm(&mut self, k: &Kernel, mm: &MmStruct, scope: Option<&mut Scope>) {
        let mut ms = MmShadow {
            vmas: vma_shapes(mm),
            ..MmShadow::default()
        };
        let pgd = Place {
            mm: mm.id,
            base: 0,
            level: 4,
        };
        self.index.places.insert(mm.pgd.pfn, pgd);
        let mut rec = Recorder {
            mm: mm.id,
            ms: &mut ms,
            index: &mut self.index,
            scope,
        };
        super::walk::walk_table(k, &mm.pgd, 0, 4, &mut rec);
        self.mms.insert(mm.id, ms);
    }

    /// Brings the shadow up to date with what `touched` changed; returns
    /// the scope of the verdicts to recompute.
    fn update(&mut self, k: &Kernel, live: &[Rc<MmStruct>], touched: &Touches<'_>) -> Scope {
        let mut scope = Scope::default();
        self.follow_mms(k, live, &mut scope);
        for t in touched.iter() {
            self.follow(k, live, &t, &mut scope);
        }
        scope.pages.extend(k.ghost.take_changed());
        self.follow_files(k, live, &mut scope);
        self.follow_vmas(live, &mut scope);
        scope
    }

    /// A file whose expected state changed (a file operation started or
    /// returned, a store through a mapping) brings every leaf of its VMAs
    /// into the scope: their EOF and data verdicts read that state.
    fn follow_files(&self, k: &Kernel, live: &[Rc<MmStruct>], scope: &mut Scope) {
        let files = k.ghost.files.take_changed();
        if files.is_empty() {
            return;
        }
        for mm in live {
            let Some(ms) = self.mms.get(&mm.id) else {
                continue;
            };
            for vma in &mm.mmap_lock.peek().vmas {
                if !vma.vm_file.get().is_some_and(|f| files.contains(&f.id)) {
                    continue;
                }
                for &va in ms.leaves.range(vma.start()..vma.end()).map(|(va, _)| va) {
                    scope.leaves.insert((mm.id, va));
                }
            }
        }
    }

    /// Drops the shadow of an mm that exited, and takes the census of one
    /// that appeared.
    fn follow_mms(&mut self, k: &Kernel, live: &[Rc<MmStruct>], scope: &mut Scope) {
        let gone: Vec<u64> = self
            .mms
            .keys()
            .copied()
            .filter(|id| !live.iter().any(|m| m.id == *id))
            .collect();
        for id in gone {
            self.forget(id, 0, u64::MAX, 4, scope);
            self.mms.remove(&id);
            self.index.places.retain(|_, p| p.mm != id);
        }
        for mm in live {
            if !self.mms.contains_key(&mm.id) {
                self.add_mm(k, mm, Some(&mut *scope));
            }
        }
    }

    fn follow(&mut self, k: &Kernel, live: &[Rc<MmStruct>], t: &Touched, scope: &mut Scope) {
        if let Some(level) = table_level(t.class) {
            let Some(place) = self.index.places.get(&t.detail).copied() else {
                return; // not reachable: nothing a verdict reads
            };
            if place.level != level {
                return;
            }
            if t.kind == AccessKind::Free {
                // The entry that points to the table now leads to a
                // freed page.
                if place.level < 4 {
                    self.rewalk(k, live, place.mm, place.base, place.level + 1, scope);
                }
                return;
            }
            let va = place.base + u64::from(t.index) * entry_span(level);
            self.rewalk(k, live, place.mm, va, level, scope);
            if level == 2 {
                self.recount_deposits(k, t.detail, place);
            }
            return;
        }
        match t.class {
            FOLIO_REFCOUNT_CLASS | FOLIO_MAPCOUNT_CLASS => {
                scope.folios.insert(t.detail);
                if self.folio_was_freed(k, t.detail) {
                    self.refresh_folio(k, live, t.detail, scope);
                }
            }
            FOLIO_MAPPING_CLASS => {
                // Where the reverse map places the folio: the verdicts of
                // the leaves mapping it (INV-DECODE, INV-RMAP-ANON (b)).
                scope.folios.insert(t.detail);
                if let Some(at) = self.index.by_folio.get(&t.detail) {
                    scope.leaves.extend(at.iter().copied());
                }
            }
            ANON_VMA_CLASS if t.kind == AccessKind::Free => scope.every_folio = true,
            _ => {}
        }
    }

    /// Whether the folio the shadow's leaves lead to at `pfn` is no longer
    /// the allocated folio there (freed, or freed and handed out again):
    /// what those leaves lead to is then derived anew. A change of its
    /// counters alone changes no leaf.
    fn folio_was_freed(&self, k: &Kernel, pfn: u64) -> bool {
        let Some(&(mm, va)) = self.index.by_folio.get(&pfn).and_then(|at| at.first()) else {
            return false;
        };
        let Some(recorded) = self
            .mms
            .get(&mm)
            .and_then(|ms| ms.leaves.get(&va))
            .and_then(|r| folio_rc(&r.leaf))
        else {
            return false;
        };
        let now = k.mem.pfn_folio(pfn);
        recorded.kind.get() == FolioKind::Free || !now.is_some_and(|f| Rc::ptr_eq(&f, recorded))
    }

    /// The tables deposited with PMD table `pfn` change along with its
    /// entries (under its pmd lock): the pud entry pointing to it counts
    /// them.
    fn recount_deposits(&mut self, k: &Kernel, pfn: u64, place: Place) {
        let Some(table) = k.mem.pfn_folio(pfn) else {
            return;
        };
        let Some(ms) = self.mms.get_mut(&place.mm) else {
            return;
        };
        let Some(entry) = ms.tables.get_mut(&(place.base, 3)) else {
            return;
        };
        let pages = 1 + table.pmd_huge_pte.borrow().len() as i64;
        ms.tally.tables += pages - entry.1;
        entry.1 = pages;
    }

    /// A folio changed (freed, mapped, given a mapping): what its leaves
    /// lead to is derived anew.
    fn refresh_folio(&mut self, k: &Kernel, live: &[Rc<MmStruct>], pfn: u64, scope: &mut Scope) {
        let Some(at) = self.index.by_folio.get(&pfn) else {
            return;
        };
        let at: Vec<(u64, u64)> = at.iter().copied().collect();
        for (mm, va) in at {
            let Some(level) = self
                .mms
                .get(&mm)
                .and_then(|ms| ms.leaves.get(&va))
                .map(|r| r.level)
            else {
                continue;
            };
            self.rewalk(k, live, mm, va, level, scope);
        }
    }

    /// Takes the census anew of what the entry of level `level` mapping
    /// `va` of mm `mm` leads to, reading it from the top of the tree.
    fn rewalk(
        &mut self,
        k: &Kernel,
        live: &[Rc<MmStruct>],
        mm: u64,
        va: u64,
        level: u8,
        scope: &mut Scope,
    ) {
        let Some(mm_struct) = live.iter().find(|m| m.id == mm) else {
            return;
        };
        self.forget(mm, va, va + entry_span(level), level, scope);
        let raw = entry_raw(k, mm_struct, va, level).unwrap_or(0);
        let Some(ms) = self.mms.get_mut(&mm) else {
            return;
        };
        let mut rec = Recorder {
            mm,
            ms,
            index: &mut self.index,
            scope: Some(scope),
        };
        walk_entry(k, raw, va, level, &mut rec);
    }

    /// Takes out of the shadow what entries of level `level` or below in
    /// `[start, end)` of mm `mm` led to.
    fn forget(&mut self, mm: u64, start: u64, end: u64, level: u8, scope: &mut Scope) {
        let Some(ms) = self.mms.get_mut(&mm) else {
            return;
        };
        let leaves: Vec<u64> = ms
            .leaves
            .range(start..end)
            .filter(|(_, r)| r.level <= level)
            .map(|(va, _)| *va)
            .collect();
        for va in leaves {
            let Some(r) = ms.leaves.remove(&va) else {
                continue;
            };
            self.index.refs.count(&r.counts, -1, &mut ms.tally);
            if let Some(pfn) = folio_of(&r.leaf) {
                if let Some(set) = self.index.by_folio.get_mut(&pfn) {
                    set.remove(&(mm, va));
                    if set.is_empty() {
                        self.index.by_folio.remove(&pfn);
                    }
                }
            }
            note_counts(scope, &r.counts);
            scope.pages_of(mm, va, r.level);
        }
        let tables: Vec<(u64, u8)> = ms
            .tables
            .range((start, 0)..(end, 0))
            .filter(|((_, l), _)| *l <= level)
            .map(|(key, _)| *key)
            .collect();
        for key in tables {
            let Some((pfn, pages)) = ms.tables.remove(&key) else {
                continue;
            };
            ms.tally.tables -= pages;
            let here = Place {
                mm,
                base: key.0,
                level: key.1 - 1,
            };
            if self.index.places.get(&pfn) == Some(&here) {
                self.index.places.remove(&pfn);
            }
        }
    }

    /// VMAs whose shape changed bring the leaves of their ranges, old and
    /// new, into the scope.
    fn follow_vmas(&mut self, live: &[Rc<MmStruct>], scope: &mut Scope) {
        for mm in live {
            let Some(ms) = self.mms.get_mut(&mm.id) else {
                continue;
            };
            if same_shapes(mm, &ms.vmas) {
                continue;
            }
            let old = std::mem::replace(&mut ms.vmas, vma_shapes(mm));
            let changed = old
                .iter()
                .filter(|v| !ms.vmas.contains(v))
                .chain(ms.vmas.iter().filter(|v| !old.contains(v)));
            for v in changed {
                let leaves = ms.leaves.range(v.start..v.end);
                scope.leaves.extend(leaves.map(|(va, _)| (mm.id, *va)));
                // A huge leaf below the start may cover it.
                if let Some((va, r)) = ms.leaves.range(..v.start).next_back() {
                    if va + entry_span(r.level) > v.start {
                        scope.leaves.insert((mm.id, *va));
                    }
                }
            }
        }
    }

    /// The verdicts over `scope`: `Some` at the first violation.
    fn check(&self, k: &Kernel, live: &[Rc<MmStruct>], scope: &Scope) -> Option<Finding> {
        let mm_of = |id: u64| live.iter().find(|m| m.id == id);
        for &(mm, va) in &scope.leaves {
            let (Some(mm), Some(r)) = (
                mm_of(mm),
                self.mms.get(&mm).and_then(|ms| ms.leaves.get(&va)),
            ) else {
                continue;
            };
            let found = (r.level == 1)
                .then(|| decode::check_pte(k, mm, va, r.raw))
                .flatten()
                .or_else(|| lifetime::check_leaf(k, mm, va, &r.leaf))
                .or_else(|| rmap_anon::check_leaf(k, mm, va, &r.leaf))
                .or_else(|| pagecache::check_leaf(k, mm, va, &r.leaf));
            if found.is_some() {
                return found;
            }
        }
        if let Some(f) = lifetime::check_vmas(k, live.iter().map(|m| &**m)) {
            return Some(f);
        }
        if let Some(f) = live.iter().find_map(|mm| rmap_anon::check_structure(mm)) {
            return Some(f);
        }
        if let Some(f) = self.check_pages(k, scope) {
            return Some(f);
        }
        let files = k.files.borrow().clone();
        if let Some(f) = files.iter().find_map(|f| pagecache::check_file(k, f)) {
            return Some(f);
        }
        for mm in live {
            let tally = self.mms.get(&mm.id).map(|ms| ms.tally).unwrap_or_default();
            if let Some(f) = acct::check_mm(mm, &tally) {
                return Some(f);
            }
        }
        acct::check_global(k, &self.index.refs.swap).or_else(|| self.check_folios(k, scope))
    }

    /// INV-NO-LOST-MAPPING and INV-DATA for the pages in the scope that
    /// must stay mapped.
    fn check_pages(&self, k: &Kernel, scope: &Scope) -> Option<Finding> {
        for (mm, first, last) in merged(&scope.pages) {
            let Some(ms) = self.mms.get(&mm) else {
                continue;
            };
            for (from, to, accept) in k.ghost.must_map_in(mm, first, last) {
                for vpn in from..to {
                    let va = vpn << PAGE_SHIFT;
                    let below = ms.leaves.range(..=va).next_back();
                    let below = below.map(|(at, r)| (*at, &r.leaf));
                    if let Some(f) = mapping::check_page(k, mm, va, below, &accept) {
                        return Some(f);
                    }
                }
            }
        }
        None
    }

    /// INV-ACCT's and INV-LIFETIME's per-folio verdicts for the folios in
    /// the scope (every folio after an anon_vma was freed).
    fn check_folios(&self, k: &Kernel, scope: &Scope) -> Option<Finding> {
        let check = |f: &Folio| {
            let mapped = self.index.refs.mapcounts.get(&f.pfn).copied().unwrap_or(0);
            lifetime::check_folio(k, f).or_else(|| acct::check_folio(f, mapped))
        };
        if scope.every_folio {
            return k.mem.folios().iter().find_map(|f| check(f));
        }
        let folios = scope
            .folios
            .iter()
            .filter_map(|&pfn| k.mem.pfn_folio(pfn).filter(|f| f.pfn == pfn));
        let cached = scope.swap_slots.iter().filter_map(|&o| k.swap.cached(o));
        folios
            .chain(cached)
            .filter(|f| f.kind.get() != FolioKind::Free)
            .find_map(|f| check(&f))
    }
}

/// The runs of pages `pages` names, sorted and merged: a page is judged
/// once however many changes named it.
fn merged(pages: &[(u64, u64, u64)]) -> Vec<(u64, u64, u64)> {
    let mut sorted = pages.to_vec();
    sorted.sort_unstable();
    let mut out: Vec<(u64, u64, u64)> = Vec::with_capacity(sorted.len());
    for (mm, first, last) in sorted {
        match out.last_mut() {
            Some(run) if run.0 == mm && first <= run.2 => run.2 = run.2.max(last),
            _ => out.push((mm, first, last)),
        }
    }
    out
}

/// The value of the entry of level `level` mapping `va` of `mm`, read
/// from the top of the tree (ghost reads); `None` when no table of that
/// level is reachable there.
fn entry_raw(k: &Kernel, mm: &MmStruct, va: u64, level: u8) -> Option<u64> {
    let pgd = pgd_offset(mm, va).peek();
    if level == 4 {
        return Some(pgd);
    }
    let pud = pud_offset(k, pgd, va)?.peek();
    if level == 3 {
        return Some(pud);
    }
    let pmd = pmd_offset(k, pud, va)?.peek();
    if level == 2 {
        return Some(pmd);
    }
    Some(pte_offset(k, pmd, va)?.peek())
}
