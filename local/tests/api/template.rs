//! template.yaml, the routes table and the function crates agree.

use std::collections::BTreeSet;

use sluice_shared::routes::ROUTES;

/// (binary, method, path) for each HttpApi event, and every binary declared.
fn read_template() -> (BTreeSet<(String, String, String)>, BTreeSet<String>) {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    let mut routes = BTreeSet::new();
    let mut binaries = BTreeSet::new();
    let (mut binary, mut method) = (String::new(), String::new());
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let line = line.trim();
        if indent == 2 && line.ends_with(':') {
            binary.clear();
        }
        if let Some(b) = line.strip_prefix("Binary:") {
            binary = b.trim().to_string();
            binaries.insert(binary.clone());
        } else if let Some(m) = line.strip_prefix("Method:") {
            method = m.trim().to_string();
        } else if let Some(p) = line.strip_prefix("Path:") {
            assert!(!binary.is_empty(), "route {method} {p} before its function's Binary");
            routes.insert((binary.clone(), method.clone(), p.trim().to_string()));
        }
    }
    (routes, binaries)
}

#[test]
fn every_route_is_in_the_template_and_back() {
    let (in_template, _) = read_template();
    let in_table: BTreeSet<(String, String, String)> =
        ROUTES.iter().map(|r| (r.function.to_string(), r.method.to_string(), r.path.to_string())).collect();
    assert_eq!(in_template, in_table);
}

#[test]
fn every_function_crate_has_a_resource_and_back() {
    let (_, binaries) = read_template();
    let crates: BTreeSet<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../functions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(binaries, crates);
}

/// The `Variables:` set for each binary (plus the Globals) in template.yaml.
fn template_variables() -> std::collections::BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    let mut by_resource: Vec<(String, BTreeSet<String>)> = Vec::new();
    let mut globals = BTreeSet::new();
    let (mut in_globals, mut vars_indent) = (false, None::<usize>);
    let mut current = (String::new(), BTreeSet::new());
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if indent == 0 && !trimmed.is_empty() {
            in_globals = trimmed == "Globals:";
        }
        if indent == 2 && trimmed.ends_with(':') && !in_globals {
            by_resource.push(std::mem::take(&mut current));
        }
        if let Some(v) = vars_indent {
            if indent > v && trimmed.contains(':') {
                let name = trimmed.split(':').next().unwrap().to_string();
                if in_globals {
                    globals.insert(name);
                } else {
                    current.1.insert(name);
                }
                continue;
            }
            vars_indent = None;
        }
        if trimmed == "Variables:" {
            vars_indent = Some(indent);
        } else if let Some(b) = trimmed.strip_prefix("Binary:") {
            current.0 = b.trim().to_string();
        }
    }
    by_resource.push(current);
    by_resource
        .into_iter()
        .filter(|(binary, _)| !binary.is_empty())
        .map(|(binary, vars)| (binary, vars.union(&globals).cloned().collect()))
        .collect()
}

