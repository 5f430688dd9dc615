//! Kernel profiles: named sets of knob values. Profiles are data, never
//! `cfg`: any knob can be overridden at run time (`--knob name=value`).
//!
//! Each knob documents the commit that changed the behaviour it selects.

use crate::arch::x86::swap::SwapTypes;

/// How `change_pmd_range()` decides whether a pmd needs `pmd_clear_bad()`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PmdCheck {
    /// v5.5 and older: `!is_swap_pmd(*pmd) && !pmd_trans_huge(*pmd) &&
    /// !pmd_devmap(*pmd) && pmd_none_or_clear_bad(pmd)`, four reads.
    Legacy,
    /// 8b272b3cbbb5 (v5.6): none/huge/bad tested on one snapshot by
    /// `pmd_none_or_clear_bad_unless_trans_huge()`, but is_swap and devmap
    /// still read `*pmd` separately (v5.6..v6.4, 6.1.y up to 6.1.159).
    UnlessTransHuge,
    /// 91750c8a4be4 (6.1.160, stable backport of 670ddd8cdcbd): one `_pmd`
    /// snapshot for every check, `pmd_old` passed to change_pte_range and
    /// re-checked after taking the PTL, `pmd_trans_unstable()` removed.
    SingleSnapshotBackport,
    /// 670ddd8cdcbd + 0d940a9b270b (v6.5): `pmd_none(*pmd)` skip, one
    /// `pmdp_get_lockless()` snapshot for the huge decision, and
    /// `pte_offset_map_lock()` that may fail (`-EAGAIN`, `goto again`).
    Upstream65,
}

/// How `pte_offset_map_lock()` derives and takes the PTE lock.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PteOffsetMapLock {
    /// Before 0d940a9b270b (v6.5): the lock pointer comes from
    /// `pmd_page(*pmd)` unconditionally; it never fails.
    Pre65,
    /// 0d940a9b270b (v6.5) `__pte_offset_map_lock()`: snapshot the pmd, fail
    /// for none/migration/huge/devmap, `pmd_clear_bad()` a bad one, lock the
    /// snapshot's table and retry unless `pmd_same()` under the lock.
    Post65,
}

/// How `change_huge_pmd()` rewrites a huge pmd.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HugeUpdateStyle {
    /// Before ced108037c2a (v4.11): `pmdp_huge_get_and_clear()`, leaving the
    /// pmd transiently none.
    ClearThenSet,
    /// ced108037c2a (v4.11): `pmdp_invalidate()`, the pmd stays huge.
    Invalidate,
}

/// How a NUMA hinting fault migrates a misplaced THP.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NumaThpMigration {
    /// Up to v5.13: `migrate_misplaced_transhuge_page()`, an ad hoc path
    /// that copies under the page lock and replaces the PROT_NONE pmd by
    /// the new huge pmd in one `set_pmd_at()` (no migration entry).
    MisplacedTranshuge,
    /// c5fc5c3ae0c8 "mm: thp: refactor NUMA fault handling" (v5.14):
    /// `migrate_misplaced_page()` and the generic THP migration with a PMD
    /// migration entry.
    Generic,
}

/// Every behaviour knob of the model.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Knobs {
    pub pmd_check: PmdCheck,
    pub pte_offset_map_lock: PteOffsetMapLock,
    /// `pmd_trans_unstable()` at the top of `change_pte_range()`: present up
    /// to v6.4; removed by 670ddd8cdcbd and by its 6.1.160 backport
    /// 91750c8a4be4 (whose missing check crashed, syzkaller Jan 2026).
    pub change_pte_range_unstable_check: bool,
    /// THP migration (CONFIG_ARCH_ENABLE_THP_MIGRATION, 84c3fc4e9c56, v4.14):
    /// when off, a misplaced THP is not migrated as a whole.
    pub thp_migration: bool,
    pub huge_update_style: HugeUpdateStyle,
    pub numa_thp_migration: NumaThpMigration,
    /// USE_SPLIT_PTE_PTLOCKS / USE_SPLIT_PMD_PTLOCKS (NR_CPUS >=
    /// SPLIT_PTLOCK_CPUS): per-table locks instead of `mm->page_table_lock`.
    pub split_ptlocks: bool,
    /// ALLOC_SPLIT_PTLOCKS (spinlock larger than a word, e.g. lockdep or
    /// spinlock debugging builds such as syzkaller's): `page->ptl` is a
    /// pointer, NULL for pages that are not page tables.
    pub alloc_split_ptlocks: bool,
    /// Fault injection, as CONFIG_FAIL_PAGE_ALLOC: every page allocation
    /// may fail (explored as a choice). Off in every profile; the error
    /// paths (VM_FAULT_OOM, failed migration) run when it is on.
    pub fail_page_alloc: bool,
}

