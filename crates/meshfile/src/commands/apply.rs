//! `apply` and `plan`: compile, then make CAS hold exactly the mesh's sessions.
//!
//! Convergent: each session's active version is read first; a session whose meaning is
//! unchanged is skipped, a missing one created, a changed one updated naming the hash just
//! read as predecessor (so a concurrent change is a conflict, never a lost update).
//! Rerunning after an interruption picks up where it stopped.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use meshfile_cas::client::{Client, Trust};
use meshfile_cas::target::{DeliveryError, Target};
use meshfile_manifest::mesh::CasMode;
use meshfile_plan::Compiled;
use meshfile_plan::delivery::{self, Action, Current, Step};
use serde_json::json;

use crate::cli::{ApplyArgs, CasArgs, OutputFormat, PlanArgs};
use crate::commands::compile::{self, Action as CompileAction};
use crate::error::{CliError, exit};

/// The caller the embedded store knows: whoever runs meshfile on this target directory.
const EMBEDDED_OWNER: &str = "embedded-owner";
const CAS_PORT: u16 = 8081;

fn config_identity_path() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("meshfile").join("identity.pem")
}

/// The client identity: the given file, or the user's, created on first use.
fn identity(args: &CasArgs) -> Result<String, CliError> {
    let path = args.identity.clone().unwrap_or_else(config_identity_path);
    match std::fs::read_to_string(&path) {
        Ok(pem) => Ok(pem),
        Err(_) if args.identity.is_none() => {
            let pem = meshfile_cas::pki::client_identity("meshfile client", None)?;
            crate::fsutil::write_file(&path, pem.as_bytes())?;
            let hash = meshfile_cas::pki::key_hash_of_pem(&pem)?;
            eprintln!(
                "created the client identity {} (key hash {hash}); put this hash in access policies that should admit you",
                path.display()
            );
            Ok(pem)
        }
        Err(source) => Err(CliError::Read { path, source }),
    }
}

