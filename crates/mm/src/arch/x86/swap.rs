//! Swap / migration entries: the generic `swp_entry_t` format of
//! `include/linux/swapops.h` and the x86-64 PTE/PMD encoding of
//! `arch/x86/include/asm/pgtable_64.h`.
//!
//! x86-64 non-present entry layout (v6.1; the inverted-offset layout dates
//! from the 2018 L1TF mitigation and is unchanged through v6.5, only the
//! flag bits in 1..=3 were added over time):
//!
//! ```text
//!  bit   63..59   58 ........ 9   8   7   6   5   4   3   2   1   0
//!        TYPE     ~OFFSET         0   0   X   X   X   E   F  SD   0
//! ```
//!
//! TYPE = `SWP_TYPE_BITS` (5) bits; OFFSET is stored bit-inverted (L1TF: a
//! non-present entry then points above any real memory) starting at
//! `SWP_OFFSET_FIRST_BIT` = `_PAGE_BIT_PROTNONE + 1` = 9; SD =
//! `_PAGE_SWP_SOFT_DIRTY` (bit 1), F = `_PAGE_SWP_UFFD_WP` (bit 2), E =
//! `_PAGE_SWP_EXCLUSIVE` (bit 3, PTEs only; present in v6.1, not in v5.15).
//! Bits 7/8 must stay 0 or `pmd_present()` / `pte_present()` would report the
//! entry as present; A/D (5/6) are avoided because of the KNL erratum.
//!
//! Swap-type numbering depends on kernel version and configuration, so it
//! is passed around as a [`SwapTypes`] value.

use std::fmt;

use super::pgtable::{
    is_swap_pmd, make_pmd, make_pte, pmd_flags, pmd_val, pte_flags, pte_none, pte_present, pte_val,
    Pmd, Pte, _PAGE_BIT_PROTNONE, _PAGE_SWP_EXCLUSIVE, _PAGE_SWP_SOFT_DIRTY, _PAGE_SWP_UFFD_WP,
};

// ---------------------------------------------------------------------------
// Generic (arch-independent) swp_entry_t
// ---------------------------------------------------------------------------

/// `MAX_SWAPFILES_SHIFT` (include/linux/swap.h).
pub const MAX_SWAPFILES_SHIFT: u32 = 5;
/// `BITS_PER_XA_VALUE` on 64-bit (`BITS_PER_LONG - 1`).
pub const BITS_PER_XA_VALUE: u32 = 63;
/// `SWP_TYPE_SHIFT` = `BITS_PER_XA_VALUE - MAX_SWAPFILES_SHIFT` = 58.
pub const SWP_TYPE_SHIFT: u32 = BITS_PER_XA_VALUE - MAX_SWAPFILES_SHIFT;
/// `SWP_OFFSET_MASK` = `(1 << SWP_TYPE_SHIFT) - 1`.
pub const SWP_OFFSET_MASK: u64 = (1 << SWP_TYPE_SHIFT) - 1;

/// `MAX_PHYSMEM_BITS` of x86-64 with 4-level paging (46; 52 with LA57).
pub const MAX_PHYSMEM_BITS: u32 = 46;
/// `SWP_PFN_BITS` = `MAX_PHYSMEM_BITS - PAGE_SHIFT` = 34 (v6.1+).
pub const SWP_PFN_BITS: u32 = MAX_PHYSMEM_BITS - super::pgtable::PAGE_SHIFT;
/// `SWP_PFN_MASK` (v6.1+).
pub const SWP_PFN_MASK: u64 = (1 << SWP_PFN_BITS) - 1;
/// `SWP_MIG_YOUNG_BIT` = `SWP_PFN_BITS` (v6.1+).
pub const SWP_MIG_YOUNG_BIT: u32 = SWP_PFN_BITS;
/// `SWP_MIG_DIRTY_BIT` = `SWP_PFN_BITS + 1` (v6.1+).
pub const SWP_MIG_DIRTY_BIT: u32 = SWP_PFN_BITS + 1;
/// `SWP_MIG_YOUNG` (v6.1+).
pub const SWP_MIG_YOUNG: u64 = 1 << SWP_MIG_YOUNG_BIT;
/// `SWP_MIG_DIRTY` (v6.1+).
pub const SWP_MIG_DIRTY: u64 = 1 << SWP_MIG_DIRTY_BIT;

