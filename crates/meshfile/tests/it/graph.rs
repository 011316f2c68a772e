//! `meshfile graph`: DOT that Graphviz draws, JSON valid against its schema, a page that
//! headless Chromium renders and whose clicks highlight what a node reaches; blast radius.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use crate::browser::{self, Browser};
use crate::mesh::{generated, three_services};
use crate::tools::{run, tool};
use crate::{Test, workspace};

/// `graph` of `dir` (relative to the test's directory) in `format`; its standard output.
fn graph(t: &Test, dir: &str, format: &str) -> String {
    let out = t.with(&["graph", "-n", "-q", "-f", dir, "-o", format]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    out.stdout
}

/// A copy of an example in a test directory of its own.
fn example(name: &str) -> (Test, &'static str) {
    let t = Test::new();
    let from = workspace().join("examples").join(name);
    for entry in std::fs::read_dir(&from).expect("example") {
        let path = entry.expect("entry").path();
        let file = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        std::fs::write(t.dir().join(&file), std::fs::read(&path).expect("read")).expect("copy");
    }
    (t, ".")
}

/// The node ids a graph's JSON form holds, by kind.
fn ids(json: &Value, kind: &str) -> BTreeSet<String> {
    (json["nodes"].as_array().expect("nodes").iter())
        .filter(|n| n["kind"] == kind)
        .map(|n| n["id"].as_str().expect("id").to_owned())
        .collect()
}

/// What `from` reaches along the graph's edges, itself included.
fn reach(json: &Value, from: &str) -> BTreeSet<String> {
    let mut out: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for e in json["edges"].as_array().expect("edges") {
        let (f, t) = (
            e["from"].as_str().expect("from"),
            e["to"].as_str().expect("to"),
        );
        out.entry(f).or_default().push(t);
    }
    let mut seen = BTreeSet::from([from.to_owned()]);
    let mut stack = vec![from];
    while let Some(v) = stack.pop() {
        for w in out.get(v).into_iter().flatten() {
            if seen.insert((*w).to_owned()) {
                stack.push(w);
            }
        }
    }
    seen
}

/// Checks the DOT with Graphviz and the JSON with its schema; the JSON, parsed.
fn drawn_and_valid(t: &Test, dir: &str) -> Value {
    let (Some(dot), Some(python)) = (tool("bin/dot"), tool("kval/bin/python")) else {
        return Value::Null;
    };
    std::fs::write(t.dir().join("mesh.dot"), graph(t, dir, "dot")).expect("dot");
    let svg = t.path("mesh.svg");
    let (ok, text) = run(&dot, &["-Tsvg", &t.path("mesh.dot"), "-o", &svg], t.dir());
    assert!(ok, "dot refused the graph: {text}");
    assert!(std::fs::read_to_string(&svg).expect("svg").contains("<svg"));
    let json = graph(t, dir, "json");
    std::fs::write(t.dir().join("graph.json"), &json).expect("json");
    let schema = t.with(&["schema", "graph"]);
    assert_eq!(schema.status, 0, "{}", schema.stderr);
    std::fs::write(t.dir().join("graph.schema.json"), &schema.stdout).expect("schema");
    let check = "import json, sys, jsonschema\ng = json.load(open(sys.argv[1]))\njsonschema.validate(g, json.load(open(sys.argv[2])))\nassert g['schema'] == 'meshfile-graph/1'\nids = {n['id'] for n in g['nodes']}\nassert all(e['from'] in ids and e['to'] in ids for e in g['edges'])\n";
    let args = [
        "-c",
        check,
        &t.path("graph.json"),
        &t.path("graph.schema.json"),
    ];
    let (valid, text) = run(&python, &args, t.dir());
    assert!(valid, "{text}");
    serde_json::from_str(&json).expect("graph json")
}

#[test]
fn each_example_and_a_generated_mesh_are_drawn_by_graphviz_and_valid_json() {
    for name in ["hello-world", "flask-redis"] {
        let (t, dir) = example(name);
        let json = drawn_and_valid(&t, dir);
        if json.is_null() {
            return;
        }
        assert!(!ids(&json, "service").is_empty(), "{name}");
        assert!(!ids(&json, "secret").is_empty(), "{name}");
    }
    let t = generated(50);
    let json = drawn_and_valid(&t, ".");
    if json.is_null() {
        return;
    }
    assert_eq!(ids(&json, "service").len(), 50);
    assert_eq!(ids(&json, "secret").len(), 150);
    // Imports, uses and waits are all there.
    let edges = json["edges"].as_array().expect("edges");
    let count = |kind: &str| edges.iter().filter(|e| e["kind"] == kind).count();
    assert_eq!(count("imports"), 49);
    assert_eq!(count("waits_for"), 49);
    assert!(count("uses") >= 150, "{}", count("uses"));
    // Only the even services (certificate only, the key exported) are found reaching a key.
    let reach: Vec<&Value> = (json["findings"].as_array().expect("findings").iter())
        .filter(|f| f["code"] == "W114")
        .collect();
    assert_eq!(reach.len(), 24, "{reach:?}");
}

#[test]
fn mermaid_names_every_node_once_with_its_edges() {
    let t = three_services();
    let text = graph(&t, ".", "mermaid");
    let json: Value = serde_json::from_str(&graph(&t, ".", "json")).expect("json");
    assert!(text.starts_with("flowchart LR\n"), "{text}");
    let nodes = json["nodes"].as_array().expect("nodes").len();
    let edges = (json["edges"].as_array().expect("edges").iter())
        .filter(|e| e["kind"] != "holds")
        .count();
    let declared = (0..nodes)
        .filter(|i| text.contains(&format!("\n  n{i}")))
        .count();
    assert_eq!(declared, nodes, "{text}");
    assert_eq!(
        text.matches("-->|").count() + text.matches("-.->|").count(),
        edges,
        "{text}"
    );
}

/// Writes the page of `dir`, checks that it refers to nothing outside, that Chromium's DOM
/// holds every service and secret node after the script ran, and that a screenshot shows
/// something; the page's path and the graph's JSON.
fn rendered(chromium: &Path, t: &Test, dir: &str) -> (std::path::PathBuf, Value) {
    let out = t.with(&[
        "graph",
        "-n",
        "-q",
        "-f",
        dir,
        "-o",
        "html",
        "--out",
        "graph.html",
    ]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let page = t.dir().join("graph.html");
    let html = std::fs::read_to_string(&page).expect("page");
    for outside in ["<link", " src=", "@import", "url(http", "fetch("] {
        assert!(
            !html.contains(outside),
            "the page refers outside: {outside}"
        );
    }
    let json: Value = serde_json::from_str(&graph(t, dir, "json")).expect("json");
    let dom = browser::dump_dom(chromium, t.dir(), &page);
    assert!(dom.contains("window.meshGraph"), "no script in the DOM");
    for id in ids(&json, "service").iter().chain(&ids(&json, "secret")) {
        assert!(
            dom.contains(&format!("data-id=\"{id}\"")),
            "{id} is not in the DOM"
        );
    }
    let png = t.dir().join("graph.png");
    browser::screenshot(chromium, t.dir(), &page, &png);
    let image = std::fs::read(&png).expect("screenshot");
    assert!(
        image.starts_with(b"\x89PNG") && image.len() > 10_000,
        "{} bytes",
        image.len()
    );
    (page, json)
}

#[test]
fn the_page_renders_in_chromium_and_a_click_highlights_what_the_node_reaches() {
    let Some(chromium) = browser::chromium() else {
        return;
    };
    for name in ["hello-world", "flask-redis"] {
        let (t, dir) = example(name);
        rendered(&chromium, &t, dir);
    }
    let t = generated(50);
    let (page, json) = rendered(&chromium, &t, ".");

    // A click on a node, where it is drawn, as a mouse does it.
    let mut browser = Browser::launch(&chromium, t.dir());
    browser.open(&page);
    let found = browser.evaluate("meshGraph.search('service:s10')");
    assert_eq!(found, serde_json::json!(["service:s10"]));
    let centre = browser.evaluate(
        "(() => { const r = document.getElementById(meshGraph.nodeId('service:s10')).querySelector('rect').getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()",
    );
    let (x, y) = (
        centre[0].as_f64().expect("x"),
        centre[1].as_f64().expect("y"),
    );
    assert!(
        (0.0..1400.0).contains(&x) && (0.0..900.0).contains(&y),
        "{centre}"
    );
    browser.click(x, y);
    let highlighted: BTreeSet<String> =
        serde_json::from_value(browser.evaluate("meshGraph.highlighted()")).expect("ids");
    assert_eq!(highlighted, reach(&json, "service:s10"));
    let details = browser.evaluate("document.getElementById('details-text').textContent");
    assert!(
        details
            .as_str()
            .is_some_and(|d| d.starts_with("service s10")),
        "{details}"
    );
    // A click on the picture's background clears it.
    let empty = browser.evaluate(
        "(() => { const r = document.getElementById('view').getBoundingClientRect(); for (let y = r.top + 5; y < r.bottom; y += 7) for (let x = r.left + 5; x < r.right; x += 7) if (document.elementFromPoint(x, y).id === 'graph') return [x, y]; return null; })()",
    );
    browser.click(empty[0].as_f64().expect("x"), empty[1].as_f64().expect("y"));
    assert_eq!(
        browser.evaluate("meshGraph.highlighted().length"),
        serde_json::json!(0)
    );
    // A finding in the list marks its nodes.
    browser.evaluate("document.querySelector('#findings li').click()");
    let marked = browser.evaluate("meshGraph.highlighted().length");
    assert!(marked.as_u64().is_some_and(|n| n >= 2), "{marked}");
}

fn affected(t: &Test, name: &str) -> Value {
    let out = t.with(&[
        "graph",
        "-n",
        "-q",
        "-f",
        ".",
        "--affected-by",
        name,
        "-o",
        "json",
    ]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    serde_json::from_str(&out.stdout).expect("json")
}

#[test]
fn affected_by_lists_sessions_and_restarts_in_delivery_order() {
    let t = three_services();
    let cert = affected(&t, "a_cert");
    assert_eq!(cert["subject"], "secret:a/a_cert");
    assert_eq!(cert["readers"], serde_json::json!(["a", "b", "c"]));
    assert_eq!(cert["sessions"], serde_json::json!(["review/a"]));
    assert_eq!(cert["restarts"], serde_json::json!(["a", "b", "c"]));
    // A private key is readable by whoever imports its certificate.
    let key = affected(&t, "a/a_key");
    assert_eq!(key["readers"], serde_json::json!(["a", "b", "c"]));
    let b = affected(&t, "b");
    assert_eq!(b["sessions"], serde_json::json!(["review/b"]));
    assert_eq!(b["restarts"], serde_json::json!(["b"]));
    let image = affected(&t, "registry.example.com/a:1");
    assert_eq!(image["restarts"], serde_json::json!(["a", "b", "c"]));
    let human = t.with(&["graph", "-n", "-q", "-f", ".", "--affected-by", "a_cert"]);
    assert_eq!(human.status, 0, "{}", human.stderr);
    assert!(
        human.stdout.contains("readable by: a, b, c"),
        "{}",
        human.stdout
    );
    assert!(
        human
            .stdout
            .contains("workloads that restart on `helm upgrade` (3):\n    a\n    b\n    c\n"),
        "{}",
        human.stdout
    );
    // Several secrets of that name, or none: said, with what to write instead.
    let unknown = t.with(&["graph", "-n", "-q", "-f", ".", "--affected-by", "a_crt"]);
    assert_eq!(unknown.status, 2, "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("E202") && unknown.stderr.contains("did you mean"),
        "{}",
        unknown.stderr
    );
}

/// The guide's picture is the flask-redis example's graph as `graph -o svg` draws it now.
#[test]
fn the_guides_picture_is_current() {
    let picture = workspace().join("docs/src/guide/graph-flask-redis.svg");
    let mut command = crate::meshfile(&workspace());
    let dir = tempfile::tempdir().expect("home");
    crate::isolate(&mut command, dir.path());
    let target = dir.path().join("target");
    let out = command
        .args([
            "graph",
            "-n",
            "-q",
            "-f",
            "examples/flask-redis",
            "-o",
            "svg",
            "-t",
        ])
        .arg(&target)
        .output()
        .expect("graph");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if std::env::var("MESHFILE_UPDATE_DOCS").as_deref() == Ok("1") {
        std::fs::write(&picture, &out.stdout).expect("write picture");
    }
    let current = std::fs::read(&picture).unwrap_or_default();
    assert!(
        current == out.stdout,
        "{} is stale: run `MESHFILE_UPDATE_DOCS=1 cargo test -p meshfile --test it graph::` and commit it",
        Path::new("docs/src/guide/graph-flask-redis.svg").display()
    );
}
