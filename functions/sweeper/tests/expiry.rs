//! The sweeper over in-memory ports: expiry and its rollback when a
//! close-out fails, the race with a last-second complete, a landed single
//! PUT judged rather than failed, and the re-drive of a lost verdict.

use lambda_runtime::{Context, LambdaEvent};
use sluice_shared::closeout::UploadCloser;
use sluice_shared::config::{Env, InspectSettings, UploadSettings};
use sluice_shared::domain::status::SessionStage;
use sluice_shared::domain::{FileStatus, TypePolicy, UploadMode};
use sluice_shared::fakes::{MemoryObjects, MemoryQueues, MemoryQuota, MemorySessions, move_stage, open_session};
use sluice_shared::messages::VerdictMessage;
use sluice_shared::sessions::{Judged, UploadSession};
use sweeper::{Sweeper, handle};
use uuid::Uuid;

const BUCKET: &str = "uploads-bucket";
const VERDICTS: &str = "https://sqs.local/verdicts";
const RECONCILE_AFTER: u64 = 900;

struct World {
    deps: Sweeper<MemorySessions, MemoryObjects, MemoryQueues, MemoryQuota>,
    sessions: MemorySessions,
    objects: MemoryObjects,
    queues: MemoryQueues,
    quota: MemoryQuota,
}

fn world() -> World {
    let env = Env::from_pairs([("UPLOAD_BUCKET", BUCKET), ("SESSIONS_TABLE", "sessions"), ("VERDICT_QUEUE_URL", VERDICTS)]);
    let (sessions, objects, queues, quota): (MemorySessions, MemoryObjects, MemoryQueues, MemoryQuota) = Default::default();
    let inspect = inspect::Inspect {
        objects: objects.clone(),
        queues: queues.clone(),
        sessions: sessions.clone(),
        quota: quota.clone(),
        policy: TypePolicy::default(),
        settings: InspectSettings::from_env(&env).unwrap(),
    };
    let closer = UploadCloser {
        objects: objects.clone(),
        queues: queues.clone(),
        quota: quota.clone(),
        bucket: BUCKET.into(),
        verdict_queue_url: VERDICTS.into(),
    };
    let settings = UploadSettings::from_env(&env).unwrap();
    let deps = Sweeper { sessions: sessions.clone(), closer, inspect, bucket: settings.bucket, reconcile_after_secs: RECONCILE_AFTER };
    World { deps, sessions, objects, queues, quota }
}

impl World {
    /// GIVEN an upload of `mode` whose session expired an hour ago, charged to its owner.
    fn expired(&self, mode: UploadMode) -> UploadSession {
        let mut session = open_session(Uuid::new_v4(), mode, 6 * 1024 * 1024, "");
        if mode != UploadMode::Single {
            session.upload_id = self.objects.write(|bucket| bucket.create_multipart(&session.key));
        }
        session.expires_at = sluice_shared::auth::now_secs() - 3600;
        self.sessions.insert(session.clone());
        self.quota.write(|c| c.charges.insert((session.owner_id, session.file_id), session.plan.size));
        session
    }

    async fn sweep(&self) -> sluice_api::messages::SweepReport {
        let event = serde_json::from_str(&sluice_shared::sample_events::sample_event("sweeper", &[]).unwrap()).unwrap();
        handle(&self.deps, LambdaEvent::new(event, Context::default())).await.unwrap()
    }

    fn verdicts(&self) -> Vec<VerdictMessage> {
        self.queues.bodies(VERDICTS).iter().map(|body| serde_json::from_str(body).unwrap()).collect()
    }
}

#[tokio::test]
async fn an_expired_upload_is_aborted_failed_and_released() {
    // GIVEN an expired multipart upload
    let world = world();
    let session = world.expired(UploadMode::Multipart);
    // WHEN the sweeper runs
    let report = world.sweep().await;
    // THEN it ends EXPIRED: S3 frees its parts, persist is told FAILED/expired, the charge goes
    assert_eq!((report.swept, report.failed), (1, 0));
    assert_eq!(world.sessions.stage(session.file_id), Some(SessionStage::Expired));
    assert_eq!(world.objects.read(|b| b.aborts.clone()), vec![session.upload_id.clone()]);
    let verdicts = world.verdicts();
    assert_eq!((verdicts.len(), verdicts[0].status, verdicts[0].reason.as_deref()), (1, FileStatus::Failed, Some("expired")));
    assert_eq!(world.quota.charge_of(session.owner_id, session.file_id), None);
}

