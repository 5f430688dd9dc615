//! Ghost state: what user space may legitimately observe, kept apart from
//! kernel state so checkers can compare the two (seed-bugs.md §0.3).
//!
//! For each user page the ghost records the contents a read may return
//! (usually one; two while an `MADV_DONTNEED` is in flight) and whether the
//! page holds data that the page tables must keep reachable. Pages are kept
//! as ranges of equal state, so a 2 MiB memset is one entry.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::mm_types::PageData;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GhostPage {
    /// Contents a read may return now.
    pub accept: Rc<Vec<PageData>>,
    /// The user wrote data here that no syscall has discarded: some entry
    /// (present, or a migration entry) must still lead to it.
    pub must_map: bool,
    /// An `MADV_DONTNEED` covering the page has started and not returned,
    /// and the page was not written since.
    pub discarding: bool,
    /// A user write landed while an `MADV_DONTNEED` over the page was in
    /// flight: the zap may have come before or after it, so the page may
    /// hold the write or zeroes until it is written again.
    pub raced: bool,
}

impl GhostPage {
    fn new(accept: Vec<PageData>, must_map: bool) -> GhostPage {
        GhostPage {
            accept: Rc::new(accept),
            must_map,
            discarding: false,
            raced: false,
        }
    }
}

/// A run of pages `[start, end)` (virtual page numbers) in one mm.
#[derive(Clone, Debug)]
struct Span {
    end: u64,
    page: GhostPage,
}

/// Ghost pages by (mm id, first virtual page number of a run).
#[derive(Default)]
pub struct Ghost {
    spans: RefCell<BTreeMap<(u64, u64), Span>>,
    /// `MADV_DONTNEED` calls in flight: (mm, first, last).
    discards: RefCell<Vec<(u64, u64, u64)>>,
    /// Runs of pages whose ghost state changed since the incremental
    /// checkers last took them: (mm, first, last).
    changed: RefCell<Vec<(u64, u64, u64)>>,
    /// Regular files (seed 003): see ghost_file.rs.
    pub files: crate::ghost_file::FileGhosts,
}

impl Ghost {
    /// The ghost state of one page, if the user ever wrote it.
    pub fn page(&self, mm: u64, vpn: u64) -> Option<GhostPage> {
        let spans = self.spans.borrow();
        let ((m, _), span) = spans.range(..=(mm, vpn)).next_back()?;
        (*m == mm && vpn < span.end).then(|| span.page.clone())
    }

    /// Whether a read of this page may return `data` (zero if never written).
    pub fn accepts(&self, mm: u64, vpn: u64, data: &PageData) -> bool {
        match self.page(mm, vpn) {
            Some(g) => g.accept.contains(data),
            None => *data == PageData::zero(),
        }
    }

    /// Contents a read of this page may return.
    pub fn accepted(&self, mm: u64, vpn: u64) -> Rc<Vec<PageData>> {
        self.page(mm, vpn)
            .map_or_else(|| Rc::new(vec![PageData::zero()]), |g| g.accept)
    }

    /// A user write completed: pages `[first, last)` now hold exactly `data`,
    /// unless an in-flight `MADV_DONTNEED` may still zap them.
    pub fn wrote(&self, mm: u64, first: u64, last: u64, data: PageData) {
        let raced: Vec<(u64, u64)> = self
            .discards
            .borrow()
            .iter()
            .filter(|d| d.0 == mm)
            .map(|d| (d.1.max(first), d.2.min(last)))
            .filter(|(a, b)| a < b)
            .collect();
        let mut accept = vec![data];
        self.set(mm, first, last, Some(GhostPage::new(accept.clone(), true)));
        if !accept.contains(&PageData::zero()) {
            accept.push(PageData::zero());
        }
        for (a, b) in raced {
            let page = GhostPage {
                discarding: true,
                raced: true,
                ..GhostPage::new(accept.clone(), false)
            };
            self.set(mm, a, b, Some(page));
        }
    }

