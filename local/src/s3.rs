//! The local S3: s3s-fs over a folder, behind s3s's SigV4 verification
//! (signatures, presigned-URL expiry, signed Content-Length), wrapped to add
//! what s3s-fs lacks: ObjectCreated notifications, part ETags and pagination
//! in ListParts, ListMultipartUploads, NoSuchUpload for unknown upload ids,
//! and bucket versioning (see `versions`).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt;
use sha2::{Digest, Sha256};

use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};
use s3s_fs::FileSystem;
use tokio::sync::mpsc::UnboundedSender;

use crate::versions::Versions;

/// An object that was just created, as S3 would notify it.
#[derive(Debug, Clone)]
pub struct ObjectCreated {
    pub event_name: &'static str,
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub etag: String,
    /// In a versioned bucket, the version this write made.
    pub version_id: Option<String>,
}

/// What tests and benchmarks see of the local S3's traffic: how many
/// UploadPart requests arrived for each part number, failures to inject
/// (the next N requests for a part number answer 500, as S3 sometimes does;
/// a completion whose answer is lost; a notification that never arrives),
/// and how many GetObject requests and body bytes each key served.
#[derive(Default)]
pub struct S3Probe {
    puts: Mutex<HashMap<i32, u32>>,
    failures: Mutex<HashMap<i32, u32>>,
    lost_complete_answers: Mutex<u32>,
    lost_events: Mutex<u32>,
    reads: Arc<Mutex<HashMap<String, ObjectReads>>>,
}

/// GetObject traffic of one key: requests, and body bytes actually sent.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ObjectReads {
    pub requests: u32,
    pub bytes: u64,
}

impl S3Probe {
    pub fn reads_of(&self, key: &str) -> ObjectReads {
        self.reads.lock().unwrap().get(key).copied().unwrap_or_default()
    }

    /// Counts the body's bytes as they leave, so a client that stops
    /// reading early is charged only what it took.
    fn counted(&self, key: &str, body: StreamingBlob) -> StreamingBlob {
        let (reads, key) = (self.reads.clone(), key.to_string());
        reads.lock().unwrap().entry(key.clone()).or_default().requests += 1;
        StreamingBlob::wrap(body.map(move |chunk| {
            if let Ok(bytes) = &chunk {
                reads.lock().unwrap().entry(key.clone()).or_default().bytes += bytes.len() as u64;
            }
            chunk.map_err(|e| std::io::Error::other(e.to_string()))
        }))
    }

    /// UploadPart requests so far, for every part number together.
    pub fn total_puts(&self) -> u32 {
        self.puts.lock().unwrap().values().sum()
    }

    pub fn puts_of(&self, part_number: i32) -> u32 {
        self.puts.lock().unwrap().get(&part_number).copied().unwrap_or_default()
    }

    pub fn fail_next(&self, part_number: i32, times: u32) {
        self.failures.lock().unwrap().insert(part_number, times);
    }

    /// The next CompleteMultipartUpload completes the upload, then answers
    /// 500 as if the answer were lost on its way back.
    pub fn lose_next_complete_answer(&self) {
        *self.lost_complete_answers.lock().unwrap() += 1;
    }

    /// The next ObjectCreated notification is never delivered, as when an
    /// S3 event is lost on its way to inspect.
    pub fn lose_next_event(&self) {
        *self.lost_events.lock().unwrap() += 1;
    }

    fn take_lost_event(&self) -> bool {
        let mut left = self.lost_events.lock().unwrap();
        let lose = *left > 0;
        *left = left.saturating_sub(1);
        lose
    }

    fn take_lost_complete_answer(&self) -> bool {
        let mut left = self.lost_complete_answers.lock().unwrap();
        let lose = *left > 0;
        *left = left.saturating_sub(1);
        lose
    }

    /// Counts a request; answers whether it must fail.
    fn arrived(&self, part_number: i32) -> bool {
        *self.puts.lock().unwrap().entry(part_number).or_default() += 1;
        let mut failures = self.failures.lock().unwrap();
        match failures.get_mut(&part_number) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        }
    }
}

