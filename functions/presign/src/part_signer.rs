//! Part URLs in bulk. The SDK's presigner runs its whole request pipeline
//! (endpoint rules, interceptors, identity) for every URL, about 50 µs each,
//! so the 10,000 URLs of a large upload took half a second. Within one call
//! every part URL shares its endpoint, key, upload id, credential scope,
//! time and expiry; only the part number and the signed header values
//! differ. So the SDK signs the first part of each shape as before, its URL
//! becomes the template, and the remaining parts are signed from it with a
//! signing key derived once: one SHA-256 and one HMAC per URL. The long
//! shared start of each canonical request is hashed once and the HMAC is
//! keyed once; per URL only their saved states are cloned and carried on.
//!
//! A template is only used after the signer has re-derived the SDK's own
//! signature for it byte for byte; anything else (rotated credentials, an
//! SDK that signs differently) leaves the SDK signing every part.

use std::time::SystemTime;

use aws_sigv4::sign::v4::generate_signing_key;
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};

/// SigV4's URI encoding: everything but the unreserved characters.
const SIGV4_QUERY: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

const CONTENT_LENGTH: &str = "content-length";
const CHECKSUM_SHA256: &str = "x-amz-checksum-sha256";

/// The headers that vary per part; everything else comes from the template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartHeaders<'a> {
    pub content_length: Option<u64>,
    pub sha256: Option<&'a str>,
}

impl PartHeaders<'_> {
    /// Parts of the same shape sign the same header names.
    pub fn shape(&self) -> (bool, bool) {
        (self.content_length.is_some(), self.sha256.is_some())
    }
}

/// A signed part: its URL and the headers its PUT must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPart {
    pub url: String,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug)]
pub struct PartSigner {
    shape: (bool, bool),
    /// Everything before the query, exactly as the SDK wrote it.
    base: String,
    /// The template's query pairs in its order, still encoded; the part
    /// number and the signature are replaced per part.
    query: Vec<(String, String)>,
    /// SHA-256 state after the canonical request up to the part number's
    /// value; then the rest of the query, to the end of the query.
    canonical_head: Sha256,
    canonical_tail: String,
    /// Signed headers other than the per-part ones, by lowercase name.
    fixed_headers: Vec<(String, String)>,
    signed_names: String,
    string_to_sign_head: String,
    /// HMAC-SHA256 keyed with the derived signing key.
    keyed_mac: Hmac<Sha256>,
}

impl PartSigner {
    /// A signer for parts shaped like `template`, if `url` (the SDK's URL for
    /// `part` with `template`'s values, answered with `headers`) is a SigV4
    /// query-signed URL that this signer reproduces byte for byte.
    pub fn from_template(url: &str, headers: &[(String, String)], part: u32, template: PartHeaders, secret: &str) -> Option<Self> {
        let (base, raw_query) = url.split_once('?')?;
        let authority_start = base.find("://")? + 3;
        let path_start = base[authority_start..].find('/').map_or(base.len(), |i| authority_start + i);
        let (host, path) = (&base[authority_start..path_start], &base[path_start..]);
        let query: Vec<(String, String)> = raw_query
            .split('&')
            .map(|pair| pair.split_once('=').map_or((pair.to_string(), String::new()), |(k, v)| (k.to_string(), v.to_string())))
            .collect();
        let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| decode(v));
        if param("X-Amz-Algorithm")? != "AWS4-HMAC-SHA256" || param("partNumber")? != part.to_string() {
            return None;
        }
        let date_time = param("X-Amz-Date")?;
        let signed_names = param("X-Amz-SignedHeaders")?;
        // access-key/yyyymmdd/region/service/aws4_request
        let scope = param("X-Amz-Credential")?.split_once('/')?.1.to_string();
        let mut scope_parts = scope.split('/');
        let (date, region, service) = (scope_parts.next()?, scope_parts.next()?, scope_parts.next()?);

