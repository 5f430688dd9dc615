//! Keeps `docs/LOCKING.md` in step with `mm::locking::LOCK_ORDER`.
//!
//! The doc carries a fenced block tagged `lock-order` that lists one lock
//! class name per line, in acquisition order. It must equal the `name`s of
//! `LOCK_ORDER`, in order. Every class must also appear, in backticks, in
//! the "Protected by" column of at least one field table. Reordering,
//! renaming or adding a lock class on either side fails these tests.

use std::path::PathBuf;

use mm::locking::LOCK_ORDER;

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/LOCKING.md")
}

fn read_doc() -> String {
    let path = doc_path();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn code_order() -> Vec<&'static str> {
    LOCK_ORDER.iter().map(|c| c.name).collect()
}

/// The lines of the one fenced block tagged `lock-order`, trimmed, blank
/// lines dropped.
fn lock_order_block(doc: &str) -> Result<Vec<String>, String> {
    let lines: Vec<&str> = doc.lines().collect();
    let starts: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.trim() == "```lock-order")
        .map(|(i, _)| i)
        .collect();
    let start = match starts.as_slice() {
        [one] => *one,
        [] => return Err("no ```lock-order block".into()),
        more => return Err(format!("{} ```lock-order blocks; want one", more.len())),
    };
    let mut names = Vec::new();
    for line in &lines[start + 1..] {
        let line = line.trim();
        if line.starts_with("```") {
            return Ok(names);
        }
        if !line.is_empty() {
            names.push(line.to_string());
        }
    }
    Err("the ```lock-order block is not closed".into())
}

/// Checks the doc's lock-order block against `order`.
fn check_order(doc: &str, order: &[&str]) -> Result<(), String> {
    let block = lock_order_block(doc)?;
    if block != order {
        return Err(format!(
            "docs/LOCKING.md lock-order block is\n  {}\nbut mm::locking::LOCK_ORDER is\n  {}\n\
             Update the doc (or the code) so that both list the same classes in the same order.",
            block.join("\n  "),
            order.join("\n  ")
        ));
    }
    Ok(())
}

/// Splits a markdown table row into trimmed cells.
fn cells(row: &str) -> Vec<&str> {
    let row = row.trim();
    let row = row.strip_prefix('|').unwrap_or(row);
    let row = row.strip_suffix('|').unwrap_or(row);
    row.split('|').map(str::trim).collect()
}

/// Every cell of every "Protected by" column of the doc's tables (outside
/// fenced code blocks).
fn protected_by_cells(doc: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    let mut column: Option<usize> = None;
    let mut in_table = false;
    for line in doc.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced || !t.starts_with('|') {
            in_table = false;
            column = None;
            continue;
        }
        let row = cells(t);
        if !in_table {
            // The header row of a new table.
            in_table = true;
            column = row
                .iter()
                .position(|c| c.eq_ignore_ascii_case("Protected by"));
            continue;
        }
        let separator = row
            .iter()
            .all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':')));
        if let (Some(i), false) = (column, separator) {
            if let Some(cell) = row.get(i) {
                out.push(cell.to_string());
            }
        }
    }
    out
}

/// Checks that every class name appears in backticks in a "Protected by"
/// cell.
fn check_field_tables(doc: &str, order: &[&str]) -> Result<(), String> {
    let cells = protected_by_cells(doc);
    if cells.is_empty() {
        return Err("docs/LOCKING.md has no table with a \"Protected by\" column".into());
    }
    let missing: Vec<&str> = order
        .iter()
        .copied()
        .filter(|name| {
            let quoted = format!("`{name}`");
            !cells.iter().any(|c| c.contains(&quoted))
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "lock classes never named in a \"Protected by\" column of docs/LOCKING.md: {}",
            missing.join(", ")
        ))
    }
}

#[test]
fn doc_lock_order_matches_code() {
    if let Err(e) = check_order(&read_doc(), &code_order()) {
        panic!("{e}");
    }
}

#[test]
fn ranks_strictly_increase() {
    for w in LOCK_ORDER.windows(2) {
        assert!(
            w[0].rank < w[1].rank,
            "LOCK_ORDER: {} (rank {}) is listed before {} (rank {})",
            w[0].name,
            w[0].rank,
            w[1].name,
            w[1].rank
        );
    }
}

#[test]
fn every_lock_class_protects_a_documented_field() {
    if let Err(e) = check_field_tables(&read_doc(), &code_order()) {
        panic!("{e}");
    }
}

/// The checks themselves must catch drift: swap two lines of the doc's
/// block, or reorder the code's list, and the order check fails.
#[test]
fn reordering_either_side_is_caught() {
    let doc = read_doc();
    let order = code_order();
    assert!(order.len() >= 2, "LOCK_ORDER has fewer than two classes");

    let (a, b) = (order[0], order[1]);
    let block_start = doc.find("```lock-order").expect("lock-order block");
    let (head, tail) = doc.split_at(block_start);
    let swapped_tail = tail
        .replacen(&format!("\n{a}\n"), "\n@@A@@\n", 1)
        .replacen(&format!("\n{b}\n"), &format!("\n{a}\n"), 1)
        .replacen("\n@@A@@\n", &format!("\n{b}\n"), 1);
    assert_ne!(
        tail, swapped_tail,
        "could not swap {a} and {b} in the doc block"
    );
    let reordered_doc = format!("{head}{swapped_tail}");
    assert!(check_order(&reordered_doc, &order).is_err());

    let mut reordered_code = order.clone();
    reordered_code.swap(0, 1);
    assert!(check_order(&doc, &reordered_code).is_err());

    let mut renamed = order.clone();
    renamed.push("no_such_lock");
    assert!(check_order(&doc, &renamed).is_err());
    assert!(check_field_tables(&doc, &renamed).is_err());
}

#[test]
fn block_parser_rejects_missing_or_duplicate_blocks() {
    assert!(lock_order_block("no block here").is_err());
    assert!(lock_order_block("```lock-order\nmmap_lock\n").is_err());
    let two = "```lock-order\na\n```\n```lock-order\na\n```\n";
    assert!(lock_order_block(two).is_err());
    assert_eq!(
        lock_order_block("x\n```lock-order\n a \n\nb\n```\n").unwrap(),
        ["a", "b"]
    );
}
