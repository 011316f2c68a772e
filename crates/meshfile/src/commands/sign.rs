//! `sign`: add a signature to a target directory's signed sessions (a policy board).

use std::path::Path;

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
        let [name] = names.as_slice() else {
            return Err(Error::new(
                Code::BadArguments,
                "--export-message writes the message of one session",
            )
            .hint("name it with one --session NAME")
            .into());
        };
        let message = sign::message(&args.target, name)?;
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
        } else {
            meshfile_app::write::user_file(out, &message)?;
            if !args.quiet {
                render::eprint(&format!(
                    "wrote the message of `{name}` ({} bytes) to {}; sign it and add the signature with `meshfile sign --session {name} --signer PUB --signature FILE`\n",
                    message.len(),
                    out.display()
                ));
            }
        }
        return Ok(Exit::Ok);
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
