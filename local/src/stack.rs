//! Starts one local Sluice: database and migrations, local S3, queues and
//! the session table, the event plumbing, and the API. PostgreSQL and the
//! SQS/DynamoDB server (moto) are already running; see scripts/stack.sh.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TimeToLiveSpecification};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_runtime::{Context, LambdaEvent};
use sluice_shared::aws::{Clients, describe};
use sluice_shared::config::Env;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::events::{self, REGION};
use crate::router::{self, Api};
use crate::s3::{LocalS3, ObjectCreated, S3Probe};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The local S3's only credentials; every request must be signed with them.
pub const ACCESS_KEY: &str = "sluice-local";
pub const SECRET_KEY: &str = "sluice-local-secret";

#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Host and port of the PostgreSQL server; user `postgres`, trust auth.
    pub pg_host: String,
    pub pg_port: u16,
    /// Query parameters of every Postgres URL (e.g. `sslmode=verify-full&sslrootcert=…`).
    pub pg_params: String,
    /// The SQS + DynamoDB server.
    pub moto_url: String,
    /// Where the local S3 keeps objects.
    pub data_dir: PathBuf,
    pub api_addr: SocketAddr,
    pub s3_addr: SocketAddr,
    /// Names the database, bucket, queues and table of this stack.
    pub name: String,
    pub jwt_private_key_file: PathBuf,
    pub jwt_public_key_file: PathBuf,
    /// `UPLOAD_TOKEN_KEYS` for the functions: kept in the state folder, so
    /// the upload ids Uppy holds survive a restart of `make dev`.
    pub upload_token_keys: String,
    pub visibility_timeout_secs: u32,
    pub max_receive_count: u32,
    /// Extra settings for the functions (e.g. PRESIGN_TTL_SECONDS).
    pub extra_env: Vec<(String, String)>,
    /// How often the sweeper runs (template.yaml schedules it hourly).
    pub sweep_every: Duration,
    /// The built web page, served on the API's origin (none: API only).
    pub web_dir: Option<PathBuf>,
}

impl StackOptions {
    /// Options from the variables scripts/stack.sh exports.
    pub fn from_process_env(name: &str) -> Result<Self, BoxError> {
        let var = |k: &str| std::env::var(k).map_err(|_| format!("{k} is not set; start the stack with scripts/stack.sh"));
        let state = PathBuf::from(var("SLUICE_STATE_DIR")?);
        Ok(Self {
            pg_host: "127.0.0.1".into(),
            pg_port: var("SLUICE_PG_PORT")?.parse()?,
            pg_params: String::new(),
            moto_url: var("SLUICE_MOTO_URL")?,
            data_dir: state.join("s3").join(name),
            api_addr: "127.0.0.1:0".parse()?,
            s3_addr: "127.0.0.1:0".parse()?,
            name: name.to_string(),
            jwt_private_key_file: state.join("jwt-private.pem"),
            jwt_public_key_file: state.join("jwt-public.pem"),
            upload_token_keys: std::fs::read_to_string(state.join("upload-token-key"))
                .map_err(|e| format!("{}/upload-token-key: {e}; start the stack with scripts/stack.sh", state.display()))?
                .trim()
                .to_string(),
            visibility_timeout_secs: 30,
            max_receive_count: 3,
            extra_env: Vec::new(),
            sweep_every: Duration::from_secs(60),
            web_dir: Some(PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../web/dist"))),
        })
    }
}

pub struct Stack {
    pub api_url: String,
    pub s3_url: String,
    pub database_url: String,
    pub bucket: String,
    pub table: String,
    pub queue_url: String,
    pub dlq_url: String,
    /// The settings the functions were configured with, as Lambda would see them.
    pub env: BTreeMap<String, String>,
    pub clients: Clients,
    pub api: Arc<Api>,
    pub inspect: Arc<inspect::Inspect>,
    pub persist: Arc<persist::Persist>,
    pub sweeper: Arc<sweeper::Sweeper>,
    /// The local S3's traffic (part PUTs, object reads) and injected failures.
    pub s3_probe: Arc<S3Probe>,
    /// DynamoDB operations the functions called.
    pub dynamo_calls: DynamoCalls,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn sdk_config() -> SdkConfig {
    let credentials = aws_sdk_s3::config::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "sluice-local");
    let env = sluice_shared::config::Env::from_pairs(std::iter::empty::<(&str, &str)>());
    let http = sluice_shared::aws::https_client(&env).expect("the built-in AWS roots load");
    SdkConfig::builder()
        .http_client(http)
        .region(Region::new(REGION))
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(credentials))
        .behavior_version(BehaviorVersion::latest())
        .build()
}

