//! Tokens (RS256 JWT) and password hashing.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use lambda_http::Request;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ApiError;

/// The HttpOnly cookie sign-in sets, for the web page on the API's origin.
pub const COOKIE_NAME: &str = "sluice_session";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub sub: Uuid,
    pub email: String,
    pub iss: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

pub struct TokenIssuer {
    key: EncodingKey,
    issuer: String,
    audience: String,
    pub ttl_secs: u64,
}

impl TokenIssuer {
    pub fn from_pem(pem: &str, issuer: &str, audience: &str, ttl_secs: u64) -> Result<Self, String> {
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| format!("not an RSA private key in PEM: {e}"))?;
        Ok(Self { key, issuer: issuer.into(), audience: audience.into(), ttl_secs })
    }

    pub fn issue(&self, user_id: Uuid, email: &str) -> Result<String, ApiError> {
        let iat = now_secs();
        let claims = Claims {
            sub: user_id,
            email: email.into(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat,
            exp: iat + self.ttl_secs,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key).map_err(|e| ApiError::unavailable("token signing", e))
    }
}

pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl TokenVerifier {
    pub fn from_pem(pem: &str, issuer: &str, audience: &str) -> Result<Self, String> {
        let key = DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| format!("not an RSA public key in PEM: {e}"))?;
        // Only RS256: "none" and HS256-with-the-public-key tokens are refused.
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Ok(Self { key, validation })
    }

    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| ApiError::unauthorized(format!("the token is not valid: {e}")))
    }

    /// The caller of a request, from its bearer token or sign-in cookie.
    pub fn caller(&self, req: &Request) -> Result<Claims, ApiError> {
        crate::http::refuse_cross_site(req)?;
        let token = crate::http::credentials(req)
            .ok_or_else(|| ApiError::unauthorized("sign in first: send Authorization: Bearer <token> or the session cookie"))?;
        self.verify(&token)
    }
}

/// Argon2id at 9 MiB and 4 passes: one of OWASP's equal-strength settings
/// (with 19 MiB and 2, the crate's default), chosen so that a sign-in keeps
/// the auth function under 20 MB. Hashes stored with other settings carry
/// them, and still verify.
fn hasher() -> argon2::Argon2<'static> {
    let params = argon2::Params::new(9 * 1024, 4, 1, None).expect("valid Argon2 parameters");
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// Hashes off the async threads, because it is deliberately slow.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
        let salt = SaltString::generate(&mut OsRng);
        hasher().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| ApiError::unavailable("password hashing", e))
    })
    .await
    .map_err(|e| ApiError::unavailable("password hashing", e))?
}

/// Checks `password` against a stored hash; `None` (no such user) still
/// spends the same time so timing does not reveal which emails exist.
pub async fn verify_password(password: String, stored: Option<String>) -> bool {
    const DUMMY: &str = "$argon2id$v=19$m=9216,t=4,p=1$c29tZXNhbHRzb21lc2FsdA$x1Jq1V3Gf7aW0b1mzC6kGd3wSg9yPpKfQk1Vx2cG0bE";
    let known = stored.is_some();
    let hash = stored.unwrap_or_else(|| DUMMY.to_string());
    tokio::task::spawn_blocking(move || {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        let Ok(parsed) = PasswordHash::new(&hash) else { return false };
        hasher().verify_password(password.as_bytes(), &parsed).is_ok() && known
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_verify_only_themselves() {
        let hash = hash_password("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=9216,t=4,p=1$"), "{hash}");
        assert!(verify_password("correct horse".into(), Some(hash.clone())).await);
        assert!(!verify_password("wrong horse".into(), Some(hash)).await);
        assert!(!verify_password("correct horse".into(), None).await);
    }

    #[tokio::test]
    async fn hashes_stored_with_the_old_settings_still_verify() {
        use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
        let salt = SaltString::generate(&mut OsRng);
        let old = argon2::Argon2::default().hash_password(b"correct horse", &salt).unwrap().to_string();
        assert!(old.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{old}");
        assert!(verify_password("correct horse".into(), Some(old.clone())).await);
        assert!(!verify_password("wrong horse".into(), Some(old)).await);
    }
}
