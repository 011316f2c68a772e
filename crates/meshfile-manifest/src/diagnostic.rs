//! Problems found in a manifest: a stable code, where, what, and what to do.

use meshfile_yaml::Span;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

macro_rules! codes {
    ($($variant:ident = $code:literal, $title:literal;)*) => {
        /// Stable diagnostic codes: `E` errors make a manifest invalid, `W` warnings do not.
        /// Codes are never reused or renumbered; scripts may match on them.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code { $($variant,)* }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }

            /// One line that says what the code is about.
            pub fn title(self) -> &'static str {
                match self { $(Code::$variant => $title,)* }
            }
        }
    };
}

codes! {
    Read = "E001", "the file cannot be read as UTF-8 text";
    Syntax = "E002", "YAML syntax error";
    DuplicateKey = "E003", "a key appears twice in one mapping";
    MultipleDocuments = "E004", "more than one YAML document in a manifest";
    Empty = "E005", "the file holds no document";
    Limit = "E006", "the input exceeds a size, depth or alias-expansion limit";
    WrongType = "E010", "a value has the wrong type";
    MissingField = "E011", "a required field is missing";
    UnknownField = "E012", "a field that the specification does not define";
    InvalidEnum = "E013", "a value outside the allowed set";
    ApiVersion = "E020", "apiVersion is malformed or older than scone/5.8";
    Kind = "E021", "kind is not `mesh` or `genservice`";
    DuplicateService = "E030", "two services share a name";
    InvalidName = "E031", "a name that cannot be used as a CAS session name";
    UnknownEnvService = "E032", "env[].service names no declared service";
    InvalidEnvName = "E033", "an environment variable name is malformed";
    MissingCasRole = "E034", "no CAS serves a required role";
    DuplicateCasRole = "E035", "two CAS entries serve the same role";
    InvalidNamespace = "E037", "policy.namespace is not a valid CAS namespace";
    InvalidTolerate = "E038", "an unknown attestation tolerance";
    InvalidAdvisories = "E039", "ignore_advisories is neither `*` nor a list of INTEL-SA-NNNNN";
    DuplicateCasName = "E040", "two CAS entries share a name";
    InvalidCasKey = "E042", "a CAS key or encryption key is malformed";
    UnknownSecretKind = "E050", "an unknown secret kind";
    PrivateKeyRef = "E051", "a certificate's private_key does not name a private-key secret";
    IssuerRef = "E052", "a certificate's issuer does not name an x509-ca secret";
    UnknownSecretRef = "E053", "a $$SCONE::name$$ reference names no defined or imported secret";
    SecretRefSyntax = "E054", "a malformed $$SCONE::...$$ reference or format";
    DuplicateSecret = "E055", "two secrets share a name";
    InvalidSecretField = "E056", "a secret field has an invalid value";
    VariableSyntax = "E057", "a malformed $VAR, ${VAR} or {{name}} reference";
    InvalidImage = "E058", "an image reference that is not a valid OCI reference";
    InvalidVolume = "E059", "a volume without a name or path, with a bad update_policy, or both imported and exported";
    InvalidTolerance = "E060", "retired: unknown CAS tolerance words now warn (W011)";
    InvalidAccessPolicy = "E061", "an access_policy (meshfile extension) that breaks the session language's rules";
    UndefinedVariable = "E100", "a $VAR that is neither in the environment nor given with --set";
    UndefinedMeshVariable = "E101", "a {{name}} that no env section, service default or built-in defines";
    MissingDescriptor = "E102", "a mesh service whose image has no recorded service descriptor";
    MissingGlobalValue = "E103", "a global environment name that the Meshfile gives no value";
    UnexportedImport = "E104", "a secret import that no service of the mesh defines";
    AmbiguousSecret = "E105", "a secret import that several services of the mesh could satisfy";
    MissingMeasurement = "E106", "a service manifest without an MRENCLAVE";
    OverrideFile = "E107", "an image_policy, image_secrets, env or helm_chart file that cannot be used";
    UnsupportedMode = "E108", "a CAS mode that cannot be carried out as stated (SignOnline, signing on the embedded store)";
    InvalidChartValue = "E109", "an env value the chart uses (`useSGXDevPlugin`, `sgxEpcMem`, `INIT_CONTAINER<N>`) that is not valid";
    ReadFailed = "E200", "an input file or directory cannot be read";
    NoManifests = "E201", "a directory holds no manifest";
    BadArguments = "E202", "command-line arguments that are malformed or do not fit together";
    WriteFailed = "E203", "output cannot be written (target directory, standard output)";
    ChartFailed = "E204", "a service's helm_chart cannot be packaged";
    InputNotFound = "E205", "a file or directory named on the command line does not exist";
    CasUnreachable = "E210", "CAS cannot be reached";
    CasUntrusted = "E211", "meshfile cannot trust the CAS (no trust given, wrong CA or key pin)";
    CasForbidden = "E212", "CAS refused the caller: its key hash is not in the access policy";
    CasConflict = "E213", "a session changed in CAS since it was read";
    CasInvalid = "E214", "CAS refused a session or request as invalid";
    CasFailed = "E215", "CAS, or the embedded store, failed to carry out a request";
    ClientIdentity = "E216", "the client identity for CAS cannot be read or made";
    SigningKey = "E217", "a key file (session signing key, cosign key, descriptor key) is missing, unreadable, or of a kind meshfile cannot use";
    SignaturesMissing = "E218", "a signed session whose signatures do not yet meet its access policy";
    ImageCopyFailed = "E219", "an image could not be copied to the repo destination";
    ImageDestination = "E220", "two different images of a mesh would go to one name at the repo destination";
    SconeCli = "E221", "SCONE's CLI failed to sign, encrypt or hash a session, or printed something else";
    CosignPassword = "E222", "a cosign key file's password is missing or does not open it";
    DescriptorRefused = "E223", "a service descriptor published beside its image is signed by no trusted key";
    SignatureRejected = "E224", "a signature given for a session does not verify over it";
    KeyExists = "E225", "a key of another kind exists where `key generate` would make one";
    CasListen = "E226", "the development CAS cannot listen on its address (in use, or not this host's)";
    NotAttested = "E227", "CAS refused a program whose MRENCLAVE its service does not list";
    EncryptionKeyMismatch = "E228", "the Meshfile's cas_encryption_key is not the key the CAS says it has";
    DuplicateEnv = "W001", "an environment name is defined twice; the last one wins";
    NotSupportedYet = "W002", "a field that is accepted but not acted on yet";
    DeprecatedSecretSuffix = "W003", "deprecated $$SCONE::name.crt$$ dot syntax";
    UnknownBuildKind = "W004", "a build kind this tool does not know";
    DeprecatedField = "W005", "a misspelt or deprecated field that is accepted for compatibility";
    UnusedCas = "W006", "a CAS entry that serves no role";
    MaaWithoutTolerance = "W007", "MAA attestation without the maa-managed-tcb tolerance";
    CannotAct = "W008", "a field meshfile cannot act on by its nature (it attests no CAS)";
    ImageBuilding = "W009", "fields that build the image, which meshfile leaves to SCONE's tools";
    UnusedHelmValues = "W010", "helm_extra_values for a sub-chart the mesh does not have";
    UnknownTolerance = "W011", "a CAS tolerance word that scone cas attest does not document";
    LintDebugTolerance = "W101", "services tolerate debug enclaves";
    LintIgnoreAllAdvisories = "W102", "every security advisory is ignored";
    LintTestingCasTolerance = "W103", "the CAS is attested with --only_for_testing tolerances";
    LintImageTag = "W104", "an image without a tag, or tagged `latest`";
    LintClearSecret = "W105", "a secret value written in clear in the manifest";
    LintWeakTolerance = "W106", "services tolerate a weakened platform";
    LintNoPwd = "W107", "a service manifest without build.pwd: its program runs in `/`";
    LintExtension = "W108", "a meshfile extension (policy.access_policy, descriptor_keys) that sconectl does not accept";
    LintSignedInClear = "W109", "SignedManifest: the sessions, environment included, travel in the chart in clear";
    LintPasteWorkaround = "W110", "an env value starting with a line of only `|`: scone_mesh's paste workaround";
    LintUnusedSecret = "W111", "a secret defined, exported, and used by no service";
    LintUnusedImport = "W112", "an imported secret the importer never uses";
    LintWideExport = "W113", "an export to sessions that do not import it, or to a whole namespace";
    LintPrivateKeyReach = "W114", "an importer that can read a private key it only needs the certificate of";
    LintSharedValue = "W115", "unrelated services define secrets with the same explicit value";
    LintTemplateDebug = "W116", "a session template that tolerates debug enclaves or ignores every advisory in production";
}

