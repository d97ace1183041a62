//! Every handler called directly with its sample event from events/, on a
//! real local stack (the sample ids and token are swapped for live ones).

use crate::common::*;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

use sluice_local::events::{SAMPLE_FILE, SAMPLE_TOKEN, SAMPLE_USER};

fn sample(name: &str, swaps: &[(&str, &str)]) -> String {
    sluice_local::events::sample_event(name, swaps).unwrap()
}

/// The sample with a live file id and, given one, a live token where the
/// placeholder stands (the Authorization header, or the sign-in cookie).
fn api_event(name: &str, token: Option<&str>, file_id: &str) -> lambda_http::Request {
    let mut swaps = vec![(SAMPLE_FILE, file_id)];
    swaps.extend(token.map(|t| (SAMPLE_TOKEN, t)));
    lambda_http::request::from_str(&sample(name, &swaps)).unwrap()
}

fn answer(resp: lambda_http::Response<lambda_http::Body>) -> (u16, Value) {
    let status = resp.status().as_u16();
    let body = match resp.body() {
        lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap(),
        _ => Value::Null,
    };
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_event_is_handled_as_documented() {
    let stack = spawn_stack().await;
    let api = &stack.api;

    let (status, signed_up) = answer(auth::handle(&api.auth, api_event("auth-signup", None, "")).await.unwrap());
    assert_eq!(status, 201, "{signed_up}");
    let user_id = signed_up["userId"].as_str().unwrap().to_string();
    let (status, signed_in) = answer(auth::handle(&api.auth, api_event("auth-signin", None, "")).await.unwrap());
    assert_eq!(status, 200, "{signed_in}");
    let token = signed_in["accessToken"].as_str().unwrap();
    let signed_out = auth::handle(&api.auth, api_event("auth-signout", None, "")).await.unwrap();
    let cleared = signed_out.headers()["set-cookie"].to_str().unwrap();
    assert_eq!(signed_out.status(), 204);
    assert!(cleared.starts_with("sluice_session=;") && cleared.contains("Max-Age=0"), "{cleared}");

    // The sample token is a placeholder: it is refused, not trusted.
    let (status, _) = answer(presign::handle(&api.presign, api_event("presign", None, "")).await.unwrap());
    assert_eq!(status, 401);

    let (status, started) = answer(presign::handle(&api.presign, api_event("presign", Some(token), "")).await.unwrap());
    assert_eq!(status, 201, "{started}");
    assert_eq!((started["partCount"].as_u64(), started["parts"].as_array().unwrap().len()), (Some(205), 100));
    let file_id = started["fileId"].as_str().unwrap().to_string();

    let (status, more) = answer(presign::handle(&api.presign, api_event("presign-parts", Some(token), &file_id)).await.unwrap());
    assert_eq!(status, 200, "{more}");
    let numbers: Vec<u64> = more["parts"].as_array().unwrap().iter().map(|p| p["partNumber"].as_u64().unwrap()).collect();
    assert_eq!((numbers.first(), numbers.last(), numbers.len()), (Some(&101), Some(&200), 100));

    let (status, summed) = answer(presign::handle(&api.presign, api_event("presign-checksums", Some(token), &file_id)).await.unwrap());
    assert_eq!(status, 200, "{summed}");
    let part = &summed["parts"][1];
    assert_eq!(
        (part["partNumber"].as_u64(), part["headers"]["x-amz-checksum-sha256"].as_str()),
        (Some(2), Some("hX5JQ0SmyBFQtd5m0rGlqSW8nIyxb/HGvXhXUfEd5aY=")),
        "{summed}"
    );
    assert!(part["url"].as_str().unwrap().contains("x-amz-checksum-sha256"), "the checksum is a signed header: {part}");

    let (status, single) = answer(presign::handle(&api.presign, api_event("presign-single", Some(token), "")).await.unwrap());
    assert_eq!(status, 201, "{single}");
    assert_eq!((single["mode"].as_str(), single["method"].as_str()), (Some("single"), Some("PUT")), "{single}");
    assert_eq!(single["headers"]["x-amz-checksum-sha256"], "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "{single}");
    // Nothing else: inspect reads the owner and file from the key, the type from the session.
    assert_eq!(single["headers"].as_object().unwrap().len(), 1, "{single}");

    // Uppy's start, authenticated by the sign-in cookie alone.
    let (status, uppy) = answer(presign::handle(&api.presign, api_event("companion-create", Some(token), "")).await.unwrap());
    assert_eq!(status, 200, "{uppy}");
    assert!(uppy["key"].as_str().unwrap().ends_with("/site_survey.mp4"), "{uppy}");
    let (status, _) = answer(presign::handle(&api.presign, api_event("companion-create", None, "")).await.unwrap());
    assert_eq!(status, 401, "the sample cookie's placeholder is refused");

    let (status, recorded) =
        answer(record_chunk::handle(&api.record_chunk, api_event("record-chunk", Some(token), &file_id)).await.unwrap());
    assert_eq!(status, 200, "{recorded}");
    assert_eq!((&recorded["recordedParts"], &recorded["partNumbers"]), (&json!(2), &json!([1, 2])), "the sample records two parts");

    let (status, state) = answer(presign::handle(&api.presign, api_event("upload-state", Some(token), &file_id)).await.unwrap());
    assert_eq!(status, 200, "{state}");
    assert_eq!(
        state["recordedParts"].as_array().map(|p| p.iter().map(|p| p["partNumber"].clone()).collect::<Vec<_>>()),
        Some(vec![1.into(), 2.into()])
    );

    let (status, refused) =
        answer(complete_upload::handle(&api.complete_upload, api_event("complete-upload", Some(token), &file_id)).await.unwrap());
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["missingParts"].as_array().unwrap().len(), 205, "parts 1 and 2 were recorded but never reached S3");

    let (status, file) = answer(files::handle(&api.files, api_event("files", Some(token), &file_id)).await.unwrap());
    assert_eq!((status, file["status"].as_str(), file["recordedParts"].as_u64()), (200, Some("UPLOADING"), Some(2)), "{file}");

    let (status, cancelled) =
        answer(complete_upload::handle(&api.complete_upload, api_event("cancel-upload", Some(token), &file_id)).await.unwrap());
    assert_eq!(
        (status, cancelled["status"].as_str(), cancelled["reason"].as_str()),
        (200, Some("FAILED"), Some("cancelled")),
        "{cancelled}"
    );

    // inspect: the sample's key is URL-encoded; the object lives at the decoded key.
    let inspected_id = uuid::Uuid::new_v4().to_string();
    let key = format!("uploads/{user_id}/{inspected_id}/holiday video (1).mp4");
    stack
        .clients
        .s3()
        .put_object()
        .bucket(&stack.bucket)
        .key(&key)
        .metadata("owner-id", &user_id)
        .metadata("file-id", &inspected_id)
        .metadata("declared-type", "video/mp4")
        .body(mp4(100 * 1024).into())
        .send()
        .await
        .unwrap();
    let swaps =
        [(SAMPLE_USER, user_id.as_str()), (SAMPLE_FILE, inspected_id.as_str()), ("sluice-uploads-123456789012", stack.bucket.as_str())];
    let event: Value = serde_json::from_str(&sample("inspect", &swaps)).unwrap();
    inspect::handle(&stack.inspect, LambdaEvent::new(event, Context::default())).await.unwrap();
    let client = Client::new(&stack);
    let user = User { id: user_id.clone(), email: String::new(), token: token.to_string() };
    let path = format!("/files/{inspected_id}");
    eventually(20, "the verdict in Postgres", || async { client.call("GET", &path, Some(token), None).await.0 == 200 }).await;
    let file = client.wait_final(&user, &inspected_id).await;
    assert_eq!((file["status"].as_str(), file["detectedType"].as_str()), (Some("UPLOADED"), Some("video/mp4")), "{file}");
    assert_eq!(file["fileName"], "holiday video (1).mp4");

    // files-list and download-url: the inspected file, now in Postgres.
    let (status, listed) = answer(files::handle(&api.files, api_event("files-list", Some(token), "")).await.unwrap());
    assert_eq!(status, 200, "{listed}");
    // The cancelled upload above is persisted by the running consumer at its own pace, so the
    // inspected file need not be first: it must be listed, with its verdict.
    let entry = listed["files"].as_array().unwrap().iter().find(|f| f["fileId"].as_str() == Some(inspected_id.as_str()));
    assert_eq!(entry.map(|f| f["status"].clone()), Some("UPLOADED".into()), "{listed}");
    let (status, download) = answer(files::handle(&api.files, api_event("download-url", Some(token), &inspected_id)).await.unwrap());
    assert_eq!(status, 200, "{download}");
    assert!(download["url"].as_str().unwrap().contains("response-content-disposition"), "{download}");
    let (status, deleted) = answer(files::handle(&api.files, api_event("delete-file", Some(token), &inspected_id)).await.unwrap());
    assert_eq!((status, deleted["deleted"].as_bool()), (200, Some(true)), "{deleted}");

    // sweeper: the scheduled event; nothing here has expired.
    let event: Value = serde_json::from_str(&sample("sweeper", &[])).unwrap();
    let swept = sweeper::handle(&stack.sweeper, LambdaEvent::new(event, Context::default())).await.unwrap();
    assert_eq!(serde_json::to_value(swept).unwrap(), serde_json::json!({ "swept": 0, "failed": 0, "redriven": 0 }));

    // persist: the sample batch, for this user.
    let persisted_id = uuid::Uuid::new_v4().to_string();
    let swaps = [(SAMPLE_USER, user_id.as_str()), (SAMPLE_FILE, persisted_id.as_str())];
    let event: aws_lambda_events::sqs::SqsEvent = serde_json::from_str(&sample("persist", &swaps)).unwrap();
    let response = persist::handle(&stack.persist, LambdaEvent::new(event, Context::default())).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
    let (status, file) = client.call("GET", &format!("/files/{persisted_id}"), Some(token), None).await;
    assert_eq!((status.as_u16(), file["kind"].as_str()), (200, Some("VIDEO")), "{file}");
}
