//! The checker itself, on small crates written inline.

use std::path::PathBuf;

use super::cycles::{find_cycles, render_cycles, sibling_edges};
use super::layers::{check_layers, render_layers, LayerTable};
use super::{scan_crate, CrateScan, ModPath, SourceFile};

fn scan_of(files: &[(&str, &str)]) -> CrateScan {
    let files = files
        .iter()
        .map(|(rel, text)| SourceFile {
            shown: format!("src/{rel}"),
            rel: PathBuf::from(rel),
            text: text.to_string(),
        })
        .collect();
    scan_crate("example", files)
}

fn path(text: &str) -> ModPath {
    text.split("::")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn references_from(scan: &CrateScan, from: &str) -> Vec<(ModPath, String)> {
    scan.references
        .iter()
        .filter(|reference| reference.from == path(from))
        .map(|reference| (reference.to.clone(), reference.at.clone()))
        .collect()
}

#[test]
fn two_modules_importing_each_other_are_a_cycle() {
    let scan = scan_of(&[
        ("lib.rs", "pub mod a;\npub mod b;\n"),
        ("a.rs", "use crate::b::B;\npub struct A;\n"),
        (
            "b.rs",
            "pub struct B;\n\npub fn make() -> crate::a::A {\n    crate::a::A\n}\n",
        ),
    ]);
    let cycles = find_cycles(&scan);
    assert_eq!(cycles.len(), 1);
    let expected = [
        "example: import cycle among the top-level modules a, b (e.g. a -> b -> a); its edges:",
        "    a -> b  src/a.rs:1  use crate::b::B;",
        "    b -> a  src/b.rs:3  pub fn make() -> crate::a::A {  (+1 more)",
        "",
    ];
    assert_eq!(render_cycles(&scan, &cycles), expected.join("\n"));
}

#[test]
fn a_cycle_between_nested_siblings_is_reported_inside_their_parent() {
    let scan = scan_of(&[
        ("lib.rs", "pub mod x;\n"),
        ("x/mod.rs", "pub mod p;\npub mod q;\n"),
        ("x/p.rs", "use super::q::Q;\npub struct P;\n"),
        ("x/q/mod.rs", "pub mod deep;\n"),
        ("x/q/deep.rs", "use crate::x::p::P;\n"),
    ]);
    let cycles = find_cycles(&scan);
    assert_eq!(cycles.len(), 1);
    assert_eq!(cycles[0].parent, path("x"));
    assert!(render_cycles(&scan, &cycles).contains("src/x/q/deep.rs:1"));
}

#[test]
fn a_child_importing_from_its_parent_is_not_a_cycle() {
    let scan = scan_of(&[
        ("lib.rs", "pub mod a;\n"),
        (
            "a/mod.rs",
            "pub mod b;\npub mod c;\nuse self::b::Thing;\npub struct Shared;\n",
        ),
        ("a/b.rs", "use super::Shared;\npub struct Thing;\n"),
        (
            "a/c.rs",
            "use super::{b::Thing, Shared};\nuse crate::a::Shared as Again;\n",
        ),
    ]);
    assert!(find_cycles(&scan).is_empty());
    let edges = sibling_edges(&scan);
    let inside_a: Vec<&(String, String)> = edges[&path("a")].keys().collect();
    assert_eq!(inside_a, [&("c".to_string(), "b".to_string())]);
    assert_eq!(edges.len(), 1, "a parent and its children are not siblings");
}

#[test]
fn an_item_re_exported_by_the_parent_leads_to_the_sibling_that_defines_it() {
    let scan = scan_of(&[
        ("lib.rs", "pub mod a;\n"),
        (
            "a/mod.rs",
            "mod b;\nmod c;\npub use b::Thing;\nuse self::c::Other as Renamed;\n",
        ),
        ("a/b.rs", "use super::Renamed;\npub struct Thing;\n"),
        ("a/c.rs", "use super::Thing;\npub struct Other;\n"),
    ]);
    let cycles = find_cycles(&scan);
    assert_eq!(cycles.len(), 1);
    let report = render_cycles(&scan, &cycles);
    assert!(
        report.contains("b -> c  src/a/b.rs:1  use super::Renamed;"),
        "{report}"
    );
    assert!(
        report.contains("c -> b  src/a/c.rs:1  use super::Thing;"),
        "{report}"
    );
}

#[test]
fn every_path_of_a_grouped_import_is_followed() {
    let scan = scan_of(&[
        ("lib.rs", ""),
        ("a.rs", ""),
        ("b/mod.rs", ""),
        ("b/c.rs", ""),
        ("e.rs", ""),
        (
            "x.rs",
            "use crate::{\n    a,\n    b::c::{self, D},\n    e::*,\n};\nuse std::fmt;\n",
        ),
    ]);
    let found = references_from(&scan, "x");
    let expected = [
        (path("a"), "src/x.rs:2".to_string()),
        (path("b::c"), "src/x.rs:3".to_string()),
        (path("e"), "src/x.rs:4".to_string()),
    ];
    assert_eq!(found, expected);
}

#[test]
fn imports_in_cfg_test_code_are_ignored() {
    let scan = scan_of(&[
        ("lib.rs", ""),
        (
            "a.rs",
            "pub fn f() {}\n#[cfg(test)]\nmod helpers;\n\n#[cfg(test)]\nmod tests {\n    \
             use crate::b::g;\n    fn nested() { if true { crate::b::g() } }\n}\n",
        ),
        ("a/helpers.rs", "use crate::b::g;\n"),
        (
            "b.rs",
            "use crate::a::f;\npub fn g() {}\n#[cfg(test)]\nuse crate::a::helpers;\n",
        ),
    ]);
    assert!(find_cycles(&scan).is_empty());
    assert!(references_from(&scan, "a").is_empty());
    assert!(!scan.modules.contains(&path("a::helpers")));
    assert_eq!(
        references_from(&scan, "b"),
        [(path("a"), "src/b.rs:1".to_string())]
    );
}

#[test]
fn comments_and_strings_name_no_modules() {
    let text = r##"// use crate::b;
/// [`crate::b::G`]
/* crate::b /* nested */ crate::b */
const S: &str = "crate::b::g \" crate::b";
const R: &[u8] = br#"crate::b "# ;
fn f<'a>(x: &'a str) -> [char; 2] { ['"', '\''] }
use crate::b::G;
"##;
    let scan = scan_of(&[("lib.rs", ""), ("a.rs", text), ("b.rs", "")]);
    assert_eq!(
        references_from(&scan, "a"),
        [(path("b"), "src/a.rs:7".to_string())]
    );
}

#[test]
fn an_import_against_the_layers_is_reported_with_its_line() {
    let scan = scan_of(&[
        ("lib.rs", ""),
        (
            "domain.rs",
            "pub struct Call;\n\nfn f(_: crate::store::Store) {}\n",
        ),
        (
            "store/mod.rs",
            "use crate::domain::Call;\npub struct Store;\n",
        ),
        ("extra.rs", "use crate::domain::Call;\n"),
    ]);
    let table: &LayerTable = &[("store", &["domain"]), ("domain", &[])];
    let report = render_layers(&scan, &check_layers(&scan, table), table);
    let expected = [
        "example: top-level module `extra` has no row in the layer table; give it one",
        "example: `domain` imports `store`, but may import only: nothing of the crate",
        "    src/domain.rs:3  fn f(_: crate::store::Store) {}",
        "",
    ];
    assert_eq!(report, expected.join("\n"));
}