impl Code {
    pub fn severity(self) -> Severity {
        if self.as_str().starts_with('E') {
            Severity::Error
        } else {
            Severity::Warning
        }
    }

    pub fn parse(text: &str) -> Option<Code> {
        Code::ALL
            .iter()
            .copied()
            .find(|c| c.as_str().eq_ignore_ascii_case(text))
    }

    /// What the code means, an example and the fix: its section of `explanations.txt`.
    pub fn explanation(self) -> &'static str {
        let heading = format!("## {}\n", self.as_str());
        let Some(start) = EXPLANATIONS.find(&heading) else {
            return "";
        };
        let body = &EXPLANATIONS[start + heading.len()..];
        body[..body.find("\n## ").unwrap_or(body.len())].trim()
    }
}

/// `meshfile explain CODE`'s texts, a section per code (`## E001`).
const EXPLANATIONS: &str = include_str!("explanations.txt");

#[cfg(test)]
mod explanation_tests {
    use super::*;

    #[test]
    fn every_code_is_explained_with_an_example_and_a_fix() {
        for code in Code::ALL {
            let text = code.explanation();
            assert!(
                text.contains("Example") && text.contains("Fix:"),
                "{} has no explanation with an example and a fix",
                code.as_str()
            );
        }
        let sections = EXPLANATIONS.lines().filter(|l| l.starts_with("## "));
        for heading in sections {
            assert!(
                Code::parse(&heading[3..]).is_some(),
                "{heading} explains no code"
            );
        }
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One problem, located in the source.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    /// Where in the document, as `services[2].name`; empty for the whole document.
    pub path: String,
    pub line: u32,
    pub column: u32,
    #[serde(skip)]
    pub span: Span,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The text that would fix the span, when there is one obvious fix (a near miss of a
    /// known name): an editor's quick fix.
    #[serde(skip)]
    pub replacement: Option<String>,
}

impl Diagnostic {
    pub fn new(
        code: Code,
        span: Span,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            code,
            severity: code.severity(),
            message: message.into(),
            path: path.into(),
            line: span.start.line,
            column: span.start.column,
            span,
            hint: None,
            replacement: None,
        }
    }

    /// "did you mean `best`?", and `best` as the replacement of the span.
    pub fn with_suggestion(mut self, best: &str) -> Self {
        self.hint = Some(format!("did you mean `{best}`?"));
        self.replacement = Some(best.to_owned());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Sorts by position so that output reads top to bottom, whatever order the checks ran in.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        (a.line, a.column, a.code, &a.message).cmp(&(b.line, b.column, b.code, &b.message))
    });
}

/// The closest candidate to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}
