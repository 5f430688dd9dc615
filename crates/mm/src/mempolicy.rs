//! NUMA memory policy: `change_prot_numa()`, `mpol_misplaced()` and the
//! two-pass filter of `should_numa_migrate_memory()`.
//!
//! Models mm/mempolicy.c and kernel/sched/fair.c (v6.1) for the default
//! policy (MPOL_F_MOF | MPOL_F_MORON: migrate on reference to the node of
//! the faulting CPU).

use crate::arch::x86::pgtable::PAGE_NONE;
use crate::huge_memory::MM_CP_PROT_NUMA;
use crate::memory::{get_folio, put_folio};
use crate::mm_types::{Folio, Kernel, Task, Vma};
use crate::mprotect::{change_protection, ChangeProt};

/// `change_prot_numa()` (v6.1): make `[addr, end)` PROT_NONE for NUMA
/// hinting faults. Called with mmap_lock held for read.
pub fn change_prot_numa(k: &Kernel, task: &Task, vma: &Vma, addr: u64, end: u64) -> u64 {
    let _f = explore::enter("change_prot_numa");
    let cp = ChangeProt {
        k,
        mm: &task.mm,
        vma,
        // v3.x marks entries with pte_mknuma() and passes the vma's own
        // protection; from v4.0 hinting entries are PROT_NONE.
        newprot: match k.profile.numa_bit() {
            Some(_) => vma.vm_page_prot.get(),
            None => PAGE_NONE,
        },
        cp_flags: MM_CP_PROT_NUMA,
        node: task.node,
    };
    change_protection(&cp, addr, end)
}

/// `numa_migrate_prep()` + `mpol_misplaced()`: takes a reference on the
/// folio and returns the node it should move to. When it should stay, the
/// reference is dropped again (as do_huge_pmd_numa_page does) and `None`
/// is returned.
pub fn numa_migrate_prep(k: &Kernel, task: &Task, folio: &Folio) -> Option<u32> {
    get_folio(folio);
    let target = mpol_misplaced(task, folio);
    if target.is_none() {
        put_folio(k, folio);
    }
    target
}

/// `mpol_misplaced()` for the default policy with MPOL_F_MORON.
fn mpol_misplaced(task: &Task, folio: &Folio) -> Option<u32> {
    let thisnid = task.node;
    if !should_numa_migrate_memory(folio, thisnid) {
        return None;
    }
    (folio.node != thisnid).then_some(thisnid)
}

/// `should_numa_migrate_memory()` (kernel/sched/fair.c, v6.1), reduced to
/// its two-pass filter: migrate only if the previous hinting fault on this
/// folio came from the same node (or there was none).
fn should_numa_migrate_memory(folio: &Folio, dst_nid: u32) -> bool {
    let last = folio.last_cpupid_nid.replace(Some(dst_nid));
    last.is_none_or(|nid| nid == dst_nid)
}
