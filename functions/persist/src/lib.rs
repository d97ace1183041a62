//! SQS batches of verdicts → Postgres. A batch is one idempotent statement
//! (the file rows and their chunk rows together); a message that fails is
//! reported in `batchItemFailures` so the rest of the batch stands.
//!
//! Nothing is burned through the queue's receives by an outage: a message
//! that failed for a passing reason (Postgres or DynamoDB unreachable) is
//! hidden for a doubling, capped delay (`ChangeMessageVisibility`) before
//! its next delivery, while one that can never succeed (no JSON verdict,
//! refused by the schema) goes to the dead-letter queue at once. Each stored
//! verdict is noted on its session, so the sweeper re-sends only the ones
//! Postgres does not hold.

use std::future::Future;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{Error, LambdaEvent};
use sluice_shared::adapters::SqsQueues;
use sluice_shared::aws::Clients;
use sluice_shared::config::{self, ConfigError, Env};
use sluice_shared::db::Db;
use sluice_shared::domain::redelivery::backoff_secs;
use sluice_shared::domain::{FileStatus, UploadMode};
use sluice_shared::messages::VerdictMessage;
use sluice_shared::ports::{Queues, Sessions};
use sluice_shared::sessions::{RecordedPart, SessionStore};
use uuid::Uuid;

/// The function's dependencies: its ports (AWS adapters and Postgres by
/// default, fakes in unit tests) and the settings.
pub struct Persist<S = SessionStore, Q = SqsQueues, R = PostgresVerdicts> {
    pub rows: R,
    pub sessions: S,
    pub queues: Q,
    pub settings: PersistSettings,
}

/// Where verdicts are kept for the API to read.
pub trait VerdictRows: Send + Sync {
    /// Writes the verdicts and their parts all together, or none of them.
    fn write(&self, batch: &[&ReadyVerdict]) -> impl Future<Output = Result<(), Failure>> + Send;
}

/// The `files` and `chunks` tables in Postgres.
pub struct PostgresVerdicts {
    pub db: Db,
}

impl VerdictRows for PostgresVerdicts {
    async fn write(&self, batch: &[&ReadyVerdict]) -> Result<(), Failure> {
        self.upsert(batch).await.map_err(Failure::of_write)
    }
}

pub struct PersistSettings {
    pub queue_url: String,
    pub dead_letter_queue_url: String,
    /// The first redelivery delay after a passing failure, doubled each time.
    pub retry_base_secs: u64,
    pub retry_max_secs: u64,
}

impl PersistSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let settings = Self {
            queue_url: env.required("VERDICT_QUEUE_URL")?,
            dead_letter_queue_url: env.required("VERDICT_DLQ_URL")?,
            retry_base_secs: env.parsed("PERSIST_RETRY_BASE_SECONDS", 20)?,
            retry_max_secs: env.parsed("PERSIST_RETRY_MAX_SECONDS", 3600)?,
        };
        if settings.retry_base_secs == 0 {
            return Err(env.invalid("PERSIST_RETRY_BASE_SECONDS", "must be at least 1"));
        }
        if !(settings.retry_base_secs..=43_200).contains(&settings.retry_max_secs) {
            return Err(
                env.invalid("PERSIST_RETRY_MAX_SECONDS", "must be at least PERSIST_RETRY_BASE_SECONDS and at most 43200 (SQS's limit)")
            );
        }
        Ok(settings)
    }
}

impl Persist {
    pub fn from_env(env: &Env, clients: &Clients) -> Result<Self, ConfigError> {
        Ok(Self {
            rows: PostgresVerdicts { db: Db::new(config::database_url(env)?) },
            sessions: SessionStore::new(clients.dynamodb(), env.required("SESSIONS_TABLE")?),
            queues: SqsQueues::new(clients.sqs()),
            settings: PersistSettings::from_env(env)?,
        })
    }
}

/// Why a message was not persisted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Something it depends on is unavailable: retried later.
    Passing(String),
    /// It can never be written as it is: kept in the dead-letter queue.
    Permanent(String),
}

impl Failure {
    /// Postgres refusing the data itself (SQLSTATE classes 22 and 23) is
    /// permanent; any other error (connection, timeout, server) is passing.
    fn of_write(err: Error) -> Self {
        let Some(postgres) = err.downcast_ref::<tokio_postgres::Error>() else {
            return Self::Passing(err.to_string());
        };
        let why = sluice_shared::db::DbError::from_ref(postgres).to_string();
        match postgres.code().map(|code| code.code()) {
            Some(code) if code.starts_with("22") || code.starts_with("23") => Self::Permanent(why),
            _ => Self::Passing(why),
        }
    }
}

