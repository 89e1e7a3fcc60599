//! Injecting a connection's credentials into an outbound HTTP request, per auth type. Used by
//! connection tests here and by the proxy and actions later.

use base64::Engine as _;
use patchbay_domain::spec::{Auth, InjectLocation, KeyLocation};
use patchbay_net::{GatedHttp, HttpError};
use reqwest::header::{AUTHORIZATION, COOKIE, HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::Material;

/// Where credentials go: an outbound request's URL (query parameters) and headers.
pub trait AuthTarget {
    fn url_mut(&mut self) -> &mut url::Url;
    fn headers_mut(&mut self) -> &mut HeaderMap;
}

impl AuthTarget for reqwest::Request {
    fn url_mut(&mut self) -> &mut url::Url {
        reqwest::Request::url_mut(self)
    }
    fn headers_mut(&mut self) -> &mut HeaderMap {
        reqwest::Request::headers_mut(self)
    }
}

/// An outbound request's URL and headers while it is assembled.
#[derive(Debug)]
pub struct Outgoing {
    pub url: url::Url,
    pub headers: HeaderMap,
}

impl AuthTarget for Outgoing {
    fn url_mut(&mut self) -> &mut url::Url {
        &mut self.url
    }
    fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The provider refused the credentials, or there are none to use yet.
    #[error("{0}")]
    Rejected(String),
    #[error("{0}")]
    Unsupported(String),
}

/// A header value carrying a credential: marked sensitive, and its bytes wiped once the last
/// copy of the value is gone (a connection's plan keeps one while the connection is cached).
fn header_value(value: String, what: &str) -> Result<HeaderValue, AuthError> {
    let bytes = bytes::Bytes::from_owner(Wiped(value.into_bytes()));
    let mut v = HeaderValue::from_maybe_shared(bytes)
        .map_err(|_| AuthError::Unsupported(format!("{what} cannot be sent in an HTTP header")))?;
    v.set_sensitive(true);
    Ok(v)
}

/// Bytes zeroed when dropped.
struct Wiped(Vec<u8>);

impl AsRef<[u8]> for Wiped {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Wiped {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

fn header_name(name: &str) -> Result<HeaderName, AuthError> {
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| AuthError::Unsupported(format!("{name:?} is not a header name")))
}

fn secret<'a>(m: &'a Material, field: &str) -> Result<&'a str, AuthError> {
    m.secret(field)
        .map(|s| s.expose_secret())
        .ok_or_else(|| AuthError::Unsupported(format!("secret field {field} is not set")))
}

/// Adds `name=value` to the request's `Cookie` header (after the caller's own cookies).
fn add_cookie(headers: &mut HeaderMap, name: &str, value: &str) -> Result<(), AuthError> {
    let pair = format!("{name}={value}");
    let combined = match headers.get(COOKIE).and_then(|v| v.to_str().ok()) {
        Some(existing) => format!("{existing}; {pair}"),
        None => pair,
    };
    headers.insert(COOKIE, header_value(combined, "a cookie")?);
    Ok(())
}

/// One credential a request carries.
#[derive(Debug)]
pub(crate) enum Inject {
    Header(HeaderName, HeaderValue),
    Query(String, SecretString),
    Cookie(String, SecretString),
}

impl Inject {
    /// Adds a header or cookie credential to `headers` (query credentials go in the URL).
    pub(crate) fn to_headers(&self, headers: &mut HeaderMap) -> Result<(), AuthError> {
        match self {
            Inject::Header(name, value) => {
                headers.insert(name.clone(), value.clone());
            }
            Inject::Cookie(name, value) => add_cookie(headers, name, value.expose_secret())?,
            Inject::Query(..) => {}
        }
        Ok(())
    }
}

