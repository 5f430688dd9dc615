//! x86-64 PTE encodings of the `_PAGE_NUMA` era (v3.8 .. v3.19), as pure
//! functions on raw values.
//!
//! Models arch/x86/include/asm/pgtable_types.h, arch/x86/include/asm/pgtable.h
//! and include/asm-generic/pgtable.h of v3.12/v3.13 (layout
//! [`NumaBit::AliasProtNone`]) and of v3.16 after c46a7c817e66 "x86: define
//! _PAGE_NUMA by reusing software bits on the PMD and PTE levels" (layout
//! [`NumaBit::Softw1`]). From v4.0 NUMA hinting uses plain PROT_NONE entries
//! and `_PAGE_NUMA` is gone: that layout is [`super::pgtable`].
//!
//! Configuration: `CONFIG_X86_64`, `CONFIG_PARAVIRT`, `CONFIG_NUMA_BALANCING`
//! (x86 selects ARCH_USES_NUMA_PROT_NONE, so `pte_numa()` is the real
//! predicate, whatever the hardware), `CONFIG_MEM_SOFT_DIRTY`, every
//! protection bit supported (`massage_pgprot()` is the identity).
//!
//! Two families of accessors meet here, and seed 000 lives between them:
//! *value* accessors (`pte_val()`, `__pte()`) go through `pv_mmu_ops` and, on
//! a Xen PV guest, translate machine frames to pseudo-physical frames and
//! back; *flag* accessors (`pte_flags()`, `pte_set_flags()`,
//! `pte_clear_flags()`) are native and work on the raw value. A flag
//! operation that toggles `_PAGE_PRESENT` therefore skips the translation
//! the Xen ABI needs when presence changes.

use super::paravirt::Paravirt;
use super::pgtable::{
    PgProt, Pte, _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_GLOBAL, _PAGE_PCD, _PAGE_PRESENT, _PAGE_PWT,
    _PAGE_SOFT_DIRTY, _PAGE_SPECIAL,
};

/// `__PHYSICAL_MASK_SHIFT` of v3.12 x86-64: 46 bits of physical address.
pub const __PHYSICAL_MASK_SHIFT: u32 = 46;
/// `PTE_PFN_MASK` (v3.12): pfn bits 12..=45.
pub const PTE_PFN_MASK: u64 = ((1u64 << __PHYSICAL_MASK_SHIFT) - 1) & !0xfff;
/// `PTE_FLAGS_MASK` (v3.12).
pub const PTE_FLAGS_MASK: u64 = !PTE_PFN_MASK;
/// `_PAGE_PROTNONE` (v3.12): bit 8, meaningful when P is clear.
pub const _PAGE_PROTNONE: u64 = _PAGE_GLOBAL;
/// `_PAGE_IOMAP` (v3.12, bit 10): Xen's "do not translate" marker.
pub const _PAGE_IOMAP: u64 = 1 << 10;

/// Where `_PAGE_NUMA` lives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NumaBit {
    /// v3.8 .. v3.15: `_PAGE_NUMA` = `_PAGE_PROTNONE` = bit 8, so a PROT_NONE
    /// pte and a NUMA hinting pte have the same encoding.
    AliasProtNone,
    /// c46a7c817e66 (v3.16): `_PAGE_BIT_NUMA` = `_PAGE_BIT_GLOBAL + 1` = 9,
    /// and `pte_numa()` also requires PROTNONE to be clear.
    Softw1,
}

impl NumaBit {
    /// `_PAGE_NUMA`.
    pub fn mask(self) -> u64 {
        match self {
            NumaBit::AliasProtNone => _PAGE_PROTNONE,
            NumaBit::Softw1 => 1 << 9,
        }
    }

    /// `_PAGE_CHG_MASK`: bits `pte_modify()` keeps. v3.12 =
    /// pfn|PCD|PWT|SPECIAL|A|D|SOFT_DIRTY; c46a7c817e66 (v3.16) adds
    /// `_PAGE_NUMA`.
    pub fn chg_mask(self) -> u64 {
        let base = PTE_PFN_MASK
            | _PAGE_PCD
            | _PAGE_PWT
            | _PAGE_SPECIAL
            | _PAGE_ACCESSED
            | _PAGE_DIRTY
            | _PAGE_SOFT_DIRTY;
        match self {
            NumaBit::AliasProtNone => base,
            NumaBit::Softw1 => base | self.mask(),
        }
    }
}

