//! The shape of the code: the top-level modules of `src/` import only downwards (no two import
//! each other, directly or round a longer circle), and every query is in a `db.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`None` for the crate root).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let first = file.strip_prefix(src).ok()?.components().next()?;
    let name = first
        .as_os_str()
        .to_str()?
        .trim_end_matches(".rs")
        .to_owned();
    (name != "lib" && name != "main").then_some(name)
}

/// The source without its unit tests, which may reach anywhere.
fn without_tests(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |at| &text[..at])
}

/// The top-level modules named after `crate::` in `text`.
fn imported(text: &str) -> BTreeSet<String> {
    text.match_indices("crate::")
        .filter_map(|(at, _)| {
            let rest = &text[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

/// Modules that can reach themselves through the import graph.
fn in_circles(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    let reaches = |from: &String| {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&String> = graph[from].iter().collect();
        while let Some(next) = todo.pop() {
            if seen.insert(next.clone()) {
                todo.extend(graph.get(next).into_iter().flatten());
            }
        }
        seen
    };
    graph
        .keys()
        .filter(|module| reaches(module).contains(*module))
        .cloned()
        .collect()
}

#[test]
fn modules_import_only_downwards_and_queries_live_in_db_files() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut queries_outside = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("source is readable");
        if file.file_name().is_some_and(|n| n != "db.rs")
            && ["sqlx::query", "query!(", "query_as!(", "query_scalar!("]
                .iter()
                .any(|q| text.contains(q))
        {
            queries_outside.push(file.display().to_string());
        }
        if let Some(module) = module_of(&src, file) {
            graph
                .entry(module.clone())
                .or_default()
                .extend(imported(without_tests(&text)));
        }
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for (module, imports) in &mut graph {
        imports.retain(|i| i != module && modules.contains(i));
    }
    assert!(graph.len() > 10, "found the modules: {:?}", graph.keys());
    assert_eq!(in_circles(&graph), BTreeSet::new(), "modules in circles");
    assert_eq!(
        queries_outside,
        Vec::<String>::new(),
        "queries outside a db.rs"
    );
}

#[test]
fn a_circle_is_found() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(m, i)| (m.to_owned(), i.into_iter().map(str::to_owned).collect()))
    .collect();
    let expected: BTreeSet<String> = ["a", "b", "c"].map(str::to_owned).into();
    assert_eq!(in_circles(&graph), expected);
}
