//! The part of the Kubernetes API the framework uses: nodes (readiness, labels,
//! versions, cordon, delete), pod eviction for drains, `/version` and
//! `/readyz`; authenticated as the kubeconfig says (client certificate or
//! bearer token), the server checked against the kubeconfig's CA.
//!
//! kube-rs would bring k8s-openapi's generated types for every Kubernetes
//! object; these few calls need a handful of fields, read with serde.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("kubeconfig: {0}")]
    Config(String),
    #[error("Kubernetes API {url}: {message}")]
    Http { url: String, message: String },
}

/// The fields of a kubeconfig the client needs, for its current context.
#[derive(Debug, Deserialize)]
struct KubeconfigFile {
    #[serde(rename = "current-context", default)]
    current_context: String,
    #[serde(default)]
    clusters: Vec<Named<ClusterEntry>>,
    #[serde(default)]
    contexts: Vec<Named<ContextEntry>>,
    #[serde(default)]
    users: Vec<Named<UserEntry>>,
}

#[derive(Debug, Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "context", alias = "user")]
    item: T,
}

#[derive(Debug, Deserialize)]
struct ClusterEntry {
    server: String,
    #[serde(rename = "certificate-authority-data", default)]
    ca: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ContextEntry {
    cluster: String,
    user: String,
}

#[derive(Debug, Default, Deserialize)]
struct UserEntry {
    #[serde(rename = "client-certificate-data", default)]
    cert: Option<String>,
    #[serde(rename = "client-key-data", default)]
    key: Option<String>,
    #[serde(default)]
    token: Option<String>,
}

/// The server URL of a kubeconfig's current context.
pub fn server_of(kubeconfig: &str) -> Result<String, KubeError> {
    Ok(parse(kubeconfig)?.0.server.clone())
}

fn parse(kubeconfig: &str) -> Result<(ClusterEntry, UserEntry), KubeError> {
    let file: KubeconfigFile = serde_saphyr::from_str(kubeconfig).map_err(|e| KubeError::Config(e.to_string()))?;
    let context = match file.contexts.iter().find(|c| c.name == file.current_context) {
        Some(c) => &c.item,
        None if file.contexts.len() == 1 => &file.contexts[0].item,
        None => return Err(KubeError::Config(format!("no context named {:?}", file.current_context))),
    };
    let cluster = file
        .clusters
        .into_iter()
        .find(|c| c.name == context.cluster)
        .ok_or_else(|| KubeError::Config(format!("no cluster named {:?}", context.cluster)))?
        .item;
    let user = file.users.into_iter().find(|u| u.name == context.user).map(|u| u.item).unwrap_or_default();
    Ok((cluster, user))
}

/// The kubeconfig with every cluster's `server:` set to `server` (k3s writes
/// `https://127.0.0.1:<port>`); the rest kept byte for byte, so kubectl reads it
/// as k3s wrote it.
pub fn rewrite_server(kubeconfig: &str, server: &str) -> Result<String, KubeError> {
    let mut out = String::with_capacity(kubeconfig.len() + server.len());
    let mut replaced = 0;
    for line in kubeconfig.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("server:")
            && !rest.trim().is_empty()
        {
            let indent = &line[..line.len() - trimmed.len()];
            out.push_str(indent);
            out.push_str("server: ");
            out.push_str(server);
            out.push('\n');
            replaced += 1;
        } else {
            out.push_str(line);
        }
    }
    if replaced == 0 {
        return Err(KubeError::Config("no `server:` in the kubeconfig".into()));
    }
    parse(&out)?;
    Ok(out)
}

/// A node as the framework sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub ready: bool,
    pub unschedulable: bool,
    pub kubelet_version: String,
}

#[derive(Deserialize)]
struct List<T> {
    #[serde(default = "Vec::new")]
    items: Vec<T>,
}

#[derive(Deserialize)]
struct NodeObject {
    metadata: Metadata,
    #[serde(default)]
    spec: NodeSpec,
    #[serde(default)]
    status: NodeStatus,
}

