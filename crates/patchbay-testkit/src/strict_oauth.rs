//! A strict OAuth 2.0 authorization server on loopback: it rotates the refresh token on every
//! use, revokes the whole grant when a spent refresh token comes back (RFC 9700's reuse
//! detection, as Auth0 and Okta do), and commits each rotation before its answer, which may be
//! delayed, reaches the client. `/authorize` redirects back at once with a code.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Form, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

/// What the server has done, and how it behaves.
#[derive(Debug, Default)]
pub struct Grant {
    /// Lifetime of the access tokens it issues, in seconds.
    pub ttl: i64,
    /// How long an answer to the token endpoint takes, after the rotation is committed.
    pub delay_ms: u64,
    /// Tokens issued (the code exchange included); the n-th is `access-n` / `refresh-n` (after
    /// the prefix).
    pub issued: usize,
    pub current_refresh: Option<String>,
    pub spent: HashSet<String>,
    pub revoked: bool,
    /// Spent refresh tokens that came back.
    pub reuse: usize,
    /// Refresh grants asked for.
    pub refreshes: usize,
    /// Put before every token it issues (`{prefix}access-n`), for tests that look for them.
    pub prefix: String,
}

/// The running server.
#[derive(Debug, Clone)]
pub struct StrictServer {
    pub url: String,
    pub grant: Arc<Mutex<Grant>>,
}

impl StrictServer {
    /// Starts one on 127.0.0.1 issuing tokens that live `ttl` seconds, answering its token
    /// endpoint after `delay_ms`.
    pub async fn start(ttl: i64, delay_ms: u64) -> Self {
        let grant = Arc::new(Mutex::new(Grant {
            ttl,
            delay_ms,
            ..Default::default()
        }));
        let app = axum::Router::new()
            .route("/authorize", axum::routing::get(authorize))
            .route("/token", axum::routing::post(token))
            .with_state(grant.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("a loopback port for the authorization server: {e}"));
        let url = format!(
            "http://{}",
            listener
                .local_addr()
                .unwrap_or_else(|e| panic!("its address: {e}"))
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, grant }
    }

    /// A snapshot of what it did: (issued, refreshes, reuse, revoked).
    pub fn counts(&self) -> (usize, usize, usize, bool) {
        let g = self.grant.lock().unwrap_or_else(|e| e.into_inner());
        (g.issued, g.refreshes, g.reuse, g.revoked)
    }

    /// The connection body of an OAuth connection to this server.
    pub fn connection(&self, name: &str) -> serde_json::Value {
        json!({"name": name, "kind": "http",
            "auth": {"type": "oauth2", "authorization_url": format!("{}/authorize", self.url),
                "token_url": format!("{}/token", self.url), "scopes": ["read"]},
            "config": {"base_url": self.url},
            "secrets": {"client_id": "patchbay", "client_secret": "strict-secret"}})
    }
}

async fn authorize(Query(q): Query<HashMap<String, String>>) -> Response {
    let to = format!(
        "{}?code=the-code&state={}",
        q.get("redirect_uri").cloned().unwrap_or_default(),
        q.get("state").cloned().unwrap_or_default()
    );
    Redirect::to(&to).into_response()
}

async fn token(
    State(g): State<Arc<Mutex<Grant>>>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let refused = |why: &str| {
        (
            axum::http::StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": why})),
        )
            .into_response()
    };
    let (answer, delay) = {
        let mut g = g.lock().unwrap_or_else(|e| e.into_inner());
        match f.get("grant_type").map(String::as_str) {
            Some("authorization_code") => {}
            Some("refresh_token") => {
                g.refreshes += 1;
                let given = f.get("refresh_token").cloned().unwrap_or_default();
                if g.revoked {
                    return refused("invalid_grant");
                }
                if g.current_refresh.as_deref() != Some(given.as_str()) {
                    if g.spent.contains(&given) {
                        // A spent refresh token came back: the whole grant is revoked.
                        g.reuse += 1;
                        g.revoked = true;
                    }
                    return refused("invalid_grant");
                }
                g.spent.insert(given);
            }
            _ => return refused("unsupported_grant_type"),
        }
        g.issued += 1;
        let (n, prefix) = (g.issued, g.prefix.clone());
        g.current_refresh = Some(format!("{prefix}refresh-{n}"));
        (
            json!({"access_token": format!("{prefix}access-{n}"), "token_type": "Bearer",
                "expires_in": g.ttl, "refresh_token": format!("{prefix}refresh-{n}")}),
            g.delay_ms,
        )
    };
    // The rotation is committed; the answer takes its time to arrive.
    tokio::time::sleep(Duration::from_millis(delay)).await;
    axum::Json(answer).into_response()
}
