//! The structure rules of `docs/architecture.md`, checked on the source itself so that a
//! later change cannot quietly undo them:
//!
//! - the files of `src/` import each other without a circle (file level: an edge `a → b` for
//!   every `use crate::…` / `use super::…` / `use self::…` of `a`, and every `crate::…` /
//!   `super::…` path written in its code, that names module `b`; a module's `mod.rs` using its
//!   own children is not an edge);
//! - nothing inside `src/` imports through the crate root's re-exports (`use crate::X` names
//!   a module, never a type re-exported by `lib.rs`);
//! - `cfg(loom)` (in any form) appears in at most four files: the shim, the region, the timer
//!   and `lib.rs`.
//!
//! The parser reads `use` items only (one per statement, braces expanded); it is a lint, not a
//! Rust front end, and it errs on the side of reporting an edge.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/`, keyed by its module path (`""` for `lib.rs`,
/// `"atomics::wait"` for `src/atomics/wait.rs` and `"atomics"` for `src/atomics/mod.rs`).
fn source_files() -> BTreeMap<String, (PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).expect("read src/") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(&root).unwrap().with_extension("");
                let mut parts: Vec<String> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
                    parts.pop();
                }
                let text = fs::read_to_string(&path).expect("read a source file");
                files.insert(parts.join("::"), (path, text));
            }
        }
    }
    files
}

/// The `use` statements of a file, whitespace and aliases removed (`crate::a::{b,c::D}`).
fn use_statements(text: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut rest = text;
    while let Some(at) = find_use(rest) {
        let body = &rest[at..];
        let end = body.find(';').unwrap_or(body.len());
        // `a as b` keeps its path `a`: the alias is dropped before the spaces are.
        let words: Vec<&str> = body[..end].split_whitespace().collect();
        let mut statement = String::new();
        let mut words = words.into_iter();
        while let Some(word) = words.next() {
            if word == "as" {
                // Drop the alias name, keep what follows it (`w},` → `},`).
                let alias = words.next().unwrap_or("");
                statement
                    .push_str(alias.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_'));
            } else {
                statement.push_str(word);
            }
        }
        statements.push(statement);
        rest = &body[end..];
    }
    statements
}

/// The byte offset just after the next `use ` that starts an item on its line (after
/// indentation and an optional visibility), or `None`.
fn find_use(text: &str) -> Option<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let mut item = trimmed;
        if let Some(after) = item.strip_prefix("pub") {
            item = after.trim_start();
            if item.starts_with('(') {
                item = item[item.find(')').map_or(0, |p| p + 1)..].trim_start();
            }
        }
        if let Some(after) = item.strip_prefix("use ") {
            return Some(offset + line.len() - after.len());
        }
        offset += line.len();
    }
    None
}

/// The `crate::…` and `super::…` paths written in a file's code outside `use` items
/// (`super::worker::spawn(..)`), comments left out. A `//` inside a string ends the line
/// early, which can only hide a path, never invent one.
fn path_expressions(text: &str) -> Vec<String> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut paths = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        for start in ["crate::", "super::"] {
            for (at, _) in code.match_indices(start) {
                if code[..at].chars().next_back().is_some_and(is_ident) {
                    continue;
                }
                let tail = &code[at..];
                // `segment(::segment)*`, stopping before a `::` not followed by a name.
                let mut end = 0;
                loop {
                    end += tail[end..]
                        .find(|c: char| !is_ident(c))
                        .unwrap_or(tail.len() - end);
                    let next = &tail[end..];
                    if next.starts_with("::") && next[2..].starts_with(is_ident) {
                        end += 2;
                    } else {
                        break;
                    }
                }
                paths.push(tail[..end].to_string());
            }
        }
    }
    paths
}

/// `a::{b,c::{d,e}}` → `["a::b", "a::c::d", "a::c::e"]`.
fn expand(tree: &str) -> Vec<String> {
    let Some(open) = tree.find('{') else {
        return vec![tree.to_string()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let (mut depth, mut start, mut items) = (0, 0, Vec::new());
    for (i, ch) in inner.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .filter(|item| !item.is_empty())
        .flat_map(|item| {
            expand(item).into_iter().map(move |leaf| {
                if leaf == "self" {
                    prefix.trim_end_matches("::").to_string()
                } else {
                    format!("{prefix}{leaf}")
                }
            })
        })
        .collect()
}

/// The module a path names, seen from module `from`: the longest prefix of the path that is a
/// module other than `from`, or `None` for paths outside the crate. (`self` and `super` mean
/// the same in a `mod.rs` and in a file module: the module itself and its parent.)
fn resolve(modules: &BTreeSet<String>, from: &str, path: &str) -> Option<String> {
    let mut parts: Vec<&str> = path.split("::").collect();
    let mut base: Vec<&str> = from.split("::").filter(|p| !p.is_empty()).collect();
    match parts.first().copied() {
        Some("crate") => {
            base.clear();
            parts.remove(0);
        }
        Some("self") => {
            parts.remove(0);
        }
        Some("super") => {
            while parts.first() == Some(&"super") {
                parts.remove(0);
                base.pop();
            }
        }
        _ => return None,
    }
    (1..=parts.len()).rev().find_map(|k| {
        let candidate: Vec<&str> = base.iter().chain(&parts[..k]).copied().collect();
        let candidate = candidate.join("::");
        (modules.contains(&candidate) && candidate != from).then_some(candidate)
    })
}

/// The file-level import edges of the crate.
fn import_graph(files: &BTreeMap<String, (PathBuf, String)>) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    let mut graph = BTreeMap::new();
    for (module, (_, text)) in files {
        let mut targets = BTreeSet::new();
        let uses = use_statements(text).into_iter().flat_map(|s| expand(&s));
        for leaf in uses.chain(path_expressions(text)) {
            {
                if let Some(target) = resolve(&modules, module, &leaf) {
                    let child_of_this =
                        target.starts_with(&format!("{module}::")) || module.is_empty();
                    if !child_of_this {
                        targets.insert(target);
                    }
                }
            }
        }
        graph.insert(module.clone(), targets);
    }
    graph
}

/// The strongly connected components with more than one file (Tarjan).
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Search<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Search<'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in &self.graph[v] {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                loop {
                    let w = self.stack.pop().expect("on the stack");
                    self.on_stack.remove(w);
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut search = Search {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !search.index.contains_key(v.as_str()) {
            search.visit(v);
        }
    }
    search.found
}

