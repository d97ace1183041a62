//! AWS clients. In Lambda (and under `cargo lambda watch`) endpoints come
//! from the standard `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>`
//! variables; the local stack builds the same clients with its own
//! endpoints so several stacks can live in one test process.

use std::sync::OnceLock;

pub use aws_config::SdkConfig;
pub use aws_sdk_s3::config::SharedHttpClient;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore};

use crate::config::{ConfigError, Env};

/// The roots AWS service endpoints chain to: Amazon Trust Services' four
/// and the Starfield root that cross-signs them. Trusting only these means
/// no other CA can stand in for S3, SQS or DynamoDB, and it spares each
/// cold start the system store (about 290 certificates, read twice: 8 ms,
/// most of a function's start-up).
const AWS_ROOTS: &[u8] = include_bytes!("../certs/aws-roots.pem");

/// The HTTPS client every SDK client uses. `AWS_CA_BUNDLE` (a PEM file, as
/// the other AWS SDKs read it) adds roots, for an endpoint behind its own CA.
pub fn https_client(env: &Env) -> Result<SharedHttpClient, ConfigError> {
    let mut roots = TrustStore::empty().with_pem_certificate(AWS_ROOTS);
    if let Some(path) = env.optional("AWS_CA_BUNDLE") {
        let pem = std::fs::read(&path).map_err(|e| env.invalid("AWS_CA_BUNDLE", format!("cannot read {path}: {e}")))?;
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            return Err(env.invalid("AWS_CA_BUNDLE", format!("{path} holds no PEM certificate")));
        }
        roots = roots.with_pem_certificate(pem);
    }
    let tls = TlsContext::builder().with_trust_store(roots).build().map_err(|e| env.invalid("AWS_CA_BUNDLE", e.to_string()))?;
    Ok(aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::AwsLc)).tls_context(tls).build_https())
}

/// What the SDK is configured from, read from the environment at start-up.
pub struct SdkSettings {
    http: SharedHttpClient,
    region: Option<aws_config::Region>,
    credentials: Option<aws_sdk_s3::config::Credentials>,
}

impl SdkSettings {
    /// Lambda always sets `AWS_REGION` and the role's `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, which the default
    /// chains would find first anyway. Taking them here spares each cold
    /// start building those chains (profile files, SSO, web identity, ECS
    /// and IMDS providers): 0.5 ms, a third of a function's start-up. Where
    /// they are not set (a developer's profile) the default chains find them.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let credentials = match env.optional("AWS_ACCESS_KEY_ID") {
            Some(key_id) => {
                let secret = env.required("AWS_SECRET_ACCESS_KEY")?;
                Some(aws_sdk_s3::config::Credentials::new(key_id, secret, env.optional("AWS_SESSION_TOKEN"), None, "environment"))
            }
            None => None,
        };
        Ok(Self { http: https_client(env)?, region: env.optional("AWS_REGION").map(aws_config::Region::new), credentials })
    }
}

pub async fn sdk_config(settings: SdkSettings) -> SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(settings.http);
    if let Some(region) = settings.region {
        loader = loader.region(region);
    }
    if let Some(credentials) = settings.credentials {
        loader = loader.credentials_provider(credentials);
    }
    loader.load().await
}

/// The clients a function may use. Each is built on first use, so a
/// function pays at start-up only for the services it calls (building a
/// client costs about 0.2 ms).
#[derive(Clone, Debug)]
pub struct Clients {
    s3_config: aws_sdk_s3::Config,
    sqs_config: aws_sdk_sqs::Config,
    dynamodb_config: aws_sdk_dynamodb::Config,
    s3: OnceLock<aws_sdk_s3::Client>,
    sqs: OnceLock<aws_sdk_sqs::Client>,
    dynamodb: OnceLock<aws_sdk_dynamodb::Client>,
    credentials: Option<aws_sdk_s3::config::SharedCredentialsProvider>,
}

impl Clients {
    /// `S3_FORCE_PATH_STYLE=true` is what S3 servers on 127.0.0.1 need.
    pub fn from_env(env: &Env, sdk: &SdkConfig) -> Result<Self, ConfigError> {
        let path_style = env.parsed("S3_FORCE_PATH_STYLE", false)?;
        let s3 = aws_sdk_s3::config::Builder::from(sdk).force_path_style(path_style).build();
        Ok(Self::from_configs(s3, sdk.into(), sdk.into(), sdk.credentials_provider()))
    }

