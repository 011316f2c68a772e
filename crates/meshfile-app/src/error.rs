//! One error type for the whole application: a stable code (the same list as the manifest
//! diagnostics, so `meshfile explain` knows every code), a message, what to do, and the cause.
//! The exit status follows from the code, in one exhaustive match.

use std::fmt;
use std::path::Path;

use meshfile_manifest::Code;
use meshfile_plan::Located;

/// Exit statuses of the command-line contract (design.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    Ok = 0,
    /// Invalid input, or refused by CAS.
    Invalid = 1,
    Usage = 2,
    /// The environment failed: files, network, registry, CAS unreachable.
    Environment = 3,
}

impl Exit {
    /// The exit status of a problem with this code.
    pub fn of(code: Code) -> Exit {
        match code {
            Code::BadArguments | Code::NoManifests | Code::InputNotFound => Exit::Usage,
            Code::ReadFailed
            | Code::WriteFailed
            | Code::CasUnreachable
            | Code::CasUntrusted
            | Code::CasFailed
            | Code::ClientIdentity
            | Code::SigningKey
            | Code::SconeCli
            | Code::CasListen
            | Code::ImageCopyFailed => Exit::Environment,
            Code::CasForbidden
            | Code::CasConflict
            | Code::CasInvalid
            | Code::ChartFailed
            | Code::SignaturesMissing
            | Code::CosignPassword
            | Code::DescriptorRefused
            | Code::SignatureRejected
            | Code::KeyExists
            | Code::NotAttested
            | Code::EncryptionKeyMismatch
            | Code::ImageDestination => Exit::Invalid,
            // Every manifest diagnostic: the input is invalid (a warning alone exits 0).
            Code::Read
            | Code::Syntax
            | Code::DuplicateKey
            | Code::MultipleDocuments
            | Code::Empty
            | Code::Limit
            | Code::WrongType
            | Code::MissingField
            | Code::UnknownField
            | Code::InvalidEnum
            | Code::ApiVersion
            | Code::Kind
            | Code::DuplicateService
            | Code::InvalidName
            | Code::UnknownEnvService
            | Code::InvalidEnvName
            | Code::MissingCasRole
            | Code::DuplicateCasRole
            | Code::InvalidNamespace
            | Code::InvalidTolerate
            | Code::InvalidAdvisories
            | Code::DuplicateCasName
            | Code::InvalidCasKey
            | Code::InvalidAccessPolicy
            | Code::LintExtension
            | Code::LintSignedInClear
            | Code::LintPasteWorkaround
            | Code::LintUnusedSecret
            | Code::LintUnusedImport
            | Code::LintWideExport
            | Code::LintPrivateKeyReach
            | Code::LintSharedValue
            | Code::LintTemplateDebug
            | Code::UnknownSecretKind
            | Code::PrivateKeyRef
            | Code::IssuerRef
            | Code::UnknownSecretRef
            | Code::SecretRefSyntax
            | Code::DuplicateSecret
            | Code::InvalidSecretField
            | Code::VariableSyntax
            | Code::InvalidImage
            | Code::InvalidVolume
            | Code::InvalidTolerance
            | Code::InvalidChartValue
            | Code::UndefinedVariable
            | Code::UndefinedMeshVariable
            | Code::MissingDescriptor
            | Code::MissingGlobalValue
            | Code::UnexportedImport
            | Code::AmbiguousSecret
            | Code::MissingMeasurement
            | Code::OverrideFile
            | Code::UnsupportedMode
            | Code::DuplicateEnv
            | Code::NotSupportedYet
            | Code::DeprecatedSecretSuffix
            | Code::UnknownBuildKind
            | Code::DeprecatedField
            | Code::UnusedCas
            | Code::MaaWithoutTolerance
            | Code::LintDebugTolerance
            | Code::LintIgnoreAllAdvisories
            | Code::LintTestingCasTolerance
            | Code::LintImageTag
            | Code::LintClearSecret
            | Code::LintWeakTolerance
            | Code::LintNoPwd
            | Code::CannotAct
            | Code::ImageBuilding
            | Code::UnusedHelmValues
            | Code::UnknownTolerance => Exit::Invalid,
        }
    }
}

