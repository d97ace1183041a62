//! Signing: every part URL of a 48 GiB upload in-process (what
//! `POST /uploads` does for a multipart upload), and part URLs per second
//! over HTTP through our Companion-compatible route against Uppy Companion's
//! own, with the same client and concurrency, on the same local S3.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use sluice_local::Stack;
use sluice_local::stack::{ACCESS_KEY, SECRET_KEY};
use sluice_shared::domain::status::SessionStage;
use sluice_shared::domain::{PartPlan, UploadMode};
use sluice_shared::sessions::UploadSession;
use tokio::io::AsyncBufReadExt;

use crate::api::Api;
use crate::report::{Report, Row, median, megabytes, ms, peak_rss};
use crate::{GIB, Scale};

const MAX_SIGN_ALL: f64 = 0.050;
const MIN_HTTP_RATIO: f64 = 10.0;

pub async fn run(stack: &Stack, scale: &Scale, report: &mut Report) -> anyhow::Result<()> {
    in_process(stack, scale, report).await?;
    over_http(stack, scale, report).await
}

async fn in_process(stack: &Stack, scale: &Scale, report: &mut Report) -> anyhow::Result<()> {
    let mut times = Vec::new();
    let mut part_count = 0;
    for _ in 0..scale.sign_runs {
        let started = Instant::now();
        let plan = PartPlan::for_size(scale.sign_upload_size, u64::MAX)?;
        let session = UploadSession {
            file_id: uuid::Uuid::new_v4(),
            owner_id: uuid::Uuid::new_v4(),
            key: "uploads/bench/bench/video.mp4".into(),
            upload_id: "bench-upload-id".into(),
            file_name: "video.mp4".into(),
            declared_type: "video/mp4".into(),
            mode: UploadMode::Multipart,
            plan,
            sha256: None,
            stage: SessionStage::Open,
            recorded_count: 0,
            created_at: 0,
            expires_at: u64::MAX,
        };
        let parts: Vec<_> = plan.parts().map(|part| (part, None)).collect();
        let urls = presign::sign_parts(&stack.api.presign, &session, &parts)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        times.push(started.elapsed().as_secs_f64());
        if urls.len() != plan.part_count as usize {
            bail!("{} URLs signed for {} parts", urls.len(), plan.part_count);
        }
        part_count = urls.len();
    }
    let time = median(&mut times);
    let size = scale.sign_upload_size as f64 / GIB as f64;
    report.add(Row {
        bench: format!("Signing: plan + sign a {size:.0} GiB upload in-process"),
        ours: format!(
            "{} for {part_count} part URLs ({:.1} µs each)",
            ms(time),
            time * 1e6 / part_count as f64
        ),
        reference: "—".into(),
        ratio: None,
        target: format!("10,000 parts ≤ {}", ms(MAX_SIGN_ALL)),
        met: Some(time <= MAX_SIGN_ALL),
    });
    Ok(())
}

/// One multipart upload on each side, then as many part URLs as
/// `concurrency` clients get in the time given.
async fn over_http(stack: &Stack, scale: &Scale, report: &mut Report) -> anyhow::Result<()> {
    let api = Api::new(&stack.api_url);
    let user = api.new_user().await?;
    let create =
        json!({ "filename": "video.mp4", "type": "video/mp4", "metadata": { "size": 48 * GIB } });
    let ours = api
        .call(
            reqwest::Method::POST,
            "/s3/multipart",
            Some(&user.token),
            Some(create),
        )
        .await?;
    let ours_rate = hammer(&api.http, &stack.api_url, &ours, Some(&user.token), scale).await?;

    let companion = Companion::start(stack).await?;
    let create = json!({ "filename": "video.mp4", "type": "video/mp4", "metadata": {} });
    let theirs: Value = api
        .http
        .post(format!("{}/s3/multipart", companion.url))
        .json(&create)
        .send()
        .await?
        .error_for_status()
        .context("Companion's POST /s3/multipart")?
        .json()
        .await?;
    let theirs_rate = hammer(&api.http, &companion.url, &theirs, None, scale).await?;
    let companion_rss = peak_rss(companion.pid).unwrap_or_default();
    drop(companion);

    let ratio = ours_rate.per_second / theirs_rate.per_second;
    let errors = ours_rate.errors + theirs_rate.errors;
    report.add(Row {
        bench: format!(
            "Signing: part URLs/s over HTTP, {} clients",
            scale.concurrency
        ),
        ours: format!("{:.0}/s{}", ours_rate.per_second, ours_rate.error_note()),
        reference: format!(
            "Uppy Companion: {:.0}/s{} (RSS {})",
            theirs_rate.per_second,
            theirs_rate.error_note(),
            megabytes(companion_rss)
        ),
        ratio: Some(ratio),
        target: format!("≥ {MIN_HTTP_RATIO}× Companion"),
        met: Some(errors == 0 && ratio >= MIN_HTTP_RATIO),
    });
    Ok(())
}

