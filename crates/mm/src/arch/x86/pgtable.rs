//! x86-64 page-table entry encodings, as pure functions on raw values.
//!
//! Configuration modelled: `CONFIG_X86_64`, 4-level paging, 52-bit
//! `__PHYSICAL_MASK`, L1TF PFN inversion (`asm/pgtable-invert.h`),
//! `CONFIG_NUMA_BALANCING`, `CONFIG_ARCH_HAS_PTE_DEVMAP`,
//! `CONFIG_TRANSPARENT_HUGEPAGE`, `CONFIG_MEM_SOFT_DIRTY`,
//! `CONFIG_HAVE_ARCH_USERFAULTFD_WP`, no SME/SEV (`_PAGE_ENC` = 0) and every
//! protection bit supported by the CPU (`__supported_pte_mask` = all ones, so
//! `check_pgprot()`/`massage_pgprot()` are the identity).
//!
//! Reference version is Linux v6.1; everything here also holds for
//! v5.5..v6.5 unless a doc comment says otherwise. The code re-expresses the
//! kernel definitions from `arch/x86/include/asm/{pgtable.h, pgtable_types.h,
//! pgtable_64.h, pgtable_64_types.h, page_types.h, pgtable-invert.h}`,
//! `arch/x86/mm/pgprot.c`, `include/linux/pgtable.h` and
//! `include/linux/huge_mm.h`.
//!
//! Predicates return `bool` where the kernel returns a non-zero `int`.

use std::fmt;

use super::swap::{
    migration_kind, non_swap_entry, pfn_swap_entry_to_pfn, pmd_swp_soft_dirty, pmd_swp_uffd_wp,
    pmd_to_swp_entry, pte_swp_exclusive, pte_swp_soft_dirty, pte_swp_uffd_wp, pte_to_swp_entry,
    swp_offset, swp_type, MigrationKind, SwapTypes,
};

// ---------------------------------------------------------------------------
// Entry types
// ---------------------------------------------------------------------------

/// A raw x86-64 PTE value (`pte_t`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Pte(pub u64);

/// A raw x86-64 PMD value (`pmd_t`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Pmd(pub u64);

/// A protection value (`pgprot_t`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct PgProt(pub u64);

/// Models arch/x86/include/asm/pgtable_types.h:native_pte_val (v6.1).
pub fn pte_val(pte: Pte) -> u64 {
    pte.0
}

/// Models arch/x86/include/asm/pgtable_types.h:native_pmd_val (v6.1).
pub fn pmd_val(pmd: Pmd) -> u64 {
    pmd.0
}

/// Models arch/x86/include/asm/pgtable_types.h:native_make_pte (`__pte`) (v6.1).
#[doc(alias = "__pte")]
pub fn make_pte(val: u64) -> Pte {
    Pte(val)
}

/// Models arch/x86/include/asm/pgtable_types.h:native_make_pmd (`__pmd`) (v6.1).
#[doc(alias = "__pmd")]
pub fn make_pmd(val: u64) -> Pmd {
    Pmd(val)
}

/// Models arch/x86/include/asm/pgtable_types.h:pgprot_val (v6.1).
pub fn pgprot_val(prot: PgProt) -> u64 {
    prot.0
}

/// Models arch/x86/include/asm/pgtable_types.h:__pgprot (v6.1).
#[doc(alias = "__pgprot")]
pub fn make_pgprot(val: u64) -> PgProt {
    PgProt(val)
}

// ---------------------------------------------------------------------------
// Geometry (pgtable_64_types.h, page_types.h)
// ---------------------------------------------------------------------------

/// `PAGE_SHIFT`.
pub const PAGE_SHIFT: u32 = 12;
/// `PAGE_SIZE`.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// `PAGE_MASK`.
pub const PAGE_MASK: u64 = !(PAGE_SIZE - 1);
/// `PMD_SHIFT`.
pub const PMD_SHIFT: u32 = 21;
/// `PMD_SIZE`.
pub const PMD_SIZE: u64 = 1 << PMD_SHIFT;
/// `PMD_MASK`.
pub const PMD_MASK: u64 = !(PMD_SIZE - 1);
/// `PUD_SHIFT`.
pub const PUD_SHIFT: u32 = 30;
/// `PUD_SIZE`.
pub const PUD_SIZE: u64 = 1 << PUD_SHIFT;
/// `PUD_MASK`.
pub const PUD_MASK: u64 = !(PUD_SIZE - 1);
/// `PGDIR_SHIFT` (4-level paging).
pub const PGDIR_SHIFT: u32 = 39;
/// `PGDIR_SIZE`.
pub const PGDIR_SIZE: u64 = 1 << PGDIR_SHIFT;
/// `PGDIR_MASK`.
pub const PGDIR_MASK: u64 = !(PGDIR_SIZE - 1);
/// `PTRS_PER_PGD` (4-level paging).
pub const PTRS_PER_PGD: u64 = 512;
/// `PTRS_PER_P4D` (4-level paging: folded).
pub const PTRS_PER_P4D: u64 = 1;
/// `PTRS_PER_PUD`.
pub const PTRS_PER_PUD: u64 = 512;
/// `PTRS_PER_PMD`.
pub const PTRS_PER_PMD: u64 = 512;
/// `PTRS_PER_PTE`.
pub const PTRS_PER_PTE: u64 = 512;
/// `HPAGE_PMD_SHIFT`.
pub const HPAGE_PMD_SHIFT: u32 = PMD_SHIFT;
/// `HPAGE_PMD_ORDER`.
pub const HPAGE_PMD_ORDER: u32 = HPAGE_PMD_SHIFT - PAGE_SHIFT;
/// `HPAGE_PMD_NR`.
pub const HPAGE_PMD_NR: u64 = 1 << HPAGE_PMD_ORDER;
/// `HPAGE_PMD_SIZE`.
pub const HPAGE_PMD_SIZE: u64 = 1 << HPAGE_PMD_SHIFT;
/// `HPAGE_PMD_MASK`.
pub const HPAGE_PMD_MASK: u64 = !(HPAGE_PMD_SIZE - 1);

