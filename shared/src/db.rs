//! Postgres: one connection per process, opened on first use and reopened
//! if it drops; schema migrations embedded in the binary.

use std::sync::Arc;

use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};

#[derive(Debug, thiserror::Error)]
#[error("Postgres: {0}")]
pub struct DbError(pub String);

impl DbError {
    /// The SQLSTATE and the server's words, which `tokio_postgres::Error`'s
    /// own Display leaves out ("db error").
    pub fn from_ref(e: &tokio_postgres::Error) -> Self {
        Self(match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        })
    }
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::from_ref(&e)
    }
}

pub struct Db {
    url: String,
    client: Mutex<Option<Arc<Client>>>,
}

impl Db {
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), client: Mutex::new(None) }
    }

    pub async fn client(&self) -> Result<Arc<Client>, DbError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        let client = Arc::new(connect(&self.url).await?);
        *slot = Some(client.clone());
        Ok(client)
    }
}

pub async fn connect(url: &str) -> Result<Client, DbError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "Postgres connection closed");
        }
    });
    Ok(client)
}

/// Migrations in order; each runs once, in its own transaction.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("../../migrations/0001_init.sql")),
    ("0002_deleted_files", include_str!("../../migrations/0002_deleted_files.sql")),
    ("0003_checksums", include_str!("../../migrations/0003_checksums.sql")),
    ("0004_media_facts", include_str!("../../migrations/0004_media_facts.sql")),
    ("0005_signin_failures", include_str!("../../migrations/0005_signin_failures.sql")),
    ("0006_object_versions", include_str!("../../migrations/0006_object_versions.sql")),
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
        let done = client
            .query_opt("SELECT 1 FROM schema_migrations WHERE version = $1", &[version])
            .await?
            .is_some();
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
