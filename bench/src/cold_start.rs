//! Cold start: each function's binary from exec to its first request for
//! work (init), and through its first invocation, under a minimal Lambda
//! runtime API served here; against hello-lambda, the floor.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use sluice_local::Stack;
use sluice_local::events::{SAMPLE_TOKEN, sample_event};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::Scale;
use crate::report::{Report, Row, median, megabytes, ms, peak_rss};

/// Each function and the sample event of its first invocation.
const FUNCTIONS: &[(&str, &str)] = &[
    ("auth", "auth-signin"),
    ("presign", "presign"),
    ("record-chunk", "record-chunk"),
    ("complete-upload", "complete-upload"),
    ("files", "files-list"),
    ("inspect", "inspect"),
    ("persist", "persist"),
    ("sweeper", "sweeper"),
    ("migrate", "migrate"),
];

const FLOOR: &str = "hello-lambda";
const MAX_RATIO: f64 = 1.3;
const MAX_RSS: u64 = 20_000_000;
const MAX_SIZE: u64 = 10_000_000;

/// What the runtime API saw of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// The first `GET /next`: init is over.
    Ready,
    /// `POST /response`.
    Answered,
    /// `POST /error` or `/init/error`.
    Failed,
}

struct ColdStart {
    init: f64,
    first: f64,
    rss: u64,
    failed: bool,
}

