//! End to end: the `sluice` CLI uploading a file through the API, against
//! raw presigned-part PUTs of the same bytes to the same local S3 with the
//! same part size and concurrency; then complete → UPLOADED latency.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use futures::StreamExt;
use reqwest::Method;
use sluice_api::files::File;
use sluice_api::uploads::{ChunkBatch, ChunksRecorded, CompleteAccepted, RecordedChunk, StartUpload, StartedUpload};
use sluice_api::{FileStatus, UploadMode};
use sluice_cli::api::Api;
use sluice_local::Stack;
use sluice_shared::domain::{PartPlan, Sha256Checksum};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::api::new_user;
use crate::inspection::write_png;
use crate::report::{Report, Row, median, ms, percentile};
use crate::{KIB, MIB, Scale};

const MIN_RATIO: f64 = 0.8;
const MAX_P50: f64 = 0.250;

pub async fn run(stack: &Stack, bin_dir: &Path, scale: &Scale, report: &mut Report) -> anyhow::Result<()> {
    throughput(stack, bin_dir, scale, report).await?;
    latency(stack, scale, report).await
}

fn mb_per_s(bytes: u64, seconds: f64) -> String {
    format!("{:.0} MB/s", bytes as f64 / 1e6 / seconds)
}

async fn throughput(stack: &Stack, bin_dir: &Path, scale: &Scale, report: &mut Report) -> anyhow::Result<()> {
    let file = crate::scratch_dir().join("upload.png");
    write_png(&file, scale.upload_size).await?;
    let cli = Cli::signed_up(stack, bin_dir).await?;
    let (mut ours, mut raw, mut raw_sha256) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..scale.upload_runs {
        raw.push(raw_upload(stack, &file, scale, Checksums::None).await?);
        raw_sha256.push(raw_upload(stack, &file, scale, Checksums::Sha256).await?);
        ours.push(cli.upload(&file, scale.concurrency).await?);
    }
    let _ = tokio::fs::remove_file(&file).await;
    let (ours_seconds, raw, raw_sha256) = (median(&mut ours), median(&mut raw), median(&mut raw_sha256));
    let size = scale.upload_size as f64 / MIB as f64;
    let bench = format!("Upload: {size:.0} MiB with `sluice upload`, {} parts in flight", scale.concurrency);
    let ours = format!("{} ({})", mb_per_s(scale.upload_size, ours_seconds), ms(ours_seconds));
    let ratio = raw / ours_seconds;
    report.add(Row {
        bench: bench.clone(),
        ours: ours.clone(),
        reference: format!("raw presigned part PUTs: {} ({})", mb_per_s(scale.upload_size, raw), ms(raw)),
        ratio: Some(ratio),
        target: format!("≥ {:.0} % of raw", MIN_RATIO * 100.0),
        met: Some(ratio >= MIN_RATIO),
    });
    // The CLI signs each part's SHA-256 in, and S3 verifies it; this
    // reference pays the same, so what is left between the two is the API.
    report.add(Row {
        bench: format!("{bench}, against PUTs that also carry each part's SHA-256"),
        ours,
        reference: format!("raw part PUTs with x-amz-checksum-sha256: {} ({})", mb_per_s(scale.upload_size, raw_sha256), ms(raw_sha256)),
        ratio: Some(raw_sha256 / ours_seconds),
        target: "— (shows the API's share)".into(),
        met: None,
    });
    Ok(())
}

/// The CLI as a user runs it, with its own config folder.
struct Cli {
    bin: std::path::PathBuf,
    config: std::path::PathBuf,
}

impl Cli {
    async fn signed_up(stack: &Stack, bin_dir: &Path) -> anyhow::Result<Self> {
        let cli = Self { bin: bin_dir.join("sluice"), config: crate::scratch_dir().join("cli-config") };
        if !cli.bin.is_file() {
            bail!("{} is missing; build it first (make bench does)", cli.bin.display());
        }
        let email = format!("bench-{}@example.com", uuid::Uuid::new_v4().simple());
        cli.run(&["signup", "--api", &stack.api_url, "--email", &email]).await?;
        Ok(cli)
    }