/// `__PHYSICAL_MASK_SHIFT` (x86-64).
pub const __PHYSICAL_MASK_SHIFT: u32 = 52;
/// `__PHYSICAL_MASK` (no SME: plain `(1 << 52) - 1`).
pub const __PHYSICAL_MASK: u64 = (1 << __PHYSICAL_MASK_SHIFT) - 1;
/// `PHYSICAL_PAGE_MASK`: bits 12..=51.
pub const PHYSICAL_PAGE_MASK: u64 = PAGE_MASK & __PHYSICAL_MASK;
/// `PHYSICAL_PMD_PAGE_MASK`: bits 21..=51.
pub const PHYSICAL_PMD_PAGE_MASK: u64 = PMD_MASK & __PHYSICAL_MASK;
/// `PHYSICAL_PUD_PAGE_MASK`: bits 30..=51.
pub const PHYSICAL_PUD_PAGE_MASK: u64 = PUD_MASK & __PHYSICAL_MASK;
/// `PTE_PFN_MASK`: pfn bits of a 4 KiB entry (bits 12..=51).
pub const PTE_PFN_MASK: u64 = PHYSICAL_PAGE_MASK;
/// `PTE_FLAGS_MASK`: everything outside `PTE_PFN_MASK`.
pub const PTE_FLAGS_MASK: u64 = !PTE_PFN_MASK;

// ---------------------------------------------------------------------------
// Bits (pgtable_types.h)
// ---------------------------------------------------------------------------

/// `_PAGE_BIT_PRESENT`.
pub const _PAGE_BIT_PRESENT: u32 = 0;
/// `_PAGE_BIT_RW`.
pub const _PAGE_BIT_RW: u32 = 1;
/// `_PAGE_BIT_USER`.
pub const _PAGE_BIT_USER: u32 = 2;
/// `_PAGE_BIT_PWT`.
pub const _PAGE_BIT_PWT: u32 = 3;
/// `_PAGE_BIT_PCD`.
pub const _PAGE_BIT_PCD: u32 = 4;
/// `_PAGE_BIT_ACCESSED`.
pub const _PAGE_BIT_ACCESSED: u32 = 5;
/// `_PAGE_BIT_DIRTY`.
pub const _PAGE_BIT_DIRTY: u32 = 6;
/// `_PAGE_BIT_PSE` (2 MiB / 1 GiB leaf).
pub const _PAGE_BIT_PSE: u32 = 7;
/// `_PAGE_BIT_PAT` (same bit as PSE, on 4 KiB entries).
pub const _PAGE_BIT_PAT: u32 = 7;
/// `_PAGE_BIT_GLOBAL`.
pub const _PAGE_BIT_GLOBAL: u32 = 8;
/// `_PAGE_BIT_SOFTW1`.
pub const _PAGE_BIT_SOFTW1: u32 = 9;
/// `_PAGE_BIT_SOFTW2`.
pub const _PAGE_BIT_SOFTW2: u32 = 10;
/// `_PAGE_BIT_SOFTW3`.
pub const _PAGE_BIT_SOFTW3: u32 = 11;
/// `_PAGE_BIT_PAT_LARGE` (PAT bit of PSE entries).
pub const _PAGE_BIT_PAT_LARGE: u32 = 12;
/// `_PAGE_BIT_SOFTW4`.
pub const _PAGE_BIT_SOFTW4: u32 = 58;
/// `_PAGE_BIT_PKEY_BIT0`.
pub const _PAGE_BIT_PKEY_BIT0: u32 = 59;
/// `_PAGE_BIT_PKEY_BIT1`.
pub const _PAGE_BIT_PKEY_BIT1: u32 = 60;
/// `_PAGE_BIT_PKEY_BIT2`.
pub const _PAGE_BIT_PKEY_BIT2: u32 = 61;
/// `_PAGE_BIT_PKEY_BIT3`.
pub const _PAGE_BIT_PKEY_BIT3: u32 = 62;
/// `_PAGE_BIT_NX`.
pub const _PAGE_BIT_NX: u32 = 63;
/// `_PAGE_BIT_SPECIAL` = `_PAGE_BIT_SOFTW1`.
pub const _PAGE_BIT_SPECIAL: u32 = _PAGE_BIT_SOFTW1;
/// `_PAGE_BIT_CPA_TEST` = `_PAGE_BIT_SOFTW1`.
pub const _PAGE_BIT_CPA_TEST: u32 = _PAGE_BIT_SOFTW1;
/// `_PAGE_BIT_UFFD_WP` = `_PAGE_BIT_SOFTW2` (v5.7+).
pub const _PAGE_BIT_UFFD_WP: u32 = _PAGE_BIT_SOFTW2;
/// `_PAGE_BIT_SOFT_DIRTY` = `_PAGE_BIT_SOFTW3`.
pub const _PAGE_BIT_SOFT_DIRTY: u32 = _PAGE_BIT_SOFTW3;
/// `_PAGE_BIT_DEVMAP` = `_PAGE_BIT_SOFTW4` (bit 58).
pub const _PAGE_BIT_DEVMAP: u32 = _PAGE_BIT_SOFTW4;
/// `_PAGE_BIT_PROTNONE` = `_PAGE_BIT_GLOBAL`: meaning "PROT_NONE" when P is clear.
pub const _PAGE_BIT_PROTNONE: u32 = _PAGE_BIT_GLOBAL;

/// `_PAGE_PRESENT`.
pub const _PAGE_PRESENT: u64 = 1 << _PAGE_BIT_PRESENT;
/// `_PAGE_RW`.
pub const _PAGE_RW: u64 = 1 << _PAGE_BIT_RW;
/// `_PAGE_USER`.
pub const _PAGE_USER: u64 = 1 << _PAGE_BIT_USER;
/// `_PAGE_PWT`.
pub const _PAGE_PWT: u64 = 1 << _PAGE_BIT_PWT;
/// `_PAGE_PCD`.
pub const _PAGE_PCD: u64 = 1 << _PAGE_BIT_PCD;
/// `_PAGE_ACCESSED`.
pub const _PAGE_ACCESSED: u64 = 1 << _PAGE_BIT_ACCESSED;
/// `_PAGE_DIRTY`.
pub const _PAGE_DIRTY: u64 = 1 << _PAGE_BIT_DIRTY;
/// `_PAGE_PSE`.
pub const _PAGE_PSE: u64 = 1 << _PAGE_BIT_PSE;
/// `_PAGE_PAT` (4 KiB entries).
pub const _PAGE_PAT: u64 = 1 << _PAGE_BIT_PAT;
/// `_PAGE_GLOBAL`.
pub const _PAGE_GLOBAL: u64 = 1 << _PAGE_BIT_GLOBAL;
/// `_PAGE_SOFTW1`.
pub const _PAGE_SOFTW1: u64 = 1 << _PAGE_BIT_SOFTW1;
/// `_PAGE_SOFTW2`.
pub const _PAGE_SOFTW2: u64 = 1 << _PAGE_BIT_SOFTW2;
/// `_PAGE_SOFTW3`.
pub const _PAGE_SOFTW3: u64 = 1 << _PAGE_BIT_SOFTW3;
/// `_PAGE_SOFTW4`.
pub const _PAGE_SOFTW4: u64 = 1 << _PAGE_BIT_SOFTW4;
/// `_PAGE_PAT_LARGE`.
pub const _PAGE_PAT_LARGE: u64 = 1 << _PAGE_BIT_PAT_LARGE;
/// `_PAGE_SPECIAL`.
pub const _PAGE_SPECIAL: u64 = 1 << _PAGE_BIT_SPECIAL;
/// `_PAGE_CPA_TEST`.
pub const _PAGE_CPA_TEST: u64 = 1 << _PAGE_BIT_CPA_TEST;
/// `_PAGE_PKEY_BIT0`.
pub const _PAGE_PKEY_BIT0: u64 = 1 << _PAGE_BIT_PKEY_BIT0;
/// `_PAGE_PKEY_BIT1`.
pub const _PAGE_PKEY_BIT1: u64 = 1 << _PAGE_BIT_PKEY_BIT1;
/// `_PAGE_PKEY_BIT2`.
pub const _PAGE_PKEY_BIT2: u64 = 1 << _PAGE_BIT_PKEY_BIT2;
/// `_PAGE_PKEY_BIT3`.
pub const _PAGE_PKEY_BIT3: u64 = 1 << _PAGE_BIT_PKEY_BIT3;
/// `_PAGE_PKEY_MASK`.
pub const _PAGE_PKEY_MASK: u64 =
    _PAGE_PKEY_BIT0 | _PAGE_PKEY_BIT1 | _PAGE_PKEY_BIT2 | _PAGE_PKEY_BIT3;
