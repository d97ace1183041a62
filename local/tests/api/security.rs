//! The security matrix, end to end: every authenticated route refuses every
//! kind of bad token before touching S3 or the database, and hostile file
//! names are stored safely and given back exactly.

use crate::common::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sluice_shared::auth::{Claims, now_secs};
use sluice_shared::routes::ROUTES;

fn claims(user: &User, exp: u64) -> Claims {
    Claims {
        sub: user.id.parse().unwrap(),
        email: user.email.clone(),
        iss: "sluice".into(),
        aud: "sluice-api".into(),
        iat: now_secs(),
        exp,
    }
}

/// A 2048-bit RSA key the stack has never seen.
fn foreign_private_key() -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("sluice-foreign-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("key.pem");
    let status = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
        .arg(&path)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success());
    let pem = std::fs::read(&path).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
    pem
}

/// Every way a token can be wrong, each carrying the owner's real id so that
/// only the token's flaw stands between it and success.
fn bad_tokens(stack: &sluice_local::Stack, owner: &User) -> Vec<(&'static str, Option<String>)> {
    let private = std::fs::read(&stack.env["JWT_PRIVATE_KEY_FILE"]).unwrap();
    let public = std::fs::read(&stack.env["JWT_PUBLIC_KEY_FILE"]).unwrap();
    let valid_for = now_secs() + 600;
    let rs256 = |key: &[u8], claims: &Claims| {
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &EncodingKey::from_rsa_pem(key).unwrap()).unwrap()
    };
    let unsigned = {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(owner, valid_for)).unwrap());
        format!("{header}.{body}.")
    };
    let hs256_with_public_key =
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims(owner, valid_for), &EncodingKey::from_secret(&public)).unwrap();
    vec![
        ("no token", None),
        ("a malformed token", Some("not.a.jwt".to_string())),
        ("an expired token", Some(rs256(&private, &claims(owner, now_secs() - 3600)))),
        ("a token signed with another key", Some(rs256(&foreign_private_key(), &claims(owner, valid_for)))),
        ("an alg:none token", Some(unsigned)),
        ("an HS256 token keyed with the public key", Some(hs256_with_public_key)),
    ]
}

