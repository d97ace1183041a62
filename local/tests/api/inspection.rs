//! The structural verdict end to end: every real file of the corpus, each
//! class of the inspection fixtures, uploaded through the API ends UPLOADED
//! with its kind and what its structure states, and every crafted one ends
//! FAILED with its reason and its object gone. Downloads are served as the
//! detected type, whatever the PUT said.

use crate::common::*;
use serde_json::Value;
use sluice_shared::inspection::samples::fixture_rows as rows;

/// Uploads each file by one PUT, eight at a time, and answers the final
/// state of each, in order.
async fn upload_all(client: &Client, user: &User, files: &[(String, String, Vec<u8>)]) -> Vec<Value> {
    let mut finals = Vec::new();
    for batch in files.chunks(8) {
        let uploads = batch.iter().map(|(name, declared, bytes)| async move {
            let (id, status) = client.upload_single(user, name, declared, bytes).await;
            assert_eq!(status, 200, "PUT of {name}");
            client.wait_final(user, &id).await
        });
        finals.extend(futures::future::join_all(uploads).await);
    }
    finals
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_files_of_every_family_are_kept_with_their_kind_size_and_duration() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let corpus = rows("real");
    let files: Vec<(String, String, Vec<u8>)> =
        corpus.iter().map(|(cells, bytes)| (cells[0].clone(), cells[1].clone(), bytes.clone())).collect();
    let finals = upload_all(&client, &user, &files).await;
    for ((cells, _), file) in corpus.iter().zip(&finals) {
        let name = &cells[0];
        assert_eq!(file["status"], "UPLOADED", "{name}: {file}");
        assert_eq!(file["detectedType"], cells[1].as_str(), "{name}");
        assert_eq!(file["kind"], cells[2].as_str(), "{name}");
        if !cells[3].is_empty() {
            let size = (file["width"].as_u64(), file["height"].as_u64());
            assert_eq!(size, (cells[3].parse().ok(), cells[4].parse().ok()), "{name}: {file}");
        }
        if let Some(ms) = cells.get(5).filter(|c| !c.is_empty()) {
            let got = file["durationMs"].as_u64().unwrap_or_else(|| panic!("{name}: no durationMs in {file}"));
            assert!(got.abs_diff(ms.parse().unwrap()) <= 60, "{name}: {got} ms, expected {ms}");
        }
    }
    // The list carries the same facts.
    let (status, list) = client.call("GET", "/files?limit=100", Some(&user.token), None).await;
    assert_eq!(status, 200, "{list}");
    let listed = list["files"].as_array().unwrap();
    let photo = listed.iter().find(|f| f["fileName"] == "photo.jpg").expect("photo.jpg is listed");
    assert_eq!((photo["width"].as_u64(), photo["height"].as_u64()), (Some(64), Some(48)), "{photo}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_and_hostile_files_end_failed_with_their_reason_and_their_object_gone() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let crafted: Vec<(Vec<String>, Vec<u8>)> = rows("crafted")
        .into_iter()
        // An empty file cannot be uploaded at all (size must be at least 1).
        .filter(|(cells, bytes)| cells[2] != "accept" && !bytes.is_empty())
        .collect();
    let files: Vec<(String, String, Vec<u8>)> =
        crafted.iter().map(|(cells, bytes)| (cells[0].clone(), cells[1].clone(), bytes.clone())).collect();
    let finals = upload_all(&client, &user, &files).await;
    for ((cells, _), file) in crafted.iter().zip(&finals) {
        let (name, want) = (&cells[0], &cells[2]);
        assert_eq!(file["status"], "FAILED", "{name}: {file}");
        let reason = file["reason"].as_str().unwrap_or_default();
        assert!(want.split('|').any(|w| reason.starts_with(w)), "{name}: {reason}, expected {want}");
        let key = format!("uploads/{}/{}/{name}", user.id, file["fileId"].as_str().unwrap());
        // Inspect removes it once the verdict is out, so FAILED may show a moment before.
        let s3 = stack.clients.s3();
        let gone = || async { s3.head_object().bucket(&stack.bucket).key(&key).send().await.is_err() };
        eventually(5, &format!("{name}: the refused object to be removed"), gone).await;
    }
    // A large file is judged from its head and tail: bytes appended after a
    // multipart PNG's IEND are found in the last part.
    let mut big = png(12 * MIB);
    big.extend_from_slice(b"<html><script>alert(document.cookie)</script></html>");
    let id = client.upload(&user, "big.png", "image/png", &big).await;
    let file = client.wait_final(&user, &id).await;
    assert_eq!(file["status"], "FAILED", "{file}");
    assert!(file["reason"].as_str().unwrap().starts_with("invalid_content"), "{file}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_is_served_as_the_detected_type_not_the_puts() {
    let stack = spawn_stack().await;
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let data = png(4000);
    let request = serde_json::json!({ "fileName": "cat.png", "size": data.len(), "contentType": "image/png" });
    let (status, started) = client.call("POST", "/uploads", Some(&user.token), Some(request)).await;
    assert_eq!(status, 201, "{started}");
    let mut put = client.http.put(started["url"].as_str().unwrap()).body(data.clone());
    for (name, value) in started["headers"].as_object().unwrap() {
        put = put.header(name, value.as_str().unwrap());
    }
    // The uploader claims HTML: S3 keeps that Content-Type on the object.
    let resp = put.header("content-type", "text/html").send().await.unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap_or_default());
    let id = started["fileId"].as_str().unwrap();
    let file = client.wait_final(&user, id).await;
    assert_eq!(file["status"], "UPLOADED", "{file}");

    let (status, signed) = client.call("POST", &format!("/files/{id}/download-url"), Some(&user.token), None).await;
    assert_eq!(status, 200, "{signed}");
    let download = client.http.get(signed["url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(download.headers()["content-type"], "image/png");
    assert!(download.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    assert_eq!(download.bytes().await.unwrap().as_ref(), data.as_slice());
}
