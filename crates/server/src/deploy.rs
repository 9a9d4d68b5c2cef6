//! One compose document in, a deployed project out: shared by v0 and v1.

use axum::http::StatusCode;
use compose::{Env, SourceFile};
use framework::engine::DeployOutcome;

use crate::ApiState;
use crate::error::{ApiError, Diagnostic};

pub struct Deployed {
    pub outcome: DeployOutcome,
    pub warnings: Vec<Diagnostic>,
    pub normalized: serde_json::Value,
}

/// Loads, translates and deploys. Load and translation problems are 422 with
/// every diagnostic.
///
/// Interpolation belongs to the client that reads the files (`m3s compose`
/// does it with the user's environment and sends the result): the server
/// fills `${VAR}` from an empty environment, never from its own, which holds
/// its secrets. mesos-compose interpolated from its own; m3s does not.
pub fn deploy(state: &ApiState, name: &str, text: &str, strict: bool) -> Result<Deployed, ApiError> {
    deploy_only(state, name, text, strict, None)
}

/// [`deploy`] of some services only (`compose up web`): the others keep what
/// is deployed of them, or stay out if they are not deployed.
pub fn deploy_only(
    state: &ApiState,
    name: &str,
    text: &str,
    strict: bool,
    only: Option<&std::collections::BTreeSet<String>>,
) -> Result<Deployed, ApiError> {
    let invalid = |message: &str, diagnostics: Vec<Diagnostic>| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message).with(diagnostics)
    };
    let env = Env::new(Default::default());
    let project = compose::load(&[SourceFile::new("compose.yaml", text)], &env)
        .map_err(|e| invalid("the compose file is invalid", e.0.iter().map(Diagnostic::from).collect()))?;
    let mut warnings: Vec<Diagnostic> = project.warnings.iter().map(Diagnostic::from).collect();
    framework::spec::check_project_name(name).map_err(|m| invalid(&m.to_string(), Vec::new()))?;
    let translated = framework::translate::translate(name, &project, &state.inner.translate).map_err(|problems| {
        invalid("the project cannot run on Mesos", problems.iter().map(Diagnostic::from).collect())
    })?;
    warnings.extend(translated.warnings.iter().map(Diagnostic::from));
    if strict && !warnings.is_empty() {
        return Err(invalid("warnings are errors with strict=true", warnings));
    }
    let mut spec = translated.spec;
    if let Some(only) = only {
        if let Some(unknown) = only.iter().find(|s| !spec.services.contains_key(*s)) {
            return Err(ApiError::new(StatusCode::NOT_FOUND, format!("no service {unknown:?} in project {name}")));
        }
        let current = state.framework().read(|e| e.projects().get(name).map(|p| p.spec.services.clone()));
        let current = current.unwrap_or_default();
        spec.services = std::mem::take(&mut spec.services)
            .into_iter()
            .filter_map(|(service, s)| match (only.contains(&service), current.get(&service)) {
                (true, _) => Some((service, s)),
                (false, Some(deployed)) => Some((service, deployed.clone())),
                (false, None) => None,
            })
            .collect();
    }
    let outcome = state.framework().deploy(spec)?;
    Ok(Deployed { outcome, warnings, normalized: compose::normalize(&project) })
}
