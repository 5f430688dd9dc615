//! INV-LIFETIME for page-table entries, recomputed from scratch: no
//! present or migration entry leads to a page that is back in the
//! allocator (a use-after-free the next access or zap would act on).

use explore::{Finding, FindingKind};

use super::walk::{Census, Leaf};
use crate::mm_types::{Kernel, MmStruct};

pub fn check(k: &Kernel, censuses: &[(&MmStruct, Census)]) -> Option<Finding> {
    for (mm, c) in censuses {
        for (va, leaf) in &c.leaves {
            if let Leaf::Dangling { val, pmd } = leaf {
                let what = if *pmd {
                    k.describe_pmd(*val)
                } else {
                    k.describe_pte(*val)
                };
                return Some(
                    Finding::new(
                        FindingKind::Invariant,
                        "INV-LIFETIME",
                        format!("INV-LIFETIME: the entry mapping {va:#x} points to a freed page"),
                    )
                    .detail(format!("mm {}: entry {val:#018x} ({what})", mm.id)),
                );
            }
        }
    }
    None
}
