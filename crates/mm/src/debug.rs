//! The kernel's own complaints, in its own formats: `BUG()`,
//! `print_bad_pte()`, `bad_page()`, and `vm_normal_page()` which calls
//! them. Models mm/debug.c, mm/memory.c and mm/page_alloc.c (v6.1).

use std::rc::Rc;

use explore::{Finding, FindingKind};

use crate::arch::x86::pgtable::{pte_pfn, pte_val, Pte};
use crate::mm_types::{Folio, Kernel, MmStruct, Vma};
use crate::pgtable::peek_pmd;

/// `BUG()` / `VM_BUG_ON()`: a kernel assertion that stops the kernel.
pub fn bug_on(what: impl Into<String>) -> Finding {
    let what = what.into();
    Finding::new(FindingKind::Kernel, "BUG_ON", format!("kernel BUG: {what}"))
}

/// `bad_page()`: `BUG: Bad page state in process ... pfn:...`.
pub fn bad_page(folio: &Folio, reason: &str) -> Finding {
    let title = format!(
        "BUG: Bad page state in process {}  pfn:{:05x}",
        explore::rt::current_actor_name(),
        folio.pfn
    );
    Finding::new(FindingKind::Kernel, "bad_page()", title)
        .detail(format!(
            "page:{} refcount:{} mapcount:{}",
            folio.pfn,
            folio.refcount.get(),
            folio.mapcount.get()
        ))
        .detail(format!("page dumped because: {reason}"))
}

/// `print_bad_pte()` (v6.1): `BUG: Bad page map in process %s  pte:%08llx
/// pmd:%08llx` and the addr/vm_flags/anon_vma line.
pub fn print_bad_pte(k: &Kernel, mm: &MmStruct, vma: &Vma, addr: u64, pte: Pte) {
    let pmd = peek_pmd(k, mm, addr).map_or(0, |p| p.peek());
    let title = format!(
        "BUG: Bad page map in process {}  pte:{:08x} pmd:{:08x}",
        explore::rt::current_actor_name(),
        pte_val(pte),
        pmd
    );
    let anon_vma = vma
        .anon_vma
        .get()
        .map_or(0, |a| 0xffff_8880_2000_0000 + a.id * 0x40);
    let line = format!(
        "addr:{addr:016x} vm_flags:{:08x} anon_vma:{anon_vma:016x} mapping:0000000000000000 index:{:x}",
        vma.flags(),
        vma.linear_page_index(addr)
    );
    explore::raise(
        Finding::new(FindingKind::Kernel, "print_bad_pte()", title)
            .detail(line)
            .detail(format!("pte decodes as: {}", k.describe_pte(pte_val(pte)))),
    );
}

/// `vm_normal_page()` (v6.1): the folio a present, non-special pte maps;
/// a pfn with no `struct page` is reported with print_bad_pte.
pub fn vm_normal_page(
    k: &Kernel,
    mm: &MmStruct,
    vma: &Vma,
    addr: u64,
    pte: Pte,
) -> Option<Rc<Folio>> {
    let folio = k.mem.pfn_folio(pte_pfn(pte));
    if folio.is_none() {
        print_bad_pte(k, mm, vma, addr, pte);
    }
    folio
}
