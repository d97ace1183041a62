//! Sign-up input.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw.trim().to_lowercase();
        if email.len() > 254 {
            return Err(format!("email is {} characters; the maximum is 254", email.len()));
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err("email must look like name@example.com".into());
        };
        let valid = !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && !domain.contains('@');
        if !valid {
            return Err("email must look like name@example.com".into());
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(redacted)")
    }
}

pub use sluice_api::limits::MAX_PASSWORD_BYTES;
pub use sluice_api::limits::MIN_PASSWORD_CHARS;

impl Password {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let chars = raw.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(format!("password is {chars} characters; the minimum is {MIN_PASSWORD_CHARS}"));
        }
        if raw.len() > MAX_PASSWORD_BYTES {
            return Err(format!("password is {} bytes; the maximum is {MAX_PASSWORD_BYTES}", raw.len()));
        }
        Ok(Self(raw.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(Email::parse(" Ann@Example.COM ").unwrap().as_str(), "ann@example.com");
        for bad in ["", "ann", "@example.com", "ann@example", "ann@.com", "a b@x.com", "a@b@c.com"] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn passwords_have_bounds() {
        assert!(Password::parse("short").unwrap_err().contains("5 characters"));
        assert!(Password::parse("long enough").is_ok());
        assert!(Password::parse(&"x".repeat(2000)).is_err());
    }
}
