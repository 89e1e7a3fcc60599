//! Object storage over the S3 API (AWS S3 and S3-compatible services: Cloudflare R2, MinIO,
//! Backblaze B2, Wasabi): requests signed with SigV4 and sent by the upstream client through
//! the outbound gate. Every key is confined under the connection's prefix.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use http_body_util::BodyExt as _;
use patchbay_domain::api::ErrorKind;
use patchbay_domain::spec::StorageConfig;
use patchbay_net::{Answer, Destination, HttpError};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use crate::sigv4::{Payload, Scope, sign_headers};
use crate::{AuthError, Connectors, Material, Outcome};

/// Longest object key S3 takes, in bytes, the connection's prefix included.
pub const MAX_KEY_BYTES: usize = 1024;

/// Longest presigned URL lifetime SigV4 allows.
pub const MAX_PRESIGN: Duration = Duration::from_secs(7 * 24 * 3600);

/// Error answers read at most this much.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Listings read at most this much (1,000 keys of 1 KiB, with their fields).
const MAX_LISTING: usize = 4 * 1024 * 1024;

/// S3's URI encoding of a key: everything but unreserved characters and `/`.
const KEY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// S3's encoding of a query value: everything but unreserved characters.
const QUERY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub use patchbay_domain::actions::CANNED_ACLS;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A field of the request is wrong (422).
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The service refused the request.
    #[error("the storage service answered {status} {code}: {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl StorageError {
    fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// What kind of failure a refusal is: the credentials (`auth`), or anything else.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Refused { status, code, .. } if is_auth_refusal(*status, code) => ErrorKind::Auth,
            Self::Http(HttpError::Timeout) => ErrorKind::Timeout,
            Self::Http(HttpError::Net(patchbay_net::NetError::Blocked { .. })) => {
                ErrorKind::Blocked
            }
            Self::Http(HttpError::Connect(_)) => ErrorKind::Refused,
            Self::Http(HttpError::Tls(_)) => ErrorKind::Tls,
            _ => ErrorKind::Protocol,
        }
    }

    /// The key does not exist (a get or a head of a missing object).
    pub fn is_missing(&self) -> bool {
        matches!(self, Self::Refused { status: 404, code, .. } if code == "NoSuchKey" || code.is_empty())
    }
}

/// S3's answers that mean the credentials are wrong or not allowed.
fn is_auth_refusal(status: u16, code: &str) -> bool {
    status == 401
        || matches!(
            code,
            "SignatureDoesNotMatch"
                | "InvalidAccessKeyId"
                | "AccessDenied"
                | "InvalidToken"
                | "ExpiredToken"
                | "TokenRefreshRequired"
                | "InvalidClientTokenId"
        )
        || (status == 403 && code.is_empty())
}

/// The full object key of `key` under the connection's prefix, refused when it would leave it:
/// an absolute key, `.` or `..` segments, empty segments, backslashes or control characters.
pub fn object_key(config: &StorageConfig, key: &str) -> Result<String, StorageError> {
    if key.is_empty() {
        return Err(StorageError::invalid("key", "is required"));
    }
    check_relative("key", key, false)?;
    join_prefix(config, "key", key)
}

/// The full listing prefix of `prefix` (possibly empty) under the connection's prefix.
pub fn list_prefix(config: &StorageConfig, prefix: &str) -> Result<String, StorageError> {
    if prefix.is_empty() {
        return Ok(config.prefix().to_owned());
    }
    check_relative("prefix", prefix, true)?;
    join_prefix(config, "prefix", prefix)
}

fn check_relative(field: &'static str, s: &str, trailing_slash: bool) -> Result<(), StorageError> {
    crate::files::check_relative(s, trailing_slash, "prefix")
        .map_err(|reason| StorageError::invalid(field, reason))
}

fn join_prefix(
    config: &StorageConfig,
    field: &'static str,
    s: &str,
) -> Result<String, StorageError> {
    let full = format!("{}{s}", config.prefix());
    if full.len() > MAX_KEY_BYTES {
        return Err(StorageError::invalid(
            field,
            format!("is too long: at most {MAX_KEY_BYTES} bytes with the connection's prefix"),
        ));
    }
    Ok(full)
}

