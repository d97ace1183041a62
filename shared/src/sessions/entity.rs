//! The upload session: what an upload in flight is, while its bytes move.
//! Plain data; the DynamoDB adapter is `sessions::store`, the HTTP rules
//! over it `http::upload_rules`.

use uuid::Uuid;

use crate::domain::status::SessionStage;
use crate::domain::{PartPlan, UploadMode};

/// How long an expired session stays readable for the sweeper.
pub const PURGE_GRACE_SECS: u64 = 2 * 86_400;

pub use sluice_api::limits::MAX_PARTS_PER_CALL;

#[derive(Debug, Clone, PartialEq)]
pub struct UploadSession {
    pub file_id: Uuid,
    pub owner_id: Uuid,
    pub key: String,
    pub upload_id: String,
    pub file_name: String,
    pub declared_type: String,
    pub mode: UploadMode,
    pub plan: PartPlan,
    /// The whole file's SHA-256 (base64) as the client declared it.
    pub sha256: Option<String>,
    pub stage: SessionStage,
    pub recorded_count: u32,
    pub created_at: u64,
    pub expires_at: u64,
    /// When the stage last changed, or the sweeper last re-drove the upload.
    pub stage_at: u64,
    /// What inspect decided, once it has.
    pub judged: Option<Judged>,
    /// Whether persist has written a verdict of this upload to Postgres.
    pub verdict_stored: bool,
}

/// The object version inspect judged (a replayed PUT is another version and
/// is told apart by it) and the verdict it sent, kept so a verdict lost on
/// its way to Postgres can be sent again.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub version_id: Option<String>,
    pub verdict: String,
}

impl UploadSession {
    /// Sessions past their TTL count as gone even before DynamoDB deletes them.
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires_at <= now
    }

    /// Whether S3 holds a multipart upload for this session.
    pub fn has_multipart_upload(&self) -> bool {
        matches!(self.mode, UploadMode::Multipart | UploadMode::Companion)
    }
}

pub use sluice_api::uploads::RecordedPart;