#[tokio::test]
async fn a_close_out_that_fails_is_rolled_back_to_open_and_finished_by_the_next_run() {
    // GIVEN an expired upload, and the verdict queue down
    let world = world();
    let session = world.expired(UploadMode::Multipart);
    world.queues.fail("send");
    // WHEN the sweeper runs
    let report = world.sweep().await;
    // THEN the upload is counted failed and put back OPEN (still expired) with its charge,
    // so that nothing is left half-ended
    assert_eq!((report.swept, report.failed), (0, 1));
    assert_eq!(world.sessions.stage(session.file_id), Some(SessionStage::Open));
    assert_eq!(world.quota.charge_of(session.owner_id, session.file_id), Some(session.plan.size));
    assert!(world.verdicts().is_empty());
    // WHEN the queue is back and the sweeper runs again
    world.queues.heal("send");
    let report = world.sweep().await;
    // THEN it ends as it should have: one FAILED verdict, the charge released
    assert_eq!((report.swept, report.failed), (1, 0));
    assert_eq!(world.sessions.stage(session.file_id), Some(SessionStage::Expired));
    assert_eq!(world.verdicts().len(), 1);
    assert_eq!(world.quota.charge_of(session.owner_id, session.file_id), None);
}

#[tokio::test]
async fn a_complete_that_claims_the_upload_first_wins_over_the_sweep() {
    // GIVEN an expired upload that its client completes just as the sweep claims it
    let world = world();
    let session = world.expired(UploadMode::Multipart);
    let file_id = session.file_id;
    world.sessions.before_next("set_stage", move |table| assert!(move_stage(table, file_id, SessionStage::Open, SessionStage::Completing)));
    // WHEN the sweeper runs
    let report = world.sweep().await;
    // THEN it leaves the upload to the complete: nothing aborted, failed or released
    assert_eq!((report.swept, report.failed), (0, 0));
    assert_eq!(world.sessions.stage(file_id), Some(SessionStage::Completing));
    assert!(world.objects.read(|b| b.aborts.is_empty()));
    assert!(world.verdicts().is_empty());
    assert_eq!(world.quota.charge_of(session.owner_id, file_id), Some(session.plan.size));
}

#[tokio::test]
async fn a_single_put_that_landed_unseen_is_judged_not_failed() {
    // GIVEN an expired single-PUT upload whose bytes S3 holds (its event was lost)
    let world = world();
    let session = world.expired(UploadMode::Single);
    let png = sluice_shared::inspection::samples::png(session.plan.size as usize);
    world.objects.write(|bucket| bucket.put(BUCKET, &session.key, png));
    // WHEN the sweeper runs
    let report = world.sweep().await;
    // THEN the object is judged as inspect would have: an UPLOADED verdict, the charge kept
    assert_eq!((report.swept, report.redriven), (0, 1));
    let verdicts = world.verdicts();
    assert_eq!((verdicts.len(), verdicts[0].status), (1, FileStatus::Uploaded));
    assert_eq!(world.quota.charge_of(session.owner_id, session.file_id), Some(session.plan.size));
    assert!(world.objects.read(|b| b.current(BUCKET, &session.key).is_some()));
}

#[tokio::test]
async fn a_verdict_lost_on_its_way_to_postgres_is_sent_again_once_per_wait() {
    // GIVEN a completed upload whose kept verdict Postgres never stored, judged long ago
    let world = world();
    let mut session = world.expired(UploadMode::Multipart);
    session.stage = SessionStage::Completing;
    session.stage_at = sluice_shared::auth::now_secs() - 2 * RECONCILE_AFTER;
    session.judged = Some(Judged { version_id: Some("v1".into()), verdict: r#"{"kept":"verdict"}"#.into() });
    world.sessions.insert(session.clone());
    // WHEN the sweeper runs
    let report = world.sweep().await;
    // THEN the kept verdict is re-sent as it was, and the clock restarts
    assert_eq!(report.redriven, 1);
    assert_eq!(world.queues.bodies(VERDICTS), vec![r#"{"kept":"verdict"}"#.to_string()]);
    assert!(world.sessions.session(session.file_id).unwrap().stage_at > session.stage_at);
    // WHEN it runs again at once
    let report = world.sweep().await;
    // THEN nothing more is sent until another full wait
    assert_eq!(report.redriven, 0);
    assert_eq!(world.queues.bodies(VERDICTS).len(), 1);
    // WHEN Postgres has stored it
    world.sessions.write(|t| t.sessions.get_mut(&session.file_id).unwrap().stage_at = 0);
    world.sessions.write(|t| t.sessions.get_mut(&session.file_id).unwrap().verdict_stored = true);
    // THEN it is settled: never sent again
    assert_eq!(world.sweep().await.redriven, 0);
}
