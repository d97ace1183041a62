//! template.yaml, the routes table and the function crates agree.

use std::collections::BTreeSet;

use sluice_shared::routes::ROUTES;

/// (binary, method, path) for each HttpApi event, and every binary declared.
fn read_template() -> (BTreeSet<(String, String, String)>, BTreeSet<String>) {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    let mut routes = BTreeSet::new();
    let mut binaries = BTreeSet::new();
    let (mut binary, mut method) = (String::new(), String::new());
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let line = line.trim();
        if indent == 2 && line.ends_with(':') {
            binary.clear();
        }
        if let Some(b) = line.strip_prefix("Binary:") {
            binary = b.trim().to_string();
            binaries.insert(binary.clone());
        } else if let Some(m) = line.strip_prefix("Method:") {
            method = m.trim().to_string();
        } else if let Some(p) = line.strip_prefix("Path:") {
            assert!(!binary.is_empty(), "route {method} {p} before its function's Binary");
            routes.insert((binary.clone(), method.clone(), p.trim().to_string()));
        }
    }
    (routes, binaries)
}

#[test]
fn every_route_is_in_the_template_and_back() {
    let (in_template, _) = read_template();
    let in_table: BTreeSet<(String, String, String)> = ROUTES
        .iter()
        .map(|r| (r.function.to_string(), r.method.to_string(), r.path.to_string()))
        .collect();
    assert_eq!(in_template, in_table);
}

#[test]
fn every_function_crate_has_a_resource_and_back() {
    let (_, binaries) = read_template();
    let crates: BTreeSet<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../functions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(binaries, crates);
}
