//! A small client of m3s's own v1 API, for the CLI.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;

#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// URL of the m3s API (`m3s up` or `m3s serve`).
    #[arg(long = "api", env = "M3S_API", default_value = "http://127.0.0.1:10000", global = true)]
    pub url: String,
    /// Bearer token for the API (default: AUTH_USERNAME/AUTH_PASSWORD if set, else the token `m3s up` wrote).
    #[arg(long = "api-token", env = "M3S_API_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// PEM file of CA certificates to trust for an https API (besides the system store).
    #[arg(long = "api-ca-file", env = "M3S_API_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    /// Work directory of the local `m3s up`, where it keeps its API token.
    #[arg(long = "work-dir", env = "M3S_WORK_DIR", global = true)]
    pub work_dir: Option<PathBuf>,
}

/// [`ApiArgs`] given before the operation (`m3s k3s --api URL status demo`): not
/// global, for command groups with a `serve` whose flags have those names too.
#[derive(Debug, Args)]
pub struct ApiOptions {
    /// URL of the m3s API (`m3s up`, `m3s serve`, `m3s k3s serve`).
    #[arg(long = "api", env = "M3S_API", default_value = "http://127.0.0.1:10000")]
    pub url: String,
    /// Bearer token for the API (default: AUTH_USERNAME/AUTH_PASSWORD if set, else the token `m3s up` wrote).
    #[arg(long = "api-token", env = "M3S_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// PEM file of CA certificates to trust for an https API.
    #[arg(long = "api-ca-file", env = "M3S_API_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Work directory of the local `m3s up`, where it keeps its API token.
    #[arg(long = "work-dir", env = "M3S_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
}

impl From<ApiOptions> for ApiArgs {
    fn from(a: ApiOptions) -> ApiArgs {
        ApiArgs { url: a.url, token: a.token, ca_file: a.ca_file, work_dir: a.work_dir }
    }
}

pub struct ApiClient {
    base: String,
    client: reqwest::Client,
    auth: Option<String>,
}

impl ApiClient {
    pub fn new(args: &ApiArgs) -> anyhow::Result<ApiClient> {
        let auth = if let Some(t) = &args.token {
            Some(format!("Bearer {t}"))
        } else if let (Ok(u), Ok(p)) = (std::env::var("AUTH_USERNAME"), std::env::var("AUTH_PASSWORD")) {
            use base64::Engine as _;
            Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))))
        } else {
            let dir = args.work_dir.clone().unwrap_or_else(crate::paths::default_work_dir);
            std::fs::read_to_string(crate::paths::token_file(&dir)).ok().map(|t| format!("Bearer {}", t.trim()))
        };
        let mut builder = reqwest::Client::builder().connect_timeout(std::time::Duration::from_secs(5));
        if let Some(path) = &args.ca_file {
            let pem = std::fs::read(path).with_context(|| format!("--api-ca-file {}", path.display()))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("--api-ca-file {}: not PEM", path.display()))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build()?;
        Ok(ApiClient { base: args.url.trim_end_matches('/').to_owned(), client, auth })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.client.request(method, format!("{}{path}", self.base));
        match &self.auth {
            Some(a) => r.header(reqwest::header::AUTHORIZATION, a),
            None => r,
        }
    }

    async fn send(&self, r: reqwest::RequestBuilder) -> anyhow::Result<(reqwest::StatusCode, Value)> {
        let response = r
            .send()
            .await
            .with_context(|| format!("cannot reach the m3s API at {} (is `m3s up` running?)", self.base))?;
        let status = response.status();
        let text = response.text().await?;
        let value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        Ok((status, value))
    }

    async fn expect_ok(&self, r: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let (status, value) = self.send(r).await?;
        if status.is_success() {
            return Ok(value);
        }
        if status == reqwest::StatusCode::UNAUTHORIZED {
            bail!("the m3s API refused the credentials (401): set M3S_API_TOKEN, or AUTH_USERNAME and AUTH_PASSWORD");
        }
        let mut message = match &value {
            Value::Null => {
                "the m3s API there has no such endpoint (an older m3s, or a role it does not run)".to_owned()
            }
            v => v["error"].as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()),
        };
        for d in value["diagnostics"].as_array().into_iter().flatten() {
            message.push_str(&format!(
                "\n  {}:{}:{}: {}: {}",
                d["file"].as_str().unwrap_or(""),
                d["line"],
                d["column"],
                d["path"].as_str().unwrap_or(""),
                d["message"].as_str().unwrap_or("")
            ));
        }
        bail!("{message} ({status})")
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.expect_ok(self.request(reqwest::Method::GET, path)).await
    }

    /// GET, with 404 as `None`.
    pub async fn get_opt(&self, path: &str) -> anyhow::Result<Option<Value>> {
        let (status, value) = self.send(self.request(reqwest::Method::GET, path)).await?;
        match status {
            s if s.is_success() => Ok(Some(value)),
            reqwest::StatusCode::NOT_FOUND => Ok(None),
            s => bail!("{} ({s})", value["error"].as_str().unwrap_or("unexpected answer")),
        }
    }

    pub async fn put_text(&self, path: &str, body: &str) -> anyhow::Result<Value> {
        let r =
            self.request(reqwest::Method::PUT, path).header("content-type", "application/yaml").body(body.to_owned());
        self.expect_ok(r).await
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let r = self
            .request(reqwest::Method::PUT, path)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body)?);
        self.expect_ok(r).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let r = self
            .request(reqwest::Method::POST, path)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body)?);
        self.expect_ok(r).await
    }

    /// GET of a text document (a kubeconfig), errors as for JSON.
    pub async fn get_text(&self, path: &str) -> anyhow::Result<String> {
        match self.expect_ok(self.request(reqwest::Method::GET, path)).await? {
            Value::String(text) => Ok(text),
            other => Ok(other.to_string()),
        }
    }

    pub async fn post(&self, path: &str) -> anyhow::Result<Value> {
        self.expect_ok(self.request(reqwest::Method::POST, path)).await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.expect_ok(self.request(reqwest::Method::DELETE, path)).await
    }

    /// DELETE, with 404 (nothing there) as `false`.
    pub async fn delete_opt(&self, path: &str) -> anyhow::Result<bool> {
        let (status, value) = self.send(self.request(reqwest::Method::DELETE, path)).await?;
        match status {
            s if s.is_success() => Ok(true),
            reqwest::StatusCode::NOT_FOUND => Ok(false),
            s => bail!("{} ({s})", value["error"].as_str().unwrap_or("unexpected answer")),
        }
    }
}

/// A JSON object of text values as `k=v` pairs joined by `sep` (labels, parameters).
pub fn pairs(object: &Value, sep: &str) -> String {
    let pairs: Vec<String> =
        object.as_object().into_iter().flatten().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect();
    pairs.join(sep)
}
