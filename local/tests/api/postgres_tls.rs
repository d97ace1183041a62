//! Against a Postgres that accepts only TLS (scripts/tls-postgres.sh: its
//! own CA, a certificate for `localhost`): `sslmode` is honoured as libpq
//! reads it, and the whole pipeline runs over TLS end to end.

use crate::common::*;
use sluice_shared::db;

/// The TLS-only Postgres of this test; stopped and removed when dropped.
struct TlsPostgres {
    dir: String,
    port: u16,
}

fn script() -> String {
    format!("{}/../scripts/tls-postgres.sh", env!("CARGO_MANIFEST_DIR"))
}

impl TlsPostgres {
    fn start() -> Self {
        let dir = format!("/tmp/sluice-tls-pg-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let out = std::process::Command::new(script()).args(["start", &dir]).output().expect("tls-postgres.sh runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        let port = String::from_utf8_lossy(&out.stdout).trim().lines().last().unwrap().parse().unwrap();
        Self { dir, port }
    }

    fn url(&self, host: &str, params: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres?{params}", self.port)
    }

    fn ca(&self) -> String {
        format!("{}/ca.crt", self.dir)
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let _ = std::process::Command::new(script()).args(["stop", &self.dir]).status();
    }
}

async fn over_tls(url: &str) -> Result<bool, String> {
    let client = db::connect(url).await.map_err(|e| e.to_string())?;
    let row = client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_is_honoured_and_the_pipeline_runs_over_tls() {
    let pg = TlsPostgres::start();
    let ca = pg.ca();

    let plaintext = over_tls(&pg.url("localhost", "sslmode=disable")).await.unwrap_err();
    assert!(plaintext.contains("no encryption"), "the server refuses plaintext: {plaintext}");
    assert_eq!(over_tls(&pg.url("localhost", "sslmode=require")).await, Ok(true), "require: encrypted, unverified");
    assert_eq!(over_tls(&pg.url("localhost", "")).await, Ok(true), "no sslmode: prefer, which takes TLS when offered");
    let unknown_ca = over_tls(&pg.url("localhost", "sslmode=verify-full")).await.unwrap_err();
    assert!(unknown_ca.to_lowercase().contains("certificate"), "the built-in RDS roots do not vouch for it: {unknown_ca}");
    let full = format!("sslmode=verify-full&sslrootcert={ca}");
    assert_eq!(over_tls(&pg.url("localhost", &full)).await, Ok(true));
    let wrong_name = over_tls(&pg.url("127.0.0.1", &full)).await.unwrap_err();
    assert!(wrong_name.to_lowercase().contains("certificate"), "verify-full checks the host name: {wrong_name}");
    assert_eq!(over_tls(&pg.url("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}"))).await, Ok(true), "verify-ca does not");

    // The stack on it, verify-full: sign-up (auth), an upload (persist) and
    // the listing (files) all reach Postgres over TLS, or not at all.
    let stack = spawn_stack_with(|o| {
        o.pg_host = "localhost".into();
        o.pg_port = pg.port;
        o.pg_params = full.clone();
    })
    .await;
    assert!(stack.env["DATABASE_URL"].contains("sslmode=verify-full"), "{}", stack.env["DATABASE_URL"]);
    let client = Client::new(&stack);
    let user = client.new_user().await;
    let (id, status) = client.upload_single(&user, "tls.png", "image/png", &png(10 * 1024)).await;
    assert_eq!(status, 200);
    assert_eq!(client.wait_final(&user, &id).await["status"], "UPLOADED");
    let (status, listed) = client.call("GET", "/files", Some(&user.token), None).await;
    assert_eq!((status.as_u16(), listed["files"][0]["fileId"].as_str()), (200, Some(id.as_str())), "{listed}");
}
