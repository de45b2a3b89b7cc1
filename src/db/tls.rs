//! TLS to an instance as libpq's `sslmode=verify-full` does it: only the
//! home's authority is trusted (not the system's), and the certificate must
//! name the address connected to. An instance made before TLS gets none.

use crate::error::{Error, Result};
use crate::registry::Instance;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;
use postgres::config::SslMode;
use postgres_openssl::MakeTlsConnector;
use std::path::Path;

/// What the pools and the CLI connect with.
pub type Connector = MakeTlsConnector;

/// A connector that trusts the authority in `ca` alone.
pub fn connector(ca: &Path) -> Result<Connector> {
    let bad = |e: openssl::error::ErrorStack| {
        Error::Failed(format!(
            "the certificate authority {} cannot be used: {e}",
            ca.display()
        ))
    };
    let pem = crate::safe_fs::read_to_string(ca)
        .map_err(|e| Error::io(format!("reading {}", ca.display()), e))?;
    let mut store = X509StoreBuilder::new().map_err(bad)?;
    for cert in X509::stack_from_pem(pem.as_bytes()).map_err(bad)? {
        store.add_cert(cert).map_err(bad)?;
    }
    let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(bad)?;
    b.set_cert_store(store.build());
    b.set_verify(SslVerifyMode::PEER);
    b.set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(bad)?;
    Ok(MakeTlsConnector::new(b.build()))
}

/// The connector for `inst`, and `cfg` made to require TLS where the
/// instance has it (and not try it where it has none).
pub fn for_instance(cfg: &mut postgres::Config, inst: &Instance, ca: &Path) -> Result<Connector> {
    if inst.tls {
        cfg.ssl_mode(SslMode::Require);
        connector(ca)
    } else {
        cfg.ssl_mode(SslMode::Disable);
        // Never used for a handshake: any valid connector will do.
        let b = SslConnector::builder(SslMethod::tls_client())
            .map_err(|e| Error::Failed(format!("TLS: {e}")))?;
        Ok(MakeTlsConnector::new(b.build()))
    }
}

/// For a cancel request alone: it carries a session's cancel key to the
/// address that session verified, and authenticates nothing, so the
/// certificate is not checked again (a cancel must not fail on a file).
pub fn for_cancel() -> Result<Connector> {
    let mut b = SslConnector::builder(SslMethod::tls_client())
        .map_err(|e| Error::Failed(format!("TLS: {e}")))?;
    b.set_verify(SslVerifyMode::NONE);
    let mut c = MakeTlsConnector::new(b.build());
    c.set_callback(|cfg, _| {
        cfg.set_verify_hostname(false);
        Ok(())
    });
    Ok(c)
}