/// A failure of a command, rendered once, at the edge.
#[derive(Debug)]
pub struct Error {
    pub code: Code,
    pub message: String,
    /// What to do about it, one line each.
    pub hints: Vec<String>,
    /// The underlying error; rendered after the message, once.
    pub source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A failure of `meshfile-sign`, coded by its kind, `what` it concerns (a file, a
    /// session) first.
    pub fn from_sign(e: meshfile_sign::Error, what: &str) -> Error {
        let code = match e.kind {
            meshfile_sign::ErrorKind::Invalid => Code::SigningKey,
            meshfile_sign::ErrorKind::WrongPassword => Code::CosignPassword,
            meshfile_sign::ErrorKind::SignatureRejected => Code::SignatureRejected,
        };
        match what {
            "" => Error::new(code, e.message),
            what => Error::new(code, format!("{what}: {}", e.message)),
        }
    }

    pub fn new(code: Code, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
            hints: Vec::new(),
            source: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Error {
        self.hints.push(hint.into());
        self
    }

    pub fn caused_by(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.source = Some(Box::new(source));
        self
    }

    pub fn exit(&self) -> Exit {
        Exit::of(self.code)
    }

    /// Reading `path` failed.
    pub fn read(path: &Path, source: std::io::Error) -> Error {
        let code = if source.kind() == std::io::ErrorKind::NotFound {
            Code::InputNotFound
        } else {
            Code::ReadFailed
        };
        Error::new(code, format!("cannot read `{}`", path.display()))
            .hint("check the path; `-f -` reads standard input")
            .caused_by(source)
    }

    /// Writing `path` failed.
    pub fn write(path: &Path, source: std::io::Error) -> Error {
        Error::new(
            Code::WriteFailed,
            format!("cannot write `{}`", path.display()),
        )
        .hint("check that the target directory is writable and the disk has room")
        .caused_by(source)
    }

    /// What CAS (or the embedded store) answered, in the domain's terms.
    pub fn cas(target: &str, e: &meshfile_cas::Error) -> Error {
        use meshfile_cas::Error as E;
        let (code, hint) = match e {
            E::Unreachable { .. } => (
                Code::CasUnreachable,
                "check that the CAS runs and that cas_url names it (host[:port], 8081 by default); once it is reachable, run again: `apply` continues where it stopped",
            ),
            E::NoAnswer { .. } => (
                Code::CasUnreachable,
                "the CAS accepted the connection but did not answer: check that it is not overloaded or stuck; `--cas-timeout SECONDS` waits longer",
            ),
            E::Untrusted { .. } => (
                Code::CasUntrusted,
                "check --cas-ca, --cas-pin or the Meshfile's cas_key: the server presented another identity",
            ),
            E::Forbidden { .. } => (
                Code::CasForbidden,
                "ask the session's owner to add your key hash to its access_policy, or use an identity it lists (--identity)",
            ),
            E::Unapproved { .. } => (
                Code::CasForbidden,
                "collect the missing signatures first: each signer runs `meshfile sign -t TARGET` (or adds an external signature with `meshfile sign --signer PUB --signature FILE`); `meshfile plan` lists who has signed",
            ),
            E::Exists { .. } | E::Conflict { .. } => (
                Code::CasConflict,
                "someone changed it since it was read; run `meshfile plan` to see the difference, then apply again",
            ),
            E::Invalid(_) | E::NotFound(_) => (
                Code::CasInvalid,
                "the session as meshfile wrote it is in target/policies/; fix the manifest it comes from",
            ),
            E::Setup(_) => (
                Code::ClientIdentity,
                "check the client identity (--identity) and the CA file (--cas-ca)",
            ),
            E::NotAttested { .. } => (
                Code::NotAttested,
                "the program is not the one measured: record the service with the image's MRENCLAVE (`meshfile apply -f service.yaml --mrenclave HEX`, or its measurements file), then apply the mesh again",
            ),
            E::Listen { .. } => (
                Code::CasListen,
                "another process listens there (a `cas serve` started before?): stop it, or choose another address with --listen",
            ),
            E::Locked(_) => (
                Code::CasFailed,
                "another meshfile uses this target directory's store; wait for it to finish",
            ),
            E::Damaged(_) => (
                Code::CasFailed,
                "the CAS refuses to serve data that no longer matches its hash; its operator restores the store (for the development CAS, `meshfile cas check --state DIR` lists the damage)",
            ),
            E::QuotaExceeded { .. } => (
                Code::CasFailed,
                "this identity has used its storage on this CAS; its operator can raise the quota (`cas serve --quota-mib`)",
            ),
            E::TimedOut(_) => (
                Code::CasFailed,
                "nothing was committed; apply again when the CAS is less busy",
            ),
            E::Storage(_) | E::Internal(_) | E::Server { .. } => (
                Code::CasFailed,
                "retry; if it persists, the CAS's log says more",
            ),
        };
        Error::new(code, format!("{target}: {e}")).hint(hint)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Why a command stopped: problems located in the inputs (all of them), or one error.
#[derive(Debug)]
pub enum Stop {
    Invalid(Report),
    Failed(Error),
}

impl Stop {
    pub fn exit(&self) -> Exit {
        match self {
            Stop::Invalid(_) => Exit::Invalid,
            Stop::Failed(e) => e.exit(),
        }
    }
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Failed(e)
    }
}

/// Diagnostics found so far, with the text of every file they point into (for snippets).
#[derive(Debug, Default)]
pub struct Report {
    pub sources: std::collections::BTreeMap<String, String>,
    pub problems: Vec<Located>,
}

impl Report {
    pub fn add(
        &mut self,
        file: &str,
        diagnostics: impl IntoIterator<Item = meshfile_manifest::Diagnostic>,
    ) {
        self.problems
            .extend(diagnostics.into_iter().map(|d| Located::new(file, d)));
    }

    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(|p| p.diagnostic.is_error())
    }

    /// `Err(Stop::Invalid)` with everything found when any of it is an error.
    pub fn check(&mut self) -> Result<(), Stop> {
        if self.has_errors() {
            Err(Stop::Invalid(std::mem::take(self)))
        } else {
            Ok(())
        }
    }

    /// Moves the other report's problems and sources into this one.
    pub fn absorb(&mut self, other: Report) {
        self.problems.extend(other.problems);
        self.sources.extend(other.sources);
    }
}
