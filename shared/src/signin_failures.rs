//! Failed sign-ins in DynamoDB (the sessions table, whose TTL attribute
//! `purgeAt` drops an item a day after its last failure): one item per
//! email and source address, `pk` = `signin#<email>|<address>`,
//! `sk` = `failures`. The rule they feed is `domain::signin`.

use aws_sdk_dynamodb::Client;

use crate::auth::now_secs;
use crate::domain::signin::FORGET_AFTER_SECS;
use crate::dynamo::{n, s};

/// How long an item outlives its last failure before DynamoDB drops it.
const PURGE_AFTER_SECS: u64 = 86_400;

#[derive(Debug, thiserror::Error)]
#[error("DynamoDB: {0}")]
pub struct SigninStoreError(String);

fn store_err<E: std::error::Error + Send + Sync + 'static>(e: aws_sdk_dynamodb::error::SdkError<E>) -> SigninStoreError {
    SigninStoreError(crate::aws::describe(e))
}

#[derive(Clone)]
pub struct SigninFailures {
    client: Client,
    table: String,
}

/// The failures counted for one email and address, and when the last was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    pub count: u32,
    pub last_at: u64,
}

fn pk(counted_as: &str) -> String {
    format!("signin#{counted_as}")
}

impl SigninFailures {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    pub async fn get(&self, counted_as: &str) -> Result<Option<Failures>, SigninStoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk(counted_as)))
            .key("sk", s("failures"))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_err)?;
        let number = |item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>, name: &str| {
            item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<u64>().ok())
        };
        Ok(out.item.and_then(|item| Some(Failures { count: number(&item, "failures")? as u32, last_at: number(&item, "lastFailureAt")? })))
    }

    /// Counts one more failure and answers the count: added to the item in
    /// one conditional update while its last failure is recent, started
    /// over at 1 when it is not (or there is none).
    pub async fn count(&self, counted_as: &str) -> Result<u32, SigninStoreError> {
        let now = now_secs();
        let added = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk(counted_as)))
            .key("sk", s("failures"))
            .update_expression("ADD failures :one SET lastFailureAt = :now, purgeAt = :purge")
            .condition_expression("lastFailureAt >= :recent")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":purge", n(now + PURGE_AFTER_SECS))
            .expression_attribute_values(":recent", n(now.saturating_sub(FORGET_AFTER_SECS)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await;
        match added {
            Ok(out) => {
                Ok(out.attributes.and_then(|a| a.get("failures").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())).unwrap_or(1))
            }
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .item("pk", s(pk(counted_as)))
                    .item("sk", s("failures"))
                    .item("failures", n(1))
                    .item("lastFailureAt", n(now))
                    .item("purgeAt", n(now + PURGE_AFTER_SECS))
                    .send()
                    .await
                    .map_err(store_err)?;
                Ok(1)
            }
            Err(e) => Err(store_err(e)),
        }
    }

    /// A success forgets the failures.
    pub async fn clear(&self, counted_as: &str) -> Result<(), SigninStoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(pk(counted_as)))
            .key("sk", s("failures"))
            .send()
            .await
            .map_err(store_err)?;
        Ok(())
    }
}