/// A request each route would accept from its owner: only the token is wrong.
fn valid_body(path: &str, method: &str) -> Option<Value> {
    match (method, path) {
        ("POST", "/uploads") => Some(json!({ "fileName": "x.png", "size": 1000, "contentType": "image/png" })),
        ("POST", "/uploads/{fileId}/parts") => Some(json!({ "parts": [{ "partNumber": 1 }] })),
        ("POST", "/uploads/{fileId}/chunks") => Some(json!({ "parts": [{ "partNumber": 1, "etag": "abc", "size": 1000 }] })),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_token_is_refused_on_every_route_before_any_work() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let owner = client.new_user().await;
    let upload = client.start(&owner, "mine.png", "image/png", 1000).await;
    let tokens = bad_tokens(&stack, &owner);
    let ledger = sluice_shared::quota::QuotaLedger::new(stack.clients.dynamodb(), &stack.table);
    let owner_id = owner.id.parse().unwrap();
    assert_eq!((uploads_in_s3(&stack, "").await.len(), ledger.used(owner_id).await.unwrap()), (1, 1000));

    let routes: Vec<_> = ROUTES.iter().filter(|r| r.authenticated).collect();
    assert_eq!(routes.len(), ROUTES.len() - 3, "all but sign-up, sign-in and sign-out need a token");
    for route in &routes {
        let path = route.path.replace("{fileId}", &upload.file_id);
        let body = valid_body(route.path, route.method);
        for (what, token) in &tokens {
            let (status, answer) = client.call(route.method, &path, token.as_deref(), body.clone()).await;
            assert_eq!(status, 401, "{} with {what}: {answer}", route.key());
            assert_eq!(answer["error"]["code"], "unauthorized", "{} with {what}", route.key());
        }
    }

    // Nothing reached S3, DynamoDB or Postgres: no upload started, none
    // cancelled or completed, no part recorded, no quota taken, no row.
    assert_eq!(uploads_in_s3(&stack, "").await.len(), 1);
    assert_eq!(ledger.used(owner_id).await.unwrap(), 1000);
    let (status, state) = client.call("GET", &format!("/uploads/{}", upload.file_id), Some(&owner.token), None).await;
    assert_eq!(
        (status.as_u16(), state["stage"].as_str(), state["recordedParts"].as_array().map(Vec::len)),
        (200, Some("OPEN"), Some(0)),
        "{state}"
    );
    let db = tokio_postgres::connect(&stack.database_url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(db.1);
    let rows: i64 = db.0.query_one("SELECT count(*) FROM files", &[]).await.unwrap().get(0);
    assert_eq!(rows, 0);
    // The same request with the owner's own token does start an upload.
    let (status, answer) = client.call("POST", "/uploads", Some(&owner.token), valid_body("/uploads", "POST")).await;
    assert_eq!(status, 201, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_file_names_are_stored_safely_and_downloaded_under_their_own_name() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let long = format!("{}.png", "a".repeat(996));
    // (name sent, name kept for display, name a download gets)
    let cases: Vec<(String, String, String)> = vec![
        ("../../etc/passwd.png".into(), "../../etc/passwd.png".into(), "passwd.png".into()),
        ("/var/www/photo.png".into(), "/var/www/photo.png".into(), "photo.png".into()),
        ("C:\\Users\\ann\\photo.png".into(), "C:\\Users\\ann\\photo.png".into(), "photo.png".into()),
        ("nul\0byte.png".into(), "nulbyte.png".into(), "nulbyte.png".into()),
        ("tab\there\nnew\rline\u{7f}.png".into(), "tabherenewline.png".into(), "tabherenewline.png".into()),
        (long.clone(), long.clone(), long.clone()),
        ("résumé 東京 😀.png".into(), "résumé 東京 😀.png".into(), "résumé 東京 😀.png".into()),
        ("x\"; filename=evil.exe; a=\".png".into(), "x\"; filename=evil.exe; a=\".png".into(), "x\"; filename=evil.exe; a=\".png".into()),
    ];
    assert_eq!(long.chars().count(), 1000);
    let data = png(3000);
    for (sent, kept, downloaded) in &cases {
        let (file_id, put) = client.upload_single(&user, sent, "image/png", &data).await;
        assert_eq!(put, 200, "PUT for {sent:?}");
        let file = client.wait_final(&user, &file_id).await;
        assert_eq!(file["status"], "UPLOADED", "{sent:?}: {file}");
        assert_eq!(file["fileName"].as_str(), Some(kept.as_str()), "{sent:?}");

        // The key stays inside the user's folder, in plain ASCII.
        let (_, state) = client.call("GET", &format!("/uploads/{file_id}"), Some(&user.token), None).await;
        let listed = stack
            .clients
            .s3()
            .list_objects_v2()
            .bucket(&stack.bucket)
            .prefix(format!("uploads/{}/{file_id}/", user.id))
            .send()
            .await
            .unwrap();
        let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(keys.len(), 1, "{sent:?}: {keys:?} {state}");
        let segment = keys[0].rsplit('/').next().unwrap();
        assert!(
            segment.len() <= 200 && !segment.starts_with('.') && segment.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
            "{sent:?} → key segment {segment:?}"
        );

        // The download is named by the last component, exactly, and the
        // header cannot be split or given a second filename.
        let (status, link) = client.call("POST", &format!("/files/{file_id}/download-url"), Some(&user.token), None).await;
        assert_eq!(status, 200, "{link}");
        let resp = client.http.get(link["url"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let disposition = resp.headers()["content-disposition"].to_str().unwrap().to_string();
        assert_eq!(resp.bytes().await.unwrap().as_ref(), data.as_slice());
        let (fallback, exact) = disposition
            .strip_prefix("attachment; filename=\"")
            .and_then(|rest| rest.split_once("\"; filename*=UTF-8''"))
            .unwrap_or_else(|| panic!("{sent:?}: {disposition}"));
        assert!(fallback.chars().all(|c| (c.is_ascii_graphic() || c == ' ') && c != '"' && c != '\\'), "{disposition}");
        assert!(exact.chars().all(|c| c.is_ascii_alphanumeric() || "!#$&+-.^_`|~%".contains(c)), "{disposition}");
        let decoded = percent_encoding::percent_decode_str(exact).decode_utf8().unwrap();
        assert_eq!(&decoded, downloaded, "{sent:?}: {disposition}");
    }
}

/// Password guessing is slowed per email: after five failures each attempt
/// waits (429 with Retry-After), doubling up to a minute, and a success
/// clears the count. The wait is short, so a user is never locked out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failed_sign_ins_for_an_email_back_off() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let signin = |password: &str| {
        client
            .http
            .post(format!("{}/auth/signin", stack.api_url))
            .json(&serde_json::json!({ "email": user.email, "password": password }))
            .send()
    };
    for attempt in 1..=5 {
        assert_eq!(signin("wrong password").await.unwrap().status(), 401, "attempt {attempt}");
    }
    // At once: the 1 s wait is counted from the last failure's second.
    let held = signin("correct horse battery").await.unwrap();
    assert_eq!(held.status(), 429, "even the right password waits its turn");
    assert_eq!(held.headers()["retry-after"], "1");
    let body: serde_json::Value = held.json().await.unwrap();
    assert_eq!((body["error"]["code"].as_str(), body["error"]["retryAfter"].as_u64()), (Some("too_many_attempts"), Some(1)), "{body}");
    // The count lives in DynamoDB (shared by every auth instance), under the table's TTL.
    let item = stack
        .clients
        .dynamodb()
        .get_item()
        .table_name(&stack.table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("signin#{}|127.0.0.1", user.email)))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("failures".into()))
        .send()
        .await
        .unwrap()
        .item
        .expect("the failures are kept in the sessions table");
    let number = |name: &str| item[name].as_n().unwrap().parse::<u64>().unwrap();
    assert_eq!(number("failures"), 5);
    let purge_in = number("purgeAt").saturating_sub(sluice_shared::auth::now_secs());
    assert!((86_000..=86_400).contains(&purge_in), "dropped by the TTL a day after the last failure: {purge_in} s");
    // Another email is not held up by this one.
    let other = client.new_user().await;
    assert!(!other.token.is_empty());

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(signin("correct horse battery").await.unwrap().status(), 200, "after the wait");
    // The success cleared the count: a mistake now is a plain 401.
    assert_eq!(signin("wrong password").await.unwrap().status(), 401);
}