/// What each function's own `from_env` requires, asked of the code itself.
fn required_by_code() -> Vec<(&'static str, BTreeSet<String>)> {
    use sluice_shared::config::Env;
    let state = std::env::var("SLUICE_STATE_DIR").expect("run with `make test`");
    let private = format!("{state}/jwt-private.pem");
    let public = format!("{state}/jwt-public.pem");
    let complete = [
        ("UPLOAD_BUCKET", "b"),
        ("SESSIONS_TABLE", "t"),
        ("VERDICT_QUEUE_URL", "q"),
        ("VERDICT_DLQ_URL", "d"),
        ("DATABASE_URL", "postgres://u@localhost/db"),
        ("JWT_PRIVATE_KEY_FILE", private.as_str()),
        ("JWT_PUBLIC_KEY_FILE", public.as_str()),
        ("UPLOAD_TOKEN_KEYS", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="),
    ];
    let clients = sluice_local::stack::local_clients("http://127.0.0.1:9", "http://127.0.0.1:9", &Default::default());
    let asked = |build: &dyn Fn(&Env)| {
        let env = Env::from_pairs(complete);
        build(&env);
        env.required_names()
    };
    vec![
        (
            "auth",
            asked(&|env| {
                auth::Auth::from_env(env, &clients).unwrap();
            }),
        ),
        (
            "presign",
            asked(&|env| {
                presign::Presign::from_env(env, &clients).unwrap();
            }),
        ),
        (
            "record-chunk",
            asked(&|env| {
                record_chunk::RecordChunk::from_env(env, &clients).unwrap();
            }),
        ),
        (
            "complete-upload",
            asked(&|env| {
                complete_upload::CompleteUpload::from_env(env, &clients).unwrap();
            }),
        ),
        (
            "files",
            asked(&|env| {
                files::Files::from_env(env, &clients).unwrap();
            }),
        ),
        (
            "inspect",
            asked(&|env| {
                inspect::Inspect::from_env(env, &clients).unwrap();
            }),
        ),
        (
            "persist",
            asked(&|env| {
                persist::Persist::from_env(env, &clients).unwrap();
            }),
        ),
        (
            "migrate",
            asked(&|env| {
                migrate::Migrate::from_env(env).unwrap();
            }),
        ),
        (
            "sweeper",
            asked(&|env| {
                sweeper::Sweeper::from_env(env, &clients).unwrap();
            }),
        ),
    ]
}

#[test]
fn every_variable_a_function_requires_is_set_in_the_template() {
    let template = template_variables();
    for (function, required) in required_by_code() {
        let set = template.get(function).unwrap_or_else(|| panic!("{function} has no resource"));
        assert!(!required.is_empty(), "{function} requires nothing?");
        for name in &required {
            assert!(
                name.split('|').any(|n| set.contains(n)),
                "{function} requires {name} but template.yaml does not set it (it sets {set:?})"
            );
        }
    }
}

/// IAM actions each call needs: SDK operations, and the port methods
/// (shared/src/ports.rs) by the operations their adapters make.
const CALLS: &[(&str, &[&str])] = &[
    // With SSE-KMS, writing (multipart) needs both KMS actions and reading needs Decrypt.
    (".create_multipart_upload()", &["s3:PutObject", "kms:GenerateDataKey", "kms:Decrypt"]),
    (".upload_part()", &["s3:PutObject"]),
    (".put_object()", &["s3:PutObject", "kms:GenerateDataKey"]),
    (".complete_multipart_upload()", &["s3:PutObject", "kms:GenerateDataKey", "kms:Decrypt"]),
    (".abort_multipart_upload()", &["s3:AbortMultipartUpload"]),
    (".list_parts()", &["s3:ListMultipartUploadParts"]),
    (".head_object()", &["s3:GetObject"]),
    // S3Objects (shared/src/adapters.rs); inspect names the version it judged.
    ("objects.head(", &["s3:GetObject", "s3:GetObjectVersion"]),
    ("objects.exists(", &["s3:GetObject"]),
    ("objects.read_range(", &["s3:GetObject", "s3:GetObjectVersion", "kms:Decrypt"]),
    ("objects.read_from(", &["s3:GetObject", "s3:GetObjectVersion", "kms:Decrypt"]),
    ("objects.delete(", &["s3:DeleteObject", "s3:DeleteObjectVersion"]),
    ("objects.list_parts(", &["s3:ListMultipartUploadParts"]),
    ("objects.multipart_open(", &["s3:ListMultipartUploadParts"]),
    ("objects.complete_multipart(", &["s3:PutObject", "kms:GenerateDataKey", "kms:Decrypt"]),
    ("objects.abort_multipart(", &["s3:AbortMultipartUpload"]),
    // SqsQueues (shared/src/adapters.rs).
    ("queues.send(", &["sqs:SendMessage"]),
    ("queues.delay(", &["sqs:ChangeMessageVisibility"]),
    (".get_object()", &["s3:GetObject", "kms:Decrypt"]),
    (".delete_object()", &["s3:DeleteObject"]),
    (".send_message()", &["sqs:SendMessage"]),
    (".change_message_visibility()", &["sqs:ChangeMessageVisibility"]),
    // Reads and deletes that name the version judged.
    (".set_version_id(", &["s3:GetObjectVersion", "s3:DeleteObjectVersion"]),
    ("sessions.create(", &["dynamodb:PutItem"]),
    ("sessions.get(", &["dynamodb:GetItem"]),
    ("owned_session(", &["dynamodb:GetItem"]),
    ("sessions.record_parts(", &["dynamodb:PutItem", "dynamodb:UpdateItem"]),
    ("sessions.parts(", &["dynamodb:Query"]),
    ("sessions.set_stage(", &["dynamodb:UpdateItem"]),
    ("sessions.expired_open(", &["dynamodb:Scan"]),
    ("sessions.record_judgement(", &["dynamodb:UpdateItem"]),
    ("sessions.mark_verdicts_stored(", &["dynamodb:BatchWriteItem"]),
    ("sessions.mark_verdict_dead_lettered(", &["dynamodb:UpdateItem"]),
    ("sessions.unsettled(", &["dynamodb:Scan"]),
    ("sessions.touch(", &["dynamodb:UpdateItem"]),
    // SigninFailures (shared/src/signin_failures.rs).
    ("signins.get(", &["dynamodb:GetItem"]),
    ("signins.count(", &["dynamodb:UpdateItem", "dynamodb:PutItem"]),
    ("signins.clear(", &["dynamodb:DeleteItem"]),
    // The sweeper judges an object as inspect does (functions/inspect).
    (
        "inspect.inspect_key(",
        &[
            "s3:GetObject",
            "s3:GetObjectVersion",
            "s3:DeleteObject",
            "s3:DeleteObjectVersion",
            "kms:Decrypt",
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "sqs:SendMessage",
        ],
    ),
    // QuotaLedger (shared/src/quota.rs): TransactWriteItems is authorised per item.
    ("quota.charge(", &["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem"]),
    ("quota.release(", &["dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem"]),
    ("quota.resize(", &["dynamodb:GetItem", "dynamodb:UpdateItem"]),
    // UploadCloser (shared/src/closeout.rs): aborts the multipart upload, sends the verdict, releases the quota.
    ("closer.close(", &["s3:AbortMultipartUpload", "sqs:SendMessage", "dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem"]),
];

fn actions_called(function: &str) -> BTreeSet<String> {
    let dir = format!("{}/../functions/{function}/src", env!("CARGO_MANIFEST_DIR"));
    let source: String = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
        .split_whitespace()
        .collect();
    CALLS
        .iter()
        .filter(|(call, _)| source.contains(&call.split_whitespace().collect::<String>()))
        .flat_map(|(_, actions)| actions.iter().map(|a| a.to_string()))
        .collect()
}

fn actions_allowed() -> std::collections::BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    let mut allowed = std::collections::BTreeMap::<String, BTreeSet<String>>::new();
    let (mut binary, mut actions) = (String::new(), BTreeSet::new());
    let mut flush = |binary: &mut String, actions: &mut BTreeSet<String>| {
        if !binary.is_empty() {
            allowed.insert(std::mem::take(binary), std::mem::take(actions));
        }
        actions.clear();
    };
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if indent == 2 && trimmed.ends_with(':') {
            flush(&mut binary, &mut actions);
        }
        if let Some(b) = trimmed.strip_prefix("Binary:") {
            binary = b.trim().to_string();
        } else if let Some(list) = trimmed.strip_prefix("Action:") {
            for action in list.trim().trim_matches(['[', ']']).split(',') {
                actions.insert(action.trim().to_string());
            }
        }
    }
    flush(&mut binary, &mut actions);
    allowed
}

