//! AWS Signature Version 4 (by `aws-sigv4`, the signer of AWS's own SDK): a request's method,
//! URL, chosen headers and body hash signed with the connection's access key, in headers for a
//! request, in the query for a presigned URL.
//!
//! Signed headers are `host`, `content-type`, `content-md5` and the `x-amz-*` ones: the rest may
//! be changed on the way (user agents, hop-by-hop headers) without breaking the signature.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
    SigningInstructions, SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use secrecy::ExposeSecret as _;

use crate::{AuthError, Material};

/// Where a signature is for: the region and the service's signing name (`s3`, `execute-api`).
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
}

impl<'a> Scope<'a> {
    /// An `aws_sigv4` HTTP connection's region and service.
    pub fn of(auth: &'a patchbay_domain::spec::AwsSigv4Auth) -> Self {
        Self {
            region: &auth.region,
            service: &auth.service,
        }
    }

    /// S3 takes the path as sent (no normalising, no second encoding) and wants the body's
    /// hash in `x-amz-content-sha256`.
    fn is_s3(&self) -> bool {
        self.service == "s3"
    }

    /// Whether the service accepts `UNSIGNED-PAYLOAD` (S3 does; most services do not).
    pub fn takes_unsigned_payload(&self) -> bool {
        self.is_s3()
    }

    fn settings(&self, location: SignatureLocation, expires: Option<Duration>) -> SigningSettings {
        let mut s = SigningSettings::default();
        s.signature_location = location;
        s.expires_in = expires;
        if self.is_s3() {
            s.percent_encoding_mode = PercentEncodingMode::Single;
            s.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
            if location == SignatureLocation::Headers {
                s.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
            }
        }
        s
    }
}

/// The body a signature covers.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    Bytes(&'a [u8]),
    /// Not hashed (`UNSIGNED-PAYLOAD`): a streamed body, where the service allows it.
    Unsigned,
}

fn credentials(m: &Material) -> Result<Credentials, AuthError> {
    let field = |name: &str| {
        m.secret(name)
            .map(|s| s.expose_secret().to_owned())
            .ok_or_else(|| AuthError::Unsupported(format!("secret field {name} is not set")))
    };
    Ok(Credentials::new(
        field("access_key_id")?,
        field("secret_access_key")?,
        m.secret("session_token")
            .map(|s| s.expose_secret().to_owned()),
        None,
        "patchbay",
    ))
}

/// Whether a header takes part in the signature.
fn is_signed(name: &HeaderName) -> bool {
    let n = name.as_str();
    n == "host" || n == "content-type" || n == "content-md5" || n.starts_with("x-amz-")
}

/// What signing `request` with the connection's key at `now` adds to it.
fn signed(
    m: &Material,
    scope: Scope<'_>,
    settings: SigningSettings,
    now: SystemTime,
    request: SignableRequest<'_>,
) -> Result<SigningInstructions, AuthError> {
    let identity = credentials(m)?.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(scope.region)
        .name(scope.service)
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| AuthError::Unsupported(format!("cannot sign: {e}")))?
        .into();
    Ok(sign(request, &params)
        .map_err(|e| AuthError::Unsupported(format!("cannot sign: {e}")))?
        .into_parts()
        .0)
}

/// Signs a request to `url` (absolute, as it is sent) in its headers, which must already hold
/// `host`; the signature's headers are added to `headers`.
pub fn sign_headers(
    m: &Material,
    scope: Scope<'_>,
    method: &Method,
    url: &str,
    headers: &mut HeaderMap,
    payload: Payload<'_>,
    now: SystemTime,
) -> Result<(), AuthError> {
    // The signature's own headers are the signer's to write, never the caller's.
    for name in ["x-amz-date", "x-amz-content-sha256", "x-amz-security-token"] {
        headers.remove(name);
    }
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(k, _)| is_signed(k))
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .collect();
    let body = match payload {
        Payload::Bytes(b) => SignableBody::Bytes(b),
        Payload::Unsigned => SignableBody::UnsignedPayload,
    };
    let request = SignableRequest::new(method.as_str(), url, pairs.into_iter(), body)
        .map_err(|e| AuthError::Unsupported(format!("cannot sign this request: {e}")))?;
    let settings = scope.settings(SignatureLocation::Headers, None);
    let (added, _) = signed(m, scope, settings, now, request)?.into_parts();
    for header in added {
        let name = HeaderName::from_static(header.name());
        let mut value = HeaderValue::from_str(header.value())
            .map_err(|_| AuthError::Unsupported("a signature header is not valid".into()))?;
        value.set_sensitive(header.sensitive() || name == http::header::AUTHORIZATION);
        headers.insert(name, value);
    }
    Ok(())
}

/// A presigned URL: `url` with the signature in its query, valid for `expires` from `now`.
pub fn presign(
    m: &Material,
    scope: Scope<'_>,
    method: &Method,
    url: &url::Url,
    expires: Duration,
    now: SystemTime,
) -> Result<url::Url, AuthError> {
    let host = host_of(url)?;
    let request = SignableRequest::new(
        method.as_str(),
        url.as_str(),
        std::iter::once(("host", host.as_str())),
        SignableBody::UnsignedPayload,
    )
    .map_err(|e| AuthError::Unsupported(format!("cannot sign this URL: {e}")))?;
    let settings = scope.settings(SignatureLocation::QueryParams, Some(expires));
    let (_, query) = signed(m, scope, settings, now, request)?.into_parts();
    let mut out = url.clone();
    {
        let mut pairs = out.query_pairs_mut();
        for (name, value) in &query {
            pairs.append_pair(name, value);
        }
    }
    Ok(out)
}

