//! Any bytes: loading never panics, and a valid manifest survives dump and reload unchanged.
//! Loaded with an environment too: a `$VAR` without a value is reported as such, never as a
//! wrong value of its closed set or boolean field besides.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshfile_manifest::Code;

/// Some variables have no value, some give a boolean, some text that looks like a variable.
fn lookup(name: &str) -> Option<String> {
    match name.as_bytes().first() {
        Some(b'U') => None,
        Some(b'B') => Some("true".into()),
        Some(b'D') => Some("$X".into()),
        _ => Some(name.to_owned()),
    }
}

fuzz_target!(|data: &[u8]| {
    let loaded = meshfile_manifest::load(data);
    if let Some(manifest) = loaded.manifest.as_ref().filter(|_| !loaded.has_errors()) {
        let dumped = meshfile_manifest::dump(manifest);
        let again = meshfile_manifest::load(dumped.as_bytes());
        assert_eq!(
            again.manifest.as_ref(),
            Some(manifest),
            "dump changed the model:\n{dumped}"
        );
        let _ = meshfile_manifest::lint(manifest);
    }
    let filled = meshfile_manifest::load_with_env(data, Some(&lookup));
    let unset: Vec<_> = (filled.diagnostics.iter())
        .filter(|d| d.code == Code::UndefinedVariable)
        .map(|d| d.span)
        .collect();
    for d in &filled.diagnostics {
        let boolean = d.code == Code::WrongType && d.message.contains("must be true or false");
        let typed = d.code == Code::InvalidEnum || boolean;
        assert!(
            !(typed && unset.contains(&d.span)),
            "a variable without a value was also a wrong value: {d:?}"
        );
    }
});
