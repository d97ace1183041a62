//! complete and cancel over in-memory ports: the races between them, and
//! what S3 refusing, or losing its answer, leaves behind. Written GIVEN /
//! WHEN / THEN; what a user sees end to end is in local/tests/api.

use std::collections::BTreeMap;

use complete_upload::{CompleteUpload, handle};
use sluice_shared::aws::bare_etag;
use sluice_shared::closeout::UploadCloser;
use sluice_shared::config::{Env, UploadSettings};
use sluice_shared::domain::UploadMode;
use sluice_shared::domain::status::SessionStage;
use sluice_shared::fakes::{
    MemoryObjects, MemoryQueues, MemoryQuota, MemorySessions, answer, api_event, move_stage, open_session, test_tokens,
};
use sluice_shared::messages::VerdictMessage;
use sluice_shared::sessions::{RecordedPart, UploadSession};
use uuid::Uuid;

const BUCKET: &str = "uploads-bucket";
const VERDICTS: &str = "https://sqs.local/verdicts";
const MIB: u64 = 1024 * 1024;

struct World {
    deps: CompleteUpload<MemorySessions, MemoryObjects, MemoryQueues, MemoryQuota>,
    sessions: MemorySessions,
    objects: MemoryObjects,
    queues: MemoryQueues,
    quota: MemoryQuota,
    owner: Uuid,
    token: String,
}

fn world() -> World {
    let (issuer, verifier) = test_tokens();
    let owner = Uuid::new_v4();
    let token = issuer.issue(owner, "owner@example.com").unwrap();
    let settings = UploadSettings::from_env(&Env::from_pairs([("UPLOAD_BUCKET", BUCKET), ("SESSIONS_TABLE", "sessions")])).unwrap();
    let (sessions, objects, queues, quota) = Default::default();
    let closer = UploadCloser {
        objects: MemoryObjects::clone(&objects),
        queues: MemoryQueues::clone(&queues),
        quota: MemoryQuota::clone(&quota),
        bucket: BUCKET.into(),
        verdict_queue_url: VERDICTS.into(),
    };
    let deps = CompleteUpload {
        objects: MemoryObjects::clone(&objects),
        sessions: MemorySessions::clone(&sessions),
        closer,
        quota: MemoryQuota::clone(&quota),
        verifier,
        settings,
    };
    World { deps, sessions, objects, queues, quota, owner, token }
}

impl World {
    /// GIVEN an open 12 MiB multipart upload: S3 holds its three parts, the
    /// session records them, the quota holds its size.
    async fn uploaded(&self) -> UploadSession {
        let mut session = open_session(self.owner, UploadMode::Multipart, 12 * MIB, "");
        session.upload_id = self.objects.write(|bucket| bucket.create_multipart(&session.key));
        let mut recorded = BTreeMap::new();
        for part in session.plan.parts() {
            let bytes = vec![part.get() as u8; session.plan.size_of(part) as usize];
            let size = bytes.len() as u64;
            let etag = self.objects.write(|bucket| bucket.upload_part(&session.upload_id, part.get(), bytes));
            let part = RecordedPart { part_number: part.get(), size, etag: bare_etag(&etag).to_string(), checksum_sha256: None };
            recorded.insert(part.part_number, part);
        }
        session.recorded_count = recorded.len() as u32;
        self.sessions.insert(session.clone());
        self.sessions.write(|table| table.parts.insert(session.file_id, recorded));
        self.quota.write(|c| c.charges.insert((self.owner, session.file_id), session.plan.size));
        session
    }

    async fn call(&self, event: &str, session: &UploadSession) -> (u16, serde_json::Value) {
        let response = handle(&self.deps, api_event(event, session.file_id, &self.token)).await.unwrap();
        answer(&response)
    }

    fn verdicts(&self) -> Vec<VerdictMessage> {
        self.queues.bodies(VERDICTS).iter().map(|body| serde_json::from_str(body).unwrap()).collect()
    }

    fn completed_in_s3(&self, session: &UploadSession) -> bool {
        self.objects.read(|bucket| bucket.current(BUCKET, &session.key).is_some())
    }
}

