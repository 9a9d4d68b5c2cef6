//! Where the pages' data comes from: the master's state (through the agent
//! files client) and the newest M3trics samples. A leaf: pages import it,
//! it imports no page.

use mesos::legacy::MasterState;
use metrics::model::{Labels, Matcher, NAME_LABEL, Source};

use super::{Dashboard, blocking};

/// Why the master's state is not at hand.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("this server reads no cluster state (no master configured)")]
    NoMaster,
    #[error(transparent)]
    Master(#[from] mesos::files::LogError),
}

/// The master's state, or why not.
pub async fn master_state(state: &Dashboard) -> Result<MasterState, StateError> {
    let files = state.api.inner.files.as_ref().ok_or(StateError::NoMaster)?;
    Ok(files.master_state().await?)
}

/// The newest sample (within a minute) of every series named `name`: what is
/// being measured now, not tasks that ended a while ago.
pub async fn latest(state: &Dashboard, name: &'static str, extra: Vec<Matcher>) -> Vec<(Labels, f64)> {
    let store = state.metrics.store().clone();
    blocking(move || {
        let now = metrics::store::now_ms();
        let mut matchers = vec![Matcher::eq(NAME_LABEL, name)];
        matchers.extend(extra);
        let series = store.select(&matchers, now - 60_000, now).unwrap_or_else(|e| {
            tracing::warn!(metric = name, error = %e, "dashboard: newest samples");
            Vec::new()
        });
        series
            .into_iter()
            .filter_map(|s| Some((s.labels.clone(), s.samples.last()?.v)))
            .filter(|(_, v)| v.is_finite())
            .collect()
    })
    .await
}
