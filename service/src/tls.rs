//! Optional TLS for `serve`: a PEM certificate chain and private key, served
//! with tonic's rustls. Without them the server speaks plaintext HTTP/2, which
//! is fine on loopback or behind a TLS-terminating proxy.

use std::path::PathBuf;

use anyhow::Context;
use tonic::transport::{Identity, ServerTlsConfig};

/// The `--tls-cert` / `--tls-key` pair; only ever both or neither.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key of the leaf certificate.
    pub key: PathBuf,
}

/// Only one of `--tls-cert` and `--tls-key` was given.
#[derive(Debug, thiserror::Error)]
#[error("--tls-cert and --tls-key (XIAOER_TLS_CERT / XIAOER_TLS_KEY, tls_cert / tls_key in the config file) go together: {0} is set but {1} is not")]
pub struct HalfTlsConfig(&'static str, &'static str);

impl TlsFiles {
    /// Pairs the two settings, refusing one without the other.
    pub fn pair(
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
    ) -> Result<Option<Self>, HalfTlsConfig> {
        match (cert, key) {
            (Some(cert), Some(key)) => Ok(Some(Self { cert, key })),
            (None, None) => Ok(None),
            (Some(_), None) => Err(HalfTlsConfig("--tls-cert", "--tls-key")),
            (None, Some(_)) => Err(HalfTlsConfig("--tls-key", "--tls-cert")),
        }
    }

    /// Reads both files into tonic's server TLS settings.
    pub fn server_config(&self) -> anyhow::Result<ServerTlsConfig> {
        let cert = std::fs::read(&self.cert)
            .with_context(|| format!("reading --tls-cert {}", self.cert.display()))?;
        let key = std::fs::read(&self.key)
            .with_context(|| format!("reading --tls-key {}", self.key.display()))?;
        Ok(ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_or_neither() {
        assert_eq!(TlsFiles::pair(None, None).unwrap(), None);
        let both = TlsFiles::pair(Some("c.pem".into()), Some("k.pem".into())).unwrap();
        assert_eq!(both.unwrap().key, PathBuf::from("k.pem"));
        let err = TlsFiles::pair(Some("c.pem".into()), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--tls-cert is set but --tls-key is not"),
            "{err}"
        );
        let err = TlsFiles::pair(None, Some("k.pem".into()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--tls-key is set but --tls-cert is not"),
            "{err}"
        );
    }

    #[test]
    fn missing_files_are_named() {
        let files = TlsFiles {
            cert: "/nonexistent/cert.pem".into(),
            key: "/nonexistent/key.pem".into(),
        };
        let err = format!("{:#}", files.server_config().unwrap_err());
        assert!(err.contains("--tls-cert /nonexistent/cert.pem"), "{err}");
    }
}