struct Rate {
    per_second: f64,
    errors: u64,
}

impl Rate {
    fn error_note(&self) -> String {
        if self.errors == 0 {
            String::new()
        } else {
            format!(" ({} errors)", self.errors)
        }
    }
}

/// `GET /s3/multipart/{uploadId}/{n}?key=…` as fast as `concurrency`
/// clients can, for the scale's time; counts the answers with a URL.
async fn hammer(
    http: &reqwest::Client,
    base: &str,
    upload: &Value,
    token: Option<&str>,
    scale: &Scale,
) -> anyhow::Result<Rate> {
    let upload_id = upload["uploadId"].as_str().context("no uploadId")?;
    let key = upload["key"].as_str().context("no key")?;
    let url = Arc::new(format!("{base}/s3/multipart/{upload_id}"));
    let key = Arc::new(key.to_string());
    let next_part = Arc::new(AtomicU32::new(0));
    let (signed, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(scale.http_seconds);
    let workers: Vec<_> = (0..scale.concurrency)
        .map(|_| {
            let (http, url, key, token) = (
                http.clone(),
                url.clone(),
                key.clone(),
                token.map(str::to_string),
            );
            let (next_part, signed, errors) = (next_part.clone(), signed.clone(), errors.clone());
            tokio::spawn(async move {
                while Instant::now() < until {
                    let part = next_part.fetch_add(1, Ordering::Relaxed) % 10_000 + 1;
                    let mut req = http
                        .get(format!("{url}/{part}"))
                        .query(&[("key", key.as_str())]);
                    if let Some(token) = &token {
                        req = req.bearer_auth(token);
                    }
                    let answer = match req.send().await {
                        Ok(resp) if resp.status().is_success() => resp.json::<Value>().await.ok(),
                        _ => None,
                    };
                    match answer {
                        Some(body) if body["url"].is_string() => {
                            signed.fetch_add(1, Ordering::Relaxed)
                        }
                        _ => errors.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(Rate {
        per_second: signed.load(Ordering::Relaxed) as f64 / elapsed,
        errors: errors.load(Ordering::Relaxed),
    })
}

/// `@uppy/companion` (bench/companion) on loopback, on the stack's S3.
struct Companion {
    url: String,
    pid: u32,
    _process: tokio::process::Child,
}

impl Companion {
    async fn start(stack: &Stack) -> anyhow::Result<Self> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/companion");
        if !std::path::Path::new(dir)
            .join("node_modules/@uppy/companion")
            .is_dir()
        {
            bail!("{dir}/node_modules is missing; run `make setup` (it runs npm ci there)");
        }
        let mut process = tokio::process::Command::new("node")
            .arg("server.mjs")
            .current_dir(dir)
            .env(
                "COMPANION_FILE_PATH",
                crate::scratch_dir().join("companion"),
            )
            .env("COMPANION_S3_ENDPOINT", &stack.s3_url)
            .env("COMPANION_S3_BUCKET", &stack.bucket)
            .env("COMPANION_S3_REGION", sluice_local::events::REGION)
            .env("COMPANION_S3_KEY", ACCESS_KEY)
            .env("COMPANION_S3_SECRET", SECRET_KEY)
            .env("NODE_ENV", "production")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting node bench/companion/server.mjs")?;
        let pid = process.id().context("Companion ended at once")?;
        let mut lines =
            tokio::io::BufReader::new(process.stdout.take().context("no stdout")?).lines();
        let port = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(port) = line.strip_prefix("listening ") {
                    return port.trim().parse::<u16>().ok();
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .context("Companion did not start listening within 60 s")?;
        // Companion logs each request to stdout; keep reading so it never blocks.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            url: format!("http://127.0.0.1:{port}"),
            pid,
            _process: process,
        })
    }
}