/// The DynamoDB operations the stack's functions have called, counted by an
/// interceptor on their client: the bench and the tests tell from it that
/// a route made none.
#[derive(Debug, Clone, Default)]
pub struct DynamoCalls(Arc<std::sync::atomic::AtomicU64>);

impl DynamoCalls {
    pub fn count(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl aws_sdk_dynamodb::config::Intercept for DynamoCalls {
    fn name(&self) -> &'static str {
        "DynamoCalls"
    }

    fn read_before_execution(
        &self,
        _context: &aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

pub fn local_clients(s3_url: &str, moto_url: &str, dynamo_calls: &DynamoCalls) -> Clients {
    let sdk = sdk_config();
    let s3 = aws_sdk_s3::config::Builder::from(&sdk).endpoint_url(s3_url).force_path_style(true).build();
    let sqs = aws_sdk_sqs::config::Builder::from(&sdk).endpoint_url(moto_url).build();
    let dynamodb = aws_sdk_dynamodb::config::Builder::from(&sdk).endpoint_url(moto_url).interceptor(dynamo_calls.clone()).build();
    Clients::from_configs(s3, sqs, dynamodb, sdk.credentials_provider())
}

/// Creates the stack's database if needed and applies migrations.
pub async fn prepare_database(opts: &StackOptions) -> Result<String, BoxError> {
    let query = if opts.pg_params.is_empty() { String::new() } else { format!("?{}", opts.pg_params) };
    let server = format!("postgres://postgres@{}:{}/postgres{query}", opts.pg_host, opts.pg_port);
    let admin = sluice_shared::db::connect(&server).await?;
    let exists = admin.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&opts.name]).await?.is_some();
    if !exists {
        admin.batch_execute(&format!("CREATE DATABASE \"{}\"", opts.name.replace('"', ""))).await?;
    }
    let url = format!("postgres://postgres@{}:{}/{}{query}", opts.pg_host, opts.pg_port, opts.name);
    let mut client = sluice_shared::db::connect(&url).await?;
    let applied = sluice_shared::db::migrate(&mut client).await?;
    if !applied.is_empty() {
        tracing::info!(?applied, "migrations applied");
    }
    Ok(url)
}

type StartedS3 = (String, mpsc::UnboundedReceiver<ObjectCreated>, Arc<S3Probe>, JoinHandle<()>);

async fn start_s3(opts: &StackOptions, web_origins: Vec<String>) -> Result<StartedS3, BoxError> {
    let (notify, created) = mpsc::unbounded_channel();
    let local = LocalS3::new(opts.data_dir.clone(), notify)?;
    let probe = local.probe.clone();
    let mut builder = s3s::service::S3ServiceBuilder::new(local);
    builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
    let service = builder.build();
    let web_origins = Arc::new(web_origins);
    let listener = TcpListener::bind(opts.s3_addr).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let task = tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else { continue };
            // As S3 does: without it, a response's last small segment can
            // wait out the client's delayed ACK (~40 ms) behind Nagle.
            let _ = socket.set_nodelay(true);
            let (service, web_origins) = (service.clone(), web_origins.clone());
            tokio::spawn(async move {
                let cors = service_fn(move |req| with_cors(service.clone(), web_origins.clone(), req));
                let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(socket), cors);
                let _ = conn.await;
            });
        }
    });
    Ok((url, created, probe, task))
}

/// The bucket's CORS rule of template.yaml, locally: the page on the API's
/// origin may PUT parts and GET objects, and may read the ETag S3 answers
/// (Uppy needs it to complete).
async fn with_cors(
    s3: s3s::service::S3Service,
    web_origins: Arc<Vec<String>>,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<s3s::Body>, s3s::HttpError> {
    use http::header::{self, HeaderValue};
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .filter(|o| web_origins.iter().any(|w| w == o))
        .and_then(|o| HeaderValue::from_str(o).ok());
    if req.method() == http::Method::OPTIONS && origin.is_some() {
        let mut preflight = hyper::Response::new(s3s::Body::empty());
        let headers = preflight.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("PUT, GET"));
        if let Some(asked) = req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
        }
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("3600"));
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.unwrap_or(HeaderValue::from_static("null")));
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        return Ok(preflight);
    }
    let mut response = s3.call(req.map(s3s::Body::from)).await?;
    if let Some(origin) = origin {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("ETag"));
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    Ok(response)
}

