//! openapi.yaml against the running API: it names exactly the routes of the
//! routes table, and a walk through every route answers every documented
//! status with a body its schema accepts.

use std::collections::BTreeSet;
use std::sync::Mutex;

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sluice_shared::routes::{self, ROUTES};

fn document() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml")).unwrap();
    serde_norway::from_str(&text).expect("openapi.yaml is YAML")
}

/// `(METHOD, path)` of every operation in the document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys().filter(|k| *k != "parameters") {
            ops.insert((method.to_uppercase(), path.clone()));
        }
    }
    ops
}

#[test]
fn the_document_names_exactly_the_routes_of_the_table() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented = operations(&doc);
    let served: BTreeSet<(String, String)> = ROUTES.iter().map(|r| (r.method.to_string(), r.path.to_string())).collect();
    assert_eq!(documented, served);
    // Each route's endpoint is its operation: the operationId, in lowerCamelCase.
    for route in ROUTES {
        let name = format!("{:?}", route.endpoint);
        let camel = name[..1].to_lowercase() + &name[1..];
        assert_eq!(doc["paths"][route.path][route.method.to_lowercase()]["operationId"], camel.as_str(), "{}", route.key());
    }
}

/// Follows `#/components/...` references.
fn resolve<'a>(doc: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference.trim_start_matches("#/").split('/').fold(doc, |at, part| &at[part]),
        None => node,
    }
}

/// Every call the walk made: method, route path, status, body.
struct Recorder {
    client: Client,
    calls: Mutex<Vec<(String, String, u16, Value)>>,
}

