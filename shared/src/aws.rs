//! AWS clients. Endpoints come from the standard `AWS_ENDPOINT_URL` and
//! `AWS_ENDPOINT_URL_<SERVICE>` variables, so the same binaries run in AWS
//! and against the local stack.

pub use aws_config::SdkConfig;

pub async fn sdk_config() -> SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// Path-style addressing is what local S3 servers on 127.0.0.1 need.
pub fn s3_client(sdk: &SdkConfig, force_path_style: bool) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk).force_path_style(force_path_style).build();
    aws_sdk_s3::Client::from_conf(config)
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
