//! At-least-once delivery: duplicate events and messages, poison messages.

use std::collections::HashMap;

use crate::common::*;
use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::json;

async fn count_rows(stack: &sluice_local::Stack, file_id: &str) -> (i64, i64) {
    let db = sluice_shared::db::connect(&stack.database_url).await.unwrap();
    let id = uuid::Uuid::parse_str(file_id).unwrap();
    let files: i64 = db.query_one("SELECT count(*) FROM files WHERE id = $1", &[&id]).await.unwrap().get(0);
    let chunks: i64 = db.query_one("SELECT count(*) FROM chunks WHERE file_id = $1", &[&id]).await.unwrap().get(0);
    (files, chunks)
}

async fn queue_attributes(stack: &sluice_local::Stack, queue_url: &str) -> HashMap<QueueAttributeName, String> {
    let sqs = stack.clients.sqs();
    let answer = sqs.get_queue_attributes().queue_url(queue_url).attribute_names(QueueAttributeName::All).send().await;
    answer.unwrap().attributes.unwrap_or_default()
}

async fn queue_is_drained(stack: &sluice_local::Stack, queue_url: &str) -> bool {
    let attrs = queue_attributes(stack, queue_url).await;
    let n = |k: QueueAttributeName| attrs.get(&k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(QueueAttributeName::ApproximateNumberOfMessages) + n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible) == 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_s3_event_and_sqs_message_delivered_twice_leave_one_row() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let data = png(6 * MIB);
    let id = client.upload(&user, "twice.png", "image/png", &data).await;
    let first = client.wait_final(&user, &id).await;
    assert_eq!(first["status"], "UPLOADED");

    // The same ObjectCreated event twice more, to the same handler Lambda runs.
    let key = format!("uploads/{}/{id}/twice.png", user.id);
    let created = sluice_local::s3::ObjectCreated {
        event_name: "ObjectCreated:CompleteMultipartUpload",
        bucket: stack.bucket.clone(),
        key,
        size: data.len() as u64,
        etag: String::new(),
        version_id: None,
    };
    for _ in 0..2 {
        let event = sluice_local::events::s3_event(&created);
        inspect::handle(&stack.inspect, LambdaEvent::new(event, Context::default())).await.unwrap();
    }
    eventually(20, "the verdict queue to drain", || queue_is_drained(&stack, &stack.queue_url)).await;
    assert_eq!(count_rows(&stack, &id).await, (1, 2));
    assert!(queue_is_drained(&stack, &stack.dlq_url).await, "no duplicate may end in the DLQ");

    // An s3:TestEvent and an event for an object already removed are no failures.
    let test_event = json!({ "Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": stack.bucket });
    inspect::handle(&stack.inspect, LambdaEvent::new(test_event, Context::default())).await.unwrap();
    let gone = sluice_local::s3::ObjectCreated { key: format!("uploads/{}/{id}/nothing.png", user.id), ..created };
    inspect::handle(&stack.inspect, LambdaEvent::new(sluice_local::events::s3_event(&gone), Context::default())).await.unwrap();
    assert_eq!(client.wait_final(&user, &id).await["status"], "UPLOADED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_always_fails_reaches_the_dlq_while_the_rest_is_persisted() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let file_id = uuid::Uuid::new_v4();
    let verdict = json!({
        "fileId": file_id, "ownerId": user.id, "bucket": stack.bucket,
        "key": format!("uploads/{}/{file_id}/a.png", user.id), "fileName": "a.png",
        "size": 10, "etag": "e", "declaredType": "image/png", "detectedType": "image/png",
        "kind": "IMAGE", "status": "UPLOADED", "reason": null, "decidedAt": 0
    });
    let poison = "this is not a verdict";
    let sent = stack
        .clients
        .sqs()
        .send_message_batch()
        .queue_url(&stack.queue_url)
        .entries(SendMessageBatchRequestEntry::builder().id("good").message_body(verdict.to_string()).build().unwrap())
        .entries(SendMessageBatchRequestEntry::builder().id("poison").message_body(poison).build().unwrap())
        .send()
        .await
        .unwrap();
    assert!(sent.failed.is_empty());

    eventually(30, "the poison message in the DLQ", || async {
        let out = stack.clients.sqs().receive_message().queue_url(&stack.dlq_url).send().await.unwrap();
        out.messages.unwrap_or_default().iter().any(|m| m.body() == Some(poison))
    })
    .await;
    let (status, file) = client.call("GET", &format!("/files/{file_id}"), Some(&user.token), None).await;
    assert_eq!((status.as_u16(), file["status"].as_str()), (200, Some("UPLOADED")), "{file}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persist_reports_only_the_failed_messages_of_a_batch() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let file_id = uuid::Uuid::new_v4();
    let good = json!({
        "fileId": file_id, "ownerId": user.id, "bucket": "b", "key": "k", "fileName": "a.pdf",
        "size": 10, "etag": "e", "declaredType": "application/pdf", "detectedType": "image/png",
        "kind": null, "status": "FAILED", "reason": "type_mismatch: declared application/pdf but the bytes are image/png",
        "decidedAt": 0
    });
    // Unknown owner: the foreign key refuses it, as it would every time.
    let mut orphan = good.clone();
    orphan["ownerId"] = json!(uuid::Uuid::new_v4());
    orphan["fileId"] = json!(uuid::Uuid::new_v4());
    let event: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(json!({ "Records": [
        { "messageId": "m1", "body": good.to_string() },
        { "messageId": "m2", "body": "{" },
        { "messageId": "m3", "body": orphan.to_string() },
    ]}))
    .unwrap();
    let response = persist::handle(&stack.persist, LambdaEvent::new(event, Context::default())).await.unwrap();
    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert!(failed.is_empty(), "nothing to retry: {failed:?}");
    // The two that can never be written are in the DLQ at once, with their bodies.
    let mut dead = Vec::new();
    for _ in 0..20 {
        let out = stack.clients.sqs().receive_message().queue_url(&stack.dlq_url).max_number_of_messages(10).send().await.unwrap();
        dead.extend(out.messages.unwrap_or_default().into_iter().filter_map(|m| m.body));
        if dead.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    dead.sort();
    let mut expected = vec![orphan.to_string(), "{".to_string()];
    expected.sort();
    assert_eq!(dead, expected);

    // The same verdict twice in one batch (at-least-once delivery) is no failure.
    let mut other = good.clone();
    other["fileId"] = json!(uuid::Uuid::new_v4());
    let event: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(json!({ "Records": [
        { "messageId": "d1", "body": other.to_string() },
        { "messageId": "d2", "body": other.to_string() },
        { "messageId": "d3", "body": good.to_string() },
    ]}))
    .unwrap();
    let response = persist::handle(&stack.persist, LambdaEvent::new(event, Context::default())).await.unwrap();
    assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures);
    assert_eq!(count_rows(&stack, other["fileId"].as_str().unwrap()).await.0, 1);
    let (_, file) = client.call("GET", &format!("/files/{file_id}"), Some(&user.token), None).await;
    assert_eq!(file["status"], "FAILED", "{file}");
    assert!(file["reason"].as_str().unwrap().starts_with("type_mismatch"));
}

/// A single PUT records no parts, so its verdict needs nothing from the
/// session table: persist writes it even while that table is unreachable,
/// and still reads the table for a multipart verdict (which then fails and
/// is retried).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_put_verdict_is_persisted_without_the_session_table() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let unreachable = stack
        .clients
        .dynamodb()
        .config()
        .to_builder()
        .endpoint_url("http://127.0.0.1:9")
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .build();
    let deps = persist::Persist {
        rows: persist::PostgresVerdicts {
            db: sluice_shared::db::Db::new(sluice_shared::db::DbConfig::parse(&stack.database_url, None, None).unwrap()),
        },
        sessions: sluice_shared::sessions::SessionStore::new(aws_sdk_dynamodb::Client::from_conf(unreachable), "sessions"),
        queues: sluice_shared::adapters::SqsQueues::new(stack.clients.sqs()),
        settings: persist::PersistSettings {
            queue_url: stack.queue_url.clone(),
            dead_letter_queue_url: stack.dlq_url.clone(),
            retry_base_secs: 1,
            retry_max_secs: 1,
        },
    };
    let verdict = |mode: &str| {
        let file_id = uuid::Uuid::new_v4();
        json!({
            "fileId": file_id, "ownerId": user.id, "bucket": stack.bucket,
            "key": format!("uploads/{}/{file_id}/a.png", user.id), "fileName": "a.png",
            "size": 10, "etag": "e", "declaredType": "image/png", "detectedType": "image/png",
            "kind": "IMAGE", "status": "UPLOADED", "reason": null, "mode": mode, "decidedAt": 0
        })
    };
    let (single, multipart) = (verdict("single"), verdict("multipart"));
    let event: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(json!({ "Records": [
        { "messageId": "single", "body": single.to_string() },
        { "messageId": "multipart", "body": multipart.to_string() },
    ]}))
    .unwrap();
    let response = persist::handle(&deps, LambdaEvent::new(event, Context::default())).await.unwrap();
    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, ["multipart"]);
    assert_eq!(count_rows(&stack, single["fileId"].as_str().unwrap()).await, (1, 0));
    assert_eq!(count_rows(&stack, multipart["fileId"].as_str().unwrap()).await, (0, 0));
}

