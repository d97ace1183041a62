//! In-memory fakes of the ports (feature `test-support`), for unit tests of
//! the branchy use cases: they keep the adapters' semantics (conditional
//! stage moves, one charge per upload, NoSuchUpload, versions) and can be
//! told to fail an operation, or to run a racing request just before one.
//! A clone shares its state, as two clients of one table do.
//!
//! They stand in for the stores only in unit tests; what a user feels is
//! proven end to end on the local stack (`local/tests`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use uuid::Uuid;

use crate::domain::status::SessionStage;
use crate::ports::{
    ByteChunks, CompleteError, CompletedPart, ObjectError, ObjectHead, Objects, PartInS3, QueueError, Queues, Quota, Sessions,
};
use crate::quota::QuotaError;
use crate::sessions::{Judged, RecordedPart, StoreError, UploadSession};

type Hook<S> = Box<dyn FnOnce(&mut S) + Send>;

/// What every fake shares: its state, the operations told to fail, and
/// hooks run just before the next call of an operation.
struct Fake<S> {
    state: S,
    failing: HashSet<&'static str>,
    hooks: HashMap<&'static str, Hook<S>>,
}

impl<S: Default> Default for Fake<S> {
    fn default() -> Self {
        Self { state: S::default(), failing: HashSet::new(), hooks: HashMap::new() }
    }
}

struct Shared<S>(Arc<Mutex<Fake<S>>>);

impl<S> Clone for Shared<S> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<S: Default> Default for Shared<S> {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Fake::default())))
    }
}

impl<S> Shared<S> {
    fn lock(&self) -> MutexGuard<'_, Fake<S>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs the hook set for `op`, then answers the state, or `Err` if `op` is told to fail.
    fn enter(&self, op: &'static str) -> Result<MutexGuard<'_, Fake<S>>, String> {
        let mut fake = self.lock();
        if let Some(hook) = fake.hooks.remove(op) {
            hook(&mut fake.state);
        }
        if fake.failing.contains(op) { Err(format!("the fake's {op} is told to fail")) } else { Ok(fake) }
    }

    fn fail(&self, op: &'static str) {
        self.lock().failing.insert(op);
    }

    fn heal(&self, op: &'static str) {
        self.lock().failing.remove(op);
    }

    fn before_next(&self, op: &'static str, hook: impl FnOnce(&mut S) + Send + 'static) {
        self.lock().hooks.insert(op, Box::new(hook));
    }

    fn read<T>(&self, f: impl FnOnce(&S) -> T) -> T {
        f(&self.lock().state)
    }

    fn write<T>(&self, f: impl FnOnce(&mut S) -> T) -> T {
        f(&mut self.lock().state)
    }
}

macro_rules! fault_injection {
    ($fake:ty, $state:ty) => {
        impl $fake {
            /// Makes every call of `op` (a port method's name) fail until healed.
            pub fn fail(&self, op: &'static str) {
                self.0.fail(op)
            }

            pub fn heal(&self, op: &'static str) {
                self.0.heal(op)
            }

            /// Runs `hook` on the state just before the next call of `op`:
            /// a racing request that gets there first.
            pub fn before_next(&self, op: &'static str, hook: impl FnOnce(&mut $state) + Send + 'static) {
                self.0.before_next(op, hook)
            }

            pub fn read<T>(&self, f: impl FnOnce(&$state) -> T) -> T {
                self.0.read(f)
            }

            pub fn write<T>(&self, f: impl FnOnce(&mut $state) -> T) -> T {
                self.0.write(f)
            }
        }
    };
}

fn now() -> u64 {
    crate::auth::now_secs()
}

/// The session table.
#[derive(Default)]
pub struct SessionTable {
    pub sessions: HashMap<Uuid, UploadSession>,
    pub parts: HashMap<Uuid, BTreeMap<u32, RecordedPart>>,
    pub dead_lettered: HashSet<Uuid>,
}

#[derive(Clone, Default)]
pub struct MemorySessions(Shared<SessionTable>);
fault_injection!(MemorySessions, SessionTable);

impl MemorySessions {
    pub fn session(&self, file_id: Uuid) -> Option<UploadSession> {
        self.read(|t| t.sessions.get(&file_id).cloned())
    }

