//! The ports the branchy use cases (complete and cancel, inspect's claim of
//! an upload, the sweeper's expiry and re-drive, persist's batches) depend
//! on: small traits over the session table, the quota ledger, the object
//! store and the queues. The DynamoDB, S3 and SQS adapters implement them
//! (`sessions::SessionStore`, `quota::QuotaLedger`, `adapters::S3Objects`,
//! `adapters::SqsQueues`); `fakes` (feature `test-support`) holds in-memory ones
//! for unit tests of the races and failure paths.
//!
//! Dispatch is static: each function is generic over its ports with the
//! AWS adapters as defaults, so a binary holds one implementation and pays
//! nothing at start-up or per call for the indirection.

use std::collections::HashMap;
use std::future::Future;

use bytes::Bytes;
use uuid::Uuid;

use crate::domain::status::SessionStage;
use crate::quota::QuotaError;
use crate::sessions::{RecordedPart, StoreError, UploadSession};

/// The upload sessions and their recorded parts.
pub trait Sessions: Send + Sync {
    /// Stores a new session; fails if one with its id exists.
    fn create(&self, session: &UploadSession) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn get(&self, file_id: Uuid) -> impl Future<Output = Result<Option<UploadSession>, StoreError>> + Send;
    /// Records parts (a part recorded again replaces it); answers how many
    /// distinct parts the session now holds.
    fn record_parts(&self, file_id: Uuid, parts: &[RecordedPart], expires_at: u64) -> impl Future<Output = Result<u32, StoreError>> + Send;
    /// Every recorded part, in part order.
    fn parts(&self, file_id: Uuid) -> impl Future<Output = Result<Vec<RecordedPart>, StoreError>> + Send;
    /// Moves a session from one stage to another; false if it was not in `from`.
    fn set_stage(&self, file_id: Uuid, from: SessionStage, to: SessionStage) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Keeps the verdict about to be sent, claiming `version_id` as the
    /// upload's object; false if another version was claimed first.
    fn record_judgement(
        &self,
        file_id: Uuid,
        version_id: Option<&str>,
        verdict: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Postgres holds a verdict of each of these uploads.
    fn mark_verdicts_stored(&self, file_ids: &[Uuid]) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// This upload's verdict can never be written; it is in the dead-letter queue.
    fn mark_verdict_dead_lettered(&self, file_id: Uuid) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Open sessions past their `expiresAt`.
    fn expired_open(&self, now: u64) -> impl Future<Output = Result<Vec<UploadSession>, StoreError>> + Send;
    /// Sessions out of OPEN since `cutoff` or before, with no verdict stored
    /// (nor dead-lettered).
    fn unsettled(&self, cutoff: u64) -> impl Future<Output = Result<Vec<UploadSession>, StoreError>> + Send;
    /// Restarts the session's clock after a re-drive.
    fn touch(&self, file_id: Uuid) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Each user's bytes stored plus in flight, against their quota.
pub trait Quota: Send + Sync {
    /// Charges an upload `size` bytes unless that passes `limit`; false if
    /// the upload holds a charge already.
    fn charge(&self, owner: Uuid, file_id: Uuid, size: u64, limit: u64) -> impl Future<Output = Result<bool, QuotaError>> + Send;
    /// Moves an upload's charge to `size`; false (and nothing charged) if it holds none.
    fn resize(&self, owner: Uuid, file_id: Uuid, size: u64, limit: u64) -> impl Future<Output = Result<bool, QuotaError>> + Send;
    /// Gives an upload's charge back; false if it held none.
    fn release(&self, owner: Uuid, file_id: Uuid) -> impl Future<Output = Result<bool, QuotaError>> + Send;
}

/// An object store failed, or answered what it should not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ObjectError(pub String);

/// What a HEAD of an object tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    pub size: u64,
    pub etag: String,
    pub version_id: Option<String>,
    /// The declared type presign set as metadata on a multipart upload.
    pub declared_type: Option<String>,
}

/// A part as the object store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInS3 {
    pub etag: String,
    pub size: u64,
    pub checksum_sha256: Option<String>,
}

/// A part to assemble, as the store wants it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    pub part_number: u32,
    pub etag: String,
    pub checksum_sha256: Option<String>,
}

/// Why a CompleteMultipartUpload did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompleteError {
    /// The store refused the parts (missing, out of order, too small).
    #[error("{0}")]
    Refused(String),
    /// It failed, or its answer was lost: it may have happened.
    #[error("{0}")]
    Failed(String),
}

/// The rest of an object, chunk by chunk.
pub trait ByteChunks: Send {
    fn next_chunk(&mut self) -> impl Future<Output = Option<Result<Bytes, ObjectError>>> + Send;
}

/// The bucket: objects, their versions, and multipart uploads.
pub trait Objects: Send + Sync {
    type Chunks: ByteChunks;
    /// None if there is no such object (or version).
    fn head(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> impl Future<Output = Result<Option<ObjectHead>, ObjectError>> + Send;
    fn exists(&self, bucket: &str, key: &str) -> impl Future<Output = Result<bool, ObjectError>> + Send;
    /// Exactly `len` bytes from `offset`, or an error.
    fn read_range(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        offset: u64,
        len: u64,
    ) -> impl Future<Output = Result<Vec<u8>, ObjectError>> + Send;
    /// The object from `offset` to its end, streamed.
    fn read_from(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        offset: u64,
    ) -> impl Future<Output = Result<Self::Chunks, ObjectError>> + Send;
    /// Deletes the version (or, without one, the key).
    fn delete(&self, bucket: &str, key: &str, version_id: Option<&str>) -> impl Future<Output = Result<(), ObjectError>> + Send;
    /// Every part the multipart upload holds; None if there is no such upload.
    fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = Result<Option<HashMap<u32, PartInS3>>, ObjectError>> + Send;
    /// Whether the multipart upload still exists (one ListParts entry asked for).
    fn multipart_open(&self, bucket: &str, key: &str, upload_id: &str) -> impl Future<Output = Result<bool, ObjectError>> + Send;
    fn complete_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> impl Future<Output = Result<(), CompleteError>> + Send;
    /// Frees every part; an upload already gone is fine.
    fn abort_multipart(&self, bucket: &str, key: &str, upload_id: &str) -> impl Future<Output = Result<(), ObjectError>> + Send;
}

/// A queue failed to take or to delay a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueueError(pub String);

/// Message queues, named by URL.
pub trait Queues: Send + Sync {
    fn send(&self, queue_url: &str, body: &str) -> impl Future<Output = Result<(), QueueError>> + Send;
    /// Hides a received message for `secs` before its next delivery.
    fn delay(&self, queue_url: &str, receipt_handle: &str, secs: u64) -> impl Future<Output = Result<(), QueueError>> + Send;
}