#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    labels: std::collections::BTreeMap<String, String>,
    #[serde(rename = "ownerReferences", default)]
    owners: Vec<Owner>,
}

#[derive(Deserialize)]
struct Owner {
    kind: String,
}

#[derive(Deserialize, Default)]
struct NodeSpec {
    #[serde(default)]
    unschedulable: bool,
}

#[derive(Deserialize, Default)]
struct NodeStatus {
    #[serde(default)]
    conditions: Vec<Condition>,
    #[serde(rename = "nodeInfo", default)]
    node_info: NodeInfo,
}

#[derive(Deserialize, Default)]
struct NodeInfo {
    #[serde(rename = "kubeletVersion", default)]
    kubelet_version: String,
}

#[derive(Deserialize)]
struct Condition {
    #[serde(rename = "type")]
    kind: String,
    status: String,
}

#[derive(Deserialize)]
struct PodObject {
    metadata: Metadata,
}

/// `/version`'s answer.
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct Version {
    #[serde(rename = "gitVersion", default)]
    pub git_version: String,
    #[serde(default)]
    pub major: String,
    #[serde(default)]
    pub minor: String,
}

/// A Kubernetes API client for one kubeconfig.
#[derive(Clone)]
pub struct Kube {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Kube {
    pub fn from_kubeconfig(kubeconfig: &str) -> Result<Kube, KubeError> {
        let (cluster, user) = parse(kubeconfig)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| KubeError::Config(format!("TLS: {e}")))?;
        let mut roots = rustls::RootCertStore::empty();
        // k3s always writes its CA; a cluster behind a public CA is not what this framework runs.
        let ca = cluster.ca.as_deref().ok_or_else(|| KubeError::Config("no certificate-authority-data".into()))?;
        for cert in CertificateDer::pem_slice_iter(&decode("certificate-authority-data", ca)?) {
            let cert = cert.map_err(|e| KubeError::Config(format!("certificate-authority-data: {e}")))?;
            roots.add(cert).map_err(|e| KubeError::Config(format!("certificate-authority-data: {e}")))?;
        }
        if roots.is_empty() {
            return Err(KubeError::Config("certificate-authority-data holds no PEM certificate".into()));
        }
        let builder = builder.with_root_certificates(roots);
        let mut config = match (&user.cert, &user.key) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_slice_iter(&decode("client-certificate-data", cert)?)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| KubeError::Config(format!("client-certificate-data: {e}")))?;
                let key = PrivateKeyDer::from_pem_slice(&decode("client-key-data", key)?)
                    .map_err(|e| KubeError::Config(format!("client-key-data: {e}")))?;
                builder.with_client_auth_cert(chain, key).map_err(|e| KubeError::Config(format!("client key: {e}")))?
            }
            _ => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .http1_only()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .no_proxy()
            .build()
            .map_err(|e| KubeError::Config(format!("HTTP client: {e}")))?;
        Ok(Kube { base: cluster.server.trim_end_matches('/').to_owned(), http, token: user.token })
    }

    pub fn server(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Vec<u8>, KubeError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some((content_type, bytes)) = body {
            req = req.header("content-type", content_type).body(bytes);
        }
        let http_err = |message: String| KubeError::Http { url: url.clone(), message };
        let resp = req.send().await.map_err(|e| http_err(mesos::error::chain(&e)))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| http_err(mesos::error::chain(&e)))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
            return Err(http_err(format!("{status}: {}", text.trim())));
        }
        Ok(bytes.to_vec())
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, KubeError> {
        let bytes = self.send(reqwest::Method::GET, path, None).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| KubeError::Http { url: format!("{}{path}", self.base), message: format!("bad answer: {e}") })
    }

    pub async fn version(&self) -> Result<Version, KubeError> {
        self.get("/version").await
    }

    pub async fn nodes(&self) -> Result<Vec<Node>, KubeError> {
        let list: List<NodeObject> = self.get("/api/v1/nodes").await?;
        Ok(list
            .items
            .into_iter()
            .map(|n| Node {
                ready: n.status.conditions.iter().any(|c| c.kind == "Ready" && c.status == "True"),
                name: n.metadata.name,
                labels: n.metadata.labels,
                unschedulable: n.spec.unschedulable,
                kubelet_version: n.status.node_info.kubelet_version,
            })
            .collect())
    }

    /// Cordon (`true`) or uncordon a node.
    pub async fn set_unschedulable(&self, node: &str, unschedulable: bool) -> Result<(), KubeError> {
        let body = serde_json::json!({"spec": {"unschedulable": unschedulable}}).to_string().into_bytes();
        let path = format!("/api/v1/nodes/{}", segment(node));
        self.send(reqwest::Method::PATCH, &path, Some(("application/merge-patch+json", body))).await.map(drop)
    }

    pub async fn delete_node(&self, node: &str) -> Result<(), KubeError> {
        self.send(reqwest::Method::DELETE, &format!("/api/v1/nodes/{}", segment(node)), None).await.map(drop)
    }

    /// Evicts the pods on a node that something will start elsewhere (not
    /// DaemonSets' own, which would only come back). Returns how many.
    pub async fn evict_pods(&self, node: &str) -> Result<usize, KubeError> {
        let path = format!("/api/v1/pods?fieldSelector=spec.nodeName%3D{}", segment(node));
        let pods: List<PodObject> = self.get(&path).await?;
        let mut evicted = 0;
        for pod in pods.items.iter().filter(|p| !p.metadata.owners.iter().any(|o| o.kind == "DaemonSet")) {
            let m = &pod.metadata;
            let body = serde_json::json!({
                "apiVersion": "policy/v1",
                "kind": "Eviction",
                "metadata": {"name": m.name, "namespace": m.namespace},
            });
            let path = format!("/api/v1/namespaces/{}/pods/{}/eviction", segment(&m.namespace), segment(&m.name));
            self.send(reqwest::Method::POST, &path, Some(("application/json", body.to_string().into_bytes()))).await?;
            evicted += 1;
        }
        Ok(evicted)
    }
}

