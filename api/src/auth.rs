//! `/auth/*`: accounts and sign-in.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `POST /auth/signup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignUp {
    pub email: String,
    pub password: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// 201 to `POST /auth/signup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedUp {
    pub user_id: Uuid,
    pub email: String,
}

/// `POST /auth/signin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignIn {
    pub email: String,
    pub password: String,
}

/// 200 to `POST /auth/signin`; the same token is set as the session cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Token {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds.
    pub expires_in: u64,
}

impl Token {
    pub fn bearer(access_token: String, expires_in: u64) -> Self {
        Self { access_token, token_type: "Bearer".into(), expires_in }
    }
}
