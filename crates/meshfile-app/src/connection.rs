//! Stage 7, deliver: make a CAS hold exactly a compiled mesh's sessions.
//!
//! Convergent: each session's active version is read first; a session whose meaning is
//! unchanged is skipped, a missing one created, a changed one updated naming the hash just
//! read as predecessor (so a concurrent change is a conflict, never a lost update). Requests
//! run on the async runtime, many in flight; namespace first, exporters before importers.
//! Rerunning after an interruption picks up where it stopped.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use meshfile_cas::client::{Client, Trust};
use meshfile_cas::target::{Active, Target};
use meshfile_manifest::Code;
use meshfile_plan::Compiled;
use meshfile_plan::delivery::{self, Action, Current, SignedUpload, Step};

use crate::Error;
use crate::access::{CasAccess, Notices, with_port};

/// The caller the embedded store knows: whoever runs meshfile on this target directory.
const EMBEDDED_OWNER: &str = "embedded-owner";
/// Attempts of a request that failed for a passing reason (CAS down, overloaded).
const ATTEMPTS: u32 = 4;

/// What happens during delivery, for whoever shows it (traces, a progress bar).
pub trait Observer: Sync {
    /// One request finished: `read` or `write`, the session, its outcome, its time.
    fn request(&self, _what: &str, _session: &str, _outcome: &str, _elapsed: Duration) {}
    /// One session was written, or failed to be.
    fn written(&self, _step: &Step, _outcome: &Outcome) {}
    /// A level of sessions is done: what became of each, in plan order.
    fn level(&self, _done: &[(&Step, &Outcome)]) {}
    /// The delivery is over.
    fn finished(&self) {}
}

/// Observes nothing.
pub struct Quiet;
impl Observer for Quiet {}

/// A connected CAS (or the embedded store) and the runtime its requests run on.
pub struct CasConnection {
    runtime: tokio::runtime::Runtime,
    target: Target,
    /// How the store records this user as a creator when signing (`signer:` and the key).
    signer: Option<String>,
}

/// What a delivery in a signing mode would do.
pub struct SignedPlan {
    pub artifacts: Vec<crate::sign::Artifact>,
    /// The steps, each written one carrying its signed (or encrypted) session.
    pub steps: Vec<Step>,
    /// Each written session's signers and what they still lack.
    pub approvals: Vec<crate::sign::Approval>,
}

impl CasConnection {
    /// Connects to the CAS that holds the mesh's policies (`cas_url`). The embedded store
    /// under `target_dir` is made on first use when `writes`; otherwise (a plan) a store that
    /// does not exist yet is read as the empty one it would be, and nothing is made.
    pub fn connect(
        settings: &CasAccess,
        compiled: &Compiled,
        target_dir: &Path,
        writes: bool,
    ) -> Result<(CasConnection, Notices), Error> {
        let pinned = compiled.cas_key.as_deref();
        CasConnection::connect_to(settings, &compiled.cas_url, pinned, target_dir, writes)
    }