/// Where requests for the bucket go, and the path before a key.
struct Bucket {
    /// `scheme://host[:port]` of the bucket's requests.
    origin: String,
    /// `/bucket` for path-style addressing, empty for virtual-hosted.
    base: String,
}

impl Bucket {
    fn of(config: &StorageConfig) -> Result<Self, StorageError> {
        let endpoint = config.endpoint();
        if config.path_style() {
            return Ok(Self {
                origin: endpoint,
                base: format!("/{}", config.bucket),
            });
        }
        let url = url::Url::parse(&endpoint)
            .map_err(|e| StorageError::invalid("config.endpoint", e.to_string()))?;
        let host = url
            .host_str()
            .ok_or_else(|| StorageError::invalid("config.endpoint", "has no host"))?;
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        Ok(Self {
            origin: format!("{}://{}.{host}{port}", url.scheme(), config.bucket),
            base: String::new(),
        })
    }

    /// The URL of `key` (`None`: the bucket itself) with `query`.
    fn url(&self, key: Option<&str>, query: &[(&str, &str)]) -> Result<url::Url, StorageError> {
        let mut s = format!("{}{}/", self.origin, self.base);
        if let Some(key) = key {
            s.push_str(&utf8_percent_encode(key, KEY_ENCODE).to_string());
        }
        let mut sorted: Vec<_> = query.to_vec();
        sorted.sort();
        for (i, (k, v)) in sorted.iter().enumerate() {
            s.push(if i == 0 { '?' } else { '&' });
            s.push_str(k);
            if !v.is_empty() || *k != "delete" {
                s.push('=');
                s.push_str(&utf8_percent_encode(v, QUERY_ENCODE).to_string());
            }
        }
        url::Url::parse(&s).map_err(|e| StorageError::invalid("config.endpoint", e.to_string()))
    }
}

/// One object of a listing, its key relative to the connection's prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// A page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub objects: Vec<Listed>,
    /// With a delimiter: the "folders" under the prefix, relative to the connection's prefix.
    pub prefixes: Vec<String>,
    /// The next page's cursor (S3's continuation token).
    pub next_cursor: Option<String>,
}

/// What a put stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub key: String,
    pub etag: Option<String>,
    pub size: usize,
    pub version_id: Option<String>,
}

