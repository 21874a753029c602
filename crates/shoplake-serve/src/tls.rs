//! TLS for the servers: a certificate chain and its private key, both PEM files.
//!
//! rustls with the ring provider (the one the SCRAM code already uses), named explicitly:
//! the dependency tree enables two providers, and rustls refuses to guess between them.

use std::path::PathBuf;
use std::sync::Arc;

use datafusion_postgres::pgwire::tokio::tokio_rustls::rustls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

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
    fn a_certificate_without_its_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        // A syntactically valid PEM block that is no certificate: rustls must refuse the pair.
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let e = server_config(&files(dir.path(), cert, "no key here\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("private key") && e.contains("key.pem"), "{e}");
    }
}