    /// Connects to the CAS at `cas_url` (`embedded`: the store under `target_dir`), which
    /// must present the key hash `pinned` when one is given.
    pub fn connect_to(
        settings: &CasAccess,
        cas_url: &str,
        pinned: Option<&str>,
        target_dir: &Path,
        writes: bool,
    ) -> Result<(CasConnection, Notices), Error> {
        let runtime = crate::runtime()?;
        let mut notices = Vec::new();
        if cas_url == meshfile_plan::EMBEDDED_CAS {
            let dir = target_dir.join("cas");
            let store = if writes || dir.join("sessions.redb").exists() {
                meshfile_cas::Store::open(&dir)
            } else {
                meshfile_cas::Store::empty(&dir)
            }
            .map_err(|e| Error::cas("the embedded development store", &e))?;
            let target = Target::Embedded {
                store,
                caller: EMBEDDED_OWNER.into(),
            };
            return Ok((
                CasConnection {
                    runtime,
                    target,
                    signer: None,
                },
                notices,
            ));
        }
        let address = with_port(cas_url);
        let identity = crate::identity::identity(settings, &mut notices)?;
        if let (Some(pin), Some(given)) = (pinned, &settings.cas_pin)
            && !pin.eq_ignore_ascii_case(given)
        {
            return Err(Error::new(
                Code::BadArguments,
                format!("the Meshfile's cas_key {pin} differs from --cas-pin {given}"),
            )
            .hint("the CAS must present the key the Meshfile names; check which one is right"));
        }
        let ca;
        let trust = match (&settings.cas_ca, settings.cas_pin.as_deref().or(pinned)) {
            // The Meshfile's cas_key is a pin: `--insecure` never weakens it.
            (_, Some(pin)) => Trust::PinnedKey(pin),
            (Some(path), None) => {
                ca = crate::paths::read_key_file(path)?;
                Trust::Ca {
                    ca: &ca,
                    name: &settings.server_name,
                }
            }
            (None, None) if settings.insecure => Trust::AnyServer,
            (None, None) => {
                return Err(Error::new(
                    Code::BadArguments,
                    format!("meshfile does not know how to trust CAS `{address}`"),
                )
                .hint("pass `--cas-ca FILE` (the CA that signed its certificate) or `--cas-pin HASH` (its key hash); to learn the key hash of a development CAS, run once with `--insecure`; never plaintext"));
            }
        };
        let unchecked = matches!(trust, Trust::AnyServer);
        let client = Client::with_timeout(&address, trust, &identity, settings.timeout)
            .map_err(|e| Error::cas(&format!("CAS {address}"), &e))?;
        if unchecked {
            runtime
                .block_on(client.version())
                .map_err(|e| Error::cas(&format!("CAS {address}"), &e))?;
            notices.extend(crate::probe::insecure_warnings(
                &address,
                client.unverified_server_key().as_deref(),
            ));
        }
        let target = Target::Remote { client };
        let signer = None;
        Ok((
            CasConnection {
                runtime,
                target,
                signer,
            },
            notices,
        ))
    }

    pub fn describe(&self) -> String {
        self.target.describe()
    }

    /// Signing as `key`: a namespace this key created is this user's too.
    pub fn signing_as(&mut self, key: &meshfile_session::signer::PublicKey) {
        self.signer = Some(meshfile_session::access::Creator::Signer(key.clone()).to_record());
    }

    /// A delivery in a signing mode: the sessions signed for what CAS holds (their
    /// predecessors are its active versions), each write carrying its signed session, and
    /// what each write's signatures still lack.
    pub fn plan_signed(
        &self,
        compiled: &Compiled,
        form: crate::sign::Form,
        backend: &crate::sign::Backend<'_>,
        target_dir: &Path,
        observer: &dyn Observer,
    ) -> Result<SignedPlan, Error> {
        if form.encrypts() {
            self.check_encryption_key(compiled)?;
        }
        let current = self.current(compiled, observer)?;
        let active: BTreeMap<String, Option<String>> = (compiled.sessions.iter())
            .map(|d| (d.name.clone(), current.get(&d.name).map(|c| c.hash.clone())))
            .collect();
        let base = crate::sign::Base::Active(&active);
        let artifacts = crate::sign::sign(compiled, form, backend, target_dir, &base)?;
        let mut steps = delivery::plan(&compiled.sessions, &current);
        crate::sign::attach(&mut steps, &artifacts, form);
        let approvals = crate::sign::approvals(&artifacts, &steps, &current, self.target.caller());
        Ok(SignedPlan {
            artifacts,
            steps,
            approvals,
        })
    }

    /// The Meshfile's `cas_encryption_key` is the key this CAS says it has: a wrong one is
    /// found before anyone signs (every encrypted session made for it would be refused).
    /// A CAS that does not say is taken at the Meshfile's word.
    fn check_encryption_key(&self, compiled: &Compiled) -> Result<(), Error> {
        let Some(given) = compiled.cas_encryption_key.as_deref() else {
            return Ok(());
        };
        let told = self
            .runtime
            .block_on(self.target.session_encryption_key())
            .map_err(|e| Error::cas(&self.describe(), &e))?;
        match told {
            Some(key) if !key.eq_ignore_ascii_case(given) => Err(Error::new(
                Code::EncryptionKeyMismatch,
                format!(
                    "cas_encryption_key {given} is not the session encryption key of {}: it says {key}",
                    self.describe()
                ),
            )
            .hint(format!(
                "set `cas_encryption_key: {key}` in the Meshfile if this is your CAS; nothing was signed or written"
            ))),
            _ => Ok(()),
        }
    }

