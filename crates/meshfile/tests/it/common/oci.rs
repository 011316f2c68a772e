//! A real OCI registry (Debian's `docker-registry`) on 127.0.0.1, images built with umoci and
//! pushed with skopeo, and the examples pointed at them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use crate::tools::{run, tool};
use crate::{Test, workspace};

/// Whom a test registry admits.
pub enum Auth<'a> {
    /// Anyone.
    None,
    /// The users of these `htpasswd` lines (`user:bcrypt hash`), by HTTP Basic authentication.
    Users(&'a str),
    /// Holders of tokens of this service (the distribution spec's token authentication).
    Tokens(&'a crate::token::TokenService),
}

/// A registry process on a free loopback port, stopped when dropped.
pub struct Registry {
    child: Child,
    pub address: String,
    _state: tempfile::TempDir,
}

impl Registry {
    pub fn start(binary: &Path) -> Registry {
        Registry::with_auth(binary, Auth::None)
    }

    pub fn with_auth(binary: &Path, auth: Auth<'_>) -> Registry {
        let state = tempfile::tempdir().expect("state");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let address = format!("127.0.0.1:{port}");
        let config = state.path().join("config.yml");
        let mut text = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\n",
            state.path().join("data").display()
        );
        match auth {
            Auth::None => {}
            Auth::Users(users) => {
                let file = state.path().join("htpasswd");
                std::fs::write(&file, users).expect("htpasswd");
                text.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: meshfile-test\n    path: {}\n",
                    file.display()
                ));
            }
            Auth::Tokens(service) => text.push_str(&service.registry_config()),
        }
        std::fs::write(&config, text).expect("config");
        let mut command = Command::new(binary);
        crate::isolate(&mut command, state.path());
        let child = command
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start registry");
        let registry = Registry {
            child,
            address,
            _state: state,
        };
        let url = format!("http://{}/v2/", registry.address);
        let ready = (0..100).any(|_| {
            let up = reqwest::blocking::get(&url)
                .is_ok_and(|r| r.status().is_success() || r.status().as_u16() == 401);
            if !up {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            up
        });
        assert!(ready, "registry did not come up at {url}");
        registry
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The registry and the tools that build and push images: docker-registry, skopeo, umoci.
pub fn registry_tools() -> Option<(PathBuf, PathBuf, PathBuf)> {
    Some((
        tool("bin/docker-registry")?,
        tool("bin/skopeo")?,
        tool("bin/umoci")?,
    ))
}

pub fn ok(program: &PathBuf, args: &[&str], dir: &Path) -> String {
    let (ok, text) = run(program, args, dir);
    assert!(ok, "{} {}:\n{text}", program.display(), args.join(" "));
    text
}

/// The hello-world example with its image at `image`.
pub fn example_with_image(image: &str) -> Test {
    let src = workspace().join("examples/hello-world");
    let mut t = Test::new();
    for entry in std::fs::read_dir(&src).expect("example") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path)
            .expect("read")
            .replace("registry.example.com/meshfile/python_hello_user:1", image);
        t = t.file(
            path.file_name().and_then(|n| n.to_str()).expect("name"),
            text,
        );
    }
    t
}

/// An image of three layers built with umoci (a file, a `/scone` directory, then a file
/// removed: a whiteout), pushed to `image` with skopeo; its digest.
pub fn build_and_push(
    umoci: &PathBuf,
    skopeo: &PathBuf,
    work: &Path,
    image: &str,
    text: &str,
) -> String {
    let layout = work.join(format!("layout-{}", text.len()));
    let bundle = work.join(format!("bundle-{}", text.len()));
    let (layout_arg, bundle_arg) = (layout.display().to_string(), bundle.display().to_string());
    ok(umoci, &["init", "--layout", &layout_arg], work);
    ok(umoci, &["new", "--image", &format!("{layout_arg}:v")], work);
    let rootfs = bundle.join("rootfs");
    let layers: [&dyn Fn(); 3] = [
        &|| {
            std::fs::create_dir_all(rootfs.join("app")).expect("dir");
            std::fs::write(rootfs.join("app/main.py"), text).expect("file");
            std::fs::write(rootfs.join("app/old.txt"), "to be removed").expect("file");
        },
        &|| {
            std::fs::create_dir_all(rootfs.join("scone")).expect("dir");
            std::fs::write(rootfs.join("scone/runtime.conf"), "scone").expect("file");
        },
        &|| std::fs::remove_file(rootfs.join("app/old.txt")).expect("whiteout"),
    ];
    for change in layers {
        ok(
            umoci,
            &["unpack", "--image", &format!("{layout_arg}:v"), &bundle_arg],
            work,
        );
        change();
        ok(
            umoci,
            &["repack", "--image", &format!("{layout_arg}:v"), &bundle_arg],
            work,
        );
        std::fs::remove_dir_all(&bundle).expect("bundle");
    }
    ok(
        skopeo,
        &[
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{layout_arg}:v"),
            &format!("docker://{image}"),
        ],
        work,
    );
    inspect_digest(skopeo, work, image)
}

pub fn inspect_digest(skopeo: &PathBuf, work: &Path, image: &str) -> String {
    inspect(skopeo, work, image).unwrap_or_else(|| panic!("skopeo finds no image {image}"))
}

/// The digest `skopeo inspect` finds, or `None` when there is no such image.
pub fn inspect(skopeo: &PathBuf, work: &Path, image: &str) -> Option<String> {
    let (found, text) = run(
        skopeo,
        &[
            "inspect",
            "--tls-verify=false",
            "--format",
            "{{.Digest}}",
            &format!("docker://{image}"),
        ],
        work,
    );
    found.then(|| text.trim().to_owned())
}

/// The two images of the flask-redis example, as built by [`build_and_push`].
pub type Images = [(&'static str, &'static str, &'static str); 2];

pub const IMAGES: Images = [
    (
        "registry.example.com/meshfile/python_flask_redis:1.0",
        "python_flask_redis:1.0",
        "print('flask')",
    ),
    (
        "registry.example.com/meshfile/redis:1.0",
        "redis:1.0",
        "redis",
    ),
];

/// A registry holding the two example images under `src/` (built by [`build_and_push`]), a
/// work directory, and the images' digests.
pub fn registry_with_images(
    registry: &Path,
    skopeo: &PathBuf,
    umoci: &PathBuf,
) -> (Registry, tempfile::TempDir, Vec<String>) {
    let server = Registry::start(registry);
    let work = tempfile::tempdir().expect("work");
    let digests = IMAGES
        .iter()
        .map(|(_, name, text)| {
            build_and_push(
                umoci,
                skopeo,
                work.path(),
                &format!("{}/src/{name}", server.address),
                text,
            )
        })
        .collect();
    (server, work, digests)
}
