//! TLS credentials from PEM files: the server's certificate chain and key
//! (and, for mutual TLS, the CA client certificates must be signed by); the
//! client's trusted CA (and, for mutual TLS, its own certificate and key).

use std::path::{Path, PathBuf};

use grpcio::{
    CertificateRequestType, ChannelCredentials, ChannelCredentialsBuilder, ServerCredentials,
    ServerCredentialsBuilder,
};

/// A certificate chain and its private key, PEM files.
#[derive(Clone, Debug)]
pub struct TlsIdentity {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Reads a PEM file, or says in one line why it is not one.
fn read_pem(path: &Path, what: &str, marker: &str) -> Result<Vec<u8>, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("cannot read TLS {what} {}: {e}", path.display()))?;
    if !is_pem(&pem, marker) {
        return Err(format!(
            "TLS {what} {} is not a PEM {what} (no {marker:?} line)",
            path.display()
        ));
    }
    Ok(pem)
}

/// Whether `pem` is PEM text with a `marker` line.
pub(crate) fn is_pem(pem: &[u8], marker: &str) -> bool {
    // grpcio hands PEM to C-core as a C string: no NUL may be inside.
    !pem.contains(&0) && String::from_utf8_lossy(pem).contains(marker)
}

pub(crate) const CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----";
pub(crate) const PRIVATE_KEY: &str = "PRIVATE KEY-----";

/// Credentials serving `identity`; with `client_ca`, only clients presenting
/// a certificate signed by it complete the handshake.
pub(crate) fn server_credentials(
    identity: &TlsIdentity,
    client_ca: Option<&Path>,
) -> Result<ServerCredentials, String> {
    let cert = read_pem(&identity.cert, "certificate", CERTIFICATE)?;
    let key = read_pem(&identity.key, "key", PRIVATE_KEY)?;
    let mut builder = ServerCredentialsBuilder::new().add_cert(cert, key);
    if let Some(ca) = client_ca {
        let ca = read_pem(ca, "client CA certificate", CERTIFICATE)?;
        builder = builder.root_cert(
            ca,
            CertificateRequestType::RequestAndRequireClientCertificateAndVerify,
        );
    }
    Ok(builder.build())
}

/// Credentials trusting `ca`; with `identity`, the client presents it (mutual TLS).
pub(crate) fn client_credentials(
    ca: &Path,
    identity: Option<&TlsIdentity>,
) -> Result<ChannelCredentials, String> {
    let mut builder =
        ChannelCredentialsBuilder::new().root_cert(read_pem(ca, "CA certificate", CERTIFICATE)?);
    if let Some(identity) = identity {
        let cert = read_pem(&identity.cert, "certificate", CERTIFICATE)?;
        let key = read_pem(&identity.key, "key", PRIVATE_KEY)?;
        builder = builder.cert(cert, key);
    }
    Ok(builder.build())
}
