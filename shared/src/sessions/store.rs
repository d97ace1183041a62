//! Upload sessions in DynamoDB: one item for the session and one per
//! recorded part (a 10,000-part upload would not fit one 400 KB item).
//! Key: `pk` = file id, `sk` = `session` or `part#00042`. `expiresAt` ends
//! the upload; the table's TTL attribute `purgeAt` comes two days later, so the
//! sweeper always sees an expired session before DynamoDB deletes it.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use uuid::Uuid;

use super::entity::{Judged, PURGE_GRACE_SECS, RecordedPart, UploadSession};
use crate::domain::status::SessionStage;
use crate::domain::{PartPlan, UploadMode};
use crate::dynamo::{self, n, s};
use crate::ports::Sessions;

const SESSION_SK: &str = "session";
/// The item noting that Postgres holds the upload's verdict.
const STORED_SK: &str = "stored";
/// How long a stored mark outlives the purge grace: longer than any session.
const STORED_MARK_SECS: u64 = 30 * 86_400;

/// The session item's key: the one place it is spelled.
fn session_key(file_id: Uuid) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_string(), s(file_id.to_string())), ("sk".to_string(), s(SESSION_SK))])
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DynamoDB: {0}")]
    Dynamo(String),
    #[error("the session item is malformed: {0}")]
    Malformed(String),
}

fn dynamo_err<E: std::error::Error + Send + Sync + 'static>(e: aws_sdk_dynamodb::error::SdkError<E>) -> StoreError {
    StoreError::Dynamo(crate::aws::describe(e))
}

/// A conditional update's outcome: true if it was made, false if its
/// condition did not hold.
fn held<T>(
    result: Result<T, aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError>>,
) -> Result<bool, StoreError> {
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
        Err(e) => Err(dynamo_err(e)),
    }
}

fn part_sk(part_number: u32) -> String {
    format!("part#{part_number:05}")
}

#[derive(Clone)]
pub struct SessionStore {
    client: Client,
    table: String,
}

impl SessionStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Writes one part's item; answers whether the part is new.
    async fn put_part(&self, file_id: Uuid, part: &RecordedPart, expires_at: u64) -> Result<bool, StoreError> {
        let mut item = HashMap::from([
            ("pk".to_string(), s(file_id.to_string())),
            ("sk".to_string(), s(part_sk(part.part_number))),
            ("partNumber".to_string(), n(part.part_number)),
            ("size".to_string(), n(part.size)),
            ("etag".to_string(), s(&part.etag)),
            ("expiresAt".to_string(), n(expires_at)),
            ("purgeAt".to_string(), n(expires_at + PURGE_GRACE_SECS)),
        ]);
        if let Some(checksum) = &part.checksum_sha256 {
            item.insert("checksumSha256".to_string(), s(checksum));
        }
        let put = |condition: Option<&str>| {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .set_condition_expression(condition.map(String::from))
                .send()
        };
        match put(Some("attribute_not_exists(sk)")).await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                put(None).await.map_err(dynamo_err)?;
                Ok(false)
            }
            Err(e) => Err(dynamo_err(e)),
        }
    }

    /// Every item of the table matching `filter`, with `:session`, `:open`
    /// and `:at` bound (and `extra`'s placeholders): a consistent, paginated Scan.
    async fn scan_items(
        &self,
        filter: &str,
        at: u64,
        extra: Option<(&str, AttributeValue)>,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let mut scan = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression(filter)
            .expression_attribute_values(":session", s(SESSION_SK))
            .expression_attribute_values(":open", s(SessionStage::Open.as_str()))
            .expression_attribute_values(":at", n(at))
            .consistent_read(true);
        if let Some((name, value)) = extra {
            scan = scan.expression_attribute_values(name, value);
        }
        let pages = scan.into_paginator().items().send().collect::<Vec<_>>().await;
        pages.into_iter().map(|item| item.map_err(dynamo_err)).collect()
    }

    /// Every session item (`sk = session`) that also matches `filter`.
    async fn scan_sessions(&self, filter: &str, at: u64) -> Result<Vec<UploadSession>, StoreError> {
        let items = self.scan_items(&format!("sk = :session AND {filter}"), at, None).await?;
        items.iter().map(parse_session).collect()
    }

    /// Sets `attribute` to now on the session item; false if it is gone.
    async fn stamp(&self, file_id: Uuid, attribute: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(session_key(file_id)))
            .update_expression(format!("SET {attribute} = :now"))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", n(crate::auth::now_secs()))
            .send()
            .await;
        held(result)
    }
}

