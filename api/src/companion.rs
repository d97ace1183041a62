//! `/s3/multipart/*`: Uppy Companion's S3 multipart protocol, as
//! @uppy/aws-s3 calls it (its field names, not this API's camelCase).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// `POST /s3/multipart`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateMultipart {
    pub filename: String,
    /// The declared content type.
    #[serde(rename = "type")]
    pub content_type: String,
    /// Uppy's file meta fields; `size` (a number or its text) is read.
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

/// 200 to `POST /s3/multipart`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MultipartCreated {
    pub key: String,
    /// What Uppy sends back on every later call: a token that names the
    /// upload and lets its parts be signed without a lookup. Every route
    /// that takes a file id takes it too, and still takes a bare file id.
    pub upload_id: String,
    /// The file: `GET /files/{fileId}` tells its verdict.
    pub file_id: Uuid,
}

/// 200 to `GET /s3/multipart/{uploadId}/{partNumber}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedPart {
    pub url: String,
    /// The URL's lifetime in seconds.
    pub expires: u64,
}

/// 200 to `GET /s3/multipart/{uploadId}/batch?partNumbers=1,2,…` (the
/// call of older @uppy/aws-s3): each part number's URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedParts {
    pub presigned_urls: BTreeMap<String, String>,
}

/// A part S3 holds, in the answer to `GET /s3/multipart/{uploadId}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldPart {
    #[serde(rename = "PartNumber")]
    pub part_number: u32,
    #[serde(rename = "ETag")]
    pub etag: String,
    #[serde(rename = "Size")]
    pub size: u64,
}

/// `POST /s3/multipart/{uploadId}/complete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteMultipart {
    pub parts: Vec<ClientPart>,
}

/// A part in Companion's complete body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientPart {
    #[serde(rename = "PartNumber")]
    pub part_number: i64,
    #[serde(rename = "ETag")]
    pub etag: String,
}

/// 200 to `POST /s3/multipart/{uploadId}/complete`; the verdict follows at `location`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultipartCompleted {
    pub location: String,
    pub bucket: String,
    pub key: String,
}

/// 200 to `DELETE /s3/multipart/{uploadId}`: an empty object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultipartAborted {}