/// A batch is written in one statement, so it costs one commit rather than
/// ten. The part lists are read first, concurrently. If the statement fails,
/// each message is written on its own to find the ones at fault; only those
/// are reported, and the rest of the batch stands.
pub async fn handle<S: Sessions, Q: Queues, R: VerdictRows>(
    deps: &Persist<S, Q, R>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    let records = &event.payload.records;
    let read = futures::future::join_all(records.iter().map(|message| read_message(&deps.sessions, message))).await;
    let mut failures: Vec<Option<Failure>> = records.iter().map(|_| None).collect();
    let mut ready = Vec::new();
    for (i, outcome) in read.into_iter().enumerate() {
        match outcome {
            Ok(verdict) => ready.push((i, verdict)),
            Err(failure) => failures[i] = Some(failure),
        }
    }
    let batch: Vec<&ReadyVerdict> = ready.iter().map(|(_, verdict)| verdict).collect();
    if let Err(err) = deps.rows.write(&batch).await {
        let each = if ready.len() == 1 {
            vec![Err(err)]
        } else {
            tracing::info!(?err, "the batch as one statement failed; writing its messages one by one");
            futures::future::join_all(batch.iter().map(|verdict| deps.rows.write(std::slice::from_ref(verdict)))).await
        };
        for ((i, _), outcome) in ready.iter().zip(each) {
            if let Err(failure) = outcome {
                failures[*i] = Some(failure);
            }
        }
    }
    // Noted on the sessions only once Postgres holds them. A note that
    // fails (the session table unreachable) fails nothing: the verdict is
    // stored, and the worst that follows is one harmless re-send by the
    // sweeper, whose write repeats and notes it then.
    let written: Vec<_> = ready.iter().filter(|(i, _)| failures[*i].is_none()).map(|(_, ready)| ready.verdict.file_id).collect();
    if let Err(err) = deps.sessions.mark_verdicts_stored(&written).await {
        tracing::warn!(files = ?written, %err, "verdicts stored but not noted on their sessions; the sweeper may send them once more");
    }

    let mut response = SqsBatchResponse::default();
    for (message, failure) in records.iter().zip(failures) {
        let Some(failure) = failure else { continue };
        if !settle_failure(deps, message, failure).await {
            let mut item = BatchItemFailure::default();
            item.item_identifier = message.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(item);
        }
    }
    Ok(response)
}

/// Answers whether the message is dealt with (moved to the dead-letter
/// queue); otherwise it stays on the queue, hidden for its backoff.
async fn settle_failure<S: Sessions, Q: Queues, R>(deps: &Persist<S, Q, R>, message: &SqsMessage, failure: Failure) -> bool {
    let id = message.message_id.as_deref().unwrap_or_default();
    match failure {
        Failure::Permanent(why) => {
            tracing::error!(message_id = id, why, "message can never be persisted; moved to the dead-letter queue");
            let moved = deps.queues.send(&deps.settings.dead_letter_queue_url, message.body.as_deref().unwrap_or_default()).await;
            match moved {
                Ok(_) => {
                    // So the sweeper does not keep re-sending it into the DLQ.
                    let file_id = message.body.as_deref().and_then(|b| serde_json::from_str::<VerdictMessage>(b).ok()).map(|v| v.file_id);
                    if let Some(file_id) = file_id
                        && let Err(err) = deps.sessions.mark_verdict_dead_lettered(file_id).await
                    {
                        tracing::warn!(%file_id, %err, "dead-lettered verdict not noted; the sweeper may re-send it");
                    }
                    true
                }
                Err(e) => {
                    tracing::warn!(message_id = id, error = %e, "not moved; it comes back and is tried again");
                    false
                }
            }
        }
        Failure::Passing(why) => {
            let receives = message.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or(1);
            let delay = backoff_secs(receives, deps.settings.retry_base_secs, deps.settings.retry_max_secs);
            tracing::warn!(message_id = id, why, receives, delay, "message not persisted; retried after the delay");
            if let Some(handle) = &message.receipt_handle
                && let Err(e) = deps.queues.delay(&deps.settings.queue_url, handle, delay).await
            {
                tracing::warn!(message_id = id, error = %e, "backoff not set; the queue's visibility timeout applies");
            }
            false
        }
    }
}

/// Inserts or repeats the verdicts. A final status is never replaced by a
/// different one (FileStatus::can_become), so a stale redelivery changes
/// nothing, not even its chunk rows.
const UPSERT: &str = "
WITH file AS (
    INSERT INTO files (id, owner_id, file_name, bucket, s3_key, size, etag, declared_type,
                       detected_type, kind, status, reason, sha256, width, height, duration_ms, version_id)
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[],
                         $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
                         $20::int[], $21::int[], $22::bigint[], $23::text[])
    ON CONFLICT (id) DO UPDATE SET
        size = EXCLUDED.size, etag = EXCLUDED.etag, detected_type = EXCLUDED.detected_type,
        kind = EXCLUDED.kind, status = EXCLUDED.status, reason = EXCLUDED.reason,
        sha256 = EXCLUDED.sha256, width = EXCLUDED.width, height = EXCLUDED.height,
        duration_ms = EXCLUDED.duration_ms, version_id = EXCLUDED.version_id, updated_at = now()
    WHERE files.owner_id = EXCLUDED.owner_id
      AND (files.status = 'UPLOADING' OR files.status = EXCLUDED.status)
    RETURNING id
)
INSERT INTO chunks (file_id, part_number, size, etag, checksum, status)
SELECT part.file_id, part.number, part.size, part.etag, part.checksum, part.status
FROM UNNEST($14::uuid[], $15::int[], $16::bigint[], $17::text[], $18::text[], $19::text[])
         AS part(file_id, number, size, etag, checksum, status)