    /// What CAS holds now of each session. The namespace is read first, alone: a CAS that
    /// is not trusted, does not answer or refuses stops everything after one request, and a
    /// namespace that another identity created stops delivery before anything is written.
    /// The rest are read [`Target::in_flight`] at a time.
    pub fn current(
        &self,
        compiled: &Compiled,
        observer: &dyn Observer,
    ) -> Result<BTreeMap<String, Current>, Error> {
        let target = &self.target;
        let (first, rest) = match compiled.sessions.split_first() {
            Some(split) => split,
            None => return Ok(BTreeMap::new()),
        };
        let namespace = self.runtime.block_on(read_one(target, first, observer))?;
        if let Some(active) = &namespace
            && first.create_only
        {
            self.check_creator(&first.name, active)?;
        }
        let reads = self.runtime.block_on(
            futures_util::stream::iter(rest)
                .map(|doc| async move { (doc, read_one(target, doc, observer).await) })
                .buffered(target.in_flight())
                .collect::<Vec<_>>(),
        );
        let mut current = BTreeMap::new();
        for (doc, found) in std::iter::once((first, Ok(namespace))).chain(reads) {
            if let Some(active) = found? {
                let (session, hash, creator) = (active.session, active.hash, active.creator);
                current.insert(
                    doc.name.clone(),
                    Current {
                        session,
                        hash,
                        creator,
                    },
                );
            }
        }
        Ok(current)
    }

    /// The session CAS holds under `name` now, its text and hash; `None` when it holds none.
    pub fn active(&self, name: &str) -> Result<Option<(String, String)>, Error> {
        let found = self
            .runtime
            .block_on(retried(|| self.target.read_active(name)));
        let found = found.map_err(|e| {
            Error::cas(&format!("{}: reading `{name}`", self.target.describe()), &e)
        })?;
        Ok(found.map(|a| (a.session, a.hash)))
    }

    /// A namespace another identity created is theirs: its access policy is theirs to change,
    /// whatever it says today, so nothing is delivered into it.
    fn check_creator(&self, namespace: &str, active: &Active) -> Result<(), Error> {
        let me = self.target.caller();
        let mine = |creator: &str| {
            creator.eq_ignore_ascii_case(me) || self.signer.as_deref() == Some(creator)
        };
        match active.creator.as_deref() {
            Some(creator) if !mine(creator) => Err(Error::new(
                Code::CasForbidden,
                format!(
                    "{}: namespace `{namespace}` was created by the client key {creator}, not by this identity ({me}); its creator decides who may change it and what is created in it",
                    self.target.describe()
                ),
            )
            .hint("nothing was written. If that key is not yours, the namespace was taken first: choose another policy.namespace, or have the CAS's operator remove it. If it is yours, apply with that identity (--identity)")),
            _ => Ok(()),
        }
    }

    /// What delivering the mesh would do, session by session.
    pub fn plan(&self, compiled: &Compiled, observer: &dyn Observer) -> Result<Vec<Step>, Error> {
        Ok(delivery::plan(
            &compiled.sessions,
            &self.current(compiled, observer)?,
        ))
    }

