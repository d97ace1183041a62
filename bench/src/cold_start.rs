//! Cold start: each function's binary from exec to its first request for
//! work (init), and through its first invocation, under a minimal Lambda
//! runtime API served here. Against its SDK floor (sdk-floor: the same start
//! and the same SDK clients, nothing else), so what is measured is the
//! function's own start-up work; and against the Node 20 peer (the AWS SDK
//! v3 clients a Node function would build), what users would run instead.
//! hello-lambda, the bare runtime, is shown for information.

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

/// Each function, the sample event of its first invocation, and the SDK
/// clients its `from_env` builds.
const FUNCTIONS: &[(&str, &str, &str)] = &[
    ("auth", "auth-signin", "dynamodb"),
    ("presign", "presign", "s3,dynamodb"),
    ("record-chunk", "record-chunk", "dynamodb"),
    ("complete-upload", "complete-upload", "s3,sqs,dynamodb"),
    ("files", "files-list", "s3,dynamodb"),
    ("inspect", "inspect", "s3,sqs,dynamodb"),
    ("persist", "persist", "sqs,dynamodb"),
    ("sweeper", "sweeper", "s3,sqs,dynamodb"),
    ("migrate", "migrate", ""),
];

const HELLO: &str = "hello-lambda";
const SDK_FLOOR: &str = "sdk-floor";
/// A function's init against its SDK floor's.
const MAX_SDK_RATIO: f64 = 1.15;
/// The Node peer's whole start against a function's init, and its RSS against the function's.
const MIN_NODE_SPEEDUP: f64 = 20.0;
const MAX_NODE_RSS_SHARE: f64 = 1.0 / 3.0;
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
    let echo = |_: &str| Ok(r#"{"hello":"world"}"#.to_string());
    let mut hello = Vec::new();
    let mut floors: BTreeMap<&str, Vec<ColdStart>> = BTreeMap::new();
    let mut measured: BTreeMap<&str, Vec<ColdStart>> = BTreeMap::new();
    let mut node = Vec::new();
    for _ in 0..scale.cold_start_runs {
        // Interleaved, so a slow moment of the machine hits all alike.
        hello.push(measure(&bin_dir.join(HELLO), HELLO, &stack.env, echo).await?);
        for (function, sample, clients) in FUNCTIONS {
            if !floors.contains_key(clients) || floors[clients].len() < hello.len() {
                let mut env = stack.env.clone();
                env.insert("SDK_FLOOR_CLIENTS".into(), clients.to_string());
                floors.entry(clients).or_default().push(measure(&bin_dir.join(SDK_FLOOR), SDK_FLOOR, &env, echo).await?);
            }
            let event = |runtime: &str| event_for(sample, user.token(), runtime);
            let run = measure(&bin_dir.join(function), function, &stack.env, event).await?;
            measured.entry(function).or_default().push(run);
        }
        node.push(node_peer(&stack.env).await?);
    }

    let hello = summarise(&hello, &bin_dir.join(HELLO))?;
    report.add(Row {
        bench: "Cold start: hello-lambda (the bare runtime, for information)".into(),
        ours: hello.describe(),
        reference: "—".into(),
        ratio: None,
        target: "—".into(),
        met: None,
    });
    let node = NodePeer::summarise(&node);
    report.add(Row {
        bench: "Cold start: the Node 20 peer (@aws-sdk/client-s3 + client-dynamodb, built; the reference of the rows below)".into(),
        ours: node.describe(),
        reference: "—".into(),
        ratio: None,
        target: "—".into(),
        met: None,
    });
    for (function, _, clients) in FUNCTIONS {
        let ours = summarise(&measured[function], &bin_dir.join(function))?;
        let floor = summarise(&floors[clients], &bin_dir.join(SDK_FLOOR))?;
        // The cold start is the init, as Lambda reports it (Init Duration)
        // and lambda-perf compares runtimes by it. The first invocation is
        // shown beside it: it reads stores the floors never touch.
        let ratio = ours.init / floor.init;
        let speedup = node.process / ours.init;
        let rss_share = ours.rss as f64 / node.rss as f64;
        let met = ratio <= MAX_SDK_RATIO
            && speedup >= MIN_NODE_SPEEDUP
            && rss_share <= MAX_NODE_RSS_SHARE
            && ours.rss <= MAX_RSS
            && ours.size <= MAX_SIZE;
        let failed = if ours.failed { " (answered an error)" } else { "" };
        let what = if clients.is_empty() { "no SDK client".to_string() } else { format!("SDK floor with {clients}") };
        report.add(Row {
            bench: format!("Cold start: {function}"),
            ours: format!(
                "{}{failed}; {:.2}× hello-lambda's init; {speedup:.0}× faster than Node's start, {:.0} % of its RSS",
                ours.describe(),
                ours.init / hello.init,
                rss_share * 100.0
            ),
            reference: format!("{what}: {}", floor.describe()),
            ratio: Some(ratio),
            target: format!(
                "init ≤ {MAX_SDK_RATIO}× its SDK floor's; ≥ {MIN_NODE_SPEEDUP:.0}× faster than Node, ≤ 1/3 its RSS; ≤ {}, ≤ {}",
                megabytes(MAX_RSS),
                megabytes(MAX_SIZE)
            ),
            met: Some(met),
        });
    }
    Ok(())
}

/// One start of the Node peer: the whole process, and its own in-process
/// time and peak RSS as it reports them.
struct NodeRun {
    process: f64,
    in_process: f64,
    rss: u64,
}

struct NodePeer {
    process: f64,
    in_process: f64,
    rss: u64,
}

impl NodePeer {
    fn summarise(runs: &[NodeRun]) -> Self {
        Self {
            process: median(&mut runs.iter().map(|r| r.process).collect::<Vec<_>>()),
            in_process: median(&mut runs.iter().map(|r| r.in_process).collect::<Vec<_>>()),
            rss: runs.iter().map(|r| r.rss).max().unwrap_or_default(),
        }
    }

    fn describe(&self) -> String {
        format!("whole process {}, of it in-process {}; RSS {}", ms(self.process), ms(self.in_process), megabytes(self.rss))
    }
}

/// `node bench/companion/sdk-peer.mjs`, with the stack's AWS settings.
async fn node_peer(stack_env: &BTreeMap<String, String>) -> anyhow::Result<NodeRun> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/companion/sdk-peer.mjs");
    let started = Instant::now();
    let output = tokio::process::Command::new("node")
        .arg(script)
        .env_clear()
        .envs(stack_env)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .context("running node (make setup installs Node 20 and bench/companion)")?;
    let process = started.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!("the Node peer failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let report: Value = serde_json::from_slice(&output.stdout).context("the Node peer's report")?;
    let in_process = report["inProcessMs"].as_f64().context("no inProcessMs")? / 1000.0;
    let rss = report["maxRssKiB"].as_u64().context("no maxRssKiB")? * 1024;
    Ok(NodeRun { process, in_process, rss })
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