    async fn run(&self, args: &[&str]) -> anyhow::Result<()> {
        let output = tokio::process::Command::new(&self.bin)
            .args(args)
            .env("SLUICE_CONFIG_DIR", &self.config)
            .env("SLUICE_PASSWORD", "correct horse battery")
            .stdin(Stdio::null())
            .output()
            .await?;
        if !output.status.success() {
            bail!("sluice {args:?} failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr));
        }
        Ok(())
    }

    /// Seconds from exec to exit of `sluice upload`.
    async fn upload(&self, file: &Path, parallel: usize) -> anyhow::Result<f64> {
        let started = Instant::now();
        let file = file.to_string_lossy();
        self.run(&["upload", &file, "--parallel", &parallel.to_string(), "--json"]).await?;
        Ok(started.elapsed().as_secs_f64())
    }
}

/// Whether the raw reference sends each part's SHA-256, as `sluice upload`
/// does (S3 then verifies it), or nothing but the bytes.
#[derive(Clone, Copy, PartialEq)]
enum Checksums {
    None,
    Sha256,
}

/// The same bytes with the SDK's presigned UploadPart URLs and nothing
/// else: create, sign, PUT `concurrency` parts at a time, complete.
async fn raw_upload(stack: &Stack, file: &Path, scale: &Scale, checksums: Checksums) -> anyhow::Result<f64> {
    let started = Instant::now();
    let s3 = stack.clients.s3();
    let key = format!("raw/{}.png", uuid::Uuid::new_v4());
    let plan = PartPlan::for_size(scale.upload_size, u64::MAX)?;
    let created = s3
        .create_multipart_upload()
        .bucket(&stack.bucket)
        .key(&key)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(sluice_shared::aws::describe(e)))?;
    let upload_id = created.upload_id.context("no upload id")?;
    let presigning = PresigningConfig::expires_in(Duration::from_secs(3600))?;
    let http = reqwest::Client::new();
    let file = Arc::new(file.to_path_buf());
    let part_size = plan.part_size;
    let puts = futures::stream::iter(plan.parts())
        .map(|part| {
            let (http, file, s3) = (http.clone(), file.clone(), s3.clone());
            let (key, upload_id, presigning) = (&key, &upload_id, presigning.clone());
            async move {
                let number = part.get();
                let mut reader = tokio::fs::File::open(&*file).await?;
                reader.seek(std::io::SeekFrom::Start(u64::from(number - 1) * part_size)).await?;
                let mut bytes = vec![0u8; plan.size_of(part) as usize];
                reader.read_exact(&mut bytes).await?;
                let sha256 = (checksums == Checksums::Sha256).then(|| Sha256Checksum::of(&bytes).into_string());
                let signed = s3
                    .upload_part()
                    .bucket(&stack.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .part_number(number as i32)
                    .set_checksum_sha256(sha256.clone())
                    .presigned(presigning)
                    .await?;
                let signed_sha256 = signed.headers().find(|(name, _)| name.eq_ignore_ascii_case("x-amz-checksum-sha256"));
                if signed_sha256.map(|(_, value)| value) != sha256.as_deref() {
                    bail!("the presigned part carries {signed_sha256:?}, not the SHA-256 asked for");
                }
                let mut put = http.put(signed.uri());
                for (name, value) in signed.headers() {
                    put = put.header(name, value);
                }
                let resp = put.body(bytes).send().await?.error_for_status()?;
                let etag = etag_of(&resp)?;
                anyhow::Ok(CompletedPart::builder().part_number(number as i32).e_tag(etag).build())
            }
        })
        .buffer_unordered(scale.concurrency);
    let mut parts: Vec<CompletedPart> = puts.collect::<Vec<_>>().await.into_iter().collect::<anyhow::Result<_>>()?;
    parts.sort_by_key(|p| p.part_number);
    s3.complete_multipart_upload()
        .bucket(&stack.bucket)
        .key(&key)
        .upload_id(&upload_id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(sluice_shared::aws::describe(e)))?;
    let elapsed = started.elapsed().as_secs_f64();
    let _ = s3.delete_object().bucket(&stack.bucket).key(&key).send().await;
    Ok(elapsed)
}

/// From the 202 of `POST /uploads/{id}/complete` until `GET /files/{id}`
/// says UPLOADED (inspect, the queue and persist in between), one upload
/// at a time so no upload waits behind another.
async fn latency(stack: &Stack, scale: &Scale, report: &mut Report) -> anyhow::Result<()> {
    let user = new_user(&stack.api_url).await?;
    let bytes = small_png(256 * KIB as usize);
    let mut latencies = Vec::new();
    for i in 0..scale.latency_uploads {
        latencies.push(complete_to_uploaded(&user.api, &bytes, i).await?);
    }
    let p50 = percentile(&mut latencies, 50.0);
    let p95 = percentile(&mut latencies, 95.0);
    report.add(Row {
        bench: format!("Upload: complete → UPLOADED, {} uploads", scale.latency_uploads),
        ours: format!("p50 {}, p95 {}", ms(p50), ms(p95)),
        reference: "—".into(),
        ratio: None,
        target: format!("p50 ≤ {}", ms(MAX_P50)),
        met: Some(p50 <= MAX_P50),
    });
    Ok(())
}

fn small_png(size: usize) -> Vec<u8> {
    sluice_shared::inspection::samples::png(size)
}

async fn complete_to_uploaded(api: &Api, bytes: &[u8], i: usize) -> anyhow::Result<f64> {
    let size = bytes.len() as u64;
    let start = StartUpload {
        file_name: format!("pic-{i}.png"),
        size,
        content_type: "image/png".into(),
        mode: Some(UploadMode::Multipart),
        sha256: None,
    };
    let StartedUpload::Multipart(started) = api.call_once(Method::POST, "/uploads", Some(&start)).await? else {
        bail!("asked for multipart, answered one PUT")
    };
    let file_id = started.file_id;
    let part = started.parts.first().context("no part URL")?;
    let mut put = api.http.put(&part.url).body(bytes.to_vec());
    for (name, value) in &part.headers {
        put = put.header(name, value);
    }
    let resp = put.send().await?.error_for_status()?;
    let etag = etag_of(&resp)?;
    let record = ChunkBatch { parts: vec![RecordedChunk { part_number: 1, etag, size, checksum_sha256: None }] };
    let _: ChunksRecorded = api.post(&format!("/uploads/{file_id}/chunks"), &record).await?;
    let _: CompleteAccepted = api.post(&format!("/uploads/{file_id}/complete"), &serde_json::Map::new()).await?;
    let completed = Instant::now();
    loop {
        let file = api.get::<File>(&format!("/files/{file_id}")).await;
        match file.as_ref().ok().map(|f| f.status) {
            Some(FileStatus::Uploaded) => return Ok(completed.elapsed().as_secs_f64()),
            Some(FileStatus::Failed) => bail!("{file_id} FAILED: {:?}", file),
            _ if completed.elapsed() > Duration::from_secs(30) => {
                bail!("{file_id} not UPLOADED 30 s after complete")
            }
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

/// The ETag S3 answered a part PUT with (complete and record need it).
fn etag_of(resp: &reqwest::Response) -> anyhow::Result<String> {
    let etag = resp.headers().get("etag").and_then(|e| e.to_str().ok());
    Ok(etag.context("S3 answered the PUT without an ETag")?.to_string())
}
