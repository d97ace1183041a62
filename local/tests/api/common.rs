//! spawn_stack() gives each test its own stack (database, bucket, queues,
//! table, API and S3 ports) on the Postgres and moto that `make test` started.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sluice_api::auth::{SignIn, SignUp, SignedUp, Token};
use sluice_api::uploads::{RecordedChunk, StartUpload, StartedUpload};
use sluice_api::{FileStatus, UploadMode};
use sluice_local::{Stack, StackOptions};

pub const MIB: usize = 1024 * 1024;

pub async fn spawn_stack_with(adjust: impl FnOnce(&mut StackOptions)) -> Stack {
    sluice_shared::telemetry::init();
    let name = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mut opts = StackOptions::from_process_env(&name).expect("run the end-to-end tests with `make test`");
    opts.visibility_timeout_secs = 2;
    opts.max_receive_count = 2;
    adjust(&mut opts);
    Stack::start(opts).await.expect("the local stack starts")
}

pub async fn spawn_stack() -> Stack {
    spawn_stack_with(|_| {}).await
}

pub struct Client {
    pub http: reqwest::Client,
    pub api: String,
}

pub struct User {
    pub id: String,
    pub email: String,
    pub token: String,
}

/// A started upload, as `POST /uploads` answered it.
pub struct Upload {
    pub file_id: String,
    pub part_size: usize,
    pub part_count: usize,
    pub urls: Vec<String>,
}