/// A `swp_entry_t`.
///
/// Holds the arch-independent format (type in bits 58..=62, offset below)
/// unless produced by the `__swp_*` arch helpers, exactly like the kernel,
/// which uses the same C type for both.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct SwpEntry {
    /// Raw value (`entry.val`).
    pub val: u64,
}

/// Models include/linux/swapops.h:swp_entry (v6.1).
pub fn swp_entry(swp_type: u32, offset: u64) -> SwpEntry {
    SwpEntry {
        val: (u64::from(swp_type) << SWP_TYPE_SHIFT) | (offset & SWP_OFFSET_MASK),
    }
}

/// Models include/linux/swapops.h:swp_type (v6.1).
pub fn swp_type(entry: SwpEntry) -> u32 {
    (entry.val >> SWP_TYPE_SHIFT) as u32
}

/// Models include/linux/swapops.h:swp_offset (v6.1).
pub fn swp_offset(entry: SwpEntry) -> u64 {
    entry.val & SWP_OFFSET_MASK
}

/// Models include/linux/swapops.h:swp_offset_pfn (v6.1).
///
/// New in v6.1 (migration entries may carry A/D bits above the pfn); before
/// v6.1 the pfn of a pfn swap entry is the whole `swp_offset()`.
pub fn swp_offset_pfn(entry: SwpEntry) -> u64 {
    swp_offset(entry) & SWP_PFN_MASK
}

/// Models include/linux/swapops.h:pfn_swap_entry_to_page (as a pfn) (v6.1).
///
/// Equals `swp_offset()` for every entry a pre-v6.1 kernel can build
/// (v5.5 spells it `migration_entry_to_page`).
pub fn pfn_swap_entry_to_pfn(entry: SwpEntry) -> u64 {
    swp_offset_pfn(entry)
}

// ---------------------------------------------------------------------------
// x86-64 arch encoding (pgtable_64.h)
// ---------------------------------------------------------------------------

/// `SWP_TYPE_BITS` (x86-64).
pub const SWP_TYPE_BITS: u32 = 5;
/// `SWP_OFFSET_FIRST_BIT` = `_PAGE_BIT_PROTNONE + 1` = 9.
pub const SWP_OFFSET_FIRST_BIT: u32 = _PAGE_BIT_PROTNONE + 1;
/// `SWP_OFFSET_SHIFT` = `SWP_OFFSET_FIRST_BIT + SWP_TYPE_BITS` = 14.
pub const SWP_OFFSET_SHIFT: u32 = SWP_OFFSET_FIRST_BIT + SWP_TYPE_BITS;
/// Number of offset bits the x86-64 encoding can hold (9..=58: 50 bits).
pub const SWP_ARCH_OFFSET_BITS: u32 = 64 - SWP_OFFSET_SHIFT;

/// Models arch/x86/include/asm/pgtable_64.h:__swp_type (v6.1).
pub fn __swp_type(arch: SwpEntry) -> u32 {
    (arch.val >> (64 - SWP_TYPE_BITS)) as u32
}

/// Models arch/x86/include/asm/pgtable_64.h:__swp_offset (v6.1).
pub fn __swp_offset(arch: SwpEntry) -> u64 {
    (!arch.val << SWP_TYPE_BITS) >> SWP_OFFSET_SHIFT
}

/// Models arch/x86/include/asm/pgtable_64.h:__swp_entry (v6.1).
pub fn __swp_entry(swp_type: u32, offset: u64) -> SwpEntry {
    SwpEntry {
        val: ((!offset << SWP_OFFSET_SHIFT) >> SWP_TYPE_BITS)
            | (u64::from(swp_type) << (64 - SWP_TYPE_BITS)),
    }
}

/// Models arch/x86/include/asm/pgtable_64.h:__pte_to_swp_entry (v6.1).
pub fn __pte_to_swp_entry(pte: Pte) -> SwpEntry {
    SwpEntry { val: pte_val(pte) }
}

/// Models arch/x86/include/asm/pgtable_64.h:__pmd_to_swp_entry (v6.1).
pub fn __pmd_to_swp_entry(pmd: Pmd) -> SwpEntry {
    SwpEntry { val: pmd_val(pmd) }
}

/// Models arch/x86/include/asm/pgtable_64.h:__swp_entry_to_pte (v6.1).
pub fn __swp_entry_to_pte(arch: SwpEntry) -> Pte {
    make_pte(arch.val)
}

