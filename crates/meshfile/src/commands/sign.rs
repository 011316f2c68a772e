//! `sign`: add a signature to a target directory's signed sessions (a policy board).

use std::path::Path;

use meshfile_app::connection::CasConnection;
use meshfile_app::sign::{self, SignatureSource};
use meshfile_app::{Error, Exit, Stop};
use meshfile_manifest::Code;
use meshfile_session::signer::PublicKey;

use crate::cli::SignArgs;
use crate::render;

pub fn run(args: &SignArgs) -> Result<Exit, Stop> {
    let names = if args.session.is_empty() {
        sign::signed_sessions(&args.target)?
    } else {
        args.session.clone()
    };
    if let Some(out) = &args.export_message {
        return export_message(args, &names, out);
    }
    let key;
    let cli;
    let by = match (&args.signer, &args.signature, &args.scone_cli) {
        (Some(signer), Some(signature), _) => SignatureSource::External {
            signer: read_public(signer)?,
            signature: read_signature(signature)?,
        },
        (_, _, Some(program)) => {
            cli = sign::SconeCli::new(program.clone());
            SignatureSource::Scone(&cli)
        }
        _ => {
            key = sign::load_key(args.signing_key.as_deref())?.0;
            SignatureSource::Key(&key)
        }
    };
    // A signature made here is made after its signer saw what it approves; one made
    // elsewhere was, over the message and its diff `--export-message` wrote.
    if !matches!(by, SignatureSource::External { .. }) {
        let mut reviews = reviews(args, &names)?;
        // What this key signed already needs no second look.
        if let SignatureSource::Key(key) = &by {
            let public = key.public_key();
            reviews.retain(|r| !r.signers.contains(&public));
        }
        if !(args.yes && args.quiet) {
            render::eprint(&reviewed(&reviews));
        }
        if !args.yes && !reviews.is_empty() {
            confirm(reviews.len())?;
        }
    }
    let done = sign::add_signature(&args.target, &names, &by)?;
    if let SignatureSource::Scone(cli) = &by
        && !args.quiet
        && let Ok(ran) = cli.ran.lock()
    {
        for command in ran.iter() {
            render::eprint(&format!("ran: {command}\n"));
        }
    }
    if !args.quiet {
        let mut text = String::new();
        for d in &done {
            let signers: Vec<String> = d.signers.iter().map(PublicKey::short_name).collect();
            let by = if signers.is_empty() {
                "SCONE's CLI; SCONE CAS checks its signatures".to_owned()
            } else {
                signers.join(", ")
            };
            text.push_str(&format!(
                "{:<9}  {}  (signed by {by})\n",
                if d.added { "signed" } else { "unchanged" },
                d.session,
            ));
        }
        render::eprint(&text);
    }
    Ok(Exit::Ok)
}

/// `--export-message`: the message of the one session named, and what changed in it beside
/// (`FILE.diff`), for an external signer to review before signing.
fn export_message(args: &SignArgs, names: &[String], out: &Path) -> Result<Exit, Stop> {
    let [name] = names else {
        return Err(Error::new(
            Code::BadArguments,
            "--export-message writes the message of one session",
        )
        .hint("name it with one --session NAME")
        .into());
    };
    let message = sign::message(&args.target, name)?;
    let review = reviewed(&reviews(args, std::slice::from_ref(name))?);
    if out.as_os_str() == "-" {
        use std::io::{IsTerminal, Write};
        let mut stdout = std::io::stdout();
        if stdout.is_terminal() {
            return Err(Error::new(
                Code::BadArguments,
                "the message goes to a file or a pipe, not to a terminal",
            )
            .hint("`--export-message FILE`, or pipe it into the signing tool")
            .into());
        }
        stdout.write_all(&message).map_err(|e| {
            Error::new(Code::WriteFailed, "cannot write to standard output").caused_by(e)
        })?;
        render::eprint(&review);
        return Ok(Exit::Ok);
    }
    let mut diff = out.as_os_str().to_owned();
    diff.push(".diff");
    let diff = std::path::PathBuf::from(diff);
    meshfile_app::write::user_file(out, &message)?;
    meshfile_app::write::user_file(&diff, review.as_bytes())?;
    if !args.quiet {
        render::eprint(&format!(
            "wrote the message of `{name}` ({} bytes) to {} and what changed in it to {}; review, sign it and add the signature with `meshfile sign --session {name} --signer PUB --signature FILE`\n",
            message.len(),
            out.display(),
            diff.display()
        ));
    }
    Ok(Exit::Ok)
}

