//! Checks of the crate's shape that a reviewer would otherwise do by hand
//! (ARCHITECTURE.md): no import cycle between top-level modules, a core that
//! imports nothing outside itself, a config that knows no adapter, and no
//! source file over 800 lines. They read the source tree, so a change that
//! breaks a rule fails `cargo test` with the offending module or file named.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest a source file may be (generated files aside: none today).
const MAX_LINES: usize = 800;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("src is readable") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The source without comments (line comments and doc comments), so that a
/// module named in prose is not taken for an import.
fn code_of(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            // A `//` inside a string literal ("http://…") is rare in paths
            // that matter here; cut only when the prefix has no open quote.
            Some(i) if l[..i].matches('"').count() % 2 == 0 => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Top-level module of a file under src/ (`store/sessions.rs` → `store`).
fn top_of(rel: &Path) -> String {
    let first = rel.components().next().expect("non-empty path");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_string()
}

/// Which top-level modules each top-level module refers to (`crate::x`).
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let tops: BTreeSet<String> = files
        .iter()
        .map(|f| top_of(f.strip_prefix(&root).unwrap()))
        .filter(|t| t != "lib" && t != "main")
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let top = top_of(f.strip_prefix(&root).unwrap());
        if top == "lib" || top == "main" {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(f).unwrap());
        let deps = graph.entry(top.clone()).or_default();
        let mut rest = code.as_str();
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name != top && tops.contains(&name) {
                deps.insert(name);
            }
            // `use crate::{a::x, b::y}`: the names inside the braces.
            if rest.starts_with('{') {
                let end = rest.find('}').unwrap_or(rest.len());
                for part in rest[1..end].split(',') {
                    let name = part.trim().split("::").next().unwrap_or("").trim();
                    if name != top && tops.contains(name) {
                        deps.insert(name.to_string());
                    }
                }
            }
        }
    }
    graph
}

/// A path from `from` back to `to` through the graph, if there is one.
fn path_to(
    graph: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    to: &str,
    seen: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if from == to {
        return Some(vec![to.to_string()]);
    }
    if !seen.insert(from.to_string()) {
        return None;
    }
    for next in graph.get(from).into_iter().flatten() {
        if let Some(mut p) = path_to(graph, next, to, seen) {
            p.insert(0, from.to_string());
            return Some(p);
        }
    }
    None
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let graph = module_graph();
    let mut cycles = Vec::new();
    for (m, deps) in &graph {
        for d in deps {
            if let Some(p) = path_to(&graph, d, m, &mut BTreeSet::new()) {
                cycles.push(format!("{m} -> {}", p.join(" -> ")));
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles: {cycles:#?}");
}

#[test]
fn the_core_imports_nothing_outside_the_core() {
    let graph = module_graph();
    let core = graph.get("core").cloned().unwrap_or_default();
    assert!(core.is_empty(), "core imports {core:?}");
}

#[test]
fn the_config_knows_no_adapter() {
    let graph = module_graph();
    let config = graph.get("config").cloned().unwrap_or_default();
    // The pure core's types and the vision value types a site file names.
    let allowed: BTreeSet<String> = ["core", "vision"].map(String::from).into();
    let adapters: Vec<_> = config.difference(&allowed).collect();
    assert!(adapters.is_empty(), "config imports {adapters:?}");
}

#[test]
fn the_services_reach_the_outside_only_through_ports() {
    let graph = module_graph();
    let service = graph.get("service").cloned().unwrap_or_default();
    for adapter in ["mqtt", "http", "ingest", "anpr", "occupancy", "app"] {
        assert!(!service.contains(adapter), "service imports {adapter}");
    }
}

#[test]
fn no_source_file_is_over_the_limit() {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > MAX_LINES)
                .then(|| format!("{} ({n} lines)", f.strip_prefix(&root).unwrap().display()))
        })
        .collect();
    assert!(long.is_empty(), "files over {MAX_LINES} lines: {long:?}");
}