impl Client {
    pub fn new(stack: &Stack) -> Self {
        Self { http: reqwest::Client::new(), api: stack.api_url.clone() }
    }

    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self.http.request(method.parse().unwrap(), format!("{}{path}", self.api));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("the API answers");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(json!({ "raw": text })))
    }

    pub async fn new_user(&self) -> User {
        let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
        let password = "correct horse battery".to_string();
        let account = SignUp { email: email.clone(), password: password.clone(), name: None };
        let (status, body) = self.call("POST", "/auth/signup", None, Some(to_json(&account))).await;
        assert_eq!(status, 201, "{body}");
        let created: SignedUp = parsed(&body);
        let (status, body) = self.call("POST", "/auth/signin", None, Some(to_json(&SignIn { email: email.clone(), password }))).await;
        assert_eq!(status, 200, "{body}");
        let token: Token = parsed(&body);
        User { id: created.user_id.to_string(), email, token: token.access_token }
    }

    /// Starts a multipart upload (whatever the size).
    pub async fn start(&self, user: &User, name: &str, content_type: &str, size: usize) -> Upload {
        let request = StartUpload {
            file_name: name.into(),
            size: size as u64,
            content_type: content_type.into(),
            mode: Some(UploadMode::Multipart),
            sha256: None,
        };
        let (status, body) = self.call("POST", "/uploads", Some(&user.token), Some(to_json(&request))).await;
        assert_eq!(status, 201, "{body}");
        let StartedUpload::Multipart(started) = parsed(&body) else { panic!("asked for multipart, answered {body}") };
        Upload {
            file_id: started.file_id.to_string(),
            part_size: started.part_size as usize,
            part_count: started.part_count as usize,
            urls: started.parts.into_iter().map(|p| p.url).collect(),
        }
    }

    /// PUTs the bytes of part `n` straight to S3; answers its ETag.
    pub async fn put_part(&self, upload: &Upload, n: usize, data: &[u8]) -> String {
        let start = (n - 1) * upload.part_size;
        let end = (start + upload.part_size).min(data.len());
        let resp = self.http.put(&upload.urls[n - 1]).body(data[start..end].to_vec()).send().await.unwrap();
        assert_eq!(resp.status(), 200, "PUT part {n}: {}", resp.text().await.unwrap_or_default());
        resp.headers()["etag"].to_str().unwrap().to_string()
    }

    /// Records one part.
    pub async fn record(&self, user: &User, upload: &Upload, n: usize, etag: &str, size: usize) -> (StatusCode, Value) {
        self.record_batch(user, upload, vec![json!({ "partNumber": n, "etag": etag, "size": size })]).await
    }

    /// Records parts (`{partNumber, etag, size, checksumSha256?}`) in one call.
    pub async fn record_batch(&self, user: &User, upload: &Upload, chunks: Vec<Value>) -> (StatusCode, Value) {
        let path = format!("/uploads/{}/chunks", upload.file_id);
        self.call("POST", &path, Some(&user.token), Some(json!({ "parts": chunks }))).await
    }

    /// Sends the given parts four at a time, recording each four in one call.
    pub async fn send_parts(&self, user: &User, upload: &Upload, data: &[u8], parts: &[usize]) {
        for window in parts.chunks(4) {
            let puts = window.iter().map(|&n| async move {
                let etag = self.put_part(upload, n, data).await;
                let size = ((n * upload.part_size).min(data.len())) - (n - 1) * upload.part_size;
                to_json(&RecordedChunk { part_number: n as i64, etag, size: size as u64, checksum_sha256: None })
            });
            let chunks = futures::future::join_all(puts).await;
            let (status, body) = self.record_batch(user, upload, chunks).await;
            assert_eq!(status, 200, "{body}");
        }
    }

    pub async fn complete(&self, user: &User, file_id: &str) -> (StatusCode, Value) {
        self.call("POST", &format!("/uploads/{file_id}/complete"), Some(&user.token), None).await
    }

    /// Uploads a whole file and answers its fileId once complete was accepted.
    pub async fn upload(&self, user: &User, name: &str, content_type: &str, data: &[u8]) -> String {
        let upload = self.start(user, name, content_type, data.len()).await;
        let all: Vec<usize> = (1..=upload.part_count).collect();
        self.send_parts(user, &upload, data, &all).await;
        let (status, body) = self.complete(user, &upload.file_id).await;
        assert_eq!(status, 202, "{body}");
        upload.file_id
    }

    /// Uploads a small file by one presigned PUT (the server's choice for its
    /// size); answers the fileId and the status of the PUT.
    pub async fn upload_single(&self, user: &User, name: &str, content_type: &str, data: &[u8]) -> (String, StatusCode) {
        let request =
            StartUpload { file_name: name.into(), size: data.len() as u64, content_type: content_type.into(), mode: None, sha256: None };
        let (status, started) = self.call("POST", "/uploads", Some(&user.token), Some(to_json(&request))).await;
        assert_eq!(status, 201, "{started}");
        let StartedUpload::Single(single) = parsed(&started) else { panic!("a small file answered {started}") };
        let status = self.put_signed(&started, data.to_vec()).await.0;
        (single.file_id.to_string(), status)
    }

    /// PUTs `data` to a presigned URL with the headers signed into it
    /// (`{url, headers}` as the API answered); answers the status and body.
    pub async fn put_signed(&self, signed: &Value, data: Vec<u8>) -> (StatusCode, String) {
        let mut put = self.http.put(signed["url"].as_str().unwrap()).body(data);
        for (name, value) in signed["headers"].as_object().unwrap() {
            put = put.header(name, value.as_str().unwrap());
        }
        let resp = put.send().await.unwrap();
        (resp.status(), resp.text().await.unwrap_or_default())
    }

    /// Polls `GET /files/{id}` until the file is UPLOADED or FAILED.
    pub async fn wait_final(&self, user: &User, file_id: &str) -> Value {
        for _ in 0..150 {
            let (status, body) = self.call("GET", &format!("/files/{file_id}"), Some(&user.token), None).await;
            assert_eq!(status, 200, "{body}");
            if parsed::<sluice_api::files::File>(&body).status != FileStatus::Uploading {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("file {file_id} never left UPLOADING");
    }
}

/// A contract body as the JSON a test sends (and may then spoil).
pub fn to_json(body: &impl serde::Serialize) -> Value {
    serde_json::to_value(body).expect("a contract body serializes")
}

/// An answer in its contract type; a test fails on an answer out of contract.
pub fn parsed<T: serde::de::DeserializeOwned>(body: &Value) -> T {
    serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("out of contract ({e}): {body}"))
}

/// A structurally valid PNG of exactly `size` bytes (64×48, filler pixels).
pub fn png(size: usize) -> Vec<u8> {
    sluice_shared::inspection::samples::png(size)
}

/// A structurally valid MP4 of exactly `size` bytes (64×48, 1 s).
pub fn mp4(size: usize) -> Vec<u8> {
    sluice_shared::inspection::samples::mp4(size)
}

/// Bytes that begin like a Linux executable, then varied filler (so parts
/// and their ETags differ).
pub fn elf(size: usize) -> Vec<u8> {
    let mut data = b"\x7FELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3E\0\x01\0\0\0".to_vec();
    data.extend(sluice_shared::inspection::samples::filler(0x9E37_79B9, size.saturating_sub(data.len())));
    data.truncate(size);
    data
}

/// The ids of the multipart uploads S3 still holds under a key prefix.
pub async fn uploads_in_s3(stack: &Stack, prefix: &str) -> Vec<String> {
    let listed = stack.clients.s3().list_multipart_uploads().bucket(&stack.bucket).prefix(prefix).send().await.unwrap();
    listed.uploads().iter().filter_map(|u| u.upload_id.clone()).collect()
}

/// Waits until `check` holds, or fails after `secs`.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for {what}");
}
