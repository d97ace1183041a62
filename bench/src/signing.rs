//! Signing: every part URL of a 48 GiB upload in-process (what
//! `POST /uploads` does for a multipart upload), and part URLs per second
//! over HTTP through our Companion-compatible route against Uppy Companion's
//! own, with the same client and concurrency, on the same local S3.

use std::process::Stdio;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::json;
use sluice_api::companion::{CreateMultipart, MultipartCreated, SignedPart};
use sluice_api::uploads::{PartUrls, StartUpload, StartedUpload};
use sluice_local::Stack;
use sluice_local::stack::{ACCESS_KEY, SECRET_KEY};
use sluice_shared::domain::status::SessionStage;
use sluice_shared::domain::{PartPlan, UploadMode};
use sluice_shared::sessions::UploadSession;
use tokio::io::AsyncBufReadExt;

use crate::api::new_user;
use crate::report::{Report, Row, median, megabytes, ms, peak_rss};
use crate::{GIB, Scale};

const MAX_SIGN_ALL: f64 = 0.050;
const MIN_HTTP_RATIO: f64 = 10.0;
const PARTS_PER_CALL: u32 = 100;

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
            stage_at: 0,
            judged: None,
            verdict_stored: false,
        };
        let parts: Vec<_> = plan.parts().map(|part| (part, None)).collect();
        let urls = presign::sign_parts(&stack.api.presign, &session, &parts).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
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
        ours: format!("{} for {part_count} part URLs ({:.1} µs each)", ms(time), time * 1e6 / part_count as f64),
        reference: "—".into(),
        ratio: None,
        target: format!("10,000 parts ≤ {}", ms(MAX_SIGN_ALL)),
        met: Some(time <= MAX_SIGN_ALL),
    });
    Ok(())
}

/// One 48 GiB multipart upload on each side, then as many part URLs as
/// `concurrency` clients get in the time given: through our own parts
/// route (100 URLs per call, as our clients ask), through our
/// Companion-compatible route (one per call, as Uppy asks), and through
/// Companion's.
async fn over_http(stack: &Stack, scale: &Scale, report: &mut Report) -> anyhow::Result<()> {
    let user = new_user(&stack.api_url).await?;
    let (api, token) = (&user.api, user.token());

    let start = StartUpload { file_name: "video.mp4".into(), size: 48 * GIB, content_type: "video/mp4".into(), mode: None, sha256: None };
    let StartedUpload::Multipart(upload) = api.post("/uploads", &start).await? else { bail!("a 48 GiB upload started as one PUT") };
    let part_count = upload.part_count;
    let parts_url = format!("{}/uploads/{}/parts", stack.api_url, upload.file_id);
    let calls = || stack.dynamo_calls.count();
    let before = calls();
    let native = hammer(
        scale,
        |answer: &PartUrls| answer.parts.len() as u64,
        |call| {
            let first = (call * PARTS_PER_CALL) % part_count + 1;
            let count = PARTS_PER_CALL.min(part_count - first + 1);
            api.http.get(&parts_url).query(&[("first", first), ("count", count)]).bearer_auth(token)
        },
    )
    .await?;
    let native_calls = calls() - before;

    let create = |metadata: serde_json::Value| CreateMultipart {
        filename: "video.mp4".into(),
        content_type: "video/mp4".into(),
        metadata: metadata.as_object().cloned().unwrap_or_default(),
    };
    let ours: MultipartCreated = api.post("/s3/multipart", &create(json!({ "size": 48 * GIB }))).await?;
    // Declared, the plan has Uppy's cut of 48 GiB: 9,831 parts of 5 MiB.
    let planned = PartPlan::client_cut(Some(48 * GIB), u64::MAX)?.part_count;
    let ours_url = companion_part_url(&stack.api_url, &ours.upload_id, &ours.key, planned);
    let before = calls();
    let compatible = hammer(scale, one_url, |call| api.http.get(ours_url(call)).bearer_auth(token)).await?;
    let compatible_calls = calls() - before;

    let companion = Companion::start(stack).await?;
    let theirs: CompanionCreated = api
        .http
        .post(format!("{}/s3/multipart", companion.url))
        .json(&create(json!({})))
        .send()
        .await?
        .error_for_status()
        .context("Companion's POST /s3/multipart")?
        .json()
        .await?;
    let theirs_url = companion_part_url(&companion.url, &theirs.upload_id, &theirs.key, 10_000);
    let reference = hammer(scale, one_url, |call| api.http.get(theirs_url(call))).await?;
    let reference_text = format!(
        "Uppy Companion: {:.0}/s{} (RSS {})",
        reference.per_second,
        reference.error_note(),
        megabytes(peak_rss(companion.pid).unwrap_or_default())
    );
    drop(companion);

    for (rate, how, dynamo_calls, no_reads) in [
        (&native, format!("our parts route, {PARTS_PER_CALL} per call"), native_calls, false),
        (&compatible, "our Companion-compatible route, 1 per call (Uppy's protocol)".to_string(), compatible_calls, true),
    ] {
        let ratio = rate.per_second / reference.per_second;
        let errors = rate.errors + reference.errors;
        report.add(Row {
            bench: format!("Signing: part URLs/s over HTTP, {} clients, {how}", scale.concurrency),
            ours: format!("{:.0}/s{}; {dynamo_calls} DynamoDB calls", rate.per_second, rate.error_note()),
            reference: reference_text.clone(),
            ratio: Some(ratio),
            target: if no_reads {
                format!("≥ {MIN_HTTP_RATIO}× Companion, 0 DynamoDB calls")
            } else {
                format!("≥ {MIN_HTTP_RATIO}× Companion")
            },
            met: Some(errors == 0 && ratio >= MIN_HTTP_RATIO && (!no_reads || dynamo_calls == 0)),
        });
    }
    Ok(())
}