/// A put's optional settings.
#[derive(Debug)]
pub struct PutOptions<'a> {
    pub content_type: Option<&'a str>,
    pub acl: Option<&'a str>,
    pub metadata: &'a BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListBucketResult {
    #[serde(default)]
    contents: Vec<ListContents>,
    #[serde(default)]
    common_prefixes: Vec<CommonPrefix>,
    #[serde(default)]
    is_truncated: bool,
    #[serde(default)]
    next_continuation_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListContents {
    key: String,
    #[serde(default)]
    size: u64,
    #[serde(default, rename = "ETag")]
    etag: Option<String>,
    #[serde(default)]
    last_modified: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CommonPrefix {
    prefix: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct S3Error {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

fn storage_config(m: &Material) -> Result<&StorageConfig, StorageError> {
    m.spec
        .storage()
        .ok_or_else(|| StorageError::invalid("connection", "is not a storage connection"))
}

fn timeout_of(config: &StorageConfig) -> Duration {
    Duration::from_millis(config.timeout_ms)
}

fn scope(config: &StorageConfig) -> Scope<'_> {
    Scope {
        region: &config.region,
        service: "s3",
    }
}

/// A header value from a caller's text, or the field named as invalid.
fn header(field: &'static str, value: &str) -> Result<HeaderValue, StorageError> {
    HeaderValue::from_str(value)
        .map_err(|_| StorageError::invalid(field, "must be visible ASCII without line breaks"))
}

/// Checks user metadata: names S3 keeps (`x-amz-meta-<name>`) and their size.
fn metadata_headers(
    metadata: &BTreeMap<String, String>,
    headers: &mut HeaderMap,
) -> Result<(), StorageError> {
    let mut total = 0;
    for (name, value) in metadata {
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(StorageError::invalid(
                "metadata",
                format!("{name:?} is not a metadata name (letters, digits, - and _)"),
            ));
        }
        total += name.len() + value.len();
        let header_name =
            HeaderName::from_bytes(format!("x-amz-meta-{}", name.to_ascii_lowercase()).as_bytes())
                .map_err(|_| {
                    StorageError::invalid("metadata", format!("{name:?} is not a metadata name"))
                })?;
        headers.insert(header_name, header("metadata", value)?);
    }
    if total > 2048 {
        return Err(StorageError::invalid(
            "metadata",
            "is too large: S3 keeps at most 2 KB of user metadata",
        ));
    }
    Ok(())
}

impl Connectors {
    /// Sends one signed request about the bucket; the answer is the service's, any status.
    async fn s3_request(
        &self,
        m: &Material,
        method: Method,
        url: &url::Url,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<http::Response<Answer>, StorageError> {
        let config = storage_config(m)?;
        let uri = http::Uri::try_from(url.as_str())
            .map_err(|_| StorageError::invalid("key", "cannot be sent in a URL"))?;
        let to = Destination::of(&uri)?;
        headers.insert(http::header::HOST, to.host_header().clone());
        sign_headers(
            m,
            scope(config),
            &method,
            url.as_str(),
            &mut headers,
            Payload::Bytes(&body),
            SystemTime::now(),
        )?;
        let path_and_query = uri.path_and_query().map_or_else(
            || http::Uri::from_static("/"),
            |pq| http::Uri::from(pq.clone()),
        );
        let request =
            crate::call::outgoing(method, path_and_query, headers, crate::call::full(body));
        Ok(self
            .http()
            .upstream()
            .send_to(&to, request, timeout_of(config))
            .await?)
    }

    /// Sends a request and turns a non-success answer into [`StorageError::Refused`].
    async fn s3_ok(
        &self,
        m: &Material,
        method: Method,
        url: &url::Url,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<http::Response<Answer>, StorageError> {
        let resp = self.s3_request(m, method, url, headers, body).await?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(refusal(resp).await)
    }

    /// Stores `body` at `key` (under the prefix).
    pub async fn storage_put(
        &self,
        m: &Material,
        key: &str,
        body: Bytes,
        options: PutOptions<'_>,
    ) -> Result<Stored, StorageError> {
        let config = storage_config(m)?;
        let full = object_key(config, key)?;
        let mut headers = HeaderMap::new();
        if let Some(ct) = options.content_type {
            headers.insert(http::header::CONTENT_TYPE, header("content_type", ct)?);
        }
        if let Some(acl) = options.acl {
            if !CANNED_ACLS.contains(&acl) {
                return Err(StorageError::invalid(
                    "acl",
                    format!("must be one of {}", CANNED_ACLS.join(", ")),
                ));
            }
            headers.insert("x-amz-acl", header("acl", acl)?);
        }
        metadata_headers(options.metadata, &mut headers)?;
        let size = body.len();
        let url = Bucket::of(config)?.url(Some(&full), &[])?;
        let resp = self.s3_ok(m, Method::PUT, &url, headers, body).await?;
        let text = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Ok(Stored {
            key: key.to_owned(),
            etag: text("etag"),
            size,
            version_id: text("x-amz-version-id"),
        })
    }

    /// The object at `key`, its body streamed: the service's answer, a success.
    pub async fn storage_get(
        &self,
        m: &Material,
        key: &str,
    ) -> Result<http::Response<Answer>, StorageError> {
        let config = storage_config(m)?;
        let full = object_key(config, key)?;
        let url = Bucket::of(config)?.url(Some(&full), &[])?;
        self.s3_ok(m, Method::GET, &url, HeaderMap::new(), Bytes::new())
            .await
    }

    /// Removes the object at `key` (S3 answers the same whether or not it existed).
    pub async fn storage_delete(&self, m: &Material, key: &str) -> Result<(), StorageError> {
        let config = storage_config(m)?;
        let full = object_key(config, key)?;
        let url = Bucket::of(config)?.url(Some(&full), &[])?;
        let resp = self
            .s3_ok(m, Method::DELETE, &url, HeaderMap::new(), Bytes::new())
            .await?;
        drain(resp).await;
        Ok(())
    }

    /// One page of the keys under `prefix` (relative to the connection's), at most `limit`.
    pub async fn storage_list(
        &self,
        m: &Material,
        prefix: &str,
        delimiter: Option<&str>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Listing, StorageError> {
        let config = storage_config(m)?;
        let full = list_prefix(config, prefix)?;
        let limit = limit.clamp(1, 1000).to_string();
        let mut query = vec![("list-type", "2"), ("max-keys", limit.as_str())];
        if !full.is_empty() {
            query.push(("prefix", full.as_str()));
        }
        if let Some(d) = delimiter {
            query.push(("delimiter", d));
        }
        if let Some(c) = cursor {
            query.push(("continuation-token", c));
        }
        let url = Bucket::of(config)?.url(None, &query)?;
        let resp = self
            .s3_ok(m, Method::GET, &url, HeaderMap::new(), Bytes::new())
            .await?;
        let body = crate::read_capped(resp.into_body(), MAX_LISTING)
            .await
            .map_err(|e| StorageError::Http(HttpError::Other(e)))?;
        let parsed: ListBucketResult =
            quick_xml::de::from_reader(body.as_slice()).map_err(|e| StorageError::Refused {
                status: 200,
                code: "MalformedListing".into(),
                message: format!("the listing is not S3's XML: {e}"),
            })?;
        let own = config.prefix();
        let relative = |k: String| k.strip_prefix(own).map(str::to_owned);
        Ok(Listing {
            objects: parsed
                .contents
                .into_iter()
                .filter_map(|c| {
                    Some(Listed {
                        key: relative(c.key)?,
                        size: c.size,
                        etag: c.etag,
                        last_modified: c.last_modified,
                    })
                })
                .collect(),
            prefixes: parsed
                .common_prefixes
                .into_iter()
                .filter_map(|p| relative(p.prefix))
                .collect(),
            next_cursor: parsed
                .next_continuation_token
                .filter(|_| parsed.is_truncated),
        })
    }

    /// A URL that lets its holder `GET` or `PUT` the object at `key` until it expires.
    pub fn storage_presign(
        &self,
        m: &Material,
        method: &Method,
        key: &str,
        expires: Duration,
        now: SystemTime,
    ) -> Result<url::Url, StorageError> {
        let config = storage_config(m)?;
        if !(Duration::from_secs(1)..=MAX_PRESIGN).contains(&expires) {
            return Err(StorageError::invalid(
                "expires_in",
                format!("must be between 1 and {} seconds", MAX_PRESIGN.as_secs()),
            ));
        }
        if *method != Method::GET && *method != Method::PUT {
            return Err(StorageError::invalid("method", "must be GET or PUT"));
        }
        let full = object_key(config, key)?;
        let url = Bucket::of(config)?.url(Some(&full), &[])?;
        Ok(crate::sigv4::presign(
            m,
            scope(config),
            method,
            &url,
            expires,
            now,
        )?)
    }
}

/// Reads an answer to its end, so that its connection goes back to the pool.
async fn drain(resp: http::Response<Answer>) {
    let _ = resp.into_body().collect().await;
}

/// The service's error answer, read (at most [`MAX_ERROR_BODY`]).
pub async fn refusal(resp: http::Response<Answer>) -> StorageError {
    let status = resp.status();
    let body = crate::read_capped(resp.into_body(), MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    let parsed: S3Error = quick_xml::de::from_reader(body.as_slice()).unwrap_or_default();
    let code: String = parsed
        .code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(64)
        .collect();
    let message: String = parsed
        .message
        .chars()
        .filter(|c| !c.is_control())
        .take(256)
        .collect();
    StorageError::Refused {
        status: status.as_u16(),
        message: if message.is_empty() {
            status
                .canonical_reason()
                .unwrap_or("no reason given")
                .to_owned()
        } else {
            message
        },
        code,
    }
}

/// A storage connection's test: a signed `ListObjectsV2` of at most one key under its prefix.
pub(crate) async fn test(c: &Connectors, m: &Material, config: &StorageConfig) -> Outcome {
    let e = match c.storage_list(m, "", None, 1, None).await {
        Ok(_) => return Outcome::ok(format!("Connected (bucket {})", config.bucket)).status(200),
        Err(e) => e,
    };
    let kind = e.kind();
    match e {
        StorageError::Http(h) => h.into(),
        StorageError::Auth(a) => a.into(),
        StorageError::Invalid { .. } => Outcome::fail(ErrorKind::Protocol, e.to_string()),
        StorageError::Refused {
            status,
            code,
            message,
        } => {
            let text = if kind == ErrorKind::Auth {
                format!("Authentication failed: {status} {code} — check the access key and secret")
            } else if code == "NoSuchBucket" {
                format!("the bucket {} does not exist", config.bucket)
            } else {
                format!("the storage service answered {status} {code}: {message}")
            };
            Outcome::fail(kind, text).status(status)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(prefix: Option<&str>) -> StorageConfig {
        let mut c: StorageConfig = serde_json::from_value(serde_json::json!({
            "bucket": "pb-test", "prefix": prefix,
        }))
        .unwrap();
        c.fill_defaults();
        c
    }

    #[test]
    fn keys_stay_under_the_prefix() {
        let c = config(Some("tenant-a"));
        assert_eq!(object_key(&c, "x/y.txt").unwrap(), "tenant-a/x/y.txt");
        assert_eq!(object_key(&c, "a b/ü.pdf").unwrap(), "tenant-a/a b/ü.pdf");
        for bad in [
            "",
            "/etc/passwd",
            "../tenant-b/x",
            "a/../../b",
            "a/./b",
            "a//b",
            ".",
            "a\\b",
            "a\nb",
            "x/..",
        ] {
            let err = object_key(&c, bad).unwrap_err();
            assert!(
                matches!(err, StorageError::Invalid { field: "key", .. }),
                "{bad:?}: {err}"
            );
        }
        let long = "k".repeat(MAX_KEY_BYTES);
        assert!(object_key(&c, &long).is_err());
        assert_eq!(list_prefix(&c, "").unwrap(), "tenant-a/");
        assert_eq!(list_prefix(&c, "x/").unwrap(), "tenant-a/x/");
        assert!(list_prefix(&c, "../").is_err());
        assert_eq!(object_key(&config(None), "x").unwrap(), "x");
    }

    /// The document's patterns say what the checks take.
    #[test]
    fn the_key_patterns_agree_with_the_checks() {
        use patchbay_domain::actions::{STORAGE_KEY_PATTERN, STORAGE_PREFIX_PATTERN};
        let key = regex::Regex::new(STORAGE_KEY_PATTERN).unwrap();
        let prefix = regex::Regex::new(STORAGE_PREFIX_PATTERN).unwrap();
        let c = config(None);
        for s in [
            "a", "a/b", ".a", "..a", "...", "a/.b/c", "a b/ü", "", "/", "/a", "a/", "a//b", ".",
            "..", "a/./b", "a/../b", "a\\b", "a\nb", "a\u{85}b", "a\u{7f}", "x/..", "\t",
        ] {
            assert_eq!(key.is_match(s), object_key(&c, s).is_ok(), "key {s:?}");
            assert_eq!(
                prefix.is_match(s),
                list_prefix(&c, s).is_ok(),
                "prefix {s:?}"
            );
        }
    }

    #[test]
    fn urls_are_path_style_for_an_endpoint_and_virtual_hosted_on_aws() {
        let mut c = config(None);
        let aws = Bucket::of(&c).unwrap();
        assert_eq!(
            aws.url(Some("a b/c+d.txt"), &[]).unwrap().as_str(),
            "https://pb-test.s3.us-east-1.amazonaws.com/a%20b/c%2Bd.txt"
        );
        c.endpoint = Some("http://127.0.0.1:9000".into());
        c.path_style = None;
        c.fill_defaults();
        let local = Bucket::of(&c).unwrap();
        assert_eq!(
            local
                .url(None, &[("prefix", "x/y z"), ("list-type", "2")])
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9000/pb-test/?list-type=2&prefix=x%2Fy%20z"
        );
    }

    #[test]
    fn refusals_of_the_credentials_are_auth() {
        for (status, code) in [
            (403, "SignatureDoesNotMatch"),
            (403, "InvalidAccessKeyId"),
            (403, "AccessDenied"),
            (400, "ExpiredToken"),
            (403, ""),
        ] {
            let e = StorageError::Refused {
                status,
                code: code.into(),
                message: String::new(),
            };
            assert_eq!(e.kind(), ErrorKind::Auth, "{status} {code}");
        }
        let e = StorageError::Refused {
            status: 404,
            code: "NoSuchBucket".into(),
            message: String::new(),
        };
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert!(!e.is_missing());
    }
}