#[test]
fn the_files_of_src_import_each_other_without_a_circle() {
    let graph = import_graph(&source_files());
    let found = circles(&graph);
    let report: Vec<String> = found
        .iter()
        .map(|component| {
            let edges: Vec<String> = component
                .iter()
                .map(|a| {
                    let inside: Vec<&str> = graph[a]
                        .iter()
                        .filter(|b| component.contains(b))
                        .map(String::as_str)
                        .collect();
                    format!("  {a} -> {inside:?}")
                })
                .collect();
            format!("circle {component:?}:\n{}", edges.join("\n"))
        })
        .collect();
    assert!(
        found.is_empty(),
        "import circles in src/:\n{}",
        report.join("\n")
    );
}

#[test]
fn the_checker_sees_a_circle_when_there_is_one() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    graph.insert("a".into(), ["b".to_string()].into());
    graph.insert("b".into(), ["c".to_string()].into());
    graph.insert("c".into(), ["a".to_string()].into());
    graph.insert("d".into(), ["a".to_string()].into());
    assert_eq!(
        circles(&graph),
        vec![vec!["a".to_string(), "b".into(), "c".into()]]
    );

    let modules: BTreeSet<String> = [
        "",
        "atomics",
        "atomics::wait",
        "atomics::waiter",
        "view",
        "view::typed",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let leaves = expand("crate::{view::typed::{Int32Array,self},atomics::waiter::Waiter}");
    assert_eq!(
        use_statements("use super::{waiter as w, wait};\npub(crate) use crate::view as v;"),
        vec![
            "super::{waiter,wait}".to_string(),
            "crate::view".to_string()
        ]
    );
    let targets: Vec<Option<String>> = leaves
        .iter()
        .map(|leaf| resolve(&modules, "atomics::wait", leaf))
        .collect();
    assert_eq!(
        targets,
        vec![
            Some("view::typed".to_string()),
            Some("view::typed".to_string()),
            Some("atomics::waiter".to_string())
        ]
    );
    assert_eq!(
        resolve(&modules, "atomics::wait", "super::waiter::Waiter"),
        Some("atomics::waiter".to_string())
    );
    assert_eq!(
        resolve(&modules, "atomics", "self::waiter::Waiter"),
        Some("atomics::waiter".to_string())
    );
    assert_eq!(
        path_expressions("let h = super::worker::spawn(core); // crate::view\n$crate::shim::X"),
        vec![
            "super::worker::spawn".to_string(),
            "crate::shim::X".to_string()
        ]
    );
}

#[test]
fn nothing_in_src_imports_through_the_crate_root() {
    let files = source_files();
    let top_level: BTreeSet<&str> = files
        .keys()
        .filter(|m| !m.is_empty())
        .map(|m| m.split("::").next().unwrap())
        .collect();
    let mut offenders = Vec::new();
    for (module, (_, text)) in &files {
        for statement in use_statements(text) {
            for leaf in expand(&statement) {
                let Some(rest) = leaf.strip_prefix("crate::") else {
                    continue;
                };
                let first = rest.split("::").next().unwrap_or(rest);
                if !top_level.contains(first) {
                    offenders.push(format!("{module}: use {leaf}"));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "imports through the crate root (import from the module instead):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn cfg_loom_stays_in_at_most_four_files() {
    let with_loom: Vec<String> = source_files()
        .values()
        .filter(|(_, text)| mentions_cfg_loom(text))
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert!(
        with_loom.len() <= 4,
        "cfg(loom) belongs in the shim, the region, the timer and lib.rs; found in {}: {with_loom:#?}",
        with_loom.len()
    );
}

/// Whether the text has `cfg(loom`, `cfg(not(loom`, `cfg(all(loom`, `cfg(any(... loom` and so on.
fn mentions_cfg_loom(text: &str) -> bool {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    compact.match_indices("cfg(").any(|(at, _)| {
        let mut depth = 0usize;
        for (i, ch) in compact[at + 3..].char_indices() {
            match ch {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        let inside = &compact[at + 4..at + 3 + i];
                        return inside
                            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                            .any(|word| word == "loom");
                    }
                }
                _ => {}
            }
        }
        false
    })
}
