//! The OAuth 2.0 wire protocol, without any store: token requests for each grant (RFC 6749
//! §4.1.3, §4.4, §6) with the client's authentication (`client_secret_basic` or
//! `client_secret_post`, or none for public clients), the parsing of token answers and their
//! errors into something safe to show, and token revocation (RFC 7009).
//!
//! Requests go through the caller's [`GatedHttp`], so the outbound gate applies to token
//! endpoints as to everything else. Error messages carry an OAuth error code or an HTTP
//! status, never a token or a secret.

use std::collections::BTreeMap;

use patchbay_net::GatedHttp;
use serde_json::{Map, Value, json};

use crate::TokenResponse;

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy)]
pub struct ClientAuth<'a> {
    pub id: &'a str,
    /// `None` for a public client (PKCE alone).
    pub secret: Option<&'a str>,
    /// `client_secret_post` sends the secret in the form; anything else uses HTTP Basic.
    pub method: &'a str,
}

/// A provider's token endpoint, as one client uses it.
#[derive(Debug, Clone, Copy)]
pub struct TokenEndpoint<'a> {
    pub url: &'a str,
    pub client: ClientAuth<'a>,
    /// Parameters the provider wants on every token request.
    pub params: &'a BTreeMap<String, String>,
    /// Quirks of the provider's answers (Slack's `ok` and `authed_user`).
    pub quirks: Option<&'a TokenResponse>,
}

/// What is asked of the token endpoint.
#[derive(Debug, Clone, Copy)]
pub enum Grant<'a> {
    /// Exchanging an authorization code, with the PKCE verifier when the flow used one.
    AuthorizationCode {
        code: &'a str,
        redirect_uri: &'a str,
        verifier: Option<&'a str>,
    },
    /// Renewing with a refresh token.
    RefreshToken(&'a str),
    /// A token for the client itself.
    ClientCredentials {
        scope: Option<&'a str>,
        audience: Option<&'a str>,
    },
}

/// A token request that did not yield tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// The provider answered with an OAuth error code (`invalid_grant`, …).
    Refused(String),
    /// No usable answer: the request failed, or the answer was not a token.
    Failed(String),
}

impl TokenError {
    /// Whether retrying cannot help: the grant or the client is refused.
    pub fn is_permanent(&self) -> bool {
        matches!(self, TokenError::Refused(code)
            if matches!(code.as_str(), "invalid_grant" | "unauthorized_client" | "invalid_client"))
    }

    /// The error code, or the description of the failure.
    pub fn message(&self) -> &str {
        match self {
            TokenError::Refused(m) | TokenError::Failed(m) => m,
        }
    }
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl Grant<'_> {
    fn form(&self) -> Vec<(String, String)> {
        let mut form = Vec::with_capacity(4);
        let mut push = |k: &str, v: &str| form.push((k.to_owned(), v.to_owned()));
        match *self {
            Grant::AuthorizationCode {
                code,
                redirect_uri,
                verifier,
            } => {
                push("grant_type", "authorization_code");
                push("code", code);
                push("redirect_uri", redirect_uri);
                if let Some(v) = verifier {
                    push("code_verifier", v);
                }
            }
            Grant::RefreshToken(token) => {
                push("grant_type", "refresh_token");
                push("refresh_token", token);
            }
            Grant::ClientCredentials { scope, audience } => {
                push("grant_type", "client_credentials");
                if let Some(s) = scope {
                    push("scope", s);
                }
                if let Some(a) = audience {
                    push("audience", a);
                }
            }
        }
        form
    }
}

/// Adds the client's authentication to a form post.
fn authenticate(
    mut builder: reqwest::RequestBuilder,
    form: &mut Vec<(String, String)>,
    client: ClientAuth<'_>,
) -> reqwest::RequestBuilder {
    match client.secret {
        Some(secret) if client.method != "client_secret_post" => {
            builder = builder.basic_auth(client.id, Some(secret));
        }
        secret => {
            form.push(("client_id".into(), client.id.to_owned()));
            if let Some(s) = secret {
                form.push(("client_secret".into(), s.to_owned()));
            }
        }
    }
    builder
}

/// Asks `endpoint` for tokens; the answer's JSON object (it has an `access_token`).
pub async fn request_token(
    http: &GatedHttp,
    endpoint: TokenEndpoint<'_>,
    grant: Grant<'_>,
) -> Result<Map<String, Value>, TokenError> {
    let url = url::Url::parse(endpoint.url)
        .map_err(|e| TokenError::Failed(format!("invalid token URL: {e}")))?;
    let mut form = grant.form();
    for (k, v) in endpoint.params {
        form.push((k.clone(), v.clone()));
    }
    let builder = http
        .client()
        .post(url)
        .header(reqwest::header::ACCEPT, "application/json");
    let builder = authenticate(builder, &mut form, endpoint.client);
    let req = builder
        .form(&form)
        .build()
        .map_err(|e| TokenError::Failed(e.without_url().to_string()))?;
    let resp = http
        .execute(req)
        .await
        .map_err(|e| TokenError::Failed(e.to_string()))?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    token_answer(status, body, endpoint.quirks)
}

/// An OAuth `error` value as it may be shown and logged: the characters an error code has
/// (ASCII letters, digits, `_`), at most 64 of them, whatever the provider or the redirect sent.
pub fn error_code(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect()
}