    /// `MADV_DONTNEED` started: reads may see old data or zeroes, and the
    /// data need no longer stay mapped.
    pub fn discard_begin(&self, mm: u64, first: u64, last: u64) {
        self.changed.borrow_mut().push((mm, first, last));
        self.discards.borrow_mut().push((mm, first, last));
        self.split(mm, first);
        self.split(mm, last);
        for (_, span) in self.spans.borrow_mut().range_mut((mm, first)..(mm, last)) {
            let g = &mut span.page;
            if !g.accept.contains(&PageData::zero()) {
                let mut accept = (*g.accept).clone();
                accept.push(PageData::zero());
                g.accept = Rc::new(accept);
            }
            g.must_map = false;
            g.discarding = true;
        }
    }

    /// `MADV_DONTNEED` returned: pages not written since read as zeroes;
    /// pages written during it stay undecided (the write or zeroes).
    pub fn discard_end(&self, mm: u64, first: u64, last: u64) {
        self.changed.borrow_mut().push((mm, first, last));
        let mut discards = self.discards.borrow_mut();
        if let Some(i) = discards.iter().position(|d| *d == (mm, first, last)) {
            discards.remove(i);
        }
        let still = |vpn: u64| {
            discards
                .iter()
                .any(|d| d.0 == mm && (d.1..d.2).contains(&vpn))
        };
        self.split(mm, first);
        self.split(mm, last);
        self.spans.borrow_mut().retain(|&(m, start), span| {
            let inside = m == mm && start >= first && start < last;
            if !inside || !span.page.discarding || still(start) {
                return true;
            }
            span.page.discarding = false;
            span.page.raced
        });
    }

    /// mremap moved the pages `[from, from + n)` of `mm` to `[to, to + n)`
    /// with their page-table entries: what they hold moves with them.
    pub fn remap(&self, mm: u64, from: u64, to: u64, n: u64) {
        self.changed.borrow_mut().push((mm, from, from + n));
        self.split(mm, from);
        self.split(mm, from + n);
        let moved: Vec<(u64, Span)> = {
            let mut spans = self.spans.borrow_mut();
            let keys: Vec<(u64, u64)> = spans
                .range((mm, from)..(mm, from + n))
                .map(|(k, _)| *k)
                .collect();
            keys.into_iter()
                .filter_map(|k| spans.remove(&k).map(|s| (k.1, s)))
                .collect()
        };
        self.set(mm, to, to + n, None);
        let mut spans = self.spans.borrow_mut();
        for (start, span) in moved {
            let end = span.end - from + to;
            spans.insert(
                (mm, start - from + to),
                Span {
                    end,
                    page: span.page,
                },
            );
        }
    }

    /// fork: the child `to` sees what the parent `from` wrote.
    pub fn fork(&self, from: u64, to: u64) {
        self.changed.borrow_mut().push((to, 0, u64::MAX));
        let copied: Vec<((u64, u64), Span)> = self
            .spans
            .borrow()
            .range((from, 0)..=(from, u64::MAX))
            .map(|(&(_, start), span)| ((to, start), span.clone()))
            .collect();
        self.spans.borrow_mut().extend(copied);
    }

    /// munmap or exit: the pages are gone.
    pub fn unmap(&self, mm: u64, first: u64, last: u64) {
        self.set(mm, first, last, None);
    }

    /// The runs of pages whose ghost state changed since the last call:
    /// (mm, first, last).
    pub fn take_changed(&self) -> Vec<(u64, u64, u64)> {
        std::mem::take(&mut *self.changed.borrow_mut())
    }

    /// The pages of `[first, last)` of `mm` that must stay mapped, as
    /// runs clipped to that range: (first, last, accept).
    pub fn must_map_in(
        &self,
        mm: u64,
        first: u64,
        last: u64,
    ) -> Vec<(u64, u64, Rc<Vec<PageData>>)> {
        let spans = self.spans.borrow();
        let before = spans
            .range(..(mm, first))
            .next_back()
            .filter(|((m, _), s)| *m == mm && s.end > first);
        before
            .into_iter()
            .chain(spans.range((mm, first)..(mm, last)))
            .filter(|(_, s)| s.page.must_map)
            .map(|(&(_, start), s)| (start.max(first), s.end.min(last), s.page.accept.clone()))
            .collect()
    }