/// A named kernel: knob values plus version facts used in messages.
#[derive(Clone, Debug)]
pub struct Profile {
    pub name: &'static str,
    pub summary: &'static str,
    pub knobs: Knobs,
    /// Swap-type numbering of the version's x86-64 config (migration entry
    /// encoding in raw pmd values).
    pub swap_types: SwapTypes,
    /// Line of `pmd_ERROR()` in mm/pgtable-generic.c (`pmd_clear_bad`).
    pub pmd_clear_bad_line: u32,
}

const V61: Knobs = Knobs {
    pmd_check: PmdCheck::UnlessTransHuge,
    pte_offset_map_lock: PteOffsetMapLock::Pre65,
    change_pte_range_unstable_check: true,
    thp_migration: true,
    huge_update_style: HugeUpdateStyle::Invalidate,
    numa_thp_migration: NumaThpMigration::Generic,
    split_ptlocks: true,
    alloc_split_ptlocks: true,
    fail_page_alloc: false,
};

/// Every profile mmrace knows.
pub fn profiles() -> Vec<Profile> {
    vec![
        Profile {
            name: "linux-5.5",
            summary: "before 8b272b3cbbb5: change_pmd_range reads *pmd four times (Race 0)",
            knobs: Knobs {
                pmd_check: PmdCheck::Legacy,
                numa_thp_migration: NumaThpMigration::MisplacedTranshuge,
                ..V61
            },
            swap_types: SwapTypes::v5_5(),
            pmd_clear_bad_line: 33,
        },
        Profile {
            name: "linux-6.1.159",
            summary: "6.1.y before the backport: is_swap/devmap/bad on separate reads (Race 1)",
            knobs: V61,
            swap_types: SwapTypes::v6_1(),
            pmd_clear_bad_line: 51,
        },
        Profile {
            name: "linux-6.1.160",
            summary: "6.1.y with backport 91750c8a4be4: Race 1 gone, NULL split PTL in pte_offset_map_lock",
            knobs: Knobs {
                pmd_check: PmdCheck::SingleSnapshotBackport,
                change_pte_range_unstable_check: false,
                ..V61
            },
            swap_types: SwapTypes::v6_1(),
            pmd_clear_bad_line: 51,
        },
        Profile {
            name: "linux-6.5",
            summary: "mainline with 670ddd8cdcbd and 0d940a9b270b (fixed)",
            knobs: Knobs {
                pmd_check: PmdCheck::Upstream65,
                pte_offset_map_lock: PteOffsetMapLock::Post65,
                change_pte_range_unstable_check: false,
                ..V61
            },
            swap_types: SwapTypes::v6_1(),
            pmd_clear_bad_line: 51,
        },
    ]
}

/// Looks a profile up by name.
pub fn profile(name: &str) -> Result<Profile, String> {
    profiles()
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| {
            let names: Vec<&str> = profiles().iter().map(|p| p.name).collect();
            format!(
                "unknown profile '{name}'; known profiles: {}",
                names.join(", ")
            )
        })
}

/// A knob as the command line sees it.
pub struct KnobDef {
    pub name: &'static str,
    pub doc: &'static str,
    pub values: &'static [&'static str],
    get: fn(&Knobs) -> &'static str,
    set: fn(&mut Knobs, &str) -> bool,
}

impl KnobDef {
    pub fn get(&self, k: &Knobs) -> &'static str {
        (self.get)(k)
    }
}