/// Models arch/x86/include/asm/pgtable_types.h:pte_flags (v3.12): native,
/// no paravirt translation.
pub fn pte_flags(pte: Pte) -> u64 {
    pte.0 & PTE_FLAGS_MASK
}

/// Models arch/x86/include/asm/pgtable.h:pte_set_flags (v3.12): native.
pub fn pte_set_flags(pte: Pte, set: u64) -> Pte {
    Pte(pte.0 | set)
}

/// Models arch/x86/include/asm/pgtable.h:pte_clear_flags (v3.12): native.
pub fn pte_clear_flags(pte: Pte, clear: u64) -> Pte {
    Pte(pte.0 & !clear)
}

/// Models arch/x86/include/asm/pgtable.h:pte_none (v3.12): `!pte.pte`.
pub fn pte_none(pte: Pte) -> bool {
    pte.0 == 0
}

/// Models arch/x86/include/asm/pgtable.h:pte_present (v3.12):
/// `pte_flags(a) & (_PAGE_PRESENT | _PAGE_PROTNONE | _PAGE_NUMA)`.
pub fn pte_present(numa: NumaBit, pte: Pte) -> bool {
    pte_flags(pte) & (_PAGE_PRESENT | _PAGE_PROTNONE | numa.mask()) != 0
}

/// Models include/asm-generic/pgtable.h:pte_numa (v3.12 with
/// ARCH_USES_NUMA_PROT_NONE): `(pte_flags(pte) & (_PAGE_NUMA|_PAGE_PRESENT))
/// == _PAGE_NUMA`; from c46a7c817e66 (v3.16) PROTNONE must be clear too.
pub fn pte_numa(numa: NumaBit, pte: Pte) -> bool {
    let mask = match numa {
        NumaBit::AliasProtNone => numa.mask() | _PAGE_PRESENT,
        NumaBit::Softw1 => numa.mask() | _PAGE_PROTNONE | _PAGE_PRESENT,
    };
    pte_flags(pte) & mask == numa.mask()
}

/// Models arch/x86/include/asm/pgtable.h:pte_special. `_PAGE_SPECIAL` is
/// bit 9, `_PAGE_BIT_SOFTW1`, in both layouts.
///
/// - v3.12 ([`NumaBit::AliasProtNone`]): `pte_flags(pte) & _PAGE_SPECIAL`.
/// - v3.16 ([`NumaBit::Softw1`]): c46a7c817e66 put `_PAGE_NUMA` on bit 9
///   too, so a NUMA hinting pte (bit 9 set, P clear) would read as special;
///   the same commit made it `(pte_flags(pte) & (_PAGE_PRESENT |
///   _PAGE_SPECIAL)) == (_PAGE_PRESENT | _PAGE_SPECIAL)`: only a present
///   entry is special. (b38af4721f59, v3.17 and 3.16.y, widened it to
///   SPECIAL with PRESENT or PROTNONE, for PROT_NONE special mappings; the
///   model's only special mapping is the zero page, whose PROT_NONE pte
///   `vm_normal_page()` of v3.16 sets aside by `is_zero_pfn()`.)
pub fn pte_special(numa: NumaBit, pte: Pte) -> bool {
    match numa {
        NumaBit::AliasProtNone => pte_flags(pte) & _PAGE_SPECIAL != 0,
        NumaBit::Softw1 => {
            pte_flags(pte) & (_PAGE_PRESENT | _PAGE_SPECIAL) == _PAGE_PRESENT | _PAGE_SPECIAL
        }
    }
}

/// Models include/asm-generic/pgtable.h:pte_mknonnuma before 29c7787075c9:
/// `pte_clear_flags(pte, _PAGE_NUMA); pte_set_flags(pte, _PAGE_PRESENT |
/// _PAGE_ACCESSED)` — native flag operations on the raw value.
pub fn pte_mknonnuma_native(numa: NumaBit, pte: Pte) -> Pte {
    let pte = pte_clear_flags(pte, numa.mask());
    pte_set_flags(pte, _PAGE_PRESENT | _PAGE_ACCESSED)
}

/// Models include/asm-generic/pgtable.h:pte_mknuma before 29c7787075c9:
/// `pte_set_flags(pte, _PAGE_NUMA); pte_clear_flags(pte, _PAGE_PRESENT)`.
pub fn pte_mknuma_native(numa: NumaBit, pte: Pte) -> Pte {
    let pte = pte_set_flags(pte, numa.mask());
    pte_clear_flags(pte, _PAGE_PRESENT)
}

