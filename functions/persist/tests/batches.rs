//! persist over in-memory ports: a batch's partial failures. What can never
//! be written goes to the dead-letter queue at once; what failed for a
//! passing reason is reported in `batchItemFailures` and hidden for its
//! backoff; the rest of the batch stands.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use lambda_runtime::{Context, LambdaEvent};
use persist::{Failure, Persist, PersistSettings, ReadyVerdict, VerdictRows, handle};
use sluice_shared::domain::UploadMode;
use sluice_shared::fakes::{MemoryQueues, MemorySessions, open_session};
use sluice_shared::messages::{VerdictMessage, closed_verdict};
use uuid::Uuid;

const QUEUE: &str = "https://sqs.local/verdicts";
const DEAD_LETTERS: &str = "https://sqs.local/verdicts-dlq";

/// Postgres, as far as persist can tell: rows it holds, verdicts it
/// refuses (a constraint), and whether it is reachable.
#[derive(Default)]
struct MemoryRows {
    stored: Mutex<Vec<Uuid>>,
    refused: Mutex<HashSet<Uuid>>,
    down: AtomicBool,
}

impl VerdictRows for MemoryRows {
    /// One statement: all of the batch, or none of it.
    async fn write(&self, batch: &[&ReadyVerdict]) -> Result<(), Failure> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Failure::Passing("connection refused".into()));
        }
        let refused = self.refused.lock().unwrap();
        if let Some(bad) = batch.iter().find(|ready| refused.contains(&ready.verdict.file_id)) {
            return Err(Failure::Permanent(format!("23514: {} violates a check constraint", bad.verdict.file_id)));
        }
        self.stored.lock().unwrap().extend(batch.iter().map(|ready| ready.verdict.file_id));
        Ok(())
    }
}

struct World {
    deps: Persist<MemorySessions, MemoryQueues, MemoryRows>,
    sessions: MemorySessions,
    queues: MemoryQueues,
}

fn world() -> World {
    let (sessions, queues): (MemorySessions, MemoryQueues) = Default::default();
    let settings =
        PersistSettings { queue_url: QUEUE.into(), dead_letter_queue_url: DEAD_LETTERS.into(), retry_base_secs: 20, retry_max_secs: 3600 };
    let deps = Persist { rows: MemoryRows::default(), sessions: sessions.clone(), queues: queues.clone(), settings };
    World { deps, sessions, queues }
}

impl World {
    /// A verdict of an upload whose session the table holds.
    fn verdict(&self) -> VerdictMessage {
        let session = open_session(Uuid::new_v4(), UploadMode::Single, 1024, "");
        self.sessions.insert(session.clone());
        closed_verdict(&session, "uploads-bucket", "cancelled")
    }

    async fn deliver(&self, bodies: &[(&str, String, u32)]) -> Vec<String> {
        let records = bodies
            .iter()
            .map(|(id, body, receives)| {
                let mut message = SqsMessage::default();
                message.message_id = Some(id.to_string());
                message.receipt_handle = Some(format!("receipt-{id}"));
                message.body = Some(body.clone());
                message.attributes = HashMap::from([("ApproximateReceiveCount".to_string(), receives.to_string())]);
                message
            })
            .collect();
        let mut event = SqsEvent::default();
        event.records = records;
        let response = handle(&self.deps, LambdaEvent::new(event, Context::default())).await.unwrap();
        response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect()
    }

    fn stored(&self) -> Vec<Uuid> {
        self.deps.rows.stored.lock().unwrap().clone()
    }

    fn stored_mark(&self, file_id: Uuid) -> bool {
        self.sessions.session(file_id).is_some_and(|s| s.verdict_stored)
    }
}

fn json(verdict: &VerdictMessage) -> String {
    serde_json::to_string(verdict).unwrap()
}