    pub fn stage(&self, file_id: Uuid) -> Option<SessionStage> {
        self.session(file_id).map(|s| s.stage)
    }

    pub fn insert(&self, session: UploadSession) {
        self.write(|t| t.sessions.insert(session.file_id, session));
    }

    fn enter(&self, op: &'static str) -> Result<MutexGuard<'_, Fake<SessionTable>>, StoreError> {
        self.0.enter(op).map_err(StoreError::Dynamo)
    }
}

/// Moves `file_id` from `from` to `to` if it is there: what a racing
/// request does to the table, for `before_next` hooks.
pub fn move_stage(table: &mut SessionTable, file_id: Uuid, from: SessionStage, to: SessionStage) -> bool {
    match table.sessions.get_mut(&file_id) {
        Some(session) if session.stage == from => {
            session.stage = to;
            session.stage_at = now();
            true
        }
        _ => false,
    }
}

impl Sessions for MemorySessions {
    async fn create(&self, session: &UploadSession) -> Result<(), StoreError> {
        let mut fake = self.enter("create")?;
        if fake.state.sessions.contains_key(&session.file_id) {
            return Err(StoreError::Dynamo("ConditionalCheckFailed: the session exists".into()));
        }
        fake.state.sessions.insert(session.file_id, session.clone());
        Ok(())
    }

    async fn get(&self, file_id: Uuid) -> Result<Option<UploadSession>, StoreError> {
        Ok(self.enter("get")?.state.sessions.get(&file_id).cloned())
    }

    async fn record_parts(&self, file_id: Uuid, parts: &[RecordedPart], _expires_at: u64) -> Result<u32, StoreError> {
        let mut fake = self.enter("record_parts")?;
        let table = &mut fake.state;
        let recorded = table.parts.entry(file_id).or_default();
        let new = parts.iter().filter(|p| recorded.insert(p.part_number, (*p).clone()).is_none()).count() as u32;
        let session = table.sessions.get_mut(&file_id).ok_or_else(|| StoreError::Dynamo("ConditionalCheckFailed: no session".into()))?;
        session.recorded_count += new;
        Ok(session.recorded_count)
    }

    async fn parts(&self, file_id: Uuid) -> Result<Vec<RecordedPart>, StoreError> {
        Ok(self.enter("parts")?.state.parts.get(&file_id).map(|p| p.values().cloned().collect()).unwrap_or_default())
    }

    async fn set_stage(&self, file_id: Uuid, from: SessionStage, to: SessionStage) -> Result<bool, StoreError> {
        Ok(move_stage(&mut self.enter("set_stage")?.state, file_id, from, to))
    }

    async fn record_judgement(&self, file_id: Uuid, version_id: Option<&str>, verdict: &str) -> Result<bool, StoreError> {
        let mut fake = self.enter("record_judgement")?;
        let Some(session) = fake.state.sessions.get_mut(&file_id) else { return Ok(false) };
        let judged_version = session.judged.as_ref().and_then(|j| j.version_id.clone());
        if let (Some(claimed), Some(this)) = (&judged_version, version_id)
            && claimed != this
        {
            return Ok(false);
        }
        session.judged = Some(Judged { version_id: version_id.map(String::from).or(judged_version), verdict: verdict.to_string() });
        Ok(true)
    }

    async fn mark_verdicts_stored(&self, file_ids: &[Uuid]) -> Result<(), StoreError> {
        let mut fake = self.enter("mark_verdicts_stored")?;
        for file_id in file_ids {
            if let Some(session) = fake.state.sessions.get_mut(file_id) {
                session.verdict_stored = true;
            }
        }
        Ok(())
    }