    pub fn from_configs(
        s3: aws_sdk_s3::Config,
        sqs: aws_sdk_sqs::Config,
        dynamodb: aws_sdk_dynamodb::Config,
        credentials: Option<aws_sdk_s3::config::SharedCredentialsProvider>,
    ) -> Self {
        Self {
            s3_config: s3,
            sqs_config: sqs,
            dynamodb_config: dynamodb,
            s3: OnceLock::new(),
            sqs: OnceLock::new(),
            dynamodb: OnceLock::new(),
            credentials,
        }
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        self.s3.get_or_init(|| aws_sdk_s3::Client::from_conf(self.s3_config.clone())).clone()
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        self.sqs.get_or_init(|| aws_sdk_sqs::Client::from_conf(self.sqs_config.clone())).clone()
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        self.dynamodb.get_or_init(|| aws_sdk_dynamodb::Client::from_conf(self.dynamodb_config.clone())).clone()
    }

    /// What the clients sign with, for signing part URLs in bulk.
    pub fn credentials(&self) -> Option<aws_sdk_s3::config::SharedCredentialsProvider> {
        self.credentials.clone()
    }
}

/// Object metadata written at CreateMultipartUpload, read back by inspect.
pub mod metadata {
    pub const OWNER: &str = "owner-id";
    pub const FILE_ID: &str = "file-id";
    pub const DECLARED_TYPE: &str = "declared-type";
}

/// An SDK error with its whole chain of causes, for logs and messages.
pub fn describe(err: impl std::error::Error) -> String {
    aws_sdk_s3::error::DisplayErrorContext(err).to_string()
}

/// S3 quotes ETags; they are kept bare so every source compares equal.
pub fn bare_etag(etag: &str) -> &str {
    etag.trim().trim_matches('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_amazons_roots_are_built_in() {
        let pem = std::str::from_utf8(AWS_ROOTS).unwrap();
        assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----").count(), 5);
        for name in ["Amazon_Root_CA_1", "Amazon_Root_CA_4", "Starfield_Services_Root_Certificate_Authority_-_G2"] {
            assert!(pem.contains(name), "{name}");
        }
        assert!(https_client(&Env::from_pairs(std::iter::empty::<(&str, &str)>())).is_ok());
    }

    #[test]
    fn a_key_id_without_its_secret_stops_start_up_naming_it() {
        let err = SdkSettings::from_env(&Env::from_pairs([("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")])).err().unwrap().to_string();
        assert!(err.contains("AWS_SECRET_ACCESS_KEY"), "{err}");
    }

    #[tokio::test]
    async fn the_environments_region_and_credentials_are_what_the_clients_use() {
        let pairs = [
            ("AWS_REGION", "eu-west-3"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
        ];
        let sdk = sdk_config(SdkSettings::from_env(&Env::from_pairs(pairs)).unwrap()).await;
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-3"));
        use aws_sdk_s3::config::ProvideCredentials;
        let credentials = sdk.credentials_provider().unwrap().provide_credentials().await.unwrap();
        assert_eq!(
            (credentials.access_key_id(), credentials.secret_access_key(), credentials.session_token()),
            ("AKIDEXAMPLE", "secret", Some("token"))
        );
        let clients = Clients::from_env(&Env::from_pairs(pairs), &sdk).unwrap();
        assert_eq!(clients.s3().config().region().map(|r| r.as_ref()), Some("eu-west-3"));
    }

    #[test]
    fn a_bad_ca_bundle_stops_start_up_naming_it() {
        let missing = https_client(&Env::from_pairs([("AWS_CA_BUNDLE", "/nonexistent/ca.pem")])).unwrap_err().to_string();
        assert!(missing.contains("AWS_CA_BUNDLE") && missing.contains("cannot read"), "{missing}");
        let not_pem = https_client(&Env::from_pairs([("AWS_CA_BUNDLE", "Cargo.toml")])).unwrap_err().to_string();
        assert!(not_pem.contains("AWS_CA_BUNDLE") && not_pem.contains("no PEM certificate"), "{not_pem}");
    }
}