/// `_PAGE_KNL_ERRATUM_MASK`: A/D bits that Xeon Phi (KNL) may set on non-present entries.
pub const _PAGE_KNL_ERRATUM_MASK: u64 = _PAGE_DIRTY | _PAGE_ACCESSED;
/// `_PAGE_SOFT_DIRTY` (`CONFIG_MEM_SOFT_DIRTY`).
pub const _PAGE_SOFT_DIRTY: u64 = 1 << _PAGE_BIT_SOFT_DIRTY;
/// `_PAGE_UFFD_WP` (`CONFIG_HAVE_ARCH_USERFAULTFD_WP`, v5.7+).
pub const _PAGE_UFFD_WP: u64 = 1 << _PAGE_BIT_UFFD_WP;
/// `_PAGE_NX`.
pub const _PAGE_NX: u64 = 1 << _PAGE_BIT_NX;
/// `_PAGE_DEVMAP` (bit 58; inside the swap offset field of non-present entries).
pub const _PAGE_DEVMAP: u64 = 1 << _PAGE_BIT_DEVMAP;
/// `_PAGE_PROTNONE` (= `_PAGE_GLOBAL`, bit 8).
pub const _PAGE_PROTNONE: u64 = 1 << _PAGE_BIT_PROTNONE;
/// `_PAGE_ENC` (`sme_me_mask`; modelled without SME, so 0).
pub const _PAGE_ENC: u64 = 0;

/// `_PAGE_SWP_SOFT_DIRTY` = `_PAGE_RW` (bit 1, only meaningful when P is clear).
pub const _PAGE_SWP_SOFT_DIRTY: u64 = _PAGE_RW;
/// `_PAGE_SWP_UFFD_WP` = `_PAGE_USER` (bit 2, only meaningful when P is clear).
pub const _PAGE_SWP_UFFD_WP: u64 = _PAGE_USER;
/// `_PAGE_SWP_EXCLUSIVE` = `_PAGE_PWT` (bit 3, swap PTEs only; in v6.1, not in v5.15).
pub const _PAGE_SWP_EXCLUSIVE: u64 = _PAGE_PWT;

/// `_PAGE_TABLE`: value bits of a user page-table pointer (P|RW|US|A|D).
pub const _PAGE_TABLE: u64 =
    _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_ENC;
/// `_KERNPG_TABLE`: value bits of a kernel page-table pointer (P|RW|A|D).
pub const _KERNPG_TABLE: u64 = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_ENC;

/// `_PAGE_CHG_MASK`: bits `pte_modify()` keeps (v6.1 value).
///
/// v6.1 = pfn|PCD|PWT|SPECIAL|A|D|SOFT_DIRTY|DEVMAP|ENC|UFFD_WP. v5.5/v5.6 lack
/// `_PAGE_ENC` and `_PAGE_UFFD_WP` (both added for v5.7); v6.6 adds `_PAGE_PAT`
/// (commit 548cb932051f, a `Fixes:` commit that stable trees may carry) and
/// the shadow-stack SAVED_DIRTY bit.
pub const _PAGE_CHG_MASK: u64 = PTE_PFN_MASK
    | _PAGE_PCD
    | _PAGE_PWT
    | _PAGE_SPECIAL
    | _PAGE_ACCESSED
    | _PAGE_DIRTY
    | _PAGE_SOFT_DIRTY
    | _PAGE_DEVMAP
    | _PAGE_ENC
    | _PAGE_UFFD_WP;
/// `_HPAGE_CHG_MASK` = `_PAGE_CHG_MASK | _PAGE_PSE` (v6.1).
///
/// v6.6 adds `_PAGE_PAT_LARGE` (bit 12, already inside `PTE_PFN_MASK`: no effect).
pub const _HPAGE_CHG_MASK: u64 = _PAGE_CHG_MASK | _PAGE_PSE;

// ---------------------------------------------------------------------------
// Protections (pgtable_types.h, arch/x86/mm/pgprot.c)
// ---------------------------------------------------------------------------

/// `PAGE_NONE` = A|G (G is the PROTNONE bit; v5.5 spelled it PROTNONE|A, same value 0x120).
pub const PAGE_NONE: PgProt = PgProt(_PAGE_ACCESSED | _PAGE_GLOBAL);
/// `PAGE_SHARED` = P|RW|US|A|NX.
pub const PAGE_SHARED: PgProt =
    PgProt(_PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_NX);
/// `PAGE_SHARED_EXEC` = P|RW|US|A.
pub const PAGE_SHARED_EXEC: PgProt = PgProt(_PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED);
/// `PAGE_COPY_NOEXEC` = P|US|A|NX.
pub const PAGE_COPY_NOEXEC: PgProt = PgProt(_PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_NX);
/// `PAGE_COPY_EXEC` = P|US|A.
pub const PAGE_COPY_EXEC: PgProt = PgProt(_PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED);
/// `PAGE_COPY` = `PAGE_COPY_NOEXEC`.
pub const PAGE_COPY: PgProt = PAGE_COPY_NOEXEC;
/// `PAGE_READONLY` = P|US|A|NX.
pub const PAGE_READONLY: PgProt = PgProt(_PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_NX);
/// `PAGE_READONLY_EXEC` = P|US|A.
pub const PAGE_READONLY_EXEC: PgProt = PgProt(_PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED);

