//! Any bytes as `target/descriptors.json` (and its former YAML form): reading never panics,
//! and a store that reads writes back to the same entries.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = meshfile_plan::descriptor::from_json("descriptors.json", data) {
        let again = meshfile_plan::descriptor::from_json(
            "descriptors.json",
            &meshfile_plan::descriptor::to_json(&entries),
        )
        .unwrap_or_else(|_| panic!("written store does not read back"));
        assert_eq!(again, entries);
        for entry in entries.values() {
            let _ = entry.descriptor("descriptors.json");
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = meshfile_plan::descriptor::from_legacy_yaml("descriptors.yaml", text);
        let _ = meshfile_plan::descriptor::parse_measurements("measurements.yaml", text);
    }
});