#[tokio::test]
async fn a_complete_answers_202_and_s3_assembles_the_recorded_parts() {
    // GIVEN an upload whose parts S3 holds as recorded
    let world = world();
    let session = world.uploaded().await;
    // WHEN its owner completes it
    let (status, body) = world.call("complete-upload", &session).await;
    // THEN it is accepted, S3 holds the file, and the session stays COMPLETING for inspect
    assert_eq!(status, 202, "{body}");
    assert!(world.completed_in_s3(&session));
    assert_eq!(world.sessions.stage(session.file_id), Some(SessionStage::Completing));
    let stored = world.objects.read(|b| b.current(BUCKET, &session.key).unwrap().bytes.len() as u64);
    assert_eq!(stored, session.plan.size);
}

#[tokio::test]
async fn a_cancel_that_claims_the_upload_first_makes_the_complete_answer_409_and_s3_is_never_asked() {
    // GIVEN an upload, and a cancel that moves it to CANCELLED just before complete claims it
    let world = world();
    let session = world.uploaded().await;
    let file_id = session.file_id;
    world.sessions.before_next("set_stage", move |table| assert!(move_stage(table, file_id, SessionStage::Open, SessionStage::Cancelled)));
    // WHEN the complete goes on
    let (status, body) = world.call("complete-upload", &session).await;
    // THEN it is refused as cancelled, and S3 assembled nothing
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("upload_cancelled")), "{body}");
    assert!(world.objects.read(|b| b.completions.is_empty()));
    assert!(!world.completed_in_s3(&session));
    assert_eq!(world.sessions.stage(file_id), Some(SessionStage::Cancelled));
}

#[tokio::test]
async fn a_complete_that_claims_the_upload_first_makes_the_cancel_answer_409_and_nothing_is_freed() {
    // GIVEN an upload, and a complete that claims it just before the cancel does
    let world = world();
    let session = world.uploaded().await;
    let file_id = session.file_id;
    world.sessions.before_next("set_stage", move |table| assert!(move_stage(table, file_id, SessionStage::Open, SessionStage::Completing)));
    // WHEN the cancel goes on
    let (status, body) = world.call("cancel-upload", &session).await;
    // THEN it is refused; the parts, the charge and the verdict to come are the complete's
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("upload_completing")), "{body}");
    assert!(world.objects.read(|b| b.aborts.is_empty()));
    assert!(world.verdicts().is_empty());
    assert_eq!(world.quota.charge_of(world.owner, file_id), Some(session.plan.size));
}

#[tokio::test]
async fn of_two_completes_at_once_the_second_counts_as_done_and_s3_assembles_once() {
    // GIVEN an upload another complete claimed a moment ago (and is assembling)
    let world = world();
    let session = world.uploaded().await;
    let file_id = session.file_id;
    world.sessions.before_next("set_stage", move |table| assert!(move_stage(table, file_id, SessionStage::Open, SessionStage::Completing)));
    // WHEN this one reaches its claim
    let (status, body) = world.call("complete-upload", &session).await;
    // THEN it answers 202 too, and leaves the assembling to the first
    assert_eq!(status, 202, "{body}");
    assert!(world.objects.read(|b| b.completions.is_empty()));
}

#[tokio::test]
async fn s3_refusing_the_complete_puts_the_upload_back_to_open_for_a_retry() {
    // GIVEN an upload whose multipart upload S3 no longer holds when asked to assemble it
    let world = world();
    let session = world.uploaded().await;
    let upload_id = session.upload_id.clone();
    world.objects.before_next("complete_multipart", move |bucket| {
        bucket.multipart.remove(&upload_id);
    });
    // WHEN it is completed
    let (status, body) = world.call("complete-upload", &session).await;
    // THEN S3's refusal is told, and the upload is OPEN again (neither stuck nor failed)
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("complete_refused")), "{body}");
    assert_eq!(world.sessions.stage(session.file_id), Some(SessionStage::Open));
}

#[tokio::test]
async fn a_lost_answer_from_a_complete_s3_made_is_taken_as_done() {
    // GIVEN S3 assembles the file but its answer never arrives
    let world = world();
    let session = world.uploaded().await;
    let key = session.key.clone();
    world.objects.before_next("complete_multipart", move |bucket| {
        bucket.put(BUCKET, &key, b"the assembled file".to_vec());
    });
    world.objects.fail("complete_multipart");
    // WHEN it is completed
    let (status, body) = world.call("complete-upload", &session).await;
    // THEN the object S3 holds says it happened: 202, and the session stays
    // COMPLETING so that no cancel or sweep can fail a stored file
    assert_eq!(status, 202, "{body}");
    assert_eq!(world.sessions.stage(session.file_id), Some(SessionStage::Completing));
}

