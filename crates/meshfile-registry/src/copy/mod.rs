//! Copying an image to another repository (the Meshfile's `repo.destination`), byte for byte:
//! its manifest, or its image index with every platform's manifest, their configs and layers,
//! all by digest, so the copy has the source's digest. A blob the destination has already is
//! not sent again (an interrupted copy resumes where it stopped); within one registry a blob
//! is mounted from the source repository instead of sent. Blobs stream through: memory stays
//! bounded whatever their size.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use sha2::Digest;

mod rewritten;
mod signatures;

pub use signatures::Artifact;

use crate::{Credentials, MANIFEST_TYPES, MAX_MANIFEST, Reference, RegistryError, root_cause};

/// Platforms of an index, and layers of a manifest, at most.
const MAX_ENTRIES: usize = 1024;
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The annotation of a signature layer that holds the signature (as cosign writes it).
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Blobs of one manifest transferred at once.
const BLOBS_AT_ONCE: usize = 4;

const INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// How a blob reached the destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobTransfer {
    /// The destination had it.
    Present,
    /// Mounted from the source repository on the same registry.
    Mounted,
    /// Sent.
    Sent,
}

/// What copying an image did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Copied {
    /// The digest of the manifest (or index) at the destination: the source's, unless rewritten.
    pub digest: String,
    /// The digest of the source's manifest (or index).
    pub source_digest: String,
    pub present: usize,
    pub mounted: usize,
    pub sent: usize,
    pub bytes_sent: u64,
}

impl Copied {
    fn count(&mut self, transfer: BlobTransfer, size: u64) {
        match transfer {
            BlobTransfer::Present => self.present += 1,
            BlobTransfer::Mounted => self.mounted += 1,
            BlobTransfer::Sent => {
                self.sent += 1;
                self.bytes_sent += size;
            }
        }
    }
}

/// Sees the bytes of blobs as they are copied (a progress display). Shared with the upload
/// streams, which report as bytes pass.
pub trait Progress: Send + Sync {
    /// Blobs of these many bytes are to be copied (said once per image manifest).
    fn planned(&self, _bytes: u64) {}
    /// These many bytes are done: a chunk streamed, or a whole blob sent from memory, found
    /// at the destination or mounted.
    fn advanced(&self, _bytes: u64) {}
    /// One blob is done.
    fn blob(&self, _image: &str, _digest: &str, _size: u64, _transfer: BlobTransfer) {}
    /// The copies are over, done or failed (said by whoever started them).
    fn finished(&self) {}
}

/// Shows nothing.
pub struct NoProgress;
impl Progress for NoProgress {}

/// Copies images; one per run, its connections and tokens reused.
pub struct Copier {
    http: reqwest::Client,
    credentials: Arc<Credentials>,
    /// `Authorization` values by `registry/repository`.
    tokens: Mutex<BTreeMap<String, String>>,
}

/// Where a blob upload stands once started.
enum Upload {
    /// Mounted from another repository: nothing to send.
    Mounted,
    /// Send the bytes here.
    At(String),
}

/// What a blob upload sends: bytes at hand, or a file streamed in chunks (each reported to
/// the progress as it goes).
enum Sent<'a> {
    Bytes(&'a [u8]),
    File(&'a Path, Arc<dyn Progress>),
}

impl Sent<'_> {
    /// Its size and the request body sending it.
    fn body(self) -> std::io::Result<(u64, reqwest::Body)> {
        match self {
            Sent::Bytes(bytes) => Ok((bytes.len() as u64, reqwest::Body::from(bytes.to_vec()))),
            Sent::File(path, progress) => {
                let file = std::fs::File::open(path)?;
                let size = file.metadata()?.len();
                let chunks = futures_util::stream::unfold(file, move |mut file| {
                    let progress = Arc::clone(&progress);
                    async move {
                        let mut chunk = vec![0; 256 * 1024];
                        match file.read(&mut chunk) {
                            Ok(0) => None,
                            Ok(n) => {
                                chunk.truncate(n);
                                progress.advanced(n as u64);
                                Some((Ok(chunk), file))
                            }
                            Err(e) => Some((Err(e), file)),
                        }
                    }
                });
                Ok((size, reqwest::Body::wrap_stream(chunks)))
            }
        }
    }
}

