//! inspect over in-memory ports: its claim of a single PUT against a
//! cancel, a replayed PUT to a judged upload, and a refused file removed
//! only once its verdict is sent.

use sluice_shared::config::{Env, InspectSettings};
use sluice_shared::domain::status::SessionStage;
use sluice_shared::domain::{FileStatus, TypePolicy, UploadMode};
use sluice_shared::fakes::{MemoryObjects, MemoryQueues, MemoryQuota, MemorySessions, move_stage, open_session};
use sluice_shared::messages::VerdictMessage;
use sluice_shared::sessions::UploadSession;
use uuid::Uuid;

const BUCKET: &str = "uploads-bucket";
const VERDICTS: &str = "https://sqs.local/verdicts";

struct World {
    deps: inspect::Inspect<MemorySessions, MemoryObjects, MemoryQueues, MemoryQuota>,
    sessions: MemorySessions,
    objects: MemoryObjects,
    queues: MemoryQueues,
    quota: MemoryQuota,
}

fn world() -> World {
    let env = Env::from_pairs([("VERDICT_QUEUE_URL", VERDICTS)]);
    let (sessions, objects, queues, quota): (MemorySessions, MemoryObjects, MemoryQueues, MemoryQuota) = Default::default();
    let deps = inspect::Inspect {
        objects: objects.clone(),
        queues: queues.clone(),
        sessions: sessions.clone(),
        quota: quota.clone(),
        policy: TypePolicy::default(),
        settings: InspectSettings::from_env(&env).unwrap(),
    };
    World { deps, sessions, objects, queues, quota }
}

impl World {
    /// GIVEN an open single-PUT upload whose bytes just landed; answers the session and the version.
    fn landed(&self, bytes: Vec<u8>) -> (UploadSession, String) {
        let session = open_session(Uuid::new_v4(), UploadMode::Single, bytes.len() as u64, "");
        self.sessions.insert(session.clone());
        self.quota.write(|c| c.charges.insert((session.owner_id, session.file_id), session.plan.size));
        let version = self.objects.write(|bucket| bucket.put(BUCKET, &session.key, bytes));
        (session, version)
    }

    async fn inspect(&self, session: &UploadSession, version: &str) -> Result<(), lambda_runtime::Error> {
        self.deps.inspect_key(BUCKET, &session.key, Some(version)).await
    }

    fn verdicts(&self) -> Vec<VerdictMessage> {
        self.queues.bodies(VERDICTS).iter().map(|body| serde_json::from_str(body).unwrap()).collect()
    }

    fn holds(&self, session: &UploadSession, version: &str) -> bool {
        self.objects
            .read(|b| b.objects.get(&(BUCKET.to_string(), session.key.clone())).is_some_and(|v| v.iter().any(|o| o.version_id == version)))
    }
}

fn png() -> Vec<u8> {
    sluice_shared::inspection::samples::png(64 * 1024)
}

#[tokio::test]
async fn a_landed_png_is_claimed_judged_and_its_verdict_kept_with_the_session() {
    // GIVEN a PNG that landed by its single PUT
    let world = world();
    let (session, version) = world.landed(png());
    // WHEN inspect judges it
    world.inspect(&session, &version).await.unwrap();
    // THEN it is UPLOADED, naming the version judged; the session is COMPLETING and keeps the verdict
    let verdicts = world.verdicts();
    assert_eq!(verdicts.len(), 1);
    assert_eq!((verdicts[0].status, verdicts[0].version_id.as_deref()), (FileStatus::Uploaded, Some(version.as_str())));
    let kept = world.sessions.session(session.file_id).unwrap();
    assert_eq!(kept.stage, SessionStage::Completing);
    assert_eq!(kept.judged.map(|j| j.version_id), Some(Some(version.clone())));
    assert!(world.holds(&session, &version));
}

#[tokio::test]
async fn a_put_landing_after_its_cancel_is_removed_and_judged_by_nobody() {
    // GIVEN bytes that land while their owner cancels: the cancel claims the upload first
    let world = world();
    let (session, version) = world.landed(png());
    let file_id = session.file_id;
    world.sessions.before_next("set_stage", move |table| assert!(move_stage(table, file_id, SessionStage::Open, SessionStage::Cancelled)));
    // WHEN inspect reaches its claim
    world.inspect(&session, &version).await.unwrap();
    // THEN the bytes are removed without a verdict (the cancel sent the FAILED one)
    assert!(world.verdicts().is_empty());
    assert!(!world.holds(&session, &version));
    assert_eq!(world.sessions.stage(file_id), Some(SessionStage::Cancelled));
}

#[tokio::test]
async fn a_second_delivery_of_the_event_finds_the_upload_claimed_and_judges_it_the_same() {
    // GIVEN another delivery of the same event claimed the upload a moment ago
    let world = world();
    let (session, version) = world.landed(png());
    let file_id = session.file_id;
    world.sessions.before_next("set_stage", move |table| assert!(move_stage(table, file_id, SessionStage::Open, SessionStage::Completing)));
    // WHEN this one reaches its claim
    world.inspect(&session, &version).await.unwrap();
    // THEN it judges the same version to the same verdict, and nothing is removed
    let verdicts = world.verdicts();
    assert_eq!((verdicts.len(), verdicts[0].status), (1, FileStatus::Uploaded));
    assert!(world.holds(&session, &version));
}

#[tokio::test]
async fn a_replayed_put_to_a_judged_upload_is_removed_and_the_judged_version_stays() {
    // GIVEN a judged upload, and its URL replayed with other bytes (a later version)
    let world = world();
    let (session, judged) = world.landed(png());
    world.inspect(&session, &judged).await.unwrap();
    let replay = world.objects.write(|bucket| bucket.put(BUCKET, &session.key, b"#!/bin/sh\nrm -rf /\n".to_vec()));
    // WHEN inspect gets the replay's event
    world.inspect(&session, &replay).await.unwrap();
    // THEN the replay is removed, the judged version, its verdict and its charge stay
    assert!(!world.holds(&session, &replay));
    assert!(world.holds(&session, &judged));
    assert_eq!(world.verdicts().len(), 1);
    assert_eq!(world.quota.charge_of(session.owner_id, session.file_id), Some(session.plan.size));
}

#[tokio::test]
async fn a_refused_file_is_removed_only_once_its_verdict_is_sent() {
    // GIVEN an executable declared as a PNG, and the verdict queue down
    let world = world();
    let mut elf = b"\x7FELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3E\0\x01\0\0\0".to_vec();
    elf.resize(4096, 0x90);
    let (session, version) = world.landed(elf);
    world.queues.fail("send");
    // WHEN inspect judges it
    assert!(world.inspect(&session, &version).await.is_err(), "the failed send is retried by Lambda");
    // THEN nothing is removed or released yet: the retry must find the bytes to judge again
    assert!(world.holds(&session, &version));
    assert_eq!(world.quota.charge_of(session.owner_id, session.file_id), Some(session.plan.size));
    // WHEN the queue is back and the event is retried
    world.queues.heal("send");
    world.inspect(&session, &version).await.unwrap();
    // THEN the FAILED verdict is sent, then the charge released and the bytes removed
    let verdicts = world.verdicts();
    assert_eq!((verdicts.len(), verdicts[0].status), (1, FileStatus::Failed));
    assert!(
        verdicts[0].reason.as_deref().is_some_and(|r| r.starts_with("forbidden_content") || r.starts_with("type_mismatch")),
        "{:?}",
        verdicts[0].reason
    );
    assert_eq!(world.quota.charge_of(session.owner_id, session.file_id), None);
    assert!(!world.holds(&session, &version));
}