/// Fills `${secrets.NAME}` placeholders of a custom template.
pub fn render_template(template: &str, m: &Material) -> Result<String, AuthError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${secrets.") {
        out.push_str(&rest[..start]);
        let after = &rest[start + "${secrets.".len()..];
        let end = after.find('}').ok_or_else(|| {
            AuthError::Unsupported("unterminated ${secrets.…} in a template".into())
        })?;
        out.push_str(secret(m, &after[..end])?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Adds the connection's credentials to `req`.
pub async fn apply_auth(
    http: &GatedHttp,
    m: &Material,
    req: &mut impl AuthTarget,
) -> Result<(), AuthError> {
    let injects = match credentials(m)? {
        Some(injects) => injects,
        // A draft client-credentials connection fetches its token first.
        None => {
            let token = Box::pin(client_credentials_token(http, m)).await?;
            vec![bearer(&token, "the access token")?]
        }
    };
    for inject in &injects {
        match inject {
            Inject::Query(name, value) => {
                req.url_mut()
                    .query_pairs_mut()
                    .append_pair(name, value.expose_secret());
            }
            other => other.to_headers(req.headers_mut())?,
        }
    }
    Ok(())
}

fn bearer(token: &str, what: &str) -> Result<Inject, AuthError> {
    Ok(Inject::Header(
        AUTHORIZATION,
        header_value(format!("Bearer {token}"), what)?,
    ))
}

/// The credentials a request through the connection carries, in order; `None` when a token
/// has to be fetched first (a client-credentials connection without one).
pub(crate) fn credentials(m: &Material) -> Result<Option<Vec<Inject>>, AuthError> {
    let inject = match &m.auth {
        Auth::None | Auth::Hmac => return Ok(Some(Vec::new())),
        Auth::ApiKey(k) => {
            let key = format!(
                "{}{}",
                k.prefix.as_deref().unwrap_or(""),
                secret(m, "api_key")?
            );
            match k.location {
                KeyLocation::Query => Inject::Query(k.name.clone(), key.into()),
                KeyLocation::Cookie => Inject::Cookie(k.name.clone(), key.into()),
                KeyLocation::Header => {
                    Inject::Header(header_name(&k.name)?, header_value(key, "the API key")?)
                }
            }
        }
        Auth::Bearer => bearer(secret(m, "token")?, "the token")?,
        Auth::Basic(_) => {
            let user = m.username().unwrap_or("");
            let pair = zeroize::Zeroizing::new(format!("{user}:{}", secret(m, "password")?));
            let creds =
                zeroize::Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&*pair));
            Inject::Header(
                AUTHORIZATION,
                header_value(format!("Basic {}", *creds), "the password")?,
            )
        }
        Auth::Custom(custom) => {
            let mut out = Vec::new();
            for rule in &custom.inject {
                let value = render_template(&rule.template, m)?;
                let name = rule.name.clone();
                match rule.location {
                    InjectLocation::Query => out.push(Inject::Query(name, value.into())),
                    InjectLocation::Cookie => out.push(Inject::Cookie(name, value.into())),
                    InjectLocation::Header => out.push(Inject::Header(
                        header_name(&name)?,
                        header_value(value, "a custom credential")?,
                    )),
                    // Body injection applies to requests that carry a JSON body (actions).
                    InjectLocation::Body => {}
                }
            }
            return Ok(Some(out));
        }
        Auth::Oauth2(_) => {
            let token = m.secret("access_token").ok_or_else(|| {
                AuthError::Rejected(
                    "not authorized yet: complete the OAuth flow for this connection".into(),
                )
            })?;
            bearer(token.expose_secret(), "the access token")?
        }
        // A stored connection comes with the engine's cached token; a draft fetches one.
        Auth::Oauth2ClientCredentials(_) => match m.secret("access_token") {
            Some(t) => bearer(t.expose_secret(), "the access token")?,
            None => return Ok(None),
        },
        // Signed per request, once its method and body are known (`sigv4`).
        Auth::AwsSigv4(_) => {
            return Err(AuthError::Unsupported(
                "aws_sigv4 requests are signed one by one, not given fixed credentials".into(),
            ));
        }
        Auth::SshKey => {
            return Err(AuthError::Unsupported(
                "an SSH key signs an SSH session, not HTTP requests".into(),
            ));
        }
    };
    Ok(Some(vec![inject]))
}

