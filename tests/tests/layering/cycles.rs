//! Cycles between sibling modules: strongly connected groups in the graph of each
//! parent's children.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::{places, CrateScan, ModPath, Reference};

/// Edges between sibling modules: parent → (from child, to child) → the references behind it.
pub type Edges = BTreeMap<ModPath, BTreeMap<(String, String), Vec<Reference>>>;

/// Sibling modules that import each other, directly or around a loop.
pub struct Cycle {
    pub parent: ModPath,
    pub members: BTreeSet<String>,
    pub example: Vec<String>,
    pub edges: Vec<((String, String), Vec<Reference>)>,
}

/// From `a::b::x` to `a::c::y`: `(a, b, c)`. `None` within one module or along one line of
/// descent (a parent and its children).
fn sibling_pair(from: &[String], to: &[String]) -> Option<(ModPath, String, String)> {
    let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
    if common == from.len() || common == to.len() {
        return None;
    }
    Some((
        from[..common].to_vec(),
        from[common].clone(),
        to[common].clone(),
    ))
}

pub fn sibling_edges(scan: &CrateScan) -> Edges {
    let mut edges = Edges::new();
    for reference in &scan.references {
        if let Some((parent, a, b)) = sibling_pair(&reference.from, &reference.to) {
            let by_pair = edges.entry(parent).or_default();
            by_pair.entry((a, b)).or_default().push(reference.clone());
        }
    }
    edges
}

pub type Adjacency = BTreeMap<String, BTreeSet<String>>;

pub fn adjacency<'a>(pairs: impl Iterator<Item = &'a (String, String)>) -> Adjacency {
    let mut adjacent = Adjacency::new();
    for (a, b) in pairs {
        adjacent.entry(a.clone()).or_default().insert(b.clone());
        adjacent.entry(b.clone()).or_default();
    }
    adjacent
}

fn reachable(adjacent: &Adjacency, start: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![start.to_string()];
    while let Some(node) = todo.pop() {
        for next in adjacent.get(&node).into_iter().flatten() {
            if seen.insert(next.clone()) {
                todo.push(next.clone());
            }
        }
    }
    seen
}

/// Groups of two or more nodes that all reach each other.
pub fn strongly_connected(adjacent: &Adjacency) -> Vec<BTreeSet<String>> {
    let reach: BTreeMap<&String, BTreeSet<String>> = adjacent
        .keys()
        .map(|node| (node, reachable(adjacent, node)))
        .collect();
    let mut placed = BTreeSet::new();
    let mut groups = Vec::new();
    for (node, from_node) in &reach {
        if placed.contains(*node) {
            continue;
        }
        let mut group: BTreeSet<String> = from_node
            .iter()
            .filter(|other| reach[other].contains(*node))
            .cloned()
            .collect();
        group.insert((*node).clone());
        placed.extend(group.iter().cloned());
        if group.len() > 1 {
            groups.push(group);
        }
    }
    groups
}

/// A shortest loop from the group's first member back to it, inside the group.
fn example_loop(adjacent: &Adjacency, group: &BTreeSet<String>) -> Vec<String> {
    let start = group.first().cloned().unwrap_or_default();
    let mut came_from: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = VecDeque::from([start.clone()]);
    while let Some(node) = queue.pop_front() {
        for next in adjacent
            .get(&node)
            .into_iter()
            .flatten()
            .filter(|n| group.contains(*n))
        {
            if *next == start {
                // Back from `node` to `start`, then turned round and closed.
                let mut path = vec![node.clone()];
                while let Some(prev) = came_from.get(path.last().expect("never empty")) {
                    path.push(prev.clone());
                }
                path.reverse();
                path.push(start.clone());
                return path;
            }
            if !came_from.contains_key(next) && *next != start {
                came_from.insert(next.clone(), node.clone());
                queue.push_back(next.clone());
            }
        }
    }
    vec![start]
}

pub fn find_cycles(scan: &CrateScan) -> Vec<Cycle> {
    let mut cycles = Vec::new();
    for (parent, by_pair) in sibling_edges(scan) {
        let adjacent = adjacency(by_pair.keys());
        for members in strongly_connected(&adjacent) {
            let edges = by_pair
                .iter()
                .filter(|((a, b), _)| members.contains(a) && members.contains(b))
                .map(|(pair, refs)| (pair.clone(), refs.clone()))
                .collect();
            let example = example_loop(&adjacent, &members);
            cycles.push(Cycle {
                parent: parent.clone(),
                members,
                example,
                edges,
            });
        }
    }
    cycles
}

fn describe_place(parent: &[String]) -> String {
    if parent.is_empty() {
        "top-level modules".to_string()
    } else {
        format!("modules inside `{}`", parent.join("::"))
    }
}

pub fn render_cycles(scan: &CrateScan, cycles: &[Cycle]) -> String {
    let mut out = String::new();
    for cycle in cycles {
        let members: Vec<&str> = cycle.members.iter().map(String::as_str).collect();
        out.push_str(&format!(
            "{}: import cycle among the {} {} (e.g. {}); its edges:\n",
            scan.name,
            describe_place(&cycle.parent),
            members.join(", "),
            cycle.example.join(" -> "),
        ));
        for ((a, b), refs) in &cycle.edges {
            let places = places(refs);
            let more = match places.len() - 1 {
                0 => String::new(),
                n => format!("  (+{n} more)"),
            };
            let first = places[0];
            out.push_str(&format!(
                "    {a} -> {b}  {}  {}{more}\n",
                first.at, first.code
            ));
        }
    }
    out
}