/// A Meshfile `cas_key` in this tool's form (hex SHA-256 of the CAS's public key) pins the CAS.
fn meshfile_pin(cas_key: Option<&str>) -> Option<&str> {
    cas_key.filter(|k| k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn connect(args: &CasArgs, compiled: &Compiled, target_dir: &Path) -> Result<Target, CliError> {
    let cas_url = compiled.cas_url.as_str();
    if cas_url == "embedded" {
        let store = meshfile_cas::Store::open(&target_dir.join("cas"))?;
        return Ok(Target::Embedded {
            store,
            caller: EMBEDDED_OWNER.into(),
        });
    }
    let address = if cas_url
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        cas_url.to_owned()
    } else {
        format!("{cas_url}:{CAS_PORT}")
    };
    let identity = identity(args)?;
    let ca;
    let pinned = meshfile_pin(compiled.cas_key.as_deref());
    if let (Some(pin), Some(given)) = (pinned, &args.cas_pin)
        && !pin.eq_ignore_ascii_case(given)
    {
        return Err(CliError::PinMismatch(pin.to_owned(), given.clone()));
    }
    let trust = match (&args.cas_ca, args.cas_pin.as_deref().or(pinned)) {
        // The Meshfile's cas_key is a pin: `--insecure` never weakens it.
        (_, Some(pin)) => Trust::PinnedKey(pin),
        (Some(path), None) => {
            ca = std::fs::read_to_string(path).map_err(|source| CliError::Read {
                path: path.clone(),
                source,
            })?;
            Trust::Ca(&ca)
        }
        (None, None) if args.insecure => Trust::AnyServer,
        (None, None) => return Err(CliError::NoTrust(address)),
    };
    let unchecked = matches!(trust, Trust::AnyServer);
    let client = Client::with_trust(&address, trust, &identity)
        .map_err(|e| CliError::Unreachable(e.to_string()))?;
    if unchecked {
        warn_unchecked(&client, &address)?;
    }
    Ok(Target::Remote { client, address })
}

/// `--insecure`: says what it means, and which key answered, before anything is sent.
fn warn_unchecked(client: &Client, address: &str) -> Result<(), CliError> {
    eprintln!(
        "WARNING: --insecure: the identity of the CAS at {address} is NOT checked. The connection is \
         encrypted, but whoever answers gets your policies and can change what you read."
    );
    client
        .version()
        .map_err(|e| CliError::Unreachable(e.to_string()))?;
    if let Some(key) = client.unverified_server_key() {
        eprintln!(
            "WARNING: the server presented the key hash {key}. If that is your CAS, pass \
             `--cas-pin {key}` (or set `cas_key: {key}` in the Meshfile) instead of --insecure."
        );
    }
    Ok(())
}

/// Transient failures (CAS unreachable) are retried with backoff; refusals are final.
fn with_retries<T>(mut op: impl FnMut() -> Result<T, DeliveryError>) -> Result<T, DeliveryError> {
    let mut delay = Duration::from_millis(100);
    for _ in 0..3 {
        match op() {
            Err(DeliveryError::Unreachable(_)) => {
                std::thread::sleep(delay);
                delay *= 4;
            }
            other => return other,
        }
    }
    op()
}

/// Runs one request, tracing it when asked: what, on which session, the outcome and the time.
fn traced<T>(
    verbose: bool,
    what: &str,
    session: &str,
    op: impl FnOnce() -> Result<T, DeliveryError>,
    ok: impl Fn(&T) -> String,
) -> Result<T, DeliveryError> {
    let start = std::time::Instant::now();
    let result = op();
    if verbose {
        let outcome = match &result {
            Ok(v) => ok(v),
            Err(DeliveryError::Refused { status, .. }) => format!("refused ({status})"),
            Err(DeliveryError::Unreachable(_)) => "unreachable".into(),
        };
        eprintln!(
            "  {what} {session} -> {outcome} ({} ms)",
            start.elapsed().as_millis()
        );
    }
    result
}

fn read_current(
    target: &Target,
    compiled: &Compiled,
    verbose: bool,
) -> Result<BTreeMap<String, Current>, CliError> {
    let found = parallel(&compiled.sessions, |doc| {
        let read = || {
            traced(
                verbose,
                "read",
                &doc.name,
                || target.read_active(&doc.name),
                |found| {
                    if found.is_some() {
                        "found".into()
                    } else {
                        "absent".into()
                    }
                },
            )
        };
        with_retries(read)
    });
    let mut current = BTreeMap::new();
    for (doc, found) in compiled.sessions.iter().zip(found) {
        let found = found.map_err(|e| match e {
            DeliveryError::Unreachable(m) => {
                CliError::Unreachable(format!("{}: {m}", target.describe()))
            }
            DeliveryError::Refused { message, .. } => CliError::Refused(format!(
                "{}: reading `{}` was refused: {message}",
                target.describe(),
                doc.name
            )),
        })?;
        if let Some((session, hash)) = found {
            current.insert(doc.name.clone(), Current { session, hash });
        }
    }
    Ok(current)
}

/// Requests in flight at once: enough to hide network latency, few enough for any CAS.
const PARALLEL: usize = 8;

/// `op` on every item, on up to [`PARALLEL`] threads; results in item order.
fn parallel<T: Sync, R: Send>(items: &[T], op: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL.min(items.len()) {
            let (tx, next, op) = (tx.clone(), &next, &op);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    if tx.send((i, op(item))).is_err() {
                        break;
                    }
                }
            });
        }
    });
    drop(tx);
    let mut results: Vec<(usize, R)> = rx.into_iter().collect();
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Groups step indices into levels: a session comes after its namespace and after every
/// session it imports from; sessions of one level are independent.
fn levels(steps: &[Step]) -> Vec<Vec<usize>> {
    let mut level_of: BTreeMap<&str, usize> = BTreeMap::new();
    let mut levels: Vec<Vec<usize>> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let node = meshfile_yaml::parse(&step.yaml, &meshfile_manifest::limits()).ok();
        let mut deps = node
            .as_ref()
            .map(meshfile_plan::imported_sessions)
            .unwrap_or_default();
        if let Some((parent, _)) = step.session.rsplit_once('/') {
            deps.insert(parent.to_owned());
        }
        let level = deps
            .iter()
            .filter_map(|d| level_of.get(d.as_str()))
            .max()
            .map_or(0, |l| l + 1);
        level_of.insert(&step.session, level);
        if levels.len() <= level {
            levels.resize_with(level + 1, Vec::new);
        }
        levels[level].push(i);
    }
    levels
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

fn print_steps(steps: &[Step], verbose_creates: bool) {
    let mut err = std::io::stderr().lock();
    for step in steps {
        let _ = match &step.action {
            Action::Create => writeln!(
                err,
                "create     {}{}",
                step.session,
                if verbose_creates {
                    ""
                } else {
                    "  (new session)"
                }
            ),
            Action::Update { predecessor } => writeln!(
                err,
                "update     {}  (active {}…)",
                step.session,
                short(predecessor)
            ),
            Action::Unchanged { .. } => writeln!(err, "unchanged  {}", step.session),
        };
        if verbose_creates || matches!(step.action, Action::Update { .. }) {
            for change in &step.changes {
                let _ = writeln!(err, "           {change}");
            }
        }
    }
}