impl Sessions for SessionStore {
    async fn create(&self, session: &UploadSession) -> Result<(), StoreError> {
        let mut item = HashMap::from([
            ("pk".to_string(), s(session.file_id.to_string())),
            ("sk".to_string(), s(SESSION_SK)),
            ("ownerId".to_string(), s(session.owner_id.to_string())),
            ("key".to_string(), s(&session.key)),
            ("uploadId".to_string(), s(&session.upload_id)),
            ("fileName".to_string(), s(&session.file_name)),
            ("declaredType".to_string(), s(&session.declared_type)),
            ("size".to_string(), n(session.plan.size)),
            ("partSize".to_string(), n(session.plan.part_size)),
            ("partCount".to_string(), n(session.plan.part_count)),
            ("stage".to_string(), s(session.stage.as_str())),
            ("recordedCount".to_string(), n(0)),
            ("createdAt".to_string(), n(session.created_at)),
            ("stageAt".to_string(), n(session.created_at)),
            ("expiresAt".to_string(), n(session.expires_at)),
            ("purgeAt".to_string(), n(session.expires_at + PURGE_GRACE_SECS)),
            ("mode".to_string(), s(session.mode.as_str())),
        ]);
        if let Some(sha256) = &session.sha256 {
            item.insert("sha256".to_string(), s(sha256));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(dynamo_err)?;
        Ok(())
    }

    async fn get(&self, file_id: Uuid) -> Result<Option<UploadSession>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(session_key(file_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(dynamo_err)?;
        out.item.map(|item| parse_session(&item)).transpose()
    }

    /// Records parts (idempotent: a part recorded again is overwritten, as a
    /// re-uploaded S3 part is) and answers how many distinct parts exist.
    /// The parts are written first and counted once at the end: one session
    /// update per call, however many parts it carries. Every write runs to
    /// its end and the new ones are counted even when another failed, so a
    /// retry (which finds them already there) does not leave them uncounted.
    async fn record_parts(&self, file_id: Uuid, parts: &[RecordedPart], expires_at: u64) -> Result<u32, StoreError> {
        use futures::StreamExt;
        // Collected first: a lazy `map` in the stream trips the compiler's
        // Send check for the handler's future (the higher-ranked closure).
        let writes: Vec<_> = parts.iter().map(|part| self.put_part(file_id, part, expires_at)).collect();
        let written: Vec<Result<bool, StoreError>> = futures::stream::iter(writes).buffer_unordered(16).collect().await;
        let new_parts = written.iter().filter(|w| matches!(w, Ok(true))).count() as u32;
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(session_key(file_id)))
            .update_expression("ADD recordedCount :new")
            .expression_attribute_values(":new", n(new_parts))
            .condition_expression("attribute_exists(pk)")
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await
            .map_err(dynamo_err)?;
        if let Some(failed) = written.into_iter().find_map(Result::err) {
            return Err(failed);
        }
        Ok(update.attributes.as_ref().and_then(|a| num(a, "recordedCount").ok()).unwrap_or_default() as u32)
    }

    /// Every recorded part, in part order.
    async fn parts(&self, file_id: Uuid) -> Result<Vec<RecordedPart>, StoreError> {
        let pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(file_id.to_string()))
            .expression_attribute_values(":prefix", s("part#"))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await;
        let mut parts = Vec::new();
        for item in pages {
            let item = item.map_err(dynamo_err)?;
            parts.push(RecordedPart {
                part_number: num(&item, "partNumber")? as u32,
                size: num(&item, "size")?,
                etag: text(&item, "etag")?,
                checksum_sha256: text(&item, "checksumSha256").ok(),
            });
        }
        parts.sort_by_key(|p| p.part_number);
        Ok(parts)
    }

