//! Kernel virtual addresses of model objects, and how the kernel prints
//! them (`%p`, `%px`).
//!
//! The model has no kernel address space, yet the kernel's messages print
//! pointers: the `pmd_t *` of `bad pmd`, the `struct page *` of a page
//! dump, the `anon_vma` and `mm` of `Bad page map` and `Bad rss-counter
//! state`. Every such pointer in a report comes from this module, derived
//! from the object it names by one layout. **The layout is a model
//! convention, not the real kernel's**: no KASLR, no real slab allocator,
//! no real structure sizes. It only keeps the values plausible for the era
//! (direct-map and vmemmap bases of x86-64 with 4-level paging) and makes
//! equal objects print equal pointers and different objects different
//! ones.
//!
//! | object | address |
//! |---|---|
//! | anything in a frame (a page-table slot) | [`direct_map`]: `PAGE_OFFSET + phys` |
//! | the `struct page` of a pfn | [`struct_page`]: `VMEMMAP_START + pfn * 64` |
//! | an object without a frame (slab) | [`slab_object`]: `PAGE_OFFSET + SLAB_PHYS + cache * CACHE_SPAN + id * size` |
//!
//! `PAGE_OFFSET` is the era's: `0xffff880000000000` before v4.20 (the
//! v3.12 profiles) and `0xffff888000000000` from v4.20 (d52888aa2753,
//! which moved the direct map for the LDT remap; the 5.x and 6.x
//! profiles). `VMEMMAP_START` is `0xffffea0000000000` in both, and a
//! `struct page` is 64 bytes. The slab region is the direct map of
//! physical 1 GiB: the model's page frames all lie at 4 GiB and above
//! ([`crate::page_alloc::node_start_pfn`]), so a slab address never
//! aliases a modelled frame. Each cache has 16 MiB; an object's offset in
//! it is its model id ([`crate::mm_types::Kernel::next_id`], unique
//! across kinds) times the cache's object size (a round number near the
//! kernel's, see [`Cache::size`]).
//!
//! `%p` prints an address raw in v3.12, and hashed from v4.15
//! (ad67b74d2469): [`pointer`]. The kernel hashes with a boot-time random
//! key; the model's hash is a fixed mix, so reports are reproducible.

use crate::mm_types::{AnonVma, MmStruct};
use crate::profile::LogStyle;

/// `PAGE_OFFSET`, the base of the direct map of physical memory.
pub fn page_offset(style: LogStyle) -> u64 {
    match style {
        LogStyle::V3_12 => 0xffff_8800_0000_0000,
        LogStyle::V6_1 => 0xffff_8880_0000_0000,
    }
}

/// `VMEMMAP_START`: `struct page` array (no KASLR, 4-level paging).
pub const VMEMMAP_START: u64 = 0xffff_ea00_0000_0000;

/// `sizeof(struct page)` on x86-64.
pub const STRUCT_PAGE_SIZE: u64 = 64;

/// Physical address of the model's slab region (1 GiB: below every
/// modelled frame).
pub const SLAB_PHYS: u64 = 0x4000_0000;

/// Bytes of the slab region each cache owns.
pub const CACHE_SPAN: u64 = 0x100_0000;

/// `__va(phys)`: the direct-map address of a physical address.
pub fn direct_map(style: LogStyle, phys: u64) -> u64 {
    page_offset(style) + phys
}

/// `pfn_to_page(pfn)`: the address of a frame's `struct page`.
pub fn struct_page(pfn: u64) -> u64 {
    VMEMMAP_START + pfn * STRUCT_PAGE_SIZE
}

/// A slab cache of objects that have no frame of their own.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Cache {
    /// `mm_struct`.
    MmStruct,
    /// `anon_vma`.
    AnonVma,
    /// `anon_vma_chain`.
    AnonVmaChain,
}

impl Cache {
    /// Position of the cache in the slab region.
    pub fn index(self) -> u64 {
        match self {
            Cache::MmStruct => 0,
            Cache::AnonVma => 1,
            Cache::AnonVmaChain => 2,
        }
    }

