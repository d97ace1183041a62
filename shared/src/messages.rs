//! The verdict message inspect sends to SQS and persist writes to Postgres.
//! It carries no part list: a 10,000-part list would not fit SQS's 256 KB,
//! so persist reads the parts from the session table, unless the mode says
//! the bytes came in one PUT and there are none.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{FileStatus, Kind, UploadMode};
use crate::sessions::UploadSession;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerdictMessage {
    pub file_id: Uuid,
    pub owner_id: Uuid,
    pub bucket: String,
    pub key: String,
    pub file_name: String,
    pub size: u64,
    pub etag: String,
    pub declared_type: String,
    pub detected_type: Option<String>,
    pub kind: Option<Kind>,
    pub status: FileStatus,
    pub reason: Option<String>,
    /// The whole file's SHA-256 (base64) as the client declared it.
    #[serde(default)]
    pub sha256: Option<String>,
    /// How the bytes arrived, when the session was still known. A single
    /// PUT records no parts; without a mode persist looks for them.
    #[serde(default)]
    pub mode: Option<UploadMode>,
    /// Seconds since the epoch when inspect decided.
    pub decided_at: u64,
    /// What the structure stated (pixels; milliseconds), when it did.
    /// Absent from messages sent before inspection read structure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The S3 version of the object that was judged, in a versioned bucket:
    /// downloads and deletes name it, so a later PUT to the same key never
    /// stands in for the inspected bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

impl VerdictMessage {
    /// The FAILED verdict of an upload that will never complete (`reason`:
    /// `cancelled`, `expired`): what the session knew, no bytes judged.
    pub fn closed(session: &UploadSession, bucket: &str, reason: &str) -> Self {
        Self {
            file_id: session.file_id,
            owner_id: session.owner_id,
            bucket: bucket.to_string(),
            key: session.key.clone(),
            file_name: session.file_name.clone(),
            size: session.plan.size,
            etag: String::new(),
            declared_type: session.declared_type.clone(),
            detected_type: None,
            kind: None,
            status: FileStatus::Failed,
            reason: Some(reason.to_string()),
            sha256: session.sha256.clone(),
            mode: Some(session.mode),
            decided_at: crate::auth::now_secs(),
            width: None,
            height: None,
            duration_ms: None,
            version_id: None,
        }
    }
}
