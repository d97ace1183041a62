//! The upload id handed to Uppy: a token that carries what signing a part
//! needs (the file, its owner, the object key, S3's upload id, the declared
//! size, the session's expiry) under an HMAC-SHA256, so a part URL is signed
//! from it in memory, with no read of the session table.
//!
//! What it does not grant: anything without the owner's credentials (the
//! routes still authenticate the caller and compare it with the token's
//! owner); another key or upload (they are inside the MAC); anything after
//! the session's expiry. A URL signed for an upload that was cancelled or
//! completed meanwhile is refused by S3 itself (NoSuchUpload).
//!
//! Form: `u1.<base64url(JSON claim)>.<base64url(MAC)>`. Several keys may be
//! configured: the first signs, every one verifies, so a key is rotated by
//! putting the new one first and dropping the old one once the longest
//! session has expired.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

const PREFIX: &str = "u1.";
/// The shortest key accepted: the MAC's own width.
pub const MIN_KEY_BYTES: usize = 32;

/// What an upload token says about its upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadClaim {
    #[serde(rename = "f")]
    pub file_id: Uuid,
    #[serde(rename = "o")]
    pub owner_id: Uuid,
    #[serde(rename = "k")]
    pub key: String,
    #[serde(rename = "u")]
    pub upload_id: String,
    /// The declared size, when there was one (it fixes each part's length).
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Seconds since the epoch: the session's expiry.
    #[serde(rename = "e")]
    pub expires_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not in the token's form (a bare file id, from before tokens).
    #[error("not an upload token")]
    NotAToken,
    /// In the form, but no configured key made its MAC, or its claim does not parse.
    #[error("the upload token is not one this service issued")]
    Forged,
    #[error("the upload token expired at {0}")]
    Expired(u64),
}

/// The keys upload tokens are made and checked with.
#[derive(Clone)]
pub struct UploadTokens {
    keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for UploadTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UploadTokens({} keys, redacted)", self.keys.len())
    }
}

fn mac(key: &[u8], payload: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(payload.as_bytes());
    mac
}

impl UploadTokens {
    /// From the keys, the signing one first; each at least [`MIN_KEY_BYTES`].
    pub fn new(keys: Vec<Vec<u8>>) -> Result<Self, String> {
        if keys.is_empty() {
            return Err("at least one key is needed".into());
        }
        if let Some((i, short)) = keys.iter().enumerate().find(|(_, k)| k.len() < MIN_KEY_BYTES) {
            return Err(format!("key {} is {} bytes; each must be at least {MIN_KEY_BYTES}", i + 1, short.len()));
        }
        Ok(Self { keys })
    }

    /// From `UPLOAD_TOKEN_KEYS`' form: base64 keys separated by commas.
    pub fn parse(text: &str) -> Result<Self, String> {
        let keys = text
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .enumerate()
            .map(|(i, k)| base64::engine::general_purpose::STANDARD.decode(k).map_err(|e| format!("key {} is not base64: {e}", i + 1)))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(keys)
    }

    pub fn issue(&self, claim: &UploadClaim) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claim).expect("a claim serializes"));
        let tag = mac(&self.keys[0], &payload).finalize().into_bytes();
        format!("{PREFIX}{payload}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The claim of a token this service issued and that has not expired at `now`.
    pub fn verify(&self, token: &str, now: u64) -> Result<UploadClaim, TokenError> {
        let rest = token.strip_prefix(PREFIX).ok_or(TokenError::NotAToken)?;
        let (payload, tag) = rest.split_once('.').ok_or(TokenError::Forged)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| TokenError::Forged)?;
        // Constant-time comparison, against each key in turn.
        if !self.keys.iter().any(|key| mac(key, payload).verify_slice(&tag).is_ok()) {
            return Err(TokenError::Forged);
        }
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| TokenError::Forged)?;
        let claim: UploadClaim = serde_json::from_slice(&json).map_err(|_| TokenError::Forged)?;
        if now >= claim.expires_at {
            return Err(TokenError::Expired(claim.expires_at));
        }
        Ok(claim)
    }
}

/// The file a token names, without checking its MAC: an identifier only,
/// never an authorisation.
pub fn named_file(token: &str) -> Option<Uuid> {
    let payload = token.strip_prefix(PREFIX)?.split('.').next()?;
    let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<UploadClaim>(&json).ok().map(|claim| claim.file_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim() -> UploadClaim {
        UploadClaim {
            file_id: Uuid::new_v4(),
            owner_id: Uuid::new_v4(),
            key: "uploads/o/f/movie.mp4".into(),
            upload_id: "2~abc".into(),
            size: Some(48 << 30),
            expires_at: 2_000,
        }
    }

    fn tokens(seed: u8) -> UploadTokens {
        UploadTokens::new(vec![vec![seed; 32]]).unwrap()
    }

    #[test]
    fn a_token_carries_its_claim_until_it_expires() {
        let tokens = tokens(1);
        let claim = claim();
        let token = tokens.issue(&claim);
        assert!(token.starts_with("u1.") && token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "{token}");
        assert_eq!(tokens.verify(&token, 1_999), Ok(claim));
        assert_eq!(tokens.verify(&token, 2_000), Err(TokenError::Expired(2_000)));
    }

    #[test]
    fn a_changed_claim_or_another_key_is_refused() {
        let (ours, theirs) = (tokens(1), tokens(2));
        let token = ours.issue(&claim());
        assert_eq!(theirs.verify(&token, 0), Err(TokenError::Forged));
        // Swap in another claim under the same MAC: another key, another upload.
        let mut other = claim();
        other.key = "uploads/victim/f/x.png".into();
        let forged_payload = ours.issue(&other).split('.').nth(1).unwrap().to_string();
        let tag = token.rsplit('.').next().unwrap();
        assert_eq!(ours.verify(&format!("u1.{forged_payload}.{tag}"), 0), Err(TokenError::Forged));
        for broken in ["u1.", "u1.abc", "u1.abc.def", "u1..", &token[..token.len() - 2]] {
            assert_eq!(ours.verify(broken, 0), Err(TokenError::Forged), "{broken}");
        }
        assert_eq!(ours.verify(&Uuid::new_v4().to_string(), 0), Err(TokenError::NotAToken));
    }

    #[test]
    fn a_token_names_its_file() {
        let claim = claim();
        assert_eq!(named_file(&tokens(1).issue(&claim)), Some(claim.file_id));
        assert_eq!(named_file("u1.bm90IGpzb24.x"), None);
        assert_eq!(named_file(&claim.file_id.to_string()), None);
    }

    #[test]
    fn keys_rotate_the_first_signing_and_every_one_verifying() {
        let old = tokens(1);
        let token = old.issue(&claim());
        let rotated = UploadTokens::new(vec![vec![2; 32], vec![1; 32]]).unwrap();
        assert!(rotated.verify(&token, 0).is_ok(), "a token of the old key still verifies");
        assert_eq!(old.verify(&rotated.issue(&claim()), 0), Err(TokenError::Forged), "new tokens use the new key");
    }

    #[test]
    fn keys_are_parsed_from_base64_and_must_be_long_enough() {
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert!(UploadTokens::parse(&format!("{key}, {key}")).is_ok());
        assert!(UploadTokens::parse("").unwrap_err().contains("at least one key"));
        assert!(UploadTokens::parse("c2hvcnQ=").unwrap_err().contains("at least 32"));
        assert!(UploadTokens::parse("not base64!").unwrap_err().contains("not base64"));
    }
}