        let mut fixed_headers = Vec::new();
        let mut names = Vec::new();
        for name in signed_names.split(';') {
            match name {
                CONTENT_LENGTH if template.content_length.is_some() => {}
                CHECKSUM_SHA256 if template.sha256.is_some() => {}
                CONTENT_LENGTH | CHECKSUM_SHA256 => return None,
                "host" => fixed_headers.push(("host".to_string(), host.to_string())),
                other => {
                    let value = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(other))?.1.trim().to_string();
                    fixed_headers.push((other.to_string(), value));
                }
            }
            names.push(name);
        }
        let shape = template.shape();
        if names.contains(&CONTENT_LENGTH) != shape.0 || names.contains(&CHECKSUM_SHA256) != shape.1 {
            return None;
        }

        let mut canonical_query: Vec<(String, String)> = query
            .iter()
            .filter(|(name, _)| name != "X-Amz-Signature")
            .map(|(name, value)| (encode(&decode(name)), encode(&decode(value))))
            .collect();
        canonical_query.sort();
        let mut canonical_head = format!("PUT\n{path}\n");
        let mut canonical_tail = String::new();
        let mut after_part = false;
        for (i, (name, value)) in canonical_query.iter().enumerate() {
            let out = if after_part { &mut canonical_tail } else { &mut canonical_head };
            if i > 0 {
                out.push('&');
            }
            out.push_str(name);
            out.push('=');
            if name == "partNumber" {
                after_part = true;
            } else {
                out.push_str(value);
            }
        }
        canonical_tail.push('\n');

        let signing_key = generate_signing_key(secret, day(date)?, region, service);
        let signer = Self {
            shape,
            base: base.to_string(),
            query,
            canonical_head: Sha256::new_with_prefix(canonical_head.as_bytes()),
            canonical_tail,
            fixed_headers,
            keyed_mac: Hmac::new_from_slice(signing_key.as_ref()).ok()?,
            string_to_sign_head: format!("AWS4-HMAC-SHA256\n{date_time}\n{scope}\n"),
            signed_names,
        };
        (signer.sign(part, template).url == url).then_some(signer)
    }

    /// Which parts this signer serves; see [`PartHeaders::shape`].
    pub fn shape(&self) -> (bool, bool) {
        self.shape
    }

    /// The URL and headers for `part`, which must have the template's shape.
    pub fn sign(&self, part: u32, per_part: PartHeaders) -> SignedPart {
        debug_assert_eq!(per_part.shape(), self.shape);
        let length = per_part.content_length.map(|n| n.to_string());
        let mut headers: Vec<(&str, &str)> = self.fixed_headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        headers.extend(length.as_deref().map(|length| (CONTENT_LENGTH, length)));
        headers.extend(per_part.sha256.map(|sha256| (CHECKSUM_SHA256, sha256.trim())));
        headers.sort_unstable();
        let part = part.to_string();

        let mut canonical = self.canonical_head.clone();
        canonical.update(&part);
        canonical.update(&self.canonical_tail);
        for (name, value) in &headers {
            canonical.update(name);
            canonical.update(":");
            canonical.update(value);
            canonical.update("\n");
        }
        canonical.update("\n");
        canonical.update(&self.signed_names);
        canonical.update("\nUNSIGNED-PAYLOAD");
        let mut mac = self.keyed_mac.clone();
        mac.update(self.string_to_sign_head.as_bytes());
        mac.update(&hex_of(&canonical.finalize()).0);
        let signature = hex_of(&mac.finalize().into_bytes());

        let mut url = String::with_capacity(self.base.len() + 1024);
        url.push_str(&self.base);
        for (i, (name, value)) in self.query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(name);
            url.push('=');
            url.push_str(match name.as_str() {
                "partNumber" => &part,
                "X-Amz-Signature" => signature.as_str(),
                _ => value,
            });
        }
        let headers = headers.into_iter().filter(|(name, _)| *name != "host").map(|(n, v)| (n.to_string(), v.to_string())).collect();
        SignedPart { url, headers }
    }
}

/// Lowercase hex of a SHA-256, without an allocation.
fn hex_of(digest: &[u8]) -> HexDigest {
    let mut out = [0; 64];
    hex::encode_to_slice(digest, &mut out).expect("a SHA-256 is 32 bytes");
    HexDigest(out)
}

struct HexDigest([u8; 64]);

impl HexDigest {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex is ASCII")
    }
}

fn decode(value: &str) -> String {
    percent_decode_str(value).decode_utf8_lossy().into_owned()
}

fn encode(value: &str) -> String {
    utf8_percent_encode(value, SIGV4_QUERY).to_string()
}

