//! S3 `ObjectCreated:*` on `uploads/`: reads the object's structure with
//! bounded ranged GETs (the head, then what the format's validator asks for:
//! at most 3 reads and 1 MiB whatever the size; a PDF is streamed through
//! its scanner in constant memory), all naming the object version the event
//! names, and decides what it really is. The verdict is kept with the
//! session (claiming that version as the file), sent to SQS, and only then
//! is a refused object removed (giving its bytes back to the owner's
//! quota), so a retry after any failure sends one. Without a verdict:
//! - an object whose upload was cancelled or expired before it landed (a
//!   late single PUT) is removed: the FAILED verdict was already sent;
//! - a later version of a judged upload (a replayed single-PUT URL) is
//!   removed; the judged version, its verdict and its charge stay.

use aws_lambda_events::s3::{S3Event, S3EventRecord};
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;
use sluice_shared::adapters::{S3Objects, SqsQueues};
use sluice_shared::auth::now_secs;
use sluice_shared::aws::{Clients, bare_etag};
use sluice_shared::config::{ConfigError, Env, InspectSettings, UploadSettings};
use sluice_shared::domain::status::SessionStage;
use sluice_shared::domain::{FileName, FileStatus, TypePolicy, UploadMode, Verdict};
use sluice_shared::inspection::{self, Checked, HEAD_BYTES, Step, Window, pdf::PdfScanner};
use sluice_shared::messages::VerdictMessage;
use sluice_shared::ports::{ByteChunks, Objects, Queues, Quota, Sessions};
use sluice_shared::quota::QuotaLedger;
use sluice_shared::sessions::{SessionStore, UploadSession};
use uuid::Uuid;

/// The function's dependencies: its ports (AWS adapters by default, fakes
/// in unit tests), the type policy and the settings.
pub struct Inspect<S = SessionStore, O = S3Objects, Q = SqsQueues, L = QuotaLedger> {
    pub objects: O,
    pub queues: Q,
    pub sessions: S,
    pub quota: L,
    pub policy: TypePolicy,
    pub settings: InspectSettings,
}

impl Inspect {
    pub fn from_env(env: &Env, clients: &Clients) -> Result<Self, ConfigError> {
        let upload = UploadSettings::from_env(env)?;
        Ok(Self {
            objects: S3Objects::new(clients.s3()),
            queues: SqsQueues::new(clients.sqs()),
            sessions: SessionStore::new(clients.dynamodb(), &upload.sessions_table),
            quota: QuotaLedger::new(clients.dynamodb(), &upload.sessions_table),
            policy: upload.allowed_types,
            settings: InspectSettings::from_env(env)?,
        })
    }
}

/// Takes raw JSON: S3 also sends `s3:TestEvent`, which is no S3Event.
pub async fn handle<S: Sessions, O: Objects, Q: Queues, L: Quota>(
    deps: &Inspect<S, O, Q, L>,
    event: LambdaEvent<Value>,
) -> Result<(), Error> {
    if event.payload.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        tracing::info!("s3:TestEvent ignored");
        return Ok(());
    }
    let event: S3Event = serde_json::from_value(event.payload)?;
    for record in &event.records {
        deps.inspect_record(record).await?;
    }
    Ok(())
}

/// The owner and the file a key `uploads/{userId}/{fileId}/{name}` names.
pub fn owner_and_file(key: &str) -> Option<(Uuid, Uuid)> {
    let mut parts = key.strip_prefix("uploads/")?.splitn(3, '/');
    let owner = Uuid::parse_str(parts.next()?).ok()?;
    let file = Uuid::parse_str(parts.next()?).ok()?;
    parts.next().filter(|name| !name.is_empty())?;
    Some((owner, file))
}