/// Models arch/x86/include/asm/pgtable_64.h:__swp_entry_to_pmd (v6.1).
pub fn __swp_entry_to_pmd(arch: SwpEntry) -> Pmd {
    make_pmd(arch.val)
}

// ---------------------------------------------------------------------------
// Swap-PTE / swap-PMD flag bits (arch/x86/include/asm/pgtable.h)
// ---------------------------------------------------------------------------

/// Models arch/x86/include/asm/pgtable.h:pte_swp_soft_dirty (v6.1).
pub fn pte_swp_soft_dirty(pte: Pte) -> bool {
    pte_flags(pte) & _PAGE_SWP_SOFT_DIRTY != 0
}

/// Models arch/x86/include/asm/pgtable.h:pte_swp_mksoft_dirty (v6.1).
pub fn pte_swp_mksoft_dirty(pte: Pte) -> Pte {
    make_pte(pte_val(pte) | _PAGE_SWP_SOFT_DIRTY)
}

/// Models arch/x86/include/asm/pgtable.h:pte_swp_clear_soft_dirty (v6.1).
pub fn pte_swp_clear_soft_dirty(pte: Pte) -> Pte {
    make_pte(pte_val(pte) & !_PAGE_SWP_SOFT_DIRTY)
}

/// Models arch/x86/include/asm/pgtable.h:pte_swp_uffd_wp (v6.1).
pub fn pte_swp_uffd_wp(pte: Pte) -> bool {
    pte_flags(pte) & _PAGE_SWP_UFFD_WP != 0
}

/// Models arch/x86/include/asm/pgtable.h:pte_swp_mkuffd_wp (v6.1).
pub fn pte_swp_mkuffd_wp(pte: Pte) -> Pte {
    make_pte(pte_val(pte) | _PAGE_SWP_UFFD_WP)
}

/// Models arch/x86/include/asm/pgtable.h:pte_swp_clear_uffd_wp (v6.1).
pub fn pte_swp_clear_uffd_wp(pte: Pte) -> Pte {
    make_pte(pte_val(pte) & !_PAGE_SWP_UFFD_WP)
}

/// Models arch/x86/include/asm/pgtable.h:pte_swp_exclusive (v6.1).
pub fn pte_swp_exclusive(pte: Pte) -> bool {
    pte_flags(pte) & _PAGE_SWP_EXCLUSIVE != 0
}

/// Models arch/x86/include/asm/pgtable.h:pte_swp_mkexclusive (v6.1).
pub fn pte_swp_mkexclusive(pte: Pte) -> Pte {
    make_pte(pte_val(pte) | _PAGE_SWP_EXCLUSIVE)
}

/// Models arch/x86/include/asm/pgtable.h:pte_swp_clear_exclusive (v6.1).
pub fn pte_swp_clear_exclusive(pte: Pte) -> Pte {
    make_pte(pte_val(pte) & !_PAGE_SWP_EXCLUSIVE)
}

/// Models arch/x86/include/asm/pgtable.h:pmd_swp_soft_dirty (v6.1).
pub fn pmd_swp_soft_dirty(pmd: Pmd) -> bool {
    pmd_flags(pmd) & _PAGE_SWP_SOFT_DIRTY != 0
}

/// Models arch/x86/include/asm/pgtable.h:pmd_swp_mksoft_dirty (v6.1).
pub fn pmd_swp_mksoft_dirty(pmd: Pmd) -> Pmd {
    make_pmd(pmd_val(pmd) | _PAGE_SWP_SOFT_DIRTY)
}

/// Models arch/x86/include/asm/pgtable.h:pmd_swp_clear_soft_dirty (v6.1).
pub fn pmd_swp_clear_soft_dirty(pmd: Pmd) -> Pmd {
    make_pmd(pmd_val(pmd) & !_PAGE_SWP_SOFT_DIRTY)
}

/// Models arch/x86/include/asm/pgtable.h:pmd_swp_uffd_wp (v6.1).
pub fn pmd_swp_uffd_wp(pmd: Pmd) -> bool {
    pmd_flags(pmd) & _PAGE_SWP_UFFD_WP != 0
}

/// Models arch/x86/include/asm/pgtable.h:pmd_swp_mkuffd_wp (v6.1).
pub fn pmd_swp_mkuffd_wp(pmd: Pmd) -> Pmd {
    make_pmd(pmd_val(pmd) | _PAGE_SWP_UFFD_WP)
}