fn decode(field: &str, b64: &str) -> Result<Vec<u8>, KubeError> {
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| KubeError::Config(format!("{field} is not base64")))
}

/// A name as one URL path segment (node and pod names are DNS names; this
/// keeps anything else from changing the path).
fn segment(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const K3S_YAML: &str = "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: Zm9v\n    server: https://127.0.0.1:6443\n  name: default\ncontexts:\n- context:\n    cluster: default\n    user: default\n  name: default\ncurrent-context: default\nkind: Config\npreferences: {}\nusers:\n- name: default\n  user:\n    client-certificate-data: YmFy\n    client-key-data: YmF6\n";

    #[test]
    fn the_server_is_rewritten_and_nothing_else() {
        let out = rewrite_server(K3S_YAML, "https://node-1:31002").unwrap();
        assert_eq!(server_of(&out).unwrap(), "https://node-1:31002");
        assert_eq!(out.replace("https://node-1:31002", "https://127.0.0.1:6443"), K3S_YAML);
        let err = rewrite_server("apiVersion: v1\n", "https://x").unwrap_err().to_string();
        assert!(err.contains("no `server:`"), "{err}");
    }

    #[test]
    fn a_kubeconfig_without_its_context_is_refused_by_name() {
        let broken = K3S_YAML.replace("current-context: default", "current-context: other").replace(
            "contexts:\n- context:\n    cluster: default\n    user: default\n  name: default\n",
            "contexts:\n- context:\n    cluster: default\n    user: default\n  name: a\n- context:\n    cluster: default\n    user: default\n  name: b\n",
        );
        let err = server_of(&broken).unwrap_err().to_string();
        assert!(err.contains("no context named \"other\""), "{err}");
        let err = Kube::from_kubeconfig(K3S_YAML).err().unwrap().to_string();
        assert!(err.contains("certificate-authority-data"), "the bad CA is named: {err}");
    }

    #[test]
    fn names_cannot_change_the_path() {
        assert_eq!(segment("k3s-demo-agent.abc12"), "k3s-demo-agent.abc12");
        assert_eq!(segment("../x?y"), "..%2Fx%3Fy");
    }
}