    /// Writes the steps level by level, the sessions of a level concurrently. A refused
    /// session is reported and the rest go on (an importer of a refused exporter is then
    /// refused too, and says why); once CAS is unreachable no further write starts.
    pub fn deliver(&self, steps: &[Step], observer: &dyn Observer) -> Vec<Outcome> {
        let target = &self.target;
        let mut outcomes: Vec<Outcome> = steps
            .iter()
            .map(|s| match &s.action {
                Action::Unchanged { hash } => Outcome::Unchanged { hash: hash.clone() },
                _ => Outcome::NotWritten,
            })
            .collect();
        let stop = AtomicBool::new(false);
        for level in delivery::levels(steps) {
            let todo: Vec<usize> = level
                .into_iter()
                .filter(|&i| !matches!(steps[i].action, Action::Unchanged { .. }))
                .collect();
            let stop = &stop;
            let written: Vec<(usize, Option<Outcome>)> = self.runtime.block_on(
                futures_util::stream::iter(todo)
                    .map(|i| async move {
                        if stop.load(Ordering::Relaxed) {
                            return (i, None);
                        }
                        let step = &steps[i];
                        let sent = std::sync::atomic::AtomicU32::new(0);
                        let result = retried(|| async {
                            sent.fetch_add(1, Ordering::Relaxed);
                            let start = Instant::now();
                            let result = match &step.signed {
                                None => target.write(&step.yaml).await,
                                Some(SignedUpload::Signed(json)) => target.write_signed(json).await,
                                Some(SignedUpload::Encrypted(json)) => {
                                    target.write_encrypted(json).await
                                }
                            };
                            let outcome = match &result {
                                Ok(w) => format!("hash {}…", short(&w.hash)),
                                Err(e) => short_error(e),
                            };
                            observer.request("write", &step.session, &outcome, start.elapsed());
                            result
                        })
                        .await;
                        let result = match result {
                            // A write sent again after a failure may have committed the first
                            // time: if CAS holds exactly what was sent, it is this write.
                            Err(
                                e @ (meshfile_cas::Error::Exists { .. }
                                | meshfile_cas::Error::Conflict { .. }),
                            ) if sent.load(Ordering::Relaxed) > 1 => {
                                match target.read_active(&step.session).await {
                                    Ok(Some(active))
                                        if same_session(&active.session, &step.yaml) =>
                                    {
                                        Ok(meshfile_cas::Written {
                                            name: step.session.clone(),
                                            hash: active.hash,
                                            created: matches!(step.action, Action::Create),
                                        })
                                    }
                                    _ => Err(e),
                                }
                            }
                            other => other,
                        };
                        let outcome = match result {
                            Ok(w) if matches!(step.action, Action::Create) => {
                                Outcome::Created { hash: w.hash }
                            }
                            Ok(w) => Outcome::Updated { hash: w.hash },
                            Err(e) => {
                                if e.is_transient() {
                                    stop.store(true, Ordering::Relaxed);
                                }
                                Outcome::Failed(e)
                            }
                        };
                        observer.written(step, &outcome);
                        (i, Some(outcome))
                    })
                    .buffer_unordered(target.in_flight())
                    .collect(),
            );
            let mut done: Vec<usize> = Vec::with_capacity(written.len());
            for (i, outcome) in written {
                if let Some(outcome) = outcome {
                    outcomes[i] = outcome;
                    done.push(i);
                }
            }
            done.sort_unstable();
            let done: Vec<(&Step, &Outcome)> =
                done.iter().map(|&i| (&steps[i], &outcomes[i])).collect();
            observer.level(&done);
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
        outcomes
    }
}

/// What became of one session.
#[derive(Debug)]
pub enum Outcome {
    Created {
        hash: String,
    },
    Updated {
        hash: String,
    },
    Unchanged {
        hash: String,
    },
    Failed(meshfile_cas::Error),
    /// Not attempted: CAS became unreachable first.
    NotWritten,
}

/// One session's active version, retried while the failure is passing.
async fn read_one(
    target: &Target,
    doc: &meshfile_session::Document,
    observer: &dyn Observer,
) -> Result<Option<Active>, Error> {
    let found = retried(|| async {
        let start = Instant::now();
        let found = target.read_active(&doc.name).await;
        let outcome = match &found {
            Ok(Some(_)) => "found".to_owned(),
            Ok(None) => "absent".to_owned(),
            Err(e) => short_error(e),
        };
        observer.request("read", &doc.name, &outcome, start.elapsed());
        found
    })
    .await;
    found.map_err(|e| {
        let what = format!("{}: reading `{}`", target.describe(), doc.name);
        Error::cas(&what, &e)
    })
}

/// Runs `op` until it succeeds or fails for good: passing failures (CAS unreachable or
/// overloaded) are retried with backoff, 100 ms, 400 ms, 1.6 s.
async fn retried<T, F, Fut>(mut op: F) -> Result<T, meshfile_cas::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, meshfile_cas::Error>>,
{
    let mut delay = Duration::from_millis(100);
    for _ in 1..ATTEMPTS {
        match op().await {
            Err(e) if e.is_transient() => {
                tokio::time::sleep(delay).await;
                delay *= 4;
            }
            other => return other,
        }
    }
    op().await
}

/// Whether two session texts say the same, compared in canonical form.
fn same_session(a: &str, b: &str) -> bool {
    let canonical = |text: &str| {
        meshfile_yaml::parse(text, &meshfile_yaml::Limits::default())
            .ok()
            .map(|node| meshfile_yaml::emit(&meshfile_cas::session::canonical(&node)))
    };
    matches!((canonical(a), canonical(b)), (Some(a), Some(b)) if a == b)
}

pub fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// A failed request's outcome in a trace line: what kind of failure, no body.
fn short_error(e: &meshfile_cas::Error) -> String {
    match e {
        meshfile_cas::Error::Unreachable { .. } => "unreachable".into(),
        other => format!("refused ({})", other.status()),
    }
}
