//! sconectl's flags on `apply`: scripts written for `sconectl apply` run with `meshfile` in its
//! place. A flag meshfile does not need gets a note saying why; one it cannot honour stops
//! the run, saying what to use instead (docs: `reference/sconectl.md`).

use meshfile_app::{Error, Stop};
use meshfile_manifest::Code;

use crate::cli::{CompileArgs, SconectlArgs, SconectlOutput};
use crate::render;

/// Refuses what cannot be honoured; says once what is not needed.
pub fn check(flags: &SconectlArgs, compile: &CompileArgs) -> Result<(), Stop> {
    let refused = |flag: &str, instead: &str| -> Result<(), Stop> {
        Err(Error::new(
            Code::BadArguments,
            format!("{flag} is sconectl's and meshfile cannot honour it"),
        )
        .hint(instead.to_owned())
        .into())
    };
    if flags.cas_config.is_some() {
        refused(
            "--cas-config",
            "meshfile does not read SCONE's CLI configuration: pass the client identity with --identity FILE (certificate and key, PEM) and trust the CAS with --cas-ca FILE or --cas-pin HASH",
        )?;
    }
    if flags.otp.is_some() {
        refused(
            "--otp",
            "confidential cosign signing of images (the Meshfile's repo section) is not implemented; sign images with SCONE's tools",
        )?;
    }
    if flags.signing_url.is_some() || flags.signing_online {
        refused(
            "--signing-url/--signing-online",
            "online signing (SignOnline) goes through SCONE's signing service, whose protocol is not public; meshfile signs locally: set `mode: SignedManifest` (or EncryptedManifest) and make a key with `meshfile key generate`",
        )?;
    }
    if flags.sconectl_output == Some(SconectlOutput::Yaml) {
        refused(
            "-o yaml",
            "meshfile writes a Helm chart; render plain manifests from it with `helm template RELEASE target/helm` (target/helm under --target-directory)",
        )?;
    }
    if let Some(namespace) = &compile.policy_namespace
        && !meshfile_manifest::refs::is_cas_name(namespace)
    {
        return Err(Error::new(
            Code::BadArguments,
            format!("--policy-namespace `{namespace}` is no CAS session name"),
        )
        .hint("use letters, digits and `_ - . ~`, at most 128 characters")
        .into());
    }
    let notes = [
        (
            flags
                .set_version
                .as_deref()
                .map(|v| format!("--set-version {v}")),
            "meshfile builds no image, so the SCONE version of base images is not used",
        ),
        (
            flags
                .release_version
                .as_deref()
                .map(|v| format!("--release-version {v}")),
            "not used: sconectl does not document what it changes; --release names the Helm release",
        ),
        (
            flags.no_push.then(|| "--no-push".to_owned()),
            "meshfile builds and pushes no image",
        ),
        (
            flags
                .host_pwd
                .as_ref()
                .map(|d| format!("--host-pwd {}", d.display())),
            "meshfile runs no container, so it needs no host directory",
        ),
    ];
    for (flag, why) in notes {
        if let Some(flag) = flag
            && !compile.quiet
        {
            render::eprint(&format!("note: {flag}: {why}\n"));
        }
    }
    Ok(())
}
