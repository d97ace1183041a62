//! A Postgres outage longer than the verdict queue's visibility timeout ×
//! maxReceiveCount: its own test binary, since it stops the one Postgres
//! every stack of the run shares (and starts it again on the same port).

#[allow(dead_code)]
#[path = "api/common.rs"]
mod common;

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use common::*;
use sluice_shared::quota::QuotaLedger;

/// Stops the run's Postgres; starts it again when dropped, even if the test fails.
struct Outage;

fn pg_ctl(action: &str) {
    let script = std::env::var("SLUICE_PG_CTL").expect("run with `make test`: SLUICE_PG_CTL");
    let status = std::process::Command::new(script).arg(action).status().expect("pg-ctl runs");
    assert!(status.success(), "pg-ctl {action}");
}

impl Outage {
    fn begin() -> Self {
        pg_ctl("stop");
        Outage
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        pg_ctl("start");
    }
}

async fn messages_in(stack: &sluice_local::Stack, queue_url: &str) -> u64 {
    let answer = stack
        .clients
        .sqs()
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    let attributes = answer.attributes.unwrap_or_default();
    attributes.get(&QueueAttributeName::ApproximateNumberOfMessages).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// Files uploaded while Postgres is down (single PUTs and a multipart, one
/// refused) all reach their final state once it is back, with no manual
/// step, although their first verdicts were burned through the queue's
/// receives into the DLQ; the quota is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_file_uploaded_during_a_postgres_outage_reaches_its_final_state() {
    let (visibility, max_receives) = (2u64, 2u64);
    let stack = spawn_stack_with(|o| {
        o.visibility_timeout_secs = visibility as u32;
        o.max_receive_count = max_receives as u32;
        o.sweep_every = Duration::from_secs(1);
        for (name, value) in [("RECONCILE_AFTER_SECONDS", "3"), ("PERSIST_RETRY_BASE_SECONDS", "1"), ("PERSIST_RETRY_MAX_SECONDS", "1")] {
            o.extra_env.push((name.into(), value.into()));
        }
    })
    .await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let owner = user.id.parse().unwrap();

    let outage = Outage::begin();
    let started = tokio::time::Instant::now();
    let mut accepted = Vec::new();
    for i in 0..3 {
        let data = png(20 * 1024 + i);
        let (id, status) = client.upload_single(&user, &format!("photo{i}.png"), "image/png", &data).await;
        assert_eq!(status, 200);
        accepted.push((id, data.len() as u64));
    }
    let big = png(6 * MIB);
    accepted.push((client.upload(&user, "big.png", "image/png", &big).await, big.len() as u64));
    let (refused, status) = client.upload_single(&user, "tool.png", "image/png", &elf(8 * 1024)).await;
    assert_eq!(status, 200);

    // Well past visibility × maxReceiveCount: the first verdicts are in the DLQ.
    let outlasts = Duration::from_secs(3 * visibility * max_receives);
    eventually(60, "verdicts to reach the DLQ", || async { messages_in(&stack, &stack.dlq_url).await >= 5 }).await;
    tokio::time::sleep(outlasts.saturating_sub(started.elapsed())).await;
    drop(outage);

    let mut expected_used = 0;
    for (id, size) in &accepted {
        let file = client.wait_final(&user, id).await;
        assert_eq!((file["status"].as_str(), file["size"].as_u64()), (Some("UPLOADED"), Some(*size)), "{file}");
        expected_used += size;
    }
    let file = client.wait_final(&user, &refused).await;
    assert_eq!(file["status"], "FAILED", "{file}");
    assert!(file["reason"].as_str().unwrap().starts_with("forbidden_content"), "{file}");
    let ledger = QuotaLedger::new(stack.clients.dynamodb(), &stack.table);
    assert_eq!(ledger.used(owner).await.unwrap(), expected_used, "exactly the accepted bytes stay charged");
}
