//! TLS for the servers: a certificate chain and its private key, both PEM files; the
//! PostgreSQL endpoint hands the acceptor to pgwire, the dashboard listens through
//! [`TlsListener`].
//!
//! rustls with the ring provider (the one the SCRAM code already uses), named explicitly:
//! the dependency tree enables two providers, and rustls refuses to guess between them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use datafusion_postgres::pgwire::tokio::tokio_rustls::rustls;
use datafusion_postgres::pgwire::tokio::tokio_rustls::server::TlsStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};

pub use datafusion_postgres::pgwire::tokio::TlsAcceptor;

/// Where the certificate and its key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, server certificate first (PEM).
    pub cert: PathBuf,
    /// Its private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC), PEM.
    pub key: PathBuf,
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is missing or holds no certificate.
    #[error(
        "cannot read the TLS certificate {path}: {reason}; give a PEM file with the certificate chain, server certificate first"
    )]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The key file is missing or holds no key.
    #[error(
        "cannot read the TLS private key {path}: {reason}; give a PEM file with one PKCS#8, RSA or EC private key, unencrypted"
    )]
    Key {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the pair (a key of another certificate, an unsupported algorithm).
    #[error("the TLS certificate {cert} and key {key} cannot be used together: {reason}")]
    Unusable {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' reason.
        reason: String,
    },
}

/// A TLS acceptor for the PostgreSQL endpoint (ALPN `postgresql`, for direct TLS clients).
pub fn pg_acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let mut config = server_config(files)?;
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A TLS acceptor for the dashboard and the API (ALPN `http/1.1`).
pub fn http_acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let mut config = server_config(files)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Handshakes under way at most; more wait to be accepted.
const HANDSHAKES: usize = 256;

/// The dashboard's listener over TLS: each handshake runs in a task of its own, with a time
/// limit, so a slow or silent client holds up only itself; finished ones go to the server.
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl TlsListener {
    /// Accepts on `listener`, handshaking with `acceptor`.
    pub fn new(listener: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (done, ready) = mpsc::channel(HANDSHAKES);
        let slots = Arc::new(Semaphore::new(HANDSHAKES));
        tokio::spawn(async move {
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let (socket, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, do not spin.
                        tracing::warn!("https: cannot accept a connection: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if done.is_closed() {
                    return;
                }
                let (acceptor, done) = (acceptor.clone(), done.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(socket))
                        .await
                    {
                        Ok(Ok(stream)) => {
                            let _ = done.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!("https: handshake with {peer} failed: {e}"),
                        Err(_) => tracing::debug!("https: handshake with {peer} timed out"),
                    }
                    drop(slot);
                });
            }
        });
        Ok(TlsListener { local, ready })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accepting task ended: nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// A rustls server configuration for `files` (TLS 1.2 and 1.3, no client certificates).
pub fn server_config(files: &TlsFiles) -> Result<rustls::ServerConfig, TlsError> {
    let certificate = |reason: String| TlsError::Certificate {
        path: files.cert.clone(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| certificate(pem_reason(e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| certificate(pem_reason(e)))?;
    if chain.is_empty() {
        return Err(certificate("it holds no CERTIFICATE block".to_string()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError::Key {
        path: files.key.clone(),
        reason: pem_reason(e),
    })?;
    let unusable = |e: rustls::Error| TlsError::Unusable {
        cert: files.cert.clone(),
        key: files.key.clone(),
        reason: e.to_string(),
    };
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(unusable)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(unusable)
}

fn pem_reason(error: rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match error {
        Error::Io(e) => e.to_string(),
        Error::NoItemsFound => "it holds no key block".to_string(),
        other => format!("it is not valid PEM: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn files(dir: &Path, cert: &str, key: &str) -> TlsFiles {
        let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&c, cert).unwrap();
        std::fs::write(&k, key).unwrap();
        TlsFiles { cert: c, key: k }
    }

    #[test]
    fn missing_and_empty_files_say_which_file_and_why() {
        let dir = tempfile::tempdir().unwrap();
        let missing = TlsFiles {
            cert: dir.path().join("nope.pem"),
            key: dir.path().join("nope.key"),
        };
        let e = server_config(&missing).unwrap_err().to_string();
        assert!(e.contains("certificate") && e.contains("nope.pem"), "{e}");

        let e = server_config(&files(dir.path(), "hello\n", ""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("holds no CERTIFICATE"), "{e}");
    }

    #[test]
    fn a_key_file_without_a_key_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        // A well-formed PEM block: the certificate parses; the key file holds no key.
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let e = server_config(&files(dir.path(), cert, "no key here\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("private key") && e.contains("key.pem"), "{e}");
    }
}
