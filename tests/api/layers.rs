//! The layers of `src/` (ARCHITECTURE.md, "Layers"), read from the code. `src/lib.rs` lists
//! the top-level modules from the bottom layer up, a blank line between layers; a module
//! may import only from a lower layer. Resolvers never reach the cross-tenant steps, and
//! only the GraphQL and HTTP layers (and `app`, which starts the server) know the
//! async-graphql and poem frameworks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Each top-level module's layer, 0 the lowest, as `src/lib.rs` lists them.
fn layers() -> HashMap<String, usize> {
    let lib = std::fs::read_to_string(source_root().join("lib.rs")).unwrap();
    let mut layers = HashMap::new();
    let mut layer = 0;
    let mut layer_has_modules = false;
    for line in lib.lines() {
        if let Some(name) = line
            .strip_prefix("pub mod ")
            .and_then(|rest| rest.strip_suffix(';'))
        {
            layers.insert(name.to_owned(), layer);
            layer_has_modules = true;
        } else if line.trim().is_empty() && layer_has_modules {
            layer += 1;
            layer_has_modules = false;
        }
    }
    layers
}

/// Every `.rs` file under `src/` with the top-level module it belongs to (`main` for the
/// binary), and its code with comments and string literals blanked out.
fn sources() -> Vec<(String, String, String)> {
    let root = source_root();
    let mut files = Vec::new();
    let mut pending = vec![root.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let relative = path.strip_prefix(&root).unwrap();
                let first = relative
                    .components()
                    .next()
                    .unwrap()
                    .as_os_str()
                    .to_str()
                    .unwrap();
                let module = first.trim_end_matches(".rs").to_owned();
                let code = code_only(&std::fs::read_to_string(&path).unwrap());
                files.push((relative.display().to_string(), module, code));
            }
        }
    }
    files
}

/// The text with `//` comments and the contents of string literals removed, so a doc line
/// or a log filter naming a module is not taken for an import.
fn code_only(text: &str) -> String {
    let mut code = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_string = false;
        let mut escaped = false;
        let mut previous = ' ';
        for c in line.chars() {
            if in_string {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_string = false;
                    code.push('"');
                }
            } else if c == '/' && previous == '/' {
                code.pop();
                break;
            } else {
                if c == '"' && previous != '\'' {
                    in_string = true;
                }
                code.push(c);
            }
            previous = c;
        }
        code.push('\n');
    }
    code
}

/// The top-level modules `code` names through `crate::`, `crate::{a, b::c}` included.
fn crate_imports(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item_start = true;
            for (at, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_alphanumeric() || c == '_') => {
                        found.push(identifier(&group[at..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            found.push(identifier(rest));
        }
    }
    found
}

fn identifier(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

#[test]
fn imports_point_down_the_layers() {
    let layers = layers();
    assert!(layers.len() >= 10, "src/lib.rs lists too few modules: {layers:?}");
    let mut up = Vec::new();
    for (file, module, code) in sources() {
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(&own) = layers.get(&module) else {
            up.push(format!("{file}: module `{module}` is not listed in src/lib.rs"));
            continue;
        };
        for imported in crate_imports(&code) {
            if imported == module {
                continue;
            }
            match layers.get(&imported) {
                Some(&layer) if layer < own => {}
                Some(&layer) => up.push(format!(
                    "{file}: `{module}` (layer {own}) imports `{imported}` (layer {layer})"
                )),
                None => up.push(format!("{file}: imports `{imported}`, not listed in src/lib.rs")),
            }
        }
    }
    assert!(
        up.is_empty(),
        "imports that point up or sideways:\n{}",
        up.join("\n")
    );
}

#[test]
fn a_file_naming_an_upper_module_is_caught() {
    let code = code_only(
        "use crate::graphql::Schema; // crate::http in a comment\nuse crate::{ids::OrgId, tenancy::{Db, Scoped}};\nlet s = \"crate::app\";",
    );
    assert_eq!(crate_imports(&code), ["graphql", "ids", "tenancy"]);
}

#[test]
fn resolvers_never_reach_the_cross_tenant_steps() {
    let reaching: Vec<_> = sources()
        .into_iter()
        .filter(|(_, module, code)| module == "graphql" && code.contains("unscoped"))
        .map(|(file, ..)| file)
        .collect();
    assert!(
        reaching.is_empty(),
        "resolvers call tenancy::unscoped; put the step behind a domain function: {reaching:?}"
    );
}

#[test]
fn only_the_graphql_and_http_layers_know_the_frameworks() {
    let knowing: Vec<_> = sources()
        .into_iter()
        .filter(|(_, module, _)| !["graphql", "http", "app", "main"].contains(&module.as_str()))
        .filter(|(_, _, code)| {
            code.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .any(|word| word == "async_graphql" || word == "poem")
        })
        .map(|(file, ..)| file)
        .collect();
    assert!(
        knowing.is_empty(),
        "async-graphql or poem used outside graphql/ and http/: {knowing:?}"
    );
}
