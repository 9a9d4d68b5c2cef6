//! HTTPS for the API, as mesos-compose offers it (SSL_CRT_BASE64 and
//! SSL_KEY_BASE64: base64 of the PEM certificate chain and private key).

use std::sync::Arc;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A TLS certificate and key that cannot serve, saying which part is wrong.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{what}: not base64 ({source})")]
    Base64 { what: &'static str, source: base64::DecodeError },
    #[error("certificate: not PEM ({0})")]
    CertificatePem(#[source] rustls::pki_types::pem::Error),
    #[error("certificate: no CERTIFICATE block in the PEM")]
    NoCertificate,
    #[error("private key: not a PEM private key ({0})")]
    KeyPem(#[source] rustls::pki_types::pem::Error),
    #[error("certificate and key do not fit together: {0}")]
    Mismatch(#[source] rustls::Error),
}

/// A TLS configuration from PEM text; errors say which part is wrong.
pub fn config_from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert_pem).collect::<Result<_, _>>().map_err(TlsError::CertificatePem)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(TlsError::KeyPem)?;
    let mut config =
        ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key).map_err(TlsError::Mismatch)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A TLS configuration from the base64 of the PEM files (mesos-compose's variables).
pub fn config_from_base64(cert_b64: &str, key_b64: &str) -> Result<Arc<ServerConfig>, TlsError> {
    use base64::Engine as _;
    let decode = |what: &'static str, v: &str| {
        base64::engine::general_purpose::STANDARD.decode(v.trim()).map_err(|source| TlsError::Base64 { what, source })
    };
    config_from_pem(&decode("SSL_CRT_BASE64", cert_b64)?, &decode("SSL_KEY_BASE64", key_b64)?)
}

/// Serves `app` over TLS until the listener fails. A failed handshake affects
/// that connection only.
pub async fn serve(listener: TcpListener, app: Router, config: Arc<ServerConfig>) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(config);
    loop {
        let (tcp, peer) = listener.accept().await?;
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let service = TowerToHyperService::new(app);
            if let Err(e) = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}
