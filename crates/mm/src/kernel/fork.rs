//! `check_mm()`: the accounting checks the kernel runs when an mm is freed.
//!
//! Models kernel/fork.c (v6.1): `"BUG: Bad rss-counter state mm:%p
//! type:%s val:%ld"` for every non-zero counter, then `"BUG: non-zero
//! pgtables_bytes on freeing mm: %ld"`.

use explore::{Finding, FindingKind};

use crate::mm_types::{Kernel, MmStruct, RSS_NAMES};
use crate::profile::LogStyle;

/// The lines `check_mm()` prints for `mm` (empty when all is well), in
/// the format of the profile's version.
pub fn check_mm_lines(k: &Kernel, mm: &MmStruct) -> Vec<String> {
    match k.profile.log_style {
        LogStyle::V3_12 => check_mm_lines_v3(mm),
        LogStyle::V6_1 => check_mm_lines_v6(mm),
    }
}

/// `check_mm()` (v3.12): `"BUG: Bad rss-counter state mm:%p idx:%d
/// val:%ld"` for each of the three counters (FILE, ANON, SWAPENTS) with a
/// raw pointer; no page-table byte count yet.
fn check_mm_lines_v3(mm: &MmStruct) -> Vec<String> {
    let ptr = crate::debug::pointer_v3(crate::debug::mm_pointer_v3(mm));
    (0..NR_MM_COUNTERS_V3)
        .filter_map(|idx| {
            let v = mm.rss[idx].get();
            (v != 0).then(|| format!("BUG: Bad rss-counter state mm:{ptr} idx:{idx} val:{v}"))
        })
        .collect()
}

/// rss counters of v3.12 (MM_SHMEMPAGES came in v4.5).
const NR_MM_COUNTERS_V3: usize = 3;

/// `check_mm()` (v6.1).
fn check_mm_lines_v6(mm: &MmStruct) -> Vec<String> {
    let mut lines = Vec::new();
    for (counter, name) in mm.rss.iter().zip(RSS_NAMES) {
        let v = counter.get();
        if v != 0 {
            lines.push(format!(
                "BUG: Bad rss-counter state mm:{} type:{name} val:{v}",
                mm.hashed()
            ));
        }
    }
    let bytes = mm.pgtables_bytes.get();
    if bytes != 0 {
        lines.push(format!(
            "BUG: non-zero pgtables_bytes on freeing mm: {bytes}"
        ));
    }
    lines
}

/// `check_mm()`: raises a kernel finding if any counter is off.
pub fn check_mm(k: &Kernel, mm: &MmStruct) {
    let lines = check_mm_lines(k, mm);
    let Some(first) = lines.first() else { return };
    let mut f = Finding::new(FindingKind::Kernel, "check_mm()", first.clone());
    f.details = lines;
    explore::raise(f);
}

/// `mm_alloc()` + `pgd_alloc()`: a fresh mm with an empty PGD, registered
/// with the kernel so checkers can find it.
pub fn mm_alloc(k: &crate::mm_types::Kernel) -> Option<std::rc::Rc<MmStruct>> {
    let pgd = k
        .mem
        .alloc_pages_nofail(0, 0, crate::mm_types::FolioKind::PageTable(4))?;
    let mm = std::rc::Rc::new(MmStruct::new(k.next_id(), pgd));
    k.mms.borrow_mut().push(mm.clone());
    Some(mm)
}
