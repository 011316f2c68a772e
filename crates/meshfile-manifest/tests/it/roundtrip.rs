//! Parse, dump, parse gives the same model: for the corpora and for generated manifests.

use meshfile_manifest::mesh::{Cas, KeyValue, MeshManifest, Policy, Service, ServiceEnv};
use meshfile_manifest::{Manifest, Text, dump, load};
use proptest::prelude::*;

use crate::corpus;

fn round_trip(manifest: &Manifest) {
    let text = dump(manifest);
    let again = load(text.as_bytes());
    assert_eq!(
        again.manifest.as_ref(),
        Some(manifest),
        "dump changed the model:\n{text}\n{:#?}",
        again.diagnostics
    );
    // The dump is canonical: dumping the reloaded model gives the same bytes.
    assert_eq!(dump(again.manifest.as_ref().expect("reloaded")), text);
}

#[test]
fn corpus_round_trips() {
    for dir in ["valid", "invalid"] {
        for (_, bytes) in corpus(dir) {
            if let Some(manifest) = load(&bytes).manifest {
                round_trip(&manifest);
            }
        }
    }
}

fn text() -> impl Strategy<Value = Text> {
    prop_oneof![
        "[a-zA-Z_][a-zA-Z0-9_.-]{0,15}",
        "[ -~]{0,24}",
        Just("443".to_owned()),
        Just("1.10".to_owned()),
        Just("true".to_owned()),
        Just("~".to_owned()),
        Just("$$SCONE::x:crt$$".to_owned()),
        Just("{{var}}".to_owned()),
        Just("line one\nline two\n".to_owned()),
        any::<String>(),
    ]
    .prop_map(Text::new)
}

fn opt<T: std::fmt::Debug>(s: impl Strategy<Value = T>) -> impl Strategy<Value = Option<T>> {
    proptest::option::of(s)
}

prop_compose! {
    fn cas()(name in opt(text()), alias in opt(prop::collection::vec(text(), 0..4)), cas_url in text(),
             cas_key in opt(text()), tolerance in opt(text())) -> Cas {
        Cas { name, alias, cas_url, cas_key, cas_encryption_key: None, tolerance, mode: None }
    }
}

prop_compose! {
    fn service()(name in opt(text()), image in text(), image_secrets in opt(text())) -> Service {
        Service { name, image, image_policy: None, image_secrets, env: None, helm_chart: None }
    }
}

prop_compose! {
    fn service_env()(service in text(), env in opt(prop::collection::vec((text(), text()), 0..4))) -> ServiceEnv {
        ServiceEnv { service, env: env.map(|e| e.into_iter().map(|(name, value)| KeyValue { name, value }).collect()) }
    }
}

prop_compose! {
    fn mesh()(cas in prop::collection::vec(cas(), 0..3), namespace in text(), tolerate in opt(text()),
              env in prop::collection::vec(service_env(), 0..3), services in prop::collection::vec(service(), 0..4)) -> MeshManifest {
        MeshManifest {
            api_version: Text::new("scone/5.8"),
            kind: Text::new("mesh"),
            cas,
            policy: Policy {
                namespace, tolerate, ignore_advisories: None, maa: None, access_policy_name: None,
                attestation_policy_name: None, security_policy_name: None, image_policy_namespace: None,
                access_policy: None,
            },
            env,
            services,
            extra_policies: None,
            helm_extra_values: None,
            repo: None,
            descriptor_keys: None,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn generated_meshes_round_trip(m in mesh()) {
        round_trip(&Manifest::Mesh(m.into()));
    }
}