    async fn mark_verdict_dead_lettered(&self, file_id: Uuid) -> Result<(), StoreError> {
        let mut fake = self.enter("mark_verdict_dead_lettered")?;
        if fake.state.sessions.contains_key(&file_id) {
            fake.state.dead_lettered.insert(file_id);
        }
        Ok(())
    }

    async fn expired_open(&self, now: u64) -> Result<Vec<UploadSession>, StoreError> {
        let fake = self.enter("expired_open")?;
        Ok(fake.state.sessions.values().filter(|s| s.stage == SessionStage::Open && s.expires_at <= now).cloned().collect())
    }

    async fn unsettled(&self, cutoff: u64) -> Result<Vec<UploadSession>, StoreError> {
        let fake = self.enter("unsettled")?;
        let table = &fake.state;
        Ok(table
            .sessions
            .values()
            .filter(|s| {
                s.stage != SessionStage::Open && !s.verdict_stored && !table.dead_lettered.contains(&s.file_id) && s.stage_at <= cutoff
            })
            .cloned()
            .collect())
    }

    async fn touch(&self, file_id: Uuid) -> Result<(), StoreError> {
        let mut fake = self.enter("touch")?;
        let session = fake.state.sessions.get_mut(&file_id).ok_or_else(|| StoreError::Dynamo("the session item is gone".into()))?;
        session.stage_at = now();
        Ok(())
    }
}

/// The quota ledger: each upload's charge, by owner.
#[derive(Default)]
pub struct Charges {
    pub charges: HashMap<(Uuid, Uuid), u64>,
}

impl Charges {
    pub fn used(&self, owner: Uuid) -> u64 {
        self.charges.iter().filter(|((o, _), _)| *o == owner).map(|(_, size)| size).sum()
    }
}

#[derive(Clone, Default)]
pub struct MemoryQuota(Shared<Charges>);
fault_injection!(MemoryQuota, Charges);

impl MemoryQuota {
    pub fn used(&self, owner: Uuid) -> u64 {
        self.read(|c| c.used(owner))
    }

    pub fn charge_of(&self, owner: Uuid, file_id: Uuid) -> Option<u64> {
        self.read(|c| c.charges.get(&(owner, file_id)).copied())
    }

    fn enter(&self, op: &'static str) -> Result<MutexGuard<'_, Fake<Charges>>, QuotaError> {
        self.0.enter(op).map_err(QuotaError::Store)
    }
}

impl Quota for MemoryQuota {
    async fn charge(&self, owner: Uuid, file_id: Uuid, size: u64, limit: u64) -> Result<bool, QuotaError> {
        let mut fake = self.enter("charge")?;
        let charges = &mut fake.state;
        if charges.charges.contains_key(&(owner, file_id)) {
            return Ok(false);
        }
        let used = charges.used(owner);
        if used + size > limit {
            return Err(QuotaError::Exceeded { used, requested: size, limit });
        }
        charges.charges.insert((owner, file_id), size);
        Ok(true)
    }

    async fn resize(&self, owner: Uuid, file_id: Uuid, size: u64, limit: u64) -> Result<bool, QuotaError> {
        let mut fake = self.enter("resize")?;
        let charges = &mut fake.state;
        let Some(&held) = charges.charges.get(&(owner, file_id)) else { return Ok(false) };
        let others = charges.used(owner) - held;
        if size > held && others + size > limit {
            return Err(QuotaError::Exceeded { used: others + held, requested: size - held, limit });
        }
        charges.charges.insert((owner, file_id), size);
        Ok(true)
    }

