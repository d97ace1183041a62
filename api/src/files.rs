//! `/files/*`: files at any stage, their verdicts, downloads.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::status::{FileStatus, Kind};

/// 200 to `GET /files`: one page, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileList {
    pub files: Vec<FileSummary>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileSummary {
    pub file_id: Uuid,
    pub file_name: String,
    pub status: FileStatus,
    pub size: u64,
    pub declared_type: String,
    pub detected_type: Option<String>,
    pub kind: Option<Kind>,
    /// Why a FAILED file was refused, starting with a stable code.
    pub reason: Option<String>,
    pub created_at: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration_ms: Option<u64>,
}

/// 200 to `GET /files/{fileId}`: from its session while in flight, then
/// from its verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct File {
    pub file_id: Uuid,
    pub file_name: String,
    pub status: FileStatus,
    pub reason: Option<String>,
    pub size: u64,
    pub declared_type: String,
    pub part_count: u32,
    pub created_at: String,
    #[serde(flatten)]
    pub stage: FileStage,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FileStage {
    /// In flight: what its session knows.
    #[serde(rename_all = "camelCase")]
    InFlight { recorded_parts: u32, expires_at: String },
    /// Judged: what inspection found.
    #[serde(rename_all = "camelCase")]
    Judged {
        etag: Option<String>,
        detected_type: Option<String>,
        kind: Option<Kind>,
        sha256: Option<String>,
        updated_at: String,
        width: Option<u32>,
        height: Option<u32>,
        duration_ms: Option<u64>,
    },
}

/// 200 to `POST /files/{fileId}/download-url`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadUrl {
    pub url: String,
    pub expires_at: String,
}

/// 200 to `DELETE /files/{fileId}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileDeleted {
    pub file_id: Uuid,
    /// Always true.
    pub deleted: bool,
}
