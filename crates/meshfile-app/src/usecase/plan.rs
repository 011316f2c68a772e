//! `plan`: what `apply` would change, session by session, with the route `apply` takes;
//! nothing is written, and the signatures counted are those already made unless the user has
//! a key of their own.

use std::path::PathBuf;

use meshfile_plan::delivery::{Action, Step};

use super::{Event, Purpose, Settings, Signer, Ui};
use crate::access::CasAccess;
use crate::route::{self, Route};
use crate::sign::{Approval, Form};
use crate::{Error, Stop};

/// What a mesh's plan compares with.
pub enum Compared {
    /// `NoUpload`: `apply` delivers nothing; the sessions stay in `policies`.
    Nothing { policies: PathBuf },
    /// The chart's policy resources, compared with the previous run's files in `files`.
    Chart {
        form: Form,
        cas_url: String,
        files: PathBuf,
    },
    /// A CAS, as its connection names it.
    Cas(String),
}

/// What `apply` would do with one mesh.
pub struct MeshPlan {
    /// The Meshfile, as it was named.
    pub file: String,
    pub compared: Compared,
    pub steps: Vec<Step>,
    /// Who signed each session to be written, and what its rule still lacks.
    pub approvals: Vec<Approval>,
    /// The services whose pods `helm upgrade` restarts: their session is updated, or a session
    /// they import from changes (the pod template's `meshfile/session` annotation follows).
    pub restarts: Vec<String>,
}

impl MeshPlan {
    /// How many sessions would be written.
    pub fn changes(&self) -> usize {
        (self.steps.iter())
            .filter(|s| !matches!(s.action, Action::Unchanged { .. }))
            .count()
    }
}

/// Runs `plan` over every mesh of the inputs.
pub fn plan(
    settings: &Settings,
    access: &CasAccess,
    upload: bool,
    ui: &dyn Ui,
) -> Result<Vec<MeshPlan>, Stop> {
    let compilation = super::prepare(settings, Purpose::Read, ui)?;
    let mut signer = Signer::new(&settings.signer);
    let mut plans = Vec::with_capacity(compilation.meshes.len());
    for mesh in &compilation.meshes {
        if let Some(images) = &mesh.compiled.images {
            ui.event(Event::ImagesPlanned(images));
        }
        let route = route::route(&mesh.compiled, settings.signer.configured(), upload);
        let mut plan = plan_mesh(settings, access, mesh, route, &mut signer, ui)?;
        plan.restarts = restarts(&mesh.compiled, &plan.steps);
        plans.push(plan);
    }
    Ok(plans)
}

fn plan_mesh(
    settings: &Settings,
    access: &CasAccess,
    mesh: &crate::compile::Mesh,
    route: Route,
    signer: &mut Signer<'_>,
    ui: &dyn Ui,
) -> Result<MeshPlan, Error> {
    let target = &settings.target;
    match route {
        Route::Keep => Ok(MeshPlan {
            file: mesh.file.clone(),
            compared: Compared::Nothing {
                policies: target.join("policies"),
            },
            steps: Vec::new(),
            approvals: Vec::new(),
            restarts: Vec::new(),
        }),
        Route::Chart {
            form,
            upload: false,
        } => {
            let signer = signer.for_reading()?;
            let steps = crate::sign::chart_plan(&mesh.compiled, form, &signer.backend(), target)?;
            ui.event(Event::Ran(&signer.commands_ran()));
            Ok(MeshPlan {
                file: mesh.file.clone(),
                compared: Compared::Chart {
                    form,
                    cas_url: mesh.compiled.cas_url.to_string(),
                    files: target.join(crate::sign::SESSION_FILES),
                },
                steps,
                approvals: Vec::new(),
                restarts: Vec::new(),
            })
        }
        Route::Upload => {
            let cas = super::connect(access, mesh, target, false, ui)?;
            let steps = cas.plan(&mesh.compiled, &*ui.cas_observer(&cas.describe(), None))?;
            Ok(MeshPlan {
                file: mesh.file.clone(),
                compared: Compared::Cas(cas.describe()),
                steps,
                approvals: Vec::new(),
                restarts: Vec::new(),
            })
        }
        Route::UploadSigned | Route::Chart { upload: true, .. } => {
            let form = route.form().unwrap_or(Form::SignedUpload);
            let mut cas = super::connect(access, mesh, target, false, ui)?;
            let signer = signer.for_reading()?;
            let plan = super::plan_signed(&mut cas, mesh, form, signer, target, ui)?;
            Ok(MeshPlan {
                file: mesh.file.clone(),
                compared: Compared::Cas(cas.describe()),
                steps: plan.steps,
                approvals: plan.approvals,
                restarts: Vec::new(),
            })
        }
    }
}

/// The generated services whose pod template changes with `steps`: their own session is
/// updated, or a session they import from is created or updated. (A service whose session is
/// created is deployed anew, not restarted; a chart of the user's own carries no annotation.)
fn restarts(compiled: &meshfile_plan::Compiled, steps: &[Step]) -> Vec<String> {
    use std::collections::{BTreeMap, BTreeSet};
    let updated: BTreeSet<&str> = (steps.iter())
        .filter(|s| matches!(s.action, Action::Update { .. }))
        .map(|s| s.session.as_str())
        .collect();
    let changed: BTreeSet<&str> = (steps.iter())
        .filter(|s| !matches!(s.action, Action::Unchanged { .. }))
        .map(|s| s.session.as_str())
        .collect();
    let imports: BTreeMap<&str, &std::collections::BTreeSet<String>> = (compiled.sessions.iter())
        .map(|d| (d.name.as_str(), &d.imports))
        .collect();
    (compiled.chart.services.iter())
        .filter(|s| meshfile_plan::rollout::generated(s))
        .filter(|s| {
            let session = meshfile_plan::rollout::session_of(s);
            updated.contains(session)
                || imports
                    .get(session)
                    .is_some_and(|i| i.iter().any(|name| changed.contains(name.as_str())))
        })
        .map(|s| s.mesh_service.clone())
        .collect()
}