#[test]
fn every_policy_allows_exactly_the_calls_its_function_makes() {
    let allowed = actions_allowed();
    for (function, granted) in &allowed {
        let called = actions_called(function);
        assert_eq!(&called, granted, "{function}: the calls in its code (left) and its policy (right) differ");
    }
    assert_eq!(allowed.len(), 9);
}

fn template_text() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap()
}

/// A new migration must change the custom resource's properties, or
/// CloudFormation would not call the migrate function on the next deploy.
#[test]
fn the_deploy_time_migration_lists_every_migration() {
    let text = template_text();
    let listed = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Migrations: "))
        .expect("the Migrations custom resource lists the migrations")
        .trim_matches('"');
    let embedded: Vec<&str> = sluice_shared::db::MIGRATIONS.iter().map(|(version, _)| *version).collect();
    assert_eq!(listed, embedded.join(","));
    let mut files: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().trim_end_matches(".sql").to_string())
        .collect();
    files.sort();
    assert_eq!(files, embedded, "every file in migrations/ is embedded, in order");
}

/// CloudFront sends API paths to the HTTP API and the rest to the page's
/// bucket: every route must match an API pattern, and every pattern a route.
#[test]
fn cloudfront_sends_every_route_to_the_api() {
    let patterns: Vec<String> =
        template_text().lines().filter_map(|l| l.trim().strip_prefix("- PathPattern:").map(|p| p.trim().to_string())).collect();
    // CloudFront's patterns: `*` matches any run of characters, including `/`.
    let matches = |pattern: &str, path: &str| match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => path == pattern,
    };
    for route in ROUTES {
        let example = route.path.replace("{fileId}", "3f8e2a52-6d1c-4b7e-9a0f-2c5d8e1b7a64");
        assert!(patterns.iter().any(|p| matches(p, &example)), "{} {} reaches no API behaviour", route.method, route.path);
    }
    for pattern in &patterns {
        assert!(
            ROUTES.iter().any(|r| matches(pattern, &r.path.replace("{fileId}", "x"))),
            "{pattern} sends paths to the API that no route serves"
        );
    }
    for page_path in ["/", "/index.html", "/assets/app.js"] {
        assert!(!patterns.iter().any(|p| matches(p, page_path)), "{page_path} would go to the API");
    }
}
