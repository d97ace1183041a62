//! Bench users, signed up and in through the CLI's own API client and the
//! contract's bodies, as a user would.

use sluice_api::auth::{SignIn, SignUp, SignedUp, Token};
use sluice_cli::api::Api;
use uuid::Uuid;

pub struct User {
    pub id: Uuid,
    /// The API, authenticated as this user.
    pub api: Api,
}

impl User {
    pub fn token(&self) -> &str {
        self.api.token.as_deref().unwrap_or_default()
    }
}

pub async fn new_user(base: &str) -> anyhow::Result<User> {
    let anonymous = Api::new(base, None);
    let email = format!("bench-{}@example.com", Uuid::new_v4().simple());
    let password = "correct horse battery".to_string();
    let created: SignedUp =
        anonymous.post("/auth/signup", &SignUp { email: email.clone(), password: password.clone(), name: None }).await?;
    let token: Token = anonymous.post("/auth/signin", &SignIn { email, password }).await?;
    Ok(User { id: created.user_id, api: Api::new(base, Some(token.access_token)) })
}
