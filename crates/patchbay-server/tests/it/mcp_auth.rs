//! MCP authorization end to end: a Python SDK server protected by a real authorization server
//! (oidc-provider), reached by an `oauth2` MCP connection that names no endpoints. Discovery
//! (RFC 9728 from the 401, RFC 8414), dynamic registration (RFC 7591), PKCE, the `resource`
//! parameter (the server only takes tokens bound to it), `iss`, renewal by the renewal
//! service, and step-up on 403 `insufficient_scope`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp};
use crate::mcp::{call, tool, tweak};
use crate::oauth_flow::{renews_once, stats};
use crate::peers::{self, consent, no_redirects};

fn query(url: &str) -> std::collections::BTreeMap<String, String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Starts the connection's authorization, plays the user, and lands on Patchbay's callback;
/// answers the authorization request's parameters.
async fn authorize(app: &TestApp, id: &str) -> std::collections::BTreeMap<String, String> {
    let callback = format!("{}/v1/oauth/callback", app.url);
    let (status, started) = call(
        app,
        Method::POST,
        &format!("/v1/connections/{id}/oauth/start"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{started}");
    let url = started["authorization_url"].as_str().unwrap();
    let back = consent(url, &callback).await;
    // The authorization server says who it is (RFC 9207); the callback checks it.
    assert!(query(&back).contains_key("iss"), "{back}");
    let page = no_redirects().get(&back).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    query(url)
}

async fn discovery_registration_pkce_resource_renewal_and_step_up(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(tweak(vec![]))).await;
    let idp = peers::oidc_mcp(&format!("{}/v1/oauth/callback", app.url));
    let issuer = format!("http://127.0.0.1:{}", idp.port);
    let server = peers::mcp_python(&["--auth-issuer", &issuer, "--step-up", "admin=mcp:admin"]);
    let server_url = format!("http://127.0.0.1:{}/mcp", server.port);

    // Without credentials the server refuses, and says so as an auth failure.
    let (status, found) = call(
        &app,
        Method::POST,
        "/v1/mcp/discover",
        Some(json!({"server_url": server_url})),
    )
    .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["success"], false, "{found}");
    assert_eq!(found["error_kind"], "auth", "{found}");

    // An oauth2 MCP connection names nothing but the server.
    let (status, c) = call(
        &app,
        Method::POST,
        "/v1/connections",
        Some(
            json!({"name": "guarded", "kind": "mcp", "config": {"server_url": server_url},
            "auth": {"type": "oauth2"}}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["status"], "pending", "{c}");
    let id = c["id"].as_str().unwrap().to_owned();

    let asked = authorize(&app, &id).await;
    assert_eq!(asked["code_challenge_method"], "S256");
    assert!(asked["code_challenge"].len() >= 43);
    assert_eq!(asked["resource"], server_url, "the RFC 8707 resource");
    let scopes: Vec<&str> = asked["scope"].split(' ').collect();
    assert!(
        scopes.contains(&"mcp:tools") && scopes.contains(&"offline_access"),
        "{scopes:?}"
    );
    assert_eq!(
        stats(idp.port).await["registrations"],
        1,
        "one RFC 7591 registration"
    );
    let (_, linked) = call(&app, Method::GET, &format!("/v1/connections/{id}"), None).await;
    assert_eq!(linked["status"], "active", "{linked}");
    assert_eq!(linked["auth"]["issuer"], issuer);
    assert_eq!(linked["auth"]["token_url"], format!("{issuer}/token"));
    assert_eq!(linked["auth"]["token_params"]["resource"], server_url);
    assert_eq!(linked["secrets"]["client_id"]["set"], true, "{linked}");
    assert_eq!(linked["secrets"]["client_secret"]["set"], true, "{linked}");
    let audit = app
        .admin
        .audit("action=connection.mcp_authorization")
        .await
        .unwrap();
    assert_eq!(audit.items.len(), 1);
    assert_eq!(audit.items[0].details["client"], "dynamic");

    // The token works, through discovery and a tool call.
    let (status, refreshed) = call(
        &app,
        Method::POST,
        &format!("/v1/connections/{id}/refresh-tools"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(refreshed["success"], true, "{refreshed}");
    let (status, echoed) = tool(&app, &id, "echo", json!({"message": "hi"})).await;
    assert_eq!(status, 200, "{echoed}");
    assert_eq!(echoed["content"][0]["text"], "Echo: hi");

    // Renewal: past the token's expiry the renewal service refreshes it (with the resource:
    // the server takes only tokens bound to it), and calls go on with the new token.
    renews_once(&app, idp.port, &id).await;
    let (status, echoed) = tool(&app, &id, "echo", json!({"message": "again"})).await;
    assert_eq!(status, 200, "{echoed}");
    assert_eq!(echoed["content"][0]["text"], "Echo: again");

    // Step-up: a tool that needs mcp:admin answers 403 insufficient_scope; its scopes join
    // the connection's and the next authorization asks for them.
    let (status, refused) = tool(&app, &id, "admin", json!({})).await;
    assert_eq!(status, 502, "{refused}");
    let detail = refused["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("authorize it again"), "{refused}");
    let (_, c) = call(&app, Method::GET, &format!("/v1/connections/{id}"), None).await;
    let wanted = c["auth"]["scopes"].as_array().unwrap();
    assert!(wanted.contains(&json!("mcp:admin")), "{c}");
    let asked = authorize(&app, &id).await;
    assert!(
        asked["scope"].split(' ').any(|s| s == "mcp:admin"),
        "{asked:?}"
    );
    // The connection's client is kept: no second registration.
    assert_eq!(stats(idp.port).await["registrations"], 1);
    let (status, done) = tool(&app, &id, "admin", json!({})).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["content"][0]["text"], "admin done");
    let stepped = app
        .admin
        .audit("action=connection.scopes_stepped_up")
        .await
        .unwrap();
    assert_eq!(stepped.items.len(), 1);
}

/// Creates an `oauth2` MCP connection to the server on `port` and starts its authorization,
/// which must fail with 502 saying `reason`; the connection's id.
async fn start_refused(app: &TestApp, name: &str, port: u16, reason: &str) -> String {
    let (status, c) = call(
        app,
        Method::POST,
        "/v1/connections",
        Some(json!({"name": name, "kind": "mcp",
            "config": {"server_url": format!("http://127.0.0.1:{port}/mcp")},
            "auth": {"type": "oauth2"}})),
    )
    .await;
    assert_eq!(status, 201, "{c}");
    let id = c["id"].as_str().unwrap().to_owned();
    let (status, err) = call(
        app,
        Method::POST,
        &format!("/v1/connections/{id}/oauth/start"),
        None,
    )
    .await;
    assert_eq!(status, 502, "{err}");
    assert!(err["detail"].as_str().unwrap().contains(reason), "{err}");
    id
}

async fn authorization_failures_are_clear(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(tweak(vec![]))).await;
    // A server that needs no authorization.
    let open = peers::mcp_python(&[]);
    start_refused(&app, "open", open.port, "did not ask for authorization").await;
    // A server that asks, but whose challenge leads nowhere (a bearer-only server).
    let bearer = peers::mcp_python(&["--bearer", "s3cret-token"]);
    let id = start_refused(
        &app,
        "bearer-only",
        bearer.port,
        "no protected-resource metadata",
    )
    .await;
    // Nothing was written into either connection.
    let (_, c) = call(&app, Method::GET, &format!("/v1/connections/{id}"), None).await;
    assert!(c["auth"].get("token_url").is_none(), "{c}");
    // The client metadata document is public and names this deployment's callback.
    let doc: Value = reqwest::get(format!("{}/v1/oauth/client-metadata.json", app.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc["redirect_uris"],
        json!([format!("{}/v1/oauth/callback", app.url)])
    );
    assert_eq!(doc["token_endpoint_auth_method"], "none");
}

both_backends!(
    discovery_registration_pkce_resource_renewal_and_step_up,
    authorization_failures_are_clear,
);
