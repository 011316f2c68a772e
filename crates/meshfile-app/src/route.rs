//! How a mesh's sessions reach CAS, decided once for `plan` and `apply` from the CAS entry's
//! `mode`, as sconectl's library delivers them (docs: `reference/sconectl.md`).

use meshfile_manifest::mesh::CasMode;
use meshfile_plan::Compiled;

use crate::sign::Form;

/// The way one mesh's sessions are delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `NoUpload`: the target directory is all; nothing is delivered.
    Keep,
    /// `Upload` (the default): the sessions, as they are, written to CAS.
    Upload,
    /// `Upload` with signing configured: signed sessions written to CAS.
    UploadSigned,
    /// `SignedManifest`, `EncryptedManifest`, `EncryptedOnly`: the signed (or encrypted)
    /// sessions travel in the chart as `SignedPolicy`/`EncryptedPolicy` resources, which
    /// SCONE's operator registers on `helm install`; no CAS connection. `upload`: the user
    /// asked (`--upload`) to write them to CAS directly as well.
    Chart { form: Form, upload: bool },
}

impl Route {
    /// The signing form, when the sessions are signed.
    pub fn form(self) -> Option<Form> {
        match self {
            Route::Keep | Route::Upload => None,
            Route::UploadSigned => Some(Form::SignedUpload),
            Route::Chart { form, .. } => Some(form),
        }
    }

    /// Whether delivering opens a connection to CAS.
    pub fn connects(self) -> bool {
        match self {
            Route::Keep => false,
            Route::Upload | Route::UploadSigned => true,
            Route::Chart { upload, .. } => upload,
        }
    }
}

/// The route of a compiled mesh. `signing_configured`: a signing key or SCONE's CLI named on
/// the command line; `upload`: `--upload`. (`SignOnline` never gets here: validation refuses
/// it, located at the mode.)
pub fn route(compiled: &Compiled, signing_configured: bool, upload: bool) -> Route {
    match Form::of(compiled, signing_configured) {
        None if compiled.mode == Some(CasMode::NoUpload) => Route::Keep,
        None => Route::Upload,
        Some(Form::SignedUpload) => Route::UploadSigned,
        Some(form) => Route::Chart { form, upload },
    }
}

/// What the chart's resources are called, for messages.
pub fn resource_kind(form: Form) -> &'static str {
    if form.encrypts() {
        "EncryptedPolicy"
    } else {
        "SignedPolicy"
    }
}