fn changes(steps: &[Step]) -> usize {
    steps
        .iter()
        .filter(|s| !matches!(s.action, Action::Unchanged { .. }))
        .count()
}

/// Compiles and connects; `None` when there is nothing to deliver (errors, no mesh, NoUpload).
fn prepare(
    compile_args: &crate::cli::CompileArgs,
    action: CompileAction,
) -> Result<(u8, Vec<Compiled>), CliError> {
    let (code, compiled) = compile::run(compile_args, action, compile_args.quiet)?;
    Ok((code, compiled.unwrap_or_default()))
}

fn check_mode(c: &Compiled) -> Result<bool, u8> {
    match c.mode {
        None | Some(CasMode::Upload) => Ok(true),
        Some(CasMode::NoUpload) => Ok(false),
        Some(mode) => {
            eprintln!(
                "error: CAS mode `{mode:?}` is not supported yet; nothing was delivered.\n  = help: use `mode: Upload` (sessions go to CAS directly) or `mode: NoUpload` (only write the target directory)"
            );
            Err(exit::INVALID)
        }
    }
}

pub fn plan(args: &PlanArgs) -> Result<u8, CliError> {
    let (code, compiled) = prepare(&args.compile, CompileAction::Compile)?;
    if code != exit::OK {
        return Ok(code);
    }
    let mut changed = 0;
    let mut report = Vec::new();
    for c in &compiled {
        let target = connect(&args.cas, c, &args.compile.target)?;
        let steps = delivery::plan(&c.sessions, &read_current(&target, c, args.cas.verbose)?);
        changed += changes(&steps);
        match args.cas.output {
            OutputFormat::Human => {
                eprintln!("plan for {}:", target.describe());
                print_steps(&steps, false);
                eprintln!(
                    "{} to create, {} to update, {} unchanged",
                    count(&steps, |a| matches!(a, Action::Create)),
                    count(&steps, |a| matches!(a, Action::Update { .. })),
                    count(&steps, |a| matches!(a, Action::Unchanged { .. }))
                );
            }
            OutputFormat::Json => {
                report.push(json!({ "target": target.describe(), "steps": steps }))
            }
        }
    }
    if args.cas.output == OutputFormat::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    }
    Ok(if args.exit_code && changed > 0 {
        exit::INVALID
    } else {
        exit::OK
    })
}

fn count(steps: &[Step], f: impl Fn(&Action) -> bool) -> usize {
    steps.iter().filter(|s| f(&s.action)).count()
}

pub fn run(args: &ApplyArgs) -> Result<u8, CliError> {
    let action = if args.print_defaults {
        CompileAction::PrintVariables
    } else {
        CompileAction::WriteForDelivery
    };
    let (code, compiled) = prepare(&args.compile, action)?;
    if code != exit::OK || args.print_defaults {
        return Ok(code);
    }
    let mut status = exit::OK;
    let mut report = Vec::new();
    for c in &compiled {
        match check_mode(c) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(code) => return Ok(code),
        }
        let target = connect(&args.cas, c, &args.compile.target)?;
        let steps = delivery::plan(&c.sessions, &read_current(&target, c, args.cas.verbose)?);
        if args.dry_run {
            eprintln!("plan for {} (dry run: nothing changed):", target.describe());
            print_steps(&steps, false);
            continue;
        }
        let (outcome, code) = deliver(&target, &steps, args.compile.quiet, args.cas.verbose);
        status = status.max(code);
        report.push(json!({ "target": target.describe(), "results": outcome }));
    }
    if args.cas.output == OutputFormat::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    }
    Ok(status)
}

