//! Semantic checks of a typed project: references between services,
//! networks, volumes and secrets, and dependency cycles.

use super::*;

impl Cx<'_> {
    /// Cross-references between services and top-level objects.
    pub(super) fn check(&mut self, p: &Project, root: &Node) {
        let Some(services) = root.get("services") else { return };
        for (name, svc) in &p.services {
            let Some(snode) = services.get(name) else { continue };
            let path = join("services", name);
            if let Some(deps) = snode.get("depends_on") {
                for (dep, d) in &svc.depends_on {
                    if let Some(profiles) = self.disabled.get(dep).cloned() {
                        if d.required {
                            let at = deps.get(dep).unwrap_or(deps);
                            self.err(
                                at,
                                &join(&path, "depends_on"),
                                format!(
                                    "depends on service {dep:?}, which is disabled: enable one of its profiles ({})",
                                    profiles.join(", ")
                                ),
                            );
                        }
                    } else if !p.services.contains_key(dep) {
                        let at = match &deps.value {
                            Value::Seq(items) => {
                                items.iter().find(|n| n.scalar_text().as_deref() == Some(dep)).unwrap_or(deps)
                            }
                            _ => deps.get(dep).unwrap_or(deps),
                        };
                        self.err(at, &join(&path, "depends_on"), format!("depends on undefined service {dep:?}"));
                    } else if dep == name {
                        self.err(deps, &join(&path, "depends_on"), "a service cannot depend on itself");
                    }
                }
            }
            if let Some(Value::Seq(items)) = snode.get("volumes").map(|n| &n.value) {
                for (i, m) in svc.volumes.iter().enumerate() {
                    if m.kind == MountType::Volume
                        && let Some(src) = &m.source
                        && !p.volumes.contains_key(src)
                    {
                        let at = items.get(i).unwrap_or(snode);
                        self.err(
                            at,
                            &index(&join(&path, "volumes"), i),
                            format!("refers to undefined volume {src:?} (declare it under the top-level volumes)"),
                        );
                    }
                }
            }
            if let (Some(b), Some(bnode)) = (&svc.build, snode.get("build")) {
                for secret in &b.secrets {
                    if !p.secrets.contains_key(secret) {
                        let at = bnode.get("secrets").unwrap_or(bnode);
                        self.err(
                            at,
                            &join(&path, "build.secrets"),
                            format!("refers to undefined secret {secret:?} (declare it under the top-level secrets)"),
                        );
                    }
                }
            }
            if let Some(nets) = snode.get("networks") {
                for name in svc.networks.keys() {
                    if name != "default" && !p.networks.contains_key(name) {
                        let at = match &nets.value {
                            Value::Seq(items) => {
                                items.iter().find(|n| n.scalar_text().as_deref() == Some(name)).unwrap_or(nets)
                            }
                            _ => nets.get(name).unwrap_or(nets),
                        };
                        self.err(
                            at,
                            &join(&path, "networks"),
                            format!("refers to undefined network {name:?} (declare it under the top-level networks)"),
                        );
                    }
                }
            }
            for (key, declared) in [("secrets", &p.secrets), ("configs", &p.configs)] {
                let Some(Value::Seq(items)) = snode.get(key).map(|n| &n.value) else { continue };
                for (i, item) in items.iter().enumerate() {
                    let source = match &item.value {
                        Value::Map(_) => item.get("source").and_then(Node::scalar_text),
                        _ => item.scalar_text(),
                    };
                    if let Some(src) = source
                        && !declared.contains_key(&src)
                    {
                        self.err(
                            item,
                            &index(&join(&path, key), i),
                            format!(
                                "refers to undefined {} {src:?} (declare it under the top-level {key})",
                                &key[..key.len() - 1]
                            ),
                        );
                    }
                }
            }
            let port_items = match snode.get("ports").map(|n| &n.value) {
                Some(Value::Seq(items)) => items.as_slice(),
                _ => &[],
            };
            let mut seen: Vec<(u16, &str, Option<&str>)> = Vec::new();
            let mut fixed = false;
            for (i, port) in svc.ports.iter().enumerate() {
                let Some(range) = port.published else { continue };
                fixed = true;
                // A host range with one container port is a choice, not a claim on each port.
                if range.start != range.end {
                    continue;
                }
                let id = (range.start, port.protocol.as_str(), port.host_ip.as_deref());
                if seen.contains(&id) {
                    // Short ranges expand to several ports: name the entry only when they line up.
                    let (at, at_path) = match port_items.get(i) {
                        Some(item) if port_items.len() == svc.ports.len() => (item, index(&join(&path, "ports"), i)),
                        _ => (snode.get("ports").unwrap_or(snode), join(&path, "ports")),
                    };
                    self.err(at, &at_path, format!("host port {}/{} is published twice", range.start, port.protocol));
                }
                seen.push(id);
            }
            if fixed && svc.deploy.replicas.is_some_and(|r| r > 1) {
                let at = snode.get("deploy").and_then(|d| d.get("replicas")).unwrap_or(snode);
                self.warn(
                    at,
                    &join(&path, "deploy.replicas"),
                    "more than one replica with a fixed host port: on a single node only one can run",
                );
            }
        }
        self.dependency_cycles(p, services);
    }

    /// Names the first `depends_on` cycle found, at the service that closes it.
    pub(super) fn dependency_cycles(&mut self, p: &Project, services: &Node) {
        // 0 unvisited, 1 on the stack, 2 done.
        let mut state: BTreeMap<&str, u8> = BTreeMap::new();
        let mut stack: Vec<&str> = Vec::new();
        fn visit<'p>(
            name: &'p str,
            p: &'p Project,
            state: &mut BTreeMap<&'p str, u8>,
            stack: &mut Vec<&'p str>,
        ) -> Option<Vec<&'p str>> {
            match state.get(name) {
                Some(1) => {
                    let from = stack.iter().position(|s| *s == name).unwrap_or(0);
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(name);
                    return Some(cycle);
                }
                Some(_) => return None,
                None => {}
            }
            state.insert(name, 1);
            stack.push(name);
            if let Some(svc) = p.services.get(name) {
                for dep in svc.depends_on.keys() {
                    if dep != name
                        && p.services.contains_key(dep)
                        && let Some(c) = visit(dep, p, state, stack)
                    {
                        return Some(c);
                    }
                }
            }
            stack.pop();
            state.insert(name, 2);
            None
        }
        for name in p.services.keys() {
            if let Some(cycle) = visit(name, p, &mut state, &mut stack) {
                let last = cycle[cycle.len() - 2];
                let path = join(&join("services", last), "depends_on");
                let at = services.get(last).and_then(|s| s.get("depends_on")).unwrap_or(services);
                self.err(at, &path, format!("dependency cycle: {}", cycle.join(" -> ")));
                return;
            }
        }
    }
}
