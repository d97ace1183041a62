//! SQS batches of verdicts → Postgres. Each message is one idempotent
//! statement (the file row and its chunk rows together); a message that
//! fails is reported in `batchItemFailures` so the rest of the batch stands,
//! and after the queue's maxReceiveCount it moves to the DLQ.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{Error, LambdaEvent};
use sluice_shared::aws::Clients;
use sluice_shared::config::{self, ConfigError, Env};
use sluice_shared::db::Db;
use sluice_shared::domain::FileStatus;
use sluice_shared::messages::VerdictMessage;
use sluice_shared::sessions::SessionStore;

pub struct Persist {
    pub db: Db,
    pub sessions: SessionStore,
}

impl Persist {
    pub fn from_env(env: &Env, clients: &Clients) -> Result<Self, ConfigError> {
        Ok(Self {
            db: Db::new(config::database_url(env)?),
            sessions: SessionStore::new(clients.dynamodb.clone(), env.required("SESSIONS_TABLE")?),
        })
    }
}

/// The messages of a batch go together: their session reads overlap, and
/// their statements are pipelined on the one connection, so a batch costs
/// about one round trip to each store rather than ten.
pub async fn handle(deps: &Persist, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let records = &event.payload.records;
    let outcomes = futures::future::join_all(records.iter().map(|message| persist_message(deps, message))).await;
    let mut response = SqsBatchResponse::default();
    for (message, outcome) in records.iter().zip(outcomes) {
        if let Err(err) = outcome {
            tracing::warn!(message_id = ?message.message_id, %err, "message not persisted");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    Ok(response)
}

/// Inserts or repeats the verdict. A final status is never replaced by a
/// different one (FileStatus::can_become), so a stale redelivery changes nothing.
const UPSERT: &str = "
WITH file AS (
    INSERT INTO files (id, owner_id, file_name, bucket, s3_key, size, etag, declared_type,
                       detected_type, kind, status, reason, sha256)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $17)
    ON CONFLICT (id) DO UPDATE SET
        size = EXCLUDED.size, etag = EXCLUDED.etag, detected_type = EXCLUDED.detected_type,
        kind = EXCLUDED.kind, status = EXCLUDED.status, reason = EXCLUDED.reason,
        sha256 = EXCLUDED.sha256, updated_at = now()
    WHERE files.owner_id = EXCLUDED.owner_id
      AND (files.status = 'UPLOADING' OR files.status = EXCLUDED.status)
    RETURNING id
)
INSERT INTO chunks (file_id, part_number, size, etag, checksum, status)
SELECT file.id, part.number, part.size, part.etag, part.checksum, $16
FROM file, UNNEST($13::int[], $14::bigint[], $15::text[], $18::text[]) AS part(number, size, etag, checksum)
ON CONFLICT (file_id, part_number) DO UPDATE SET
    size = EXCLUDED.size, etag = EXCLUDED.etag, checksum = EXCLUDED.checksum, status = EXCLUDED.status";

async fn persist_message(deps: &Persist, message: &SqsMessage) -> Result<(), Error> {
    let body = message.body.as_deref().ok_or("the message has no body")?;
    let verdict: VerdictMessage = serde_json::from_str(body)?;
    let parts = deps.sessions.parts(verdict.file_id).await?;
    let numbers: Vec<i32> = parts.iter().map(|p| p.part_number as i32).collect();
    let sizes: Vec<i64> = parts.iter().map(|p| p.size as i64).collect();
    let etags: Vec<String> = parts.iter().map(|p| p.etag.clone()).collect();
    let checksums: Vec<Option<String>> = parts.iter().map(|p| p.checksum_sha256.clone()).collect();
    let chunk_status = match verdict.status {
        FileStatus::Uploaded => "COMPLETED",
        _ => "FAILED",
    };
    let db = deps.db.client().await?;
    db.execute(
        UPSERT,
        &[
            &verdict.file_id,
            &verdict.owner_id,
            &verdict.file_name,
            &verdict.bucket,
            &verdict.key,
            &(verdict.size as i64),
            &verdict.etag,
            &verdict.declared_type,
            &verdict.detected_type,
            &verdict.kind.map(|k| k.as_str()),
            &verdict.status.as_str(),
            &verdict.reason,
            &numbers,
            &sizes,
            &etags,
            &chunk_status,
            &verdict.sha256,
            &checksums,
        ],
    )
    .await?;
    Ok(())
}