async fn queue_arn(clients: &Clients, queue_url: &str) -> Result<String, BoxError> {
    let attributes = clients
        .sqs()
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(describe)?
        .attributes;
    attributes.and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned()).ok_or_else(|| format!("{queue_url} has no ARN").into())
}

async fn create_resources(clients: &Clients, opts: &StackOptions, bucket: &str, table: &str) -> Result<(String, String, String), BoxError> {
    if clients.s3().head_bucket().bucket(bucket).send().await.is_err() {
        clients.s3().create_bucket().bucket(bucket).send().await.map_err(describe)?;
    }
    // As template.yaml's bucket: a later PUT to a key never replaces the judged version.
    clients
        .s3()
        .put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder().status(aws_sdk_s3::types::BucketVersioningStatus::Enabled).build(),
        )
        .send()
        .await
        .map_err(describe)?;
    let dlq = clients.sqs().create_queue().queue_name(format!("{}-verdicts-dlq", opts.name)).send().await.map_err(describe)?;
    let dlq_url = dlq.queue_url.unwrap_or_default();
    let dlq_arn = queue_arn(clients, &dlq_url).await?;
    let redrive = serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": opts.max_receive_count.to_string() });
    let queue = clients
        .sqs()
        .create_queue()
        .queue_name(format!("{}-verdicts", opts.name))
        .attributes(QueueAttributeName::VisibilityTimeout, opts.visibility_timeout_secs.to_string())
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .map_err(describe)?;
    let queue_url = queue.queue_url.unwrap_or_default();
    let queue_arn = queue_arn(clients, &queue_url).await?;

    let exists = clients.dynamodb().describe_table().table_name(table).send().await.is_ok();
    if !exists {
        clients
            .dynamodb()
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build()?)
            .attribute_definitions(AttributeDefinition::builder().attribute_name("sk").attribute_type(ScalarAttributeType::S).build()?)
            .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build()?)
            .key_schema(KeySchemaElement::builder().attribute_name("sk").key_type(KeyType::Range).build()?)
            .send()
            .await
            .map_err(describe)?;
        clients
            .dynamodb()
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(TimeToLiveSpecification::builder().attribute_name("purgeAt").enabled(true).build()?)
            .send()
            .await
            .map_err(describe)?;
    }
    Ok((queue_url, queue_arn, dlq_url))
}

impl Stack {
    pub async fn start(opts: StackOptions) -> Result<Self, BoxError> {
        let database_url = prepare_database(&opts).await?;
        // Bound first: the local S3 lets the page on the API's origin in.
        let listener = TcpListener::bind(opts.api_addr).await?;
        let api_addr = listener.local_addr()?;
        let api_url = format!("http://{api_addr}");
        let web_origins = vec![api_url.clone(), format!("http://localhost:{}", api_addr.port())];
        let (s3_url, created, s3_probe, s3_task) = start_s3(&opts, web_origins).await?;
        let dynamo_calls = DynamoCalls::default();
        let clients = local_clients(&s3_url, &opts.moto_url, &dynamo_calls);
        let bucket = opts.name.to_lowercase().replace('_', "-");
        let table = format!("{}-sessions", opts.name);
        let (queue_url, queue_arn, dlq_url) = create_resources(&clients, &opts, &bucket, &table).await?;

        let mut env: BTreeMap<String, String> = [
            ("UPLOAD_BUCKET", bucket.clone()),
            ("SESSIONS_TABLE", table.clone()),
            ("VERDICT_QUEUE_URL", queue_url.clone()),
            ("VERDICT_DLQ_URL", dlq_url.clone()),
            ("DATABASE_URL", database_url.clone()),
            ("JWT_PRIVATE_KEY_FILE", opts.jwt_private_key_file.display().to_string()),
            ("JWT_PUBLIC_KEY_FILE", opts.jwt_public_key_file.display().to_string()),
            ("UPLOAD_TOKEN_KEYS", opts.upload_token_keys.clone()),
            ("S3_FORCE_PATH_STYLE", "true".into()),
            ("COOKIE_SECURE", "false".into()),
            ("AWS_REGION", REGION.into()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_ENDPOINT_URL_S3", s3_url.clone()),
            ("AWS_ENDPOINT_URL_SQS", opts.moto_url.clone()),
            ("AWS_ENDPOINT_URL_DYNAMODB", opts.moto_url.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        env.extend(opts.extra_env.iter().cloned());
        let fn_env = Env::from_pairs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));

        let api = Arc::new(Api {
            auth: auth::Auth::from_env(&fn_env, &clients)?,
            presign: presign::Presign::from_env(&fn_env, &clients)?,
            record_chunk: record_chunk::RecordChunk::from_env(&fn_env, &clients)?,
            complete_upload: complete_upload::CompleteUpload::from_env(&fn_env, &clients)?,
            files: files::Files::from_env(&fn_env, &clients)?,
            web_dir: opts.web_dir.clone(),
            calls: Default::default(),
        });
        let inspect = Arc::new(inspect::Inspect::from_env(&fn_env, &clients)?);
        let persist = Arc::new(persist::Persist::from_env(&fn_env, &clients)?);
        let sweeper = Arc::new(sweeper::Sweeper::from_env(&fn_env, &clients)?);

        let tasks = vec![
            s3_task,
            tokio::spawn(serve_api(listener, api.clone())),
            tokio::spawn(deliver_s3_events(created, inspect.clone())),
            tokio::spawn(poll_queue(clients.sqs(), queue_url.clone(), queue_arn, persist.clone())),
            tokio::spawn(sweep_on_schedule(sweeper.clone(), opts.sweep_every)),
        ];
        Ok(Self {
            api_url,
            s3_url,
            database_url,
            bucket,
            table,
            queue_url,
            dlq_url,
            env,
            clients,
            api,
            inspect,
            persist,
            sweeper,
            s3_probe,
            dynamo_calls,
            tasks,
        })
    }
}

/// EventBridge's schedule, locally: the sweeper with a scheduled event.
async fn sweep_on_schedule(sweeper: Arc<sweeper::Sweeper>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let event = events::scheduled_event();
        if let Err(err) = sweeper::handle(&sweeper, LambdaEvent::new(event, Context::default())).await {
            tracing::warn!(%err, "sweep failed; the next one retries");
        }
    }
}

