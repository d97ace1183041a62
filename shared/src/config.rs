//! All configuration comes from the environment, is parsed once at start-up
//! into typed structs, and a missing or bad value stops start-up naming it.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;

use crate::auth::{TokenIssuer, TokenVerifier};
use crate::domain::TypePolicy;
use crate::inspection::Rules;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("configuration: {0} is not set")]
    Missing(String),
    #[error("configuration: {name}={value:?} is not valid: {why}")]
    Invalid { name: String, value: String, why: String },
}

/// Where settings are read from: the process environment, or a map in tests.
pub struct Env {
    vars: HashMap<String, String>,
    /// Names that were required, so a test can check the template sets them.
    required: RefCell<BTreeSet<String>>,
}

impl Env {
    pub fn process() -> Self {
        Self { vars: std::env::vars().collect(), required: RefCell::default() }
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let vars = pairs.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Self { vars, required: RefCell::default() }
    }

    pub fn optional(&self, name: &str) -> Option<String> {
        self.vars.get(name).filter(|v| !v.trim().is_empty()).cloned()
    }

    pub fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.required.borrow_mut().insert(name.to_string());
        self.optional(name).ok_or_else(|| ConfigError::Missing(name.to_string()))
    }

    /// Every variable asked for with `required` so far; `A|B` means either.
    pub fn required_names(&self) -> BTreeSet<String> {
        self.required.borrow().clone()
    }

    pub fn invalid(&self, name: &str, why: impl Into<String>) -> ConfigError {
        ConfigError::Invalid { name: name.to_string(), value: self.optional(name).unwrap_or_default(), why: why.into() }
    }

    /// A value parsed as `T`, or `default` when unset.
    pub fn parsed<T: FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.optional(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|e: T::Err| self.invalid(name, e.to_string())),
        }
    }

    /// A value given inline (`NAME`) or as a file path (`NAME_FILE`).
    pub fn inline_or_file(&self, name: &str) -> Result<String, ConfigError> {
        self.required.borrow_mut().insert(format!("{name}|{name}_FILE"));
        if let Some(v) = self.optional(name) {
            return Ok(v.replace("\\n", "\n"));
        }
        let file_var = format!("{name}_FILE");
        let path = self.optional(&file_var).ok_or_else(|| ConfigError::Missing(format!("{name} (or {file_var})")))?;
        std::fs::read_to_string(&path).map_err(|e| self.invalid(&file_var, format!("cannot read {path}: {e}")))
    }
}

/// Parses settings or stops the process with a message naming the variable.
pub fn load_or_exit<T>(parse: impl FnOnce(&Env) -> Result<T, ConfigError>) -> T {
    match parse(&Env::process()) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("{err}");
            tracing::error!(%err, "start-up stopped");
            std::process::exit(2);
        }
    }
}

pub const GIB: u64 = 1024 * 1024 * 1024;

/// What every API function needs to know about callers.
pub fn token_verifier(env: &Env) -> Result<TokenVerifier, ConfigError> {
    let pem = env.inline_or_file("JWT_PUBLIC_KEY")?;
    TokenVerifier::from_pem(&pem, &jwt_issuer(env), &jwt_audience(env)).map_err(|e| env.invalid("JWT_PUBLIC_KEY", e))
}

/// `UPLOAD_TOKEN_KEYS`: base64 keys (each at least 32 bytes) separated by
/// commas; the first signs the upload tokens handed to Uppy, every one verifies.
pub fn upload_tokens(env: &Env) -> Result<crate::domain::upload_token::UploadTokens, ConfigError> {
    let keys = env.required("UPLOAD_TOKEN_KEYS")?;
    crate::domain::upload_token::UploadTokens::parse(&keys).map_err(|why| ConfigError::Invalid {
        name: "UPLOAD_TOKEN_KEYS".into(),
        value: "(redacted)".into(),
        why,
    })
}

pub fn token_issuer(env: &Env) -> Result<TokenIssuer, ConfigError> {
    let pem = env.inline_or_file("JWT_PRIVATE_KEY")?;
    let ttl = env.parsed("TOKEN_TTL_SECONDS", 900u64)?;
    TokenIssuer::from_pem(&pem, &jwt_issuer(env), &jwt_audience(env), ttl).map_err(|e| env.invalid("JWT_PRIVATE_KEY", e))
}

fn jwt_issuer(env: &Env) -> String {
    env.optional("JWT_ISSUER").unwrap_or_else(|| "sluice".into())
}

fn jwt_audience(env: &Env) -> String {
    env.optional("JWT_AUDIENCE").unwrap_or_else(|| "sluice-api".into())
}