#[tokio::test]
async fn what_can_never_be_written_goes_to_the_dead_letter_queue_and_the_rest_of_the_batch_stands() {
    // GIVEN a batch: two good verdicts, a body that is no verdict, and one Postgres refuses
    let world = world();
    let (good, other, refused) = (world.verdict(), world.verdict(), world.verdict());
    world.deps.rows.refused.lock().unwrap().insert(refused.file_id);
    let batch = [("a", json(&good), 1), ("b", "not a verdict".to_string(), 1), ("c", json(&refused), 1), ("d", json(&other), 1)];
    // WHEN persist takes it
    let failures = world.deliver(&batch).await;
    // THEN nothing is left to redeliver: the good ones are stored and noted,
    // the other two are in the dead-letter queue as they came, the refused one noted
    assert!(failures.is_empty(), "{failures:?}");
    let mut stored = world.stored();
    stored.sort();
    let mut expected = vec![good.file_id, other.file_id];
    expected.sort();
    assert_eq!(stored, expected);
    assert!(world.stored_mark(good.file_id) && world.stored_mark(other.file_id));
    assert!(!world.stored_mark(refused.file_id));
    assert_eq!(world.queues.bodies(DEAD_LETTERS), vec!["not a verdict".to_string(), json(&refused)]);
    assert!(world.sessions.read(|t| t.dead_lettered.contains(&refused.file_id)));
    assert!(world.queues.read(|m| m.delays.is_empty()));
}

#[tokio::test]
async fn an_outage_fails_each_message_for_redelivery_after_its_backoff() {
    // GIVEN Postgres unreachable, and messages received once and three times
    let world = world();
    world.deps.rows.down.store(true, Ordering::SeqCst);
    let (first, third) = (world.verdict(), world.verdict());
    // WHEN persist takes them
    let failures = world.deliver(&[("first", json(&first), 1), ("third", json(&third), 3)]).await;
    // THEN both are reported for redelivery, none dead-lettered, each hidden
    // for 20 s doubling per receive (20 s, then 80 s at the third)
    assert_eq!(failures, vec!["first".to_string(), "third".to_string()]);
    assert!(world.queues.bodies(DEAD_LETTERS).is_empty());
    let delays = world.queues.read(|m| m.delays.clone());
    assert_eq!(delays, vec![(QUEUE.into(), "receipt-first".into(), 20), (QUEUE.into(), "receipt-third".into(), 80)]);
    assert!(world.stored().is_empty());
    // WHEN Postgres is back and they come again
    world.deps.rows.down.store(false, Ordering::SeqCst);
    let failures = world.deliver(&[("first", json(&first), 2), ("third", json(&third), 4)]).await;
    // THEN they are stored
    assert!(failures.is_empty());
    assert_eq!(world.stored().len(), 2);
}

#[tokio::test]
async fn a_verdict_whose_parts_cannot_be_read_is_retried_and_does_not_hold_up_the_others() {
    // GIVEN a multipart verdict whose parts the session table cannot give now, beside a single-PUT one
    let world = world();
    let single = world.verdict();
    let mut multipart = world.verdict();
    multipart.mode = Some(UploadMode::Multipart);
    world.sessions.fail("parts");
    // WHEN persist takes both
    let failures = world.deliver(&[("single", json(&single), 1), ("multi", json(&multipart), 1)]).await;
    // THEN the single-PUT one (it has no parts to read) is stored; the other waits for a retry
    assert_eq!(failures, vec!["multi".to_string()]);
    assert_eq!(world.stored(), vec![single.file_id]);
}

#[tokio::test]
async fn a_permanent_failure_the_dead_letter_queue_cannot_take_is_kept_on_the_queue() {
    // GIVEN a body that is no verdict, and the queues refusing sends
    let world = world();
    world.queues.fail("send");
    // WHEN persist takes it
    let failures = world.deliver(&[("lost?", "{}".to_string(), 1)]).await;
    // THEN it is reported as failed, so SQS keeps it, rather than dropped
    assert_eq!(failures, vec!["lost?".to_string()]);
}