#[tokio::test]
async fn when_s3_cannot_say_whether_it_completed_the_upload_stays_completing_and_a_retry_asks_again() {
    // GIVEN the complete fails and S3 cannot say whether the object exists
    let world = world();
    let session = world.uploaded().await;
    world.objects.fail("complete_multipart");
    world.objects.fail("exists");
    // WHEN it is completed
    let (status, body) = world.call("complete-upload", &session).await;
    // THEN 503, and the session is left COMPLETING (a cancel now would risk a stored file)
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("service_unavailable")), "{body}");
    assert_eq!(world.sessions.stage(session.file_id), Some(SessionStage::Completing));
    // WHEN S3 recovers and the client retries
    world.objects.heal("complete_multipart");
    world.objects.heal("exists");
    let (status, body) = world.call("complete-upload", &session).await;
    // THEN the parts S3 still holds are assembled now
    assert_eq!(status, 202, "{body}");
    assert!(world.completed_in_s3(&session));
}

#[tokio::test]
async fn a_cancel_frees_the_parts_sends_the_failed_verdict_and_gives_the_quota_back() {
    // GIVEN an open upload
    let world = world();
    let session = world.uploaded().await;
    // WHEN its owner cancels it
    let (status, body) = world.call("cancel-upload", &session).await;
    // THEN it ends FAILED, cancelled: S3 aborted it, persist is told, the charge is gone
    assert_eq!((status, body["status"].as_str(), body["reason"].as_str()), (200, Some("FAILED"), Some("cancelled")), "{body}");
    assert_eq!(world.objects.read(|b| b.aborts.clone()), vec![session.upload_id.clone()]);
    let verdicts = world.verdicts();
    assert_eq!(verdicts.len(), 1);
    assert_eq!((verdicts[0].file_id, verdicts[0].reason.as_deref()), (session.file_id, Some("cancelled")));
    assert_eq!(world.quota.charge_of(world.owner, session.file_id), None);
}

#[tokio::test]
async fn a_cancel_cut_short_by_the_queue_keeps_the_charge_and_a_retry_finishes_it() {
    // GIVEN the verdict queue is down
    let world = world();
    let session = world.uploaded().await;
    world.queues.fail("send");
    // WHEN the owner cancels
    let (status, body) = world.call("cancel-upload", &session).await;
    // THEN 503; the upload is cancelled, but its charge stays until the FAILED verdict is sent
    assert_eq!(status, 503, "{body}");
    assert_eq!(world.sessions.stage(session.file_id), Some(SessionStage::Cancelled));
    assert_eq!(world.quota.charge_of(world.owner, session.file_id), Some(session.plan.size));
    // WHEN the queue is back and the cancel is retried
    world.queues.heal("send");
    let (status, body) = world.call("cancel-upload", &session).await;
    // THEN it finishes: one verdict, the charge released
    assert_eq!((status, body["reason"].as_str()), (200, Some("cancelled")), "{body}");
    assert_eq!(world.verdicts().len(), 1);
    assert_eq!(world.quota.charge_of(world.owner, session.file_id), None);
}

#[tokio::test]
async fn a_complete_after_a_cancel_is_refused_and_another_users_upload_is_not_found() {
    // GIVEN a cancelled upload, and another user's open one
    let world = world();
    let cancelled = world.uploaded().await;
    assert_eq!(world.call("cancel-upload", &cancelled).await.0, 200);
    let mut theirs = open_session(Uuid::new_v4(), UploadMode::Multipart, 12 * MIB, "upload-x");
    theirs.key = format!("uploads/{}/{}/x.png", theirs.owner_id, theirs.file_id);
    world.sessions.insert(theirs.clone());
    // WHEN the owner completes the cancelled one, and calls on the other user's
    let (status, body) = world.call("complete-upload", &cancelled).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("upload_cancelled")), "{body}");
    for event in ["complete-upload", "cancel-upload"] {
        let (status, body) = world.call(event, &theirs).await;
        // THEN the other user's answers 404, and stays as it was
        assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "{event}: {body}");
    }
    assert_eq!(world.sessions.stage(theirs.file_id), Some(SessionStage::Open));
}