/// Models arch/x86/include/asm/pgtable.h:pmd_swp_clear_uffd_wp (v6.1).
pub fn pmd_swp_clear_uffd_wp(pmd: Pmd) -> Pmd {
    make_pmd(pmd_val(pmd) & !_PAGE_SWP_UFFD_WP)
}

// ---------------------------------------------------------------------------
// Conversions (include/linux/swapops.h)
// ---------------------------------------------------------------------------

/// Models include/linux/swapops.h:is_swap_pte (v6.1).
pub fn is_swap_pte(pte: Pte) -> bool {
    !pte_none(pte) && !pte_present(pte)
}

/// Models include/linux/swapops.h:pte_swp_clear_flags (v6.1).
pub fn pte_swp_clear_flags(pte: Pte) -> Pte {
    pte_swp_clear_uffd_wp(pte_swp_clear_soft_dirty(pte_swp_clear_exclusive(pte)))
}

/// Models include/linux/swapops.h:pte_to_swp_entry (v6.1).
pub fn pte_to_swp_entry(pte: Pte) -> SwpEntry {
    let arch = __pte_to_swp_entry(pte_swp_clear_flags(pte));
    swp_entry(__swp_type(arch), __swp_offset(arch))
}

/// Models include/linux/swapops.h:swp_entry_to_pte (v6.1).
pub fn swp_entry_to_pte(entry: SwpEntry) -> Pte {
    __swp_entry_to_pte(__swp_entry(swp_type(entry), swp_offset(entry)))
}

/// Models include/linux/swapops.h:pmd_to_swp_entry (v6.1).
pub fn pmd_to_swp_entry(pmd: Pmd) -> SwpEntry {
    let arch = __pmd_to_swp_entry(pmd_swp_clear_uffd_wp(pmd_swp_clear_soft_dirty(pmd)));
    swp_entry(__swp_type(arch), __swp_offset(arch))
}

/// Models include/linux/swapops.h:swp_entry_to_pmd (v6.1).
pub fn swp_entry_to_pmd(entry: SwpEntry) -> Pmd {
    __swp_entry_to_pmd(__swp_entry(swp_type(entry), swp_offset(entry)))
}

// ---------------------------------------------------------------------------
// Swap-type numbering (include/linux/swap.h)
// ---------------------------------------------------------------------------

/// The special swap types a kernel build reserves at the top of the 5-bit type space.
///
/// In every version modelled the order above `MAX_SWAPFILES` is
/// `SWP_HWPOISON` (if `CONFIG_MEMORY_FAILURE`), then the migration types,
/// then the device types (if `CONFIG_DEVICE_PRIVATE`), then (v5.19+)
/// `SWP_PTE_MARKER` (if `CONFIG_PTE_MARKER`) and `SWP_SWAPIN_ERROR`
/// (v5.19..v6.1 only, unconditional), with `MAX_SWAPFILES` =
/// 32 - (sum of the reserved counts).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SwapTypes {
    /// `MAX_SWAPFILES`: types `0..max_swapfiles` are real swap devices.
    pub max_swapfiles: u32,
    /// `SWP_MIGRATION_READ`.
    pub migration_read: u32,
    /// `SWP_MIGRATION_READ_EXCLUSIVE` (v5.19+; `None` before).
    pub migration_read_exclusive: Option<u32>,
    /// `SWP_MIGRATION_WRITE`.
    pub migration_write: u32,
    /// `migration_entry_supports_ad()`: migration entries carry the young
    /// and dirty bits (2e3468778dbe, v6.1). A boot-time value; the model
    /// takes the usual x86-64 answer, true (the maximum swap file size
    /// covers `SWP_MIG_TOTAL_BITS` unless an L1TF-limited CPU has fewer
    /// than 46 cache address bits).
    pub migration_ad: bool,
}

impl SwapTypes {
    /// Numbering of v5.5 (valid for v4.14..v5.13) for the given config.
    ///
    /// `SWP_DEVICE_NUM` = 2 (device_private), `SWP_MIGRATION_NUM` = 2,
    /// `SWP_HWPOISON_NUM` = 1 (memory_failure); MIGRATION_READ =
    /// `MAX_SWAPFILES + SWP_HWPOISON_NUM`, MIGRATION_WRITE = READ + 1.
    pub fn v5_5_config(device_private: bool, memory_failure: bool) -> Self {
        let device = if device_private { 2 } else { 0 };
        let hwpoison = u32::from(memory_failure);
        let max_swapfiles = 32 - device - 2 - hwpoison;
        let read = max_swapfiles + hwpoison;
        SwapTypes {
            max_swapfiles,
            migration_read: read,
            migration_read_exclusive: None,
            migration_write: read + 1,
            migration_ad: false,
        }
    }

