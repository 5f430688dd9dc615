//! INV-XEN-ABI and INV-DECODE, recomputed from scratch.
//!
//! The page an entry maps is known twice in the kernel: through the entry
//! itself and through the reverse map (an anonymous page's anon_vma and
//! index place it at exactly one address of each VMA of that anon_vma).
//! These checkers compare the two, and compare what the kernel's own
//! accessor (`pte_pfn()`, paravirt on Xen) reads out of an entry with what
//! the MMU reaches through it.
//!
//! - INV-XEN-ABI (Xen PV only): a present entry holds a machine frame the
//!   domain owns; a non-present entry that carries a frame (PROT_NONE or
//!   NUMA hinting) holds the pseudo-physical frame, never the machine one.
//! - INV-DECODE: for every entry the kernel treats as mapping a page
//!   (`pte_present()` of the era), `pte_pfn()` yields the page the reverse
//!   map places there, and for a hardware-present entry the MMU reaches
//!   that same page.
//!
//! Both skip what the era's `pte_special()` calls special (no `struct
//! page` behind it: the zero page). Which entries those are is the era
//! accessor's answer, not a test of bit 9 on the raw value: from
//! c46a7c817e66 (v3.16) `_PAGE_NUMA` is bit 9 as well, and a NUMA hinting
//! pte (bit 9 set, `_PAGE_PRESENT` clear) is not special but exactly the
//! kind of entry these invariants are about.

use std::rc::Rc;

use explore::{Finding, FindingKind};

use super::walk::Census;
use crate::arch::x86::pgtable::{Pte, _PAGE_PRESENT};
use crate::arch::x86::pgtable_v3::PTE_PFN_MASK;
use crate::mm_types::{Folio, FolioKind, Kernel, MmStruct, Vma};

/// Whether the reverse map places page `pfn` at `va` of `mm`: an
/// anonymous page (with an anon_vma) whose index is the address's linear
/// page index. Whether that anon_vma is one the VMA is linked to is
/// INV-RMAP-ANON's question (rmap_anon.rs), not a decoding one.
fn placed_at(k: &Kernel, mm: &MmStruct, va: u64, pfn: u64) -> bool {
    let Some((folio, vma)) = folio_and_vma(k, mm, va, pfn) else {
        return false;
    };
    folio.kind.get() == FolioKind::Anon
        && folio.anon_vma.peek().is_some()
        && folio.index.get() + (pfn - folio.pfn) == vma.linear_page_index(va)
}

/// The live folio of `pfn` and the VMA of `mm` at `va`, if both exist.
fn folio_and_vma(k: &Kernel, mm: &MmStruct, va: u64, pfn: u64) -> Option<(Rc<Folio>, Rc<Vma>)> {
    let folio = k.mem.pfn_folio(pfn)?;
    let vma = mm.mmap_lock.peek().vma_lookup(va)?.clone();
    Some((folio, vma))
}

/// Whether page `pfn` is the page-cache page a file VMA maps at `va`: the
/// VMA's file holds it at the VMA's index for `va` (the file rmap).
fn file_page_at(k: &Kernel, mm: &MmStruct, va: u64, pfn: u64) -> bool {
    let Some((folio, vma)) = folio_and_vma(k, mm, va, pfn) else {
        return false;
    };
    let Some(file) = vma.vm_file.get() else {
        return false;
    };
    let index = vma.linear_page_index(va);
    match folio.kind.get() {
        FolioKind::Shmem => {
            folio.index.get() == index && file.cached(index).is_some_and(|f| Rc::ptr_eq(&f, &folio))
        }
        // A regular file's page at its place (anywhere in a nonlinear
        // VMA): whether it is still the file's page is INV-PC-COHERENT's
        // question (pagecache.rs), not a decoding one.
        FolioKind::File => {
            vma.flags() & crate::mm_types::vm_flags::VM_NONLINEAR != 0 || folio.index.get() == index
        }
        _ => false,
    }
}

/// The page the reverse map places at `va` (failure paths only: a scan).
fn rmap_pfn(k: &Kernel, mm: &MmStruct, va: u64) -> Option<u64> {
    k.mem.folios().iter().find_map(|f| {
        (0..f.nr_pages())
            .map(|i| f.pfn + i)
            .find(|&pfn| placed_at(k, mm, va, pfn))
    })
}

pub fn check(k: &Kernel, censuses: &[(&MmStruct, Census)]) -> Option<Finding> {
    censuses.iter().find_map(|(mm, c)| {
        c.ptes
            .iter()
            .find_map(|&(va, raw)| check_pte(k, mm, va, raw))
    })
}

