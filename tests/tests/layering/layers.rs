//! Imports between top-level modules judged against a table of who may import whom.

use std::collections::{BTreeMap, BTreeSet};

use super::{places, CrateScan, Reference};

/// A row per top-level module: its name and the top-level modules it may import (`"*"`:
/// any).
pub type LayerTable = [(&'static str, &'static [&'static str])];

/// Imports between top-level modules that the table does not allow, and top-level modules
/// with no row (whose imports are then not judged).
pub struct LayerReport {
    pub violations: BTreeMap<(String, String), Vec<Reference>>,
    pub without_row: BTreeSet<String>,
}

pub fn check_layers(scan: &CrateScan, table: &LayerTable) -> LayerReport {
    let mut report = LayerReport {
        violations: BTreeMap::new(),
        without_row: BTreeSet::new(),
    };
    for module in scan.modules.iter().filter(|module| module.len() == 1) {
        if !table.iter().any(|(name, _)| *name == module[0]) {
            report.without_row.insert(module[0].clone());
        }
    }
    for reference in &scan.references {
        let (Some(from), Some(to)) = (reference.from.first(), reference.to.first()) else {
            continue;
        };
        let allowed = table
            .iter()
            .find(|(name, _)| name == from)
            .is_some_and(|(_, may)| may.contains(&"*") || may.contains(&to.as_str()));
        if from != to && !allowed && !report.without_row.contains(from) {
            let pair = (from.clone(), to.clone());
            report
                .violations
                .entry(pair)
                .or_default()
                .push(reference.clone());
        }
    }
    report
}

pub fn render_layers(scan: &CrateScan, report: &LayerReport, table: &LayerTable) -> String {
    let mut out = String::new();
    for module in &report.without_row {
        out.push_str(&format!(
            "{}: top-level module `{module}` has no row in the layer table; give it one\n",
            scan.name
        ));
    }
    for ((from, to), refs) in &report.violations {
        let may = match table.iter().find(|(name, _)| name == from) {
            Some((_, may)) if !may.is_empty() => may.join(", "),
            _ => "nothing of the crate".to_string(),
        };
        out.push_str(&format!(
            "{}: `{from}` imports `{to}`, but may import only: {may}\n",
            scan.name
        ));
        for place in places(refs) {
            out.push_str(&format!("    {}  {}\n", place.at, place.code));
        }
    }
    out
}