/// `VM_READ`.
pub const VM_READ: u64 = 0x1;
/// `VM_WRITE`.
pub const VM_WRITE: u64 = 0x2;
/// `VM_EXEC`.
pub const VM_EXEC: u64 = 0x4;
/// `VM_SHARED`.
pub const VM_SHARED: u64 = 0x8;

/// The x86 `protection_map[16]`, indexed by `vm_flags & (VM_READ|VM_WRITE|VM_EXEC|VM_SHARED)`.
///
/// Private mappings never get RW (COW); v6.1 has it in arch/x86/mm/pgprot.c,
/// v5.5 as the `__P000..__S111` macros of pgtable_types.h (same values).
pub const PROTECTION_MAP: [PgProt; 16] = [
    PAGE_NONE,          // private ---
    PAGE_READONLY,      // private r--
    PAGE_COPY,          // private -w-
    PAGE_COPY,          // private rw-
    PAGE_READONLY_EXEC, // private --x
    PAGE_READONLY_EXEC, // private r-x
    PAGE_COPY_EXEC,     // private -wx
    PAGE_COPY_EXEC,     // private rwx
    PAGE_NONE,          // shared ---
    PAGE_READONLY,      // shared r--
    PAGE_SHARED,        // shared -w-
    PAGE_SHARED,        // shared rw-
    PAGE_READONLY_EXEC, // shared --x
    PAGE_READONLY_EXEC, // shared r-x
    PAGE_SHARED_EXEC,   // shared -wx
    PAGE_SHARED_EXEC,   // shared rwx
];

/// Models arch/x86/mm/pgprot.c:vm_get_page_prot (v6.1).
///
/// Protection keys, SME and `__supported_pte_mask` filtering are not modelled
/// (identity), so this is a plain `protection_map[]` lookup.
pub fn vm_get_page_prot(vm_flags: u64) -> PgProt {
    let idx = vm_flags & (VM_READ | VM_WRITE | VM_EXEC | VM_SHARED);
    PROTECTION_MAP[idx as usize]
}

// ---------------------------------------------------------------------------
// L1TF inversion (pgtable-invert.h)
// ---------------------------------------------------------------------------

/// Models arch/x86/include/asm/pgtable-invert.h:__pte_needs_invert (v6.1).
pub fn __pte_needs_invert(val: u64) -> bool {
    val != 0 && val & _PAGE_PRESENT == 0
}

/// Models arch/x86/include/asm/pgtable-invert.h:protnone_mask (v6.1).
pub fn protnone_mask(val: u64) -> u64 {
    if __pte_needs_invert(val) {
        !0
    } else {
        0
    }
}

/// Models arch/x86/include/asm/pgtable-invert.h:flip_protnone_guard (v6.1).
pub fn flip_protnone_guard(oldval: u64, val: u64, mask: u64) -> u64 {
    if __pte_needs_invert(oldval) != __pte_needs_invert(val) {
        (val & !mask) | (!val & mask)
    } else {
        val
    }
}

// ---------------------------------------------------------------------------
// PTE
// ---------------------------------------------------------------------------

/// Models arch/x86/include/asm/pgtable.h:pfn_pte (v6.1).
pub fn pfn_pte(pfn: u64, prot: PgProt) -> Pte {
    let mut phys = pfn << PAGE_SHIFT;
    phys ^= protnone_mask(pgprot_val(prot));
    phys &= PTE_PFN_MASK;
    Pte(phys | pgprot_val(prot))
}

/// Models arch/x86/include/asm/pgtable.h:pte_pfn (v6.1).
pub fn pte_pfn(pte: Pte) -> u64 {
    let v = pte_val(pte);
    ((v ^ protnone_mask(v)) & PTE_PFN_MASK) >> PAGE_SHIFT
}

/// Models arch/x86/include/asm/pgtable_types.h:pte_flags (v6.1).
pub fn pte_flags(pte: Pte) -> u64 {
    pte_val(pte) & PTE_FLAGS_MASK
}

/// Models arch/x86/include/asm/pgtable.h:pte_none (v6.1).
pub fn pte_none(pte: Pte) -> bool {
    pte_val(pte) & !_PAGE_KNL_ERRATUM_MASK == 0
}

/// Models arch/x86/include/asm/pgtable.h:pte_present (v6.1).
pub fn pte_present(pte: Pte) -> bool {
    pte_flags(pte) & (_PAGE_PRESENT | _PAGE_PROTNONE) != 0
}

/// Models arch/x86/include/asm/pgtable.h:pte_protnone (v6.1).
pub fn pte_protnone(pte: Pte) -> bool {
    pte_flags(pte) & (_PAGE_PROTNONE | _PAGE_PRESENT) == _PAGE_PROTNONE
}

/// Models arch/x86/include/asm/pgtable.h:pte_devmap (v6.1).
pub fn pte_devmap(pte: Pte) -> bool {
    pte_flags(pte) & _PAGE_DEVMAP == _PAGE_DEVMAP
}

/// Models arch/x86/include/asm/pgtable.h:pte_special (v6.1).
pub fn pte_special(pte: Pte) -> bool {
    pte_flags(pte) & _PAGE_SPECIAL != 0
}

/// Models arch/x86/include/asm/pgtable.h:pte_write (v6.1).
pub fn pte_write(pte: Pte) -> bool {
    pte_flags(pte) & _PAGE_RW != 0
}

/// Models arch/x86/include/asm/pgtable.h:pte_dirty (v6.1).
pub fn pte_dirty(pte: Pte) -> bool {
    pte_flags(pte) & _PAGE_DIRTY != 0
}

/// Models arch/x86/include/asm/pgtable.h:pte_young (v6.1).
pub fn pte_young(pte: Pte) -> bool {
    pte_flags(pte) & _PAGE_ACCESSED != 0
}

/// Models arch/x86/include/asm/pgtable.h:pte_soft_dirty (v6.1).
pub fn pte_soft_dirty(pte: Pte) -> bool {
    pte_flags(pte) & _PAGE_SOFT_DIRTY != 0
}

/// Models arch/x86/include/asm/pgtable.h:pte_uffd_wp (v6.1).
pub fn pte_uffd_wp(pte: Pte) -> bool {
    pte_flags(pte) & _PAGE_UFFD_WP != 0
}

/// Models arch/x86/include/asm/pgtable.h:pte_set_flags (v6.1).
pub fn pte_set_flags(pte: Pte, set: u64) -> Pte {
    Pte(pte_val(pte) | set)
}

/// Models arch/x86/include/asm/pgtable.h:pte_clear_flags (v6.1).
pub fn pte_clear_flags(pte: Pte, clear: u64) -> Pte {
    Pte(pte_val(pte) & !clear)
}

