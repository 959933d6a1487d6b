//! The house plan, checked: ztpd's top-level modules import one another without a
//! circle, `config` imports nothing else of ztpd, only `policy/` knows wasmtime, and
//! nothing below `http/` knows axum. Run with `--nocapture` to print the module graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a source file belongs to (`store/jobs.rs` → `store`).
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).expect("under src");
    let first = rel.components().next().expect("a component");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_owned()
}

/// Source text without comment lines (doc links name modules without importing them).
fn code(path: &Path) -> String {
    std::fs::read_to_string(path)
        .expect("read source")
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Module → the modules it imports.
type Edges = BTreeMap<String, BTreeSet<String>>;

/// The import graph, and every file's code.
fn graph() -> (Edges, Vec<(PathBuf, String)>) {
    let mut all = Vec::new();
    files(&src(), &mut all);
    let modules: BTreeSet<String> = all
        .iter()
        .map(|p| module_of(p))
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut texts = Vec::new();
    for path in &all {
        let from = module_of(path);
        let text = code(path);
        for to in &modules {
            if *to != from && text.contains(&format!("crate::{to}")) {
                edges.entry(from.clone()).or_default().insert(to.clone());
            }
        }
        edges.entry(from.clone()).or_default();
        texts.push((path.clone(), text));
    }
    (edges, texts)
}

/// A circle through `edges`, if there is one.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(c) = visit(node, edges, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn modules_import_each_other_without_a_circle() {
    let (edges, _) = graph();
    for (from, to) in &edges {
        println!(
            "{from} -> {}",
            to.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    assert!(edges.len() > 10, "found the modules: {edges:?}");
    if let Some(cycle) = find_cycle(&edges) {
        panic!("import circle: {}", cycle.join(" -> "));
    }
}

#[test]
fn config_and_model_are_leaves() {
    let (edges, _) = graph();
    for leaf in ["config", "clock", "errors", "model"] {
        assert!(edges[leaf].is_empty(), "{leaf} imports {:?}", edges[leaf]);
    }
}

#[test]
fn only_policy_knows_wasmtime_and_nothing_below_http_knows_axum() {
    let (_, texts) = graph();
    for (path, text) in &texts {
        let module = module_of(path);
        if module != "policy" {
            assert!(
                !text.contains("wasmtime"),
                "{} uses wasmtime outside policy/",
                path.display()
            );
        }
        if !["http", "server", "cli"].contains(&module.as_str()) {
            assert!(
                !text.contains("axum"),
                "{} uses axum below http/",
                path.display()
            );
        }
    }
}

#[test]
fn the_check_finds_a_circle_when_there_is_one() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    edges.insert("a".into(), ["b".to_owned()].into());
    edges.insert("b".into(), ["c".to_owned()].into());
    edges.insert("c".into(), ["a".to_owned()].into());
    assert_eq!(
        find_cycle(&edges),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    edges.insert("c".into(), BTreeSet::new());
    assert_eq!(find_cycle(&edges), None);
}