/// Midnight UTC of `yyyymmdd`, the only part of the time the key uses.
fn day(yyyymmdd: &str) -> Option<SystemTime> {
    if yyyymmdd.len() != 8 || !yyyymmdd.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i32 = yyyymmdd[..4].parse().ok()?;
    let month = time::Month::try_from(yyyymmdd[4..6].parse::<u8>().ok()?).ok()?;
    let date = time::Date::from_calendar_date(year, month, yyyymmdd[6..].parse().ok()?).ok()?;
    Some(date.midnight().assume_utc().into())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};

    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn client(endpoint: Option<&str>, region: &str) -> aws_sdk_s3::Client {
        let credentials = Credentials::new("AKIDEXAMPLE", SECRET, Some("session/token+with=odd chars".into()), None, "test");
        let mut config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .credentials_provider(credentials);
        if let Some(endpoint) = endpoint {
            config = config.endpoint_url(endpoint).force_path_style(true);
        }
        aws_sdk_s3::Client::from_conf(config.build())
    }

    async fn sdk_sign(s3: &aws_sdk_s3::Client, part: u32, per_part: PartHeaders<'_>) -> PresignedRequest {
        let presigning = PresigningConfig::builder()
            .start_time(UNIX_EPOCH + Duration::from_secs(1_795_000_000))
            .expires_in(Duration::from_secs(3600))
            .build()
            .unwrap();
        s3.upload_part()
            .bucket("sluice-uploads")
            .key("uploads/5e0c/9a1f/site survey (1)+draft.mp4")
            .upload_id("VXBsb2FkIElE+/=.abc")
            .part_number(part as i32)
            .set_content_length(per_part.content_length.map(|n| n as i64))
            .set_checksum_sha256(per_part.sha256.map(str::to_string))
            .presigned(presigning)
            .await
            .unwrap()
    }

    fn headers_of(signed: &PresignedRequest) -> Vec<(String, String)> {
        signed.headers().map(|(n, v)| (n.to_ascii_lowercase(), v.to_string())).collect()
    }

    /// Every URL the signer writes is the SDK's own URL for that part, byte
    /// for byte, with the same headers, on a path-style endpoint and on AWS.
    #[tokio::test]
    async fn signs_exactly_what_the_sdk_signs() {
        let sha = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=";
        for s3 in [client(Some("http://127.0.0.1:9000"), "us-east-1"), client(None, "eu-west-1")] {
            for shape in [
                PartHeaders { content_length: Some(8 << 20), sha256: None },
                PartHeaders { content_length: Some(8 << 20), sha256: Some(sha) },
            ] {
                let template = sdk_sign(&s3, 1, shape).await;
                let signer =
                    PartSigner::from_template(template.uri(), &headers_of(&template), 1, shape, SECRET).expect("the template reproduces");
                for part in [2, 9, 10, 777, 10_000] {
                    let per_part = PartHeaders { content_length: Some(part as u64 * 3), ..shape };
                    let sdk = sdk_sign(&s3, part, per_part).await;
                    let ours = signer.sign(part, per_part);
                    assert_eq!(ours.url, sdk.uri(), "part {part}");
                    let mut sdk_headers = headers_of(&sdk);
                    sdk_headers.sort();
                    assert_eq!(ours.headers, sdk_headers, "part {part}");
                }
            }
        }
    }

    /// A template signed with other credentials, or one whose signed headers
    /// are not the shape asked for, gives no signer, so the SDK signs.
    #[tokio::test]
    async fn refuses_a_template_it_cannot_reproduce() {
        let s3 = client(Some("http://127.0.0.1:9000"), "us-east-1");
        let shape = PartHeaders { content_length: Some(5 << 20), sha256: None };
        let template = sdk_sign(&s3, 3, shape).await;
        let headers = headers_of(&template);
        assert!(PartSigner::from_template(template.uri(), &headers, 3, shape, "another secret").is_none());
        let with_sha = PartHeaders { sha256: Some("n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="), ..shape };
        assert!(PartSigner::from_template(template.uri(), &headers, 3, with_sha, SECRET).is_none());
        assert!(PartSigner::from_template(template.uri(), &headers, 4, shape, SECRET).is_none(), "the part number is checked");
        assert!(PartSigner::from_template(template.uri(), &headers, 3, shape, SECRET).is_some());
    }
}