/// The `Host` header a request to `url` carries.
pub fn host_of(url: &url::Url) -> Result<String, AuthError> {
    let host = url
        .host_str()
        .ok_or_else(|| AuthError::Unsupported("the URL has no host".into()))?;
    Ok(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// Signs a call through an `aws_sigv4` HTTP connection once its URL and headers are known: a
/// body of bytes by its hash; a streamed body `UNSIGNED-PAYLOAD` where the service allows it,
/// otherwise read (up to [`MAX_SIGNED_BODY`]) and hashed.
pub(crate) async fn sign_call(
    m: &Material,
    auth: &patchbay_domain::spec::AwsSigv4Auth,
    method: &Method,
    to: &patchbay_net::Destination,
    path_and_query: &http::uri::PathAndQuery,
    headers: &mut HeaderMap,
    body: crate::call::CallBody,
) -> Result<crate::call::CallBody, crate::call::CallError> {
    use crate::call::{CallBody, CallError};
    let scope = Scope::of(auth);
    headers.insert(http::header::HOST, to.host_header().clone());
    let url = format!("{}{}", to.origin(), path_and_query);
    let now = SystemTime::now();
    Ok(match body {
        CallBody::Bytes(b) => {
            sign_headers(m, scope, method, &url, headers, Payload::Bytes(&b), now)?;
            CallBody::Bytes(b)
        }
        CallBody::Stream(s) if scope.takes_unsigned_payload() => {
            sign_headers(m, scope, method, &url, headers, Payload::Unsigned, now)?;
            CallBody::Stream(s)
        }
        CallBody::Stream(s) => {
            let bytes = crate::read_capped(s, MAX_SIGNED_BODY).await.map_err(|_| {
                CallError::Invalid(format!(
                    "a body signed for {} is read whole, and must be at most {} bytes",
                    auth.service, MAX_SIGNED_BODY
                ))
            })?;
            sign_headers(m, scope, method, &url, headers, Payload::Bytes(&bytes), now)?;
            CallBody::Bytes(bytes.into())
        }
    })
}

/// Largest streamed body read whole to be hashed for a service that wants it signed.
pub const MAX_SIGNED_BODY: usize = 16 * 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_material;
    use serde_json::json;

    fn material() -> Material {
        test_material(
            json!({"base_url": "https://examplebucket.s3.amazonaws.com"}),
            json!({"type": "aws_sigv4", "region": "us-east-1", "service": "s3"}),
            &[
                ("access_key_id", "AKIAIOSFODNN7EXAMPLE"),
                (
                    "secret_access_key",
                    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                ),
            ],
        )
    }

    /// 2013-05-24T00:00:00Z, the time of AWS's published S3 examples.
    fn example_time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600)
    }

    const S3: Scope<'static> = Scope {
        region: "us-east-1",
        service: "s3",
    };

    /// AWS's "GET Bucket (List Objects)" example of signing in the Authorization header
    /// (Amazon S3 API reference, "Signature Calculations for the Authorization Header").
    #[test]
    fn a_list_is_signed_as_in_aws_published_example() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "examplebucket.s3.amazonaws.com".parse().unwrap());
        // Not signed: it may change on the way.
        headers.insert("user-agent", "patchbay".parse().unwrap());
        sign_headers(
            &material(),
            S3,
            &Method::GET,
            "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J",
            &mut headers,
            Payload::Bytes(b""),
            example_time(),
        )
        .unwrap();
        assert_eq!(
            headers["authorization"],
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;x-amz-content-sha256;x-amz-date, \
             Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        );
        assert!(headers["authorization"].is_sensitive());
        assert_eq!(
            headers["x-amz-content-sha256"],
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(headers["x-amz-date"], "20130524T000000Z");
    }

    /// AWS's presigned URL example (Amazon S3 API reference, "Authenticating Requests: Using
    /// Query Parameters"): GET /test.txt for 86400 s.
    #[test]
    fn a_presigned_url_matches_aws_published_example() {
        let url = url::Url::parse("https://examplebucket.s3.amazonaws.com/test.txt").unwrap();
        let signed = presign(
            &material(),
            S3,
            &Method::GET,
            &url,
            Duration::from_secs(86_400),
            example_time(),
        )
        .unwrap();
        let q: std::collections::BTreeMap<_, _> = signed.query_pairs().into_owned().collect();
        assert_eq!(q["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
        assert_eq!(
            q["X-Amz-Credential"],
            "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"
        );
        assert_eq!(q["X-Amz-Date"], "20130524T000000Z");
        assert_eq!(q["X-Amz-Expires"], "86400");
        assert_eq!(q["X-Amz-SignedHeaders"], "host");
        assert_eq!(
            q["X-Amz-Signature"],
            "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
    }

    #[test]
    fn missing_keys_are_named_without_values() {
        let m = test_material(
            json!({"base_url": "https://x.example"}),
            json!({"type": "aws_sigv4", "region": "us-east-1", "service": "s3"}),
            &[("access_key_id", "AKIAEXAMPLE")],
        );
        let mut h = HeaderMap::new();
        h.insert("host", "x.example".parse().unwrap());
        let err = sign_headers(
            &m,
            S3,
            &Method::GET,
            "https://x.example/",
            &mut h,
            Payload::Unsigned,
            SystemTime::now(),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "secret field secret_access_key is not set");
    }
}