/// Models arch/x86/include/asm/pgtable.h:pte_mkyoung (v6.1).
pub fn pte_mkyoung(pte: Pte) -> Pte {
    pte_set_flags(pte, _PAGE_ACCESSED)
}

/// Models arch/x86/include/asm/pgtable.h:pte_mkold (v6.1).
pub fn pte_mkold(pte: Pte) -> Pte {
    pte_clear_flags(pte, _PAGE_ACCESSED)
}

/// Models arch/x86/include/asm/pgtable.h:pte_mkdirty (v6.1).
pub fn pte_mkdirty(pte: Pte) -> Pte {
    pte_set_flags(pte, _PAGE_DIRTY | _PAGE_SOFT_DIRTY)
}

/// Models arch/x86/include/asm/pgtable.h:pte_mkclean (v6.1).
pub fn pte_mkclean(pte: Pte) -> Pte {
    pte_clear_flags(pte, _PAGE_DIRTY)
}

/// Models arch/x86/include/asm/pgtable.h:pte_mkwrite (v6.1).
///
/// v6.1 (and v5.5..v6.5): just sets RW. v6.6 renamed it `pte_mkwrite_novma`
/// and added shadow-stack handling.
pub fn pte_mkwrite(pte: Pte) -> Pte {
    pte_set_flags(pte, _PAGE_RW)
}

/// Models arch/x86/include/asm/pgtable.h:pte_wrprotect (v6.1).
pub fn pte_wrprotect(pte: Pte) -> Pte {
    pte_clear_flags(pte, _PAGE_RW)
}

/// Models arch/x86/include/asm/pgtable.h:pte_mkspecial (v6.1).
pub fn pte_mkspecial(pte: Pte) -> Pte {
    pte_set_flags(pte, _PAGE_SPECIAL)
}

/// Models arch/x86/include/asm/pgtable.h:pte_modify (v6.1).
pub fn pte_modify(pte: Pte, newprot: PgProt) -> Pte {
    let oldval = pte_val(pte);
    let mut val = oldval & _PAGE_CHG_MASK;
    val |= pgprot_val(newprot) & !_PAGE_CHG_MASK;
    Pte(flip_protnone_guard(oldval, val, PTE_PFN_MASK))
}

/// Models arch/x86/include/asm/pgtable.h:pte_same (v6.1).
pub fn pte_same(a: Pte, b: Pte) -> bool {
    a == b
}

// ---------------------------------------------------------------------------
// PMD
// ---------------------------------------------------------------------------

/// Models arch/x86/include/asm/pgtable_types.h:pmd_pfn_mask (v6.1).
pub fn pmd_pfn_mask(pmd: Pmd) -> u64 {
    if pmd_val(pmd) & _PAGE_PSE != 0 {
        PHYSICAL_PMD_PAGE_MASK
    } else {
        PTE_PFN_MASK
    }
}

/// Models arch/x86/include/asm/pgtable_types.h:pmd_flags_mask (v6.1).
pub fn pmd_flags_mask(pmd: Pmd) -> u64 {
    !pmd_pfn_mask(pmd)
}

/// Models arch/x86/include/asm/pgtable_types.h:pmd_flags (v6.1).
///
/// For a non-PSE value (table pointer, swap entry) this is everything outside
/// bits 12..=51, so a swap entry's type and high offset bits (52..=63) count
/// as "flags" - which is why `pmd_bad()` is true for PMD migration entries.
pub fn pmd_flags(pmd: Pmd) -> u64 {
    pmd_val(pmd) & pmd_flags_mask(pmd)
}

/// Models arch/x86/include/asm/pgtable.h:pfn_pmd (v6.1).
///
/// The pfn is masked with `PHYSICAL_PMD_PAGE_MASK` (bits 21..=51) whatever
/// `prot` is; an inverted (non-present) result therefore only reads back
/// correctly through `pmd_pfn()` once `_PAGE_PSE` is set (as `mk_huge_pmd`
/// and `pmd_mkinvalid` guarantee), because without PSE `pmd_pfn()` also
/// un-inverts the zero bits 12..=20.
pub fn pfn_pmd(pfn: u64, prot: PgProt) -> Pmd {
    let mut phys = pfn << PAGE_SHIFT;
    phys ^= protnone_mask(pgprot_val(prot));
    phys &= PHYSICAL_PMD_PAGE_MASK;
    Pmd(phys | pgprot_val(prot))
}

/// Models arch/x86/include/asm/pgtable.h:pmd_pfn (v6.1).
pub fn pmd_pfn(pmd: Pmd) -> u64 {
    let v = pmd_val(pmd);
    ((v ^ protnone_mask(v)) & pmd_pfn_mask(pmd)) >> PAGE_SHIFT
}

/// Models arch/x86/include/asm/pgtable.h:pmd_page (as a pfn: `page_to_pfn(pmd_page(pmd))`) (v6.1).
///
/// No validation: for a none pmd this is pfn 0, for a huge pmd the THP head,
/// for a swap entry a garbage pfn derived from the inverted offset.
pub fn pmd_page_pfn(pmd: Pmd) -> u64 {
    pmd_pfn(pmd)
}

/// Models arch/x86/include/asm/pgtable.h:pmd_none (v6.1).
pub fn pmd_none(pmd: Pmd) -> bool {
    pmd_val(pmd) & !_PAGE_KNL_ERRATUM_MASK == 0
}

/// Models arch/x86/include/asm/pgtable.h:pmd_present (v6.1).
///
/// PSE alone counts as present: `pmdp_invalidate()` leaves a huge pmd with P
/// and PROTNONE clear but PSE set.
pub fn pmd_present(pmd: Pmd) -> bool {
    pmd_flags(pmd) & (_PAGE_PRESENT | _PAGE_PROTNONE | _PAGE_PSE) != 0
}

/// Models arch/x86/include/asm/pgtable.h:pmd_bad (v6.1).
///
/// v6.1 ignores `_PAGE_ACCESSED` (added with `CONFIG_ARCH_HAS_NONLEAF_PMD_YOUNG`
/// by the multi-gen LRU series, v6.1-rc1); v5.5..v6.0 is [`pmd_bad_pre_v6_1`].
pub fn pmd_bad(pmd: Pmd) -> bool {
    pmd_flags(pmd) & !(_PAGE_USER | _PAGE_ACCESSED) != _KERNPG_TABLE & !_PAGE_ACCESSED
}

/// Models arch/x86/include/asm/pgtable.h:pmd_bad (v5.5..v6.0).
pub fn pmd_bad_pre_v6_1(pmd: Pmd) -> bool {
    pmd_flags(pmd) & !_PAGE_USER != _KERNPG_TABLE
}

/// Models arch/x86/include/asm/pgtable.h:pmd_trans_huge (v6.1).
pub fn pmd_trans_huge(pmd: Pmd) -> bool {
    pmd_val(pmd) & (_PAGE_PSE | _PAGE_DEVMAP) == _PAGE_PSE
}

