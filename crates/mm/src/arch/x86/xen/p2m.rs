//! The physical-to-machine (p2m) and machine-to-physical (m2p) tables of a
//! Xen PV domain.
//!
//! Models arch/x86/xen/p2m.c and arch/x86/include/asm/xen/page.h (v3.12):
//! `get_phys_to_machine()`/`pfn_to_mfn()` and `mfn_to_pfn()`. A PV guest's
//! memory is backed by machine frames Xen chose; the model scatters each
//! NUMA node's frames with a fixed permutation of the same numeric range,
//! as on a real host where guest pfns and machine frames are both small
//! numbers that rarely coincide. Deterministic, so reports are.

use crate::page_alloc::{node_start_pfn, NODE_PAGES};

/// `INVALID_P2M_ENTRY` (`~0UL`).
pub const INVALID_P2M_ENTRY: u64 = !0;

/// Odd multiplier and offset of the per-node frame permutation.
const SCATTER_MUL: u64 = 0x2f3;
const SCATTER_ADD: u64 = 0x1d9;

/// The p2m and m2p of one domain with `nodes` nodes of guest memory.
pub struct P2m {
    nodes: u32,
    /// Inverse of `SCATTER_MUL` modulo `NODE_PAGES`.
    inverse: u64,
}

impl P2m {
    pub fn new(nodes: u32) -> P2m {
        // Newton's iteration for the inverse of an odd number modulo 2^k.
        let mut inv = SCATTER_MUL;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(SCATTER_MUL.wrapping_mul(inv)));
        }
        P2m {
            nodes,
            inverse: inv & (NODE_PAGES - 1),
        }
    }

    /// The node range a frame number falls in, with its offset.
    fn split(&self, frame: u64) -> Option<(u64, u64)> {
        (0..self.nodes).find_map(|n| {
            let base = node_start_pfn(n);
            (frame >= base && frame < base + NODE_PAGES).then(|| (base, frame - base))
        })
    }

    /// `get_phys_to_machine(pfn)`: the machine frame backing `pfn`, `None`
    /// (INVALID_P2M_ENTRY) for a pfn the domain has no memory at.
    pub fn p2m(&self, pfn: u64) -> Option<u64> {
        let (base, off) = self.split(pfn)?;
        Some(base + (off.wrapping_mul(SCATTER_MUL).wrapping_add(SCATTER_ADD) & (NODE_PAGES - 1)))
    }

    /// The machine-to-phys table (`machine_to_phys_mapping[]`): the guest
    /// pfn a machine frame of this domain backs; `None` for frames the
    /// domain does not own.
    pub fn m2p(&self, mfn: u64) -> Option<u64> {
        let (base, off) = self.split(mfn)?;
        let pfn_off = off.wrapping_sub(SCATTER_ADD).wrapping_mul(self.inverse) & (NODE_PAGES - 1);
        Some(base + pfn_off)
    }

    /// `mfn_to_pfn(mfn)` (v3.12): the m2p lookup, `~0` when the frame is
    /// not the domain's (out of range, or `p2m[m2p[mfn]] != mfn`).
    pub fn mfn_to_pfn(&self, mfn: u64) -> u64 {
        match self.m2p(mfn) {
            Some(pfn) if self.p2m(pfn) == Some(mfn) => pfn,
            _ => !0,
        }
    }

    /// `pfn_to_mfn(pfn)` (v3.12): `INVALID_P2M_ENTRY` for a hole.
    pub fn pfn_to_mfn(&self, pfn: u64) -> u64 {
        self.p2m(pfn).unwrap_or(INVALID_P2M_ENTRY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p2m_and_m2p_are_inverse_bijections_per_node() {
        let t = P2m::new(2);
        for n in 0..2 {
            let base = node_start_pfn(n);
            let mut seen = std::collections::BTreeSet::new();
            for pfn in base..base + NODE_PAGES {
                let mfn = t.p2m(pfn).unwrap();
                assert!(seen.insert(mfn), "two pfns share mfn {mfn:#x}");
                assert_eq!(t.m2p(mfn), Some(pfn));
                assert_eq!(t.mfn_to_pfn(mfn), pfn);
            }
        }
        assert_eq!(t.p2m(0x1000), None);
        assert_eq!(t.mfn_to_pfn(0x1000), !0);
        assert_eq!(t.pfn_to_mfn(0x1000), INVALID_P2M_ENTRY);
        // Frames are scattered: most pfns are not backed by the same number.
        let base = node_start_pfn(0);
        let same = (base..base + 64).filter(|&p| t.p2m(p) == Some(p)).count();
        assert!(same < 4);
    }
}
