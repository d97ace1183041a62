//! The local S3: s3s-fs over a folder, behind s3s's SigV4 verification
//! (signatures, presigned-URL expiry, signed Content-Length), wrapped to add
//! what s3s-fs lacks: ObjectCreated notifications, part ETags and pagination
//! in ListParts, ListMultipartUploads, and NoSuchUpload for unknown upload ids.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;

use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};
use s3s_fs::FileSystem;
use tokio::sync::mpsc::UnboundedSender;

/// An object that was just created, as S3 would notify it.
#[derive(Debug, Clone)]
pub struct ObjectCreated {
    pub event_name: &'static str,
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub etag: String,
}

pub struct LocalS3 {
    fs: FileSystem,
    root: PathBuf,
    notify: UnboundedSender<ObjectCreated>,
    /// The multipart uploads in progress, by upload id.
    uploads: Mutex<HashMap<String, InProgress>>,
}

struct InProgress {
    bucket: String,
    key: String,
    /// part number → ETag, as S3 answered each UploadPart.
    parts: BTreeMap<i32, String>,
}

impl LocalS3 {
    pub fn new(root: PathBuf, notify: UnboundedSender<ObjectCreated>) -> std::io::Result<Self> {
        std::fs::create_dir_all(&root)?;
        let fs = FileSystem::new(&root).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        Ok(Self { fs, root, notify, uploads: Mutex::new(HashMap::new()) })
    }

    fn emit(&self, event_name: &'static str, bucket: &str, key: &str, etag: Option<&ETag>) {
        let size = std::fs::metadata(self.root.join(bucket).join(key)).map(|m| m.len()).unwrap_or_default();
        let etag = etag.map(|e| e.value().to_string()).unwrap_or_default();
        let _ = self.notify.send(ObjectCreated {
            event_name,
            bucket: bucket.to_string(),
            key: key.to_string(),
            size,
            etag,
        });
    }

    fn known_upload(&self, upload_id: &str) -> S3Result<()> {
        if self.uploads.lock().unwrap().contains_key(upload_id) {
            Ok(())
        } else {
            Err(s3_error!(NoSuchUpload, "The specified upload does not exist"))
        }
    }
}

#[async_trait::async_trait]
impl S3 for LocalS3 {
    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
        self.fs.create_bucket(req).await
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        self.fs.head_bucket(req).await
    }

    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.fs.list_objects_v2(req).await
    }

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let out = self.fs.put_object(req).await?;
        self.emit("ObjectCreated:Put", &bucket, &key, out.output.e_tag.as_ref());
        Ok(out)
    }

    /// Honours `response-content-disposition` (a signed query parameter of
    /// download URLs) as S3 does; s3s-fs ignores it.
    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        let disposition = req.input.response_content_disposition.clone();
        let mut out = self.fs.get_object(req).await?;
        if disposition.is_some() {
            out.output.content_disposition = disposition;
        }
        Ok(out)
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        self.fs.head_object(req).await
    }

    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.fs.delete_object(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let out = self.fs.create_multipart_upload(req).await?;
        if let Some(id) = &out.output.upload_id {
            self.uploads.lock().unwrap().insert(id.clone(), InProgress { bucket, key, parts: BTreeMap::new() });
        }
        Ok(out)
    }

    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        let (upload_id, part_number) = (req.input.upload_id.clone(), req.input.part_number);
        self.known_upload(&upload_id)?;
        let out = self.fs.upload_part(req).await?;
        if let (Some(etag), Some(upload)) = (&out.output.e_tag, self.uploads.lock().unwrap().get_mut(&upload_id)) {
            upload.parts.insert(part_number, etag.value().to_string());
        }
        Ok(out)
    }

    /// Sorted, with ETags, paginated by `max-parts` / `part-number-marker` as S3 does.
    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        let upload_id = req.input.upload_id.clone();
        self.known_upload(&upload_id)?;
        let max = req.input.max_parts.unwrap_or(1000).clamp(1, 1000) as usize;
        let marker = req.input.part_number_marker.unwrap_or(0);
        let mut out = self.fs.list_parts(req).await?;
        let etags = self.uploads.lock().unwrap().get(&upload_id).map(|u| u.parts.clone()).unwrap_or_default();
        let mut parts: Vec<Part> = out.output.parts.take().unwrap_or_default();
        parts.retain(|p| p.part_number.unwrap_or(0) > marker);
        parts.sort_by_key(|p| p.part_number);
        let truncated = parts.len() > max;
        parts.truncate(max);
        for part in &mut parts {
            if let Some(etag) = part.part_number.and_then(|n| etags.get(&n)) {
                part.e_tag = Some(ETag::Strong(etag.clone()));
            }
        }
        out.output.is_truncated = Some(truncated);
        out.output.max_parts = Some(max as i32);
        out.output.part_number_marker = Some(marker);
        out.output.next_part_number_marker = parts.last().and_then(|p| p.part_number).filter(|_| truncated);
        out.output.parts = Some(parts);
        Ok(out)
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let (bucket, key, upload_id) = (req.input.bucket.clone(), req.input.key.clone(), req.input.upload_id.clone());
        self.known_upload(&upload_id)?;
        // S3 refuses parts whose ETag differs from the one it holds; s3s-fs does not check.
        let held = self.uploads.lock().unwrap().get(&upload_id).map(|u| u.parts.clone()).unwrap_or_default();
        for part in req.input.multipart_upload.iter().flat_map(|m| m.parts.iter().flatten()) {
            let given = part.e_tag.as_ref().map(|e| e.value().trim_matches('"').to_string());
            let n = part.part_number.unwrap_or(0);
            if held.get(&n).map(|e| e.trim_matches('"').to_string()) != given {
                return Err(s3_error!(InvalidPart, "part {n} was not uploaded or its ETag does not match"));
            }
        }
        let mut out = self.fs.complete_multipart_upload(req).await?;
        // Resolve s3s-fs's keep-alive future here so the event carries the ETag.
        if let Some(future) = out.output.future.take() {
            let done = future.await?;
            out.output.e_tag = done.e_tag;
            out.output.bucket = done.bucket;
            out.output.key = done.key;
        }
        self.uploads.lock().unwrap().remove(&upload_id);
        self.emit("ObjectCreated:CompleteMultipartUpload", &bucket, &key, out.output.e_tag.as_ref());
        Ok(out)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let upload_id = req.input.upload_id.clone();
        self.known_upload(&upload_id)?;
        let out = self.fs.abort_multipart_upload(req).await?;
        self.uploads.lock().unwrap().remove(&upload_id);
        Ok(out)
    }

    /// The uploads in progress in a bucket (under `prefix`), so a test can
    /// prove that cancelled and expired uploads leave nothing behind.
    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let input = req.input;
        let prefix = input.prefix.clone().unwrap_or_default();
        let mut uploads: Vec<MultipartUpload> = self
            .uploads
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, u)| u.bucket == input.bucket && u.key.starts_with(&prefix))
            .map(|(id, u)| MultipartUpload { key: Some(u.key.clone()), upload_id: Some(id.clone()), ..Default::default() })
            .collect();
        uploads.sort_by(|a, b| (&a.key, &a.upload_id).cmp(&(&b.key, &b.upload_id)));
        let output = ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix,
            is_truncated: Some(false),
            uploads: Some(uploads),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }
}
