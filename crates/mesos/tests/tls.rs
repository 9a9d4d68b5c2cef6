//! TLS to a master: a certificate from an unknown CA is refused, trusted with
//! `ca_file`, and accepted by the explicit insecure switch. The server is a
//! protocol test double (one canned operator answer over rustls); the CA and
//! the server certificate are made by the `openssl` command for each run.

use std::path::Path;
use std::sync::Arc;

use mesos::operator::OperatorClient;
use mesos::transport::{TlsConfig, TransportConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "support/certs.rs"]
mod certs;
use certs::make_certificates;

/// Serves GET_HEALTH answers over TLS until the test ends.
async fn serve(dir: &Path) -> String {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(dir.join("server.pem")).unwrap().collect::<Result<_, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Headers, then the small JSON body (Content-Length).
                while let Ok(n) = tls.read(&mut chunk).await {
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let body = r#"{"type":"GET_HEALTH","get_health":{"healthy":true}}"#;
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    format!("https://{addr}")
}

fn client(master: &str, tls: TlsConfig) -> OperatorClient {
    OperatorClient::new(master, false, TransportConfig { tls, ..TransportConfig::default() }).unwrap()
}

#[tokio::test]
async fn tls_verifies_the_master_trusts_a_given_ca_and_has_an_explicit_insecure_switch() {
    let dir = std::env::temp_dir().join(format!("m3s-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    make_certificates(&dir);
    let master = serve(&dir).await;

    let err = client(&master, TlsConfig::default()).get_health().await.unwrap_err();
    assert!(matches!(err, mesos::error::Error::Transport { .. }), "an unknown CA is refused: {err}");

    let trusted = TlsConfig { ca_file: Some(dir.join("ca.pem")), insecure: false };
    assert!(client(&master, trusted).get_health().await.unwrap().healthy);

    let insecure = TlsConfig { ca_file: None, insecure: true };
    assert!(client(&master, insecure).get_health().await.unwrap().healthy);

    let missing = TlsConfig { ca_file: Some(dir.join("nope.pem")), insecure: false };
    let err = OperatorClient::new(&master, false, TransportConfig { tls: missing, ..TransportConfig::default() })
        .err()
        .unwrap();
    assert!(err.to_string().contains("nope.pem"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
