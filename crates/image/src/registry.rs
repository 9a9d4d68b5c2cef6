//! A registry v2 client on reqwest: manifests (an index resolved to this
//! machine's platform) and blobs, with anonymous, Basic and bearer-token
//! authentication (Docker Hub's flow). Plain HTTP only to loopback registries
//! and those named insecure, as Docker allows.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};

use crate::auth::{Challenge, Credentials, Login};
use crate::digest::Digest;
use crate::manifest::{self, ManifestError, Parsed, Platform};
use crate::reference::Reference;

/// The largest manifest or config accepted: real ones are a few kilobytes.
const MAX_DOCUMENT: usize = 4 << 20;

#[derive(Clone)]
pub struct ClientConfig {
    /// TLS as the rest of m3s does it (`mesos::transport::TlsConfig::client_config`).
    pub tls: rustls::ClientConfig,
    pub credentials: Credentials,
    /// Registries (host[:port]) reached over plain HTTP besides loopback ones.
    pub insecure_registries: Vec<String>,
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of an answer.
    pub read_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry {registry} cannot be reached: {message}")]
    Unreachable { registry: String, message: String },
    #[error("{reference} was not found in its registry")]
    NotFound { reference: String },
    #[error("registry {registry} refused the {}", if *.had_login { "credentials from the Docker config" } else { "anonymous request (is a login missing from --docker-config?)" })]
    Unauthorized { registry: String, had_login: bool },
    #[error("registry {registry} answered {status} for {what}")]
    Status { registry: String, what: String, status: u16 },
    #[error("{what} of {reference}: digest {got}, expected {want}")]
    DigestMismatch { reference: String, what: String, want: Digest, got: Digest },
    #[error("{reference}: {source}")]
    Manifest { reference: String, source: ManifestError },
    #[error("{reference}: {what} is larger than {MAX_DOCUMENT} bytes")]
    TooLarge { reference: String, what: String },
    #[error("HTTP client: {0}")]
    Client(String),
}

pub struct RegistryClient {
    http: reqwest::Client,
    credentials: Credentials,
    insecure: Vec<String>,
    /// Bearer tokens by registry and scope.
    tokens: Mutex<HashMap<(String, String), String>>,
}

/// A manifest resolved for this machine: the config and layer descriptors.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub digest: Digest,
    pub manifest: manifest::Manifest,
}

