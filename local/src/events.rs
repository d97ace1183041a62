//! Events in the exact shapes AWS delivers them to Lambda.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use crate::s3::ObjectCreated;

pub const REGION: &str = "us-east-1";

pub use sluice_shared::sample_events::{SAMPLE_FILE, SAMPLE_TOKEN, SAMPLE_USER, sample_event};

/// S3 notifications URL-encode keys like a form: `+` for space, `/` kept.
const KEY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');

pub fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, KEY_ENCODE).to_string().replace("%20", "+")
}

fn now_iso() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// An `ObjectCreated:*` notification for one object.
pub fn s3_event(created: &ObjectCreated) -> Value {
    let sequencer = format!("{:016X}", time::OffsetDateTime::now_utc().unix_timestamp_nanos() as u64);
    json!({ "Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": now_iso(),
        "eventName": created.event_name,
        "userIdentity": { "principalId": "AWS:LOCALSTACKUSER" },
        "requestParameters": { "sourceIPAddress": "127.0.0.1" },
        "responseElements": {
            "x-amz-request-id": uuid::Uuid::new_v4().simple().to_string(),
            "x-amz-id-2": uuid::Uuid::new_v4().simple().to_string()
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "inspect-uploads",
            "bucket": {
                "name": created.bucket,
                "ownerIdentity": { "principalId": "LOCAL" },
                "arn": format!("arn:aws:s3:::{}", created.bucket)
            },
            "object": {
                "key": encode_key(&created.key),
                "size": created.size,
                "eTag": created.etag,
                "versionId": created.version_id,
                "sequencer": sequencer
            }
        }
    }]})
}

/// An SQS event source batch as Lambda's poller hands it to a function.
pub fn sqs_event(messages: &[aws_sdk_sqs::types::Message], queue_arn: &str) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: serde_json::Map<String, Value> =
                m.attributes().map(|a| a.iter().map(|(k, v)| (k.as_str().to_string(), json!(v))).collect()).unwrap_or_default();
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": attributes,
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION
            })
        })
        .collect();
    json!({ "Records": records })
}

/// An EventBridge scheduled event, as the sweeper's schedule sends it.
pub fn scheduled_event() -> Value {
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": now_iso(),
        "region": REGION,
        "resources": ["arn:aws:events:us-east-1:000000000000:rule/sluice-local-sweeper"],
        "detail": {}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_as_s3_does() {
        assert_eq!(encode_key("uploads/u/f/my holiday (2).jpg"), "uploads/u/f/my+holiday+%282%29.jpg");
        assert_eq!(inspect::decode_key(&encode_key("uploads/ü/a+b.png")), "uploads/ü/a+b.png");
    }

    #[test]
    fn s3_events_parse_as_aws_lambda_events() {
        let created = ObjectCreated {
            event_name: "ObjectCreated:Put",
            bucket: "b".into(),
            key: "uploads/a b".into(),
            size: 3,
            etag: "e".into(),
            version_id: Some("v1".into()),
        };
        let event: aws_lambda_events::s3::S3Event = serde_json::from_value(s3_event(&created)).unwrap();
        assert_eq!(event.records[0].s3.object.key.as_deref(), Some("uploads/a+b"));
        assert_eq!(event.records[0].s3.object.version_id.as_deref(), Some("v1"));
    }
}
