//! Postgres: one connection per process, opened on first use and reopened
//! if it drops; schema migrations embedded in the binary. TLS as libpq's
//! `sslmode` asks (see [`DbConfig`]), on rustls.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

#[derive(Debug, thiserror::Error)]
#[error("Postgres: {0}")]
pub struct DbError(pub String);

impl DbError {
    /// The SQLSTATE and the server's words, which `tokio_postgres::Error`'s
    /// own Display leaves out ("db error").
    pub fn from_ref(e: &tokio_postgres::Error) -> Self {
        Self(match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => match std::error::Error::source(e) {
                Some(cause) => format!("{e}: {cause}"),
                None => e.to_string(),
            },
        })
    }
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::from_ref(&e)
    }
}

/// The certificate authorities RDS and Aurora servers chain to, and the
/// Amazon Trust Services roots RDS Proxy's certificates chain to: trusted
/// when `sslmode` verifies and no `sslrootcert` names others.
const RDS_CA_BUNDLE: &[u8] = include_bytes!("../certs/rds-ca-bundle.pem");
const AWS_ROOTS: &[u8] = include_bytes!("../certs/aws-roots.pem");

/// How long a connection attempt may take when the URL does not say
/// (`connect_timeout`): an unreachable server must fail fast, so persist's
/// backoff applies instead of the function timing out.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// libpq's `sslmode` values, as the `sslmode` of `DATABASE_URL` (or
/// `PGSSLMODE`) names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plaintext.
    Disable,
    /// TLS when the server offers it, unverified (libpq's default).
    Prefer,
    /// TLS or no connection; the certificate is not verified.
    Require,
    /// TLS, the certificate chaining to a trusted CA.
    VerifyCa,
    /// TLS, the certificate chaining to a trusted CA and naming the host.
    VerifyFull,
}

impl SslMode {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }

    /// tokio-postgres knows the first three; verifying is our connector's part.
    fn for_tokio_postgres(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require | Self::VerifyCa | Self::VerifyFull => "require",
        }
    }
}

/// Where and how to connect: the URL tokio-postgres reads (with `sslmode`
/// narrowed to what it knows and `sslrootcert` taken out) and the TLS
/// set-up the mode asks for. Parsed once, at start-up.
#[derive(Clone)]
pub struct DbConfig {
    config: tokio_postgres::Config,
    mode: SslMode,
    tls: Option<Arc<ClientConfig>>,
}

impl std::fmt::Debug for DbConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbConfig").field("hosts", &self.config.get_hosts()).field("mode", &self.mode).finish()
    }
}

impl DbConfig {
    /// Reads a `postgres://` URL. `sslmode` and `sslrootcert` in it win over
    /// `default_mode` and `default_root_cert` (PGSSLMODE and PGSSLROOTCERT,
    /// as libpq reads them); without either the mode is `prefer`.
    pub fn parse(url: &str, default_mode: Option<&str>, default_root_cert: Option<&str>) -> Result<Self, String> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err("must be a postgres:// or postgresql:// URL".into());
        }
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let (mut mode, mut root_cert) = (default_mode.map(String::from), default_root_cert.map(String::from));
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy().into_owned();
            match key {
                "sslmode" => mode = Some(value),
                "sslrootcert" => root_cert = Some(value),
                _ => kept.push(pair),
            }
        }
        let mode = match mode.as_deref() {
            None => SslMode::Prefer,
            Some(text) => SslMode::parse(text)
                .ok_or_else(|| format!("sslmode '{text}' is not one of disable, prefer, require, verify-ca, verify-full"))?,
        };
        // As libpq: `require` with a root certificate named verifies the chain.
        let mode = if mode == SslMode::Require && root_cert.is_some() { SslMode::VerifyCa } else { mode };
        kept.push(match mode.for_tokio_postgres() {
            "disable" => "sslmode=disable",
            "prefer" => "sslmode=prefer",
            _ => "sslmode=require",
        });
        let rebuilt = format!("{base}?{}", kept.join("&"));
        let mut config = rebuilt.parse::<tokio_postgres::Config>().map_err(|e| e.to_string())?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let tls = match mode {
            SslMode::Disable => None,
            _ => Some(Arc::new(client_config(mode, root_cert.as_deref())?)),
        };
        Ok(Self { config, mode, tls })
    }

    pub fn mode(&self) -> SslMode {
        self.mode
    }
}