/// Keys arrive URL-encoded with `+` for space.
pub fn decode_key(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

impl<S: Sessions, O: Objects, Q: Queues, L: Quota> Inspect<S, O, Q, L> {
    async fn inspect_record(&self, record: &S3EventRecord) -> Result<(), Error> {
        let name = record.event_name.as_deref().unwrap_or_default();
        let (Some(bucket), Some(raw_key)) = (record.s3.bucket.name.as_deref(), record.s3.object.key.as_deref()) else {
            tracing::warn!(name, "record without bucket or key ignored");
            return Ok(());
        };
        let key = decode_key(raw_key);
        if !name.starts_with("ObjectCreated") || !key.starts_with("uploads/") {
            tracing::info!(name, key, "not an upload; ignored");
            return Ok(());
        }
        let version_id = record.s3.object.version_id.clone().filter(|v| !v.is_empty() && v != "null");
        self.inspect_key(bucket, &key, version_id.as_deref()).await
    }

    /// Judges one object (the version named, or the current one) and sends its
    /// verdict; the sweeper calls this too, for an upload whose event was lost.
    pub async fn inspect_key(&self, bucket: &str, key: &str, version_id: Option<&str>) -> Result<(), Error> {
        let Some(head) = self.objects.head(bucket, key, version_id).await? else {
            // Already refused and removed by an earlier delivery of this event.
            tracing::info!(key, "object is gone; duplicate event ignored");
            return Ok(());
        };
        // Every later read names the version HEAD saw, so a PUT landing while
        // this runs cannot swap the bytes under the verdict.
        let version_id = version_id.map(String::from).or_else(|| head.version_id.clone());
        let object = ObjectRef { bucket, key, version_id: version_id.as_deref() };
        // Presign chose the key, and signed it into the URL: it names the owner
        // and the file, so a plain PUT needs to send no metadata headers.
        let Some((owner_id, file_id)) = owner_and_file(key) else {
            tracing::warn!(key, "not a key presign hands out; ignored");
            return Ok(());
        };
        let size = head.size;

        let session = self.sessions.get(file_id).await?;
        // The declared type is the session's; an object whose session is gone
        // may still carry it as metadata (multipart uploads are created with it).
        let declared = match &session {
            // Another object than the one this session's URLs name: not ours to judge.
            Some(s) if s.key != key || s.owner_id != owner_id => {
                tracing::warn!(key, "the session names another key or owner; ignored");
                return Ok(());
            }
            Some(s) => s.declared_type.clone(),
            None => match &head.declared_type {
                Some(declared) => declared.clone(),
                // Its session is purged and nothing says what it was declared
                // as: a verdict now could only be a mismatch, and acting on it
                // would delete bytes a verdict long ago kept.
                None => {
                    tracing::warn!(key, "no session and no declared type; ignored");
                    return Ok(());
                }
            },
        };
        if let Some(session) = &session {
            if is_replay(session, object.version_id) {
                return self.remove_replay(&object).await;
            }
            // A single PUT has no complete call: its arrival ends the upload, unless a cancel or the sweeper did first.
            let ended = match (session.mode, session.stage) {
                (_, SessionStage::Cancelled | SessionStage::Expired) => true,
                (UploadMode::Single, SessionStage::Open) => {
                    !self.sessions.set_stage(file_id, SessionStage::Open, SessionStage::Completing).await?
                        && self.sessions.get(file_id).await?.is_some_and(|s| s.stage != SessionStage::Completing)
                }
                _ => false,
            };
            if ended {
                self.delete_object(&object).await?;
                tracing::info!(key, "the upload had ended before its bytes landed; object removed");
                return Ok(());
            }
        }

        let inspected = self.inspect_object(&object, size).await?;
        let verdict = Verdict::decide(&inspected, &declared, &self.policy);
        tracing::info!(key, accepted = verdict.accepted, reason = ?verdict.reason, "verdict");

        let (file_name, sha256, mode) = match &session {
            Some(s) => (s.file_name.clone(), s.sha256.clone(), Some(s.mode)),
            None => (
                FileName::parse(key.rsplit('/').next().unwrap_or("file")).map(|n| n.original().to_string()).unwrap_or_default(),
                None,
                None,
            ),
        };
        let message = VerdictMessage {
            file_id,
            owner_id,
            bucket: bucket.to_string(),
            key: key.to_string(),
            file_name,
            size,
            etag: bare_etag(&head.etag).to_string(),
            declared_type: declared,
            detected_type: verdict.detected_type,
            kind: verdict.kind,
            status: if verdict.accepted { FileStatus::Uploaded } else { FileStatus::Failed },
            reason: verdict.reason,
            sha256,
            mode,
            decided_at: now_secs(),
            width: verdict.width,
            height: verdict.height,
            duration_ms: verdict.duration_ms,
            version_id: object.version_id.map(String::from),
        };
        let body = serde_json::to_string(&message)?;
        // Kept with the session before it is sent: the first version to get
        // here is the file; a replay racing it loses and is removed, and a
        // verdict lost after this is re-sent by the sweeper from the session.
        if session.is_some()
            && !self.sessions.record_judgement(file_id, object.version_id, &body).await?
            // Not claimed: another version was first, unless the session was purged meanwhile.
            && self.sessions.get(file_id).await?.is_some()
        {
            return self.remove_replay(&object).await;
        }
        self.queues.send(&self.settings.queue_url, &body).await?;
        // Only once the verdict is sent: if sending fails, the retry finds the
        // object still there and decides again; removing it first would make
        // the retry take the event for a duplicate and drop the verdict. A
        // failure from here on is retried too: the verdict is sent again (the
        // same final state, which persist keeps once) and the release is
        // harmless twice.
        if message.status == FileStatus::Failed {
            // The release before the removal: a retry only finds work to redo
            // while the object is still there.
            self.quota.release(owner_id, file_id).await?;
            self.delete_object(&object).await?;
        }
        Ok(())
    }

    /// Deletes the version inspected (or, unversioned, the key).
    async fn delete_object(&self, object: &ObjectRef<'_>) -> Result<(), Error> {
        self.objects.delete(object.bucket, object.key, object.version_id).await?;
        Ok(())
    }

    /// A PUT replayed (or landing late) on a judged upload: its bytes are
    /// nobody's file, so they go, and the judged version, the verdict and the
    /// quota stay as they were.
    async fn remove_replay(&self, object: &ObjectRef<'_>) -> Result<(), Error> {
        self.delete_object(object).await?;
        tracing::warn!(key = object.key, version = ?object.version_id, "a later PUT to a judged upload; that version removed");
        Ok(())
    }

    /// Reads what the structure's validators ask for, within their bounds,
    /// and answers what they found.
    async fn inspect_object(&self, object: &ObjectRef<'_>, size: u64) -> Result<Checked, Error> {
        let head = if size == 0 { Vec::new() } else { self.read_range(object, 0, HEAD_BYTES.min(size)).await? };
        let mut window = Window::new(size, head);
        loop {
            match inspection::examine(&window, &self.settings.rules) {
                Step::Done(checked) => return Ok(checked),
                Step::Read { offset, len } => {
                    let bytes = self.read_range(object, offset, len).await?;
                    window.add(offset, bytes);
                }
                // A PDF the head already holds whole is scanned from it.
                Step::ScanPdf => return self.scan_pdf(object, size, window.head()).await,
            }
        }
    }

    /// `len` bytes at `offset`, by one ranged GET (never more than asked
    /// for, even from a server that ignores Range).
    async fn read_range(&self, object: &ObjectRef<'_>, offset: u64, len: u64) -> Result<Vec<u8>, Error> {
        Ok(self.objects.read_range(object.bucket, object.key, object.version_id, offset, len).await?)
    }

    /// Streams the whole PDF through its scanner, a chunk at a time: the head
    /// already read, then the rest by one GET (each byte is read once),
    /// stopping as soon as the scanner has refused it.
    async fn scan_pdf(&self, object: &ObjectRef<'_>, size: u64, head: &[u8]) -> Result<Checked, Error> {
        let mut scanner = PdfScanner::new(size);
        scanner.feed(head);
        if (head.len() as u64) < size && !scanner.is_decided() {
            let mut rest = self.objects.read_from(object.bucket, object.key, object.version_id, head.len() as u64).await?;
            while let Some(chunk) = rest.next_chunk().await.transpose()? {
                scanner.feed(&chunk);
                if scanner.is_decided() {
                    break;
                }
            }
        }
        Ok(scanner.finish())
    }
}

/// Whether this object is a later PUT to a key whose upload was already
/// judged by another version.
fn is_replay(session: &UploadSession, version_id: Option<&str>) -> bool {
    matches!((session.judged.as_ref().and_then(|j| j.version_id.as_deref()), version_id), (Some(judged), Some(this)) if judged != this)
}

/// One object version: every read and the removal name it.
struct ObjectRef<'a> {
    bucket: &'a str,
    key: &'a str,
    version_id: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_names_the_owner_and_the_file() {
        let (owner, file) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(owner_and_file(&format!("uploads/{owner}/{file}/cat.png")), Some((owner, file)));
        assert_eq!(owner_and_file(&format!("uploads/{owner}/{file}/")), None);
        assert_eq!(owner_and_file(&format!("uploads/{owner}/not-a-uuid/cat.png")), None);
        assert_eq!(owner_and_file(&format!("other/{owner}/{file}/cat.png")), None);
    }

    #[test]
    fn keys_are_url_decoded() {
        assert_eq!(decode_key("uploads/a/b/my+holiday%282%29.jpg"), "uploads/a/b/my holiday(2).jpg");
        assert_eq!(decode_key("uploads/x/y/r%C3%A9sum%C3%A9.pdf"), "uploads/x/y/résumé.pdf");
    }
}