impl Recorder {
    async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
        let (status, answer) = self.client.call(method, path, token, body).await;
        let bare = path.split('?').next().unwrap();
        let (route, _) = routes::find(method, bare).unwrap_or_else(|| panic!("no route for {method} {bare}"));
        self.calls.lock().unwrap().push((method.to_string(), route.path.to_string(), status.as_u16(), answer.clone()));
        (status, answer)
    }

    /// A call with headers of its own and a body of the given Content-Type.
    async fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<(&str, &str)>) -> u16 {
        let mut req = self.client.http.request(method.parse().unwrap(), format!("{}{path}", self.client.api));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some((content_type, text)) = body {
            req = req.header("content-type", content_type).body(text.to_string());
        }
        let resp = req.send().await.expect("the API answers");
        let status = resp.status().as_u16();
        let answer: Value = serde_json::from_str(&resp.text().await.unwrap_or_default()).unwrap_or(Value::Null);
        let (route, _) = routes::find(method, path).unwrap_or_else(|| panic!("no route for {method} {path}"));
        self.calls.lock().unwrap().push((method.to_string(), route.path.to_string(), status, answer));
        status
    }

    async fn expect(&self, status: u16, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Value {
        let (got, answer) = self.call(method, path, token, body).await;
        assert_eq!(got.as_u16(), status, "{method} {path}: {answer}");
        answer
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_as_documented() {
    // Small limits, so an undeclared Uppy upload can pass the largest file at complete.
    let stack = spawn_stack_with(|o| {
        o.extra_env.push(("USER_QUOTA_BYTES".into(), (40 * MIB).to_string()));
        o.extra_env.push(("MAX_FILE_SIZE".into(), (13 * MIB).to_string()));
    })
    .await;
    let api = Recorder { client: Client::new(&stack), calls: Mutex::new(Vec::new()) };
    let nobody = uuid::Uuid::new_v4();
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let account = json!({ "email": email, "password": "correct horse battery" });

    // auth
    api.expect(201, "POST", "/auth/signup", None, Some(account.clone())).await;
    api.expect(409, "POST", "/auth/signup", None, Some(account.clone())).await;
    api.expect(400, "POST", "/auth/signup", None, Some(json!({ "email": "nope", "password": "long enough" }))).await;
    let signed_in = api.expect(200, "POST", "/auth/signin", None, Some(account.clone())).await;
    api.expect(401, "POST", "/auth/signin", None, Some(json!({ "email": email, "password": "wrong password" }))).await;
    api.expect(400, "POST", "/auth/signin", None, None).await;
    // Five failed sign-ins for one email: the sixth attempt must wait.
    let guessed = json!({ "email": format!("{}@example.com", uuid::Uuid::new_v4().simple()), "password": "not the one" });
    for _ in 0..5 {
        api.expect(401, "POST", "/auth/signin", None, Some(guessed.clone())).await;
    }
    api.expect(429, "POST", "/auth/signin", None, Some(guessed)).await;
    api.expect(204, "POST", "/auth/signout", None, None).await;
    let token = signed_in["accessToken"].as_str().unwrap().to_string();
    let t = Some(token.as_str());

    // start: both modes and each refusal
    let png_small = png(40 * 1024);
    let single = api
        .expect(201, "POST", "/uploads", t, Some(json!({ "fileName": "s.png", "size": png_small.len(), "contentType": "image/png" })))
        .await;
    let data = png(12 * MIB);
    let multi =
        api.expect(201, "POST", "/uploads", t, Some(json!({ "fileName": "m.png", "size": data.len(), "contentType": "image/png" }))).await;
    let doomed = api
        .expect(
            201,
            "POST",
            "/uploads",
            t,
            Some(json!({ "fileName": "d.png", "size": 100, "contentType": "image/png", "mode": "multipart" })),
        )
        .await;
    api.expect(400, "POST", "/uploads", t, Some(json!({ "fileName": "a.png", "size": 0, "contentType": "image/png" }))).await;
    api.expect(401, "POST", "/uploads", None, Some(json!({ "fileName": "a.png", "size": 1, "contentType": "image/png" }))).await;
    api.expect(413, "POST", "/uploads", t, Some(json!({ "fileName": "a.png", "size": 6_000_000_000u64, "contentType": "image/png" })))
        .await;
    api.expect(415, "POST", "/uploads", t, Some(json!({ "fileName": "a.sh", "size": 1, "contentType": "text/x-sh" }))).await;
    let (s, m, d) = (single["fileId"].as_str().unwrap(), multi["fileId"].as_str().unwrap(), doomed["fileId"].as_str().unwrap());

    // per-upload routes: success, then 400 / 401 / 404 / 409 where they apply
    for id in [m.to_string(), nobody.to_string()] {
        let status = if id == m { 200 } else { 404 };
        api.expect(status, "GET", &format!("/uploads/{id}"), t, None).await;
        api.expect(status, "GET", &format!("/uploads/{id}/parts?first=2&count=1"), t, None).await;
        let summed = json!({ "parts": [{ "partNumber": 1, "checksumSha256": sha256_of(&data[..5 * MIB]) }] });
        api.expect(status, "POST", &format!("/uploads/{id}/parts"), t, Some(summed)).await;
    }
    api.expect(401, "GET", &format!("/uploads/{m}"), None, None).await;
    api.expect(400, "GET", &format!("/uploads/{m}/parts?count=5000"), t, None).await;
    api.expect(401, "GET", &format!("/uploads/{m}/parts"), None, None).await;
    api.expect(409, "GET", &format!("/uploads/{s}/parts"), t, None).await;
    api.expect(400, "POST", &format!("/uploads/{m}/parts"), t, Some(json!({ "parts": [] }))).await;
    api.expect(401, "POST", &format!("/uploads/{m}/parts"), None, Some(json!({ "parts": [{ "partNumber": 1 }] }))).await;
    api.expect(409, "POST", &format!("/uploads/{s}/parts"), t, Some(json!({ "parts": [{ "partNumber": 1 }] }))).await;

    // the bytes: one PUT, three parts
    assert_eq!(api.client.put_signed(&single, png_small).await.0, 200);
    let urls: Vec<&str> = multi["parts"].as_array().unwrap().iter().map(|p| p["url"].as_str().unwrap()).collect();
    let mut chunks = Vec::new();
    for (n, url) in urls.iter().enumerate() {
        let bytes = data[n * 5 * MIB..((n + 1) * 5 * MIB).min(data.len())].to_vec();
        let resp = api.client.http.put(*url).body(bytes.clone()).send().await.unwrap();
        let etag = resp.headers()["etag"].to_str().unwrap().to_string();
        chunks.push(json!({ "partNumber": n + 1, "etag": etag, "size": bytes.len() }));
    }
    let first = json!({ "parts": [chunks[0].clone()] });
    api.expect(200, "POST", &format!("/uploads/{m}/chunks"), t, Some(first.clone())).await;
    api.expect(409, "POST", &format!("/uploads/{m}/complete"), t, None).await;
    api.expect(200, "POST", &format!("/uploads/{m}/chunks"), t, Some(json!({ "parts": chunks[1..] }))).await;
    let outside = json!({ "parts": [{ "partNumber": 9, "etag": "x", "size": 1 }] });
    api.expect(400, "POST", &format!("/uploads/{m}/chunks"), t, Some(outside)).await;
    api.expect(400, "POST", &format!("/uploads/{m}/chunks"), t, Some(json!({ "parts": [] }))).await;
    api.expect(401, "POST", &format!("/uploads/{m}/chunks"), None, Some(first.clone())).await;
    api.expect(404, "POST", &format!("/uploads/{nobody}/chunks"), t, Some(first.clone())).await;
    api.expect(409, "POST", &format!("/uploads/{s}/chunks"), t, Some(first)).await;
    api.expect(202, "POST", &format!("/uploads/{m}/complete"), t, None).await;
    api.expect(401, "POST", &format!("/uploads/{m}/complete"), None, None).await;
    api.expect(404, "POST", &format!("/uploads/{nobody}/complete"), t, None).await;

    // cancel
    api.expect(200, "DELETE", &format!("/uploads/{d}"), t, None).await;
    api.expect(409, "DELETE", &format!("/uploads/{m}"), t, None).await;
    api.expect(401, "DELETE", &format!("/uploads/{d}"), None, None).await;
    api.expect(404, "DELETE", &format!("/uploads/{nobody}"), t, None).await;

    // Uppy's Companion routes (bearer works as well as the cookie)
    let create = |size: Option<usize>| json!({ "filename": "u.png", "type": "image/png", "metadata": { "size": size } });
    let uppy = api.expect(200, "POST", "/s3/multipart", t, Some(create(Some(6 * MIB)))).await;
    api.expect(400, "POST", "/s3/multipart", t, Some(json!({ "filename": "", "type": "image/png" }))).await;
    api.expect(401, "POST", "/s3/multipart", None, Some(create(None))).await;
    api.expect(413, "POST", "/s3/multipart", t, Some(create(Some(6_000_000_000)))).await;
    api.expect(415, "POST", "/s3/multipart", t, Some(json!({ "filename": "a.sh", "type": "text/x-sh" }))).await;
    let u = uppy["uploadId"].as_str().unwrap();
    let uppy_data = png(6 * MIB);
    let mut uppy_parts = Vec::new();
    for (n, bytes) in uppy_data.chunks(5 * MIB).enumerate() {
        let signed = api.expect(200, "GET", &format!("/s3/multipart/{u}/{}?key=x", n + 1), t, None).await;
        let resp = api.client.http.put(signed["url"].as_str().unwrap()).body(bytes.to_vec()).send().await.unwrap();
        uppy_parts.push(json!({ "PartNumber": n + 1, "ETag": resp.headers()["etag"].to_str().unwrap() }));
    }
    api.expect(400, "GET", &format!("/s3/multipart/{u}/3"), t, None).await;
    api.expect(200, "GET", &format!("/s3/multipart/{u}/batch?partNumbers=1,2&key=x"), t, None).await;
    api.expect(400, "GET", &format!("/s3/multipart/{u}/batch?partNumbers=3"), t, None).await;
    api.expect(401, "GET", &format!("/s3/multipart/{u}/batch?partNumbers=1"), None, None).await;
    api.expect(404, "GET", &format!("/s3/multipart/{nobody}/batch?partNumbers=1"), t, None).await;
    api.expect(409, "GET", &format!("/s3/multipart/{m}/batch?partNumbers=1"), t, None).await;
    api.expect(401, "GET", &format!("/s3/multipart/{u}/1"), None, None).await;
    api.expect(404, "GET", &format!("/s3/multipart/{nobody}/1"), t, None).await;
    api.expect(409, "GET", &format!("/s3/multipart/{m}/1"), t, None).await;
    api.expect(200, "GET", &format!("/s3/multipart/{u}?key=x"), t, None).await;
    api.expect(401, "GET", &format!("/s3/multipart/{u}"), None, None).await;
    api.expect(404, "GET", &format!("/s3/multipart/{nobody}"), t, None).await;
    api.expect(409, "GET", &format!("/s3/multipart/{m}"), t, None).await;
    let complete = |parts: &[Value]| Some(json!({ "parts": parts }));
    api.expect(400, "POST", &format!("/s3/multipart/{u}/complete"), t, complete(&[])).await;
    api.expect(409, "POST", &format!("/s3/multipart/{u}/complete"), t, complete(&uppy_parts[..1])).await;
    api.expect(401, "POST", &format!("/s3/multipart/{u}/complete"), None, complete(&uppy_parts)).await;
    api.expect(404, "POST", &format!("/s3/multipart/{nobody}/complete"), t, complete(&uppy_parts)).await;
    api.expect(200, "POST", &format!("/s3/multipart/{u}/complete?key=x"), t, complete(&uppy_parts)).await;
    api.expect(409, "DELETE", &format!("/s3/multipart/{u}"), t, None).await;
    // Undeclared (holding the 13 MiB largest file meanwhile): 15 MiB in its
    // parts, more than the largest file, found at complete.
    let over = api.expect(200, "POST", "/s3/multipart", t, Some(create(None))).await;
    let o = over["uploadId"].as_str().unwrap();
    let mut over_parts = Vec::new();
    for n in 1..=3 {
        let signed = api.expect(200, "GET", &format!("/s3/multipart/{o}/{n}"), t, None).await;
        let resp = api.client.http.put(signed["url"].as_str().unwrap()).body(png(5 * MIB)).send().await.unwrap();
        over_parts.push(json!({ "PartNumber": n, "ETag": resp.headers()["etag"].to_str().unwrap() }));
    }
    api.expect(413, "POST", &format!("/s3/multipart/{o}/complete"), t, complete(&over_parts)).await;
    api.expect(401, "DELETE", &format!("/s3/multipart/{o}"), None, None).await;
    api.expect(404, "DELETE", &format!("/s3/multipart/{nobody}"), t, None).await;
    api.expect(200, "DELETE", &format!("/s3/multipart/{o}?key=x"), t, None).await;

    // files: in flight, then final
    api.expect(200, "GET", &format!("/files/{m}"), t, None).await;
    let user = User { id: String::new(), email: email.clone(), token: token.clone() };
    for id in [m, s, d] {
        api.client.wait_final(&user, id).await;
    }
    api.expect(200, "GET", &format!("/files/{m}"), t, None).await;
    api.expect(200, "GET", &format!("/files/{d}"), t, None).await;
    api.expect(401, "GET", &format!("/files/{m}"), None, None).await;
    api.expect(404, "GET", &format!("/files/{nobody}"), t, None).await;
    let page = api.expect(200, "GET", "/files?limit=2", t, None).await;
    let cursor = page["nextCursor"].as_str().expect("three files, pages of two");
    api.expect(200, "GET", &format!("/files?limit=2&cursor={cursor}"), t, None).await;
    api.expect(400, "GET", "/files?cursor=nonsense", t, None).await;
    api.expect(401, "GET", "/files", None, None).await;
    api.expect(200, "POST", &format!("/files/{m}/download-url"), t, None).await;
    api.expect(409, "POST", &format!("/files/{d}/download-url"), t, None).await;
    api.expect(401, "POST", &format!("/files/{m}/download-url"), None, None).await;
    api.expect(404, "POST", &format!("/files/{nobody}/download-url"), t, None).await;
    api.expect(200, "DELETE", &format!("/files/{m}"), t, None).await;
    api.expect(401, "DELETE", &format!("/files/{s}"), None, None).await;
    api.expect(404, "DELETE", &format!("/files/{m}"), t, None).await;

    // Cross-site writes (403) and bodies that are not JSON (415), on every
    // operation that documents them.
    let doc = document();
    let bearer = format!("Bearer {token}");
    for (method, path) in operations(&doc) {
        let responses = &doc["paths"][&path][method.to_lowercase()]["responses"];
        let concrete =
            path.replace("{fileId}", &nobody.to_string()).replace("{uploadId}", &nobody.to_string()).replace("{partNumber}", "1");
        if responses.get("403").is_some() {
            let status = api.raw(&method, &concrete, &[("sec-fetch-site", "cross-site")], Some(("application/json", "{}"))).await;
            assert_eq!(status, 403, "{method} {path} from another site");
        }
        let has_body = doc["paths"][&path][method.to_lowercase()].get("requestBody").is_some();
        if has_body && responses.get("415").is_some() {
            let status = api.raw(&method, &concrete, &[("authorization", &bearer)], Some(("text/plain", "{}"))).await;
            assert_eq!(status, 415, "{method} {path} with a text/plain body");
        }
    }

    // Every answer matches its documented schema ...
    let mut exercised = BTreeSet::new();
    for (method, path, status, body) in api.calls.lock().unwrap().iter() {
        let operation = &doc["paths"][path][method.to_lowercase()];
        let response = operation["responses"]
            .get(status.to_string())
            .unwrap_or_else(|| panic!("{method} {path} answered {status}, which is not documented: {body}"));
        let response = resolve(&doc, response);
        let mut schema = response["content"]["application/json"]["schema"].clone();
        schema["components"] = doc["components"].clone();
        let validator = jsonschema::validator_for(&schema).expect("a valid schema");
        let errors: Vec<String> = validator.iter_errors(body).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(errors.is_empty(), "{method} {path} {status}: {errors:?}\n{body}");
        in_contract(method, path, *status, body);
        exercised.insert((method.clone(), path.clone(), status.to_string()));
    }
    // ... and every documented status was seen.
    let mut documented = BTreeSet::new();
    for (method, path) in operations(&doc) {
        for status in doc["paths"][&path][method.to_lowercase()]["responses"].as_object().unwrap().keys() {
            documented.insert((method.clone(), path.clone(), status.clone()));
        }
    }
    let unseen: Vec<_> = documented.difference(&exercised).collect();
    assert!(unseen.is_empty(), "documented but never answered: {unseen:?}");
}

/// Parses an answer into the contract type the clients read it as and
/// serializes it again: equal, so the contract has every field the server
/// sends, by the same names, present when the server sends it.
fn in_contract(method: &str, path: &str, status: u16, body: &Value) {
    fn same<T: serde::de::DeserializeOwned + serde::Serialize>(body: &Value) -> Result<Value, String> {
        let parsed: T = serde_json::from_value(body.clone()).map_err(|e| e.to_string())?;
        Ok(serde_json::to_value(parsed).unwrap())
    }
    use sluice_api::{auth, companion, files, uploads};
    let again = match (method, path, status) {
        (_, _, 204) => return,
        (_, _, 400..) => {
            let parsed = same::<sluice_api::ErrorBody>(body);
            let code = body["error"]["code"].as_str().and_then(sluice_api::ErrorCode::parse);
            assert_eq!(code.map(|c| c.status()), Some(status), "{method} {path}: {body} is not a known code of status {status}");
            parsed
        }
        ("POST", "/auth/signup", _) => same::<auth::SignedUp>(body),
        ("POST", "/auth/signin", _) => same::<auth::Token>(body),
        ("POST", "/uploads", _) => same::<uploads::StartedUpload>(body),
        ("GET", "/uploads/{fileId}", _) => same::<uploads::UploadState>(body),
        ("DELETE", "/uploads/{fileId}", _) => same::<uploads::UploadCancelled>(body),
        (_, "/uploads/{fileId}/parts", _) => same::<uploads::PartUrls>(body),
        ("POST", "/uploads/{fileId}/chunks", _) => same::<uploads::ChunksRecorded>(body),
        ("POST", "/uploads/{fileId}/complete", _) => same::<uploads::CompleteAccepted>(body),
        ("GET", "/files", _) => same::<files::FileList>(body),
        ("GET", "/files/{fileId}", _) => same::<files::File>(body),
        ("DELETE", "/files/{fileId}", _) => same::<files::FileDeleted>(body),
        ("POST", "/files/{fileId}/download-url", _) => same::<files::DownloadUrl>(body),
        ("POST", "/s3/multipart", _) => same::<companion::MultipartCreated>(body),
        ("GET", "/s3/multipart/{uploadId}", _) => same::<Vec<companion::HeldPart>>(body),
        ("DELETE", "/s3/multipart/{uploadId}", _) => same::<companion::MultipartAborted>(body),
        ("GET", "/s3/multipart/{uploadId}/{partNumber}", _) => same::<companion::SignedPart>(body),
        ("GET", "/s3/multipart/{uploadId}/batch", _) => same::<companion::SignedParts>(body),
        ("POST", "/s3/multipart/{uploadId}/complete", _) => same::<companion::MultipartCompleted>(body),
        _ => panic!("{method} {path} {status}: no contract type for this answer"),
    };
    assert_eq!(again.as_ref(), Ok(body), "{method} {path} {status}: the contract type does not carry the answer as sent");
}

fn sha256_of(bytes: &[u8]) -> String {
    sluice_shared::domain::Sha256Checksum::of(bytes).into_string()
}