/// Writes the steps level by level, independent sessions in parallel. A refused session is
/// reported and the rest go on (an importer of a refused exporter is then refused too, and says
/// why); an unreachable CAS stops before the next level. Prints, in plan order, what was and was
/// not written; returns per-session results and the exit status.
fn deliver(
    target: &Target,
    steps: &[Step],
    quiet: bool,
    verbose: bool,
) -> (Vec<serde_json::Value>, u8) {
    let to_write = steps
        .iter()
        .filter(|s| !matches!(s.action, Action::Unchanged { .. }))
        .count();
    let mut report = Report {
        progress: progress_bar(to_write as u64, quiet),
        ..Report::default()
    };
    let mut reached = vec![false; steps.len()];
    // Once CAS is unreachable, no further write is started; those in flight finish.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let report_bar = report.progress.clone();
    for level in levels(steps) {
        let todo: Vec<usize> = level
            .into_iter()
            .filter(|&i| !matches!(steps[i].action, Action::Unchanged { .. }))
            .collect();
        let written = parallel(&todo, |&i| {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                return None;
            }
            let step = &steps[i];
            let result = with_retries(|| {
                traced(
                    verbose,
                    "write",
                    &step.session,
                    || target.write(&step.yaml),
                    |w| format!("hash {}…", short(&w.hash)),
                )
            });
            if let Some(bar) = &report_bar {
                bar.inc(1);
            }
            if matches!(result, Err(DeliveryError::Unreachable(_))) {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            Some(result)
        });
        for (i, result) in todo.into_iter().zip(written) {
            if let Some(result) = result {
                reached[i] = true;
                report.written(&steps[i], result, quiet);
            }
        }
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
    }
    for (step, reached) in steps.iter().zip(reached) {
        match &step.action {
            Action::Unchanged { hash } => report.add(step, "unchanged", json!({ "hash": hash })),
            _ if !reached => report.add(step, "not written", json!({})),
            _ => {}
        }
    }
    report.finish()
}

/// A progress bar on a terminal; nothing when output goes to a file or a pipe (CI logs).
fn progress_bar(total: u64, quiet: bool) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if quiet || total < 2 || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("writing sessions {bar:30} {pos}/{len} {elapsed}")
    {
        bar.set_style(style);
    }
    Some(bar)
}

/// The outcome of a delivery, session by session, and its summary.
#[derive(Default)]
struct Report {
    /// Lines are printed above it while it runs.
    progress: Option<indicatif::ProgressBar>,
    results: Vec<serde_json::Value>,
    tally: BTreeMap<&'static str, usize>,
    not_written: Vec<String>,
    status: u8,
}

impl Report {
    fn say(&self, line: String) {
        match &self.progress {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn add(&mut self, step: &Step, result: &'static str, detail: serde_json::Value) {
        if matches!(result, "failed" | "not written") {
            self.not_written.push(step.session.clone());
        }
        *self.tally.entry(result).or_default() += 1;
        let mut outcome = json!({ "session": step.session, "result": result });
        if let (Some(o), serde_json::Value::Object(d)) = (outcome.as_object_mut(), detail) {
            o.extend(d);
        }
        self.results.push(outcome);
    }

    /// Prints and records one attempted write.
    fn written(
        &mut self,
        step: &Step,
        result: Result<meshfile_cas::Written, DeliveryError>,
        quiet: bool,
    ) {
        match result {
            Ok(written) => {
                let verb = if matches!(step.action, Action::Create) {
                    "created"
                } else {
                    "updated"
                };
                if !quiet {
                    eprintln!("{verb:<9}  {}  ({}…)", step.session, short(&written.hash));
                    if verb == "updated" {
                        step.changes
                            .iter()
                            .for_each(|c| eprintln!("           {c}"));
                    }
                }
                self.add(
                    step,
                    verb,
                    json!({ "hash": written.hash, "changes": step.changes }),
                );
            }
            Err(e) => {
                let (code, hint) = match &e {
                    DeliveryError::Refused {
                        status: 409,
                        active_hash,
                        ..
                    } => (
                        exit::INVALID,
                        format!(
                            "someone changed it since it was read (active {}…); run `meshfile plan` to see the difference, then apply again",
                            short(active_hash.as_deref().unwrap_or("?"))
                        ),
                    ),
                    DeliveryError::Refused { .. } => (exit::INVALID, String::new()),
                    DeliveryError::Unreachable(_) => (
                        exit::ENVIRONMENT,
                        "stopped: rerun apply once CAS is reachable; it continues where it stopped"
                            .into(),
                    ),
                };
                self.status = self.status.max(code);
                self.say(format!("FAILED     {}: {e}", step.session));
                if !hint.is_empty() {
                    self.say(format!("           = help: {hint}"));
                }
                self.add(step, "failed", json!({ "error": e.to_string() }));
            }
        }
    }

    fn finish(self) -> (Vec<serde_json::Value>, u8) {
        if let Some(bar) = &self.progress {
            bar.finish_and_clear();
        }
        let n = |k: &str| self.tally.get(k).copied().unwrap_or(0);
        eprintln!(
            "{} created, {} updated, {} unchanged, {} failed",
            n("created"),
            n("updated"),
            n("unchanged"),
            n("failed") + n("not written")
        );
        if !self.not_written.is_empty() {
            eprintln!("not written: {}", self.not_written.join(", "));
        }
        (self.results, self.status)
    }
}
