//! Any text as a genservice template directory's values.template (and the first line as a
//! variable's value): rendering never panics, never loops, and the mesh step either fills
//! every `{{name}}` or names the first it cannot.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (value, template) = text.split_once('\n').unwrap_or(("", text));
    let files = BTreeMap::from([
        ("values.template".to_owned(), template.to_owned()),
        (
            "templates/deployment.yaml".to_owned(),
            "kind: Deployment\n".to_owned(),
        ),
    ]);
    let variables = BTreeMap::from([("SCONE_LOG".to_owned(), value.to_owned())]);
    if let Ok(chart) = meshfile_plan::genservice::render_templates(&files, &variables, "svc") {
        let lookup = |name: &str| (name == "session").then(|| "ns/svc".to_owned());
        let _ = meshfile_plan::genservice::render_values(&chart, &lookup);
    }
});
