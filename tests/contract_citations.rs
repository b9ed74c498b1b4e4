//! The behaviour contract and what cites it stay in step (docs/semantics.md, its introduction):
//!
//! - every number cited as `docs/semantics.md P10` (also lists and ranges: `S1, S3 and S6`,
//!   `W1–W3`) anywhere in the crate's code, tests, benches, examples and docs names an entry of
//!   docs/semantics.md, so a renumbered or deleted entry cannot leave citations pointing at
//!   nothing;
//! - every entry is named by at least one file of `tests/`, `loom-tests/` or `proptests/`, so
//!   no promise goes untested by name.
#![cfg(not(loom))]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The entry numbers of the contract: the `P10` of every line that starts `- **P10**`.
fn entries(contract: &str) -> BTreeSet<String> {
    contract
        .lines()
        .filter_map(|line| line.strip_prefix("- **"))
        .filter_map(|rest| rest.split_once("**"))
        .map(|(number, _)| number.to_string())
        .filter(|number| parse_number(number).is_some_and(|(_, _, used)| used == number.len()))
        .collect()
}

/// `X12` at the start of `text`: its letter, its number and how many bytes it took.
fn parse_number(text: &str) -> Option<(char, u32, usize)> {
    let letter = text.chars().next().filter(char::is_ascii_uppercase)?;
    let digits = text[1..].chars().take_while(char::is_ascii_digit).count();
    if digits == 0 || digits > 3 {
        return None;
    }
    let number = text[1..1 + digits].parse().ok()?;
    Some((letter, number, 1 + digits))
}

/// The numbers cited in `text`: after each `docs/semantics.md`, a list of `X12`s separated by
/// commas, spaces, `and` / `or`, each perhaps a range (`W1–W3`, `W1-3`), up to the first word
/// that is none of those.
fn citations(text: &str) -> Vec<String> {
    let mut cited = Vec::new();
    for (at, _) in text.match_indices("docs/semantics.md") {
        let mut rest = &text[at + "docs/semantics.md".len()..];
        loop {
            let trimmed = rest.trim_start_matches([' ', ',', '(']);
            let trimmed = ["and ", "or "]
                .iter()
                .find_map(|word| trimmed.strip_prefix(word))
                .unwrap_or(trimmed);
            let Some((letter, first, used)) = parse_number(trimmed) else {
                break;
            };
            rest = &trimmed[used..];
            let mut last = first;
            for dash in ['–', '-'] {
                if let Some(after) = rest.strip_prefix(dash) {
                    let after = after.strip_prefix(letter).unwrap_or(after);
                    let digits = after.chars().take_while(char::is_ascii_digit).count();
                    if let Ok(end) = after[..digits].parse() {
                        last = end;
                        rest = &after[digits..];
                    }
                }
            }
            cited.extend((first..=last.max(first)).map(|n| format!("{letter}{n}")));
        }
    }
    cited
}

/// Every text file under `dir` (recursively) with one of `extensions`.
fn files_under(dir: &Path, extensions: &[&str], found: &mut Vec<PathBuf>) {
    let Ok(listing) = fs::read_dir(dir) else {
        return;
    };
    for entry in listing {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            // Build output and installed packages (benches/node installs npm packages into
            // the target directory) are not the crate's text.
            let skipped = path.file_name().is_some_and(|name| {
                name == "target"
                    || name == "node_modules"
                    || name.to_string_lossy().starts_with('.')
            });
            if !skipped {
                files_under(&path, extensions, found);
            }
        } else if path
            .extension()
            .is_some_and(|e| extensions.iter().any(|x| e == *x))
        {
            found.push(path);
        }
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[test]
fn every_cited_number_names_an_entry_of_the_contract() {
    let root = root();
    let known = entries(&read(&root.join("docs/semantics.md")));
    assert!(known.len() > 50, "the contract's entries were not found");
    let mut files = vec![root.join("README.md")];
    for dir in [
        "src",
        "tests",
        "loom-tests",
        "proptests",
        "benches",
        "examples",
        "docs",
    ] {
        files_under(&root.join(dir), &["rs", "md", "mjs"], &mut files);
    }
    let mut dangling = Vec::new();
    let mut count = 0;
    for file in &files {
        for number in citations(&read(file)) {
            count += 1;
            if !known.contains(&number) {
                dangling.push(format!(
                    "{}: {number}",
                    file.strip_prefix(&root).unwrap_or(file).display()
                ));
            }
        }
    }
    assert!(
        count > 300,
        "only {count} citations found: the parser is broken"
    );
    assert!(
        dangling.is_empty(),
        "citations of numbers docs/semantics.md does not have:\n{}",
        dangling.join("\n")
    );
}

#[test]
fn every_entry_of_the_contract_is_named_by_a_test() {
    let root = root();
    let known = entries(&read(&root.join("docs/semantics.md")));
    let mut files = Vec::new();
    for dir in ["tests", "loom-tests", "proptests"] {
        files_under(&root.join(dir), &["rs"], &mut files);
    }
    let texts: Vec<String> = files.iter().map(|f| read(f)).collect();
    let untested: Vec<&String> = known
        .iter()
        .filter(|number| !texts.iter().any(|text| names(text, number)))
        .collect();
    assert!(
        untested.is_empty(),
        "entries of docs/semantics.md no test names: {untested:?}"
    );
}

/// Whether `text` has `number` as a word of its own (`P1` in "P1," but not in "P10").
fn names(text: &str, number: &str) -> bool {
    text.match_indices(number).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + number.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

#[test]
fn the_parsers_read_lists_ranges_and_words() {
    let contract = "intro\n- **A1** one\n- **A2** two\n- **AB** not a number\n  - **A3** nested, not an entry\n";
    assert_eq!(
        entries(contract),
        BTreeSet::from(["A1".into(), "A2".into()])
    );
    assert_eq!(
        citations("see docs/semantics.md S1, S3 and W1–W3; also (docs/semantics.md P10) and docs/semantics.md X2-4."),
        ["S1", "S3", "W1", "W2", "W3", "P10", "X2", "X3", "X4"]
    );
    assert_eq!(
        citations("docs/semantics.md is the contract"),
        Vec::<String>::new()
    );
    assert!(names("checks P1, then P10", "P1"));
    assert!(!names("checks P10 and P11", "P1"));
    assert!(!names("Width::W8x", "W8"));
}