/// Reads a token endpoint's answer: the tokens, the provider's error code (kept to the
/// characters an error code has), or the HTTP status.
pub fn token_answer(
    status: u16,
    mut body: Value,
    quirks: Option<&TokenResponse>,
) -> Result<Map<String, Value>, TokenError> {
    if let Some(quirks) = quirks {
        regularize(quirks, &mut body);
    }
    let error = body.get("error").and_then(Value::as_str).map(error_code);
    match (status, body, error) {
        (200..=299, Value::Object(map), None)
            if map.get("access_token").and_then(Value::as_str).is_some() =>
        {
            Ok(map)
        }
        (_, _, Some(error)) => Err(TokenError::Refused(error)),
        (status, _, None) => Err(TokenError::Failed(format!(
            "the token endpoint answered HTTP {status}"
        ))),
    }
}

/// Brings a provider's token answer to the RFC 6749 shape: an `ok: false` answer (Slack, HTTP
/// 200) becomes an error, and when only a user token was granted (Slack's `authed_user`), that
/// token is the answer's. Nothing else of the nested object is kept.
fn regularize(quirks: &TokenResponse, body: &mut Value) {
    let Some(map) = body.as_object_mut() else {
        return;
    };
    if let Some(field) = &quirks.ok_field
        && map.get(field).and_then(Value::as_bool) == Some(false)
        && !map.contains_key("error")
    {
        map.insert("error".into(), json!("provider_error"));
    }
    if let Some(path) = &quirks.user_token_path {
        let nested = map.remove(path);
        if !map.contains_key("access_token")
            && let Some(Value::Object(user)) = nested
        {
            for key in [
                "access_token",
                "refresh_token",
                "expires_in",
                "scope",
                "token_type",
            ] {
                if let Some(v) = user.get(key) {
                    map.insert(key.into(), v.clone());
                }
            }
        }
    }
}

/// Revokes `token` (of kind `hint`: `refresh_token` or `access_token`) at `url`; what
/// happened, in words.
pub async fn revoke(
    http: &GatedHttp,
    url: url::Url,
    client: ClientAuth<'_>,
    token: &str,
    hint: &str,
) -> String {
    let mut form = vec![
        ("token".to_owned(), token.to_owned()),
        ("token_type_hint".to_owned(), hint.to_owned()),
    ];
    let builder = authenticate(http.client().post(url), &mut form, client);
    match builder.form(&form).build() {
        Ok(req) => match http.execute(req).await {
            Ok(r) if r.status().is_success() => "revoked".to_owned(),
            Ok(r) => format!("the provider answered HTTP {}", r.status().as_u16()),
            Err(e) => format!("not revoked: {e}"),
        },
        Err(_) => "not revoked: request".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slack() -> TokenResponse {
        TokenResponse {
            ok_field: Some("ok".into()),
            user_token_path: Some("authed_user".into()),
        }
    }

    #[test]
    fn answers_with_an_access_token_are_tokens() {
        let map = token_answer(200, json!({"access_token": "a", "expires_in": 60}), None)
            .expect("tokens");
        assert_eq!(map["access_token"], "a");
    }

    #[test]
    fn errors_are_codes_never_the_body() {
        let e = token_answer(
            400,
            json!({"error": "invalid_grant\"<script>sk_live_1234", "error_description": "sk_secret"}),
            None,
        )
        .unwrap_err();
        assert_eq!(
            e,
            TokenError::Refused("invalid_grantscriptsk_live_1234".into())
        );
        assert!(!e.message().contains('"') && !e.message().contains('<'));
        assert!(!e.message().contains("sk_secret"));
        let e = token_answer(200, json!({"token_type": "bearer"}), None).unwrap_err();
        assert_eq!(
            e,
            TokenError::Failed("the token endpoint answered HTTP 200".into())
        );
        assert!(!e.is_permanent());
        assert!(TokenError::Refused("invalid_grant".into()).is_permanent());
        assert!(!TokenError::Refused("temporarily_unavailable".into()).is_permanent());
    }

    #[test]
    fn quirky_answers_are_regularized() {
        let e = token_answer(200, json!({"ok": false}), Some(&slack())).unwrap_err();
        assert_eq!(e, TokenError::Refused("provider_error".into()));
        let map = token_answer(
            200,
            json!({"ok": true, "authed_user": {"access_token": "u", "scope": "x", "id": "U1"}}),
            Some(&slack()),
        )
        .expect("the user token");
        assert_eq!(map["access_token"], "u");
        assert!(map.get("id").is_none() && map.get("authed_user").is_none());
    }

    #[test]
    fn grants_and_client_authentication_shape_the_form() {
        let form = Grant::ClientCredentials {
            scope: Some("a b"),
            audience: None,
        }
        .form();
        assert_eq!(
            form,
            vec![
                ("grant_type".to_owned(), "client_credentials".to_owned()),
                ("scope".to_owned(), "a b".to_owned())
            ]
        );
        let client = reqwest::Client::new();
        let mut form = Vec::new();
        let post = ClientAuth {
            id: "cid",
            secret: Some("s3"),
            method: "client_secret_post",
        };
        let req = authenticate(client.post("http://127.0.0.1/t"), &mut form, post)
            .build()
            .unwrap();
        assert!(req.headers().get("authorization").is_none());
        assert_eq!(form.len(), 2);
        let mut form = Vec::new();
        let basic = ClientAuth {
            method: "client_secret_basic",
            ..post
        };
        let req = authenticate(client.post("http://127.0.0.1/t"), &mut form, basic)
            .build()
            .unwrap();
        assert!(req.headers().get("authorization").is_some());
        assert!(form.is_empty());
    }
}
