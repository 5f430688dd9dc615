//! The page allocator: frames per NUMA node, folios by pfn.
//!
//! Models the parts of mm/page_alloc.c the model needs: `alloc_pages_node`
//! of order 0 or HPAGE_PMD_ORDER, freeing, and `pfn_folio`. Allocation is
//! deterministic (bump pointer plus LIFO reuse per node and order), so the
//! same schedule yields the same pfns and the same report.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::mm_types::{Folio, FolioKind};

/// First pfn of node `n`: node 0 starts at 4 GiB, each node spans 4 GiB.
pub fn node_start_pfn(node: u32) -> u64 {
    (u64::from(node) + 1) << 20
}

/// Frames each node offers the model (128 MiB): enough for every scenario
/// and small enough that exhausting it is a visible allocation failure.
pub const NODE_PAGES: u64 = 0x8000;

/// The `struct page` of a frame outside every allocated folio (free in the
/// buddy allocator, or reserved), as kernel code that reaches it through a
/// wrong pfn leaves it. Only frames such code touched have a record.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct StrayPage {
    /// `_count` (0 for a free page).
    pub refcount: i64,
    /// `page_mapcount()` = `_mapcount + 1` (0 for a free page).
    pub mapcount: i64,
    /// `PG_referenced` (`mark_page_accessed()`).
    pub referenced: bool,
    /// `PG_dirty` (`set_page_dirty()`).
    pub dirty: bool,
}

pub struct PhysMem {
    nodes: u32,
    /// Next never-used pfn per node.
    bump: RefCell<Vec<u64>>,
    /// Freed head pfns per (node, order), reused last-in first-out.
    free: RefCell<BTreeMap<(u32, u32), Vec<u64>>>,
    /// Allocated folios by head pfn.
    /// Protected by: the allocator (`zone->lock`; one step here).
    folios: RefCell<BTreeMap<u64, Rc<Folio>>>,
    /// Per node, the allocated folio of each frame (by offset from the
    /// node's first pfn, up to the highest frame handed out so far):
    /// `pfn_folio()` without a search, as the kernel's memmap is an array.
    /// Protected by: as `folios`. Invariant: holds a folio exactly for
    /// the frames of the folios in `folios`.
    frames: RefCell<Vec<Vec<Option<Rc<Folio>>>>>,
    /// Fault injection (knob `fail_page_alloc`): every allocation may fail.
    fail: bool,
    /// `struct page`s of unallocated frames that kernel code changed.
    /// Protected by: the allocator (`zone->lock`; one step here), and the
    /// page-table lock of the entry through which code reached the frame.
    /// Invariant (INV-ACCT): mapcount 0.
    stray: RefCell<BTreeMap<u64, StrayPage>>,
    /// What the hardware reads and writes in frames no folio holds, when
    /// a leaf entry leads there (a freed page, a wrong or machine frame):
    /// by frame, a page of contents outside every checker's census.
    /// Protected by: nothing; the hardware does not ask.
    stray_frames: RefCell<BTreeMap<u64, Rc<Folio>>>,
}

impl PhysMem {
    pub fn new(nodes: u32, fail: bool) -> PhysMem {
        PhysMem {
            nodes,
            bump: RefCell::new((0..nodes).map(node_start_pfn).collect()),
            free: RefCell::new(BTreeMap::new()),
            folios: RefCell::new(BTreeMap::new()),
            frames: RefCell::new(vec![Vec::new(); nodes as usize]),
            fail,
            stray: RefCell::new(BTreeMap::new()),
            stray_frames: RefCell::new(BTreeMap::new()),
        }
    }

    /// `highest_memmap_pfn`: the last frame with a `struct page`.
    pub fn highest_memmap_pfn(&self) -> u64 {
        node_start_pfn(self.nodes.saturating_sub(1)) + NODE_PAGES - 1
    }

    /// The `struct page` of an unallocated frame.
    pub fn stray_page(&self, pfn: u64) -> StrayPage {
        self.stray.borrow().get(&pfn).copied().unwrap_or_default()
    }

    /// Changes the `struct page` of an unallocated frame.
    pub fn update_stray_page(&self, pfn: u64, change: impl FnOnce(&mut StrayPage)) {
        change(self.stray.borrow_mut().entry(pfn).or_default());
    }

    /// The contents of a frame no folio holds, as the MMU reaches them
    /// (`frame` is a guest pfn, or a machine frame Xen's m2p does not
    /// know, kept apart): zero until a store through a bad entry.
    pub fn stray_frame(&self, frame: u64) -> Rc<Folio> {
        self.stray_frames
            .borrow_mut()
            .entry(frame)
            .or_insert_with(|| Rc::new(Folio::new(frame, 0, 0, FolioKind::Anon)))
            .clone()
    }