    /// v5.5, x86-64, `DEVICE_PRIVATE=y`, `MEMORY_FAILURE=y`: READ 28, WRITE 29.
    ///
    /// MAX_SWAPFILES = 32 - 2 (device) - 2 (migration) - 1 (hwpoison) = 27;
    /// HWPOISON = 27; MIGRATION_READ = 27 + 1 = 28; MIGRATION_WRITE = 29;
    /// DEVICE_WRITE/READ = 30/31.
    pub fn v5_5() -> Self {
        Self::v5_5_config(true, true)
    }

    /// Numbering of v5.15 (valid for v5.14..v5.18) for the given config.
    ///
    /// As v5.5 but `SWP_DEVICE_NUM` = 4 (device-exclusive entries added in
    /// v5.14).
    pub fn v5_15_config(device_private: bool, memory_failure: bool) -> Self {
        let device = if device_private { 4 } else { 0 };
        let hwpoison = u32::from(memory_failure);
        let max_swapfiles = 32 - device - 2 - hwpoison;
        let read = max_swapfiles + hwpoison;
        SwapTypes {
            max_swapfiles,
            migration_read: read,
            migration_read_exclusive: None,
            migration_write: read + 1,
            migration_ad: false,
        }
    }

    /// v5.15, x86-64, `DEVICE_PRIVATE=y`, `MEMORY_FAILURE=y`: READ 26, WRITE 27.
    ///
    /// MAX_SWAPFILES = 32 - 4 (device) - 2 (migration) - 1 (hwpoison) = 25;
    /// HWPOISON = 25; MIGRATION_READ = 26; MIGRATION_WRITE = 27; device
    /// types 28..=31. Type 27 of the seed-001 report is SWP_MIGRATION_WRITE
    /// only in this numbering.
    pub fn v5_15() -> Self {
        Self::v5_15_config(true, true)
    }

    /// Numbering of v6.1 (valid for v5.19..v6.1) for the given config.
    ///
    /// `SWP_DEVICE_NUM` = 4, `SWP_MIGRATION_NUM` = 3 (READ, READ_EXCLUSIVE,
    /// WRITE), `SWP_HWPOISON_NUM` = 1, `SWP_PTE_MARKER_NUM` = 1 (pte_marker),
    /// `SWP_SWAPIN_ERROR_NUM` = 1 (always; removed again in v6.2).
    pub fn v6_1_config(device_private: bool, memory_failure: bool, pte_marker: bool) -> Self {
        let device = if device_private { 4 } else { 0 };
        let hwpoison = u32::from(memory_failure);
        let marker = u32::from(pte_marker);
        let swapin_error = 1;
        let max_swapfiles = 32 - device - 3 - hwpoison - marker - swapin_error;
        let read = max_swapfiles + hwpoison;
        SwapTypes {
            max_swapfiles,
            migration_read: read,
            migration_read_exclusive: Some(read + 1),
            migration_write: read + 2,
            migration_ad: true,
        }
    }

    /// v6.1, x86-64, `DEVICE_PRIVATE=y`, `MEMORY_FAILURE=y`, `PTE_MARKER=y`: 23/24/25.
    ///
    /// MAX_SWAPFILES = 32 - 4 (device) - 3 (migration) - 1 (hwpoison) -
    /// 1 (pte marker) - 1 (swapin error) = 22; HWPOISON = 22;
    /// MIGRATION_READ = 23, READ_EXCLUSIVE = 24, WRITE = 25; DEVICE_WRITE,
    /// DEVICE_READ, DEVICE_EXCLUSIVE_WRITE/READ = 26..=29; PTE_MARKER = 30;
    /// SWAPIN_ERROR = 31.
    pub fn v6_1() -> Self {
        Self::v6_1_config(true, true, true)
    }
}

/// Which kind of migration entry a swap entry is (model helper).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum MigrationKind {
    /// `SWP_MIGRATION_READ`.
    Read,
    /// `SWP_MIGRATION_READ_EXCLUSIVE` (v5.19+).
    ReadExclusive,
    /// `SWP_MIGRATION_WRITE`.
    Write,
}