fn onoff(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

fn parse_onoff(v: &str) -> Option<bool> {
    match v {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    }
}

/// A knob over a bool field, spelled `on`/`off`.
macro_rules! bool_knob {
    ($name:literal, $field:ident, $doc:expr) => {
        KnobDef {
            name: $name,
            doc: $doc,
            values: &["on", "off"],
            get: |k| onoff(k.$field),
            set: |k: &mut Knobs, v: &str| parse_onoff(v).map(|b| k.$field = b).is_some(),
        }
    };
}

/// A knob over an enum field: each value spelling names one variant.
macro_rules! enum_knob {
    ($name:literal, $field:ident, $doc:expr, { $($value:literal => $variant:path),+ $(,)? }) => {
        KnobDef {
            name: $name,
            doc: $doc,
            values: &[$($value),+],
            get: |k| match k.$field {
                $($variant => $value,)+
            },
            set: |k: &mut Knobs, v: &str| {
                k.$field = match v {
                    $($value => $variant,)+
                    _ => return false,
                };
                true
            },
        }
    };
}

/// The knob table: names, allowed values, and the commits behind them.
pub static KNOBS: &[KnobDef] = &[
    enum_knob!(
        "pmd_check",
        pmd_check,
        "change_pmd_range pmd validation: legacy (<=5.5), unless_trans_huge (8b272b3cbbb5, 5.6), \
         single_snapshot_backport (91750c8a4be4, 6.1.160), upstream65 (670ddd8cdcbd, 6.5)",
        {
            "legacy" => PmdCheck::Legacy,
            "unless_trans_huge" => PmdCheck::UnlessTransHuge,
            "single_snapshot_backport" => PmdCheck::SingleSnapshotBackport,
            "upstream65" => PmdCheck::Upstream65,
        }
    ),
    enum_knob!(
        "pte_offset_map_lock",
        pte_offset_map_lock,
        "pre65: lock derived from *pmd, never fails; post65 (0d940a9b270b): snapshot, may fail, \
         pmd_same retry",
        { "pre65" => PteOffsetMapLock::Pre65, "post65" => PteOffsetMapLock::Post65 }
    ),
    bool_knob!(
        "change_pte_range_unstable_check",
        change_pte_range_unstable_check,
        "pmd_trans_unstable() at the top of change_pte_range (removed by 670ddd8cdcbd / 91750c8a4be4)"
    ),
    bool_knob!(
        "thp_migration",
        thp_migration,
        "CONFIG_ARCH_ENABLE_THP_MIGRATION (84c3fc4e9c56, 4.14): migrate a THP whole via a pmd \
         migration entry"
    ),
    enum_knob!(
        "huge_update_style",
        huge_update_style,
        "change_huge_pmd: clear_then_set (before ced108037c2a, 4.11) or invalidate (pmdp_invalidate)",
        { "clear_then_set" => HugeUpdateStyle::ClearThenSet, "invalidate" => HugeUpdateStyle::Invalidate }
    ),
    enum_knob!(
        "numa_thp_migration",
        numa_thp_migration,
        "NUMA hinting fault on a THP: misplaced_transhuge (<=5.13, no migration entry) or generic \
         (c5fc5c3ae0c8, 5.14: migrate_misplaced_page with a PMD migration entry)",
        {
            "misplaced_transhuge" => NumaThpMigration::MisplacedTranshuge,
            "generic" => NumaThpMigration::Generic,
        }
    ),
    bool_knob!(
        "split_ptlocks",
        split_ptlocks,
        "USE_SPLIT_PTE_PTLOCKS/USE_SPLIT_PMD_PTLOCKS: per-table locks (off: mm->page_table_lock)"
    ),
    bool_knob!(
        "fail_page_alloc",
        fail_page_alloc,
        "fault injection as CONFIG_FAIL_PAGE_ALLOC: every page allocation may fail (an explored choice)"
    ),
    bool_knob!(
        "alloc_split_ptlocks",
        alloc_split_ptlocks,
        "ALLOC_SPLIT_PTLOCKS: page->ptl is a pointer (NULL for non-table pages) rather than embedded"
    ),
];

impl Profile {
    /// Applies `name=value` overrides; errors name the bad knob or value.
    pub fn with_overrides(mut self, overrides: &[(String, String)]) -> Result<Profile, String> {
        for (name, value) in overrides {
            let def = KNOBS.iter().find(|d| d.name == name).ok_or_else(|| {
                let names: Vec<&str> = KNOBS.iter().map(|d| d.name).collect();
                format!("unknown knob '{name}'; known knobs: {}", names.join(", "))
            })?;
            if !(def.set)(&mut self.knobs, value) {
                return Err(format!(
                    "knob '{name}' cannot be '{value}'; allowed values: {}",
                    def.values.join(", ")
                ));
            }
        }
        Ok(self)
    }
}

/// Parses `name=value`.
pub fn parse_override(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() && !v.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("bad knob override '{s}'; expected name=value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_knob_round_trips_every_value() {
        for def in KNOBS {
            for v in def.values {
                let p = profile("linux-6.1.159").unwrap();
                let p = p
                    .with_overrides(&[(def.name.into(), v.to_string())])
                    .unwrap();
                assert_eq!(def.get(&p.knobs), *v);
            }
        }
    }

    #[test]
    fn bad_overrides_name_the_problem() {
        let p = profile("linux-6.5").unwrap();
        let e = p
            .clone()
            .with_overrides(&[("nope".into(), "on".into())])
            .unwrap_err();
        assert!(e.contains("unknown knob 'nope'"), "{e}");
        let e = p
            .with_overrides(&[("split_ptlocks".into(), "maybe".into())])
            .unwrap_err();
        assert!(e.contains("allowed values: on, off"), "{e}");
        assert!(profile("linux-9").unwrap_err().contains("linux-6.5"));
        assert!(parse_override("x").is_err());
    }
}
