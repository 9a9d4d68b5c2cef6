//! HTTP plumbing shared by the clients: TLS (rustls with the ring provider),
//! Basic credentials, timeouts, and the two kinds of connection Mesos expects.
//!
//! A subscription holds one connection open for hours, so its client has a
//! connect timeout and TCP keepalive but no request timeout: liveness is the
//! heartbeat watchdog's job. Calls use a separate client (so they never queue
//! behind the stream) with a whole-request timeout.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::error::{Error, Result};

/// HTTP Basic credentials (Mesos principal and secret, or a user and password).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub principal: String,
    secret: String,
}

impl Credentials {
    pub fn new(principal: impl Into<String>, secret: impl Into<String>) -> Self {
        Credentials { principal: principal.into(), secret: secret.into() }
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }
}

/// Compares secrets (passwords, tokens) without an early exit, so the time
/// taken tells nothing about where they differ. Every m3s endpoint that checks
/// a secret uses it.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= (*x ^ b.get(i).copied().unwrap_or(0)) as usize;
    }
    diff == 0
}

/// Never prints the secret.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("principal", &self.principal).field("secret", &"***").finish()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM file of CA certificates to trust in addition to the system's.
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate. For test clusters only: it gives up
    /// all protection against an impostor master.
    pub insecure: bool,
}

impl TlsConfig {
    /// The rustls configuration these settings make (ring, HTTP/1.1): what every
    /// m3s client that speaks TLS uses, registries included.
    pub fn client_config(&self) -> Result<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(format!("TLS: {e}")))?;
        let mut config = if self.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
                .with_no_client_auth()
        } else {
            builder.with_root_certificates(self.root_store()?).with_no_client_auth()
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    fn root_store(&self) -> Result<rustls::RootCertStore> {
        let mut roots = rustls::RootCertStore::empty();
        // A missing or unreadable system store is not fatal: a private CA
        // given with ca_file may be all a cluster needs.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if let Some(path) = &self.ca_file {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| Error::Config(format!("CA file {}: {e}", path.display())))?
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| Error::Config(format!("CA file {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(Error::Config(format!("CA file {}: no PEM certificate in it", path.display())));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| Error::Config(format!("CA file {}: {e}", path.display())))?;
            }
        }
        Ok(roots)
    }
}

#[derive(Debug, Clone)]
pub struct TransportConfig {
    pub credentials: Option<Credentials>,
    pub tls: TlsConfig,
    /// Time allowed to open a TCP (and TLS) connection. Ten seconds covers a
    /// slow network without leaving a dead master unnoticed for long.
    pub connect_timeout: Duration,
    /// Whole-request timeout for calls (never applied to a subscription).
    pub call_timeout: Duration,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            credentials: None,
            tls: TlsConfig::default(),
            connect_timeout: Duration::from_secs(10),
            call_timeout: Duration::from_secs(60),
        }
    }
}

impl TransportConfig {
    /// The client for long-lived streams: no request timeout.
    pub fn stream_client(&self) -> Result<reqwest::Client> {
        self.builder()?.build().map_err(|e| Error::Config(format!("HTTP client: {e}")))
    }

    /// The client for calls: a request timeout on top.
    pub fn call_client(&self) -> Result<reqwest::Client> {
        self.builder()?.timeout(self.call_timeout).build().map_err(|e| Error::Config(format!("HTTP client: {e}")))
    }

    fn builder(&self) -> Result<reqwest::ClientBuilder> {
        Ok(reqwest::Client::builder()
            .tls_backend_preconfigured(self.tls.client_config()?)
            .http1_only()
            .connect_timeout(self.connect_timeout)
            .tcp_keepalive(Duration::from_secs(30))
            // Redirects are Mesos leader changes: the clients follow them
            // themselves, to remember the new leader.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("m3s/", env!("CARGO_PKG_VERSION"))))
    }

    /// Adds Basic credentials to a request, when configured.
    pub(crate) fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.credentials {
            Some(c) => req.basic_auth(&c.principal, Some(c.secret())),
            None => req,
        }
    }
}

/// The explicit insecure switch: checks signatures (so the handshake is sound)
/// but not who signed the certificate.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