    /// Open sessions past their `expiresAt`: uploads nobody finished.
    async fn expired_open(&self, now: u64) -> Result<Vec<UploadSession>, StoreError> {
        self.scan_sessions("stage = :open AND expiresAt <= :at", now).await
    }

    /// Moves a session from one stage to another; false if it was not in `from`.
    async fn set_stage(&self, file_id: Uuid, from: SessionStage, to: SessionStage) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(session_key(file_id)))
            .update_expression("SET stage = :to, stageAt = :now")
            .condition_expression("stage = :from")
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":now", n(crate::auth::now_secs()))
            .expression_attribute_values(":from", s(from.as_str()))
            .send()
            .await;
        held(result)
    }

    /// Keeps the verdict inspect is about to send, claiming `version_id` as
    /// the upload's object. False if another version was claimed first (a
    /// replayed PUT): that one is the file, this one is not.
    async fn record_judgement(&self, file_id: Uuid, version_id: Option<&str>, verdict: &str) -> Result<bool, StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(session_key(file_id)))
            .expression_attribute_values(":verdict", s(verdict));
        let update = match version_id {
            Some(version) => update
                .update_expression("SET verdict = :verdict, judgedVersion = :version")
                .condition_expression("attribute_exists(pk) AND (attribute_not_exists(judgedVersion) OR judgedVersion = :version)")
                .expression_attribute_values(":version", s(version)),
            None => update.update_expression("SET verdict = :verdict").condition_expression("attribute_exists(pk)"),
        };
        held(update.send().await)
    }

    /// Notes that Postgres holds a verdict of each upload, so the sweeper
    /// stops re-driving them: a small item beside each session (`sk =
    /// stored`), 25 to a BatchWriteItem, so a batch of verdicts costs one
    /// request and no condition. The sweeper's scan reads them with the
    /// sessions. They outlive any session (30 days past the purge grace);
    /// one for a session already purged is harmless.
    async fn mark_verdicts_stored(&self, file_ids: &[Uuid]) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
        let mut file_ids = file_ids.to_vec();
        // A batch may carry a verdict twice; BatchWriteItem takes a key once.
        file_ids.sort();
        file_ids.dedup();
        let now = crate::auth::now_secs();
        for chunk in file_ids.chunks(25) {
            let mut writes = chunk
                .iter()
                .map(|file_id| {
                    let item = HashMap::from([
                        ("pk".to_string(), s(file_id.to_string())),
                        ("sk".to_string(), s(STORED_SK)),
                        ("storedAt".to_string(), n(now)),
                        ("purgeAt".to_string(), n(now + PURGE_GRACE_SECS + STORED_MARK_SECS)),
                    ]);
                    PutRequest::builder().set_item(Some(item)).build().map(|put| WriteRequest::builder().put_request(put).build())
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StoreError::Dynamo(e.to_string()))?;
            // DynamoDB may leave some unwritten under load; they are sent again.
            for attempt in 0..5u64 {
                let out = self.client.batch_write_item().request_items(&self.table, writes).send().await.map_err(dynamo_err)?;
                writes = out.unprocessed_items.and_then(|mut left| left.remove(&self.table)).unwrap_or_default();
                if writes.is_empty() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(25 << attempt)).await;
            }
            if !writes.is_empty() {
                return Err(StoreError::Dynamo(format!("{} stored marks left unwritten by DynamoDB", writes.len())));
            }
        }
        Ok(())
    }

    /// Notes that this upload's verdict can never be written and sits in
    /// the dead-letter queue for an operator: re-sending it would only add
    /// copies there, so the sweeper leaves it.
    async fn mark_verdict_dead_lettered(&self, file_id: Uuid) -> Result<(), StoreError> {
        self.stamp(file_id, "verdictDeadLetteredAt").await.map(drop)
    }

    /// Uploads that left `OPEN` at or before `cutoff` and whose verdict
    /// Postgres does not hold yet (nor refused for good): lost on the way,
    /// or never sent. Sessions written before `stageAt` existed count from
    /// their creation.
    async fn unsettled(&self, cutoff: u64) -> Result<Vec<UploadSession>, StoreError> {
        // The sessions and the stored marks, in one scan; a session with a
        // mark is settled (so is one noted by `verdictStoredAt`, as persist
        // noted them before the marks).
        let items = self
            .scan_items(
                "sk = :stored OR (sk = :session AND stage <> :open AND attribute_not_exists(verdictStoredAt) \
                 AND attribute_not_exists(verdictDeadLetteredAt) \
                 AND (stageAt <= :at OR (attribute_not_exists(stageAt) AND createdAt <= :at)))",
                cutoff,
                Some((":stored", s(STORED_SK))),
            )
            .await?;
        let mut stored = std::collections::HashSet::new();
        let mut sessions = Vec::new();
        for item in &items {
            if dynamo::string(item, "sk").as_deref() == Some(STORED_SK) {
                stored.insert(uuid(item, "pk")?);
            } else {
                sessions.push(parse_session(item)?);
            }
        }
        sessions.retain(|session| !stored.contains(&session.file_id));
        Ok(sessions)
    }

    /// Restarts the session's clock (`stageAt`) after the sweeper re-drove it,
    /// so it is looked at again only after another full wait.
    async fn touch(&self, file_id: Uuid) -> Result<(), StoreError> {
        match self.stamp(file_id, "stageAt").await? {
            true => Ok(()),
            false => Err(StoreError::Dynamo("the session item is gone; nothing to touch".into())),
        }
    }
}

