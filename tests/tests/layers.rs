//! Module layering: no crate of the workspace has an import cycle between sibling modules,
//! and the router's layers point one way (`http` → services → `store`/`meta` → `domain`).
//! How the code is read, and the limits of that: `layering/mod.rs`.
//!
//! Run: `cargo test -p switchboard-e2e --test layers` (part of `make test`).

mod layering;

use std::collections::BTreeSet;

use layering::cycles::{adjacency, find_cycles, render_cycles, strongly_connected};
use layering::layers::{check_layers, render_layers, LayerTable};
use layering::workspace::{workspace_members, workspace_root, workspace_scans};
use layering::CrateScan;

/// Who may import whom among the router's top-level modules: a row per module, naming the
/// top-level modules it may import (`"*"`: any). A module with no row is reported, so a new
/// one gets its place here on purpose. Arrows run one way:
/// `startup`/`cli` → `config` and `http` → `state` → services (`ingest` → `calls`/`fanout`,
/// `agents` → `calls`) → `store`/`meta` → `telemetry` → `domain`.
#[rustfmt::skip]
const ROUTER_LAYERS: &LayerTable = &[
    // The composition root: it builds every part and wires them together.
    ("startup", &["*"]),
    // Operator commands drive the same parts as `serve`, by hand; nothing imports them.
    ("cli", &["*"]),
    // Settings parse the file into the services' own typed values (routes, agents, the
    // permission style, app secrets), so they sit above the services; only the composition
    // root and the command line read them.
    ("config", &["ingest", "calls", "fanout", "agents", "meta", "domain"]),
    // Thin handlers: extract, call one service through the shared state, map the result.
    // `meta` only for the signature header's name.
    ("http", &["state", "ingest", "calls", "fanout", "agents",
               "store", "meta", "telemetry", "domain"]),
    // The services every handler shares, built once by `startup`.
    ("state", &["ingest", "calls", "fanout", "agents", "store", "telemetry", "domain"]),
    // What happens to a webhook: it hands events to the call plane and queues them for the
    // routes, so it sits above those two services.
    ("ingest", &["calls", "fanout", "store", "meta", "telemetry", "domain"]),
    // Identities, sessions, the hub and the socket protocol: a (re)connecting socket's
    // replay is read from the call plane, so agents sit above calls.
    ("agents", &["calls", "store", "meta", "telemetry", "domain"]),
    // The call plane reaches agents through the `Publish` port, a domain trait, so it
    // needs no other service.
    ("calls", &["store", "meta", "telemetry", "domain"]),
    // Routes, outbound requests and delivery workers over the store's queue.
    ("fanout", &["store", "meta", "telemetry", "domain"]),
    // Durable storage of domain values; it knows no service and not Meta's wire.
    ("store", &["telemetry", "domain"]),
    // Meta's wire (signatures, event splitting, the Graph client) on domain values; beside
    // the store, not above or below it.
    ("meta", &["telemetry", "domain"]),
    // Logs and metrics: used by every layer above, so it may read only values.
    ("telemetry", &["domain"]),
    // The floor: plain values and pure rules, importing nothing of ours.
    ("domain", &[]),
];

fn router_scan() -> CrateScan {
    workspace_scans()
        .into_iter()
        .find(|scan| scan.name.ends_with("(router/src)"))
        .expect("the router's sources are scanned")
}

// ---- The checks ----

#[test]
fn no_crate_has_a_module_cycle() {
    let report: String = workspace_scans()
        .iter()
        .map(|scan| render_cycles(scan, &find_cycles(scan)))
        .collect();
    assert!(
        report.is_empty(),
        "module cycles (a reference from a::b::x to a::c::y is the edge b -> c inside a):\n{report}"
    );
}

#[test]
fn router_layers_point_one_way() {
    let scan = router_scan();
    let report = render_layers(&scan, &check_layers(&scan, ROUTER_LAYERS), ROUTER_LAYERS);
    assert!(
        report.is_empty(),
        "imports against the router's layers (edit ROUTER_LAYERS in tests/tests/layers.rs \
         only if the layering itself changes):\n{report}"
    );
}

#[test]
fn every_workspace_crate_is_scanned() {
    let scans = workspace_scans();
    for member in workspace_members(&workspace_root()) {
        let label = format!("({member}/src)");
        let scan = scans
            .iter()
            .find(|scan| scan.name.ends_with(&label))
            .unwrap_or_else(|| panic!("no scan of {member}/src"));
        assert!(
            scan.modules.len() > 1,
            "{}: no module besides the root",
            scan.name
        );
    }
    let router = router_scan();
    assert!(router.modules.contains(&vec!["http".to_string()]));
    assert!(
        !router.references.is_empty(),
        "the router's imports were not found"
    );
}

#[test]
fn the_router_layer_table_points_one_way() {
    let rows: BTreeSet<&str> = ROUTER_LAYERS.iter().map(|(name, _)| *name).collect();
    let mut pairs = Vec::new();
    for (from, may) in ROUTER_LAYERS.iter().filter(|(_, may)| !may.contains(&"*")) {
        for to in *may {
            assert!(
                rows.contains(to),
                "ROUTER_LAYERS: `{from}` may import `{to}`, which has no row"
            );
            pairs.push((from.to_string(), to.to_string()));
        }
    }
    let loops = strongly_connected(&adjacency(pairs.iter()));
    assert!(loops.is_empty(), "ROUTER_LAYERS allows loops: {loops:?}");
}

/// A file this long usually holds more than one job: split it by concern.
const MAX_ROUTER_FILE_LINES: usize = 600;

#[test]
fn no_router_source_file_is_over_600_lines() {
    let mut long = Vec::new();
    let mut dirs = vec![workspace_root().join("router/src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("router/src is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("a source file is readable");
                let lines = text.lines().count();
                if lines > MAX_ROUTER_FILE_LINES {
                    long.push(format!("{} ({lines} lines)", path.display()));
                }
            }
        }
    }
    assert!(
        long.is_empty(),
        "router source files over {MAX_ROUTER_FILE_LINES} lines: {long:?}"
    );
}