pub struct LocalS3 {
    fs: FileSystem,
    pub probe: Arc<S3Probe>,
    root: PathBuf,
    notify: UnboundedSender<ObjectCreated>,
    /// The multipart uploads in progress, by upload id.
    uploads: Mutex<HashMap<String, InProgress>>,
    /// internal key → the key clients use (see the module comment).
    keys: Mutex<HashMap<String, String>>,
    versions: Mutex<Versions>,
    /// Held across a write to a versioned bucket and the version it makes,
    /// so two PUTs to one key cannot swap their bytes between versions.
    version_writes: tokio::sync::Mutex<()>,
}

const KEY_INDEX: &str = ".sluice-keys.jsonl";

fn key_digest(key: &str) -> String {
    Sha256::digest(key.as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The short key s3s-fs stores an object under.
fn internal_key(key: &str) -> String {
    format!("o/{}", key_digest(key))
}

/// Where one version of a key is kept, in a versioned bucket.
fn version_key(key: &str, version_id: &str) -> String {
    format!("v/{}-{version_id}", key_digest(key))
}

struct InProgress {
    bucket: String,
    key: String,
    /// part number → what S3 answered each UploadPart with.
    parts: BTreeMap<i32, HeldPart>,
}

#[derive(Clone)]
struct HeldPart {
    etag: String,
    sha256: String,
    size: i64,
}

/// S3 refuses to complete an upload any of whose parts but the last is
/// smaller than this (EntityTooSmall).
const MIN_PART_SIZE: i64 = 5 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("the body's SHA-256 {actual} differs from x-amz-checksum-sha256 {expected}")]
struct ChecksumMismatch {
    expected: String,
    actual: String,
}

/// A request body routed through `hashed`, and what its SHA-256 turned out to be.
struct BodyDigest {
    expected: Option<String>,
    actual: Arc<Mutex<Option<String>>>,
}

impl BodyDigest {
    fn check(body: &mut Option<StreamingBlob>, expected: Option<String>) -> Self {
        let actual = Arc::new(Mutex::new(None));
        *body = body.take().map(|b| hashed(b, expected.clone(), actual.clone()));
        Self { expected, actual }
    }

    /// The body's SHA-256 (base64), once it has been read.
    fn sha256(&self) -> Option<String> {
        self.actual.lock().unwrap().clone()
    }

    /// BadDigest, as S3 words it, when the body's SHA-256 is not the
    /// declared one; otherwise what s3s-fs answered.
    fn settle<T>(&self, result: S3Result<T>) -> S3Result<T> {
        match (&self.expected, self.sha256()) {
            (Some(expected), Some(actual)) if actual != *expected => {
                Err(s3_error!(BadDigest, "The SHA256 you specified ({expected}) did not match the calculated checksum."))
            }
            _ => result,
        }
    }
}

/// Passes the body through, hashing it; when `expected` is given and the
/// bytes differ, ends with an error instead, so s3s-fs never keeps the part.
fn hashed(body: StreamingBlob, expected: Option<String>, digest: Arc<Mutex<Option<String>>>) -> StreamingBlob {
    let hasher = Arc::new(Mutex::new(Sha256::new()));
    let feed = hasher.clone();
    let bytes = body.map(move |chunk| {
        if let Ok(b) = &chunk {
            feed.lock().unwrap().update(b);
        }
        chunk.map_err(|e| std::io::Error::other(e.to_string()))
    });
    let end = futures::stream::once(async move {
        let actual = STANDARD.encode(std::mem::take(&mut *hasher.lock().unwrap()).finalize());
        *digest.lock().unwrap() = Some(actual.clone());
        match expected {
            Some(expected) if expected != actual => Some(Err(std::io::Error::other(ChecksumMismatch { expected, actual }))),
            _ => None,
        }
    })
    .filter_map(|item| async move { item });
    StreamingBlob::wrap(bytes.chain(end))
}

impl LocalS3 {
    pub fn new(root: PathBuf, notify: UnboundedSender<ObjectCreated>) -> std::io::Result<Self> {
        std::fs::create_dir_all(&root)?;
        let fs = FileSystem::new(&root).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        let keys = std::fs::read_to_string(root.join(KEY_INDEX))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str::<(String, String)>(line).ok())
            .collect();
        let versions = Mutex::new(Versions::open(&root));
        Ok(Self {
            fs,
            probe: Arc::default(),
            root,
            notify,
            uploads: Mutex::new(HashMap::new()),
            keys: Mutex::new(keys),
            versions,
            version_writes: tokio::sync::Mutex::new(()),
        })
    }

    /// The internal key for `key`, recorded so listings can give `key` back.
    fn store_as(&self, key: &str) -> String {
        let internal = internal_key(key);
        let mut keys = self.keys.lock().unwrap();
        if !keys.contains_key(&internal) {
            use std::io::Write;
            let line = serde_json::to_string(&(&internal, key)).unwrap_or_default();
            let index = std::fs::OpenOptions::new().create(true).append(true).open(self.root.join(KEY_INDEX));
            if let Ok(mut index) = index {
                let _ = writeln!(index, "{line}");
            }
            keys.insert(internal.clone(), key.to_string());
        }
        internal
    }

    /// In a versioned bucket, records what was just written as a new
    /// version of `key` and answers its id.
    fn new_version(&self, bucket: &str, key: &str) -> S3Result<Option<String>> {
        let mut versions = self.versions.lock().unwrap();
        if !versions.is_enabled(bucket) {
            return Ok(None);
        }
        let id = versions
            .snapshot(bucket, key, &internal_key(key), |id| version_key(key, id))
            .map_err(|e| s3_error!(InternalError, "keeping the version: {e}"))?;
        Ok(Some(id))
    }

    /// The stored key a read names: the version asked for, or the current
    /// object; and the version id to answer with.
    fn read_key(&self, bucket: &str, key: &str, version_id: Option<&str>) -> S3Result<(String, Option<String>)> {
        let versions = self.versions.lock().unwrap();
        match version_id.filter(|v| *v != "null") {
            Some(id) if versions.has(bucket, key, id) => Ok((version_key(key, id), Some(id.to_string()))),
            Some(_) => Err(s3_error!(NoSuchVersion, "The specified version does not exist.")),
            None => Ok((internal_key(key), versions.current(bucket, key))),
        }
    }

    fn emit(&self, event_name: &'static str, bucket: &str, key: &str, etag: Option<&ETag>, version_id: Option<String>) {
        if self.probe.take_lost_event() {
            return;
        }
        let size = std::fs::metadata(self.root.join(bucket).join(internal_key(key))).map(|m| m.len()).unwrap_or_default();
        let etag = etag.map(|e| e.value().to_string()).unwrap_or_default();
        let _ = self.notify.send(ObjectCreated { event_name, bucket: bucket.to_string(), key: key.to_string(), size, etag, version_id });
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

    /// Every object under the prefix, by the keys clients gave (unpaginated:
    /// a local bucket is small).
    async fn list_objects_v2(&self, mut req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
        let prefix = req.input.prefix.take().unwrap_or_default();
        req.input.max_keys = None;
        let mut out = self.fs.list_objects_v2(req).await?;
        let keys = self.keys.lock().unwrap();
        let mut contents: Vec<Object> = out.output.contents.take().unwrap_or_default();
        for object in &mut contents {
            object.key = object.key.as_ref().and_then(|k| keys.get(k)).cloned();
        }
        contents.retain(|o| o.key.as_ref().is_some_and(|k| k.starts_with(&prefix)));
        contents.sort_by(|a, b| a.key.cmp(&b.key));
        out.output.key_count = Some(contents.len() as i32);
        out.output.contents = Some(contents);
        out.output.prefix = Some(prefix);
        out.output.is_truncated = Some(false);
        Ok(out)
    }

    /// s3s-fs compares the SHA-256 only after it has replaced the object;
    /// S3 refuses first and keeps what was there, so the body is checked on
    /// its way in.
    async fn put_object(&self, mut req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        req.input.key = self.store_as(&key);
        let digest = BodyDigest::check(&mut req.input.body, req.input.checksum_sha256.clone());
        let _writing = self.version_writes.lock().await;
        let mut out = digest.settle(self.fs.put_object(req).await)?;
        out.output.version_id = self.new_version(&bucket, &key)?;
        self.emit("ObjectCreated:Put", &bucket, &key, out.output.e_tag.as_ref(), out.output.version_id.clone());
        Ok(out)
    }

    /// Honours `response-content-disposition` (a signed query parameter of
    /// download URLs) as S3 does; s3s-fs ignores it.
    async fn get_object(&self, mut req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        let key = std::mem::take(&mut req.input.key);
        let (stored, version_id) = self.read_key(&req.input.bucket, &key, req.input.version_id.as_deref())?;
        req.input.key = stored;
        let disposition = req.input.response_content_disposition.clone();
        let mut out = self.fs.get_object(req).await?;
        if disposition.is_some() {
            out.output.content_disposition = disposition;
        }
        out.output.version_id = version_id;
        out.output.body = out.output.body.take().map(|body| self.probe.counted(&key, body));
        Ok(out)
    }

    async fn head_object(&self, mut req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        let (stored, version_id) = self.read_key(&req.input.bucket, &req.input.key, req.input.version_id.as_deref())?;
        req.input.key = stored;
        let mut out = self.fs.head_object(req).await?;
        out.output.version_id = version_id;
        Ok(out)
    }

    /// In a versioned bucket: by version id, that version goes (the previous
    /// one becomes current if it was current); without, a delete marker.
    async fn delete_object(&self, mut req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), std::mem::take(&mut req.input.key));
        let stored = internal_key(&key);
        let version_id = req.input.version_id.clone().filter(|v| v != "null");
        let output = {
            let mut versions = self.versions.lock().unwrap();
            match (versions.is_enabled(&bucket), version_id) {
                (false, _) => None,
                (true, Some(id)) => {
                    versions
                        .remove(&bucket, &key, &id, &stored, |v| version_key(&key, v))
                        .map_err(|e| s3_error!(InternalError, "removing the version: {e}"))?;
                    Some(DeleteObjectOutput { version_id: Some(id), ..Default::default() })
                }
                (true, None) => {
                    versions.mark_deleted(&bucket, &key);
                    None
                }
            }
        };
        if let Some(output) = output {
            return Ok(S3Response::new(output));
        }
        let marker = self.versions.lock().unwrap().is_enabled(&bucket);
        req.input.key = stored;
        let mut out = self.fs.delete_object(req).await?;
        if marker {
            out.output.delete_marker = Some(true);
        }
        Ok(out)
    }

    async fn put_bucket_versioning(&self, req: S3Request<PutBucketVersioningInput>) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        let enabled = req.input.versioning_configuration.status.as_ref().is_some_and(|s| s.as_str() == BucketVersioningStatus::ENABLED);
        self.versions.lock().unwrap().set_enabled(&req.input.bucket, enabled);
        Ok(S3Response::new(PutBucketVersioningOutput::default()))
    }

    async fn get_bucket_versioning(&self, req: S3Request<GetBucketVersioningInput>) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        let enabled = self.versions.lock().unwrap().is_enabled(&req.input.bucket);
        let status = enabled.then(|| BucketVersioningStatus::from_static(BucketVersioningStatus::ENABLED));
        Ok(S3Response::new(GetBucketVersioningOutput { status, ..Default::default() }))
    }

    async fn create_multipart_upload(
        &self,
        mut req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        req.input.key = self.store_as(&key);
        let mut out = self.fs.create_multipart_upload(req).await?;
        out.output.key = Some(key.clone());
        if let Some(id) = &out.output.upload_id {
            self.uploads.lock().unwrap().insert(id.clone(), InProgress { bucket, key, parts: BTreeMap::new() });
        }
        Ok(out)
    }

    async fn upload_part(&self, mut req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        let (upload_id, part_number, size) = (req.input.upload_id.clone(), req.input.part_number, req.input.content_length.unwrap_or(0));
        if self.probe.arrived(part_number) {
            return Err(s3s::s3_error!(InternalError, "injected failure of part {part_number}"));
        }
        self.known_upload(&upload_id)?;
        req.input.key = internal_key(&req.input.key);
        let digest = BodyDigest::check(&mut req.input.body, req.input.checksum_sha256.clone());
        let mut out = digest.settle(self.fs.upload_part(req).await)?;
        let sha256 = digest.sha256().unwrap_or_default();
        if let (Some(etag), Some(upload)) = (&out.output.e_tag, self.uploads.lock().unwrap().get_mut(&upload_id)) {
            upload.parts.insert(part_number, HeldPart { etag: etag.value().to_string(), sha256: sha256.clone(), size });
        }
        out.output.checksum_sha256 = Some(sha256);
        Ok(out)
    }

    /// Sorted, with ETags, paginated by `max-parts` / `part-number-marker` as S3 does.
    async fn list_parts(&self, mut req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        let upload_id = req.input.upload_id.clone();
        self.known_upload(&upload_id)?;
        let key = std::mem::take(&mut req.input.key);
        req.input.key = internal_key(&key);
        let max = req.input.max_parts.unwrap_or(1000).clamp(1, 1000) as usize;
        let marker = req.input.part_number_marker.unwrap_or(0);
        let mut out = self.fs.list_parts(req).await?;
        let held = self.uploads.lock().unwrap().get(&upload_id).map(|u| u.parts.clone()).unwrap_or_default();
        let mut parts: Vec<Part> = out.output.parts.take().unwrap_or_default();
        parts.retain(|p| p.part_number.unwrap_or(0) > marker);
        parts.sort_by_key(|p| p.part_number);
        let truncated = parts.len() > max;
        parts.truncate(max);
        for part in &mut parts {
            if let Some(held) = part.part_number.and_then(|n| held.get(&n)) {
                part.e_tag = Some(ETag::Strong(held.etag.clone()));
                part.checksum_sha256 = Some(held.sha256.clone());
            }
        }
        out.output.is_truncated = Some(truncated);
        out.output.max_parts = Some(max as i32);
        out.output.part_number_marker = Some(marker);
        out.output.next_part_number_marker = parts.last().and_then(|p| p.part_number).filter(|_| truncated);
        out.output.parts = Some(parts);
        out.output.key = Some(key);
        Ok(out)
    }

    async fn complete_multipart_upload(
        &self,
        mut req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let (bucket, key, upload_id) = (req.input.bucket.clone(), req.input.key.clone(), req.input.upload_id.clone());
        self.known_upload(&upload_id)?;
        req.input.key = internal_key(&key);
        // S3 refuses parts whose ETag (or SHA-256, when given) differs from
        // the one it holds; s3s-fs does not check.
        let held = self.uploads.lock().unwrap().get(&upload_id).map(|u| u.parts.clone()).unwrap_or_default();
        let listed: Vec<_> = req.input.multipart_upload.iter().flat_map(|m| m.parts.iter().flatten()).collect();
        for (i, part) in listed.iter().enumerate() {
            let size = part.part_number.and_then(|n| held.get(&n)).map_or(0, |h| h.size);
            if i + 1 < listed.len() && size < MIN_PART_SIZE {
                return Err(s3_error!(
                    EntityTooSmall,
                    "part {} is {size} bytes; every part but the last must be at least {MIN_PART_SIZE}",
                    part.part_number.unwrap_or(0)
                ));
            }
        }
        for part in req.input.multipart_upload.iter().flat_map(|m| m.parts.iter().flatten()) {
            let given = part.e_tag.as_ref().map(|e| e.value().trim_matches('"').to_string());
            let n = part.part_number.unwrap_or(0);
            let held = held.get(&n);
            if held.map(|h| h.etag.trim_matches('"').to_string()) != given {
                return Err(s3_error!(InvalidPart, "part {n} was not uploaded or its ETag does not match"));
            }
            if part.checksum_sha256.is_some() && held.map(|h| &h.sha256) != part.checksum_sha256.as_ref() {
                return Err(s3_error!(InvalidPart, "part {n}'s SHA-256 does not match"));
            }
        }
        let _writing = self.version_writes.lock().await;
        let mut out = self.fs.complete_multipart_upload(req).await?;
        // Resolve s3s-fs's keep-alive future here so the event carries the ETag.
        if let Some(future) = out.output.future.take() {
            let done = future.await?;
            out.output.e_tag = done.e_tag;
            out.output.bucket = done.bucket;
        }
        out.output.key = Some(key.clone());
        self.uploads.lock().unwrap().remove(&upload_id);
        out.output.version_id = self.new_version(&bucket, &key)?;
        self.emit("ObjectCreated:CompleteMultipartUpload", &bucket, &key, out.output.e_tag.as_ref(), out.output.version_id.clone());
        if self.probe.take_lost_complete_answer() {
            return Err(s3s::s3_error!(InternalError, "injected: the upload was completed and the answer lost"));
        }
        Ok(out)
    }

    async fn abort_multipart_upload(
        &self,
        mut req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let upload_id = req.input.upload_id.clone();
        self.known_upload(&upload_id)?;
        req.input.key = internal_key(&req.input.key);
        let out = self.fs.abort_multipart_upload(req).await?;
        self.uploads.lock().unwrap().remove(&upload_id);
        Ok(out)
    }

    /// The uploads in progress in a bucket (under `prefix`), so a test can
    /// prove that cancelled and expired uploads leave nothing behind.
    async fn list_multipart_uploads(&self, req: S3Request<ListMultipartUploadsInput>) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
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