/// Companion's own answer to `POST /s3/multipart`.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct CompanionCreated {
    key: String,
    upload_id: String,
}

/// Part `n`'s URL on a Companion-shaped route, cycling through the upload's `parts`.
fn companion_part_url(base: &str, upload_id: &str, key: &str, parts: u32) -> impl Fn(u32) -> String + use<> {
    let upload_id = upload_id.to_string();
    let key: String = url_encode(key);
    let base = base.to_string();
    move |call: u32| format!("{base}/s3/multipart/{upload_id}/{}?key={key}", call % parts + 1)
}

/// The URLs in a Companion-shaped answer: one.
fn one_url(answer: &SignedPart) -> u64 {
    u64::from(!answer.url.is_empty())
}

fn url_encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

struct Rate {
    per_second: f64,
    errors: u64,
}

impl Rate {
    fn error_note(&self) -> String {
        if self.errors == 0 { String::new() } else { format!(" ({} errors)", self.errors) }
    }
}

/// The `call`-th request from `request`, as fast as `concurrency` clients
/// can for the scale's time; counts the part URLs in the answers, each
/// parsed as the contract type `T` the route answers.
async fn hammer<T: serde::de::DeserializeOwned>(
    scale: &Scale,
    urls_in: impl Fn(&T) -> u64,
    request: impl Fn(u32) -> reqwest::RequestBuilder,
) -> anyhow::Result<Rate> {
    let next_call = AtomicU32::new(0);
    let (signed, errors) = (AtomicU64::new(0), AtomicU64::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(scale.http_seconds);
    let client = || async {
        while Instant::now() < until {
            let call = next_call.fetch_add(1, Ordering::Relaxed);
            let answer = match request(call).send().await {
                Ok(resp) if resp.status().is_success() => resp.json::<T>().await.ok(),
                _ => None,
            };
            let urls = match answer {
                Some(answer) => urls_in(&answer),
                None => 0,
            };
            if urls == 0 {
                errors.fetch_add(1, Ordering::Relaxed);
            }
            signed.fetch_add(urls, Ordering::Relaxed);
        }
    };
    futures::future::join_all((0..scale.concurrency).map(|_| client())).await;
    let elapsed = started.elapsed().as_secs_f64();
    Ok(Rate { per_second: signed.load(Ordering::Relaxed) as f64 / elapsed, errors: errors.load(Ordering::Relaxed) })
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
        if !std::path::Path::new(dir).join("node_modules/@uppy/companion").is_dir() {
            bail!("{dir}/node_modules is missing; run `make setup` (it runs npm ci there)");
        }
        let mut process = tokio::process::Command::new("node")
            .arg("server.mjs")
            .current_dir(dir)
            .env("COMPANION_FILE_PATH", crate::scratch_dir().join("companion"))
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
        let mut lines = tokio::io::BufReader::new(process.stdout.take().context("no stdout")?).lines();
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
        Ok(Self { url: format!("http://127.0.0.1:{port}"), pid, _process: process })
    }
}
