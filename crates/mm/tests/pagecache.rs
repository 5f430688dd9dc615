//! INV-PC-COHERENT and the file half of INV-DATA can fail: each test maps
//! a page of a regular file the way the kernel does, checks that the
//! checkers accept it, then breaks one thing behind the model's back and
//! checks that the right invariant names it.

use std::rc::Rc;

use mm::arch::x86::mm::fault::user_read;
use mm::checkers::check_all;
use mm::ghost_file::FileEffect;
use mm::kernel::fork::mm_alloc;
use mm::mm_types::{AddressSpace, Kernel, Machine, PageData, Task, Thp};
use mm::mmap::{do_mmap_file, MAP_SHARED, PROT_READ, PROT_WRITE};

/// A 2.6.22 kernel, a two-page file of 0x11 and a task that mapped it
/// shared and read both pages (so both are cached and mapped).
fn mapped_file() -> (Rc<Kernel>, Rc<AddressSpace>, Task, u64) {
    let machine = Machine {
        nodes: 1,
        thp: Thp::Never,
        thp_use_zero_page: true,
    };
    let k = Rc::new(Kernel::new(mm::profile("linux-2.6.22").unwrap(), machine));
    let file = k.create_file(8192, 0x11);
    let task = Task {
        name: "t".into(),
        node: 0,
        mm: mm_alloc(&k).unwrap(),
    };
    let p = do_mmap_file(
        &k,
        &task,
        0,
        8192,
        PROT_READ | PROT_WRITE,
        MAP_SHARED,
        &file,
        0,
    )
    .unwrap();
    assert_eq!(user_read(&k, &task, p, 0, 1).unwrap(), vec![0x11]);
    assert_eq!(user_read(&k, &task, p, 4096, 4097).unwrap(), vec![0x11]);
    assert!(check_all(&k).is_none(), "a coherent mapping passes");
    (k, file, task, p)
}

#[test]
fn a_mapped_page_removed_from_the_page_cache_is_an_orphan() {
    let (k, file, _task, _p) = mapped_file();
    let page = file.cached(0).unwrap();
    file.i_pages.lock("test").remove(&0);
    page.mapping.write("test: page->mapping = NULL", None);
    let f = check_all(&k).expect("an orphan is found");
    assert_eq!(f.check, "INV-PC-COHERENT", "{}", f.title);
    assert!(
        f.details.iter().any(|d| d.contains("orphan")),
        "{:?}",
        f.details
    );
}

#[test]
fn a_page_cache_page_that_lost_a_write_is_inv_data() {
    let (k, file, _task, _p) = mapped_file();
    file.cached(1).unwrap().data.borrow_mut()[0] = PageData::filled(0x99);
    let f = check_all(&k).expect("stale data is found");
    assert_eq!(f.check, "INV-DATA", "{}", f.title);
    assert!(f.title.contains("0x99"), "{}", f.title);
}

#[test]
fn a_block_that_lost_a_write_is_inv_data() {
    let (k, file, task, p) = mapped_file();
    // Uncached page: the disk must hold what the file holds.
    mm::msync::sys_msync(&k, &task, p, 8192).unwrap();
    mm::memory::unmap_mapping_range(&k, &file, 0, 0, true);
    let page = file.cached(0).unwrap();
    page.lock.lock("test: lock_page");
    mm::filemap::remove_from_page_cache(&k, &file, &page);
    file.disk.borrow_mut().insert(0, PageData::zero());
    let f = check_all(&k).expect("a lost block is found");
    assert_eq!(f.check, "INV-DATA", "{}", f.title);
    assert!(f.title.contains("block on disk"), "{}", f.title);
}

#[test]
fn a_page_mapped_past_eof_after_truncate_returned_is_found() {
    let (k, file, _task, _p) = mapped_file();
    // The ghost learns of a truncate to one page the kernel never did.
    let token = k.ghost.files.op_begin(file.id, 1, 2, true);
    assert!(check_all(&k).is_none(), "not judged while it is in flight");
    k.ghost
        .files
        .op_end(file.id, token, FileEffect::Truncate { size: 4096 });
    let f = check_all(&k).expect("a mapping past EOF is found");
    assert_eq!(f.check, "INV-PC-COHERENT", "{}", f.title);
    assert!(f.title.contains("past EOF"), "{}", f.title);
}

/// The message of a page removed from the page cache while mapped, with
/// `remove_mapped_check` on: each era's own words.
fn removal_of_a_mapped_page(profile: &str, knobs: &[(String, String)]) -> String {
    let machine = Machine {
        nodes: 1,
        thp: Thp::Never,
        thp_use_zero_page: true,
    };
    let p = mm::profile(profile).unwrap().with_overrides(knobs).unwrap();
    let k = Rc::new(Kernel::new(p, machine));
    let file = if profile.starts_with("linux-2.6") {
        k.create_file(4096, 0x11)
    } else {
        let f = Rc::new(AddressSpace::new(k.next_id(), mm::mm_types::Backing::Shmem));
        f.i_size.write("test: i_size_write", 4096);
        f
    };
    let task = Task {
        name: "t".into(),
        node: 0,
        mm: mm_alloc(&k).unwrap(),
    };
    let p = do_mmap_file(&k, &task, 0, 4096, PROT_READ, MAP_SHARED, &file, 0).unwrap();
    user_read(&k, &task, p, 0, 1).unwrap();
    let page = file.cached(0).expect("the fault cached the page");
    let removal = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut tree = file.i_pages.lock("test: tree_lock");
        mm::filemap::remove_from_page_cache_locked(&k, &file, &mut tree, &page);
    }));
    let payload = removal.expect_err("a mapped page cannot leave the page cache");
    payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn removing_a_mapped_page_is_a_bug_in_each_eras_words() {
    let on = vec![("remove_mapped_check".to_string(), "on".to_string())];
    assert!(
        removal_of_a_mapped_page("linux-2.6.22", &on).contains("kernel BUG at mm/filemap.c:123!"),
        "2.6 era"
    );
    let modern = removal_of_a_mapped_page("linux-6.18", &[]);
    assert!(
        modern.contains("BUG: Bad page cache in process") && modern.contains("pfn:"),
        "{modern}"
    );
}
