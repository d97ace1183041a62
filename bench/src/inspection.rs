//! Inspection cost against object size: the bytes inspect reads from S3
//! (counted by the local S3 as they leave it) and its time to a verdict,
//! for objects of growing size. The handler is called as Lambda would call
//! it, with the S3 event of each object.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use aws_sdk_s3::primitives::ByteStream;
use lambda_runtime::{Context, LambdaEvent};
use sluice_local::Stack;
use sluice_local::s3::ObjectCreated;
use sluice_shared::aws::metadata;
use tokio::io::AsyncWriteExt;

use crate::api::Api;
use crate::report::{Report, Row, median, ms};
use crate::{KIB, MIB, Scale};

const MAX_READ: u64 = 64 * KIB;
const MAX_RATIO: f64 = 1.2;

/// A PNG signature, then filler.
pub const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";

pub async fn run(stack: &Stack, scale: &Scale, report: &mut Report) -> anyhow::Result<()> {
    let owner = Api::new(&stack.api_url).new_user().await?.id;
    let mut smallest: Option<f64> = None;
    let largest = scale
        .inspect_sizes
        .iter()
        .copied()
        .max()
        .unwrap_or_default();
    for &size in &scale.inspect_sizes {
        let (read, time) = inspect_object(stack, &owner, size, scale.inspect_runs).await?;
        let ratio = smallest.map(|s| time / s);
        let within_read = read <= MAX_READ;
        let (target, met) = match ratio {
            Some(ratio) if size == largest => (
                format!(
                    "≤ {} KiB read; ≤ {MAX_RATIO}× the {} time",
                    MAX_READ / KIB,
                    label(scale.inspect_sizes[0])
                ),
                within_read && ratio <= MAX_RATIO,
            ),
            _ => (format!("≤ {} KiB read", MAX_READ / KIB), within_read),
        };
        report.add(Row {
            bench: format!("Inspection: {} object", label(size)),
            ours: format!(
                "{:.1} KiB read, {} to verdict",
                read as f64 / KIB as f64,
                ms(time)
            ),
            reference: match smallest {
                Some(s) => format!("{} object: {}", label(scale.inspect_sizes[0]), ms(s)),
                None => "—".into(),
            },
            ratio,
            target,
            met: Some(met),
        });
        smallest.get_or_insert(time);
    }
    Ok(())
}

fn label(size: u64) -> String {
    if size >= 1024 * MIB {
        format!("{} GiB", size / (1024 * MIB))
    } else if size >= MIB {
        format!("{} MiB", size / MIB)
    } else {
        format!("{} KiB", size / KIB)
    }
}

/// Puts an object of `size` bytes as an upload would leave it, then calls
/// inspect on it `runs` times; answers the bytes read per call and the
/// median time.
async fn inspect_object(
    stack: &Stack,
    owner: &str,
    size: u64,
    runs: usize,
) -> anyhow::Result<(u64, f64)> {
    let file_id = uuid::Uuid::new_v4().to_string();
    let key = format!("uploads/{owner}/{file_id}/picture.png");
    let path = crate::scratch_dir().join(format!("inspect-{size}.png"));
    write_png(&path, size).await?;
    stack
        .clients
        .s3()
        .put_object()
        .bucket(&stack.bucket)
        .key(&key)
        .metadata(metadata::OWNER, owner)
        .metadata(metadata::FILE_ID, &file_id)
        .metadata(metadata::DECLARED_TYPE, "image/png")
        .body(ByteStream::from_path(&path).await?)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(sluice_shared::aws::describe(e)))
        .with_context(|| format!("putting {key}"))?;
    let _ = tokio::fs::remove_file(&path).await;

    // The put's own event has already set inspect going; let it finish first.
    let deadline = Instant::now() + Duration::from_secs(30);
    while stack.s3_probe.reads_of(&key).requests == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let before = stack.s3_probe.reads_of(&key);
    let object = ObjectCreated {
        event_name: "ObjectCreated:Put",
        bucket: stack.bucket.clone(),
        key: key.clone(),
        size,
        etag: String::new(),
    };
    let event = sluice_local::events::s3_event(&object);
    let mut times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        inspect::handle(
            &stack.inspect,
            LambdaEvent::new(event.clone(), Context::default()),
        )
        .await
        .map_err(|e| anyhow::anyhow!("inspect failed on {key}: {e}"))?;
        times.push(started.elapsed().as_secs_f64());
    }
    let after = stack.s3_probe.reads_of(&key);
    let requests = after.requests - before.requests;
    if requests == 0 {
        bail!("inspect read nothing of {key}");
    }
    let _ = stack
        .clients
        .s3()
        .delete_object()
        .bucket(&stack.bucket)
        .key(&key)
        .send()
        .await;
    Ok((
        (after.bytes - before.bytes) / u64::from(requests),
        median(&mut times),
    ))
}

/// Streams the file to disk in 1 MiB writes (a 1 GiB input is never in memory).
pub async fn write_png(path: &Path, size: u64) -> anyhow::Result<()> {
    let mut file = tokio::io::BufWriter::new(tokio::fs::File::create(path).await?);
    let mut block = vec![0u8; MIB as usize];
    let mut x: u32 = 0x9E37_79B9;
    for word in block.chunks_exact_mut(4) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        word.copy_from_slice(&x.to_le_bytes());
    }
    block[..PNG.len()].copy_from_slice(PNG);
    let mut written = 0;
    while written < size {
        let n = (size - written).min(MIB) as usize;
        file.write_all(&block[..n]).await?;
        written += n as u64;
    }
    file.flush().await?;
    Ok(())
}