/// Inspect sends the verdict before it removes a refused object: when the
/// send fails, Lambda's retry finds the object and decides again, instead of
/// taking the event for a duplicate and leaving the file UPLOADING forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_file_whose_verdict_send_failed_ends_failed_on_inspects_retry() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let sqs = stack.clients.sqs();
    let attributes = queue_attributes(&stack, &stack.queue_url).await;
    let name = stack.queue_url.rsplit('/').next().unwrap().to_string();

    // The verdict queue goes away: inspect's first send fails.
    sqs.delete_queue().queue_url(&stack.queue_url).send().await.unwrap();
    let (id, put) = client.upload_single(&user, "cat.jpg", "image/jpeg", &elf(4096)).await;
    assert_eq!(put, 200);
    let key = format!("uploads/{}/{id}/cat.jpg", user.id);
    eventually(10, "inspect to read the object", || async { stack.s3_probe.reads_of(&key).requests > 0 }).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let head = stack.clients.s3().head_object().bucket(&stack.bucket).key(&key).send().await;
    assert!(head.is_ok(), "the object stays until its verdict is sent");

    // It comes back before Lambda's retry (1 s later here).
    let mut create = sqs.create_queue().queue_name(&name);
    for (attribute, value) in
        attributes.iter().filter(|(a, _)| matches!(a, QueueAttributeName::VisibilityTimeout | QueueAttributeName::RedrivePolicy))
    {
        create = create.attributes(attribute.clone(), value);
    }
    create.send().await.unwrap();

    let file = client.wait_final(&user, &id).await;
    assert_eq!(file["status"], "FAILED", "{file}");
    assert!(file["reason"].as_str().unwrap().starts_with("forbidden_content"), "{file}");
    // Removed right after the send, which persist may beat.
    eventually(5, "the refused object removed once its verdict is out", || async {
        stack.clients.s3().head_object().bucket(&stack.bucket).key(&key).send().await.is_err()
    })
    .await;
    let owner = uuid::Uuid::parse_str(&user.id).unwrap();
    assert_eq!(stack.inspect.quota.used(owner).await.unwrap(), 0, "its bytes leave the quota");
}

