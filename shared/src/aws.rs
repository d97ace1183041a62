//! AWS clients. In Lambda (and under `cargo lambda watch`) endpoints come
//! from the standard `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>`
//! variables; the local stack builds the same clients with its own
//! endpoints so several stacks can live in one test process.

pub use aws_config::SdkConfig;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore};
pub use aws_sdk_s3::config::SharedHttpClient;

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

pub async fn sdk_config(http: SharedHttpClient) -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http).load().await
}

/// The clients a function may use, built once per process.
#[derive(Clone, Debug)]
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// What the clients sign with, for signing part URLs in bulk.
    pub credentials: Option<aws_sdk_s3::config::SharedCredentialsProvider>,
}

impl Clients {
    /// `S3_FORCE_PATH_STYLE=true` is what S3 servers on 127.0.0.1 need.
    pub fn from_env(env: &Env, sdk: &SdkConfig) -> Result<Self, ConfigError> {
        let path_style = env.parsed("S3_FORCE_PATH_STYLE", false)?;
        let s3 = aws_sdk_s3::config::Builder::from(sdk).force_path_style(path_style).build();
        Ok(Self {
            s3: aws_sdk_s3::Client::from_conf(s3),
            sqs: aws_sdk_sqs::Client::new(sdk),
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            credentials: sdk.credentials_provider(),
        })
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
    fn a_bad_ca_bundle_stops_start_up_naming_it() {
        let missing = https_client(&Env::from_pairs([("AWS_CA_BUNDLE", "/nonexistent/ca.pem")])).unwrap_err().to_string();
        assert!(missing.contains("AWS_CA_BUNDLE") && missing.contains("cannot read"), "{missing}");
        let not_pem = https_client(&Env::from_pairs([("AWS_CA_BUNDLE", "Cargo.toml")])).unwrap_err().to_string();
        assert!(not_pem.contains("AWS_CA_BUNDLE") && not_pem.contains("no PEM certificate"), "{not_pem}");
    }
}
