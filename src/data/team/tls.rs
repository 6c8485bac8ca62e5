//! TLS to the team server, as libpq reads `sslmode`: `disable` never, `prefer` (the default)
//! when the server offers it, `require` always (encrypted, the certificate not checked, as
//! libpq does without a root certificate), `verify-ca` / `verify-full` always and the
//! certificate checked against a root certificate (`sslrootcert=FILE`, else PGSSLROOTCERT,
//! else ~/.postgresql/root.crt) and the host name. tokio-postgres itself knows only the first
//! three, so the two verifying modes and `sslrootcert` are read here and taken out of the line.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{Result, TeamError};

/// What the connection line asked of TLS beyond what tokio-postgres reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsOptions {
    /// verify-ca or verify-full: check the server's certificate and name.
    pub verify: bool,
    pub root_cert: Option<PathBuf>,
}

/// Takes `sslmode=verify-*` (becoming `require`) and `sslrootcert` out of a connection line,
/// in either form (`postgresql://…?sslmode=…` or `key=value` pairs).
pub fn split_options(line: &str) -> (String, TlsOptions) {
    let mut options = TlsOptions::default();
    let mut take = |key: &str, value: &str| -> Option<String> {
        match (key, value) {
            ("sslmode", "verify-ca" | "verify-full") => {
                options.verify = true;
                Some("require".into())
            }
            ("sslrootcert", path) => {
                options.root_cert = Some(PathBuf::from(path));
                None
            }
            _ => Some(value.to_string()),
        }
    };
    let trimmed = line.trim();
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        let Some((base, query)) = trimmed.split_once('?') else {
            return (trimmed.to_string(), options);
        };
        let kept: Vec<String> = query
            .split('&')
            .filter_map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                take(k, v).map(|v| format!("{k}={v}"))
            })
            .collect();
        let line = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return (line, options);
    }
    let kept: Vec<String> = pairs(trimmed)
        .into_iter()
        .filter_map(|(k, v)| {
            take(&k, &v).map(|v| format!("{k}='{}'", v.replace('\\', "\\\\").replace('\'', "\\'")))
        })
        .collect();
    (kept.join(" "), options)
}

/// libpq's `key=value` pairs: values plain or in single quotes with backslash escapes.
fn pairs(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|&c| c != '=' && !c.is_whitespace())).collect();
        if key.is_empty() {
            return out;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == '=') {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '\'' => break,
                    c => value.push(c),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace())));
        }
        out.push((key, value));
    }
}

/// The TLS connector for `options`.
pub fn connector(options: &TlsOptions) -> Result<MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TeamError::BadInput(format!("TLS: {e}")))?;
    let config = if options.verify {
        let path = options
            .root_cert
            .clone()
            .or_else(|| std::env::var_os("PGSSLROOTCERT").map(PathBuf::from))
            .or_else(|| dirs::home_dir().map(|h| h.join(".postgresql").join("root.crt")))
            .filter(|p| p.is_file())
            .ok_or_else(|| {
                TeamError::BadInput(
                    "sslmode=verify-full needs the server's root certificate: sslrootcert=FILE, \
                     PGSSLROOTCERT or ~/.postgresql/root.crt"
                        .into(),
                )
            })?;
        let mut roots = RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(&path)
            .and_then(|i| i.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| TeamError::BadInput(format!("{}: {e}", path.display())))?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(TeamError::BadInput(format!(
                "{}: no certificate in it",
                path.display()
            )));
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth()
    };
    Ok(MakeRustlsConnect::new(config))
}

/// `require` and `prefer`: the channel is encrypted and the server's signature checked, but not
/// who issued its certificate (libpq's behaviour without a root certificate).
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
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
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifying_modes_and_the_root_certificate_are_taken_out_of_either_form() {
        let (line, o) = split_options(
            "host=db.example port=5432 sslmode=verify-full sslrootcert='/etc/my ca.pem'",
        );
        assert_eq!(line, "host='db.example' port='5432' sslmode='require'");
        assert_eq!(
            o,
            TlsOptions {
                verify: true,
                root_cert: Some("/etc/my ca.pem".into())
            }
        );
        let (line, o) = split_options(
            "postgresql://a@db/x?sslmode=verify-ca&sslrootcert=/ca.pem&application_name=t",
        );
        assert_eq!(
            line,
            "postgresql://a@db/x?sslmode=require&application_name=t"
        );
        assert!(o.verify);
        let (line, o) = split_options("host=/tmp sslmode=disable");
        assert_eq!(line, "host='/tmp' sslmode='disable'");
        assert_eq!(o, TlsOptions::default());
        // A quoted value keeps its spaces and quotes.
        let (line, _) = split_options(r"password='it\'s a secret' user=ann");
        assert_eq!(line, r"password='it\'s a secret' user='ann'");
    }
}
