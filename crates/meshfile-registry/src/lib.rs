//! OCI registries: the digest an image reference points at now, so that a chart can pin it.
//!
//! Speaks the distribution API's manifest `HEAD /v2/<name>/manifests/<tag>`, anonymously or with
//! the credentials `docker login` left (in `~/.docker/config.json` or with a credential helper),
//! including the bearer-token exchange that registries such as Docker Hub ask for. Always
//! HTTPS, except for loopback registries (`localhost`, `127.0.0.1`, `[::1]`), which Docker too
//! reaches over plain HTTP.

pub mod copy;
mod credentials;
pub mod rewrite;

pub use credentials::Credentials;

use std::collections::BTreeMap;
use std::time::Duration;

use sha2::Digest;

/// The manifest types a registry may hold for a tag; the digest is that of whichever it has.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

const DOCKER_HUB: &str = "registry-1.docker.io";

/// Manifests, indexes and referrer lists are read up to this size.
const MAX_MANIFEST: u64 = 4 * 1024 * 1024;
/// A token service's answer is read up to this size.
const MAX_TOKEN_ANSWER: u64 = 1024 * 1024;

/// An image reference by tag: where to ask, and for what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]`; Docker Hub names resolve to its registry host.
    pub registry: String,
    pub repository: String,
    pub tag: String,
    /// The digest the reference pins (`@sha256:...`), if it does: then the image is fetched
    /// by it, whatever the tag serves now.
    pub digest: Option<String>,
}

fn is_repository(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        })
}

fn is_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

impl Reference {
    /// `[registry/]repository[:tag]` (tag `latest` when absent). `None` for a reference that
    /// names a digest already (`@sha256:...`) or is not an image reference.
    pub fn parse(image: &str) -> Option<Reference> {
        Reference::parse_pinned(image).filter(|r| r.digest.is_none())
    }

    /// `[registry/]repository[:tag][@sha256:...]`: as [`Reference::parse`], and a reference
    /// that pins a digest too (the tag, `latest` when absent, names it at a destination).
    pub fn parse_pinned(image: &str) -> Option<Reference> {
        let (name, tag, digest) = meshfile_manifest::mesh::split_image(image);
        if digest
            .as_deref()
            .is_some_and(|d| !meshfile_manifest::mesh::is_digest(d))
        {
            return None;
        }
        let tag = tag.unwrap_or_else(|| "latest".to_owned());
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), rest.to_owned())
            }
            _ => (DOCKER_HUB.to_owned(), name),
        };
        let registry = match registry.as_str() {
            "docker.io" | "index.docker.io" => DOCKER_HUB.to_owned(),
            _ => registry,
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        (is_repository(&repository) && is_tag(&tag)).then_some(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// What the image is fetched by: the pinned digest, else the tag.
    pub fn selector(&self) -> &str {
        self.digest.as_deref().unwrap_or(&self.tag)
    }

    fn host(&self) -> &str {
        if let Some(rest) = self.registry.strip_prefix('[') {
            return rest.split_once(']').map_or(rest, |(host, _)| host);
        }
        self.registry
            .rsplit_once(':')
            .map_or(self.registry.as_str(), |(host, _)| host)
    }

    fn base(&self) -> String {
        let loopback = matches!(self.host(), "localhost" | "127.0.0.1" | "::1");
        let scheme = if loopback { "http" } else { "https" };
        format!("{scheme}://{}", self.registry)
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}:{}", self.registry, self.repository, self.tag)?;
        match &self.digest {
            Some(digest) => write!(f, "@{digest}"),
            None => Ok(()),
        }
    }
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach registry {registry}: {detail}")]
    Unreachable { registry: String, detail: String },
    #[error("{image}: the registry has no such image or tag")]
    NotFound { image: String },
    #[error(
        "{image}: the registry refused access ({status}); `docker login {registry}` stores credentials meshfile uses"
    )]
    Denied {
        image: String,
        registry: String,
        status: u16,
    },
    #[error("{image}: unexpected answer from the registry: {detail}")]
    Protocol { image: String, detail: String },
    #[error("credentials for {registry}: {detail}")]
    Credentials { registry: String, detail: String },
    /// Squashing or stripping an image failed: what its layers hold, or the scratch disk.
    #[error("{image}: cannot rewrite the image: {detail}")]
    Rewrite { image: String, detail: String },
}