/// RFC 6749 §4.4: exchanges the client's id and secret for an access token.
pub async fn client_credentials_token(http: &GatedHttp, m: &Material) -> Result<String, AuthError> {
    let Auth::Oauth2ClientCredentials(cc) = &m.auth else {
        return Err(AuthError::Unsupported(
            "not an oauth2_client_credentials connection".into(),
        ));
    };
    let token_url = cc
        .token_url
        .as_deref()
        .ok_or_else(|| AuthError::Unsupported("auth.token_url is not set".into()))?;
    let url = url::Url::parse(token_url)
        .map_err(|e| AuthError::Unsupported(format!("auth.token_url: {e}")))?;
    let mut form: Vec<(String, String)> = vec![("grant_type".into(), "client_credentials".into())];
    if let Some(scopes) = cc.scopes.as_ref().filter(|s| !s.is_empty()) {
        form.push(("scope".into(), scopes.join(" ")));
    }
    if let Some(aud) = &cc.audience {
        form.push(("audience".into(), aud.clone()));
    }
    let mut req = http
        .client()
        .post(url)
        .basic_auth(secret(m, "client_id")?, Some(secret(m, "client_secret")?))
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&form)
        .build()
        .map_err(|e| {
            AuthError::Http(patchbay_net::HttpError::Other(e.without_url().to_string()))
        })?;
    if let Some(v) = req.headers_mut().get_mut(AUTHORIZATION) {
        v.set_sensitive(true);
    }
    let resp = http.execute(req).await?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let code = body
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown_error");
        let msg = format!("the token endpoint answered {} ({code})", status.as_u16());
        return Err(
            if matches!(
                code,
                "invalid_client" | "unauthorized_client" | "invalid_grant"
            ) || status.as_u16() == 401
            {
                AuthError::Rejected(msg)
            } else {
                AuthError::Http(HttpError::Other(msg))
            },
        );
    }
    body.get("access_token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            AuthError::Http(HttpError::Other(
                "the token endpoint answered without an access_token".into(),
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn material(auth: serde_json::Value, secrets: &[(&str, &str)]) -> Material {
        crate::test_material(serde_json::json!({}), auth, secrets)
    }

    #[test]
    fn credentials_that_cannot_be_headers_are_refused_without_showing_them() {
        for (auth, secrets, what) in [
            (
                serde_json::json!({"type": "bearer"}),
                &[("token", "tok\nen-secret")][..],
                "the token",
            ),
            (
                serde_json::json!({"type": "api_key"}),
                &[("api_key", "key\r-secret")][..],
                "the API key",
            ),
            (
                serde_json::json!({"type": "api_key", "in": "cookie", "name": "sid"}),
                &[("api_key", "cookie\n-secret")][..],
                "a cookie",
            ),
        ] {
            let m = material(auth, secrets);
            let mut headers = HeaderMap::new();
            let err = match credentials(&m) {
                Err(e) => e,
                Ok(injects) => injects
                    .unwrap()
                    .iter()
                    .try_for_each(|i| i.to_headers(&mut headers))
                    .unwrap_err(),
            };
            let text = err.to_string();
            assert!(text.contains(what), "{text}");
            assert!(!text.contains("secret"), "{text}");
        }
    }

    #[test]
    fn credential_header_values_are_sensitive() {
        let m = material(
            serde_json::json!({"type": "basic", "username": "ann"}),
            &[("password", "pw-secret")],
        );
        let injects = credentials(&m).unwrap().unwrap();
        let [Inject::Header(name, value)] = injects.as_slice() else {
            panic!("one header: {injects:?}");
        };
        assert_eq!(name, AUTHORIZATION);
        assert!(value.is_sensitive());
        assert_eq!(value.to_str().unwrap(), "Basic YW5uOnB3LXNlY3JldA==");
        assert!(!format!("{injects:?}").contains("YW5u"));
    }
}