fn text(item: &HashMap<String, AttributeValue>, name: &str) -> Result<String, StoreError> {
    dynamo::string(item, name).ok_or_else(|| StoreError::Malformed(format!("{name} is missing")))
}

fn num(item: &HashMap<String, AttributeValue>, name: &str) -> Result<u64, StoreError> {
    dynamo::number(item, name).ok_or_else(|| StoreError::Malformed(format!("{name} is missing or not a number")))
}

fn uuid(item: &HashMap<String, AttributeValue>, name: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(&text(item, name)?).map_err(|e| StoreError::Malformed(format!("{name}: {e}")))
}

fn parse_session(item: &HashMap<String, AttributeValue>) -> Result<UploadSession, StoreError> {
    Ok(UploadSession {
        file_id: uuid(item, "pk")?,
        owner_id: uuid(item, "ownerId")?,
        key: text(item, "key")?,
        upload_id: text(item, "uploadId")?,
        file_name: text(item, "fileName")?,
        declared_type: text(item, "declaredType")?,
        // Sessions written before single PUTs existed are multipart.
        mode: item.get("mode").and_then(|v| v.as_s().ok()).and_then(|m| UploadMode::parse(m)).unwrap_or(UploadMode::Multipart),
        sha256: text(item, "sha256").ok(),
        plan: PartPlan { size: num(item, "size")?, part_size: num(item, "partSize")?, part_count: num(item, "partCount")? as u32 },
        stage: SessionStage::parse(&text(item, "stage")?).ok_or_else(|| StoreError::Malformed("stage is unknown".into()))?,
        recorded_count: num(item, "recordedCount").unwrap_or_default() as u32,
        created_at: num(item, "createdAt")?,
        expires_at: num(item, "expiresAt")?,
        // Sessions written before the reconciler existed: their creation.
        stage_at: num(item, "stageAt").or_else(|_| num(item, "createdAt"))?,
        judged: text(item, "verdict").ok().map(|verdict| Judged { version_id: text(item, "judgedVersion").ok(), verdict }),
        verdict_stored: item.contains_key("verdictStoredAt"),
    })
}
