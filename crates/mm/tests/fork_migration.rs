//! fork() of a pte migration entry (`copy_nonpresent_pte()`, v6.18): the
//! child gets the entry and counts the page in its rss; in a COW mapping a
//! writable or readable-exclusive entry becomes readable in both, so that
//! neither process gets the page back writable or exclusive. Scenarios can
//! only fork over a readable entry (a process's own faults cannot migrate
//! under its fork), so the downgrade is tested here on an entry put in
//! place behind the model's back.

use std::rc::Rc;

use mm::arch::x86::mm::fault::user_write;
use mm::arch::x86::pgtable::Pte;
use mm::arch::x86::swap::{
    make_readable_exclusive_migration_entry, make_readable_migration_entry,
    make_writable_migration_entry, migration_kind, pte_to_swp_entry, swp_entry_to_pte,
    MigrationKind, SwpEntry,
};
use mm::kernel::fork::dup_mmap;
use mm::mm_types::{Kernel, MmStruct, Task, MM_ANONPAGES, PAGE_SIZE};
use mm::mmap::{do_mmap, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};
use mm::pgtable::{peek_pmd, pte_offset};

mod common;

fn pte_at(k: &Kernel, mm: &MmStruct, addr: u64) -> u64 {
    let pmd = peek_pmd(k, mm, addr).unwrap();
    pte_offset(k, pmd.peek(), addr).unwrap().peek()
}

/// A parent whose one written page's pte is replaced by `entry(pfn)`, as
/// try_to_migrate_one leaves it.
fn parent_migrating(entry: impl Fn(&Kernel, u64) -> SwpEntry) -> (Rc<Kernel>, Task, u64) {
    let k = common::kernel("linux-6.18", 2);
    let task = common::task(&k, "parent");
    let flags = MAP_PRIVATE | MAP_ANONYMOUS;
    let addr = do_mmap(&k, &task, 0, PAGE_SIZE, PROT_READ | PROT_WRITE, flags, 0).unwrap();
    user_write(&k, &task, addr, 0, PAGE_SIZE, 0x5a).unwrap();
    let pmd = peek_pmd(&k, &task.mm, addr).unwrap();
    let pte = pte_offset(&k, pmd.peek(), addr).unwrap();
    let pfn = k.pte_pfn(Pte(pte.peek()));
    let migrating = swp_entry_to_pte(entry(&k, pfn));
    pte.table
        .entries()
        .write_unpublished(pte.index, migrating.0);
    (k, task, addr)
}

fn kind_at(k: &Kernel, mm: &MmStruct, addr: u64) -> Option<MigrationKind> {
    migration_kind(
        &k.profile.swap_types,
        pte_to_swp_entry(Pte(pte_at(k, mm, addr))),
    )
}

#[test]
fn a_writable_or_exclusive_entry_becomes_readable_in_both() {
    let writable = |k: &Kernel, pfn| make_writable_migration_entry(&k.profile.swap_types, pfn);
    let exclusive =
        |k: &Kernel, pfn| make_readable_exclusive_migration_entry(&k.profile.swap_types, pfn);
    for (name, entry) in [
        ("writable", &writable as &dyn Fn(&Kernel, u64) -> SwpEntry),
        ("exclusive", &exclusive),
    ] {
        let (k, parent, addr) = parent_migrating(entry);
        let child = dup_mmap(&k, &parent, "child").expect("the fork succeeds");
        assert_eq!(
            kind_at(&k, &parent.mm, addr),
            Some(MigrationKind::Read),
            "{name}: parent"
        );
        assert_eq!(
            kind_at(&k, &child.mm, addr),
            Some(MigrationKind::Read),
            "{name}: child"
        );
        assert_eq!(
            pte_at(&k, &parent.mm, addr),
            pte_at(&k, &child.mm, addr),
            "{name}: the same entry in both"
        );
        assert_eq!(
            child.mm.rss[MM_ANONPAGES].get(),
            1,
            "{name}: the child's rss counts it"
        );
    }
}

#[test]
fn a_readable_entry_is_copied_as_it_is() {
    let readable = |k: &Kernel, pfn| make_readable_migration_entry(&k.profile.swap_types, pfn);
    let (k, parent, addr) = parent_migrating(readable);
    let before = pte_at(&k, &parent.mm, addr);
    let child = dup_mmap(&k, &parent, "child").expect("the fork succeeds");
    assert_eq!(pte_at(&k, &parent.mm, addr), before);
    assert_eq!(pte_at(&k, &child.mm, addr), before);
    assert_eq!(child.mm.rss[MM_ANONPAGES].get(), 1);
}