/// The roots to verify against: the `sslrootcert` file, else the RDS CAs.
fn roots(root_cert: Option<&str>) -> Result<RootCertStore, String> {
    let pem = match root_cert {
        Some(path) => std::fs::read(path).map_err(|e| format!("sslrootcert {path} cannot be read: {e}"))?,
        None => [RDS_CA_BUNDLE, AWS_ROOTS].concat(),
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("sslrootcert {}: {e}", root_cert.unwrap_or("(built in)")))?;
        roots.add(cert).map_err(|e| format!("sslrootcert {}: {e}", root_cert.unwrap_or("(built in)")))?;
    }
    if roots.is_empty() {
        return Err(format!("sslrootcert {} holds no PEM certificate", root_cert.unwrap_or("(built in)")));
    }
    Ok(roots)
}

fn client_config(mode: SslMode, root_cert: Option<&str>) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().map_err(|e| e.to_string())?;
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => Arc::new(Unverified(provider)),
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots(root_cert)?), provider).build().map_err(|e| e.to_string())?;
            Arc::new(Verified { webpki, check_name: mode == SslMode::VerifyFull })
        }
    };
    Ok(builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth())
}

/// `prefer` and `require`, as libpq: encrypted, the certificate unchecked
/// (the handshake's signatures still are).
#[derive(Debug)]
struct Unverified(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-full` (chain and host name) and `verify-ca` (chain only).
#[derive(Debug)]
struct Verified {
    webpki: Arc<WebPkiServerVerifier>,
    check_name: bool,
}

impl ServerCertVerifier for Verified {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.webpki.verify_server_cert(end_entity, intermediates, name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }))
                if !self.check_name =>
            {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

pub struct Db {
    config: DbConfig,
    client: Mutex<Option<Arc<Client>>>,
}

impl Db {
    pub fn new(config: DbConfig) -> Self {
        Self { config, client: Mutex::new(None) }
    }

    pub async fn client(&self) -> Result<Arc<Client>, DbError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        let client = Arc::new(connect_with(&self.config).await?);
        *slot = Some(client.clone());
        Ok(client)
    }
}

/// Connects by URL alone (tools and tests): `sslmode` as the URL says.
pub async fn connect(url: &str) -> Result<Client, DbError> {
    connect_with(&DbConfig::parse(url, None, None).map_err(DbError)?).await
}

pub async fn connect_with(config: &DbConfig) -> Result<Client, DbError> {
    let client = match &config.tls {
        None => {
            let (client, connection) = config.config.connect(NoTls).await?;
            tokio::spawn(drive(connection));
            client
        }
        Some(tls) => {
            let (client, connection) = config.config.connect(MakeRustlsConnect::new((**tls).clone())).await?;
            tokio::spawn(drive(connection));
            client
        }
    };
    Ok(client)
}

async fn drive<F: std::future::Future<Output = Result<(), tokio_postgres::Error>>>(connection: F) {
    if let Err(e) = connection.await {
        tracing::warn!(error = %e, "Postgres connection closed");
    }
}

/// Migrations in order; each runs once, in its own transaction.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("../../migrations/0001_init.sql")),
    ("0002_deleted_files", include_str!("../../migrations/0002_deleted_files.sql")),
    ("0003_checksums", include_str!("../../migrations/0003_checksums.sql")),
    ("0004_media_facts", include_str!("../../migrations/0004_media_facts.sql")),
    ("0005_signin_failures", include_str!("../../migrations/0005_signin_failures.sql")),
    ("0006_object_versions", include_str!("../../migrations/0006_object_versions.sql")),
    ("0007_signin_failures_in_dynamodb", include_str!("../../migrations/0007_signin_failures_in_dynamodb.sql")),
];

/// Applies pending migrations; safe to run concurrently (advisory lock) and
/// repeatedly. Answers the versions it applied.
pub async fn migrate(client: &mut Client) -> Result<Vec<String>, DbError> {
    client.batch_execute("SELECT pg_advisory_lock(727274)").await?;
    let result = apply_pending(client).await;
    client.batch_execute("SELECT pg_advisory_unlock(727274)").await?;
    result
}

async fn apply_pending(client: &mut Client) -> Result<Vec<String>, DbError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
    let mut applied = Vec::new();
    for (version, sql) in MIGRATIONS {
        let done = client.query_opt("SELECT 1 FROM schema_migrations WHERE version = $1", &[version]).await?.is_some();
        if done {
            continue;
        }
        let tx = client.transaction().await?;
        tx.batch_execute(sql).await?;
        tx.execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[version]).await?;
        tx.commit().await?;
        applied.push(version.to_string());
    }
    Ok(applied)
}