/// Models include/asm-generic/pgtable.h:pte_mknonnuma after 29c7787075c9
/// "mm: use paravirt friendly ops for NUMA hinting ptes" (v3.15, 3.14.5):
/// `val = pte_val(pte); val &= ~_PAGE_NUMA; val |= _PAGE_PRESENT |
/// _PAGE_ACCESSED; return __pte(val);`
pub fn pte_mknonnuma_pv(pv: &Paravirt, numa: NumaBit, pte: Pte) -> Pte {
    let mut val = pv.pte_val(pte);
    val &= !numa.mask();
    val |= _PAGE_PRESENT | _PAGE_ACCESSED;
    pv.make_pte(val)
}

/// Models include/asm-generic/pgtable.h:pte_mknuma after 29c7787075c9:
/// `val = pte_val(pte); val &= ~_PAGE_PRESENT; val |= _PAGE_NUMA; return
/// __pte(val);`
pub fn pte_mknuma_pv(pv: &Paravirt, numa: NumaBit, pte: Pte) -> Pte {
    let mut val = pv.pte_val(pte);
    val &= !_PAGE_PRESENT;
    val |= numa.mask();
    pv.make_pte(val)
}

/// Models arch/x86/include/asm/pgtable.h:massage_pgprot (v3.12): with every
/// protection bit supported, the identity.
pub fn massage_pgprot(prot: PgProt) -> u64 {
    prot.0
}

/// Models arch/x86/include/asm/pgtable.h:pte_modify (v3.12):
/// `val = pte_val(pte); val &= _PAGE_CHG_MASK; val |= massage_pgprot(newprot)
/// & ~_PAGE_CHG_MASK; return __pte(val);` — both value accessors paravirt.
pub fn pte_modify(pv: &Paravirt, numa: NumaBit, pte: Pte, newprot: PgProt) -> Pte {
    let chg = numa.chg_mask();
    let mut val = pv.pte_val(pte);
    val &= chg;
    val |= massage_pgprot(newprot) & !chg;
    pv.make_pte(val)
}

/// Models arch/x86/include/asm/pgtable.h:pte_pfn (v3.12): `(pte_val(pte) &
/// PTE_PFN_MASK) >> PAGE_SHIFT`, through the paravirt `pte_val()`.
pub fn pte_pfn(pv: &Paravirt, pte: Pte) -> u64 {
    (pv.pte_val(pte) & PTE_PFN_MASK) >> 12
}

/// Models arch/x86/include/asm/pgtable.h:pfn_pte (v3.12):
/// `__pte(((phys_addr_t)page_nr << PAGE_SHIFT) | massage_pgprot(pgprot))`.
/// `mk_pte(page, prot)` is `pfn_pte(page_to_pfn(page), prot)`.
pub fn pfn_pte(pv: &Paravirt, pfn: u64, prot: PgProt) -> Pte {
    pv.make_pte((pfn << 12) | massage_pgprot(prot))
}

/// Describes a raw 3.x-era pte for reports (model helper): what the flags
/// say, and the frame as the platform reads it — a present frame through
/// the machine-to-phys table, a non-present one as a pfn.
pub fn describe_pte(pv: &Paravirt, numa: NumaBit, pte: Pte) -> String {
    let raw = pte.0;
    if pte_none(pte) {
        return "none".to_string();
    }
    let frame = (raw & PTE_PFN_MASK) >> 12;
    let flags = super::pgtable::flags_to_string(raw & PTE_FLAGS_MASK, false);
    if raw & _PAGE_PRESENT != 0 {
        if !pv.is_xen_pv() {
            return format!("present pfn {frame:#x} prot {flags}");
        }
        let pfn = pv
            .machine_to_phys(frame)
            .map_or("not this domain's".to_string(), |p| format!("pfn {p:#x}"));
        return format!("present mfn {frame:#x} ({pfn}) prot {flags}");
    }
    let what = match numa {
        NumaBit::AliasProtNone if raw & _PAGE_PROTNONE != 0 => "protnone/numa",
        NumaBit::Softw1 if raw & _PAGE_PROTNONE != 0 => "protnone",
        NumaBit::Softw1 if raw & numa.mask() != 0 => "numa",
        _ => return format!("swap/file entry {raw:#x}"),
    };
    format!("{what} frame {frame:#x} prot {flags}")
}
