//! A commit's projects and K3s clusters against what runs, as `terraform plan`
//! shows it: what would be added, changed (which services, which fields; a
//! cluster's counts) and removed. Pure.

use std::collections::{BTreeMap, BTreeSet};

use framework::spec::{ProjectSpec, ServiceSpec};
use serde::Serialize;

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Plan {
    pub add: Vec<String>,
    pub change: Vec<ProjectChange>,
    pub remove: Vec<String>,
    pub unchanged: Vec<String>,
    /// K3s clusters (`<dir>/k3s/<name>.yaml`).
    #[serde(skip_serializing_if = "ClusterPlan::is_empty")]
    pub clusters: ClusterPlan,
}

/// A K3s cluster's size: servers and agents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ClusterSize {
    pub servers: u32,
    pub agents: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ClusterPlan {
    pub add: Vec<(String, ClusterSize)>,
    /// Name, from, to.
    pub scale: Vec<(String, ClusterSize, ClusterSize)>,
    pub remove: Vec<String>,
    #[serde(skip)]
    pub unchanged: usize,
}

impl ClusterPlan {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.scale.is_empty() && self.remove.is_empty()
    }
}

/// The commit's clusters against the running ones; only clusters an earlier
/// apply made (`managed`) are removed.
pub fn plan_clusters(
    desired: &BTreeMap<String, ClusterSize>,
    current: &BTreeMap<String, ClusterSize>,
    managed: &BTreeSet<String>,
) -> ClusterPlan {
    let mut plan = ClusterPlan::default();
    for (name, want) in desired {
        match current.get(name) {
            None => plan.add.push((name.clone(), *want)),
            Some(have) if have == want => plan.unchanged += 1,
            Some(have) => plan.scale.push((name.clone(), *have, *want)),
        }
    }
    for name in managed {
        if !desired.contains_key(name) && current.contains_key(name) {
            plan.remove.push(name.clone());
        }
    }
    plan
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProjectChange {
    pub project: String,
    pub services: Vec<ServiceChange>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ServiceChange {
    Add {
        service: String,
    },
    Remove {
        service: String,
    },
    /// The fields that differ (JSON paths of the spec), with both values.
    Change {
        service: String,
        fields: Vec<FieldChange>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldChange {
    pub path: String,
    pub from: serde_json::Value,
    pub to: serde_json::Value,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.change.is_empty() && self.remove.is_empty() && self.clusters.is_empty()
    }

    /// The plan as text: `+` added, `~` changed, `-` removed, with the fields.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for p in &self.add {
            out.push_str(&format!("+ project {p}\n"));
        }
        for c in &self.change {
            out.push_str(&format!("~ project {}\n", c.project));
            for s in &c.services {
                match s {
                    ServiceChange::Add { service } => out.push_str(&format!("    + service {service}\n")),
                    ServiceChange::Remove { service } => out.push_str(&format!("    - service {service}\n")),
                    ServiceChange::Change { service, fields } => {
                        out.push_str(&format!("    ~ service {service}\n"));
                        for f in fields {
                            out.push_str(&format!("        {}: {} -> {}\n", f.path, f.from, f.to));
                        }
                    }
                }
            }
        }
        for p in &self.remove {
            out.push_str(&format!("- project {p}\n"));
        }
        let c = &self.clusters;
        for (name, size) in &c.add {
            out.push_str(&format!("+ k3s cluster {name} ({} server(s), {} agent(s))\n", size.servers, size.agents));
        }
        for (name, from, to) in &c.scale {
            out.push_str(&format!("~ k3s cluster {name}\n"));
            if from.servers != to.servers {
                out.push_str(&format!("        servers: {} -> {}\n", from.servers, to.servers));
            }
            if from.agents != to.agents {
                out.push_str(&format!("        agents: {} -> {}\n", from.agents, to.agents));
            }
        }
        for name in &c.remove {
            out.push_str(&format!("- k3s cluster {name}\n"));
        }
        if self.is_empty() {
            out.push_str("no changes\n");
        }
        out.push_str(&format!(
            "Plan: {} to add, {} to change, {} to remove, {} unchanged.\n",
            self.add.len() + c.add.len(),
            self.change.len() + c.scale.len(),
            self.remove.len() + c.remove.len(),
            self.unchanged.len() + c.unchanged
        ));
        out
    }
}

/// `desired` (the commit's projects) against `current` (the projects running
/// now); `managed` are the projects an earlier apply made, the only ones a plan
/// removes (projects deployed by hand are left alone).
pub fn plan(
    desired: &BTreeMap<String, ProjectSpec>,
    current: &BTreeMap<String, ProjectSpec>,
    managed: &BTreeSet<String>,
) -> Plan {
    let mut plan = Plan::default();
    for (name, want) in desired {
        match current.get(name) {
            None => plan.add.push(name.clone()),
            Some(have) if have == want => plan.unchanged.push(name.clone()),
            Some(have) => plan.change.push(ProjectChange { project: name.clone(), services: services(have, want) }),
        }
    }
    for name in managed {
        if !desired.contains_key(name) && current.contains_key(name) {
            plan.remove.push(name.clone());
        }
    }
    plan
}

fn services(have: &ProjectSpec, want: &ProjectSpec) -> Vec<ServiceChange> {
    let mut out = Vec::new();
    for (name, w) in &want.services {
        match have.services.get(name) {
            None => out.push(ServiceChange::Add { service: name.clone() }),
            Some(h) if h == w => {}
            Some(h) => out.push(ServiceChange::Change { service: name.clone(), fields: fields(h, w) }),
        }
    }
    for name in have.services.keys().filter(|n| !want.services.contains_key(*n)) {
        out.push(ServiceChange::Remove { service: name.clone() });
    }
    out
}

/// The JSON paths at which two service specs differ. Secret values (a SECRET
/// variable's value) are never shown: only that they changed.
fn fields(have: &ServiceSpec, want: &ServiceSpec) -> Vec<FieldChange> {
    let a = serde_json::to_value(have).unwrap_or_default();
    let b = serde_json::to_value(want).unwrap_or_default();
    let mut out = Vec::new();
    diff("", &a, &b, &mut out);
    for f in &mut out {
        if f.path.starts_with("run.secret_env") {
            f.from = serde_json::Value::String("(secret)".into());
            f.to = serde_json::Value::String("(secret)".into());
        }
    }
    out
}

fn diff(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<FieldChange>) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let sub = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                diff(&sub, x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null), out);
            }
        }
        _ if a != b => out.push(FieldChange { path: path.to_owned(), from: a.clone(), to: b.clone() }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(name: &str, services: &[(&str, u32, &str)]) -> ProjectSpec {
        let mut spec: ProjectSpec = serde_json::from_value(serde_json::json!({"name": name, "services": {}})).unwrap();
        for (service, replicas, image) in services {
            let s: ServiceSpec = serde_json::from_value(serde_json::json!({
                "replicas": replicas,
                "task_name": format!("{name}_{service}"),
                "run": {"container": {"kind": "docker", "image": image, "network": ""}},
                "resources": {"cpus": 0.1, "mem_mb": 64.0, "disk_mb": 0.0},
                "restart": {"when": "always", "delay_ms": 1000},
            }))
            .unwrap();
            spec.services.insert(service.to_string(), s);
        }
        spec
    }

    #[test]
    fn a_plan_says_what_changes_down_to_the_field() {
        let desired = BTreeMap::from([
            ("web".to_owned(), project("web", &[("app", 2, "nginx:2"), ("cache", 1, "redis")])),
            ("new".to_owned(), project("new", &[("job", 1, "busybox")])),
            ("same".to_owned(), project("same", &[("s", 1, "x")])),
        ]);
        let current = BTreeMap::from([
            ("web".to_owned(), project("web", &[("app", 1, "nginx:1"), ("old", 1, "x")])),
            ("same".to_owned(), project("same", &[("s", 1, "x")])),
            ("gone".to_owned(), project("gone", &[("s", 1, "x")])),
            ("byhand".to_owned(), project("byhand", &[("s", 1, "x")])),
        ]);
        let managed = BTreeSet::from(["web".to_owned(), "gone".to_owned()]);
        let p = plan(&desired, &current, &managed);
        assert_eq!(p.add, ["new"]);
        assert_eq!(p.remove, ["gone"], "a project deployed by hand is not removed");
        assert_eq!(p.unchanged, ["same"]);
        let web = &p.change[0];
        assert_eq!(web.project, "web");
        let app = web.services.iter().find_map(|s| match s {
            ServiceChange::Change { service, fields } if service == "app" => Some(fields),
            _ => None,
        });
        let paths: Vec<&str> = app.unwrap().iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["replicas", "run.container.image"]);
        assert!(web.services.contains(&ServiceChange::Add { service: "cache".into() }));
        assert!(web.services.contains(&ServiceChange::Remove { service: "old".into() }));
        let text = p.render();
        assert!(text.contains("~ service app\n        replicas: 1 -> 2\n"), "{text}");
        assert!(text.ends_with("Plan: 1 to add, 1 to change, 1 to remove, 1 unchanged.\n"), "{text}");
    }

    #[test]
    fn secret_values_never_appear_in_a_plan() {
        let mut have = project("p", &[("s", 1, "x")]);
        let mut want = have.clone();
        have.services.get_mut("s").unwrap().run.secret_env.insert("TOKEN".into(), "old-s3cret".into());
        want.services.get_mut("s").unwrap().run.secret_env.insert("TOKEN".into(), "new-s3cret".into());
        let p = plan(&BTreeMap::from([("p".into(), want)]), &BTreeMap::from([("p".into(), have)]), &BTreeSet::new());
        let text = p.render() + &serde_json::to_string(&p).unwrap();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("run.secret_env.TOKEN"), "{text}");
    }

    #[test]
    fn clusters_are_added_scaled_and_removed_only_when_git_made_them() {
        let size = |servers, agents| ClusterSize { servers, agents };
        let desired: BTreeMap<String, ClusterSize> =
            [("dev".to_owned(), size(1, 3)), ("new".to_owned(), size(1, 0))].into_iter().collect();
        let current: BTreeMap<String, ClusterSize> =
            [("dev".to_owned(), size(1, 2)), ("old".to_owned(), size(1, 1)), ("byhand".to_owned(), size(1, 1))]
                .into_iter()
                .collect();
        let managed: BTreeSet<String> = ["dev".to_owned(), "old".to_owned()].into_iter().collect();
        let clusters = plan_clusters(&desired, &current, &managed);
        assert_eq!(clusters.add, [("new".to_owned(), size(1, 0))]);
        assert_eq!(clusters.scale, [("dev".to_owned(), size(1, 2), size(1, 3))]);
        assert_eq!(clusters.remove, ["old"]);
        let plan = Plan { clusters, ..Default::default() };
        let text = plan.render();
        assert!(text.contains("+ k3s cluster new (1 server(s), 0 agent(s))"), "{text}");
        assert!(text.contains("~ k3s cluster dev\n        agents: 2 -> 3\n"), "{text}");
        assert!(text.contains("- k3s cluster old") && !text.contains("byhand"), "{text}");
        assert!(text.contains("Plan: 1 to add, 1 to change, 1 to remove, 0 unchanged."), "{text}");
    }
}
