//! `/uploads/*`: uploads whose parts Sluice plans and signs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::status::{FileStatus, SessionStage, UploadMode};

/// Headers a PUT must carry exactly (they are signed into its URL).
pub type SignedHeaders = BTreeMap<String, String>;

/// `POST /uploads`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartUpload {
    pub file_name: String,
    pub size: u64,
    pub content_type: String,
    /// `single` or `multipart`; by default chosen by size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<UploadMode>,
    /// The whole file's SHA-256 (base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// 201 to `POST /uploads`, told apart by `mode`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum StartedUpload {
    Single(SingleUpload),
    Multipart(MultipartUpload),
}

impl StartedUpload {
    pub fn file_id(&self) -> Uuid {
        match self {
            Self::Single(s) => s.file_id,
            Self::Multipart(m) => m.file_id,
        }
    }
}

/// One presigned PUT of the whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SingleUpload {
    pub file_id: Uuid,
    pub key: String,
    pub url: String,
    /// Always `PUT`.
    pub method: String,
    pub headers: SignedHeaders,
    pub url_expires_at: String,
    /// When the upload session ends.
    pub expires_at: String,
}

/// A multipart upload with its first part URLs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MultipartUpload {
    pub file_id: Uuid,
    pub upload_id: String,
    pub key: String,
    pub part_size: u64,
    pub part_count: u32,
    pub parts: Vec<PartUrl>,
    pub expires_at: String,
}

/// A presigned part URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartUrl {
    pub part_number: u32,
    pub url: String,
    pub headers: SignedHeaders,
    pub expires_at: String,
}

/// 200 to `GET` and `POST /uploads/{fileId}/parts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartUrls {
    pub file_id: Uuid,
    pub part_count: u32,
    pub parts: Vec<PartUrl>,
}

/// `POST /uploads/{fileId}/parts`: the parts to sign, each with its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignParts {
    pub parts: Vec<PartToSign>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartToSign {
    /// Signed so that an out-of-range number is refused by name, not by serde.
    pub part_number: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_sha256: Option<String>,
}

/// A part the client PUT, as it reports it to `POST /uploads/{fileId}/chunks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedChunk {
    pub part_number: i64,
    /// The ETag header S3 answered the PUT with.
    pub etag: String,
    pub size: u64,
    /// The part's SHA-256 (base64); complete checks it against S3's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_sha256: Option<String>,
}

/// `POST /uploads/{fileId}/chunks`: a batch, or one part on its own as the
/// route was first specified (older clients still send that).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RecordChunks {
    Batch(ChunkBatch),
    One(RecordedChunk),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkBatch {
    pub parts: Vec<RecordedChunk>,
}

impl RecordChunks {
    /// Parses a body by the shape it claims (a `parts` list, else a lone
    /// `partNumber`), so an error names the field that is wrong rather than
    /// "did not match any variant".
    pub fn from_value(body: serde_json::Value) -> Result<Self, serde_json::Error> {
        if body.get("parts").is_none() && body.get("partNumber").is_some() {
            serde_json::from_value(body).map(Self::One)
        } else {
            serde_json::from_value(body).map(Self::Batch)
        }
    }

    pub fn is_one(&self) -> bool {
        matches!(self, Self::One(_))
    }

    pub fn into_parts(self) -> Vec<RecordedChunk> {
        match self {
            Self::Batch(batch) => batch.parts,
            Self::One(part) => vec![part],
        }
    }
}

/// 200 to `POST /uploads/{fileId}/chunks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChunksRecorded {
    pub part_numbers: Vec<u32>,
    /// For a single-part body, the part recorded (the answer as it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_number: Option<u32>,
    pub recorded_parts: u32,
    pub part_count: u32,
}

/// A part the session holds as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedPart {
    pub part_number: u32,
    pub size: u64,
    pub etag: String,
    /// The part's SHA-256 (base64), when the client sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_sha256: Option<String>,
}

/// 200 to `GET /uploads/{fileId}`: where an upload stands, to resume it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadState {
    pub file_id: Uuid,
    pub mode: UploadMode,
    pub status: FileStatus,
    pub stage: SessionStage,
    pub file_name: String,
    pub size: u64,
    pub sha256: Option<String>,
    pub part_size: u64,
    pub part_count: u32,
    pub recorded_parts: Vec<RecordedPart>,
    pub expires_at: String,
}

/// 202 to `POST /uploads/{fileId}/complete`: the verdict follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompleteAccepted {
    pub file_id: Uuid,
    /// Always `UPLOADING`.
    pub status: FileStatus,
}

/// 200 to `DELETE /uploads/{fileId}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadCancelled {
    pub file_id: Uuid,
    /// Always `FAILED`.
    pub status: FileStatus,
    /// `cancelled`, or `expired` when it had already ended so.
    pub reason: String,
}