/// What changed in each session about to be signed, for the signer to read first.
fn reviewed(reviews: &[sign::Review]) -> String {
    let mut out = String::new();
    for r in reviews {
        let mut what = match &r.predecessor {
            None => "new session".to_owned(),
            Some(p) => format!("replaces {}…", p.get(..12).unwrap_or(p)),
        };
        if let Some(cas) = &r.against {
            what += &format!("; compared with {cas}");
        }
        out.push_str(&format!("review     {}  ({what})\n", r.session));
        if r.delivered {
            out.push_str("           CAS holds this version already (delivered): a signature adds nothing there\n");
            continue;
        }
        if let Some(stale) = &r.stale {
            out.push_str(&format!("           warning: {stale}; compile again (`meshfile template`) and sign the new version\n"));
        }
        match &r.changes {
            Some(changes) if changes.is_empty() => {
                out.push_str("           no change in meaning\n");
            }
            Some(changes) => {
                for change in changes {
                    out.push_str(&format!("           {change}\n"));
                }
            }
            None => out.push_str(
                "           the version it replaces is not in this directory (EncryptedOnly keeps no plaintext): `meshfile plan` compares with what CAS holds\n",
            ),
        }
    }
    out
}

/// Each session's review: against what CAS holds when `--cas` names one that can be read,
/// else against the version in the target directory (said once, with why).
fn reviews(args: &SignArgs, names: &[String]) -> Result<Vec<sign::Review>, Error> {
    let local = |name: &String| sign::review(&args.target, name);
    let Some(url) = &args.cas else {
        return names.iter().map(local).collect();
    };
    let fallback = |e: Error| {
        render::eprint(&format!(
            "note: {e}; each session is compared with the version in {} instead\n",
            args.target.display()
        ));
        names.iter().map(local).collect()
    };
    let access = args.trust.access();
    let cas = match CasConnection::connect_to(&access, url, None, &args.target, false) {
        Ok((cas, notices)) => {
            notices
                .iter()
                .for_each(|n| render::eprint(&format!("{n}\n")));
            cas
        }
        Err(e) => return fallback(e),
    };
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        match sign::review_against(&args.target, name, &cas) {
            Ok(review) => out.push(review),
            Err(e) => return fallback(e),
        }
    }
    Ok(out)
}

/// Asks on the terminal before signing `count` sessions; without a terminal, refuses.
fn confirm(count: usize) -> Result<(), Error> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Error::new(
            Code::BadArguments,
            "nothing was signed: `sign` asks before it signs, and there is no terminal to ask on",
        )
        .hint("read what changed (above), then sign with `--yes`"));
    }
    eprint!(
        "sign {count} session{}? [y/N] ",
        if count == 1 { "" } else { "s" }
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::new(Code::BadArguments, "cannot read the answer").caused_by(e))?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        return Ok(());
    }
    Err(
        Error::new(Code::BadArguments, "nothing was signed: not confirmed")
            .hint("sign again and answer y, or pass --yes"),
    )
}

fn read_public(path: &Path) -> Result<PublicKey, Error> {
    let text = meshfile_app::paths::read_key_file(path)?;
    PublicKey::parse(&text).map_err(|why| {
        Error::new(Code::SigningKey, format!("{}: {why}", path.display()))
            .hint("give the signer's public key: PEM (`openssl pkey -pubout`) or Base58Check")
    })
}

/// A signature file: raw bytes (openssl's output), or the same as hex or base64 text.
fn read_signature(path: &Path) -> Result<Vec<u8>, Error> {
    use base64::Engine as _;
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(64 * 1024).read_to_end(&mut bytes))
        .map_err(|e| Error::read(path, e))?;
    let text = std::str::from_utf8(&bytes).ok().map(str::trim);
    let decoded = text.and_then(|t| {
        hex::decode(t)
            .ok()
            .or_else(|| base64::engine::general_purpose::STANDARD.decode(t).ok())
    });
    Ok(decoded.unwrap_or(bytes))
}