    /// Bytes per object: the kernel's size rounded up to a power of two
    /// (`struct mm_struct` is 0x380-0x480 bytes in the modelled versions,
    /// `struct anon_vma` 0x48-0x68, `struct anon_vma_chain` 0x30-0x40).
    pub fn size(self) -> u64 {
        match self {
            Cache::MmStruct => 0x400,
            Cache::AnonVma => 0x80,
            Cache::AnonVmaChain => 0x40,
        }
    }
}

/// The address of object `id` of `cache`.
pub fn slab_object(style: LogStyle, cache: Cache, id: u64) -> u64 {
    debug_assert!(
        (id + 1) * cache.size() <= CACHE_SPAN,
        "object id {id} beyond the model's {cache:?} cache"
    );
    direct_map(
        style,
        SLAB_PHYS + cache.index() * CACHE_SPAN + id * cache.size(),
    )
}

/// The address of an `mm_struct`.
pub fn mm_struct(style: LogStyle, mm: &MmStruct) -> u64 {
    slab_object(style, Cache::MmStruct, mm.id)
}

/// The address of an `anon_vma`.
pub fn anon_vma(style: LogStyle, av: &AnonVma) -> u64 {
    slab_object(style, Cache::AnonVma, av.id)
}

/// `%px` (and `%p` before v4.15): the address itself, 16 hex digits.
pub fn raw(addr: u64) -> String {
    format!("{addr:016x}")
}

/// `%p` as the era prints it. v3.12: the address raw, and NULL as
/// `(null)` right-aligned in the default field width. From v4.15: a hash
/// of the address (16 hex digits whose upper 32 bits are zero); NULL is
/// printed as zeros, unhashed (7bd57fbc4a4d, "don't obfuscate NULL and
/// error pointers", v5.7; the 5.5 profile shares the 6.1 style).
pub fn pointer(style: LogStyle, addr: u64) -> String {
    match (style, addr) {
        (LogStyle::V3_12, 0) => format!("{:>16}", "(null)"),
        (LogStyle::V3_12, _) | (LogStyle::V6_1, 0) => raw(addr),
        (LogStyle::V6_1, _) => hashed(addr),
    }
}

/// The hashed `%p` of an address (a fixed mix in the model).
pub fn hashed(addr: u64) -> String {
    let mut z = addr ^ 0x5eed_5eed_5eed_5eed;
    z = (z ^ (z >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    z ^= z >> 33;
    format!("{:016x}", z & 0xffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slab_objects_follow_the_documented_formula() {
        let v3 = LogStyle::V3_12;
        assert_eq!(slab_object(v3, Cache::MmStruct, 1), 0xffff_8800_4000_0400);
        assert_eq!(slab_object(v3, Cache::AnonVma, 2), 0xffff_8800_4100_0100);
        assert_eq!(
            slab_object(LogStyle::V6_1, Cache::AnonVma, 3),
            0xffff_8880_4100_0180
        );
        // Different ids, different objects; no two caches overlap.
        assert_ne!(
            slab_object(v3, Cache::AnonVma, 2),
            slab_object(v3, Cache::AnonVma, 3)
        );
        let last_mm = slab_object(v3, Cache::MmStruct, CACHE_SPAN / 0x400 - 1);
        assert!(last_mm < slab_object(v3, Cache::AnonVma, 0));
    }

    #[test]
    fn frames_and_struct_pages_are_derived_from_the_pfn() {
        assert_eq!(struct_page(0x1035e9), 0xffff_ea00_040d_7a40);
        assert_eq!(
            direct_map(LogStyle::V6_1, 0x1_0020_0000 + 8),
            0xffff_8881_0020_0008
        );
        // The slab region lies below the first modelled frame.
        let first_frame = crate::page_alloc::node_start_pfn(0) << 12;
        assert!(SLAB_PHYS + 2 * CACHE_SPAN <= first_frame);
    }

    #[test]
    fn pointer_formats_by_era() {
        let a = 0xffff_8800_4000_0400;
        assert_eq!(pointer(LogStyle::V3_12, a), "ffff880040000400");
        assert_eq!(pointer(LogStyle::V3_12, 0), "          (null)");
        assert_eq!(pointer(LogStyle::V6_1, 0), "0000000000000000");
        let h = pointer(LogStyle::V6_1, a);
        assert_eq!(h, hashed(a));
        assert!(h.starts_with("00000000"), "{h}");
        assert_ne!(h, hashed(a + 0x400));
    }
}