/// Where upload sessions and objects live and how uploads are bounded.
#[derive(Debug, Clone)]
pub struct UploadSettings {
    pub bucket: String,
    pub sessions_table: String,
    pub max_file_size: u64,
    pub url_ttl_secs: u64,
    pub session_ttl_secs: u64,
    /// At or below this size an upload is one presigned PUT.
    pub single_put_max: u64,
    /// Bytes a user may hold, stored plus in flight.
    pub user_quota: u64,
    /// The declared (and later the detected) types Sluice accepts.
    pub allowed_types: TypePolicy,
}

impl UploadSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let settings = Self {
            bucket: env.required("UPLOAD_BUCKET")?,
            sessions_table: env.required("SESSIONS_TABLE")?,
            max_file_size: env.parsed("MAX_FILE_SIZE", 5 * GIB)?,
            url_ttl_secs: env.parsed("PRESIGN_TTL_SECONDS", 900)?,
            session_ttl_secs: env.parsed("SESSION_TTL_SECONDS", 86_400)?,
            single_put_max: env.parsed("SINGLE_PUT_MAX_BYTES", sluice_api::limits::SINGLE_PUT_MAX_BYTES)?,
            user_quota: env.parsed("USER_QUOTA_BYTES", 10 * GIB)?,
            allowed_types: match env.optional("ALLOWED_TYPES") {
                None => TypePolicy::default(),
                Some(list) => TypePolicy::parse(&list).map_err(|why| env.invalid("ALLOWED_TYPES", why))?,
            },
        };
        // SigV4 presigned URLs live at most 7 days.
        if !(1..=604_800).contains(&settings.url_ttl_secs) {
            return Err(env.invalid("PRESIGN_TTL_SECONDS", "must be from 1 to 604800 seconds"));
        }
        if settings.max_file_size == 0 {
            return Err(env.invalid("MAX_FILE_SIZE", "must be greater than 0"));
        }
        // S3's PutObject limit.
        if settings.single_put_max > 5 * GIB {
            return Err(env.invalid("SINGLE_PUT_MAX_BYTES", "must be at most 5 GiB (5368709120), S3's limit for one PUT"));
        }
        if settings.user_quota == 0 {
            return Err(env.invalid("USER_QUOTA_BYTES", "must be greater than 0"));
        }
        Ok(settings)
    }
}

#[derive(Debug, Clone)]
pub struct InspectSettings {
    pub queue_url: String,
    /// What inspection accepts: `ALLOW_MACROS` (default false) and
    /// `PDF_SCAN_MAX_BYTES` (default 256 MiB).
    pub rules: Rules,
}

impl InspectSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let defaults = Rules::default();
        let rules = Rules {
            allow_macros: env.parsed("ALLOW_MACROS", defaults.allow_macros)?,
            pdf_scan_max_bytes: env.parsed("PDF_SCAN_MAX_BYTES", defaults.pdf_scan_max_bytes)?,
        };
        if rules.pdf_scan_max_bytes == 0 {
            return Err(env.invalid("PDF_SCAN_MAX_BYTES", "must be greater than 0"));
        }
        Ok(Self { queue_url: env.required("VERDICT_QUEUE_URL")?, rules })
    }
}

/// `DATABASE_URL`, with libpq's `PGSSLMODE` and `PGSSLROOTCERT` as defaults
/// for what its `sslmode` and `sslrootcert` do not say.
pub fn database_url(env: &Env) -> Result<crate::db::DbConfig, ConfigError> {
    let url = env.required("DATABASE_URL")?;
    let root_cert = env.optional("PGSSLROOTCERT");
    crate::db::DbConfig::parse(&url, env.optional("PGSSLMODE").as_deref(), root_cert.as_deref()).map_err(|why| {
        match why.starts_with("sslrootcert") && !url.contains("sslrootcert") {
            true => env.invalid("PGSSLROOTCERT", why),
            // Named, but never with its password.
            false => ConfigError::Invalid { name: "DATABASE_URL".into(), value: without_password(&url), why },
        }
    })
}

