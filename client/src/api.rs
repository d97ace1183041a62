//! The Sluice API over HTTP, with retries where a retry can help.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sluice_api::ErrorBody;

/// Why a call failed, and whether trying again can help.
#[derive(Debug)]
pub enum Failure {
    /// Network trouble, a 5xx, a 429: worth another try.
    Transient(String),
    /// The API's answer, a 4xx with its code and message: trying again changes nothing.
    Refused { status: u16, code: String, message: String },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transient(why) => write!(f, "{why}"),
            Self::Refused { status, code, message } => write!(f, "{message} ({status} {code})"),
        }
    }
}

impl std::error::Error for Failure {}

/// How many times a request is tried before giving up.
pub const ATTEMPTS: u32 = 6;

/// Exponential backoff with full jitter: a random wait up to
/// 250 ms × 2^attempt, capped at 15 s, so clients that failed together do
/// not retry together.
pub fn backoff(attempt: u32) -> Duration {
    let cap = (250u64 << attempt.min(6)).min(15_000);
    Duration::from_millis(fastrand::u64(cap / 2..=cap))
}

/// Runs `call` until it succeeds, is refused, or has failed `ATTEMPTS` times.
pub async fn retried<T, F, Fut>(what: &str, mut call: F) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Failure>>,
{
    let mut attempt = 0;
    loop {
        match call().await {
            Err(Failure::Transient(why)) if attempt + 1 < ATTEMPTS => {
                note_retry(what, attempt, &why);
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            Err(Failure::Transient(why)) => {
                return Err(Failure::Transient(format!("{what} failed {ATTEMPTS} times; last: {why}")));
            }
            other => return other,
        }
    }
}

/// With SLUICE_VERBOSE set, each retry is told on stderr.
fn note_retry(what: &str, attempt: u32, why: &str) {
    if std::env::var_os("SLUICE_VERBOSE").is_some() {
        eprintln!("retrying {what} (attempt {}): {why}", attempt + 2);
    }
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(120))
        .user_agent(concat!("sluice-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client builds")
}

#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub token: Option<String>,
}

impl Api {
    pub fn new(base: &str, token: Option<String>) -> Self {
        Self { http: http_client(), base: base.trim_end_matches('/').to_string(), token }
    }

    /// One call; its answer in the contract's type, or why not.
    pub async fn call_once<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, Failure> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| Failure::Transient(format!("{path}: {e}")))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| Failure::Transient(format!("{path}: {e}")))?;
        if status.is_success() {
            // Trying again would get the same answer: a newer API, or
            // something that is not the API in front of it.
            return serde_json::from_str(&text).map_err(|e| Failure::Refused {
                status: status.as_u16(),
                code: "unexpected_answer".into(),
                message: format!(
                    "{path} answered in a shape this sluice does not know ({e}); a newer sluice may: {}",
                    text.chars().take(300).collect::<String>()
                ),
            });
        }
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(Failure::Transient(format!("{path} answered {status}: {text}")));
        }
        Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(ErrorBody { error }) => Failure::Refused { status: status.as_u16(), code: error.code, message: error.message },
            Err(_) => Failure::Refused { status: status.as_u16(), code: "http_error".into(), message: format!("{path} answered {status}") },
        })
    }

    /// A call retried on network errors and 5xx.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, Failure> {
        retried(path, || self.call_once(method.clone(), path, body)).await
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Failure> {
        self.call(reqwest::Method::GET, path, None::<&()>).await
    }

    pub async fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T, Failure> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, Failure> {
        self.call(reqwest::Method::DELETE, path, None::<&()>).await
    }
}