async fn serve_api(listener: TcpListener, api: Arc<Api>) {
    loop {
        let Ok((socket, _)) = listener.accept().await else { continue };
        let _ = socket.set_nodelay(true);
        let api = api.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let api = api.clone();
                async move { Ok::<_, std::convert::Infallible>(router::serve(&api, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(socket), service).await;
        });
    }
}

/// Invokes inspect once per created object, retrying twice on error as
/// Lambda does for asynchronous invocations.
async fn deliver_s3_events(mut created: mpsc::UnboundedReceiver<ObjectCreated>, inspect: Arc<inspect::Inspect>) {
    while let Some(object) = created.recv().await {
        let inspect = inspect.clone();
        tokio::spawn(async move {
            let event = events::s3_event(&object);
            for attempt in 1..=3 {
                match inspect::handle(&inspect, LambdaEvent::new(event.clone(), Context::default())).await {
                    Ok(()) => return,
                    Err(err) => {
                        tracing::warn!(key = object.key, attempt, %err, "inspect failed");
                        tokio::time::sleep(Duration::from_secs(attempt)).await;
                    }
                }
            }
        });
    }
}

/// Lambda's SQS event source: batches of up to 10, and only the messages
/// not reported in `batchItemFailures` are deleted. The rest come back after
/// the visibility timeout and go to the DLQ after maxReceiveCount.
async fn poll_queue(sqs: aws_sdk_sqs::Client, queue_url: String, queue_arn: String, persist: Arc<persist::Persist>) {
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await;
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %describe(e), "receive failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if messages.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let event = match serde_json::from_value(events::sqs_event(&messages, &queue_arn)) {
            Ok(event) => event,
            Err(e) => {
                tracing::error!(error = %e, "SQS event did not parse");
                continue;
            }
        };
        let failed: Vec<String> = match persist::handle(&persist, LambdaEvent::new(event, Context::default())).await {
            Ok(response) => response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect(),
            // A function error fails the whole batch.
            Err(_) => messages.iter().filter_map(|m| m.message_id.clone()).collect(),
        };
        let done: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .filter(|m| m.message_id.as_ref().is_some_and(|id| !failed.contains(id)))
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(m.receipt_handle.clone()?).build().ok()
            })
            .collect();
        if !done.is_empty()
            && let Err(e) = sqs.delete_message_batch().queue_url(&queue_url).set_entries(Some(done)).send().await
        {
            tracing::warn!(error = %describe(e), "delete failed");
        }
    }
}