JOIN file ON file.id = part.file_id
ON CONFLICT (file_id, part_number) DO UPDATE SET
    size = EXCLUDED.size, etag = EXCLUDED.etag, checksum = EXCLUDED.checksum, status = EXCLUDED.status";

/// A verdict and the parts its upload recorded.
#[derive(Debug, Clone)]
pub struct ReadyVerdict {
    pub verdict: VerdictMessage,
    pub parts: Vec<RecordedPart>,
}

async fn read_message(sessions: &impl Sessions, message: &SqsMessage) -> Result<ReadyVerdict, Failure> {
    let body = message.body.as_deref().ok_or_else(|| Failure::Permanent("the message has no body".into()))?;
    let verdict: VerdictMessage = serde_json::from_str(body).map_err(|e| Failure::Permanent(format!("the body is not a verdict: {e}")))?;
    let parts = match verdict.mode {
        Some(UploadMode::Single) => Vec::new(),
        _ => sessions.parts(verdict.file_id).await.map_err(|e| Failure::Passing(e.to_string()))?,
    };
    Ok(ReadyVerdict { verdict, parts })
}

/// The UPSERT's columns, one array per column.
#[derive(Default)]
struct Columns<'a> {
    ids: Vec<Uuid>,
    owners: Vec<Uuid>,
    names: Vec<&'a str>,
    buckets: Vec<&'a str>,
    keys: Vec<&'a str>,
    sizes: Vec<i64>,
    etags: Vec<&'a str>,
    declared: Vec<&'a str>,
    detected: Vec<Option<&'a str>>,
    kinds: Vec<Option<&'static str>>,
    statuses: Vec<&'static str>,
    reasons: Vec<Option<&'a str>>,
    sha256s: Vec<Option<&'a str>>,
    part_files: Vec<Uuid>,
    part_numbers: Vec<i32>,
    part_sizes: Vec<i64>,
    part_etags: Vec<&'a str>,
    part_checksums: Vec<Option<&'a str>>,
    part_statuses: Vec<&'static str>,
    widths: Vec<Option<i32>>,
    heights: Vec<Option<i32>>,
    durations: Vec<Option<i64>>,
    versions: Vec<Option<&'a str>>,
}

/// A stated size or duration as its column takes it: positive and in range,
/// or NULL.
fn column<T: TryFrom<u64>>(value: Option<impl Into<u64>>) -> Option<T> {
    value.map(Into::into).filter(|&v| v > 0).and_then(|v| T::try_from(v).ok())
}

impl<'a> Columns<'a> {
    fn push(&mut self, ReadyVerdict { verdict: v, parts }: &'a ReadyVerdict) {
        self.ids.push(v.file_id);
        self.owners.push(v.owner_id);
        self.names.push(&v.file_name);
        self.buckets.push(&v.bucket);
        self.keys.push(&v.key);
        self.sizes.push(v.size as i64);
        self.etags.push(&v.etag);
        self.declared.push(&v.declared_type);
        self.detected.push(v.detected_type.as_deref());
        self.kinds.push(v.kind.map(|k| k.as_str()));
        self.statuses.push(v.status.as_str());
        self.reasons.push(v.reason.as_deref());
        self.sha256s.push(v.sha256.as_deref());
        self.widths.push(column(v.width));
        self.heights.push(column(v.height));
        self.durations.push(v.duration_ms.and_then(|d| i64::try_from(d).ok()));
        self.versions.push(v.version_id.as_deref());
        let chunk_status = match v.status {
            FileStatus::Uploaded => "COMPLETED",
            _ => "FAILED",
        };
        for part in parts {
            self.part_files.push(v.file_id);
            self.part_numbers.push(part.part_number as i32);
            self.part_sizes.push(part.size as i64);
            self.part_etags.push(&part.etag);
            self.part_checksums.push(part.checksum_sha256.as_deref());
            self.part_statuses.push(chunk_status);
        }
    }
}

impl PostgresVerdicts {
    async fn upsert(&self, verdicts: &[&ReadyVerdict]) -> Result<(), Error> {
        let mut columns = Columns::default();
        verdicts.iter().for_each(|ready| columns.push(ready));
        if columns.ids.is_empty() {
            return Ok(());
        }
        let c = &columns;
        let db = self.db.client().await?;
        db.execute(
            UPSERT,
            &[
                &c.ids,
                &c.owners,
                &c.names,
                &c.buckets,
                &c.keys,
                &c.sizes,
                &c.etags,
                &c.declared,
                &c.detected,
                &c.kinds,
                &c.statuses,
                &c.reasons,
                &c.sha256s,
                &c.part_files,
                &c.part_numbers,
                &c.part_sizes,
                &c.part_etags,
                &c.part_checksums,
                &c.part_statuses,
                &c.widths,
                &c.heights,
                &c.durations,
                &c.versions,
            ],
        )
        .await?;
        Ok(())
    }
}