/// A manifest as a registry serves it.
struct Manifest {
    bytes: Vec<u8>,
    media_type: String,
}

impl Copier {
    pub fn new(credentials: Arc<Credentials>) -> Result<Copier, RegistryError> {
        // Blobs take as long as they take; a registry that stops sending for a minute is gone.
        let http = crate::client(|b| b.read_timeout(Duration::from_secs(60)))?;
        Ok(Copier {
            http,
            credentials,
            tokens: Mutex::new(BTreeMap::new()),
        })
    }

    /// Copies `source` (by its tag) to `destination` (under its tag).
    pub async fn copy(
        &self,
        source: &Reference,
        destination: &Reference,
        progress: &Arc<dyn Progress>,
    ) -> Result<Copied, RegistryError> {
        let mut copied = Copied::default();
        let top = self.manifest(source, source.selector()).await?;
        copied.source_digest = digest_of(&top.bytes);
        if INDEX_TYPES.contains(&top.media_type.as_str()) {
            let index = json(source, &top.bytes)?;
            let children = entries(source, &index, "manifests")?;
            for (digest, _) in children {
                let child = self.manifest(source, &digest).await?;
                self.blobs(source, destination, &child, progress, &mut copied)
                    .await?;
                self.put_manifest(destination, &digest, &child).await?;
            }
        } else {
            self.blobs(source, destination, &top, progress, &mut copied)
                .await?;
        }
        copied.digest = self
            .put_manifest(destination, &destination.tag, &top)
            .await?;
        Ok(copied)
    }

    /// The digest `source` (by its tag) has now, which a byte-for-byte copy keeps: what
    /// [`Copier::copy`] would make, nothing written.
    pub async fn prepare(&self, source: &Reference) -> Result<Copied, RegistryError> {
        let top = self.manifest(source, source.selector()).await?;
        let digest = digest_of(&top.bytes);
        Ok(Copied {
            source_digest: digest.clone(),
            digest,
            ..Copied::default()
        })
    }

    /// A blob's bytes, no more than the `size` its descriptor gives, checked against its
    /// digest.
    async fn read_blob(
        &self,
        reference: &Reference,
        digest: &str,
        size: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        let response = self.get_blob(reference, digest).await?;
        let bytes = crate::body(response, size, reference, &format!("blob {digest}")).await?;
        if digest_of(&bytes) != digest {
            return Err(mismatch(reference, digest));
        }
        Ok(bytes)
    }

    /// A blob's download, answered with success.
    async fn get_blob(
        &self,
        reference: &Reference,
        digest: &str,
    ) -> Result<reqwest::Response, RegistryError> {
        let url = format!("{}/blobs/{digest}", repository_url(reference));
        let response = self.send(reference, || self.http.get(&url)).await?;
        if !response.status().is_success() {
            return Err(failed(
                reference,
                &format!("reading blob {digest}"),
                response.status().as_u16(),
            ));
        }
        Ok(response)
    }

    /// A blob made here at the destination, unless it is there already.
    async fn put_blob(
        &self,
        destination: &Reference,
        digest: &str,
        blob: Sent<'_>,
    ) -> Result<BlobTransfer, RegistryError> {
        if self.has_blob(destination, digest).await? {
            return Ok(BlobTransfer::Present);
        }
        match self.start_upload(destination, digest, None).await? {
            Upload::Mounted => Ok(BlobTransfer::Mounted),
            Upload::At(location) => {
                let (size, body) = blob.body().map_err(|e| {
                    rewrite_failed(destination, &format!("reading a layer to send: {e}"))
                })?;
                self.finish_upload(destination, &location, digest, size, body)
                    .await
            }
        }
    }

