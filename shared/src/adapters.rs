//! The S3 and SQS adapters of `ports::Objects` and `ports::Queues` (the
//! DynamoDB ones are `sessions::SessionStore` and `quota::QuotaLedger`).
//! S3's errors are told apart by their code, never by their text.

use std::collections::HashMap;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use crate::aws::describe;
use crate::ports::{ByteChunks, CompleteError, CompletedPart, ObjectError, ObjectHead, Objects, PartInS3, QueueError, Queues};

#[derive(Clone)]
pub struct S3Objects {
    s3: aws_sdk_s3::Client,
}

impl S3Objects {
    pub fn new(s3: aws_sdk_s3::Client) -> Self {
        Self { s3 }
    }
}

fn object_error(e: impl std::error::Error) -> ObjectError {
    ObjectError(describe(e))
}

/// A GET's body, chunk by chunk as S3 sends it.
pub struct S3Chunks(ByteStream);

impl ByteChunks for S3Chunks {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, ObjectError>> {
        self.0.try_next().await.map_err(object_error).transpose()
    }
}

impl S3Objects {
    /// A GET of `range` of the version (or the current object).
    async fn get(&self, bucket: &str, key: &str, version_id: Option<&str>, range: String) -> Result<ByteStream, ObjectError> {
        let object = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(String::from))
            .range(range)
            .send()
            .await
            .map_err(object_error)?;
        Ok(object.body)
    }
}

impl Objects for S3Objects {
    type Chunks = S3Chunks;

    async fn head(&self, bucket: &str, key: &str, version_id: Option<&str>) -> Result<Option<ObjectHead>, ObjectError> {
        match self.s3.head_object().bucket(bucket).key(key).set_version_id(version_id.map(String::from)).send().await {
            Ok(head) => Ok(Some(ObjectHead {
                size: head.content_length.unwrap_or_default().max(0) as u64,
                etag: head.e_tag.unwrap_or_default(),
                version_id: head.version_id.filter(|v| v != "null"),
                declared_type: head.metadata.and_then(|mut m| m.remove(crate::aws::metadata::DECLARED_TYPE)),
            })),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(e) => Err(object_error(e)),
        }
    }

    async fn exists(&self, bucket: &str, key: &str) -> Result<bool, ObjectError> {
        self.head(bucket, key, None).await.map(|head| head.is_some())
    }

    async fn read_range(&self, bucket: &str, key: &str, version_id: Option<&str>, offset: u64, len: u64) -> Result<Vec<u8>, ObjectError> {
        let mut body = self.get(bucket, key, version_id, format!("bytes={offset}-{}", offset + len - 1)).await?;
        let mut bytes = Vec::with_capacity(len as usize);
        while let Some(chunk) = body.try_next().await.map_err(object_error)? {
            if bytes.len() + chunk.len() > len as usize {
                return Err(ObjectError(format!("S3 answered more than the {len} bytes asked for at {offset} of {key}")));
            }
            bytes.extend_from_slice(&chunk);
        }
        if bytes.len() as u64 != len {
            return Err(ObjectError(format!("S3 answered {} bytes for a range of {len} at {offset} of {key}", bytes.len())));
        }
        Ok(bytes)
    }

    async fn read_from(&self, bucket: &str, key: &str, version_id: Option<&str>, offset: u64) -> Result<S3Chunks, ObjectError> {
        Ok(S3Chunks(self.get(bucket, key, version_id, format!("bytes={offset}-")).await?))
    }

    async fn delete(&self, bucket: &str, key: &str, version_id: Option<&str>) -> Result<(), ObjectError> {
        self.s3.delete_object().bucket(bucket).key(key).set_version_id(version_id.map(String::from)).send().await.map_err(object_error)?;
        Ok(())
    }

    /// Follows ListParts past 1,000 parts.
    async fn list_parts(&self, bucket: &str, key: &str, upload_id: &str) -> Result<Option<HashMap<u32, PartInS3>>, ObjectError> {
        let mut parts = HashMap::new();
        let mut marker: Option<String> = None;
        loop {
            let listed =
                self.s3.list_parts().bucket(bucket).key(key).upload_id(upload_id).set_part_number_marker(marker.clone()).send().await;
            let page = match listed {
                Ok(page) => page,
                Err(e) if e.code() == Some("NoSuchUpload") => return Ok(None),
                Err(e) => return Err(object_error(e)),
            };
            for part in page.parts() {
                let (Some(n), Some(size)) = (part.part_number, part.size) else { continue };
                let held = PartInS3 {
                    etag: part.e_tag.clone().unwrap_or_default(),
                    size: size as u64,
                    checksum_sha256: part.checksum_sha256.clone(),
                };
                parts.insert(n as u32, held);
            }
            match (page.is_truncated, page.next_part_number_marker) {
                (Some(true), Some(next)) if Some(&next) != marker.as_ref() => marker = Some(next),
                _ => return Ok(Some(parts)),
            }
        }
    }

    async fn multipart_open(&self, bucket: &str, key: &str, upload_id: &str) -> Result<bool, ObjectError> {
        match self.s3.list_parts().bucket(bucket).key(key).upload_id(upload_id).max_parts(1).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("NoSuchUpload") => Ok(false),
            Err(e) => Err(object_error(e)),
        }
    }

    async fn complete_multipart(&self, bucket: &str, key: &str, upload_id: &str, parts: &[CompletedPart]) -> Result<(), CompleteError> {
        use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart as S3Part};
        let parts: Vec<S3Part> = parts
            .iter()
            .map(|p| {
                S3Part::builder()
                    .part_number(p.part_number as i32)
                    .e_tag(format!("\"{}\"", crate::aws::bare_etag(&p.etag)))
                    .set_checksum_sha256(p.checksum_sha256.clone())
                    .build()
            })
            .collect();
        let completed = self
            .s3
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await;
        match completed {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.code(), Some("NoSuchUpload" | "InvalidPart" | "InvalidPartOrder" | "EntityTooSmall")) => {
                Err(CompleteError::Refused(describe(e)))
            }
            Err(e) => Err(CompleteError::Failed(describe(e))),
        }
    }

    async fn abort_multipart(&self, bucket: &str, key: &str, upload_id: &str) -> Result<(), ObjectError> {
        match self.s3.abort_multipart_upload().bucket(bucket).key(key).upload_id(upload_id).send().await {
            // Already aborted (or completed): nothing left to free.
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_upload()) => Ok(()),
            Err(e) => Err(object_error(e)),
            Ok(_) => Ok(()),
        }
    }
}

#[derive(Clone)]
pub struct SqsQueues {
    sqs: aws_sdk_sqs::Client,
}

impl SqsQueues {
    pub fn new(sqs: aws_sdk_sqs::Client) -> Self {
        Self { sqs }
    }
}

impl Queues for SqsQueues {
    async fn send(&self, queue_url: &str, body: &str) -> Result<(), QueueError> {
        self.sqs.send_message().queue_url(queue_url).message_body(body).send().await.map_err(|e| QueueError(describe(e)))?;
        Ok(())
    }

    async fn delay(&self, queue_url: &str, receipt_handle: &str, secs: u64) -> Result<(), QueueError> {
        let secs = i32::try_from(secs).unwrap_or(i32::MAX);
        self.sqs
            .change_message_visibility()
            .queue_url(queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(secs)
            .send()
            .await
            .map_err(|e| QueueError(describe(e)))?;
        Ok(())
    }
}
