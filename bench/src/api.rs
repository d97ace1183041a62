//! The few API calls the benchmarks make as a user would.

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
}

pub struct User {
    pub id: String,
    pub token: String,
}

impl Api {
    pub fn new(base: &str) -> Self {
        Self { http: reqwest::Client::new(), base: base.to_string() }
    }

    /// Calls the API; answers the JSON body, or fails naming the status.
    pub async fn call(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: Option<Value>) -> anyhow::Result<Value> {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.with_context(|| format!("{method} {path}"))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{method} {path} answered {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn new_user(&self) -> anyhow::Result<User> {
        let email = format!("bench-{}@example.com", uuid::Uuid::new_v4().simple());
        let credentials = json!({ "email": email, "password": "correct horse battery" });
        let created = self.call(reqwest::Method::POST, "/auth/signup", None, Some(credentials.clone())).await?;
        let signed_in = self.call(reqwest::Method::POST, "/auth/signin", None, Some(credentials)).await?;
        let id = created["userId"].as_str().context("signup answered no userId")?.to_string();
        let token = signed_in["accessToken"].as_str().context("signin answered no accessToken")?.to_string();
        Ok(User { id, token })
    }
}
