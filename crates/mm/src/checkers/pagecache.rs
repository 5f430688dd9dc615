//! INV-PC-COHERENT and INV-DATA for regular files (seed-bugs.md §4.5),
//! recomputed from the page tables, the page cache and the file ghost.
//!
//! - INV-PC-COHERENT (a): a present pte of a file VMA that maps a
//!   page-cache page maps the page the file's cache holds at that page's
//!   index (`page->mapping` is the file, the tree holds it there), and in
//!   a linear VMA that index is the address's linear page index.
//! - INV-PC-COHERENT (c): once a truncate has returned, no pte of any VMA
//!   of the file — a file page or a private COW copy — maps a page at or
//!   past EOF.
//! - INV-DATA: each page of the file below EOF holds what the file ghost
//!   says — in the page cache if cached, else on disk — and every pte of
//!   the file maps a page holding it too.
//!
//! (b), "no page leaves the page cache while mapped", is the kernel's own
//! assertion (`remove_mapped_check`), checked in `filemap.rs` at the step.
//! Pages an operation in flight is changing are not judged (see
//! ghost_file.rs).

use explore::{Finding, FindingKind};

use super::walk::{Census, Leaf};
use crate::mm_types::{
    vm_flags, AddressSpace, Backing, Folio, FolioKind, Kernel, MmStruct, PageData, Vma, PAGE_SIZE,
};

/// Every leaf of every live mm, then every file.
pub fn check(k: &Kernel, censuses: &[(&MmStruct, Census)]) -> Option<Finding> {
    if k.files.borrow().is_empty() {
        return None;
    }
    for (mm, c) in censuses {
        for (va, leaf) in &c.leaves {
            if let Some(f) = check_leaf(k, mm, *va, leaf) {
                return Some(f);
            }
        }
    }
    let files = k.files.borrow().clone();
    files.iter().find_map(|f| check_file(k, f))
}

/// The verdicts for the leaf at `va` of `mm`.
pub fn check_leaf(k: &Kernel, mm: &MmStruct, va: u64, leaf: &Leaf) -> Option<Finding> {
    let Leaf::Present { folio, subpage, .. } = leaf else {
        return None;
    };
    let vma = mm.mmap_lock.peek().vma_lookup(va)?.clone();
    let file = vma.vm_file.get()?.clone();
    if file.backing != Backing::Disk {
        return None;
    }
    let nonlinear = vma.flags() & vm_flags::VM_NONLINEAR != 0;
    match folio.kind.get() {
        FolioKind::File => {
            let index = folio.index.get();
            coherent(k, mm, &vma, &file, va, folio, nonlinear)
                .or_else(|| inside_eof(k, mm, &file, va, index))
                .or_else(|| {
                    mapping_sees_file(k, mm, &file, va, index, &folio.data.borrow()[*subpage])
                })
        }
        FolioKind::Anon if !nonlinear => inside_eof(k, mm, &file, va, vma.linear_page_index(va)),
        _ => None,
    }
}

/// INV-PC-COHERENT (a) for a page-cache page mapped at `va`.
fn coherent(
    k: &Kernel,
    mm: &MmStruct,
    vma: &Vma,
    file: &AddressSpace,
    va: u64,
    page: &Folio,
    nonlinear: bool,
) -> Option<Finding> {
    let index = page.index.get();
    let cached = file.cached(index);
    let owned = page.mapping.peek() == Some(file.id);
    let in_cache = owned && cached.as_ref().is_some_and(|c| c.pfn == page.pfn);
    let placed = nonlinear || index == vma.linear_page_index(va);
    if in_cache && placed {
        return None;
    }
    let why = if !owned {
        match page.mapping.peek() {
            None => "page->mapping is NULL: it was removed from the page cache while a fault \
                     was mapping it (an orphan)"
                .to_string(),
            Some(other) => format!("page->mapping is file {other}, not this VMA's file"),
        }
    } else if !in_cache {
        "the page cache holds another page at its index".to_string()
    } else {
        format!(
            "it is file page {index}, but the VMA maps page {} there",
            vma.linear_page_index(va)
        )
    };
    let mut f = Finding::new(
        FindingKind::Invariant,
        "INV-PC-COHERENT",
        format!(
            "INV-PC-COHERENT: pte at {va:#x} (mm {}) maps pfn {:#x}, which is not file {}'s page {index} in the page cache",
            mm.id, page.pfn, file.id
        ),
    )
    .detail(why)
    .detail(format!(
        "page pfn:{:#x} index:{index} mapping:{} refcount:{} mapcount:{}: the mapping sees {}",
        page.pfn,
        page.mapping
            .peek()
            .map_or("NULL".to_string(), |m| format!("file {m}")),
        page.refcount.peek(),
        page.mapcount.peek(),
        page.data.borrow()[0].describe()
    ))
    .detail(format!(
        "the page cache holds {} at index {index}; read() returns {} there",
        cached.as_ref().map_or("no page".to_string(), |c| format!("pfn {:#x}", c.pfn)),
        read_would_return(file, index)
    ));
    if !owned {
        f = f.detail(format!(
            "a store through {va:#x} lands in pfn {:#x} only: write-back never sees it (the store \
             is lost), and read() and other mappings of page {index} keep other data",
            page.pfn
        ));
    }
    let _ = k;
    Some(f)
}

