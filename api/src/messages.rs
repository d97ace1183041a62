//! The verdict message inspect sends to SQS and persist writes to Postgres.
//! It carries no part list: a 10,000-part list would not fit SQS's 256 KB,
//! so persist reads the parts from the session table, unless the mode says
//! the bytes came in one PUT and there are none.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::status::{FileStatus, Kind, UploadMode};

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

/// What one sweeper run did (its invocation's answer): uploads ended as
/// expired, uploads it could not deal with now (the next run retries them),
/// and uploads whose verdict it re-drove.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepReport {
    pub swept: u32,
    pub failed: u32,
    pub redriven: u32,
}