    async fn release(&self, owner: Uuid, file_id: Uuid) -> Result<bool, QuotaError> {
        Ok(self.enter("release")?.state.charges.remove(&(owner, file_id)).is_some())
    }
}

/// One stored object version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub bytes: Vec<u8>,
    pub version_id: String,
    pub declared_type: Option<String>,
}

/// A multipart upload in progress.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenMultipart {
    pub key: String,
    /// Part number to its bytes.
    pub parts: BTreeMap<u32, Vec<u8>>,
}

/// The bucket: every version of every key (the last is current), and the
/// multipart uploads in progress by id.
#[derive(Default)]
pub struct Bucket {
    pub objects: HashMap<(String, String), Vec<StoredObject>>,
    pub multipart: HashMap<String, OpenMultipart>,
    /// CompleteMultipartUpload calls, in order (the upload ids).
    pub completions: Vec<String>,
    /// AbortMultipartUpload calls, in order (the upload ids).
    pub aborts: Vec<String>,
    next_version: u64,
}

fn etag_of(bytes: &[u8]) -> String {
    format!("\"{}\"", crate::domain::Sha256Checksum::of(bytes).as_str())
}

fn sha_of(bytes: &[u8]) -> String {
    crate::domain::Sha256Checksum::of(bytes).into_string()
}

impl Bucket {
    /// Stores a new current version of `key`; answers its version id.
    pub fn put(&mut self, bucket: &str, key: &str, bytes: Vec<u8>) -> String {
        self.next_version += 1;
        let version_id = format!("v{}", self.next_version);
        let object = StoredObject { bytes, version_id: version_id.clone(), declared_type: None };
        self.objects.entry((bucket.to_string(), key.to_string())).or_default().push(object);
        version_id
    }

    /// Starts a multipart upload; answers its id.
    pub fn create_multipart(&mut self, key: &str) -> String {
        let upload_id = format!("upload-{}", Uuid::new_v4().simple());
        self.multipart.insert(upload_id.clone(), OpenMultipart { key: key.to_string(), parts: BTreeMap::new() });
        upload_id
    }

    /// A part PUT; answers its ETag.
    pub fn upload_part(&mut self, upload_id: &str, part_number: u32, bytes: Vec<u8>) -> String {
        let etag = etag_of(&bytes);
        self.multipart.get_mut(upload_id).expect("an open multipart upload").parts.insert(part_number, bytes);
        etag
    }

    fn version(&self, bucket: &str, key: &str, version_id: Option<&str>) -> Option<&StoredObject> {
        let versions = self.objects.get(&(bucket.to_string(), key.to_string()))?;
        match version_id {
            Some(id) => versions.iter().find(|o| o.version_id == id),
            None => versions.last(),
        }
    }

    pub fn current(&self, bucket: &str, key: &str) -> Option<&StoredObject> {
        self.version(bucket, key, None)
    }
}

#[derive(Clone, Default)]
pub struct MemoryObjects(Shared<Bucket>);
fault_injection!(MemoryObjects, Bucket);

impl MemoryObjects {
    fn enter(&self, op: &'static str) -> Result<MutexGuard<'_, Fake<Bucket>>, ObjectError> {
        self.0.enter(op).map_err(ObjectError)
    }
}

/// An object's bytes from an offset, in chunks of 64 KiB.
pub struct MemoryChunks(Vec<u8>, usize);

impl ByteChunks for MemoryChunks {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, ObjectError>> {
        if self.1 >= self.0.len() {
            return None;
        }
        let end = (self.1 + 64 * 1024).min(self.0.len());
        let chunk = Bytes::copy_from_slice(&self.0[self.1..end]);
        self.1 = end;
        Some(Ok(chunk))
    }
}

impl Objects for MemoryObjects {
    type Chunks = MemoryChunks;

    async fn head(&self, bucket: &str, key: &str, version_id: Option<&str>) -> Result<Option<ObjectHead>, ObjectError> {
        let fake = self.enter("head")?;
        Ok(fake.state.version(bucket, key, version_id).map(|o| ObjectHead {
            size: o.bytes.len() as u64,
            etag: etag_of(&o.bytes),
            version_id: Some(o.version_id.clone()),
            declared_type: o.declared_type.clone(),
        }))
    }