/// What `read()` of page `index` returns now: the cached page, else (or
/// while it is being read in) the block on disk.
fn read_would_return(file: &AddressSpace, index: u64) -> String {
    match file.cached(index).filter(|p| p.uptodate.get()) {
        Some(page) => page.data.borrow()[0].describe(),
        None => file
            .disk
            .borrow()
            .get(&index)
            .map_or("zeroes (a hole)".to_string(), |d| {
                format!("{} from disk", d.describe())
            }),
    }
}

/// INV-PC-COHERENT (c): a pte at file page `index` is inside EOF once no
/// size change is in flight.
fn inside_eof(
    k: &Kernel,
    mm: &MmStruct,
    file: &AddressSpace,
    va: u64,
    index: u64,
) -> Option<Finding> {
    let size = k.ghost.files.size(file.id)?;
    if index < size.div_ceil(PAGE_SIZE) {
        return None;
    }
    Some(
        Finding::new(
            FindingKind::Invariant,
            "INV-PC-COHERENT",
            format!(
                "INV-PC-COHERENT: pte at {va:#x} (mm {}) maps file {} page {index}, past EOF ({size} bytes) after truncate returned",
                mm.id, file.id
            ),
        )
        .detail("truncate must leave no mapping of the pages it cut off, private COW copies included"),
    )
}

/// INV-DATA through a mapping: the page mapped at file page `index`
/// holds what the file holds.
fn mapping_sees_file(
    k: &Kernel,
    mm: &MmStruct,
    file: &AddressSpace,
    va: u64,
    index: u64,
    data: &PageData,
) -> Option<Finding> {
    let accept = k.ghost.files.accept(file.id, index)?;
    if accept.contains(data) {
        return None;
    }
    Some(data_finding(
        format!(
            "INV-DATA: the mapping at {va:#x} (mm {}) of file {} page {index} shows {}, the file holds {}",
            mm.id,
            file.id,
            data.describe(),
            describe_all(&accept)
        ),
        file,
        index,
    ))
}

/// INV-DATA for every judged page of `file`: the cached page if it is up
/// to date, else the block (which a page being read in will hold), holds
/// what the ghost says.
pub fn check_file(k: &Kernel, file: &AddressSpace) -> Option<Finding> {
    if file.backing != Backing::Disk {
        return None;
    }
    let pages = k
        .ghost
        .files
        .size(file.id)
        .unwrap_or(file.size())
        .div_ceil(PAGE_SIZE);
    for index in 0..pages {
        let Some(accept) = k.ghost.files.accept(file.id, index) else {
            continue;
        };
        let (held, place) = match file.cached(index).filter(|p| p.uptodate.get()) {
            Some(page) => (
                page.data.borrow()[0].clone(),
                format!("its page-cache page pfn {:#x}", page.pfn),
            ),
            None => (
                file.disk.borrow().get(&index).cloned().unwrap_or_default(),
                "its block on disk".to_string(),
            ),
        };
        if !accept.contains(&held) {
            return Some(data_finding(
                format!(
                    "INV-DATA: file {} page {index}: read() returns {} ({place}), the file should hold {}",
                    file.id,
                    held.describe(),
                    describe_all(&accept)
                ),
                file,
                index,
            ));
        }
    }
    None
}

fn describe_all(accept: &[PageData]) -> String {
    let all: Vec<String> = accept.iter().map(PageData::describe).collect();
    all.join(" or ")
}

fn data_finding(title: String, file: &AddressSpace, index: u64) -> Finding {
    let cached = file.cached(index);
    Finding::new(FindingKind::Invariant, "INV-DATA", title)
        .detail(format!(
            "page cache at index {index}: {}; disk block: {}",
            cached.map_or("no page".to_string(), |p| format!(
                "pfn {:#x} holding {}{}",
                p.pfn,
                p.data.borrow()[0].describe(),
                if p.dirty.get() { " (dirty)" } else { "" }
            )),
            file.disk
                .borrow()
                .get(&index)
                .map_or("none".to_string(), PageData::describe)
        ))
        .detail("a store or write to the file was lost, or a mapping shows a page the file no longer has")
}