impl fmt::Display for MigrationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MigrationKind::Read => "read",
            MigrationKind::ReadExclusive => "read-exclusive",
            MigrationKind::Write => "write",
        })
    }
}

/// Classifies a generic swap entry as a migration entry, if it is one (model helper).
pub fn migration_kind(t: &SwapTypes, entry: SwpEntry) -> Option<MigrationKind> {
    let ty = swp_type(entry);
    if ty == t.migration_read {
        Some(MigrationKind::Read)
    } else if Some(ty) == t.migration_read_exclusive {
        Some(MigrationKind::ReadExclusive)
    } else if ty == t.migration_write {
        Some(MigrationKind::Write)
    } else {
        None
    }
}

/// Models include/linux/swapops.h:make_readable_migration_entry (v6.1).
///
/// v5.5 calls it `make_migration_entry(page, 0)`.
pub fn make_readable_migration_entry(t: &SwapTypes, pfn: u64) -> SwpEntry {
    swp_entry(t.migration_read, pfn)
}

/// Models include/linux/swapops.h:make_readable_exclusive_migration_entry (v6.1).
///
/// # Panics
///
/// If `t` has no `SWP_MIGRATION_READ_EXCLUSIVE` (numbering before v5.19):
/// such kernels cannot express the entry.
pub fn make_readable_exclusive_migration_entry(t: &SwapTypes, pfn: u64) -> SwpEntry {
    let ty = t
        .migration_read_exclusive
        .expect("SWP_MIGRATION_READ_EXCLUSIVE does not exist in this swap-type numbering");
    swp_entry(ty, pfn)
}

/// Models include/linux/swapops.h:make_writable_migration_entry (v6.1).
///
/// v5.5 calls it `make_migration_entry(page, 1)`.
pub fn make_writable_migration_entry(t: &SwapTypes, pfn: u64) -> SwpEntry {
    swp_entry(t.migration_write, pfn)
}

/// Models include/linux/swapops.h:is_migration_entry (v6.1).
pub fn is_migration_entry(t: &SwapTypes, entry: SwpEntry) -> bool {
    migration_kind(t, entry).is_some()
}

/// Models include/linux/swapops.h:is_writable_migration_entry (v6.1).
pub fn is_writable_migration_entry(t: &SwapTypes, entry: SwpEntry) -> bool {
    swp_type(entry) == t.migration_write
}

/// Models include/linux/swapops.h:is_readable_migration_entry (v6.1).
pub fn is_readable_migration_entry(t: &SwapTypes, entry: SwpEntry) -> bool {
    swp_type(entry) == t.migration_read
}

/// Models include/linux/swapops.h:is_readable_exclusive_migration_entry (v6.1).
pub fn is_readable_exclusive_migration_entry(t: &SwapTypes, entry: SwpEntry) -> bool {
    Some(swp_type(entry)) == t.migration_read_exclusive
}

/// Models include/linux/swapops.h:is_pmd_migration_entry (v6.1).
pub fn is_pmd_migration_entry(t: &SwapTypes, pmd: Pmd) -> bool {
    is_swap_pmd(pmd) && is_migration_entry(t, pmd_to_swp_entry(pmd))
}

/// Models include/linux/swapops.h:non_swap_entry (v6.1).
pub fn non_swap_entry(t: &SwapTypes, entry: SwpEntry) -> bool {
    swp_type(entry) >= t.max_swapfiles
}

/// The readable migration entry mprotect and the NUMA scan put in place of
/// a writable one (`change_pte_range`/`change_huge_pmd`, v6.1): readable
/// exclusive for an anonymous page where the era has that type. Built from
/// the whole `swp_offset()`, so young and dirty bits stay.
pub fn readable_from_writable_migration_entry(
    t: &SwapTypes,
    entry: SwpEntry,
    anon: bool,
) -> SwpEntry {
    let offset = swp_offset(entry);
    match t.migration_read_exclusive {
        Some(read_exclusive) if anon => swp_entry(read_exclusive, offset),
        _ => swp_entry(t.migration_read, offset),
    }
}

