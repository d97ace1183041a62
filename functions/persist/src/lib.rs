//! SQS batches of verdicts → Postgres. A batch is one idempotent statement
//! (the file rows and their chunk rows together); a message that fails is
//! reported in `batchItemFailures` so the rest of the batch stands, and
//! after the queue's maxReceiveCount it moves to the DLQ.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{Error, LambdaEvent};
use sluice_shared::aws::Clients;
use sluice_shared::config::{self, ConfigError, Env};
use sluice_shared::db::Db;
use sluice_shared::domain::{FileStatus, UploadMode};
use sluice_shared::messages::VerdictMessage;
use sluice_shared::sessions::{RecordedPart, SessionStore};
use uuid::Uuid;

pub struct Persist {
    pub db: Db,
    pub sessions: SessionStore,
}

impl Persist {
    pub fn from_env(env: &Env, clients: &Clients) -> Result<Self, ConfigError> {
        Ok(Self {
            db: Db::new(config::database_url(env)?),
            sessions: SessionStore::new(clients.dynamodb(), env.required("SESSIONS_TABLE")?),
        })
    }
}

/// A batch is written in one statement, so it costs one commit rather than
/// ten. The part lists are read first, concurrently. If the statement fails,
/// each message is written on its own to find the ones at fault; only those
/// are reported, and the rest of the batch stands.
pub async fn handle(deps: &Persist, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let records = &event.payload.records;
    let read = futures::future::join_all(records.iter().map(|message| read_message(deps, message))).await;
    let mut failed = vec![false; records.len()];
    let mut ready = Vec::new();
    for (i, outcome) in read.into_iter().enumerate() {
        match outcome {
            Ok(verdict) => ready.push((i, verdict)),
            Err(err) => {
                tracing::warn!(message_id = ?records[i].message_id, %err, "message not persisted");
                failed[i] = true;
            }
        }
    }
    if let Err(err) = write(deps, ready.iter().map(|(_, verdict)| verdict)).await {
        let each = if ready.len() == 1 {
            vec![Err(err)]
        } else {
            tracing::info!(%err, "the batch as one statement failed; writing its messages one by one");
            futures::future::join_all(ready.iter().map(|(_, verdict)| write(deps, std::iter::once(verdict)))).await
        };
        for ((i, _), outcome) in ready.iter().zip(each) {
            if let Err(err) = outcome {
                tracing::warn!(message_id = ?records[*i].message_id, %err, "message not persisted");
                failed[*i] = true;
            }
        }
    }
    let mut response = SqsBatchResponse::default();
    for (message, _) in records.iter().zip(failed).filter(|(_, failed)| *failed) {
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = message.message_id.clone().unwrap_or_default();
        response.batch_item_failures.push(failure);
    }
    Ok(response)
}

/// Inserts or repeats the verdicts. A final status is never replaced by a
/// different one (FileStatus::can_become), so a stale redelivery changes
/// nothing, not even its chunk rows.
const UPSERT: &str = "
WITH file AS (
    INSERT INTO files (id, owner_id, file_name, bucket, s3_key, size, etag, declared_type,
                       detected_type, kind, status, reason, sha256, width, height, duration_ms)
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[],
                         $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
                         $20::int[], $21::int[], $22::bigint[])
    ON CONFLICT (id) DO UPDATE SET
        size = EXCLUDED.size, etag = EXCLUDED.etag, detected_type = EXCLUDED.detected_type,
        kind = EXCLUDED.kind, status = EXCLUDED.status, reason = EXCLUDED.reason,
        sha256 = EXCLUDED.sha256, width = EXCLUDED.width, height = EXCLUDED.height,
        duration_ms = EXCLUDED.duration_ms, updated_at = now()
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
struct ReadyVerdict {
    verdict: VerdictMessage,
    parts: Vec<RecordedPart>,
}

async fn read_message(deps: &Persist, message: &SqsMessage) -> Result<ReadyVerdict, Error> {
    let body = message.body.as_deref().ok_or("the message has no body")?;
    let verdict: VerdictMessage = serde_json::from_str(body)?;
    let parts = match verdict.mode {
        Some(UploadMode::Single) => Vec::new(),
        _ => deps.sessions.parts(verdict.file_id).await?,
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

async fn write<'a>(deps: &Persist, verdicts: impl Iterator<Item = &'a ReadyVerdict>) -> Result<(), Error> {
    let mut columns = Columns::default();
    verdicts.for_each(|ready| columns.push(ready));
    if columns.ids.is_empty() {
        return Ok(());
    }
    let c = &columns;
    let db = deps.db.client().await?;
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
        ],
    )
    .await?;
    Ok(())
}