    /// Whether the destination has the blob already.
    async fn has_blob(&self, destination: &Reference, digest: &str) -> Result<bool, RegistryError> {
        let head = format!("{}/blobs/{digest}", repository_url(destination));
        let response = self.send(destination, || self.http.head(&head)).await?;
        Ok(response.status().is_success())
    }

    /// Starts a blob upload at the destination (a mount from `from`, on the same registry,
    /// when given): mounted already, or where to send the bytes.
    async fn start_upload(
        &self,
        destination: &Reference,
        digest: &str,
        from: Option<&Reference>,
    ) -> Result<Upload, RegistryError> {
        let mut uploads = format!("{}/blobs/uploads/", repository_url(destination));
        if let Some(source) = from.filter(|s| s.registry == destination.registry) {
            uploads = format!("{uploads}?mount={digest}&from={}", source.repository);
        }
        let response = self.send(destination, || self.http.post(&uploads)).await?;
        match response.status().as_u16() {
            201 => Ok(Upload::Mounted),
            202 => Ok(Upload::At(location(destination, &response)?)),
            status => Err(failed(
                destination,
                &format!("starting the upload of blob {digest}"),
                status,
            )),
        }
    }

    /// Sends a blob's bytes (`size` of them, streamed from `body`) where its upload started.
    /// Sent once: the upload's start has made the authorization it needs.
    async fn finish_upload(
        &self,
        destination: &Reference,
        location: &str,
        digest: &str,
        size: u64,
        body: reqwest::Body,
    ) -> Result<BlobTransfer, RegistryError> {
        let separator = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{separator}digest={digest}");
        let mut request = self
            .http
            .put(&put)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, size)
            .body(body);
        if let Some(value) = self.token(destination)? {
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| RegistryError::Unreachable {
                registry: destination.registry.clone(),
                detail: format!("sending blob {digest}: {}", root_cause(&e)),
            })?;
        if response.status().as_u16() != 201 {
            return Err(failed(
                destination,
                &format!("sending blob {digest}"),
                response.status().as_u16(),
            ));
        }
        Ok(BlobTransfer::Sent)
    }

    /// Every blob of a manifest (config and layers) at the destination.
    async fn blobs(
        &self,
        source: &Reference,
        destination: &Reference,
        manifest: &Manifest,
        progress: &Arc<dyn Progress>,
        copied: &mut Copied,
    ) -> Result<(), RegistryError> {
        let parsed = json(source, &manifest.bytes)?;
        let mut blobs = entries(source, &parsed, "layers")?;
        if let Some(config) = parsed.get("config") {
            blobs.insert(0, descriptor(source, config)?);
        }
        let image = source.to_string();
        progress.planned(blobs.iter().map(|(_, size)| size).sum());
        let done: Vec<(BlobTransfer, u64)> = futures_util::stream::iter(blobs)
            .map(|(digest, size)| {
                let image = &image;
                async move {
                    let transfer =
                        (self.blob(source, destination, &digest, size, progress)).await?;
                    if transfer != BlobTransfer::Sent {
                        progress.advanced(size);
                    }
                    progress.blob(image, &digest, size, transfer);
                    Ok::<_, RegistryError>((transfer, size))
                }
            })
            .buffer_unordered(BLOBS_AT_ONCE)
            .try_collect()
            .await?;
        for (transfer, size) in done {
            copied.count(transfer, size);
        }
        Ok(())
    }

    /// One blob at the destination: there already, mounted, or streamed from the source (its
    /// bytes reported to `progress` as they pass).
    async fn blob(
        &self,
        source: &Reference,
        destination: &Reference,
        digest: &str,
        size: u64,
        progress: &Arc<dyn Progress>,
    ) -> Result<BlobTransfer, RegistryError> {
        if self.has_blob(destination, digest).await? {
            return Ok(BlobTransfer::Present);
        }
        let location = match self.start_upload(destination, digest, Some(source)).await? {
            Upload::Mounted => return Ok(BlobTransfer::Mounted),
            Upload::At(location) => location,
        };
        let blob_url = format!("{}/blobs/{digest}", repository_url(source));
        let download = self.send(source, || self.http.get(&blob_url)).await?;
        if !download.status().is_success() {
            return Err(failed(
                source,
                &format!("reading blob {digest}"),
                download.status().as_u16(),
            ));
        }
        let seen = Arc::clone(progress);
        let stream =
            (download.bytes_stream()).inspect_ok(move |chunk| seen.advanced(chunk.len() as u64));
        let body = reqwest::Body::wrap_stream(stream);
        self.finish_upload(destination, &location, digest, size, body)
            .await
    }

    /// A manifest by tag or digest, with its media type.
    async fn manifest(
        &self,
        reference: &Reference,
        tag_or_digest: &str,
    ) -> Result<Manifest, RegistryError> {
        let url = format!("{}/manifests/{tag_or_digest}", repository_url(reference));
        let response = self
            .send(reference, || {
                self.http
                    .get(&url)
                    .header(reqwest::header::ACCEPT, MANIFEST_TYPES)
            })
            .await?;
        match response.status().as_u16() {
            200 => {}
            404 => {
                return Err(RegistryError::NotFound {
                    image: format!(
                        "{}/{}:{tag_or_digest}",
                        reference.registry, reference.repository
                    ),
                });
            }
            status => return Err(failed(reference, "reading the manifest", status)),
        }
        let media_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned())
            .unwrap_or_default();
        let bytes = crate::body(response, MAX_MANIFEST, reference, "the manifest").await?;
        if tag_or_digest.starts_with("sha256:")
            && format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes))) != tag_or_digest
        {
            return Err(protocol(
                reference,
                &format!("the manifest served as {tag_or_digest} has another digest"),
            ));
        }
        let media_type = if media_type.is_empty() {
            json(reference, &bytes)?["mediaType"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        } else {
            media_type
        };
        Ok(Manifest {
            bytes: bytes.to_vec(),
            media_type,
        })
    }

    /// Puts a manifest under a tag or digest; its digest (which the registry must confirm).
    async fn put_manifest(
        &self,
        destination: &Reference,
        tag_or_digest: &str,
        manifest: &Manifest,
    ) -> Result<String, RegistryError> {
        let url = format!("{}/manifests/{tag_or_digest}", repository_url(destination));
        let response = self
            .send(destination, || {
                self.http
                    .put(&url)
                    .header(reqwest::header::CONTENT_TYPE, &manifest.media_type)
                    .body(manifest.bytes.clone())
            })
            .await?;
        if response.status().as_u16() != 201 {
            return Err(failed(
                destination,
                "writing the manifest",
                response.status().as_u16(),
            ));
        }
        let digest = format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(&manifest.bytes))
        );
        let confirmed = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok());
        if confirmed.is_some_and(|c| c != digest) {
            return Err(protocol(
                destination,
                &format!(
                    "the registry stored the manifest as {}, not {digest}",
                    confirmed.unwrap_or_default()
                ),
            ));
        }
        Ok(digest)
    }

    fn token(&self, reference: &Reference) -> Result<Option<String>, RegistryError> {
        let key = format!("{}/{}", reference.registry, reference.repository);
        match self.tokens.lock().ok().and_then(|t| t.get(&key).cloned()) {
            Some(token) => Ok(Some(token)),
            None => self.credentials.basic(&reference.registry),
        }
    }

    /// Sends a request built by `build`, with the repository's authorization; once more after
    /// a `401` with what its challenge asks for.
    async fn send(
        &self,
        reference: &Reference,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, RegistryError> {
        let attempt = |authorization: Option<String>| {
            let mut request = build();
            if let Some(value) = authorization {
                request = request.header(reqwest::header::AUTHORIZATION, value);
            }
            request.send()
        };
        let response = attempt(self.token(reference)?)
            .await
            .map_err(|e| unreachable(reference, &e))?;
        if response.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let authorization =
            crate::authorize(&self.http, &self.credentials, reference, &response).await?;
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.insert(
                format!("{}/{}", reference.registry, reference.repository),
                authorization.clone(),
            );
        }
        attempt(Some(authorization))
            .await
            .map_err(|e| unreachable(reference, &e))
    }
}

fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

fn repository_url(reference: &Reference) -> String {
    format!("{}/v2/{}", reference.base(), reference.repository)
}

/// Where an upload goes on: the `Location` of its start, made absolute.
fn location(reference: &Reference, response: &reqwest::Response) -> Result<String, RegistryError> {
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| protocol(reference, "an upload started without a Location"))?;
    Ok(
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else {
            format!("{}{location}", reference.base())
        },
    )
}

fn json(reference: &Reference, bytes: &[u8]) -> Result<serde_json::Value, RegistryError> {
    serde_json::from_slice(bytes)
        .map_err(|e| protocol(reference, &format!("the manifest is not JSON: {e}")))
}

/// What a manifest as a registry serves it (`bytes` of `media_type`) refers to, each by digest
/// and size: the platforms' manifests of an index, the config and layers of an image. What
/// the copier reads of a manifest, bounded as it bounds it.
pub fn references(
    reference: &Reference,
    bytes: &[u8],
    media_type: &str,
) -> Result<Vec<(String, u64)>, RegistryError> {
    let value = json(reference, bytes)?;
    if INDEX_TYPES.contains(&media_type) {
        return entries(reference, &value, "manifests");
    }
    let mut found = vec![descriptor(reference, &value["config"])?];
    found.extend(entries(reference, &value, "layers")?);
    Ok(found)
}