    /// Every run of pages that must stay mapped: (mm, first, last, accept).
    pub fn must_map(&self) -> Vec<(u64, u64, u64, Rc<Vec<PageData>>)> {
        let spans = self.spans.borrow();
        spans
            .iter()
            .filter(|(_, s)| s.page.must_map)
            .map(|(&(mm, start), s)| (mm, start, s.end, s.page.accept.clone()))
            .collect()
    }

    /// Replaces `[first, last)` of `mm` by `page` (or nothing).
    fn set(&self, mm: u64, first: u64, last: u64, page: Option<GhostPage>) {
        if first >= last {
            return;
        }
        self.changed.borrow_mut().push((mm, first, last));
        self.split(mm, first);
        self.split(mm, last);
        let mut spans = self.spans.borrow_mut();
        let inside: Vec<(u64, u64)> = spans
            .range((mm, first)..(mm, last))
            .map(|(k, _)| *k)
            .collect();
        for k in inside {
            spans.remove(&k);
        }
        if let Some(page) = page {
            spans.insert((mm, first), Span { end: last, page });
        }
    }

    /// Makes `vpn` the start of a run if a run covers it.
    fn split(&self, mm: u64, vpn: u64) {
        let mut spans = self.spans.borrow_mut();
        let Some((&(m, start), span)) = spans.range(..=(mm, vpn)).next_back() else {
            return;
        };
        if m != mm || start == vpn || vpn >= span.end {
            return;
        }
        let upper = Span {
            end: span.end,
            page: span.page.clone(),
        };
        if let Some(lower) = spans.get_mut(&(m, start)) {
            lower.end = vpn;
        }
        spans.insert((mm, vpn), upper);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(v: u8) -> PageData {
        PageData::filled(v)
    }

    #[test]
    fn ranges_split_and_discard() {
        let g = Ghost::default();
        g.wrote(1, 0, 512, data(0x5a));
        g.wrote(1, 10, 11, data(1));
        assert!(g.accepts(1, 9, &data(0x5a)));
        assert!(g.accepts(1, 10, &data(1)));
        assert!(!g.accepts(1, 10, &data(0x5a)));
        assert!(g.accepts(2, 10, &PageData::zero()));
        g.discard_begin(1, 0, 100);
        assert!(g.accepts(1, 5, &PageData::zero()) && g.accepts(1, 5, &data(0x5a)));
        g.wrote(1, 50, 51, data(7));
        g.discard_end(1, 0, 100);
        assert!(g.page(1, 5).is_none());
        assert!(g.accepts(1, 50, &data(7)));
        assert!(g.accepts(1, 200, &data(0x5a)));
        let runs: Vec<_> = g.must_map().iter().map(|r| (r.1, r.2)).collect();
        assert_eq!(
            runs,
            vec![(100, 512)],
            "the page written during the discard may be zapped"
        );
        g.unmap(1, 0, u64::MAX);
        assert!(g.must_map().is_empty());
    }

    #[test]
    fn a_write_racing_with_dontneed_may_be_zapped() {
        let g = Ghost::default();
        g.wrote(1, 0, 4, data(1));
        g.discard_begin(1, 0, 4);
        g.wrote(1, 2, 3, data(9));
        let raced = g.page(1, 2).unwrap();
        assert!(!raced.must_map, "the zap may still come");
        assert!(g.accepts(1, 2, &data(9)) && g.accepts(1, 2, &PageData::zero()));
        g.discard_end(1, 0, 4);
        assert!(
            g.page(1, 0).is_none(),
            "untouched pages read zero afterwards"
        );
        assert!(g.accepts(1, 2, &data(9)) && g.accepts(1, 2, &PageData::zero()));
        g.wrote(1, 2, 3, data(4));
        assert_eq!(
            g.page(1, 2).unwrap().accept.as_slice(),
            &[data(4)],
            "no discard in flight any more"
        );
    }
}