/// Both invariants for the pte `raw` mapping `va` of `mm`.
pub fn check_pte(k: &Kernel, mm: &MmStruct, va: u64, raw: u64) -> Option<Finding> {
    let pte = Pte(raw);
    if !k.pte_present(pte) || k.pte_special(pte) {
        return None;
    }
    if k.pv.is_xen_pv() {
        if let Some(f) = xen_abi(k, mm, va, raw) {
            return Some(f);
        }
    }
    decode(k, mm, va, raw)
}

fn frame_of(raw: u64) -> u64 {
    (raw & PTE_PFN_MASK) >> 12
}

fn xen_abi(k: &Kernel, mm: &MmStruct, va: u64, raw: u64) -> Option<Finding> {
    let frame = frame_of(raw);
    if raw & _PAGE_PRESENT != 0 {
        return k.pv.machine_to_phys(frame).is_none().then(|| {
            xen_abi_finding(
                mm,
                va,
                raw,
                format!("present pte holds frame {frame:#x}, not a machine frame of the domain"),
                format!("frame {frame:#x} is not in the domain's machine-to-phys table"),
            )
        });
    }
    if placed_at(k, mm, va, frame) {
        return None;
    }
    let pfn = k.pv.machine_to_phys(frame)?;
    placed_at(k, mm, va, pfn).then(|| {
        xen_abi_finding(
            mm,
            va,
            raw,
            format!("non-present pte holds machine frame {frame:#x}"),
            format!(
                "frame {frame:#x} is the mfn of pfn {pfn:#x}, the page the reverse map places \
                 here; a non-present pte must hold pfn {pfn:#x} (a saved guest restored on other \
                 frames would map the wrong page)"
            ),
        )
    })
}

fn xen_abi_finding(mm: &MmStruct, va: u64, raw: u64, what: String, why: String) -> Finding {
    Finding::new(
        FindingKind::Invariant,
        "INV-XEN-ABI",
        format!("INV-XEN-ABI: mm {} pte at {va:#x}: {what}", mm.id),
    )
    .detail(format!("pte {raw:#018x}: {why}"))
    .detail("Xen PV ABI: entries with _PAGE_PRESENT hold machine frames, entries without it hold pseudo-physical frames")
}

fn decode(k: &Kernel, mm: &MmStruct, va: u64, raw: u64) -> Option<Finding> {
    let kernel = k.pte_pfn(Pte(raw));
    if placed_at(k, mm, va, kernel) && raw & _PAGE_PRESENT == 0 {
        return None;
    }
    if raw & _PAGE_PRESENT != 0 {
        let hw = k.pv.machine_to_phys(frame_of(raw));
        if hw != Some(kernel) {
            let hw = hw.map_or("no page of this domain".to_string(), |p| {
                format!("pfn {p:#x}")
            });
            return Some(decode_finding(
                k,
                mm,
                va,
                raw,
                format!("pte_pfn() says pfn {kernel:#x} but the MMU reaches {hw}"),
            ));
        }
    }
    if placed_at(k, mm, va, kernel) || file_page_at(k, mm, va, kernel) {
        return None;
    }
    let mapped = k.mem.pfn_folio(kernel);
    match rmap_pfn(k, mm, va) {
        Some(pfn) => Some(decode_finding(
            k,
            mm,
            va,
            raw,
            format!(
                "pte_pfn() says pfn {kernel:#x} ({}), but the page the reverse map places at {va:#x} is pfn {pfn:#x}",
                describe_page(mapped.as_ref(), kernel)
            ),
        )),
        None if mapped.as_ref().is_some_and(|f| f.kind.get() == FolioKind::Anon) => {
            Some(decode_finding(
                k,
                mm,
                va,
                raw,
                format!("pte_pfn() says pfn {kernel:#x}, an anonymous page whose reverse map does not place it at {va:#x}"),
            ))
        }
        None => None,
    }
}

fn describe_page(folio: Option<&Rc<Folio>>, pfn: u64) -> String {
    match folio {
        None => format!("not an allocated page: pfn {pfn:#x} is free or reserved"),
        Some(f) => match f.kind.get() {
            FolioKind::Anon => "another anonymous page".to_string(),
            FolioKind::Shmem | FolioKind::File => "a page-cache page".to_string(),
            FolioKind::PageTable(_) => "a page table".to_string(),
            FolioKind::Zero | FolioKind::HugeZero => "a zero page".to_string(),
            FolioKind::Free => "a freed page".to_string(),
        },
    }
}

fn decode_finding(k: &Kernel, mm: &MmStruct, va: u64, raw: u64, what: String) -> Finding {
    Finding::new(
        FindingKind::Invariant,
        "INV-DECODE",
        format!(
            "INV-DECODE: mm {} pte at {va:#x} decodes to the wrong page",
            mm.id
        ),
    )
    .detail(what)
    .detail(crate::debug::decode_frame(k, Pte(raw)))
}
