//! How the layering checks read the code: a plain-text scan of a crate's `src/`, no
//! compiler involved.
//!
//! Comments and string literals are blanked and `#[cfg(test)]` items dropped, since tests
//! may import anything ([`lexer`]). Every `use crate::…`, `use super::…`, `use self::…`
//! (groups included) and every inline `crate::…`/`super::…` path is then resolved to the
//! deepest module it names, giving one [`Reference`] per place; a name the module imported
//! or re-exported with `use` is followed to where it comes from. A reference from `a::b::x`
//! to `a::c::y` is the edge `b → c` among the children of `a` ([`cycles`]); a module
//! reaching into its own parent (`use super::Item`) or its own children is not an edge, so
//! only siblings can form a cycle. [`layers`] judges references against a table.
//!
//! Limits of a text scan: `super` inside a non-test inline `mod x { … }` is read as if it
//! were at file level; `#[path]` attributes are not followed; macros are not expanded; and
//! names that come in through a glob (`use super::*`, `pub use b::*`) count as the globbed
//! module's own. None of these hides an edge in this repository's `src/` today.

pub mod cycles;
pub mod layers;
pub mod lexer;
mod tests;
pub mod workspace;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use lexer::NamedPath;

/// A module's path from the crate root: `["store", "sqlite"]`; empty for the root.
pub type ModPath = Vec<String>;

/// One file of a crate: its path as shown in messages, its path under the crate's root
/// directory (`lib.rs`, `a/b.rs`), and its text.
pub struct SourceFile {
    pub shown: String,
    pub rel: PathBuf,
    pub text: String,
}

/// A place in the code that makes module `from` depend on module `to`.
#[derive(Debug, Clone)]
pub struct Reference {
    pub from: ModPath,
    pub to: ModPath,
    /// `file:line`.
    pub at: String,
    /// The line itself, trimmed.
    pub code: String,
}

/// One crate (a library, or a binary with its own root) as the scan sees it.
pub struct CrateScan {
    pub name: String,
    pub modules: BTreeSet<ModPath>,
    pub references: Vec<Reference>,
}

/// `a/b.rs` and `a/b/mod.rs` are `a::b`; `lib.rs` and `main.rs` are the root.
pub fn module_path(rel: &Path) -> Option<ModPath> {
    if rel.extension()? != "rs" {
        return None;
    }
    let mut parts: ModPath = rel
        .with_extension("")
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    match parts.last().map(String::as_str) {
        Some("mod") => drop(parts.pop()),
        Some("lib" | "main") if parts.len() == 1 => drop(parts.pop()),
        _ => {}
    }
    Some(parts)
}

/// The absolute path `named` points to, seen from `module`; `None` outside the crate. A
/// `use` path may also start at a child module (`use sqlite::SqliteStore` in `store`).
fn resolve(module: &[String], named: &[String], modules: &BTreeSet<ModPath>) -> Option<ModPath> {
    let first = named.first()?;
    let (mut base, mut rest) = match first.as_str() {
        "crate" => (Vec::new(), &named[1..]),
        "self" => (module.to_vec(), &named[1..]),
        "super" => (module.to_vec(), named),
        _ if modules.contains(&[module, std::slice::from_ref(first)].concat()) => {
            (module.to_vec(), named)
        }
        _ => return None,
    };
    while rest.first().is_some_and(|segment| segment == "super") {
        base.pop()?;
        rest = &rest[1..];
    }
    base.extend(rest.iter().filter(|segment| *segment != "self").cloned());
    Some(base)
}

/// The longest prefix of `path` that is a module of the crate (at worst the root).
fn deepest_module(path: &[String], modules: &BTreeSet<ModPath>) -> ModPath {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|prefix| modules.contains(prefix))
        .unwrap_or_default()
}

/// The names each module brings into scope with `use`, and the paths they stand for: how
/// `use super::Item` reaches the sibling that the parent's `pub use b::Item` names.
type Bindings = BTreeMap<(ModPath, String), ModPath>;

fn bindings(parsed: &[ParsedFile], modules: &BTreeSet<ModPath>) -> Bindings {
    let mut bindings = Bindings::new();
    for file in parsed {
        for named in &file.paths {
            let Some(name) = &named.binds else { continue };
            if let Some(path) = resolve(&file.module, &named.segments, modules) {
                bindings.insert((file.module.clone(), name.clone()), path);
            }
        }
    }
    bindings
}

/// The module an absolute path lands in, through the `use` names it passes (a few hops at
/// most, so a loop of imports cannot hang the scan).
fn landing_module(mut path: ModPath, modules: &BTreeSet<ModPath>, bindings: &Bindings) -> ModPath {
    for _ in 0..8 {
        let module = deepest_module(&path, modules);
        let Some(name) = path.get(module.len()) else {
            return module;
        };
        let Some(target) = bindings.get(&(module.clone(), name.clone())) else {
            return module;
        };
        path = [target.as_slice(), &path[module.len() + 1..]].concat();
    }
    deepest_module(&path, modules)
}

struct ParsedFile {
    shown: String,
    module: ModPath,
    lines: Vec<String>,
    paths: Vec<NamedPath>,
}

/// Reads one crate's files (paths relative to its root directory) into modules and
/// references. Files of `#[cfg(test)] mod name;` children are left out.
pub fn scan_crate(name: &str, files: Vec<SourceFile>) -> CrateScan {
    let mut parsed = Vec::new();
    let mut test_only = BTreeSet::new();
    for file in files {
        let Some(module) = module_path(&file.rel) else {
            continue;
        };
        let (paths, test_children) = lexer::read_paths(&file.text);
        for child in test_children {
            test_only.insert([module.clone(), vec![child]].concat());
        }
        let lines = file
            .text
            .lines()
            .map(|line| line.trim().to_string())
            .collect();
        parsed.push(ParsedFile {
            shown: file.shown,
            module,
            lines,
            paths,
        });
    }
    parsed.retain(|file| !test_only.iter().any(|test| file.module.starts_with(test)));
    let mut modules: BTreeSet<ModPath> = parsed.iter().map(|file| file.module.clone()).collect();
    modules.insert(Vec::new());
    let bindings = bindings(&parsed, &modules);
    let references = parsed
        .iter()
        .flat_map(|file| file_references(file, &modules, &bindings))
        .collect();
    CrateScan {
        name: name.to_string(),
        modules,
        references,
    }
}

/// The references of one file; a line naming one module twice (`use a::{B, C}`) counts once.
fn file_references(
    file: &ParsedFile,
    modules: &BTreeSet<ModPath>,
    bindings: &Bindings,
) -> Vec<Reference> {
    let mut references: Vec<Reference> = file
        .paths
        .iter()
        .filter_map(|named| {
            let path = resolve(&file.module, &named.segments, modules)?;
            Some(Reference {
                from: file.module.clone(),
                to: landing_module(path, modules, bindings),
                at: format!("{}:{}", file.shown, named.line),
                code: file.lines.get(named.line - 1).cloned().unwrap_or_default(),
            })
        })
        .collect();
    references.dedup_by(|a, b| a.to == b.to && a.at == b.at);
    references
}

/// Each place once, even when one line names several modules of one edge.
pub fn places(refs: &[Reference]) -> Vec<&Reference> {
    let mut places: Vec<&Reference> = refs.iter().collect();
    places.dedup_by(|a, b| a.at == b.at);
    places
}
