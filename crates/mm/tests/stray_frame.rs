//! A user access through a present pte whose frame no folio holds (a
//! freed page, a frame never allocated, a frame outside every node): the
//! MMU loads and stores that frame as hardware would; the access
//! completes instead of faulting forever on a present entry.

use std::rc::Rc;

use mm::arch::x86::mm::fault::{user_read, user_write};
use mm::arch::x86::pgtable::PTE_PFN_MASK;
use mm::mm_types::{Kernel, Task, PAGE_SIZE};
use mm::mmap::{do_mmap, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};
use mm::page_alloc::{node_start_pfn, NODE_PAGES};
use mm::pgtable::{peek_pmd, pte_offset};

mod common;

/// A task with two written pages; the pte of the second is pointed at
/// `frame` behind the model's back, as a bad pte would be.
fn with_bad_pte(frame: u64) -> (Rc<Kernel>, Task, u64) {
    let k = common::kernel("linux-6.5", 1);
    let task = common::task(&k, "t");
    let prot = PROT_READ | PROT_WRITE;
    let base = do_mmap(
        &k,
        &task,
        0,
        2 * PAGE_SIZE,
        prot,
        MAP_PRIVATE | MAP_ANONYMOUS,
        0,
    )
    .unwrap();
    user_write(&k, &task, base, 0, 2 * PAGE_SIZE, 0x5a).unwrap();
    let addr = base + PAGE_SIZE;
    let pmd = peek_pmd(&k, &task.mm, addr).unwrap();
    let pte = pte_offset(&k, pmd.peek(), addr).unwrap();
    let old = pte.peek();
    let bad = (old & !PTE_PFN_MASK) | (frame << 12);
    pte.table.entries().write_unpublished(pte.index, bad);
    (k, task, addr)
}

#[test]
fn an_access_to_a_frame_no_folio_holds_completes() {
    let never_allocated = node_start_pfn(0) + NODE_PAGES - 1;
    let outside_every_node = 0x10;
    for frame in [never_allocated, outside_every_node] {
        let (k, task, addr) = with_bad_pte(frame);
        // The frame's contents are not the page's: the user sees zeroes.
        assert_eq!(user_read(&k, &task, addr, 0, 4).unwrap(), vec![0; 4]);
        // A store lands in that frame and reads back from it.
        user_write(&k, &task, addr, 8, 9, 0x77).unwrap();
        assert_eq!(user_read(&k, &task, addr, 8, 9).unwrap(), vec![0x77]);
        // The page the pte used to map is untouched.
        assert_eq!(
            user_read(&k, &task, addr - PAGE_SIZE, 0, 1).unwrap(),
            vec![0x5a]
        );
    }
}