    /// Every unallocated frame whose `struct page` was changed (checkers).
    pub fn stray_pages(&self) -> Vec<(u64, StrayPage)> {
        self.stray.borrow().iter().map(|(p, s)| (*p, *s)).collect()
    }

    pub fn nodes(&self) -> u32 {
        self.nodes
    }

    /// `alloc_pages_node(node, gfp, order)`; `None` when the node is full.
    /// With fault injection on, the allocation may fail (an explored choice
    /// and a scheduling point), as under CONFIG_FAIL_PAGE_ALLOC.
    pub fn alloc_pages(&self, node: u32, order: u32, kind: FolioKind) -> Option<Rc<Folio>> {
        if !explore::sync::alloc("alloc_pages", self.fail) {
            explore::mark("alloc_pages: injected failure");
            return None;
        }
        self.alloc_pages_nofail(node, order, kind)
    }

    /// `__GFP_NOFAIL`-like: never an injected failure (fails only when the
    /// node is full). For what the scenario itself sets up, such as a
    /// process's PGD.
    pub fn alloc_pages_nofail(&self, node: u32, order: u32, kind: FolioKind) -> Option<Rc<Folio>> {
        let pfn = self.take_frames(node, order)?;
        let folio = Rc::new(Folio::new(pfn, order, node, kind));
        self.check_new_pages(&folio);
        self.set_frames(&folio, Some(&folio));
        self.folios.borrow_mut().insert(pfn, folio.clone());
        Some(folio)
    }

    /// `check_new_page()`: a page handed out must not be mapped. Its
    /// `struct page` starts afresh either way.
    fn check_new_pages(&self, folio: &Folio) {
        let end = folio.pfn + folio.nr_pages();
        let stale: Vec<(u64, StrayPage)> = self
            .stray
            .borrow()
            .range(folio.pfn..end)
            .map(|(p, s)| (*p, *s))
            .collect();
        for (pfn, page) in stale {
            self.stray.borrow_mut().remove(&pfn);
            if page.mapcount != 0 {
                explore::raise(crate::debug::bad_page_pfn(
                    pfn,
                    page.refcount,
                    page.mapcount,
                    "nonzero mapcount",
                ));
            }
        }
    }

    fn take_frames(&self, node: u32, order: u32) -> Option<u64> {
        if node >= self.nodes {
            return None;
        }
        if let Some(pfn) = self
            .free
            .borrow_mut()
            .get_mut(&(node, order))
            .and_then(Vec::pop)
        {
            return Some(pfn);
        }
        let mut bump = self.bump.borrow_mut();
        let n = 1u64 << order;
        let pfn = bump[node as usize].next_multiple_of(n);
        if pfn + n > node_start_pfn(node) + NODE_PAGES {
            return None;
        }
        bump[node as usize] = pfn + n;
        Some(pfn)
    }

    /// `free_unref_page()` / `free_compound_page()`: the folio becomes
    /// `Free`; later uses of it are use-after-free.
    pub fn free_folio(&self, folio: &Folio) {
        folio.kind.set(FolioKind::Free);
        folio.data.borrow_mut().clear();
        self.set_frames(folio, None);
        self.folios.borrow_mut().remove(&folio.pfn);
        self.free
            .borrow_mut()
            .entry((folio.node, folio.order))
            .or_default()
            .push(folio.pfn);
    }

    /// `pfn_folio()`: the allocated folio containing `pfn`, if any.
    pub fn pfn_folio(&self, pfn: u64) -> Option<Rc<Folio>> {
        let (node, offset) = self.frame_of(pfn)?;
        self.frames.borrow()[node].get(offset).cloned().flatten()
    }

    /// The node and the offset in it of frame `pfn`, if a node has it.
    fn frame_of(&self, pfn: u64) -> Option<(usize, usize)> {
        let node = (pfn >> 20).checked_sub(1)?;
        let offset = pfn - node_start_pfn(node as u32);
        (node < u64::from(self.nodes) && offset < NODE_PAGES)
            .then_some((node as usize, offset as usize))
    }

    /// Records `to` as the folio of each frame of `folio`.
    fn set_frames(&self, folio: &Folio, to: Option<&Rc<Folio>>) {
        let Some((node, first)) = self.frame_of(folio.pfn) else {
            return;
        };
        let mut frames = self.frames.borrow_mut();
        let frames = &mut frames[node];
        let end = first + folio.nr_pages() as usize;
        if frames.len() < end {
            frames.resize(end, None);
        }
        for slot in &mut frames[first..end] {
            *slot = to.cloned();
        }
    }

    /// Every allocated folio, in pfn order (checkers).
    pub fn folios(&self) -> Vec<Rc<Folio>> {
        self.folios.borrow().values().cloned().collect()
    }
}
