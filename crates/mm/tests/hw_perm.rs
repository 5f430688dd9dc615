//! INV-HW-PERM: the MMU checks every direct kernel store into a page
//! table against how the kernel maps the page. Not a Xen special case:
//! the check is the page's state, whoever made it read-only; Xen's
//! pinning is what the seed 004 profiles drive it with.

use std::rc::Rc;

use mm::mm_types::{FolioKind, Kernel, Machine, Thp, XenPt};
use mm::pgtable::{alloc_table, EntryRef};

fn table() -> (Rc<Kernel>, EntryRef) {
    let machine = Machine {
        nodes: 1,
        thp: Thp::Never,
        thp_use_zero_page: true,
    };
    let k = Rc::new(Kernel::new(
        mm::profile("linux-2.6.23-rc9-xen").unwrap(),
        machine,
    ));
    let t = alloc_table(&k, 0, 1, None).unwrap();
    assert_eq!(t.kind.get(), FolioKind::PageTable(1));
    (k, EntryRef::new(t, 7))
}

fn store_panics(slot: &EntryRef) -> Option<String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        slot.write("page_referenced_one: test store", 0x25);
    }))
    .err()
    .map(|p| p.downcast_ref::<String>().cloned().unwrap_or_default())
}

#[test]
fn a_store_into_a_read_only_unpinned_table_oopses_and_nothing_else_does() {
    let (_k, slot) = table();
    assert!(store_panics(&slot).is_none(), "writable");
    let ro = XenPt {
        read_only: true,
        ..XenPt::default()
    };
    slot.table.xen.set(XenPt {
        pinned_tree: true,
        ..ro
    });
    assert!(
        store_panics(&slot).is_none(),
        "pinned: Xen emulates the store"
    );
    slot.table.xen.set(ro);
    let oops = store_panics(&slot).expect("a kernel-mode write fault");
    assert!(
        oops.contains("BUG: unable to handle kernel paging request"),
        "{oops}"
    );
    // The hypervisor's and the MMU's own writes are not the kernel's.
    slot.hv_write("mmu_update", 0x25);
    assert_eq!(
        slot.hw_cmpxchg("MMU walk: set accessed", 0x25, 0x45),
        Some(0x25)
    );
    assert_eq!(slot.peek(), 0x45);
}
