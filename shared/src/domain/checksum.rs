//! SHA-256 checksums as S3 takes them (`x-amz-checksum-sha256`): the base64
//! of the 32-byte digest.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{given}' is not a SHA-256 checksum: send the base64 of the 32-byte digest (44 characters, e.g. from `openssl dgst -sha256 -binary | base64`)"
)]
pub struct ChecksumError {
    given: String,
}

/// A well-formed base64 SHA-256 digest; S3 decides whether it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sha256Checksum(String);

impl Sha256Checksum {
    pub fn parse(text: &str) -> Result<Self, ChecksumError> {
        let text = text.trim();
        match STANDARD.decode(text) {
            Ok(digest) if digest.len() == 32 => Ok(Self(text.to_string())),
            _ => Err(ChecksumError { given: text.chars().take(60).collect() }),
        }
    }

    /// The checksum of `bytes`, as a client would compute it.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest;
        Self(STANDARD.encode(sha2::Sha256::digest(bytes)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_base64_of_32_bytes() {
        let sum = Sha256Checksum::of(b"hello");
        assert_eq!(sum.as_str(), "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=");
        assert_eq!(Sha256Checksum::parse(sum.as_str()), Ok(sum));
    }

    #[test]
    fn refuses_hex_short_and_garbage() {
        let hex = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        for bad in [hex, "", "AAAA", "not base64!", "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmA=="] {
            let err = Sha256Checksum::parse(bad).unwrap_err();
            assert!(err.to_string().contains("SHA-256"), "{err}");
        }
    }
}