/// While Postgres is unreachable a verdict is hidden for persist's backoff
/// (here 4 s, against the queue's 30 s visibility timeout) instead of being
/// burned through its receives; a message that can never be a verdict goes
/// to the dead-letter queue at once, not after maxReceiveCount receives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_verdict_backs_off_and_garbage_goes_to_the_dlq_at_once() {
    let stack = spawn_stack().await;
    let sqs = stack.clients.sqs();
    // Queues of this test's own, which the stack's poller does not read.
    let name = stack.queue_url.rsplit('/').next().unwrap();
    let dlq = sqs.create_queue().queue_name(format!("{name}-own-dlq")).send().await.unwrap().queue_url.unwrap();
    let queue = sqs
        .create_queue()
        .queue_name(format!("{name}-own"))
        .attributes(QueueAttributeName::VisibilityTimeout, "30")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let deps = persist::Persist {
        rows: persist::PostgresVerdicts {
            db: sluice_shared::db::Db::new(
                sluice_shared::db::DbConfig::parse("postgres://postgres@127.0.0.1:9/nowhere", None, None).unwrap(),
            ),
        },
        sessions: sluice_shared::sessions::SessionStore::new(stack.clients.dynamodb(), &stack.table),
        queues: sluice_shared::adapters::SqsQueues::new(sqs.clone()),
        settings: persist::PersistSettings {
            queue_url: queue.clone(),
            dead_letter_queue_url: dlq.clone(),
            retry_base_secs: 4,
            retry_max_secs: 60,
        },
    };
    let file_id = uuid::Uuid::new_v4();
    let verdict = json!({
        "fileId": file_id, "ownerId": uuid::Uuid::new_v4(), "bucket": stack.bucket,
        "key": format!("uploads/x/{file_id}/a.png"), "fileName": "a.png", "size": 10, "etag": "e",
        "declaredType": "image/png", "detectedType": "image/png", "kind": "IMAGE", "status": "UPLOADED",
        "reason": null, "mode": "single", "decidedAt": 0
    });
    for body in [verdict.to_string(), "{\"not\": \"a verdict\"}".to_string()] {
        sqs.send_message().queue_url(&queue).message_body(body).send().await.unwrap();
    }
    let receive = || async {
        let out = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        out.messages.unwrap_or_default()
    };
    let mut messages = receive().await;
    if messages.len() < 2 {
        messages.extend(receive().await);
    }
    assert_eq!(messages.len(), 2);
    let event = serde_json::from_value(sluice_local::events::sqs_event(&messages, "arn:aws:sqs:eu-west-1:000000000000:own")).unwrap();
    let failed_at = std::time::Instant::now();
    let response = persist::handle(&deps, LambdaEvent::new(event, Context::default())).await.unwrap();
    let failed: Vec<String> = response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
    let verdict_id = messages.iter().find(|m| m.body().unwrap().contains("fileId")).unwrap().message_id.clone().unwrap();
    assert_eq!(failed, std::slice::from_ref(&verdict_id), "only the verdict is retried; the garbage is dealt with");

    let in_dlq = sqs.receive_message().queue_url(&dlq).wait_time_seconds(2).send().await.unwrap().messages.unwrap_or_default();
    assert_eq!(in_dlq.iter().map(|m| m.body().unwrap()).collect::<Vec<_>>(), ["{\"not\": \"a verdict\"}"]);

    assert!(receive().await.is_empty(), "the verdict is hidden right after its failure");
    let mut back = Vec::new();
    while back.is_empty() && failed_at.elapsed().as_secs() < 20 {
        back = receive().await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let waited = failed_at.elapsed().as_secs_f64();
    assert_eq!(back.iter().map(|m| m.message_id.clone().unwrap()).collect::<Vec<_>>(), [verdict_id]);
    assert!((3.5..15.0).contains(&waited), "back after the 4 s backoff, not the queue's 30 s: {waited:.1} s");
}