    async fn exists(&self, bucket: &str, key: &str) -> Result<bool, ObjectError> {
        Ok(self.enter("exists")?.state.current(bucket, key).is_some())
    }

    async fn read_range(&self, bucket: &str, key: &str, version_id: Option<&str>, offset: u64, len: u64) -> Result<Vec<u8>, ObjectError> {
        let fake = self.enter("read_range")?;
        let object = fake.state.version(bucket, key, version_id).ok_or_else(|| ObjectError(format!("NoSuchKey: {key}")))?;
        let (start, end) = (offset as usize, (offset + len) as usize);
        object.bytes.get(start..end).map(<[u8]>::to_vec).ok_or_else(|| ObjectError(format!("InvalidRange: {start}-{end} of {key}")))
    }

    async fn read_from(&self, bucket: &str, key: &str, version_id: Option<&str>, offset: u64) -> Result<MemoryChunks, ObjectError> {
        let fake = self.enter("read_from")?;
        let object = fake.state.version(bucket, key, version_id).ok_or_else(|| ObjectError(format!("NoSuchKey: {key}")))?;
        Ok(MemoryChunks(object.bytes.clone(), offset as usize))
    }

    async fn delete(&self, bucket: &str, key: &str, version_id: Option<&str>) -> Result<(), ObjectError> {
        let mut fake = self.enter("delete")?;
        let entry = (bucket.to_string(), key.to_string());
        match version_id {
            Some(id) => {
                if let Some(versions) = fake.state.objects.get_mut(&entry) {
                    versions.retain(|o| o.version_id != id);
                }
            }
            None => {
                fake.state.objects.remove(&entry);
            }
        }
        Ok(())
    }

    async fn list_parts(&self, _bucket: &str, _key: &str, upload_id: &str) -> Result<Option<HashMap<u32, PartInS3>>, ObjectError> {
        let fake = self.enter("list_parts")?;
        Ok(fake.state.multipart.get(upload_id).map(|upload| {
            upload
                .parts
                .iter()
                .map(|(n, bytes)| (*n, PartInS3 { etag: etag_of(bytes), size: bytes.len() as u64, checksum_sha256: Some(sha_of(bytes)) }))
                .collect()
        }))
    }

    async fn multipart_open(&self, _bucket: &str, _key: &str, upload_id: &str) -> Result<bool, ObjectError> {
        Ok(self.enter("multipart_open")?.state.multipart.contains_key(upload_id))
    }

    async fn complete_multipart(&self, bucket: &str, key: &str, upload_id: &str, parts: &[CompletedPart]) -> Result<(), CompleteError> {
        let mut fake = self.0.enter("complete_multipart").map_err(CompleteError::Failed)?;
        let bucket_state = &mut fake.state;
        bucket_state.completions.push(upload_id.to_string());
        let Some(upload) = bucket_state.multipart.get(upload_id) else {
            return Err(CompleteError::Refused(format!("NoSuchUpload: {upload_id}")));
        };
        let mut bytes = Vec::new();
        for part in parts {
            match upload.parts.get(&part.part_number) {
                Some(held) if crate::aws::bare_etag(&etag_of(held)) == crate::aws::bare_etag(&part.etag) => bytes.extend_from_slice(held),
                _ => return Err(CompleteError::Refused(format!("InvalidPart: {}", part.part_number))),
            }
        }
        bucket_state.multipart.remove(upload_id);
        bucket_state.put(bucket, key, bytes);
        Ok(())
    }

