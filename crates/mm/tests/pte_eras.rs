//! The pte accessors that differ by era, through `Kernel`: `pte_none()`
//! ignores the accessed and dirty bits only from v4.7 on, and the 2.6
//! layouts' not-present ptes (nonlinear file ptes, swap ptes) are told
//! apart and decoded the 2.6 way in reports.

use mm::arch::x86::pgtable::Pte;
use mm::arch::x86::swap::v2_6_34::{pgoff_to_pte, swp_entry_to_pte};

mod common;

fn kernel(profile: &str) -> std::rc::Rc<mm::mm_types::Kernel> {
    common::kernel(profile, 1)
}

#[test]
fn the_file_pte_of_page_0_is_not_none_before_v4_7() {
    let file_pte = pgoff_to_pte(0);
    assert_eq!(file_pte, Pte(0x40), "_PAGE_FILE alone: bit 6");
    for old in [
        "linux-2.6.22",
        "linux-2.6.23",
        "linux-2.6.34-rc3",
        "linux-3.12.7",
    ] {
        let k = kernel(old);
        assert!(!k.pte_none(file_pte), "{old}: pte_none() is !pte_val()");
        assert!(k.pte_none(Pte(0)), "{old}");
    }
    // v4.7+ (97e3c602ccbc): a not-present entry with only A/D set is none.
    let k = kernel("linux-6.5");
    assert!(k.pte_none(Pte(0x40)));
    assert!(k.pte_none(Pte(0x20)));
    assert!(!k.pte_none(Pte(0x200)));
}

#[test]
fn reports_decode_2_6_not_present_ptes_the_2_6_way() {
    let k = kernel("linux-2.6.23");
    assert_eq!(k.describe_pte(0), "none");
    assert_eq!(k.describe_pte(pgoff_to_pte(0).0), "file pte pgoff 0x0");
    assert_eq!(k.describe_pte(pgoff_to_pte(5).0), "file pte pgoff 0x5");
    let k = kernel("linux-2.6.34-rc3");
    assert_eq!(
        k.describe_pte(swp_entry_to_pte(0, 1).0),
        "swap entry type 0 offset 0x1"
    );
    assert_eq!(
        k.describe_pte(swp_entry_to_pte(2, 0x33).0),
        "swap entry type 2 offset 0x33"
    );
}
