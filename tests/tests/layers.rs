//! Module layering: no crate of the workspace has an import cycle between sibling modules,
//! and the router's layers point one way (`http` → services → `store`/`meta` → `domain`).
//! How the code is read, and the limits of that: `layering/mod.rs`.
//!
//! Run: `cargo test -p switchboard-e2e --test layers`. The checks that fail today on
//! purpose, with their reports: `cargo test -p switchboard-e2e --test layers -- --ignored`.

mod layering;

use std::collections::BTreeSet;

use layering::cycles::{adjacency, find_cycles, render_cycles, strongly_connected};
use layering::layers::{check_layers, render_layers, LayerTable};
use layering::workspace::{workspace_members, workspace_root, workspace_scans};
use layering::CrateScan;

/// Who may import whom among the router's top-level modules: a row per module, naming the
/// top-level modules it may import (`"*"`: any). A module with no row is reported, so a new
/// one gets its place here on purpose. Arrows run one way:
/// `startup`/`cli` → `http` → `ingest` → `calls`/`fanout`/`agents` → `store`/`meta` →
/// `telemetry` → `config` → `domain`.
#[rustfmt::skip]
const ROUTER_LAYERS: &LayerTable = &[
    // The composition root: it builds every part and wires them together.
    ("startup", &["*"]),
    // Operator commands drive the same parts as `serve`, by hand; nothing imports them.
    ("cli", &["*"]),
    // Thin handlers: extract, call one service, map the result. They hold the store handle
    // that services borrow and check signatures (`meta`), but own no SQL themselves.
    ("http", &["ingest", "calls", "fanout", "agents",
               "store", "meta", "telemetry", "config", "domain"]),
    // What happens to a verified delivery: it hands events to the call plane and queues
    // them for the routes, so it sits above those two services.
    ("ingest", &["calls", "fanout", "store", "meta", "telemetry", "config", "domain"]),
    // The call plane reaches agents through the `Publish` port, a domain trait, so it
    // needs no other service.
    ("calls", &["store", "meta", "telemetry", "config", "domain"]),
    // Routes, outbound requests and delivery workers over the store's queue.
    ("fanout", &["store", "meta", "telemetry", "config", "domain"]),
    // Identities, sessions and the hub: no HTTP types (an extractor's error is its own,
    // mapped to a response in `http::error`), and call events arrive as domain `Push`
    // values, not as the call plane's types.
    ("agents", &["store", "meta", "telemetry", "config", "domain"]),
    // Durable storage of domain values; it knows no service and not Meta's wire.
    ("store", &["telemetry", "config", "domain"]),
    // Meta's wire (signatures, event splitting, the Graph client) on domain values; beside
    // the store, not above or below it.
    ("meta", &["telemetry", "config", "domain"]),
    // Logs and metrics: used by every layer above, so it may read only settings and values.
    ("telemetry", &["config", "domain"]),
    // Settings parse into domain values (route names, event selectors, secrets) and are
    // read by every layer, so they import nothing else. Two rows: it may become `settings`.
    ("config", &["domain"]),
    ("settings", &["domain"]),
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
#[ignore = "the router's module cycles (and wa-sim's and bench's) are being removed now; \
            see them with --ignored"]
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
#[ignore = "the router is being restructured into one-way layers over a new `domain` \
            module; remove this once that lands"]
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