    async fn abort_multipart(&self, _bucket: &str, _key: &str, upload_id: &str) -> Result<(), ObjectError> {
        let mut fake = self.enter("abort_multipart")?;
        fake.state.aborts.push(upload_id.to_string());
        fake.state.multipart.remove(upload_id);
        Ok(())
    }
}

/// Every queue: the messages sent to each, and the delays asked for.
#[derive(Default)]
pub struct Mailboxes {
    pub sent: Vec<(String, String)>,
    pub delays: Vec<(String, String, u64)>,
}

impl Mailboxes {
    /// The bodies sent to `queue_url`, in order.
    pub fn bodies(&self, queue_url: &str) -> Vec<String> {
        self.sent.iter().filter(|(url, _)| url == queue_url).map(|(_, body)| body.clone()).collect()
    }
}

#[derive(Clone, Default)]
pub struct MemoryQueues(Shared<Mailboxes>);
fault_injection!(MemoryQueues, Mailboxes);

impl MemoryQueues {
    pub fn bodies(&self, queue_url: &str) -> Vec<String> {
        self.read(|m| m.bodies(queue_url))
    }

    fn enter(&self, op: &'static str) -> Result<MutexGuard<'_, Fake<Mailboxes>>, QueueError> {
        self.0.enter(op).map_err(QueueError)
    }
}

impl Queues for MemoryQueues {
    async fn send(&self, queue_url: &str, body: &str) -> Result<(), QueueError> {
        self.enter("send")?.state.sent.push((queue_url.to_string(), body.to_string()));
        Ok(())
    }

    async fn delay(&self, queue_url: &str, receipt_handle: &str, secs: u64) -> Result<(), QueueError> {
        self.enter("delay")?.state.delays.push((queue_url.to_string(), receipt_handle.to_string(), secs));
        Ok(())
    }
}

/// An issuer and a verifier of tokens on the key pair in shared/testdata
/// (made for these tests; it signs nothing else).
pub fn test_tokens() -> (crate::auth::TokenIssuer, crate::auth::TokenVerifier) {
    let private = include_str!("../testdata/test-jwt-private.pem");
    let public = include_str!("../testdata/test-jwt-public.pem");
    let issuer = crate::auth::TokenIssuer::from_pem(private, "sluice-test", "sluice-test", 3600).expect("the test key");
    let verifier = crate::auth::TokenVerifier::from_pem(public, "sluice-test", "sluice-test").expect("the test key");
    (issuer, verifier)
}

/// events/NAME.json as API Gateway delivers it, for `file_id` and a token.
pub fn api_event(name: &str, file_id: Uuid, token: &str) -> lambda_http::Request {
    use crate::sample_events::{SAMPLE_FILE, SAMPLE_TOKEN, sample_event};
    let text = sample_event(name, &[(SAMPLE_FILE, &file_id.to_string()), (SAMPLE_TOKEN, token)]).expect("the sample event exists");
    lambda_http::request::from_str(&text).expect("the sample event parses")
}

/// The status and JSON body of a handler's response.
pub fn answer(response: &lambda_http::Response<lambda_http::Body>) -> (u16, serde_json::Value) {
    let body = match response.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap_or(serde_json::Value::Null),
        _ => serde_json::Value::Null,
    };
    (response.status().as_u16(), body)
}

/// An open session of `owner`'s: multipart (parts of 5 MiB) or a single
/// PUT, `size` bytes, expiring in an hour.
pub fn open_session(owner: Uuid, mode: crate::domain::UploadMode, size: u64, upload_id: &str) -> UploadSession {
    let file_id = Uuid::new_v4();
    let now = now();
    let plan = crate::domain::PartPlan::choose(size, u64::MAX, crate::domain::MIB * 8, Some(mode)).expect("a plan for this size").1;
    UploadSession {
        file_id,
        owner_id: owner,
        key: format!("uploads/{owner}/{file_id}/picture.png"),
        upload_id: upload_id.to_string(),
        file_name: "picture.png".into(),
        declared_type: "image/png".into(),
        mode,
        plan,
        sha256: None,
        stage: SessionStage::Open,
        recorded_count: 0,
        created_at: now,
        expires_at: now + 3600,
        stage_at: now,
        judged: None,
        verdict_stored: false,
    }
}