impl RegistryClient {
    pub fn new(config: ClientConfig) -> Result<RegistryClient, RegistryError> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(config.tls)
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .no_proxy()
            .user_agent(concat!("m3s/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RegistryError::Client(e.to_string()))?;
        Ok(RegistryClient {
            http,
            credentials: config.credentials,
            insecure: config.insecure_registries,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    fn base(&self, r: &Reference) -> String {
        let scheme = if r.is_loopback() || self.insecure.iter().any(|i| i == &r.registry) { "http" } else { "https" };
        format!("{scheme}://{}/v2/{}", r.api_host(), r.repository)
    }

    fn login(&self, r: &Reference) -> Option<&Login> {
        self.credentials.get(&r.registry)
    }

    /// A GET that answers the registry's authentication challenge once.
    async fn get(
        &self,
        r: &Reference,
        url: &str,
        accept: Option<&str>,
        what: &str,
    ) -> Result<reqwest::Response, RegistryError> {
        let scope = format!("repository:{}:pull", r.repository);
        let key = (r.registry.clone(), scope.clone());
        let cached = self.tokens.lock().expect("token cache").get(&key).cloned();
        let mut auth = cached.map(|t| format!("Bearer {t}"));
        for attempt in 0..2 {
            let mut req = self.http.get(url);
            if let Some(a) = accept {
                req = req.header(ACCEPT, a);
            }
            if let Some(a) = &auth {
                req = req.header(AUTHORIZATION, a);
            }
            let res = req.send().await.map_err(|e| unreachable(r, &e))?;
            match res.status() {
                s if s.is_success() => return Ok(res),
                StatusCode::NOT_FOUND => return Err(RegistryError::NotFound { reference: r.to_string() }),
                StatusCode::UNAUTHORIZED if attempt == 0 => {
                    let challenge =
                        res.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).and_then(Challenge::parse);
                    auth = match challenge {
                        Some(Challenge::Bearer { realm, service, scope: asked }) => {
                            let token =
                                self.token(r, &realm, service.as_deref(), asked.as_deref().unwrap_or(&scope)).await?;
                            self.tokens.lock().expect("token cache").insert(key.clone(), token.clone());
                            Some(format!("Bearer {token}"))
                        }
                        Some(Challenge::Basic) | None => match self.login(r) {
                            Some(l) => Some(basic(l)),
                            None => {
                                return Err(RegistryError::Unauthorized {
                                    registry: r.registry.clone(),
                                    had_login: false,
                                });
                            }
                        },
                    };
                }
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    return Err(RegistryError::Unauthorized {
                        registry: r.registry.clone(),
                        had_login: self.login(r).is_some(),
                    });
                }
                s => {
                    return Err(RegistryError::Status {
                        registry: r.registry.clone(),
                        what: what.to_owned(),
                        status: s.as_u16(),
                    });
                }
            }
        }
        Err(RegistryError::Unauthorized { registry: r.registry.clone(), had_login: self.login(r).is_some() })
    }

    /// Docker's token flow: the realm gives a token for the scope, with the
    /// login when there is one (anonymous otherwise).
    async fn token(
        &self,
        r: &Reference,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<String, RegistryError> {
        let mut params = vec![("scope", scope)];
        params.extend(service.map(|s| ("service", s)));
        let url = reqwest::Url::parse_with_params(realm, &params).map_err(|e| RegistryError::Status {
            registry: r.registry.clone(),
            what: format!("a token (the realm {realm:?} is not a URL: {e})"),
            status: 401,
        })?;
        let mut req = self.http.get(url);
        if let Some(l) = self.login(r) {
            req = req.header(AUTHORIZATION, basic(l));
        }
        let res = req.send().await.map_err(|e| unreachable(r, &e))?;
        match res.status() {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(RegistryError::Unauthorized {
                    registry: r.registry.clone(),
                    had_login: self.login(r).is_some(),
                });
            }
            s => {
                return Err(RegistryError::Status {
                    registry: r.registry.clone(),
                    what: "a token".into(),
                    status: s.as_u16(),
                });
            }
        }
        #[derive(serde::Deserialize)]
        struct Token {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
        }
        let body = limited(r, res, "the token answer").await?;
        let t: Token = serde_json::from_slice(&body).map_err(|_| RegistryError::Status {
            registry: r.registry.clone(),
            what: "a token (not JSON)".into(),
            status: 200,
        })?;
        t.token.or(t.access_token).filter(|t| !t.is_empty()).ok_or_else(|| RegistryError::Status {
            registry: r.registry.clone(),
            what: "a token (none in the answer)".into(),
            status: 200,
        })
    }

    /// The manifest of `r` for `platform`: an index is resolved to its entry.
    pub async fn resolve(&self, r: &Reference, platform: &Platform) -> Result<Resolved, RegistryError> {
        let (digest, parsed) = self.manifest(r, &r.manifest_ref()).await?;
        if let Some(want) = &r.digest
            && &digest != want
        {
            return Err(RegistryError::DigestMismatch {
                reference: r.to_string(),
                what: "the manifest".into(),
                want: want.clone(),
                got: digest,
            });
        }
        match parsed {
            Parsed::Manifest(manifest) => Ok(Resolved { digest, manifest }),
            Parsed::Index(index) => {
                let entry = manifest::select(&index, platform)
                    .map_err(|source| RegistryError::Manifest { reference: r.to_string(), source })?;
                let want = entry.digest.clone();
                let (digest, parsed) = self.manifest(r, &want.to_string()).await?;
                if digest != want {
                    return Err(RegistryError::DigestMismatch {
                        reference: r.to_string(),
                        what: "the platform's manifest".into(),
                        want,
                        got: digest,
                    });
                }
                match parsed {
                    Parsed::Manifest(manifest) => Ok(Resolved { digest, manifest }),
                    Parsed::Index(_) => Err(RegistryError::Manifest {
                        reference: r.to_string(),
                        source: ManifestError::Invalid("an index inside an index".into()),
                    }),
                }
            }
        }
    }

    async fn manifest(&self, r: &Reference, tag_or_digest: &str) -> Result<(Digest, Parsed), RegistryError> {
        let url = format!("{}/manifests/{tag_or_digest}", self.base(r));
        let res = self.get(r, &url, Some(manifest::ACCEPT), "the manifest").await?;
        let content_type = res.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = limited(r, res, "the manifest").await?;
        let digest = Digest::of(&body);
        let parsed = manifest::parse(content_type.as_deref(), &body)
            .map_err(|source| RegistryError::Manifest { reference: r.to_string(), source })?;
        Ok((digest, parsed))
    }

    /// A small blob (the image config), verified.
    pub async fn document(&self, r: &Reference, digest: &Digest, what: &str) -> Result<Bytes, RegistryError> {
        let res = self.blob(r, digest, what).await?;
        let body = limited(r, res, what).await?;
        let got = Digest::of(&body);
        if &got != digest {
            return Err(RegistryError::DigestMismatch {
                reference: r.to_string(),
                what: what.to_owned(),
                want: digest.clone(),
                got,
            });
        }
        Ok(body)
    }

    /// A blob's answer, to be streamed (and verified) by the caller.
    pub async fn blob(&self, r: &Reference, digest: &Digest, what: &str) -> Result<reqwest::Response, RegistryError> {
        let url = format!("{}/blobs/{digest}", self.base(r));
        self.get(r, &url, None, what).await
    }
}

fn basic(l: &Login) -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", l.username, l.password)))
}

fn unreachable(r: &Reference, e: &reqwest::Error) -> RegistryError {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message = format!("{message}: {s}");
        source = s.source();
    }
    RegistryError::Unreachable { registry: r.registry.clone(), message }
}

/// The body, refused past [`MAX_DOCUMENT`] before it is all buffered.
async fn limited(r: &Reference, mut res: reqwest::Response, what: &str) -> Result<Bytes, RegistryError> {
    let too_large = || RegistryError::TooLarge { reference: r.to_string(), what: what.to_owned() };
    if res.content_length().is_some_and(|n| n > MAX_DOCUMENT as u64) {
        return Err(too_large());
    }
    let mut out = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| unreachable(r, &e))? {
        if out.len() + chunk.len() > MAX_DOCUMENT {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}
