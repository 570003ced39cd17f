//! The service layer's boundary, checked: it must not depend on, nor name, the HTTP framework,
//! the template engine, configuration loading or the root package.

use std::path::{Path, PathBuf};

const FORBIDDEN_DEPENDENCIES: &[&str] = &[
    "axum",
    "axum-extra",
    "minijinja",
    "tower",
    "tower-http",
    "figment",
    "clap",
    "governor",
    "prometheus-client",
    "sqlx",
    "techpass",
];
const FORBIDDEN_PATHS: &[&str] = &[
    "axum",
    "minijinja",
    "tower",
    "figment",
    "techpass::",
    "sqlx",
];

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The dependency names of `[dependencies]` (and `[dependencies.NAME]` tables) of a manifest.
fn dependencies(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_deps = false;
    for line in manifest.lines().map(str::trim) {
        if let Some(table) = line.strip_prefix('[') {
            let table = table.trim_end_matches(']');
            in_deps = table == "dependencies";
            if let Some(name) = table.strip_prefix("dependencies.") {
                names.push(name.to_string());
            }
            continue;
        }
        if in_deps {
            if let Some((name, _)) = line.split_once('=') {
                let name = name.trim();
                if !name.is_empty() && !name.starts_with('#') {
                    names.push(name.trim_end_matches(".workspace").to_string());
                }
            }
        }
    }
    names
}

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

#[test]
fn the_manifest_names_no_transport_or_wiring_crate() {
    let manifest = std::fs::read_to_string(manifest_dir().join("Cargo.toml")).unwrap();
    let deps = dependencies(&manifest);
    assert!(deps.iter().any(|d| d == "techpass-store"), "{deps:?}");
    for dep in &deps {
        assert!(
            !FORBIDDEN_DEPENDENCIES.contains(&dep.as_str()),
            "crates/service depends on {dep}"
        );
    }
}

#[test]
fn no_source_line_names_a_transport_or_wiring_crate() {
    let mut files = Vec::new();
    rust_files(&manifest_dir().join("src"), &mut files);
    assert!(files.len() > 3, "{files:?}");
    for file in files.iter().filter(|f| !f.ends_with("boundaries.rs")) {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for path in FORBIDDEN_PATHS {
                let used = code.contains(&format!("use {path}"))
                    || code.contains(&format!("{path}::"))
                    || code.contains(&format!("::{path}"));
                assert!(!used, "{}:{}: {line}", file.display(), n + 1);
            }
        }
    }
}

#[test]
fn the_checks_would_notice() {
    let manifest = "[package]\nname = \"x\"\n[dependencies]\naxum.workspace = true\nserde = \"1\"\n[dependencies.minijinja]\nversion = \"2\"\n[dev-dependencies]\ntokio = \"1\"\n";
    assert_eq!(dependencies(manifest), vec!["axum", "serde", "minijinja"]);
}
