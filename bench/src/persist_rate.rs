//! Persist throughput: verdict messages per second into Postgres, handed to
//! the persist handler in SQS batches of 10 by `concurrency` instances (each
//! with its connection, as concurrent Lambda instances have), against
//! pgbench inserting one files-shaped row per transaction with as many
//! clients, on the same server in the same run.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context as _, bail};
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::json;
use sluice_local::Stack;
use sluice_shared::config::Env;

use crate::Scale;
use crate::report::{Report, Row};

const MIN_RATIO: f64 = 0.5;
const BATCH: usize = 10;

pub async fn run(stack: &Stack, scale: &Scale, report: &mut Report) -> anyhow::Result<()> {
    let owner = crate::api::new_user(&stack.api_url).await?.id.to_string();
    let (ours, failures) = persist_rate(stack, &owner, scale).await?;
    let theirs = pgbench_tps(stack, &owner, scale).await?;
    let ratio = ours / theirs;
    let failed = if failures == 0 { String::new() } else { format!(" ({failures} reported failed)") };
    report.add(Row {
        bench: format!("Persist: verdicts/s into Postgres, batches of {BATCH}, {} instances", scale.concurrency),
        ours: format!("{ours:.0} msgs/s{failed}"),
        reference: format!("pgbench, 1-row INSERT per transaction: {theirs:.0} TPS"),
        ratio: Some(ratio),
        target: format!("≥ {:.0} % of pgbench", MIN_RATIO * 100.0),
        met: Some(failures == 0 && ratio >= MIN_RATIO),
    });
    Ok(())
}

fn batches(owner: &str, bucket: &str, messages: usize) -> VecDeque<SqsEvent> {
    let all: Vec<SqsMessage> = (0..messages)
        .map(|i| {
            let file_id = uuid::Uuid::new_v4();
            let verdict = json!({
                "fileId": file_id, "ownerId": owner, "bucket": bucket,
                "key": format!("uploads/{owner}/{file_id}/photo-{i}.png"), "fileName": format!("photo {i}.png"),
                "size": 1_048_576, "etag": "\"0123456789abcdef0123456789abcdef-1\"",
                "declaredType": "image/png", "detectedType": "image/png", "kind": "IMAGE",
                "status": "UPLOADED", "reason": null, "mode": "single",
                "decidedAt": 1_795_356_006u64,
            });
            let mut message = SqsMessage::default();
            message.message_id = Some(uuid::Uuid::new_v4().to_string());
            message.body = Some(verdict.to_string());
            message
        })
        .collect();
    all.chunks(BATCH)
        .map(|chunk| {
            let mut event = SqsEvent::default();
            event.records = chunk.to_vec();
            event
        })
        .collect()
}

/// Answers messages per second and how many were reported failed.
async fn persist_rate(stack: &Stack, owner: &str, scale: &Scale) -> anyhow::Result<(f64, usize)> {
    let queue = Arc::new(Mutex::new(batches(owner, &stack.bucket, scale.persist_messages)));
    let env = Env::from_pairs(stack.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let mut instances = Vec::new();
    for _ in 0..scale.concurrency {
        let instance = persist::Persist::from_env(&env, &stack.clients)?;
        // A warm instance: its connection is already open.
        instance.rows.db.client().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        instances.push(instance);
    }
    let started = Instant::now();
    let workers: Vec<_> = instances
        .into_iter()
        .map(|instance| {
            let queue = queue.clone();
            tokio::spawn(async move {
                let mut failures = 0;
                loop {
                    let Some(batch) = queue.lock().unwrap().pop_front() else {
                        return anyhow::Ok(failures);
                    };
                    let answer = persist::handle(&instance, LambdaEvent::new(batch, Context::default())).await;
                    failures += answer.map_err(|e| anyhow::anyhow!("persist failed: {e}"))?.batch_item_failures.len();
                }
            })
        })
        .collect();
    let mut failures = 0;
    for worker in workers {
        failures += worker.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();

    let db = sluice_shared::db::connect(&stack.database_url).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let owner_id = uuid::Uuid::parse_str(owner)?;
    let rows: i64 = db.query_one("SELECT count(*) FROM files WHERE owner_id = $1", &[&owner_id]).await?.get(0);
    if rows as usize + failures != scale.persist_messages {
        bail!("{rows} rows in files after {} messages ({failures} reported failed)", scale.persist_messages);
    }
    Ok((scale.persist_messages as f64 / elapsed, failures))
}

/// pgbench's TPS for one INSERT per transaction into a copy of `files`
/// (same columns, checks and indexes; no foreign key).
async fn pgbench_tps(stack: &Stack, owner: &str, scale: &Scale) -> anyhow::Result<f64> {
    let db = sluice_shared::db::connect(&stack.database_url).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    db.batch_execute("DROP TABLE IF EXISTS bench_inserts; CREATE TABLE bench_inserts (LIKE files INCLUDING ALL)").await?;
    let script = crate::scratch_dir().join("pgbench-insert.sql");
    std::fs::write(
        &script,
        format!(
            "INSERT INTO bench_inserts (id, owner_id, file_name, bucket, s3_key, size, etag, declared_type, detected_type, kind, status) \
             VALUES (gen_random_uuid(), '{owner}', 'photo.png', '{bucket}', 'uploads/{owner}/x/photo.png', 1048576, \
             '\"0123456789abcdef0123456789abcdef-1\"', 'image/png', 'image/png', 'IMAGE', 'UPLOADED');\n",
            bucket = stack.bucket
        ),
    )?;
    let port = std::env::var("SLUICE_PG_PORT").context("SLUICE_PG_PORT is not set; run under scripts/stack.sh")?;
    let database = stack.database_url.rsplit('/').next().unwrap_or_default().to_string();
    let clients = scale.concurrency.to_string();
    let output = tokio::process::Command::new(pgbench()?)
        .args(["-n", "-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-c", &clients, "-j", &clients])
        .args(["-T", &scale.pgbench_seconds.to_string(), "-f"])
        .arg(&script)
        .arg(&database)
        .output()
        .await
        .context("running pgbench")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("pgbench failed: {}{}", text, String::from_utf8_lossy(&output.stderr));
    }
    let _ = db.batch_execute("DROP TABLE bench_inserts").await;
    text.lines()
        .find_map(|line| line.strip_prefix("tps = ")?.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no `tps = ` line in pgbench's output:\n{text}"))
}

/// Debian's pgbench, beside the server scripts/stack.sh runs.
fn pgbench() -> anyhow::Result<std::path::PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL is not installed (make setup installs it)")?
        .filter_map(|entry| Some(entry.ok()?.path().join("bin/pgbench")))
        .filter(|path| path.is_file())
        .collect();
    found.sort();
    found.pop().context("no pgbench under /usr/lib/postgresql")
}