/// Models arch/x86/include/asm/pgtable.h:pmd_large (`pmd_leaf`) (v6.1).
pub fn pmd_large(pmd: Pmd) -> bool {
    pmd_flags(pmd) & _PAGE_PSE != 0
}

/// Models arch/x86/include/asm/pgtable.h:pmd_devmap (v6.1).
///
/// Tests the raw bit 58, so it is also true for every PMD swap/migration
/// entry whose offset is below 2^49 (bit 58 = inverted offset bit 49).
pub fn pmd_devmap(pmd: Pmd) -> bool {
    pmd_val(pmd) & _PAGE_DEVMAP != 0
}

/// Models arch/x86/include/asm/pgtable.h:pmd_protnone (v6.1).
pub fn pmd_protnone(pmd: Pmd) -> bool {
    pmd_flags(pmd) & (_PAGE_PROTNONE | _PAGE_PRESENT) == _PAGE_PROTNONE
}

/// Models arch/x86/include/asm/pgtable.h:pmd_write (v6.1).
pub fn pmd_write(pmd: Pmd) -> bool {
    pmd_flags(pmd) & _PAGE_RW != 0
}

/// Models arch/x86/include/asm/pgtable.h:pmd_dirty (v6.1).
pub fn pmd_dirty(pmd: Pmd) -> bool {
    pmd_flags(pmd) & _PAGE_DIRTY != 0
}

/// Models arch/x86/include/asm/pgtable.h:pmd_young (v6.1).
pub fn pmd_young(pmd: Pmd) -> bool {
    pmd_flags(pmd) & _PAGE_ACCESSED != 0
}

/// Models arch/x86/include/asm/pgtable.h:pmd_soft_dirty (v6.1).
pub fn pmd_soft_dirty(pmd: Pmd) -> bool {
    pmd_flags(pmd) & _PAGE_SOFT_DIRTY != 0
}

/// Models arch/x86/include/asm/pgtable.h:pmd_uffd_wp (v6.1).
pub fn pmd_uffd_wp(pmd: Pmd) -> bool {
    pmd_flags(pmd) & _PAGE_UFFD_WP != 0
}

/// Models arch/x86/include/asm/pgtable.h:pmd_set_flags (v6.1).
pub fn pmd_set_flags(pmd: Pmd, set: u64) -> Pmd {
    Pmd(pmd_val(pmd) | set)
}

/// Models arch/x86/include/asm/pgtable.h:pmd_clear_flags (v6.1).
pub fn pmd_clear_flags(pmd: Pmd, clear: u64) -> Pmd {
    Pmd(pmd_val(pmd) & !clear)
}

/// Models arch/x86/include/asm/pgtable.h:pmd_mkhuge (v6.1).
pub fn pmd_mkhuge(pmd: Pmd) -> Pmd {
    pmd_set_flags(pmd, _PAGE_PSE)
}

/// Models arch/x86/include/asm/pgtable.h:pmd_mkdevmap (v6.1).
pub fn pmd_mkdevmap(pmd: Pmd) -> Pmd {
    pmd_set_flags(pmd, _PAGE_DEVMAP)
}

/// Models arch/x86/include/asm/pgtable.h:pmd_mkyoung (v6.1).
pub fn pmd_mkyoung(pmd: Pmd) -> Pmd {
    pmd_set_flags(pmd, _PAGE_ACCESSED)
}

/// Models arch/x86/include/asm/pgtable.h:pmd_mkold (v6.1).
pub fn pmd_mkold(pmd: Pmd) -> Pmd {
    pmd_clear_flags(pmd, _PAGE_ACCESSED)
}

/// Models arch/x86/include/asm/pgtable.h:pmd_mkdirty (v6.1).
pub fn pmd_mkdirty(pmd: Pmd) -> Pmd {
    pmd_set_flags(pmd, _PAGE_DIRTY | _PAGE_SOFT_DIRTY)
}

/// Models arch/x86/include/asm/pgtable.h:pmd_mkclean (v6.1).
pub fn pmd_mkclean(pmd: Pmd) -> Pmd {
    pmd_clear_flags(pmd, _PAGE_DIRTY)
}

/// Models arch/x86/include/asm/pgtable.h:pmd_mksoft_dirty (v6.1).
pub fn pmd_mksoft_dirty(pmd: Pmd) -> Pmd {
    pmd_set_flags(pmd, _PAGE_SOFT_DIRTY)
}

/// Models arch/x86/include/asm/pgtable.h:pmd_mkwrite (v6.1).
///
/// v6.1 (and v5.5..v6.5): just sets RW; v6.6 renamed it `pmd_mkwrite_novma`.
pub fn pmd_mkwrite(pmd: Pmd) -> Pmd {
    pmd_set_flags(pmd, _PAGE_RW)
}

/// Models arch/x86/include/asm/pgtable.h:pmd_wrprotect (v6.1).
pub fn pmd_wrprotect(pmd: Pmd) -> Pmd {
    pmd_clear_flags(pmd, _PAGE_RW)
}

/// Models arch/x86/include/asm/pgtable.h:pmd_mkinvalid (v6.1).
///
/// Named `pmd_mknotpresent` before v5.8 (same body). Keeps PSE, so the
/// result is still `pmd_present()`/`pmd_trans_huge()`; its pfn is stored
/// inverted.
pub fn pmd_mkinvalid(pmd: Pmd) -> Pmd {
    pfn_pmd(
        pmd_pfn(pmd),
        PgProt(pmd_flags(pmd) & !(_PAGE_PRESENT | _PAGE_PROTNONE)),
    )
}

/// Models arch/x86/include/asm/pgtable.h:pmd_modify (v6.1).
pub fn pmd_modify(pmd: Pmd, newprot: PgProt) -> Pmd {
    let oldval = pmd_val(pmd);
    let mut val = oldval & _HPAGE_CHG_MASK;
    val |= pgprot_val(newprot) & !_HPAGE_CHG_MASK;
    Pmd(flip_protnone_guard(oldval, val, PHYSICAL_PMD_PAGE_MASK))
}

/// Models include/linux/pgtable.h:pmd_same (v6.1).
pub fn pmd_same(a: Pmd, b: Pmd) -> bool {
    a == b
}

/// Models include/linux/huge_mm.h:is_swap_pmd (v6.1).
pub fn is_swap_pmd(pmd: Pmd) -> bool {
    !pmd_none(pmd) && !pmd_present(pmd)
}

/// Models arch/x86/include/asm/pgalloc.h:pmd_populate (the value stored) (v6.1).
pub fn pmd_populate_val(pte_table_pfn: u64) -> Pmd {
    Pmd((pte_table_pfn << PAGE_SHIFT) | _PAGE_TABLE)
}