pub async fn run(stack: &Stack, bin_dir: &Path, scale: &Scale, report: &mut Report) -> anyhow::Result<()> {
    let user = crate::api::new_user(&stack.api_url).await?;
    let mut floor = Vec::new();
    let mut measured: BTreeMap<&str, Vec<ColdStart>> = BTreeMap::new();
    for _ in 0..scale.cold_start_runs {
        // Interleaved, so a slow moment of the machine hits all alike.
        floor.push(measure(&bin_dir.join(FLOOR), FLOOR, &stack.env, |_| Ok(r#"{"hello":"world"}"#.into())).await?);
        for (function, sample) in FUNCTIONS {
            let event = |runtime: &str| event_for(sample, user.token(), runtime);
            let run = measure(&bin_dir.join(function), function, &stack.env, event).await?;
            measured.entry(function).or_default().push(run);
        }
    }

    let floor = summarise(&floor, &bin_dir.join(FLOOR))?;
    report.add(Row {
        bench: "Cold start: hello-lambda (the floor)".into(),
        ours: floor.describe(),
        reference: "—".into(),
        ratio: None,
        target: "—".into(),
        met: None,
    });
    for (function, _) in FUNCTIONS {
        let ours = summarise(&measured[function], &bin_dir.join(function))?;
        // The cold start is the init, as Lambda reports it (Init Duration)
        // and lambda-perf compares runtimes by it. The first invocation is
        // shown beside it: it reads stores the floor never touches.
        let ratio = ours.init / floor.init;
        let met = ratio <= MAX_RATIO && ours.rss <= MAX_RSS && ours.size <= MAX_SIZE;
        let failed = if ours.failed { " (answered an error)" } else { "" };
        report.add(Row {
            bench: format!("Cold start: {function}"),
            ours: format!("{}{failed}", ours.describe()),
            reference: floor.describe(),
            ratio: Some(ratio),
            target: format!("init ≤ {MAX_RATIO}× floor's, ≤ {}, ≤ {}", megabytes(MAX_RSS), megabytes(MAX_SIZE)),
            met: Some(met),
        });
    }
    Ok(())
}

struct Summary {
    init: f64,
    first: f64,
    rss: u64,
    size: u64,
    failed: bool,
}

impl Summary {
    fn total(&self) -> f64 {
        self.init + self.first
    }

    fn describe(&self) -> String {
        format!(
            "init {} + first {} = {}; RSS {}; binary {}",
            ms(self.init),
            ms(self.first),
            ms(self.total()),
            megabytes(self.rss),
            megabytes(self.size)
        )
    }
}

/// Medians of the times, the highest peak RSS, and the file's size.
fn summarise(runs: &[ColdStart], bin: &Path) -> anyhow::Result<Summary> {
    let size = std::fs::metadata(bin).with_context(|| format!("{}", bin.display()))?.len();
    Ok(Summary {
        init: median(&mut runs.iter().map(|r| r.init).collect::<Vec<_>>()),
        first: median(&mut runs.iter().map(|r| r.first).collect::<Vec<_>>()),
        rss: runs.iter().map(|r| r.rss).max().unwrap_or_default(),
        size,
        failed: runs.iter().any(|r| r.failed),
    })
}

/// The sample with a live token; migrate's CloudFormation reply goes to the
/// runtime API server, which accepts it.
fn event_for(sample: &str, token: &str, runtime: &str) -> anyhow::Result<String> {
    let text = sample_event(sample, &[(SAMPLE_TOKEN, token)])?;
    let mut event: Value = serde_json::from_str(&text)?;
    if let Some(url) = event.get_mut("ResponseURL") {
        *url = Value::String(format!("http://{runtime}/cloudformation-response"));
    }
    Ok(event.to_string())
}

async fn measure(
    bin: &Path,
    function: &str,
    stack_env: &BTreeMap<String, String>,
    event: impl FnOnce(&str) -> anyhow::Result<String>,
) -> anyhow::Result<ColdStart> {
    if !bin.is_file() {
        bail!("{} is missing; build it first (make bench does)", bin.display());
    }
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let runtime = listener.local_addr()?.to_string();
    let event = Bytes::from(event(&runtime)?);
    let (seen, mut seen_rx) = mpsc::unbounded_channel();
    let server = tokio::spawn(serve_runtime_api(listener, event, seen));

    let mut command = tokio::process::Command::new(bin);
    command
        .env_clear()
        .envs(stack_env)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", &runtime)
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = command.spawn().with_context(|| format!("starting {}", bin.display()))?;
    let pid = child.id().context("the process ended at once")?;

    let mut next = async || tokio::time::timeout(Duration::from_secs(30), seen_rx.recv()).await.ok().flatten();
    let ready = match next().await {
        Some((Seen::Ready, at)) => at,
        other => {
            bail!("{function} never asked for work (saw {other:?}); run it by hand to see why")
        }
    };
    let (outcome, answered) = next().await.with_context(|| format!("{function} never answered its first invocation"))?;
    let rss = peak_rss(pid).unwrap_or_default();
    let _ = child.kill().await;
    server.abort();
    Ok(ColdStart { init: (ready - started).as_secs_f64(), first: (answered - ready).as_secs_f64(), rss, failed: outcome == Seen::Failed })
}

/// The Lambda runtime API, as far as a function's first invocation goes:
/// one event, then `/next` hangs as it does while Lambda freezes the process.
async fn serve_runtime_api(listener: TcpListener, event: Bytes, seen: mpsc::UnboundedSender<(Seen, Instant)>) {
    let delivered = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let (event, seen, delivered) = (event.clone(), seen.clone(), delivered.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let (event, seen, delivered) = (event.clone(), seen.clone(), delivered.clone());
                async move {
                    let path = req.uri().path().to_string();
                    let _ = req.into_body().collect().await;
                    let mut resp = hyper::Response::new(Full::new(Bytes::new()));
                    if path.ends_with("/invocation/next") {
                        if delivered.swap(true, std::sync::atomic::Ordering::SeqCst) {
                            std::future::pending::<()>().await;
                        }
                        let _ = seen.send((Seen::Ready, Instant::now()));
                        let deadline = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default()
                            + Duration::from_secs(300);
                        let headers = resp.headers_mut();
                        headers.insert("lambda-runtime-aws-request-id", "bench-request-1".parse().unwrap());
                        headers.insert("lambda-runtime-deadline-ms", deadline.as_millis().to_string().parse().unwrap());
                        headers.insert(
                            "lambda-runtime-invoked-function-arn",
                            "arn:aws:lambda:us-east-1:000000000000:function:bench".parse().unwrap(),
                        );
                        headers.insert("content-type", "application/json".parse().unwrap());
                        *resp.body_mut() = Full::new(event);
                    } else if path.ends_with("/response") {
                        let _ = seen.send((Seen::Answered, Instant::now()));
                        *resp.status_mut() = hyper::StatusCode::ACCEPTED;
                    } else if path.ends_with("/error") {
                        let _ = seen.send((Seen::Failed, Instant::now()));
                        *resp.status_mut() = hyper::StatusCode::ACCEPTED;
                    }
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(socket), service).await;
        });
    }
}