/// A URL with the password of its user info replaced by `***`; anything
/// that is not a URL is not shown at all. The user info ends at the last
/// `@`, so a password holding `/`, `?` or `:` unencoded is hidden whole.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return "(not a URL; not shown)".into() };
    match rest.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split(':').next().unwrap_or_default();
            let hidden = if user_info.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_are_checked_without_showing_the_password() {
        let env = Env::from_pairs([("DATABASE_URL", "postgres://u:s3cret@db:5432/x?sslmode=verify-all")]);
        let err = database_url(&env).unwrap_err().to_string();
        assert!(err.contains("DATABASE_URL") && err.contains("verify-all") && err.contains("u:***@db"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        let env = Env::from_pairs([("DATABASE_URL", "postgres://u:pa/ss?w:rd@db/x?sslmode=bad")]);
        let err = database_url(&env).unwrap_err().to_string();
        assert!(err.contains("u:***@db/x") && !err.contains("pa/ss") && !err.contains("w:rd"), "{err}");
        let env = Env::from_pairs([("DATABASE_URL", "host=db password=s3cret sslmode=require")]);
        let err = database_url(&env).unwrap_err().to_string();
        assert!(err.contains("postgres://") && !err.contains("s3cret"), "a DSN is refused unseen: {err}");
        let env =
            Env::from_pairs([("DATABASE_URL", "postgres://u@db/x"), ("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", "/nonexistent.pem")]);
        let err = database_url(&env).unwrap_err().to_string();
        assert!(err.contains("PGSSLROOTCERT") && err.contains("cannot be read"), "{err}");
    }

    #[test]
    fn sslmode_comes_from_the_url_then_pgsslmode_then_prefer() {
        use crate::db::SslMode;
        let mode = |pairs: &[(&str, &str)]| database_url(&Env::from_pairs(pairs.iter().copied())).unwrap().mode();
        assert_eq!(mode(&[("DATABASE_URL", "postgres://u@db/x")]), SslMode::Prefer);
        assert_eq!(mode(&[("DATABASE_URL", "postgres://u@db/x"), ("PGSSLMODE", "verify-full")]), SslMode::VerifyFull);
        assert_eq!(mode(&[("DATABASE_URL", "postgres://u@db/x?sslmode=disable"), ("PGSSLMODE", "verify-full")]), SslMode::Disable);
        assert_eq!(mode(&[("DATABASE_URL", "postgres://u@db/x?connect_timeout=5&sslmode=verify-ca")]), SslMode::VerifyCa);
        // As libpq: require with a root certificate named verifies the chain.
        assert_eq!(mode(&[("DATABASE_URL", "postgres://u@db/x?sslmode=require&sslrootcert=certs/aws-roots.pem")]), SslMode::VerifyCa);
    }

    #[test]
    fn missing_values_are_named() {
        let env = Env::from_pairs([("SESSIONS_TABLE", "t")]);
        let err = UploadSettings::from_env(&env).unwrap_err();
        assert_eq!(err, ConfigError::Missing("UPLOAD_BUCKET".into()));
        assert!(err.to_string().contains("UPLOAD_BUCKET"));
    }

    #[test]
    fn bad_values_are_named_with_the_reason() {
        let env = Env::from_pairs([("UPLOAD_BUCKET", "b"), ("SESSIONS_TABLE", "t"), ("MAX_FILE_SIZE", "lots")]);
        let err = UploadSettings::from_env(&env).unwrap_err().to_string();
        assert!(err.contains("MAX_FILE_SIZE") && err.contains("lots"), "{err}");
        let env = Env::from_pairs([("UPLOAD_BUCKET", "b"), ("SESSIONS_TABLE", "t"), ("ALLOWED_TYPES", "exe")]);
        assert!(UploadSettings::from_env(&env).unwrap_err().to_string().contains("ALLOWED_TYPES"));
        let env = Env::from_pairs([("UPLOAD_BUCKET", "b"), ("SESSIONS_TABLE", "t"), ("SINGLE_PUT_MAX_BYTES", "6000000000")]);
        assert!(UploadSettings::from_env(&env).unwrap_err().to_string().contains("SINGLE_PUT_MAX_BYTES"));
        let env = Env::from_pairs([("DATABASE_URL", "postgres://x:y@h:notaport/db")]);
        assert!(database_url(&env).unwrap_err().to_string().contains("DATABASE_URL"));
    }

    #[test]
    fn inspection_rules_are_read_and_checked() {
        let env = Env::from_pairs([("VERDICT_QUEUE_URL", "q")]);
        assert_eq!(InspectSettings::from_env(&env).unwrap().rules, Rules::default());
        let env = Env::from_pairs([("VERDICT_QUEUE_URL", "q"), ("ALLOW_MACROS", "true"), ("PDF_SCAN_MAX_BYTES", "1000")]);
        let rules = InspectSettings::from_env(&env).unwrap().rules;
        assert_eq!((rules.allow_macros, rules.pdf_scan_max_bytes), (true, 1000));
        for (name, value) in [("ALLOW_MACROS", "sometimes"), ("PDF_SCAN_MAX_BYTES", "0"), ("PDF_SCAN_MAX_BYTES", "big")] {
            let env = Env::from_pairs([("VERDICT_QUEUE_URL", "q"), (name, value)]);
            assert!(InspectSettings::from_env(&env).unwrap_err().to_string().contains(name), "{name}={value}");
        }
    }

    #[test]
    fn defaults_apply() {
        let env = Env::from_pairs([("UPLOAD_BUCKET", "b"), ("SESSIONS_TABLE", "t")]);
        let s = UploadSettings::from_env(&env).unwrap();
        assert_eq!((s.max_file_size, s.url_ttl_secs, s.session_ttl_secs), (5 * GIB, 900, 86_400));
        assert_eq!((s.single_put_max, s.user_quota), (8 * 1024 * 1024, 10 * GIB));
        assert_eq!(s.allowed_types, TypePolicy::default());
    }
}