/// Asks registries for digests; one per run, its connections reused.
pub struct Resolver {
    http: reqwest::Client,
    credentials: std::sync::Arc<Credentials>,
}

/// `key="value"` pairs of a `WWW-Authenticate` challenge after its scheme.
fn challenge_params(text: &str) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => quoted.split_once('"').unwrap_or((quoted, "")),
            None => after.split_once(',').unwrap_or((after, "")),
        };
        params.insert(key, value.to_owned());
        rest = next;
    }
    params
}

impl Resolver {
    pub fn new(credentials: std::sync::Arc<Credentials>) -> Result<Resolver, RegistryError> {
        let http = client(|b| b.timeout(Duration::from_secs(20)))?;
        Ok(Resolver { http, credentials })
    }

    /// The digest (`sha256:...`) of the manifest the reference's tag names now.
    pub async fn digest(&self, reference: &Reference) -> Result<String, RegistryError> {
        let url = format!(
            "{}/v2/{}/manifests/{}",
            reference.base(),
            reference.repository,
            reference.tag
        );
        let image = reference.to_string();
        let mut authorization = self.credentials.basic(&reference.registry)?;
        let mut response = self
            .request(reqwest::Method::HEAD, &url, &authorization, reference)
            .await?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            authorization =
                Some(authorize(&self.http, &self.credentials, reference, &response).await?);
            response = self
                .request(reqwest::Method::HEAD, &url, &authorization, reference)
                .await?;
        }
        let status = response.status();
        match status.as_u16() {
            200 => {}
            404 => return Err(RegistryError::NotFound { image }),
            401 | 403 => {
                return Err(RegistryError::Denied {
                    image,
                    registry: reference.registry.clone(),
                    status: status.as_u16(),
                });
            }
            other => {
                return Err(RegistryError::Protocol {
                    image,
                    detail: format!("HTTP {other}"),
                });
            }
        }
        let header = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .filter(|d| meshfile_manifest::mesh::is_digest(d))
            .map(str::to_owned);
        if let Some(digest) = header {
            return Ok(digest);
        }
        // No digest header: the digest is the hash of the manifest as served.
        let response = self
            .request(reqwest::Method::GET, &url, &authorization, reference)
            .await?;
        let manifest = body(response, MAX_MANIFEST, reference, "the manifest").await?;
        Ok(format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(&manifest))
        ))
    }

    async fn request(
        &self,
        method: reqwest::Method,
        url: &str,
        authorization: &Option<String>,
        reference: &Reference,
    ) -> Result<reqwest::Response, RegistryError> {
        let mut request = self
            .http
            .request(method, url)
            .header(reqwest::header::ACCEPT, MANIFEST_TYPES);
        if let Some(value) = authorization {
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        request
            .send()
            .await
            .map_err(|e| RegistryError::Unreachable {
                registry: reference.registry.clone(),
                detail: root_cause(&e),
            })
    }
}

/// The `Authorization` value the challenge of a `401` answer asks for: Basic from stored
/// credentials, or a bearer token fetched from the realm it names, for the scope it names
/// (pull, or pull and push; pull when it names none), anonymously when nothing is stored.
pub(crate) async fn authorize(
    http: &reqwest::Client,
    credentials: &Credentials,
    reference: &Reference,
    unauthorized: &reqwest::Response,
) -> Result<String, RegistryError> {
    let challenge = unauthorized
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let denied = || RegistryError::Denied {
        image: reference.to_string(),
        registry: reference.registry.clone(),
        status: 401,
    };
    let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return credentials.basic(&reference.registry)?.ok_or_else(denied);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(denied());
    }
    let params = challenge_params(params);
    let realm = params.get("realm").ok_or_else(denied)?;
    let scope = params
        .get("scope")
        .cloned()
        .unwrap_or_else(|| format!("repository:{}:pull", reference.repository));
    let mut query = vec![("scope", scope)];
    if let Some(service) = params.get("service") {
        query.push(("service", service.clone()));
    }
    let mut request = http.get(realm).query(&query);
    if let Some(basic) = credentials.basic(&reference.registry)? {
        request = request.header(reqwest::header::AUTHORIZATION, basic);
    }
    let response = request
        .send()
        .await
        .map_err(|e| RegistryError::Unreachable {
            registry: reference.registry.clone(),
            detail: root_cause(&e),
        })?;
    if !response.status().is_success() {
        return Err(denied());
    }
    let bytes = body(response, MAX_TOKEN_ANSWER, reference, "the token answer").await?;
    let body: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| RegistryError::Protocol {
            image: reference.to_string(),
            detail: format!("token: {e}"),
        })?;
    let token = body["token"]
        .as_str()
        .or_else(|| body["access_token"].as_str())
        .ok_or_else(denied)?;
    Ok(format!("Bearer {token}"))
}

