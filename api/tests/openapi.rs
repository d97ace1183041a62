//! The contract against openapi.yaml, field by field: each request body's
//! fields are the properties its schema documents (required ones too), and
//! each error code is documented with its status. The answers are checked
//! against the running API by `local/tests/api/openapi.rs`, which parses
//! every body it records into its contract type and back.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Value, json};
use sluice_api::auth::{SignIn, SignUp};
use sluice_api::companion::{ClientPart, CompleteMultipart, CreateMultipart};
use sluice_api::uploads::{ChunkBatch, PartToSign, RecordedChunk, SignParts, StartUpload};
use sluice_api::{ErrorCode, UploadMode};

fn document() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml")).unwrap();
    serde_norway::from_str(&text).expect("openapi.yaml is YAML")
}

fn resolve<'a>(doc: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference.trim_start_matches("#/").split('/').fold(doc, |at, part| &at[part]),
        None => node,
    }
}

fn request_schema<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    let schema = &doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"];
    assert!(schema.is_object(), "{method} {path} documents no JSON body");
    resolve(doc, schema)
}

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}

/// `full` (every optional field set) serializes to exactly the schema's
/// properties, `bare` (none set) to at least its required ones; nested
/// objects the same where the schema describes them.
fn agrees(doc: &Value, schema: &Value, full: &Value, bare: &Value, at: &str) {
    let schema = resolve(doc, schema);
    let documented = keys(&schema["properties"]);
    assert_eq!(keys(full), documented, "{at}: the contract's fields against the documented properties");
    let required: BTreeSet<String> =
        schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).map(String::from).collect();
    assert!(required.is_subset(&keys(bare)), "{at}: required {required:?}, the contract always sends {:?}", keys(bare));
    for (name, property) in schema["properties"].as_object().into_iter().flatten() {
        let property = resolve(doc, property);
        let items = &property["items"];
        if let (Some(f), Some(b)) = (full[name].as_array().and_then(|a| a.first()), bare[name].as_array().and_then(|a| a.first()))
            && (items["properties"].is_object() || items["$ref"].is_string())
        {
            agrees(doc, items, f, b, &format!("{at}.{name}[]"));
        }
    }
}

fn value(body: &impl Serialize) -> Value {
    serde_json::to_value(body).unwrap()
}

#[test]
fn request_bodies_are_the_documented_ones() {
    let doc = document();
    let check = |method: &str, path: &str, full: Value, bare: Value| {
        agrees(&doc, request_schema(&doc, method, path), &full, &bare, &format!("{method} {path}"));
    };
    let sha = Some("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=".to_string());
    check(
        "post",
        "/auth/signup",
        value(&SignUp { email: "a@b.c".into(), password: "p".into(), name: Some("n".into()) }),
        value(&SignUp { email: "a@b.c".into(), password: "p".into(), name: None }),
    );
    let sign_in = value(&SignIn { email: "a@b.c".into(), password: "p".into() });
    check("post", "/auth/signin", sign_in.clone(), sign_in);
    let start = |mode, sha256| StartUpload { file_name: "a".into(), size: 1, content_type: "image/png".into(), mode, sha256 };
    check("post", "/uploads", value(&start(Some(UploadMode::Single), sha.clone())), value(&start(None, None)));
    let sign = |checksum_sha256| SignParts { parts: vec![PartToSign { part_number: 1, checksum_sha256 }] };
    check("post", "/uploads/{fileId}/parts", value(&sign(sha.clone())), value(&sign(None)));
    let chunk = |checksum_sha256| RecordedChunk { part_number: 1, etag: "e".into(), size: 1, checksum_sha256 };
    let chunks = &request_schema(&doc, "post", "/uploads/{fileId}/chunks")["oneOf"];
    let batch = |c| value(&ChunkBatch { parts: vec![chunk(c)] });
    agrees(&doc, &chunks[0], &batch(sha.clone()), &batch(None), "chunks batch");
    agrees(&doc, &chunks[1], &value(&chunk(sha.clone())), &value(&chunk(None)), "chunks, one part");
    let create = |metadata: Value| CreateMultipart {
        filename: "a".into(),
        content_type: "image/png".into(),
        metadata: metadata.as_object().cloned().unwrap(),
    };
    check("post", "/s3/multipart", value(&create(json!({ "size": 1 }))), value(&create(json!({}))));
    let complete = value(&CompleteMultipart { parts: vec![ClientPart { part_number: 1, etag: "e".into() }] });
    check("post", "/s3/multipart/{uploadId}/complete", complete.clone(), complete);
}

/// The codes a response's description names, in backticks.
fn codes_in(text: &str) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .map(String::from)
        .collect()
}

#[test]
fn every_error_code_is_documented_with_its_status() {
    let doc = document();
    let mut documented: BTreeSet<(String, u16)> = BTreeSet::new();
    for (name, response) in doc["components"]["responses"].as_object().unwrap() {
        let status = match name.as_str() {
            "BadRequest" => 400,
            "Unauthorized" => 401,
            "CrossSite" => 403,
            "NotFound" => 404,
            "Conflict" => 409,
            "TooLarge" => 413,
            "UnsupportedMediaType" => 415,
            _ => continue,
        };
        documented.extend(codes_in(response["description"].as_str().unwrap()).into_iter().map(|c| (c, status)));
    }
    for item in doc["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            for (status, response) in operation["responses"].as_object().into_iter().flatten() {
                if response.get("$ref").is_none()
                    && let (Ok(status), Some(text)) = (status.parse::<u16>(), response["description"].as_str())
                    && status >= 400
                {
                    documented.extend(codes_in(text).into_iter().filter(|c| ErrorCode::parse(c).is_some()).map(|c| (c, status)));
                }
            }
        }
    }
    for &code in ErrorCode::ALL {
        let want = (code.as_str().to_string(), code.status());
        if code.is_gateway() || code == ErrorCode::ServiceUnavailable {
            continue;
        }
        assert!(documented.contains(&want), "{code} ({}) is not documented with that status", code.status());
    }
    for (code, status) in &documented {
        let known = ErrorCode::parse(code).unwrap_or_else(|| panic!("openapi.yaml documents `{code}`, which the contract does not have"));
        assert_eq!(known.status(), *status, "`{code}` is documented as {status}");
    }
}
