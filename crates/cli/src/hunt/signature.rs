//! Finding signatures: what makes two findings of a hunt "the same".
//!
//! A signature is the check that fired, the model function it fired in
//! (the innermost kernel function the reporting actor had entered), and
//! the finding's title with every number and name-with-number folded, so
//! that addresses, pfns, values, task and process names do not split one
//! bug into many.

use explore::trace::What;
use explore::{Finding, FindingKind};

/// A finding's identity within a hunt.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Signature {
    pub check: String,
    pub function: String,
    /// The title with numbers folded to `N`.
    pub shape: String,
}

impl Signature {
    pub fn of(finding: &Finding, function: &str) -> Signature {
        Signature {
            check: finding.check.clone(),
            function: function.to_string(),
            shape: fold_numbers(&finding.title),
        }
    }

    /// A file-name-safe key: the check and function spelled out, then a
    /// hash of the title's shape (FNV-1a, stable across runs and builds).
    pub fn key(&self) -> String {
        format!(
            "{}@{}-{:08x}",
            slug(&self.check),
            slug(&self.function),
            fnv1a(self.shape.as_bytes()) as u32
        )
    }
}

/// The innermost function the reporting actor was in when `trace`'s
/// finding was raised (`"-"` if the trace has none).
pub fn where_it_fired(trace: &[explore::trace::Event]) -> String {
    let Some(at) = trace
        .iter()
        .position(|e| matches!(e.what, What::Finding(_)))
    else {
        return "-".into();
    };
    let (actor, depth) = (trace[at].actor, trace[at].depth);
    let mut want = depth;
    for e in trace[..at].iter().rev().filter(|e| e.actor == actor) {
        if e.depth >= want {
            continue;
        }
        if let What::Enter(f) = e.what {
            return f.to_string();
        }
        want = e.depth;
    }
    "-".into()
}

/// Whether a finding is one a hunt reports (the kernel's checks,
/// invariants, deadlocks) rather than a limit of the model's coverage
/// (a livelock: the step bound).
pub fn is_reportable(kind: FindingKind) -> bool {
    kind != FindingKind::Livelock
}

/// `title` with its numbers folded to `N`: a word-internal run of
/// letters and digits that is a number (decimal, `0x` hex, or bare hex as
/// `pte:8000000100003025` prints it) becomes one `N`; in any other run
/// (`t12`, `proc0`, `v4_19`) each run of digits does.
pub fn fold_numbers(title: &str) -> String {
    let mut out = String::with_capacity(title.len());
    let mut word = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            word.push(c);
            continue;
        }
        fold_word(&word, &mut out);
        word.clear();
        out.push(c);
    }
    fold_word(&word, &mut out);
    out
}

fn fold_word(word: &str, out: &mut String) {
    let digits = word.bytes().any(|b| b.is_ascii_digit());
    let hex = word.strip_prefix("0x").unwrap_or(word);
    if digits && !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        out.push('N');
        return;
    }
    let mut in_digits = false;
    for c in word.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('N');
            }
            in_digits = true;
        } else {
            out.push(c);
            in_digits = false;
        }
    }
}

/// The longest run of words in `title` without a digit: a substring an
/// `expect ...: finding "..."` line can name that does not depend on
/// addresses or values.
pub fn stable_phrase(title: &str) -> String {
    let mut best: Vec<&str> = Vec::new();
    let mut run: Vec<&str> = Vec::new();
    for word in title.split(' ') {
        if word.is_empty() || word.bytes().any(|b| b.is_ascii_digit()) || word.contains('"') {
            run.clear();
            continue;
        }
        run.push(word);
        if run.join(" ").len() > best.join(" ").len() {
            best = run.clone();
        }
    }
    best.join(" ")
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').chars().take(40).collect()
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_fold_whole() {
        assert_eq!(
            fold_numbers("pte at 0x7efffffff000 (mm 2) maps pfn 0x100001 in t12"),
            "pte at N (mm N) maps pfn N in tN"
        );
        assert_eq!(fold_numbers("mm/filemap.c:123!"), "mm/filemap.c:N!");
        assert_eq!(
            fold_numbers("Bad page map in process t1  pte:80000001034008e7 pmd:10000a067"),
            "Bad page map in process tN  pte:N pmd:N"
        );
        assert_eq!(
            fold_numbers("dead beef in proc12 at v4_19"),
            "dead beef in procN at vN_N"
        );
    }

    #[test]
    fn the_stable_phrase_has_no_numbers() {
        assert_eq!(
            stable_phrase("BUG: Bad page map in process proc0 pte:8000000100003025 pmd:100002067"),
            "BUG: Bad page map in process"
        );
        assert_eq!(
            stable_phrase("mm/pgtable-generic.c:51: bad pmd 00000000fe00000c(80000001034008e7)"),
            "bad pmd"
        );
    }

    #[test]
    fn findings_that_differ_in_values_share_a_key() {
        let a = Finding::new(
            FindingKind::Kernel,
            "KASAN",
            "use-after-free at 0x1000 by t0",
        );
        let b = Finding::new(
            FindingKind::Kernel,
            "KASAN",
            "use-after-free at 0x2000 by t1",
        );
        let c = Finding::new(FindingKind::Kernel, "KASAN", "double-free at 0x2000 by t1");
        let key = |f: &Finding, func| Signature::of(f, func).key();
        assert_eq!(key(&a, "map_pte"), key(&b, "map_pte"));
        assert_ne!(key(&a, "map_pte"), key(&a, "zap_pte_range"));
        assert_ne!(key(&a, "map_pte"), key(&c, "map_pte"));
        assert!(key(&a, "map_pte").starts_with("kasan@map_pte-"));
    }
}
