//! The architecture, checked (README, "Architecture"): no import loop between the top-level
//! modules of a crate. A module is a top-level file or folder of a crate's `src`; it depends
//! on another when it names it through `crate::` (a name re-exported at the crate root counts
//! as the module it comes from). A loop inside one module is its own business.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Identifiers in `text` (letters, digits, underscores), in order.
fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect()
}

/// The names a line reaches through `crate::`: the first segment of each path, and every
/// first segment inside a `crate::{…}` group.
fn crate_names(code: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        if i > 0 && code[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            continue; // techpass_crate::…, not ours
        }
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = group.split('}').next().unwrap_or("");
            for item in group.split(',') {
                if let Some(first) = words(item).first() {
                    names.push(first.to_string());
                }
            }
        } else if let Some(first) = words(rest).first() {
            names.push(first.to_string());
        }
    }
    names
}

/// The module graph of the crate whose sources are in `src`.
fn graph(src: &Path) -> Graph {
    let root = ["lib.rs", "main.rs"];
    // Names the crate root re-exports (`pub use module::Name;`) stand for their module.
    let mut alias: BTreeMap<String, String> = BTreeMap::new();
    for file in root {
        let text = std::fs::read_to_string(src.join(file)).unwrap_or_default();
        for line in text.lines() {
            if let Some(path) = line.trim().strip_prefix("pub use ") {
                let parts = words(path);
                if parts.len() >= 2 {
                    alias.insert(parts[parts.len() - 1].to_string(), parts[0].to_string());
                }
            }
        }
    }
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut modules: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap();
        let first = rel.components().next().unwrap().as_os_str();
        let name = first.to_string_lossy().trim_end_matches(".rs").to_string();
        if !root.contains(&rel.to_string_lossy().as_ref()) {
            modules.entry(name).or_default().push(file);
        }
    }
    let mut graph = Graph::new();
    for (module, files) in &modules {
        let edges = graph.entry(module.clone()).or_default();
        for file in files {
            let text = std::fs::read_to_string(file).unwrap();
            for line in text.lines() {
                let code = line.split("//").next().unwrap_or("");
                for name in crate_names(code) {
                    let target = alias.get(&name).cloned().unwrap_or(name);
                    if &target != module && modules.contains_key(&target) {
                        edges.insert(target);
                    }
                }
            }
        }
    }
    graph
}

/// The loops of `graph`: its strongly connected components of more than one module.
fn loops(graph: &Graph) -> Vec<Vec<String>> {
    // Two modules are in one loop when each reaches the other.
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(m) = todo.pop() {
            for next in graph.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|m| (m, reach(m))).collect();
    let mut found: Vec<Vec<String>> = Vec::new();
    for m in graph.keys() {
        if found.iter().any(|l| l.contains(m)) || !reached[m].contains(m) {
            continue;
        }
        let component: Vec<String> = graph
            .keys()
            .filter(|o| *o == m || (reached[m].contains(*o) && reached[*o].contains(m)))
            .cloned()
            .collect();
        if component.len() > 1 {
            found.push(component);
        }
    }
    found
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn assert_no_loops(src: &Path) {
    let g = graph(src);
    assert!(g.len() > 2, "{}: {g:?}", src.display());
    let found = loops(&g);
    assert!(
        found.is_empty(),
        "{}: modules import each other in a loop: {found:?}\n(graph: {g:#?})",
        src.display()
    );
}

#[test]
fn the_service_crate_has_no_import_loop() {
    assert_no_loops(&workspace().join("crates/service/src"));
}

#[test]
fn the_http_shell_has_no_import_loop() {
    assert_no_loops(&workspace().join("src"));
}

#[test]
fn the_other_crates_have_no_import_loop() {
    for krate in ["domain", "oidc", "store", "upstream"] {
        assert_no_loops(&workspace().join("crates").join(krate).join("src"));
    }
}

#[test]
fn the_check_would_notice_a_loop() {
    let mut g = Graph::new();
    let edge = |g: &mut Graph, a: &str, b: &str| {
        g.entry(a.into()).or_default().insert(b.into());
        g.entry(b.into()).or_default();
    };
    edge(&mut g, "a", "b");
    edge(&mut g, "b", "c");
    edge(&mut g, "c", "d");
    assert!(loops(&g).is_empty());
    edge(&mut g, "c", "a");
    assert_eq!(loops(&g), vec![vec!["a", "b", "c"]]);
    assert_eq!(
        crate_names("use crate::{audit, clients::Client}; crate::mail::x(); techpass_crate::y"),
        vec!["audit", "clients", "mail"]
    );
}
