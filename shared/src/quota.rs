//! Per-user storage quota in the sessions table: bytes stored plus bytes in
//! flight. Each upload holds a charge item (`pk` = `user#<id>`,
//! `sk` = `charge#<fileId>`) and the user's total (`sk` = `quota`). A charge
//! and the total move together in one DynamoDB transaction whose condition
//! is the limit, so parallel starts cannot pass it; a release deletes the
//! charge item in the same transaction, so releasing twice frees nothing.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
use uuid::Uuid;

use crate::dynamo::{n, s};
use crate::ports::Quota;

#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error(
        "this upload of {requested} bytes would bring your storage to {} bytes; your quota is {limit} bytes and {used} are stored or in flight",
        used + requested
    )]
    Exceeded { used: u64, requested: u64, limit: u64 },
    #[error("DynamoDB: {0}")]
    Store(String),
}

#[derive(Clone)]
pub struct QuotaLedger {
    client: Client,
    table: String,
}

fn user_pk(owner: Uuid) -> String {
    format!("user#{owner}")
}

fn charge_sk(file_id: Uuid) -> String {
    format!("charge#{file_id}")
}

fn store_err(e: impl std::fmt::Display) -> QuotaError {
    QuotaError::Store(e.to_string())
}

/// Which items of a cancelled transaction failed their condition.
fn failed_conditions(e: &SdkError<TransactWriteItemsError>) -> Option<Vec<bool>> {
    match e.as_service_error()? {
        TransactWriteItemsError::TransactionCanceledException(c) => {
            Some(c.cancellation_reasons().iter().map(|r| r.code() == Some("ConditionalCheckFailed")).collect())
        }
        _ => None,
    }
}

impl QuotaLedger {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// Moves the user's total by `delta` bytes.
    fn total(&self, owner: Uuid, delta: i64) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        Update::builder()
            .table_name(&self.table)
            .key("pk", s(user_pk(owner)))
            .key("sk", s("quota"))
            .update_expression("ADD usedBytes :delta")
            .expression_attribute_values(":delta", n(delta))
    }

    /// The charge item's write and the total's update, in one transaction.
    async fn together(
        &self,
        charge: TransactWriteItem,
        total: aws_sdk_dynamodb::types::builders::UpdateBuilder,
    ) -> Result<(), SdkError<TransactWriteItemsError>> {
        let total = total.build().map_err(SdkError::construction_failure)?;
        self.client
            .transact_write_items()
            .transact_items(charge)
            .transact_items(TransactWriteItem::builder().update(total).build())
            .send()
            .await
            .map(|_| ())
    }

    /// A number attribute of one of the user's items, if the item exists.
    async fn read_number(&self, owner: Uuid, sk: &str, attribute: &str) -> Result<Option<i64>, QuotaError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(user_pk(owner)))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_err(crate::aws::describe(e)))?;
        let Some(value) = out.item.as_ref().and_then(|i| i.get(attribute)) else { return Ok(None) };
        let text = value.as_n().map_err(|_| store_err(format!("{attribute} is not a number")))?;
        text.parse().map(Some).map_err(store_err)
    }

    /// Bytes the user holds now, stored plus in flight.
    pub async fn used(&self, owner: Uuid) -> Result<u64, QuotaError> {
        Ok(self.read_number(owner, "quota", "usedBytes").await?.unwrap_or_default().max(0) as u64)
    }
}

impl Quota for QuotaLedger {
    /// Takes `size` bytes of the user's quota for `file_id`, or refuses with
    /// the numbers. Charging the same file again changes nothing; answers
    /// whether this call took the charge (false: it was already taken).
    async fn charge(&self, owner: Uuid, file_id: Uuid, size: u64, limit: u64) -> Result<bool, QuotaError> {
        if size > limit {
            return Err(QuotaError::Exceeded { used: self.used(owner).await?, requested: size, limit });
        }
        let charge = Put::builder()
            .table_name(&self.table)
            .item("pk", s(user_pk(owner)))
            .item("sk", s(charge_sk(file_id)))
            .item("size", n(size))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(store_err)?;
        let total = self
            .total(owner, size as i64)
            .condition_expression("attribute_not_exists(usedBytes) OR usedBytes <= :room")
            .expression_attribute_values(":room", n(limit - size));
        match self.together(TransactWriteItem::builder().put(charge).build(), total).await {
            Ok(_) => Ok(true),
            Err(e) => match failed_conditions(&e).as_deref() {
                // The charge item exists: this file is already charged.
                Some([true, ..]) => Ok(false),
                Some([_, true]) => Err(QuotaError::Exceeded { used: self.used(owner).await?, requested: size, limit }),
                _ => Err(store_err(crate::aws::describe(e))),
            },
        }
    }

    /// Sets what `file_id` holds to `size` bytes (a charge taken up front,
    /// trued up to what S3 ended up holding): one transaction moving the
    /// charge and the total by the difference, refused past the limit when
    /// it grows. Answers false, changing nothing, when the file holds no
    /// charge: it was released (a cancel), and must not be charged again.
    async fn resize(&self, owner: Uuid, file_id: Uuid, size: u64, limit: u64) -> Result<bool, QuotaError> {
        let Some(held) = self.read_number(owner, &charge_sk(file_id), "size").await? else {
            return Ok(false);
        };
        let delta = size as i64 - held;
        if delta == 0 {
            return Ok(true);
        }
        let charge = Update::builder()
            .table_name(&self.table)
            .key("pk", s(user_pk(owner)))
            .key("sk", s(charge_sk(file_id)))
            // `size` is a reserved word in DynamoDB expressions.
            .update_expression("SET #size = :size")
            .condition_expression("#size = :held")
            .expression_attribute_names("#size", "size")
            .expression_attribute_values(":size", n(size))
            .expression_attribute_values(":held", n(held))
            .build()
            .map_err(store_err)?;
        let mut total = self.total(owner, delta);
        if delta > 0 {
            if size > limit {
                return Err(QuotaError::Exceeded { used: self.used(owner).await?, requested: size, limit });
            }
            total = total.condition_expression("usedBytes <= :room").expression_attribute_values(":room", n(limit as i64 - delta));
        }
        match self.together(TransactWriteItem::builder().update(charge).build(), total).await {
            Ok(_) => Ok(true),
            Err(e) => match failed_conditions(&e).as_deref() {
                Some([_, true]) => Err(QuotaError::Exceeded { used: self.used(owner).await?, requested: delta as u64, limit }),
                // Resized or released by a concurrent call: the caller retries.
                Some([true, ..]) => Err(store_err("the charge changed while it was resized; retry")),
                _ => Err(store_err(crate::aws::describe(e))),
            },
        }
    }

    /// Gives back what `file_id` holds. Answers false if it held nothing
    /// (never charged, or already released).
    async fn release(&self, owner: Uuid, file_id: Uuid) -> Result<bool, QuotaError> {
        let Some(size) = self.read_number(owner, &charge_sk(file_id), "size").await? else {
            return Ok(false);
        };
        let charge = Delete::builder()
            .table_name(&self.table)
            .key("pk", s(user_pk(owner)))
            .key("sk", s(charge_sk(file_id)))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(store_err)?;
        match self.together(TransactWriteItem::builder().delete(charge).build(), self.total(owner, -size)).await {
            Ok(_) => Ok(true),
            // Released by a concurrent call between our read and this write.
            Err(e) if failed_conditions(&e).as_deref().is_some_and(|f| f.first() == Some(&true)) => Ok(false),
            Err(e) => Err(store_err(crate::aws::describe(e))),
        }
    }
}
