//! Image digests from a real OCI registry (Debian's `docker-registry` on 127.0.0.1), with an
//! image built by umoci and pushed by skopeo: the chart pins what the registry serves.

use std::path::{Path, PathBuf};

use crate::oci::{
    Auth, IMAGES, Images, Registry, build_and_push, example_with_image, inspect, inspect_digest,
    ok, registry_tools, registry_with_images,
};
use crate::tools::{run, tool};
use crate::{Test, workspace};

#[test]
fn charts_pin_the_digest_the_registry_serves() {
    let (Some((registry, skopeo, umoci)), Some(helm)) = (registry_tools(), tool("bin/helm4"))
    else {
        return;
    };
    let server = Registry::start(&registry);
    let work = tempfile::tempdir().expect("work");
    let layout = work.path().join("layout");
    let layout_arg = layout.display().to_string();
    ok(&umoci, &["init", "--layout", &layout_arg], work.path());
    ok(
        &umoci,
        &["new", "--image", &format!("{layout_arg}:v1")],
        work.path(),
    );
    let image = format!("{}/mesh/demo:v1", server.address);
    ok(
        &skopeo,
        &[
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{layout_arg}:v1"),
            &format!("docker://{image}"),
        ],
        work.path(),
    );
    let digest = ok(
        &skopeo,
        &[
            "inspect",
            "--tls-verify=false",
            "--format",
            "{{.Digest}}",
            &format!("docker://{image}"),
        ],
        work.path(),
    )
    .trim()
    .to_owned();
    assert!(digest.starts_with("sha256:"), "{digest}");

    let mut t = example_with_image(&image);
    let out = t.rerun(&["template", "-f", "."]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    // The registry answered: no warning of a digest not found (the manifest's own W009 aside).
    assert!(
        !(out.stderr.lines()).any(|l| l.contains("warning") && !l.contains("warning[W009]")),
        "{}",
        out.stderr
    );
    let values = std::fs::read_to_string(t.dir().join("target/helm/values.yaml")).expect("values");
    assert!(values.contains(&digest), "{values}");
    let chart = t.dir().join("target/helm").display().to_string();
    let rendered = ok(
        &helm,
        &[
            "template",
            "release",
            &chart,
            "--set",
            "global.casAddr=cas.example",
        ],
        t.dir(),
    );
    let pinned = format!("image: \"{}/mesh/demo@{digest}\"", server.address);
    assert!(rendered.contains(&pinned), "{rendered}");

    // The digest is recorded with the service: offline (-n, no registry asked) it still pins.
    let descriptors =
        std::fs::read_to_string(t.dir().join("target/descriptors.json")).expect("descriptors");
    assert!(
        descriptors.contains(&format!("\"digest\": \"{digest}\"")),
        "{descriptors}"
    );
    let values_of = |t: &Test| {
        std::fs::read_to_string(t.dir().join("target/helm/values.yaml")).expect("values")
    };
    let out = t.rerun(&["template", "-n", "-f", "mesh.yaml"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(values_of(&t).contains(&digest), "{}", values_of(&t));
    // Recording the service again with -n keeps the digest recorded before.
    let out = t.rerun(&["template", "-n", "-f", "."]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(values_of(&t).contains(&digest), "{}", values_of(&t));
    // Never recorded with a registry, -n: the tag.
    let mut fresh = example_with_image(&image);
    let out = fresh.rerun(&["template", "-n", "-f", "."]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        !values_of(&fresh).contains(&digest),
        "{}",
        values_of(&fresh)
    );

    // A tag the registry does not have: a warning naming it, and the tag.
    let missing = format!("{}/mesh/demo:v2", server.address);
    let mut other = example_with_image(&missing);
    let out = other.rerun(&["template", "-f", "."]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("{missing}: the registry has no such image or tag")),
        "{}",
        out.stderr
    );

    // The registry gone: one warning for it; the digest recorded before still pins.
    drop(server);
    let out = t.rerun(&["template", "-f", "mesh.yaml"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("warning: cannot reach registry 127.0.0.1:"),
        "{}",
        out.stderr
    );
    assert!(values_of(&t).contains(&digest), "{}", values_of(&t));
}

/// Runs meshfile in `t`'s directory with the cosign key password `password` in the
/// environment, as a user with a cosign key does: its status and standard error.
fn with_cosign_password(t: &Test, password: &str, args: &[&str]) -> (i32, String) {
    let out = crate::meshfile(t.dir())
        .args(args)
        .env("COSIGN_PASSWORD", password)
        .output()
        .expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The flask-redis example with its images at `registry/src/...` and `repo` (its fields).
fn example_with_repo(registry: &str, images: &Images, repo: &str) -> Test {
    let src = workspace().join("examples/flask-redis");
    let mut t = Test::new();
    for entry in std::fs::read_dir(&src).expect("example") {
        let path = entry.expect("entry").path();
        let mut text = std::fs::read_to_string(&path).expect("read");
        for (example, name, _) in images {
            text = text.replace(example, &format!("{registry}/src/{name}"));
        }
        if path.ends_with("mesh.yaml") {
            text.push_str(&format!("repo:\n{repo}"));
        }
        t = t.file(
            path.file_name().and_then(|n| n.to_str()).expect("name"),
            text,
        );
    }
    t
}

#[test]
fn repo_destination_receives_the_images_by_digest_and_the_chart_pulls_from_there() {
    let Some((registry, skopeo, umoci)) = registry_tools() else {
        return;
    };
    let (source, work, digests) = registry_with_images(&registry, &skopeo, &umoci);
    let destination = Registry::start(&registry);
    let images = IMAGES;
    let mut t = example_with_repo(
        &source.address,
        &images,
        &format!(
            "  destination: {}/dest\n  strip: false\n",
            destination.address
        ),
    );
    let out = t.rerun(&["template", "-f", "."]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "apply copies {}/src/redis:1.0 -> {}/dest/redis:1.0",
            source.address, destination.address
        )),
        "{}",
        out.stderr
    );
    assert!(
        inspect(
            &skopeo,
            work.path(),
            &format!("{}/dest/redis:1.0", destination.address)
        )
        .is_none(),
        "template copies nothing"
    );

    let out = t.rerun(&["apply", "-f", "."]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    for ((_, name, _), digest) in images.iter().zip(&digests) {
        let copied = format!("{}/dest/{name}", destination.address);
        assert_eq!(
            &inspect_digest(&skopeo, work.path(), &copied),
            digest,
            "{copied}"
        );
        assert!(
            out.stderr
                .contains(&format!("-> {copied}@{digest}  (4 blobs sent")),
            "{}",
            out.stderr
        );
    }
    let values = std::fs::read_to_string(t.dir().join("target/helm/values.yaml")).expect("values");
    for ((_, name, _), digest) in images.iter().zip(&digests) {
        let repository = name.split(':').next().expect("repository");
        assert!(
            values.contains(&format!(
                "image: \"{}/dest/{repository}@{digest}\"",
                destination.address
            )),
            "{values}"
        );
    }

    // Again: nothing is sent, every blob is there.
    let out = t.rerun(&["apply", "-f", "."]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(
        out.stderr
            .matches("(0 blobs sent, 0.0 MB; 4 there already")
            .count(),
        2,
        "{}",
        out.stderr
    );

    // Within one registry, blobs are mounted from the source repository.
    let mesh = std::fs::read_to_string(t.dir().join("mesh.yaml")).expect("mesh");
    let same = mesh.replace(
        &format!("{}/dest", destination.address),
        &format!("{}/mirror", source.address),
    );
    std::fs::write(t.dir().join("mesh.yaml"), same).expect("write");
    let out = t.rerun(&["apply", "-f", "."]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(
        out.stderr.matches("0 there already; 4 mounted)").count(),
        2,
        "{}",
        out.stderr
    );

    // -n asks no registry: nothing copied, said so.
    let out = t.rerun(&["apply", "-n", "-f", "."]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("not copied (-n asks no registry)"),
        "{}",
        out.stderr
    );

    // The destination gone: stopped, naming the image; exit 3.
    std::fs::write(t.dir().join("mesh.yaml"), mesh).expect("write");
    drop(destination);
    let out = t.rerun(&["apply", "-f", "."]);
    assert_eq!(out.status, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("error[E219]: copying ")
            && out.stderr.contains("cannot reach registry"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_interrupted_copy_resumes_with_the_blobs_already_sent() {
    let Some((registry, skopeo, umoci)) = registry_tools() else {
        return;
    };
    let source = Registry::start(&registry);
    let destination = Registry::start(&registry);
    let work = tempfile::tempdir().expect("work");
    use sha2::Digest as _;
    // A first layer of about 2 MB (hex of digests: compresses to half), then two small ones.
    let large: String = (0u32..40_000)
        .map(|i| hex::encode(sha2::Sha256::digest(i.to_le_bytes())) + "\n")
        .collect();
    let image = format!("{}/src/large:1.0", source.address);
    let digest = build_and_push(&umoci, &skopeo, work.path(), &image, &large);
    // The proxy cuts the upload of the large layer off once 512 KiB of it passed, a second
    // after, when the config and the small layers are at the destination.
    let proxy = crate::proxy::Proxy::start(
        destination.address.clone(),
        crate::proxy::Behaviour::CutOnce(512 * 1024),
    );
    let mut t = example_with_image(&image);
    let mesh = std::fs::read_to_string(t.dir().join("mesh.yaml")).expect("mesh");
    std::fs::write(
        t.dir().join("mesh.yaml"),
        format!(
            "{mesh}repo:\n  destination: {}/dest\n  strip: false\n",
            proxy.address
        ),
    )
    .expect("mesh");
    let out = t.rerun(&["apply", "-f", "."]);
    assert_eq!(out.status, 3, "{}", out.stderr);
    assert!(proxy.lost.load(std::sync::atomic::Ordering::SeqCst));
    assert!(
        out.stderr.contains(&format!(
            "error[E219]: copying {image}: cannot reach registry"
        )) && out.stderr.contains("sending blob sha256:"),
        "names the image and the blob: {}",
        out.stderr
    );
    // Again: the blobs sent before the cut stay; only the large layer goes.
    let out = t.rerun(&["apply", "-f", "."]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let copied = format!("{}/dest/large:1.0", proxy.address);
    assert!(
        out.stderr
            .contains(&format!("-> {copied}@{digest}  (1 blob sent")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("; 3 there already; 0 mounted)"),
        "{}",
        out.stderr
    );
    assert_eq!(inspect_digest(&skopeo, work.path(), &copied), digest);
}

/// The one user of the registry that asks for credentials, and the bcrypt hash of its password.
const USER: (&str, &str) = ("alice", "s3cret-for-tests");
const USER_HASH: &str = "$2b$10$EdPf5vRk.GjhdtbYsIbUR.2U/Mt4Cy24V2nuzvubbjXNG9NBzR20a";

/// Writes the Docker configuration of the test's isolated user.
fn docker_config(t: &Test, config: serde_json::Value) {
    let docker = t.dir().join(".home/.docker");
    std::fs::create_dir_all(&docker).expect("docker config");
    std::fs::write(docker.join("config.json"), config.to_string()).expect("config.json");
}

/// What `docker login` writes for [`USER`] without a credential helper.
fn logged_in(registry: &str) -> serde_json::Value {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", USER.0, USER.1));
    serde_json::json!({"auths": {registry: {"auth": auth}}})
}

/// The example mesh copying to a registry `guard` starts, which admits only [`USER`]: refused
/// without credentials (the error says how to give them), copied once `docker login` left
/// them. The test, the source registry and the guarded one.
fn copy_to_guarded(guard: impl FnOnce(&Path) -> Registry) -> Option<(Test, Registry, Registry)> {
    let (registry, skopeo, umoci) = registry_tools()?;
    let (source, _work, digests) = registry_with_images(&registry, &skopeo, &umoci);
    let guarded = guard(&registry);
    let mut t = example_with_repo(
        &source.address,
        &IMAGES,
        &format!("  destination: {}/dest\n  strip: false\n", guarded.address),
    );
    let out = t.rerun(&["apply", "-f", "."]);
    assert_eq!(out.status, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("refused access (401)")
            && (out.stderr).contains(&format!("`docker login {}`", guarded.address)),
        "{}",
        out.stderr
    );
    docker_config(&t, logged_in(&guarded.address));
    let out = t.rerun(&["apply", "-f", "."]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    for ((_, name, _), digest) in IMAGES.iter().zip(&digests) {
        let copied = format!("-> {}/dest/{name}@{digest}  (4 blobs sent", guarded.address);
        assert!(out.stderr.contains(&copied), "{}", out.stderr);
    }
    Some((t, source, guarded))
}

#[test]
fn a_destination_that_asks_for_credentials_gets_those_docker_login_left() {
    let users = format!("{}:{USER_HASH}\n", USER.0);
    let guard = |registry: &Path| Registry::with_auth(registry, Auth::Users(&users));
    let Some((mut t, source, guarded)) = copy_to_guarded(guard) else {
        return;
    };
    // What it writes with a credential store: the helper is asked for each registry, once,
    // with its host; it holds credentials for the guarded one only (anonymous for the source).
    let helpers = t.dir().join("helpers");
    std::fs::create_dir_all(&helpers).expect("helpers");
    let asked = t.dir().join("asked");
    let helper = helpers.join("docker-credential-meshfiletest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread server\necho \"$1 $server\" >> '{}'\nif [ \"$server\" = '{}' ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"{}\",\"Secret\":\"{}\"}}' \"$server\"\nelse\n  echo 'credentials not found in native keychain'\n  exit 1\nfi\n",
            asked.display(),
            guarded.address,
            USER.0,
            USER.1
        ),
    )
    .expect("helper");
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    docker_config(
        &t,
        serde_json::json!({"auths": {&guarded.address: {}}, "credsStore": "meshfiletest"}),
    );
    let path = format!(
        "{}:{}",
        helpers.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = crate::meshfile(t.dir())
        .args(["apply", "-f", "."])
        .env("PATH", &path)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("(0 blobs sent, 0.0 MB; 4 there already"),
        "{stderr}"
    );
    let asked = std::fs::read_to_string(&asked).expect("the helper was asked");
    let mut lines: Vec<&str> = asked.lines().collect();
    lines.sort_unstable();
    let mut expected = [
        format!("get {}", guarded.address),
        format!("get {}", source.address),
    ];
    expected.sort_unstable();
    assert_eq!(lines, expected, "each registry once");
    // A helper the configuration names that is not there: said, naming it.
    docker_config(
        &t,
        serde_json::json!({"credHelpers": {&guarded.address: "absent"}}),
    );
    let out = t.rerun(&["apply", "-f", "."]);
    assert_eq!(out.status, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "credentials for {}: the credential helper docker-credential-absent: docker-credential-absent is not on PATH",
            guarded.address
        )),
        "{}",
        out.stderr
    );
    // The secret appears nowhere meshfile writes.
    for entry in walkdir::WalkDir::new(t.dir().join("target")) {
        let entry = entry.expect("entry");
        if entry.file_type().is_file() {
            let bytes = std::fs::read(entry.path()).expect("read");
            assert!(
                !String::from_utf8_lossy(&bytes).contains(USER.1),
                "{}",
                entry.path().display()
            );
        }
    }
}

#[test]
fn a_destination_with_token_authentication_grants_what_the_credentials_allow() {
    // Anonymous, the token service grants pull only, so the registry refuses the upload; with
    // the user's credentials, sent to the token service, it grants push.
    let tokens = crate::token::TokenService::start(USER);
    let guard = |registry: &Path| Registry::with_auth(registry, Auth::Tokens(&tokens));
    if copy_to_guarded(guard).is_none() {
        return;
    }
    let asked = tokens.asked.lock().expect("asked");
    for (_, name, _) in IMAGES {
        let repository = format!("dest/{}", name.split(':').next().expect("name"));
        // The registry's challenge names the actions in either order (`pull,push` or
        // `push,pull`: a Go map), and the scope asked for is the challenge's.
        let pushes = |scope: &str| {
            scope
                .strip_prefix(&format!("repository:{repository}:"))
                .is_some_and(|actions| {
                    let mut actions: Vec<&str> = actions.split(',').collect();
                    actions.sort_unstable();
                    actions == ["pull", "push"]
                })
        };
        assert!(
            asked
                .iter()
                .any(|(scopes, authorized)| *authorized && scopes.iter().any(|s| pushes(s))),
            "a push token for {repository} was asked for with credentials: {asked:?}"
        );
    }
}

/// A manifest (or index) as a registry serves it, parsed, with its digest and size.
fn fetch_manifest(
    registry: &str,
    repository: &str,
    reference: &str,
) -> (serde_json::Value, String, usize) {
    use sha2::Digest as _;
    let bytes = reqwest::blocking::Client::new()
        .get(format!(
            "http://{registry}/v2/{repository}/manifests/{reference}"
        ))
        .header(
            "accept",
            "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json",
        )
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.bytes())
        .expect("manifest");
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)));
    let manifest = serde_json::from_slice(&bytes).expect("json");
    (manifest, digest, bytes.len())
}

#[test]
fn an_image_index_is_copied_with_every_platform_and_squashed_per_platform() {
    let Some((registry, skopeo, umoci)) = registry_tools() else {
        return;
    };
    let (server, work, _) = registry_with_images(&registry, &skopeo, &umoci);
    let address = &server.address;
    // Two platforms of one image: the two example images under src/multi, and an index.
    let mut platforms = Vec::new();
    for ((_, name, _), arch) in IMAGES.iter().zip(["amd64", "arm64"]) {
        let (repository, _) = name.split_once(':').expect("name");
        ok(
            &skopeo,
            &[
                "copy",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                &format!("docker://{address}/src/{repository}:1.0"),
                &format!("docker://{address}/src/multi:{arch}"),
            ],
            work.path(),
        );
        let (manifest, digest, size) = fetch_manifest(address, "src/multi", arch);
        platforms.push(serde_json::json!({
            "mediaType": manifest["mediaType"],
            "digest": digest,
            "size": size,
            "platform": {"architecture": arch, "os": "linux"},
        }));
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": platforms,
    });
    let put = reqwest::blocking::Client::new()
        .put(format!("http://{address}/v2/src/multi/manifests/1.0"))
        .header("content-type", "application/vnd.oci.image.index.v1+json")
        .body(index.to_string())
        .send()
        .expect("put index");
    assert_eq!(put.status().as_u16(), 201);
    let (_, index_digest, _) = fetch_manifest(address, "src/multi", "1.0");

    let mut t = example_with_image(&format!("{address}/src/multi:1.0"));
    let mesh = std::fs::read_to_string(t.dir().join("mesh.yaml")).expect("mesh");
    // Applies the mesh copying to `<address>/<repo>` with `how`; the index copied there.
    let mut apply_to = |repo: &str, how: &str| {
        std::fs::write(
            t.dir().join("mesh.yaml"),
            format!("{mesh}repo:\n  destination: {address}/{repo}\n  {how}\n"),
        )
        .expect("mesh");
        let out = t.rerun(&["apply", "-f", "."]);
        assert_eq!(out.status, 0, "{}", out.stderr);
        fetch_manifest(address, &format!("{repo}/multi"), "1.0")
    };
    // Byte for byte: the index and both platforms' manifests, by the same digests.
    let (copied, digest, _) = apply_to("copy", "strip: false");
    assert_eq!(digest, index_digest);
    for platform in copied["manifests"].as_array().expect("manifests") {
        let (manifest, _, _) = fetch_manifest(
            address,
            "copy/multi",
            platform["digest"].as_str().expect("digest"),
        );
        assert_eq!(manifest["layers"].as_array().expect("layers").len(), 3);
    }
    // Squashed: each platform made one layer, the index pointing at the new manifests.
    let (squashed, digest, _) = apply_to("squashed", "squash: true");
    assert_ne!(digest, index_digest);
    let platforms = squashed["manifests"].as_array().expect("manifests");
    assert_eq!(platforms.len(), 2);
    for (platform, arch) in platforms.iter().zip(["amd64", "arm64"]) {
        assert_eq!(platform["platform"]["architecture"], arch);
        let (manifest, _, _) = fetch_manifest(
            address,
            "squashed/multi",
            platform["digest"].as_str().expect("digest"),
        );
        assert_eq!(manifest["layers"].as_array().expect("layers").len(), 1);
    }
    let values = std::fs::read_to_string(t.dir().join("target/helm/values.yaml")).expect("values");
    assert!(
        values.contains(&digest),
        "the chart pins the new index: {values}"
    );
}

/// A registry on 127.0.0.1 that answers every request `200` with a body that does not end
/// where a manifest would: 64 MiB, sent in chunks with no length announced.
fn endless_registry() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    std::thread::spawn(move || {
        use std::io::{BufRead, Write};
        for stream in listener.incoming().take(64) {
            let Ok(mut stream) = stream else { break };
            let mut reader = std::io::BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            let mut head = false;
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                head |= line.starts_with("HEAD ");
                line.clear();
            }
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            );
            if head {
                continue;
            }
            let chunk = format!("10000\r\n{}\r\n", " ".repeat(0x10000));
            for _ in 0..1024 {
                if stream.write_all(chunk.as_bytes()).is_err() {
                    break;
                }
            }
        }
    });
    address
}

#[test]
fn a_registry_that_sends_without_end_is_read_no_further_than_a_manifest_can_be() {
    let hostile = endless_registry();
    let mut t = example_with_image(&format!("{hostile}/src/app:1.0"));
    let mesh = std::fs::read_to_string(t.dir().join("mesh.yaml")).expect("mesh");
    std::fs::write(
        t.dir().join("mesh.yaml"),
        format!("{mesh}repo:\n  destination: 127.0.0.1:9/dest\n  strip: false\n"),
    )
    .expect("mesh");
    let out = t.rerun(&["apply", "-f", "."]);
    assert_eq!(out.status, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "error[E219]: copying {hostile}/src/app:1.0: {hostile}/src/app:1.0: unexpected answer from the registry: the manifest is larger than 4194304 bytes"
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn two_images_that_would_share_a_destination_name_are_refused() {
    let src = workspace().join("examples/flask-redis");
    let mut t = Test::new();
    for entry in std::fs::read_dir(&src).expect("example") {
        let path = entry.expect("entry").path();
        let mut text = std::fs::read_to_string(&path)
            .expect("read")
            .replace(
                "registry.example.com/meshfile/python_flask_redis:1.0",
                "a.example/x/app:1",
            )
            .replace(
                "registry.example.com/meshfile/redis:1.0",
                "b.example/y/app:1",
            );
        if path.ends_with("mesh.yaml") {
            text.push_str("repo:\n  destination: 127.0.0.1:5000/prod\n  strip: false\n");
        }
        t = t.file(
            path.file_name().and_then(|n| n.to_str()).expect("name"),
            text,
        );
    }
    let out = t.rerun(&["apply", "-n", "-f", "."]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("error[E220]: `a.example/x/app:1` and `b.example/y/app:1` would both be copied to `127.0.0.1:5000/prod/app:1`"),
        "{}",
        out.stderr
    );
}

#[test]
fn squash_and_strip_make_one_layer_without_scone_the_same_every_time() {
    let Some((registry, skopeo, umoci)) = registry_tools() else {
        return;
    };
    let (server, work, _) = registry_with_images(&registry, &skopeo, &umoci);
    let repo = format!(
        "  destination: {}/dest\n  squash: true\n  strip: true\n",
        server.address
    );
    // push: false makes the images for their digests and writes nothing.
    let mut t = example_with_repo(&server.address, &IMAGES, &format!("{repo}  push: false\n"));
    let out = t.rerun(&["apply", "-f", "."]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let prepared: Vec<String> = (out.stderr.lines())
        .filter_map(|l| l.strip_prefix("prepared   "))
        .map(|l| {
            assert!(l.ends_with("(repo.push is false: nothing written)"), "{l}");
            l.split('@').nth(1).expect("digest")[..71].to_owned()
        })
        .collect();
    assert_eq!(prepared.len(), 2, "{}", out.stderr);
    for (_, name, _) in IMAGES {
        let destination = format!("{}/dest/{name}", server.address);
        assert_eq!(
            inspect(&skopeo, work.path(), &destination),
            None,
            "{destination}"
        );
    }
    let values = std::fs::read_to_string(t.dir().join("target/helm/values.yaml")).expect("values");
    for digest in &prepared {
        assert!(values.contains(digest.as_str()), "{values}");
    }
    let mesh = std::fs::read_to_string(t.dir().join("mesh.yaml")).expect("mesh");
    std::fs::write(
        t.dir().join("mesh.yaml"),
        mesh.replace("  push: false\n", ""),
    )
    .expect("mesh");
    let out = t.rerun(&["apply", "-f", "."]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let mut digests = Vec::new();
    for (_, name, text) in IMAGES {
        let copied = format!("{}/dest/{name}", server.address);
        let layers = ok(
            &skopeo,
            &[
                "inspect",
                "--tls-verify=false",
                "--format",
                "{{len .Layers}}",
                &format!("docker://{copied}"),
            ],
            work.path(),
        );
        assert_eq!(layers.trim(), "1", "{copied}");
        // Unpacked by umoci: the files, without /scone and without the whited-out one.
        let layout = work.path().join(format!("check-{}", text.len()));
        let layout_arg = layout.display().to_string();
        ok(
            &skopeo,
            &[
                "copy",
                "--src-tls-verify=false",
                &format!("docker://{copied}"),
                &format!("oci:{layout_arg}:c"),
            ],
            work.path(),
        );
        let bundle = work.path().join(format!("unpacked-{}", text.len()));
        ok(
            &umoci,
            &[
                "unpack",
                "--image",
                &format!("{layout_arg}:c"),
                &bundle.display().to_string(),
            ],
            work.path(),
        );
        let rootfs = bundle.join("rootfs");
        assert_eq!(
            std::fs::read_to_string(rootfs.join("app/main.py")).expect("main.py"),
            text
        );
        assert!(
            !rootfs.join("app/old.txt").exists(),
            "the whiteout was applied"
        );
        assert!(!rootfs.join("scone").exists(), "/scone was removed");
        digests.push(inspect_digest(&skopeo, work.path(), &copied));
    }
    assert_eq!(digests, prepared, "push: false foretold the digests");
    let values = std::fs::read_to_string(t.dir().join("target/helm/values.yaml")).expect("values");
    for digest in &digests {
        assert!(
            values.contains(digest.as_str()),
            "the chart pins {digest}: {values}"
        );
    }
    // Again: the same digests, nothing sent; offline, the chart still pins them.
    let out = t.rerun(&["apply", "-f", "."]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    for ((_, name, _), digest) in IMAGES.iter().zip(&digests) {
        assert!(
            out.stderr
                .contains(&format!("/dest/{name}@{digest}  (0 blobs sent")),
            "{}",
            out.stderr
        );
    }
    let out = t.rerun(&["template", "-n", "-f", "mesh.yaml"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let values = std::fs::read_to_string(t.dir().join("target/helm/values.yaml")).expect("values");
    for digest in &digests {
        assert!(values.contains(digest.as_str()), "{values}");
    }
    // The source images' descriptors record the rewritten digests, beside the sources'.
    let store: serde_json::Value = serde_json::from_slice(
        &std::fs::read(t.dir().join("target/descriptors.json")).expect("store"),
    )
    .expect("json");
    for (entry, digest) in store["descriptors"]
        .as_array()
        .expect("entries")
        .iter()
        .zip(&digests)
    {
        let source = entry["digest"].as_str().expect("source digest");
        assert_eq!(
            entry["rewritten"][format!("{source} squash=true strip=true")],
            digest.as_str(),
            "{entry}"
        );
    }
}

/// The cosign signatures skopeo finds beside `repository@digest`: each layer's payload and
/// its signature (DER), read with skopeo and plain HTTP, not with meshfile's code.
fn signatures_beside(
    skopeo: &PathBuf,
    work: &Path,
    repository: &str,
    digest: &str,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    use base64::Engine as _;
    let tag = format!("{repository}:{}.sig", digest.replace(':', "-"));
    let (found, raw) = run(
        skopeo,
        &[
            "inspect",
            "--tls-verify=false",
            "--raw",
            &format!("docker://{tag}"),
        ],
        work,
    );
    if !found {
        return Vec::new();
    }
    let manifest: serde_json::Value = serde_json::from_str(&raw).expect("signature manifest");
    let (registry, path) = repository.split_once('/').expect("registry/path");
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|layer| {
            assert_eq!(
                layer["mediaType"],
                "application/vnd.dev.cosign.simplesigning.v1+json"
            );
            let url = format!(
                "http://{registry}/v2/{path}/blobs/{}",
                layer["digest"].as_str().expect("digest")
            );
            let payload = reqwest::blocking::get(&url)
                .and_then(|r| r.bytes())
                .expect("payload")
                .to_vec();
            let signature = layer["annotations"]["dev.cosignproject.cosign/signature"]
                .as_str()
                .expect("signature");
            (
                payload,
                base64::engine::general_purpose::STANDARD
                    .decode(signature)
                    .expect("base64"),
            )
        })
        .collect()
}

/// Whether openssl verifies `signature` of `payload` with the PEM public key at `key`.
fn openssl_verifies(
    openssl: &PathBuf,
    work: &Path,
    key: &Path,
    payload: &[u8],
    signature: &[u8],
) -> bool {
    let (payload_file, signature_file) = (work.join("payload.json"), work.join("payload.sig"));
    std::fs::write(&payload_file, payload).expect("payload");
    std::fs::write(&signature_file, signature).expect("signature");
    let (verified, text) = run(
        openssl,
        &[
            "dgst",
            "-sha256",
            "-verify",
            &key.display().to_string(),
            "-signature",
            &signature_file.display().to_string(),
            &payload_file.display().to_string(),
        ],
        work,
    );
    verified && text.contains("Verified OK")
}

/// skopeo built with sigstore, set to accept from `registry`'s `dest/` only images carrying a
/// cosign signature by the key at `public` that names their repository (a `policy.json` and a
/// `registries.d` that reads sigstore attachments).
struct SigstorePolicy {
    skopeo: PathBuf,
    policy: PathBuf,
    registries: PathBuf,
}

impl SigstorePolicy {
    fn new(skopeo: PathBuf, work: &Path, registry: &str, public: &Path) -> SigstorePolicy {
        std::fs::create_dir_all(work).expect("work");
        let policy = work.join("sigstore-policy.json");
        let requirement = serde_json::json!({
            "default": [{"type": "reject"}],
            "transports": {"docker": {format!("{registry}/dest"): [{
                "type": "sigstoreSigned",
                "keyPath": public,
                "signedIdentity": {"type": "matchRepository"},
            }]}},
        });
        std::fs::write(&policy, requirement.to_string()).expect("policy");
        let registries = work.join("registries.d");
        std::fs::create_dir_all(&registries).expect("registries.d");
        std::fs::write(
            registries.join("meshfile-test.yaml"),
            format!("docker:\n  {registry}:\n    use-sigstore-attachments: true\n"),
        )
        .expect("registries.d");
        SigstorePolicy {
            skopeo,
            policy,
            registries,
        }
    }

    /// `skopeo copy` of `image` to a directory: whether the policy let it through, and why not.
    fn accepts(&self, work: &Path, image: &str) -> (bool, String) {
        let out = tempfile::tempdir_in(work).expect("out");
        run(
            &self.skopeo,
            &[
                "--policy",
                &self.policy.display().to_string(),
                "--registries.d",
                &self.registries.display().to_string(),
                "copy",
                "--src-tls-verify=false",
                &format!("docker://{image}"),
                &format!("dir:{}", out.path().display()),
            ],
            work,
        )
    }
}

#[test]
fn copied_images_are_signed_as_cosign_signs_them() {
    let (Some((registry, skopeo, umoci)), Some(openssl), Some(sigstore)) = (
        registry_tools(),
        tool("bin/openssl"),
        tool("bin/skopeo-sigstore"),
    ) else {
        return;
    };
    let (server, work, _) = registry_with_images(&registry, &skopeo, &umoci);
    let repo = format!(
        "  destination: {}/dest\n  squash: true\n  key_file: cosign.key\n",
        server.address
    );
    let t = example_with_repo(&server.address, &IMAGES, &repo);
    let meshfile = |args: &[&str]| with_cosign_password(&t, "hunter2", args);
    let (status, stderr) = meshfile(&["key", "generate", "--cosign", "--out", "cosign.key"]);
    assert_eq!(status, 0, "{stderr}");
    let (status, stderr) = meshfile(&["apply", "-f", "."]);
    assert_eq!(status, 0, "{stderr}");
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("signed ")).count(),
        2,
        "{stderr}"
    );
    let (status, stderr) = meshfile(&["apply", "-f", "."]);
    assert_eq!(status, 0, "{stderr}");
    assert_eq!(
        stderr.matches("signature there already:").count(),
        2,
        "{stderr}"
    );
    let (status, stderr) = meshfile(&["verify-images", "-f", ".", "--key", "cosign.pub"]);
    assert_eq!(status, 0, "{stderr}");

    // openssl and skopeo, not meshfile, check what is stored: a simple-signing payload naming
    // the repository and the digest skopeo sees, signed by the key.
    let public = t.dir().join("cosign.pub");
    for (_, name, _) in IMAGES {
        let repository = format!(
            "{}/dest/{}",
            server.address,
            name.split(':').next().expect("name")
        );
        let digest = inspect_digest(&skopeo, work.path(), &format!("{repository}:1.0"));
        let found = signatures_beside(&skopeo, work.path(), &repository, &digest);
        assert_eq!(found.len(), 1, "{repository}");
        let (payload, signature) = &found[0];
        let json: serde_json::Value = serde_json::from_slice(payload).expect("payload");
        assert_eq!(
            json["critical"]["identity"]["docker-reference"],
            repository.as_str()
        );
        assert_eq!(
            json["critical"]["image"]["docker-manifest-digest"],
            digest.as_str()
        );
        assert_eq!(json["critical"]["type"], "cosign container image signature");
        assert!(
            openssl_verifies(&openssl, work.path(), &public, payload, signature),
            "{repository}"
        );
    }
    // skopeo with sigstore (containers/image's own verification) takes the signed images
    // under a policy that requires a signature by the key, and refuses a signed image copied
    // with its signature under another name (a re-tag) and an unsigned one.
    let sigstore = SigstorePolicy::new(sigstore, work.path(), &server.address, &public);
    for (_, name, _) in IMAGES {
        let image = format!("{}/dest/{name}", server.address);
        let (accepted, text) = sigstore.accepts(work.path(), &image);
        assert!(accepted, "skopeo refused {image}: {text}");
    }
    let anything = work.path().join("anything.json");
    std::fs::write(
        &anything,
        r#"{"default": [{"type": "insecureAcceptAnything"}]}"#,
    )
    .expect("policy");
    let copy_as_is = |from: &str, to: &str| {
        ok(
            &skopeo,
            &[
                "--policy",
                &anything.display().to_string(),
                "copy",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                &format!("docker://{}/{from}", server.address),
                &format!("docker://{}/{to}", server.address),
            ],
            work.path(),
        )
    };
    let flask = format!("{}/dest/python_flask_redis", server.address);
    let digest = inspect_digest(&skopeo, work.path(), &format!("{flask}:1.0"));
    let signature_tag = format!("{}.sig", digest.replace(':', "-"));
    copy_as_is("dest/python_flask_redis:1.0", "dest/impostor:1.0");
    copy_as_is(
        &format!("dest/python_flask_redis:{signature_tag}"),
        &format!("dest/impostor:{signature_tag}"),
    );
    let impostor = format!("{}/dest/impostor:1.0", server.address);
    let (accepted, text) = sigstore.accepts(work.path(), &impostor);
    assert!(!accepted, "skopeo took the re-tagged {impostor}");
    assert!(text.contains("is not accepted"), "{text}");
    // Nor does it take the signed images under a policy that trusts another key.
    let (status, stderr) = meshfile(&["key", "generate", "--cosign", "--out", "other.key"]);
    assert_eq!(status, 0, "{stderr}");
    let other = SigstorePolicy::new(
        sigstore.skopeo.clone(),
        &work.path().join("other"),
        &server.address,
        &t.dir().join("other.pub"),
    );
    let (accepted, text) = other.accepts(work.path(), &format!("{flask}:1.0"));
    assert!(!accepted, "skopeo took {flask} under another key");
    assert!(text.contains("signature verification failed"), "{text}");
    // An image copied elsewhere by someone else carries no signature; skopeo refuses it and
    // verify-images says so.
    copy_as_is("src/redis:1.0", "dest/redis:1.0");
    let unsigned = format!("{}/dest/redis:1.0", server.address);
    let (accepted, text) = sigstore.accepts(work.path(), &unsigned);
    assert!(!accepted, "skopeo took the unsigned {unsigned}");
    assert!(text.contains("no signature exists"), "{text}");
    let (status, stderr) = meshfile(&["template", "-f", ".", "-n"]);
    assert_eq!(status, 0, "{stderr}");
    let mesh = std::fs::read_to_string(t.dir().join("mesh.yaml")).expect("mesh");
    std::fs::write(
        t.dir().join("mesh.yaml"),
        mesh.replace("  squash: true\n", "  strip: false\n"),
    )
    .expect("write");
    let (status, stderr) = meshfile(&["verify-images", "-f", ".", "--key", "cosign.pub"]);
    assert_eq!(status, 1, "{stderr}");
    assert!(
        stderr.contains("NOT SIGNED") && stderr.contains("/dest/redis@"),
        "{stderr}"
    );
}

#[test]
fn a_published_descriptor_lets_a_mesh_compile_with_nothing_but_the_meshfile() {
    let Some((registry, skopeo, umoci)) = registry_tools() else {
        return;
    };
    let (server, _work, _) = registry_with_images(&registry, &skopeo, &umoci);
    // The author publishes both services' descriptors, one signed with the author's key.
    let author = example_with_repo(
        &server.address,
        &IMAGES,
        "  destination: unused.example/x\n  strip: false\n",
    );
    let run_in = |t: &Test, args: &[&str]| with_cosign_password(t, "pw", args);
    let (status, stderr) = run_in(
        &author,
        &["key", "generate", "--cosign", "--out", "author.key"],
    );
    assert_eq!(status, 0, "{stderr}");
    for (file, key) in [("flask.yaml", Some("author.key")), ("redis.yaml", None)] {
        let mut args = vec!["publish", "-f", file];
        args.extend(key.map(|k| ["--key", k]).into_iter().flatten());
        let (status, stderr) = run_in(&author, &args);
        assert_eq!(status, 0, "{stderr}");
        assert!(stderr.contains("published the descriptor of"), "{stderr}");
    }
    // A user with nothing but the Meshfile: an empty home and target.
    let user = Test::new();
    let mesh = std::fs::read_to_string(author.dir().join("mesh.yaml")).expect("mesh");
    let mesh = mesh.split("repo:").next().expect("mesh").to_owned();
    std::fs::write(user.dir().join("mesh.yaml"), &mesh).expect("mesh");
    std::fs::copy(
        author.dir().join("author.pub"),
        user.dir().join("author.pub"),
    )
    .expect("key");
    let (status, stderr) = run_in(&user, &["template", "-n", "-f", "mesh.yaml"]);
    assert_eq!(status, 1, "-n asks no registry: {stderr}");
    assert!(
        stderr.contains("error[E102]") && stderr.contains("without -n"),
        "{stderr}"
    );
    let (status, stderr) = run_in(&user, &["template", "-f", "mesh.yaml"]);
    assert_eq!(status, 0, "{stderr}");
    assert_eq!(
        stderr.matches("comes from its registry").count(),
        2,
        "{stderr}"
    );
    assert!(stderr.contains("signature not checked"), "{stderr}");
    // Recorded: offline now.
    let (status, stderr) = run_in(&user, &["template", "-n", "-f", "mesh.yaml"]);
    assert_eq!(status, 0, "{stderr}");
    let trusting_the_author = |t: &Test| {
        run_in(
            t,
            &[
                "template",
                "-f",
                "mesh.yaml",
                "--descriptor-key",
                "author.pub",
            ],
        )
    };
    // Trusting the author's key: the unsigned redis descriptor is refused.
    let fresh = Test::new();
    std::fs::write(fresh.dir().join("mesh.yaml"), &mesh).expect("mesh");
    std::fs::copy(
        author.dir().join("author.pub"),
        fresh.dir().join("author.pub"),
    )
    .expect("key");
    let (status, stderr) = trusting_the_author(&fresh);
    assert_eq!(status, 1, "a refusal: {stderr}");
    assert!(
        stderr.contains("error[E223]: ") && stderr.contains("is refused: it carries no signature"),
        "{stderr}"
    );
    // The Meshfile may name the trusted keys itself (a meshfile extension, so W108).
    let (status, stderr) = run_in(&fresh, &["lint", "-f", "mesh.yaml"]);
    assert_eq!(status, 0, "{stderr}");
    std::fs::write(
        fresh.dir().join("mesh.yaml"),
        format!("{mesh}descriptor_keys: [author.pub]\n"),
    )
    .expect("mesh");
    let (_, lint) = run_in(&fresh, &["lint", "-f", "mesh.yaml"]);
    assert!(
        lint.contains("warning[W108]") && lint.contains("descriptor_keys"),
        "{lint}"
    );
    let (status, stderr) = run_in(&fresh, &["template", "-f", "mesh.yaml"]);
    assert_ne!(status, 0, "{stderr}");
    assert!(
        stderr.contains("is refused: it carries no signature"),
        "{stderr}"
    );
    std::fs::write(
        fresh.dir().join("mesh.yaml"),
        format!("{mesh}descriptor_keys: [missing.pub]\n"),
    )
    .expect("mesh");
    let (status, stderr) = run_in(&fresh, &["template", "-f", "mesh.yaml"]);
    assert_eq!(status, 1, "{stderr}");
    assert!(
        stderr.contains("mesh.yaml:")
            && stderr.contains("error[E217]: descriptor key `missing.pub`"),
        "located in the Meshfile: {stderr}"
    );
    std::fs::write(fresh.dir().join("mesh.yaml"), &mesh).expect("mesh");
    // Another key signs the redis descriptor: refused, naming that key.
    let (status, stderr) = run_in(
        &author,
        &["key", "generate", "--cosign", "--out", "stranger.key"],
    );
    assert_eq!(status, 0, "{stderr}");
    let (status, stderr) = run_in(
        &author,
        &["publish", "-f", "redis.yaml", "--key", "stranger.key"],
    );
    assert_eq!(status, 0, "{stderr}");
    let (status, stderr) = trusting_the_author(&fresh);
    assert_ne!(status, 0, "{stderr}");
    assert!(
        stderr.contains("is signed by key sha256:") && stderr.contains("which is not trusted"),
        "{stderr}"
    );
}

#[test]
fn a_pinned_digest_is_copied_and_signed_even_after_its_tag_moved() {
    let Some((registry, skopeo, umoci)) = registry_tools() else {
        return;
    };
    let (source, work, digests) = registry_with_images(&registry, &skopeo, &umoci);
    let destination = Registry::start(&registry);
    // redis:1.0 as the Meshfile pins it, then the tag moved to another image.
    let pinned = digests[1].clone();
    let moved = build_and_push(
        &umoci,
        &skopeo,
        work.path(),
        &format!("{}/src/redis:1.0", source.address),
        "another redis, pushed under the same tag",
    );
    assert_ne!(moved, pinned);
    let images: Images = [
        IMAGES[0],
        (
            "registry.example.com/meshfile/redis:1.0",
            "redis:1.0@PIN",
            "redis",
        ),
    ];
    let t = example_with_repo(
        &source.address,
        &images,
        &format!(
            "  destination: {}/dest\n  strip: false\n  key_file: cosign.key\n",
            destination.address
        ),
    );
    for name in ["mesh.yaml", "redis.yaml", "measurements.yaml"] {
        let path = t.dir().join(name);
        let text = std::fs::read_to_string(&path).expect("read");
        std::fs::write(&path, text.replace("@PIN", &format!("@{pinned}"))).expect("write");
    }
    let meshfile = |args: &[&str]| with_cosign_password(&t, "hunter2", args);
    let (status, stderr) = meshfile(&["key", "generate", "--cosign", "--out", "cosign.key"]);
    assert_eq!(status, 0, "{stderr}");
    let (status, stderr) = meshfile(&["template", "-f", "."]);
    assert_eq!(status, 0, "{stderr}");
    let values = |t: &Test| {
        std::fs::read_to_string(t.dir().join("target/helm/values.yaml")).expect("values")
    };
    assert!(
        values(&t).contains(&pinned),
        "template pins the digest: {}",
        values(&t)
    );
    let (status, stderr) = meshfile(&["apply", "-f", "."]);
    assert_eq!(status, 0, "{stderr}");
    // The destination holds the pinned image, not what the tag serves now.
    let copied = format!("{}/dest/redis:1.0", destination.address);
    assert_eq!(inspect_digest(&skopeo, work.path(), &copied), pinned);
    assert!(
        stderr.contains(&format!("its tag now serves {moved}, another image")),
        "{stderr}"
    );
    // Signed by the pinned digest.
    assert!(
        stderr.contains(&format!(
            "signed {}/dest/redis@{pinned}",
            destination.address
        )),
        "{stderr}"
    );
    let chart = values(&t);
    assert!(
        chart.contains(&format!("/dest/redis@{pinned}")) && !chart.contains(&moved),
        "{chart}"
    );
}
