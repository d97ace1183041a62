//! AWS clients. In Lambda (and under `cargo lambda watch`) endpoints come
//! from the standard `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>`
//! variables; the local stack builds the same clients with its own
//! endpoints so several stacks can live in one test process.

pub use aws_config::SdkConfig;

use crate::config::{ConfigError, Env};

pub async fn sdk_config() -> SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
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
