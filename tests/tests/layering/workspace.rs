//! The workspace on disk: its members, and each crate's source files.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::{scan_crate, CrateScan, SourceFile};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace root")
        .to_path_buf()
}

/// The `members = [...]` of the workspace's Cargo.toml.
pub fn workspace_members(root: &Path) -> Vec<String> {
    let manifest =
        fs::read_to_string(root.join("Cargo.toml")).expect("read the workspace manifest");
    let after = &manifest[manifest.find("members").expect("a members list")..];
    let list = &after[after.find('[').expect("[")..=after.find(']').expect("]")];
    list.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn package_name(member_dir: &Path) -> String {
    let manifest = fs::read_to_string(member_dir.join("Cargo.toml")).expect("read a manifest");
    manifest
        .lines()
        .find_map(|line| line.trim().strip_prefix("name").map(str::trim))
        .and_then(|rest| rest.strip_prefix('='))
        .map(|name| name.trim().trim_matches('"').to_string())
        .expect("a package name")
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in fs::read_dir(&dir).expect("list a source directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn source_file(root: &Path, path: &Path, rel: PathBuf) -> SourceFile {
    let shown = path
        .strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string();
    let text = fs::read_to_string(path).expect("read a source file");
    SourceFile { shown, rel, text }
}

/// Every crate of the workspace: each member's `src/` (library and main binary together),
/// and each `src/bin/` target on its own, since `crate::` there names the binary.
pub fn workspace_scans() -> Vec<CrateScan> {
    let root = workspace_root();
    let mut scans = Vec::new();
    for member in workspace_members(&root) {
        let dir = root.join(&member);
        let (src, bins) = (dir.join("src"), dir.join("src").join("bin"));
        let package = package_name(&dir);
        let main_files = rust_files(&src)
            .into_iter()
            .filter(|path| !path.starts_with(&bins))
            .map(|path| {
                let rel = path.strip_prefix(&src).expect("under src").to_path_buf();
                source_file(&root, &path, rel)
            })
            .collect();
        scans.push(scan_crate(&format!("{package} ({member}/src)"), main_files));
        if bins.is_dir() {
            scans.extend(binary_scans(&root, &package, &bins));
        }
    }
    scans
}

fn binary_scans(root: &Path, package: &str, bins: &Path) -> Vec<CrateScan> {
    let mut by_target: BTreeMap<String, Vec<SourceFile>> = BTreeMap::new();
    for path in rust_files(bins) {
        let rel = path
            .strip_prefix(bins)
            .expect("under src/bin")
            .to_path_buf();
        let mut parts = rel.iter();
        let first = parts.next().expect("a file name").to_string_lossy();
        let (target, rel) = match parts.as_path() {
            rest if rest.as_os_str().is_empty() => {
                (first.trim_end_matches(".rs").to_string(), "main.rs".into())
            }
            rest => (first.to_string(), rest.to_path_buf()),
        };
        by_target
            .entry(target)
            .or_default()
            .push(source_file(root, &path, rel));
    }
    by_target
        .into_iter()
        .map(|(target, files)| scan_crate(&format!("{package} (bin {target})"), files))
        .collect()
}