/// Models mm/huge_memory.c:mk_huge_pmd (as `pmd_mkhuge(pfn_pmd(pfn, prot))`) (v6.1).
pub fn mk_huge_pmd(pfn: u64, prot: PgProt) -> Pmd {
    pmd_mkhuge(pfn_pmd(pfn, prot))
}

// ---------------------------------------------------------------------------
// Index helpers and range walking (include/linux/pgtable.h)
// ---------------------------------------------------------------------------

/// Models include/linux/pgtable.h:pgd_index (v6.1).
pub fn pgd_index(addr: u64) -> u64 {
    (addr >> PGDIR_SHIFT) & (PTRS_PER_PGD - 1)
}

/// Models include/linux/pgtable.h:pud_index (v6.1).
pub fn pud_index(addr: u64) -> u64 {
    (addr >> PUD_SHIFT) & (PTRS_PER_PUD - 1)
}

/// Models include/linux/pgtable.h:pmd_index (v6.1).
pub fn pmd_index(addr: u64) -> u64 {
    (addr >> PMD_SHIFT) & (PTRS_PER_PMD - 1)
}

/// Models include/linux/pgtable.h:pte_index (v6.1).
pub fn pte_index(addr: u64) -> u64 {
    (addr >> PAGE_SHIFT) & (PTRS_PER_PTE - 1)
}

/// Shared body of the `p?d_addr_end()` macros: next `size` boundary or `end`.
///
/// Compares `boundary - 1 < end - 1` in wrapping arithmetic, so `end == 0`
/// means "top of the address space" and a boundary that wraps to 0 yields
/// `end`.
fn addr_end(addr: u64, end: u64, size: u64) -> u64 {
    let boundary = addr.wrapping_add(size) & !(size - 1);
    if boundary.wrapping_sub(1) < end.wrapping_sub(1) {
        boundary
    } else {
        end
    }
}

/// Models include/linux/pgtable.h:pgd_addr_end (v6.1).
pub fn pgd_addr_end(addr: u64, end: u64) -> u64 {
    addr_end(addr, end, PGDIR_SIZE)
}

/// Models include/linux/pgtable.h:pud_addr_end (v6.1).
pub fn pud_addr_end(addr: u64, end: u64) -> u64 {
    addr_end(addr, end, PUD_SIZE)
}

/// Models include/linux/pgtable.h:pmd_addr_end (v6.1).
pub fn pmd_addr_end(addr: u64, end: u64) -> u64 {
    addr_end(addr, end, PMD_SIZE)
}

// ---------------------------------------------------------------------------
// Decoding for reports (model helpers, no kernel counterpart)
// ---------------------------------------------------------------------------

/// Symbolic names of the flag bits of an entry value (model helper).
///
/// `huge` selects the PSE-entry meaning of bit 7 (PSE, else PAT) and shows
/// bit 12 as PAT_LARGE; bit 8 is shown as PROTNONE when P is clear.
pub fn flags_to_string(val: u64, huge: bool) -> String {
    let present = val & _PAGE_PRESENT != 0;
    let mut names: Vec<&str> = Vec::new();
    let table: [(u64, &str); 15] = [
        (_PAGE_PRESENT, "P"),
        (_PAGE_RW, "RW"),
        (_PAGE_USER, "US"),
        (_PAGE_PWT, "PWT"),
        (_PAGE_PCD, "PCD"),
        (_PAGE_ACCESSED, "A"),
        (_PAGE_DIRTY, "D"),
        (_PAGE_PSE, if huge { "PSE" } else { "PAT" }),
        (_PAGE_GLOBAL, if present { "G" } else { "PROTNONE" }),
        (_PAGE_SPECIAL, "SPECIAL"),
        (_PAGE_UFFD_WP, "UFFD_WP"),
        (_PAGE_SOFT_DIRTY, "SOFT_DIRTY"),
        (_PAGE_DEVMAP, "DEVMAP"),
        (_PAGE_PKEY_MASK, "PKEY"),
        (_PAGE_NX, "NX"),
    ];
    for (bit, name) in table {
        if val & bit != 0 {
            names.push(name);
        }
    }
    if huge && val & _PAGE_PAT_LARGE != 0 {
        names.push("PAT_LARGE");
    }
    if names.is_empty() {
        "0".to_string()
    } else {
        names.join("|")
    }
}

/// What a PMD slot holds, decoded with the kernel's own predicates (model helper).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum PmdKind {
    /// `pmd_none()`.
    None,
    /// Present page-table pointer (`!pmd_bad()`).
    Table {
        /// pfn of the PTE table page.
        pfn: u64,
    },
    /// Present transparent huge pmd (P|PSE, no DEVMAP).
    Huge {
        /// pfn of the THP head.
        pfn: u64,
        /// `pmd_flags()`.
        flags: u64,
    },
    /// NUMA-hinting huge pmd (PROTNONE|PSE, P clear, pfn inverted).
    HugeProtNone {
        /// pfn of the THP head.
        pfn: u64,
    },
    /// Transient `pmdp_invalidate()` state (PSE only, pfn inverted).
    HugeInvalid {
        /// pfn of the THP head.
        pfn: u64,
    },
    /// `pmd_devmap()` leaf (DAX/ZONE_DEVICE), present or invalidated.
    Devmap {
        /// `pmd_pfn()`.
        pfn: u64,
        /// P bit set.
        present: bool,
    },
    /// PMD migration entry.
    Migration {
        /// pfn stored in the entry.
        pfn: u64,
        /// read / read-exclusive / write.
        kind: MigrationKind,
        /// `_PAGE_SWP_SOFT_DIRTY`.
        soft_dirty: bool,
        /// `_PAGE_SWP_UFFD_WP`.
        uffd_wp: bool,
    },
    /// Other non-present entry (a real swap entry or a non-migration special type).
    Swap {
        /// `swp_type()`.
        swp_type: u32,
        /// `swp_offset()`.
        offset: u64,
        /// `non_swap_entry()`.
        special: bool,
    },
    /// Present, not huge, and `pmd_bad()`.
    Bad {
        /// Raw value.
        val: u64,
    },
}