/// A descriptor's digest and size.
fn descriptor(
    reference: &Reference,
    value: &serde_json::Value,
) -> Result<(String, u64), RegistryError> {
    let digest = value["digest"]
        .as_str()
        .filter(|d| meshfile_manifest::mesh::is_digest(d))
        .ok_or_else(|| protocol(reference, "a descriptor without a valid digest"))?;
    let size = value["size"]
        .as_u64()
        .ok_or_else(|| protocol(reference, "a descriptor without a size"))?;
    Ok((digest.to_owned(), size))
}

/// The descriptors of a manifest's `layers` or an index's `manifests`, bounded.
fn entries(
    reference: &Reference,
    value: &serde_json::Value,
    key: &str,
) -> Result<Vec<(String, u64)>, RegistryError> {
    let items = value[key].as_array().map(Vec::as_slice).unwrap_or_default();
    if items.len() > MAX_ENTRIES {
        return Err(protocol(
            reference,
            &format!("more than {MAX_ENTRIES} {key}"),
        ));
    }
    items
        .iter()
        .map(|item| descriptor(reference, item))
        .collect()
}

fn failed(reference: &Reference, what: &str, status: u16) -> RegistryError {
    match status {
        401 | 403 => RegistryError::Denied {
            image: reference.to_string(),
            registry: reference.registry.clone(),
            status,
        },
        _ => protocol(reference, &format!("{what}: HTTP {status}")),
    }
}

fn protocol(reference: &Reference, detail: &str) -> RegistryError {
    RegistryError::Protocol {
        image: reference.to_string(),
        detail: detail.to_owned(),
    }
}

fn rewrite_failed(reference: &Reference, detail: &str) -> RegistryError {
    RegistryError::Rewrite {
        image: reference.to_string(),
        detail: detail.to_owned(),
    }
}

fn scratch_failed(reference: &Reference, dir: &Path, e: &std::io::Error) -> RegistryError {
    rewrite_failed(
        reference,
        &format!("the scratch directory {}: {e}", dir.display()),
    )
}

fn mismatch(reference: &Reference, digest: &str) -> RegistryError {
    protocol(
        reference,
        &format!("blob {digest} does not match its digest"),
    )
}

fn unreachable(reference: &Reference, e: &reqwest::Error) -> RegistryError {
    RegistryError::Unreachable {
        registry: reference.registry.clone(),
        detail: root_cause(e),
    }
}