/// An HTTP client for registries: meshfile's user agent, 5 s to connect, and `timeouts`.
fn client(
    timeouts: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
) -> Result<reqwest::Client, RegistryError> {
    let builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("meshfile/", env!("CARGO_PKG_VERSION")));
    timeouts(builder)
        .build()
        .map_err(|e| RegistryError::Unreachable {
            registry: String::new(),
            detail: e.to_string(),
        })
}

/// The innermost cause (`Connection refused`, a DNS failure): the outer layers only repeat the
/// URL and the library's names for the same thing.
/// A response body read no further than `limit` bytes (a registry may send more than it
/// declared, or declare nothing); why not, for `what`, otherwise.
pub(crate) async fn body(
    mut response: reqwest::Response,
    limit: u64,
    reference: &Reference,
    what: &str,
) -> Result<Vec<u8>, RegistryError> {
    let too_large = || RegistryError::Protocol {
        image: reference.to_string(),
        detail: format!("{what} is larger than {limit} bytes"),
    };
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| RegistryError::Unreachable {
            registry: reference.registry.clone(),
            detail: format!("reading {what}: {}", root_cause(&e)),
        })?
    {
        if (bytes.len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut innermost = e;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    innermost.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(image: &str) -> Option<(String, String, String)> {
        Reference::parse(image).map(|r| (r.registry, r.repository, r.tag))
    }

    #[test]
    fn references_name_registry_repository_and_tag() {
        let own = |r: &str, p: &str, t: &str| Some((r.to_owned(), p.to_owned(), t.to_owned()));
        assert_eq!(
            parsed("127.0.0.1:5000/mesh/demo:v1"),
            own("127.0.0.1:5000", "mesh/demo", "v1")
        );
        assert_eq!(
            parsed("registry.example.com/a/b"),
            own("registry.example.com", "a/b", "latest")
        );
        assert_eq!(parsed("redis:7"), own(DOCKER_HUB, "library/redis", "7"));
        assert_eq!(
            parsed("docker.io/sconecuratedimages/apps:x"),
            own(DOCKER_HUB, "sconecuratedimages/apps", "x")
        );
        assert_eq!(parsed("localhost/app:1"), own("localhost", "app", "1"));
        assert_eq!(parsed("[::1]:5000/app:1"), own("[::1]:5000", "app", "1"));
        assert_eq!(parsed("repo@sha256:abc"), None);
        assert_eq!(parsed("Upper/case:1"), None);
        assert_eq!(parsed("a/b:bad tag"), None);
    }

    #[test]
    fn loopback_registries_are_plain_http_others_https() {
        let base = |image: &str| Reference::parse(image).map(|r| r.base());
        assert_eq!(
            base("127.0.0.1:5000/a:1").as_deref(),
            Some("http://127.0.0.1:5000")
        );
        assert_eq!(
            base("localhost:5000/a:1").as_deref(),
            Some("http://localhost:5000")
        );
        assert_eq!(base("[::1]:5000/a:1").as_deref(), Some("http://[::1]:5000"));
        assert_eq!(
            base("registry.example.com/a:1").as_deref(),
            Some("https://registry.example.com")
        );
        assert_eq!(
            base("localhost.evil.example/a:1").as_deref(),
            Some("https://localhost.evil.example")
        );
    }

    #[test]
    fn challenges_are_read() {
        let p = challenge_params(
            r#"realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/redis:pull,push""#,
        );
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "repository:library/redis:pull,push");
    }
}