/// Classifies a PMD value using `t` for the swap-type numbering (model helper).
pub fn classify_pmd(pmd: Pmd, t: &SwapTypes) -> PmdKind {
    let flags = pmd_flags(pmd);
    if pmd_none(pmd) {
        PmdKind::None
    } else if is_swap_pmd(pmd) {
        let e = pmd_to_swp_entry(pmd);
        match migration_kind(t, e) {
            Some(kind) => PmdKind::Migration {
                pfn: pfn_swap_entry_to_pfn(e),
                kind,
                soft_dirty: pmd_swp_soft_dirty(pmd),
                uffd_wp: pmd_swp_uffd_wp(pmd),
            },
            None => PmdKind::Swap {
                swp_type: swp_type(e),
                offset: swp_offset(e),
                special: non_swap_entry(t, e),
            },
        }
    } else if pmd_devmap(pmd) && pmd_large(pmd) {
        PmdKind::Devmap {
            pfn: pmd_pfn(pmd),
            present: flags & _PAGE_PRESENT != 0,
        }
    } else if pmd_trans_huge(pmd) {
        let pfn = pmd_pfn(pmd);
        if flags & _PAGE_PRESENT != 0 {
            PmdKind::Huge { pfn, flags }
        } else if pmd_protnone(pmd) {
            PmdKind::HugeProtNone { pfn }
        } else {
            PmdKind::HugeInvalid { pfn }
        }
    } else if !pmd_bad(pmd) {
        PmdKind::Table { pfn: pmd_pfn(pmd) }
    } else {
        PmdKind::Bad { val: pmd_val(pmd) }
    }
}

impl fmt::Display for PmdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PmdKind::None => write!(f, "none"),
            PmdKind::Table { pfn } => write!(f, "table pfn {pfn:#x}"),
            PmdKind::Huge { pfn, flags } => {
                write!(f, "huge pfn {pfn:#x} prot {}", flags_to_string(flags, true))
            }
            PmdKind::HugeProtNone { pfn } => write!(f, "huge protnone (NUMA hint) pfn {pfn:#x}"),
            PmdKind::HugeInvalid { pfn } => {
                write!(f, "huge invalid (pmdp_invalidate) pfn {pfn:#x}")
            }
            PmdKind::Devmap { pfn, present } => {
                write!(f, "devmap pfn {pfn:#x}")?;
                if !present {
                    write!(f, " (not present)")?;
                }
                Ok(())
            }
            PmdKind::Migration {
                pfn,
                kind,
                soft_dirty,
                uffd_wp,
            } => {
                write!(f, "migration entry ({kind}) pfn {pfn:#x}")?;
                if soft_dirty {
                    write!(f, " soft-dirty")?;
                }
                if uffd_wp {
                    write!(f, " uffd-wp")?;
                }
                Ok(())
            }
            PmdKind::Swap {
                swp_type,
                offset,
                special,
            } => {
                let what = if special {
                    "special swap entry"
                } else {
                    "swap entry"
                };
                write!(f, "{what} type {swp_type} offset {offset:#x}")
            }
            PmdKind::Bad { val } => write!(f, "bad {val:#018x}"),
        }
    }
}

/// Describes a PMD value for reports, with the v6.1 swap-type numbering (model helper).
pub fn describe_pmd(pmd: Pmd) -> String {
    describe_pmd_with(pmd, &SwapTypes::v6_1())
}

/// Describes a PMD value for reports, with an explicit swap-type numbering (model helper).
pub fn describe_pmd_with(pmd: Pmd, t: &SwapTypes) -> String {
    classify_pmd(pmd, t).to_string()
}

/// What a PTE slot holds (model helper).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum PteKind {
    /// `pte_none()`.
    None,
    /// Present (P set).
    Present {
        /// `pte_pfn()`.
        pfn: u64,
        /// `pte_flags()`.
        flags: u64,
    },
    /// `pte_protnone()` (PROT_NONE mapping or NUMA hint; pfn inverted).
    ProtNone {
        /// `pte_pfn()`.
        pfn: u64,
    },
    /// Migration entry.
    Migration {
        /// pfn stored in the entry.
        pfn: u64,
        /// read / read-exclusive / write.
        kind: MigrationKind,
        /// `_PAGE_SWP_SOFT_DIRTY`.
        soft_dirty: bool,
        /// `_PAGE_SWP_UFFD_WP`.
        uffd_wp: bool,
        /// `_PAGE_SWP_EXCLUSIVE`.
        exclusive: bool,
    },
    /// Other swap entry (real swap slot, or a non-migration special type).
    Swap {
        /// `swp_type()`.
        swp_type: u32,
        /// `swp_offset()`.
        offset: u64,
        /// `non_swap_entry()`.
        special: bool,
    },
}

/// Classifies a PTE value using `t` for the swap-type numbering (model helper).
pub fn classify_pte(pte: Pte, t: &SwapTypes) -> PteKind {
    if pte_none(pte) {
        PteKind::None
    } else if pte_flags(pte) & _PAGE_PRESENT != 0 {
        PteKind::Present {
            pfn: pte_pfn(pte),
            flags: pte_flags(pte),
        }
    } else if pte_protnone(pte) {
        PteKind::ProtNone { pfn: pte_pfn(pte) }
    } else {
        let e = pte_to_swp_entry(pte);
        match migration_kind(t, e) {
            Some(kind) => PteKind::Migration {
                pfn: pfn_swap_entry_to_pfn(e),
                kind,
                soft_dirty: pte_swp_soft_dirty(pte),
                uffd_wp: pte_swp_uffd_wp(pte),
                exclusive: pte_swp_exclusive(pte),
            },
            None => PteKind::Swap {
                swp_type: swp_type(e),
                offset: swp_offset(e),
                special: non_swap_entry(t, e),
            },
        }
    }
}

impl fmt::Display for PteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PteKind::None => write!(f, "none"),
            PteKind::Present { pfn, flags } => {
                write!(
                    f,
                    "present pfn {pfn:#x} prot {}",
                    flags_to_string(flags, false)
                )
            }
            PteKind::ProtNone { pfn } => write!(f, "protnone pfn {pfn:#x}"),
            PteKind::Migration {
                pfn,
                kind,
                soft_dirty,
                uffd_wp,
                exclusive,
            } => {
                write!(f, "migration entry ({kind}) pfn {pfn:#x}")?;
                if soft_dirty {
                    write!(f, " soft-dirty")?;
                }
                if uffd_wp {
                    write!(f, " uffd-wp")?;
                }
                if exclusive {
                    write!(f, " exclusive")?;
                }
                Ok(())
            }
            PteKind::Swap {
                swp_type,
                offset,
                special,
            } => {
                let what = if special {
                    "special swap entry"
                } else {
                    "swap entry"
                };
                write!(f, "{what} type {swp_type} offset {offset:#x}")
            }
        }
    }
}

/// Describes a PTE value for reports, with the v6.1 swap-type numbering (model helper).
pub fn describe_pte(pte: Pte) -> String {
    describe_pte_with(pte, &SwapTypes::v6_1())
}

/// Describes a PTE value for reports, with an explicit swap-type numbering (model helper).
pub fn describe_pte_with(pte: Pte, t: &SwapTypes) -> String {
    classify_pte(pte, t).to_string()
}