/// Models include/linux/swapops.h:make_migration_entry_young (v6.1).
///
/// `ad_supported` is `migration_entry_supports_ad()`, a boot-time value
/// (`swap_migration_ad_supported`, depends on the CPU's maximum swap-file
/// size); v6.0 and older never set A/D bits in migration entries.
pub fn make_migration_entry_young(entry: SwpEntry, ad_supported: bool) -> SwpEntry {
    if ad_supported {
        swp_entry(swp_type(entry), swp_offset(entry) | SWP_MIG_YOUNG)
    } else {
        entry
    }
}

/// Models include/linux/swapops.h:is_migration_entry_young (v6.1).
pub fn is_migration_entry_young(entry: SwpEntry, ad_supported: bool) -> bool {
    ad_supported && swp_offset(entry) & SWP_MIG_YOUNG != 0
}

/// Models include/linux/swapops.h:make_migration_entry_dirty (v6.1).
pub fn make_migration_entry_dirty(entry: SwpEntry, ad_supported: bool) -> SwpEntry {
    if ad_supported {
        swp_entry(swp_type(entry), swp_offset(entry) | SWP_MIG_DIRTY)
    } else {
        entry
    }
}

/// Models include/linux/swapops.h:is_migration_entry_dirty (v6.1).
pub fn is_migration_entry_dirty(entry: SwpEntry, ad_supported: bool) -> bool {
    ad_supported && swp_offset(entry) & SWP_MIG_DIRTY != 0
}

/// The x86-64 swap pte of v2.6.34 (arch/x86/include/asm/pgtable_64.h):
/// `_PAGE_BIT_FILE` (6) below `_PAGE_BIT_PROTNONE` (8) gives
/// `SWP_TYPE_BITS = 5` in bits 1..=5 and the offset from bit 9; no L1TF
/// inversion (6b28baca9b1f came in v4.19). `__pte_to_swp_entry()` and
/// `__swp_entry_to_pte()` are the identity; bits 0 (present), 6 (file) and
/// 8 (protnone) stay clear.
pub mod v2_6_34 {
    use crate::arch::x86::pgtable::Pte;

    /// `SWP_TYPE_BITS` = `_PAGE_BIT_FILE - _PAGE_BIT_PRESENT - 1`.
    pub const SWP_TYPE_BITS: u32 = 5;
    /// `SWP_OFFSET_SHIFT` = `_PAGE_BIT_PROTNONE + 1`.
    pub const SWP_OFFSET_SHIFT: u32 = 9;
    /// `_PAGE_FILE` (`_PAGE_DIRTY` when not present).
    pub const PAGE_FILE: u64 = 1 << 6;
    /// `_PAGE_PROTNONE` (`_PAGE_GLOBAL` when not present).
    pub const PAGE_PROTNONE: u64 = 1 << 8;

    /// `swp_entry_to_pte(swp_entry(type, offset))`.
    pub fn swp_entry_to_pte(swp_type: u32, offset: u64) -> Pte {
        Pte((u64::from(swp_type) << 1) | (offset << SWP_OFFSET_SHIFT))
    }

    /// `__swp_type(pte_to_swp_entry(pte))`.
    pub fn swp_type(pte: Pte) -> u32 {
        ((pte.0 >> 1) & ((1 << SWP_TYPE_BITS) - 1)) as u32
    }

    /// `__swp_offset(pte_to_swp_entry(pte))`.
    pub fn swp_offset(pte: Pte) -> u64 {
        pte.0 >> SWP_OFFSET_SHIFT
    }

    /// `pgoff_to_pte(off)` (v2.6.22..v2.6.34 x86-64): the file page index
    /// a nonlinear VMA maps there, above `_PAGE_FILE`.
    pub fn pgoff_to_pte(pgoff: u64) -> Pte {
        Pte((pgoff << 12) | PAGE_FILE)
    }

    /// `pte_file()`: a not-present pte with `_PAGE_FILE` set.
    pub fn pte_file(pte: Pte) -> bool {
        pte.0 & (1 | PAGE_PROTNONE) == 0 && pte.0 & PAGE_FILE != 0
    }

    /// `pte_to_pgoff()`.
    pub fn pte_to_pgoff(pte: Pte) -> u64 {
        (pte.0 & 0x3fff_ffff_f000) >> 12
    }

    /// A swap pte: not none, not present (`_PAGE_PRESENT|_PAGE_PROTNONE`
    /// clear) and not a nonlinear file pte (`pte_file()`).
    pub fn is_swap_pte(pte: Pte) -> bool {
        pte.0 != 0 && pte.0 & (1 | PAGE_PROTNONE | PAGE_FILE) == 0
    }
}
