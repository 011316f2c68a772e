//! `apply`: the images copied, `target/` written once, and each mesh's sessions delivered as
//! its CAS entry's `mode` says ([`crate::route`]).

use std::path::PathBuf;

use meshfile_manifest::Code;
use meshfile_plan::delivery::{Action, Step};

use super::{Purpose, Settings, Signer, Ui};
use crate::access::CasAccess;
use crate::compile::{Compilation, Mesh};
use crate::connection::{CasConnection, Outcome};
use crate::route::{self, Route};
use crate::sign::{Approval, Form};
use crate::{Error, Signed, Stop, write};

/// How `apply` reaches CAS, and what it may change there.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub access: CasAccess,
    /// `--upload`: the chart-delivered modes write to CAS directly as well.
    pub upload: bool,
    /// `--dry-run`: CAS is read, never changed.
    pub dry_run: bool,
}

/// What became of one mesh's sessions.
pub enum Applied {
    /// `NoUpload`: the sessions stay in `policies`.
    Kept { file: String, policies: PathBuf },
    /// The chart's policy resources deliver the sessions on `helm install`.
    InChart {
        form: Form,
        sessions: usize,
        cas_url: String,
    },
    /// `--dry-run`: what a delivery to `target` would do.
    Planned { target: String, steps: Vec<Step> },
    /// Written to `target`: each step's outcome, in plan order.
    Delivered {
        target: String,
        steps: Vec<Step>,
        outcomes: Vec<Outcome>,
    },
}

/// Runs `apply`: compile, copy the images (the chart then pins the digests the destination
/// serves), then per mesh sign, write `target/` and deliver.
pub fn apply(settings: &Settings, delivery: &Delivery, ui: &dyn Ui) -> Result<Vec<Applied>, Stop> {
    let mut compilation = super::prepare(settings, Purpose::Write, ui)?;
    let mut prepared = super::made_ahead(&mut compilation)?;
    for mesh in &mut compilation.meshes {
        super::images::copy(mesh, settings, ui)?;
    }
    let mut signer = Signer::new(&settings.signer);
    let mut applied = Vec::with_capacity(compilation.meshes.len());
    for mesh in &compilation.meshes {
        let one = apply_mesh(settings, delivery, mesh, prepared.take(), &mut signer, ui)?;
        applied.push(one);
    }
    Ok(applied)
}

/// `apply -p`: the meshes compiled with each service's variables; nothing written.
pub fn variables(settings: &Settings, ui: &dyn Ui) -> Result<Compilation, Stop> {
    super::prepare(settings, Purpose::Variables, ui)
}

/// One mesh through the route its mode takes.
fn apply_mesh(
    settings: &Settings,
    delivery: &Delivery,
    mesh: &Mesh,
    prepared: Option<write::Prepared>,
    signer: &mut Signer<'_>,
    ui: &dyn Ui,
) -> Result<Applied, Error> {
    let route = route::route(
        &mesh.compiled,
        settings.signer.configured(),
        delivery.upload,
    );
    let write = |signed: Option<&Signed>| super::write_mesh(settings, mesh, prepared, signed, ui);
    let connect = || super::connect(&delivery.access, mesh, &settings.target, true, ui);
    match route {
        Route::Keep => {
            write(None)?;
            Ok(Applied::Kept {
                file: mesh.file.clone(),
                policies: settings.target.join("policies"),
            })
        }
        Route::Chart {
            form,
            upload: false,
        } => {
            let signed = super::sign_offline(settings, mesh, form, signer.get(ui)?, ui)?;
            write(Some(&signed))?;
            Ok(Applied::InChart {
                form,
                sessions: mesh.compiled.sessions.len(),
                cas_url: mesh.compiled.cas_url.to_string(),
            })
        }
        Route::Upload => {
            write(None)?;
            let cas = connect()?;
            let steps = cas.plan(&mesh.compiled, &*ui.cas_observer(&cas.describe(), None))?;
            Ok(deliver(&cas, steps, delivery.dry_run, ui))
        }
        Route::UploadSigned | Route::Chart { upload: true, .. } => {
            let form = route.form().unwrap_or(Form::SignedUpload);
            let mut cas = connect()?;
            let signer = signer.get(ui)?;
            let plan = super::plan_signed(&mut cas, mesh, form, signer, &settings.target, ui)?;
            super::signed(settings, signer, plan.artifacts.len(), ui);
            let signed = Signed {
                form,
                artifacts: plan.artifacts,
            };
            write(Some(&signed))?;
            let unmet: Vec<&Approval> = (plan.approvals.iter())
                .filter(|a| a.unmet.is_some())
                .collect();
            if !unmet.is_empty() && !delivery.dry_run {
                return Err(unapproved(&cas.describe(), &unmet, &settings.target));
            }
            Ok(deliver(&cas, plan.steps, delivery.dry_run, ui))
        }
    }
}

/// Writes what changed (unless a dry run), observed as it goes.
fn deliver(cas: &CasConnection, steps: Vec<Step>, dry_run: bool, ui: &dyn Ui) -> Applied {
    let target = cas.describe();
    if dry_run {
        return Applied::Planned { target, steps };
    }
    let writes = (steps.iter())
        .filter(|s| !matches!(s.action, Action::Unchanged { .. }))
        .count();
    let observer = ui.cas_observer(&target, Some(writes));
    let outcomes = cas.deliver(&steps, &*observer);
    observer.finished();
    Applied::Delivered {
        target,
        steps,
        outcomes,
    }
}

/// Sessions whose signatures do not yet meet their rules: nothing is written (E218).
fn unapproved(target: &str, unmet: &[&Approval], target_dir: &std::path::Path) -> Error {
    let n = unmet.len();
    let mut message = format!(
        "{target}: {n} session{} {} signatures; nothing was written",
        if n == 1 { "" } else { "s" },
        if n == 1 { "lacks" } else { "lack" }
    );
    for a in unmet {
        let signed: Vec<String> = a.signers.iter().map(|s| s.short_name()).collect();
        message.push_str(&format!(
            "\n  {}: {} needs {} (signed by: {})",
            a.session,
            a.rule.as_deref().unwrap_or("its rule"),
            a.unmet.as_deref().unwrap_or_default(),
            if signed.is_empty() {
                "nobody".to_owned()
            } else {
                signed.join(", ")
            }
        ));
    }
    Error::new(Code::SignaturesMissing, message).hint(format!(
        "each missing signer runs `meshfile sign -t {}` (or adds an external signature with `meshfile sign --signer PUB --signature FILE`), then apply again",
        target_dir.display()
    ))
}
