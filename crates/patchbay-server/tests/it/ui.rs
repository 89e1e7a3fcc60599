//! The web UI over HTTP, as a browser without scripts sees it: sessions (log-in, log-out, idle
//! and absolute expiry, a revoked token), CSRF and cross-site refusals, the add / edit / delete
//! flow with secrets that never reach a page, and untrusted text rendered inert.

use std::time::Duration;

use patchbay_domain::Role;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};

use crate::both_backends;
use crate::helpers::{Backend, TestApp};

/// A browser: no cookie jar, no redirects followed, so each step is seen.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn same_origin(app: &TestApp) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("origin", HeaderValue::from_str(&app.url).unwrap());
    h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
    h
}

/// Logs in with `token`; the session cookie (`pb_session=…`).
async fn login(app: &TestApp, token: &str) -> String {
    let r = browser()
        .post(format!("{}/login", app.url))
        .headers(same_origin(app))
        .form(&[("token", token), ("next", "/connections")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/connections");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "http deployments cannot keep a Secure cookie"
    );
    cookie.split(';').next().unwrap().to_owned()
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"_csrf\" value=\"")
            .expect("a form with a token");
        let rest = &self.body[at + 20..];
        rest[..rest.find('"').unwrap()].to_owned()
    }

    fn location(&self) -> &str {
        self.headers["location"].to_str().unwrap()
    }
}

async fn page(r: reqwest::Response) -> Page {
    Page {
        status: r.status(),
        headers: r.headers().clone(),
        body: r.text().await.unwrap(),
    }
}

async fn get(app: &TestApp, cookie: &str, path: &str) -> Page {
    page(
        browser()
            .get(format!("{}{path}", app.url))
            .header("cookie", cookie)
            .header("accept", "text/html")
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn post(
    app: &TestApp,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
    headers: HeaderMap,
) -> Page {
    page(
        browser()
            .post(format!("{}{path}", app.url))
            .header("cookie", cookie)
            .headers(headers)
            .form(form)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn a_browser_logs_in_and_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let anon = get(&app, "", "/").await;
    assert_eq!(anon.status, StatusCode::SEE_OTHER);
    assert_eq!(anon.location(), "/login");
    let wrong = post(
        &app,
        "",
        "/login",
        &[("token", "pb_not-a-token")],
        same_origin(&app),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.body.contains("not a valid API token"),
        "{}",
        wrong.body
    );

    let cookie = login(&app, &app.admin_token).await;
    let list = get(&app, &cookie, "/connections").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("No connections yet"));
    let csp = list.headers["content-security-policy"].to_str().unwrap();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    assert!(
        list.body.contains(&format!("nonce=\"{nonce}\"")),
        "the script carries the nonce"
    );
    assert!(
        csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(
        !list.body.contains(" onclick=") && !list.body.contains("<script>"),
        "no inline script"
    );
    assert_eq!(list.headers["cache-control"], "no-store");
    if backend == Backend::Postgres {
        // The session lives in the shared store: another replica serves it.
        let replica = app.replica().await;
        let there = browser()
            .get(format!("{}connections", replica.base_url()))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(
            there.status(),
            StatusCode::OK,
            "another replica knows the session"
        );
    }
    let again = get(&app, &cookie, "/connections").await;
    assert_ne!(
        again.headers["content-security-policy"],
        list.headers["content-security-policy"]
    );

    let refused = post(&app, &cookie, "/logout", &[], same_origin(&app)).await;
    assert_eq!(
        refused.status,
        StatusCode::FORBIDDEN,
        "log-out needs the token too"
    );
    let out = post(
        &app,
        &cookie,
        "/logout",
        &[("_csrf", &list.csrf())],
        same_origin(&app),
    )
    .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(
        out.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = get(&app, &cookie, "/connections/new").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert_eq!(
        after.location(),
        "/login?next=%2Fconnections%2Fnew",
        "the ended session is refused"
    );

    let audit = app.admin.audit("action=session.start").await.unwrap();
    assert_eq!(audit.items.len(), 1);
    let audit = app.admin.audit("action=session.end").await.unwrap();
    assert_eq!(audit.items.len(), 1);
    for e in app.admin.audit("").await.unwrap().items {
        let text = serde_json::to_string(&e).unwrap();
        assert!(
            !text.contains(cookie.split('=').nth(1).unwrap()),
            "the session never reaches the audit log"
        );
    }
}

async fn forms_are_refused_without_the_sessions_token_or_from_another_site(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cookie = login(&app, &app.admin_token).await;
    let other = login(&app, &app.admin_token).await;
    let mine = get(&app, &cookie, "/connections/new?kind=http&provider=custom")
        .await
        .csrf();
    let theirs = get(&app, &other, "/connections").await.csrf();
    assert_ne!(mine, theirs);
    let form = |csrf: &str| -> Vec<(&'static str, String)> {
        [
            ("_csrf", csrf),
            ("kind", "http"),
            ("provider", "custom"),
            ("name", "api"),
            ("config.base_url", "https://api.example.com"),
            ("auth.type", "none"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_owned()))
        .collect()
    };
    let mut cross_site = same_origin(&app);
    cross_site.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
    let mut evil_origin = HeaderMap::new();
    evil_origin.insert("origin", HeaderValue::from_static("https://evil.example"));
    for (why, fields, headers) in [
        (
            "no token",
            form("").into_iter().skip(1).collect::<Vec<_>>(),
            same_origin(&app),
        ),
        ("another session's token", form(&theirs), same_origin(&app)),
        ("a cross-site post", form(&mine), cross_site),
        ("another origin", form(&mine), evil_origin),
    ] {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = post(&app, &cookie, "/connections/new", &fields, headers).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{why}");
        assert!(
            r.body.contains("this form was not accepted"),
            "{why}: {}",
            r.body
        );
    }
    let cross_login = {
        let mut h = HeaderMap::new();
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        post(&app, "", "/login", &[("token", &app.admin_token)], h).await
    };
    assert_eq!(
        cross_login.status,
        StatusCode::FORBIDDEN,
        "no log-in from another site"
    );
    assert!(cross_login.headers.get("set-cookie").is_none());
    let listed = app.admin.list_connections("").await.unwrap();
    assert!(listed.items.is_empty(), "nothing refused was created");
    let fields = form(&mine);
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let ok = post(
        &app,
        &cookie,
        "/connections/new",
        &fields,
        same_origin(&app),
    )
    .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(app.admin.list_connections("").await.unwrap().items.len(), 1);
}

async fn a_session_ends_when_idle_and_at_its_absolute_end(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cookie = login(&app, &app.admin_token).await;
    app.clock.advance(Duration::from_secs(2 * 3600 + 1));
    let idle = get(&app, &cookie, "/connections").await;
    assert_eq!(idle.status, StatusCode::SEE_OTHER, "idle for over 2 h");

    let cookie = login(&app, &app.admin_token).await;
    for hour in 1..12 {
        app.clock.advance(Duration::from_secs(3600));
        let r = get(&app, &cookie, "/connections").await;
        assert_eq!(r.status, StatusCode::OK, "active at hour {hour}");
    }
    app.clock.advance(Duration::from_secs(3600));
    let ended = get(&app, &cookie, "/connections").await;
    assert_eq!(
        ended.status,
        StatusCode::SEE_OTHER,
        "12 h after the log-in, however active"
    );
}

async fn a_revoked_token_ends_its_sessions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app
        .admin
        .create_token(&patchbay_domain::api::CreateToken {
            name: "person".into(),
            role: Role::Member,
            project: None,
        })
        .await
        .unwrap();
    let cookie = login(&app, &created.value).await;
    assert_eq!(
        get(&app, &cookie, "/connections").await.status,
        StatusCode::OK
    );
    app.admin
        .revoke_token(created.token.id.as_str())
        .await
        .unwrap();
    let r = get(&app, &cookie, "/connections").await;
    assert_eq!(
        r.status,
        StatusCode::SEE_OTHER,
        "a session is no stronger than its token"
    );
}

const CANARY: &str = "canary-ui-pw-5d0c41";

async fn secrets_never_reach_a_page_and_an_edit_keeps_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cookie = login(&app, &app.admin_token).await;
    let csrf = get(&app, &cookie, "/connections").await.csrf();
    let created = post(
        &app,
        &cookie,
        "/connections/new",
        &[
            ("_csrf", &csrf),
            ("kind", "database"),
            ("provider", "postgresql"),
            ("name", "pg"),
            ("config.driver", "postgresql"),
            ("config.host", "127.0.0.1"),
            ("config.database", "test"),
            ("config.username", "someone"),
            ("config.ssl", "false"),
            ("auth.type", "basic"),
            ("secrets.basic.password", CANARY),
        ],
        same_origin(&app),
    )
    .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let detail = created.location().to_owned();
    assert!(detail.ends_with("?saved=1"));
    let id = detail
        .trim_start_matches("/connections/")
        .trim_end_matches("?saved=1")
        .to_owned();
    let edit_path = format!("/connections/{id}/edit");
    let mut pages = vec![];
    for path in [
        "/connections".to_owned(),
        detail.clone(),
        edit_path.clone(),
        format!("/connections/{id}/delete"),
    ] {
        let p = get(&app, &cookie, &path).await;
        assert_eq!(p.status, StatusCode::OK, "{path}");
        assert!(!p.body.contains(CANARY), "{path} shows the stored password");
        pages.push(p);
    }
    let edit = &pages[2];
    assert!(
        edit.body
            .contains("Saved <span aria-hidden=\"true\">••••</span>"),
        "the stored password is shown as saved"
    );
    assert!(edit.body.contains("autocomplete=\"new-password\""));

    // An edit that leaves the password empty keeps it.
    let saved = post(
        &app,
        &cookie,
        &edit_path,
        &[
            ("_csrf", &csrf),
            ("version", "1"),
            ("name", "pg-main"),
            ("config.driver", "postgresql"),
            ("config.host", "127.0.0.1"),
            ("config.port", "5432"),
            ("config.database", "test"),
            ("config.username", "someone"),
            ("config.ssl", "false"),
            ("auth.type", "basic"),
            ("secrets.basic.password", ""),
        ],
        same_origin(&app),
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let creds = app.admin.credentials(&id).await.unwrap();
    assert_eq!(creds.secrets["password"], CANARY, "the password was kept");
    assert_eq!(
        app.admin.get_connection(&id).await.unwrap().name.as_str(),
        "pg-main"
    );

    // A stale form is refused, naming why, and changes nothing.
    let stale = post(
        &app,
        &cookie,
        &edit_path,
        &[
            ("_csrf", &csrf),
            ("version", "1"),
            ("name", "pg-old"),
            ("config.driver", "postgresql"),
            ("config.host", "127.0.0.1"),
            ("config.database", "test"),
            ("config.username", "someone"),
            ("auth.type", "basic"),
        ],
        same_origin(&app),
    )
    .await;
    assert_eq!(
        stale.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        stale.body
    );
    assert_eq!(
        app.admin.get_connection(&id).await.unwrap().name.as_str(),
        "pg-main"
    );

    // Bad input comes back inline, with the field named and nothing saved.
    let bad = post(
        &app,
        &cookie,
        &edit_path,
        &[
            ("_csrf", &csrf),
            ("version", "2"),
            ("name", "pg-main"),
            ("config.driver", "postgresql"),
            ("config.host", ""),
            ("config.port", "99999"),
            ("config.database", "test"),
            ("config.username", "someone"),
            ("auth.type", "basic"),
            ("secrets.basic.password", "x"),
        ],
        same_origin(&app),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.body.contains("id=\"f-config-port-error\""),
        "{}",
        bad.body
    );
    assert!(bad.body.contains("id=\"f-config-host-error\""));
    assert!(
        bad.body.contains("href=\"#f-config-port\""),
        "the summary links to the field"
    );
    assert!(!bad.body.contains(CANARY));
    assert_eq!(
        app.admin.credentials(&id).await.unwrap().secrets["password"],
        CANARY
    );

    let gone = post(
        &app,
        &cookie,
        &format!("/connections/{id}/delete"),
        &[("_csrf", &csrf)],
        same_origin(&app),
    )
    .await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER);
    assert_eq!(gone.location(), "/connections?done=deleted");
    let list = get(&app, &cookie, gone.location()).await;
    assert!(list.body.contains("Connection deleted."));
    let spoofed = get(&app, &cookie, "/connections?done=Your+session+expired").await;
    assert!(
        !spoofed.body.contains("session expired"),
        "a link cannot make the page say anything"
    );
    assert_eq!(
        get(&app, &cookie, &detail).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn untrusted_text_renders_inert(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cookie = login(&app, &app.admin_token).await;
    let csrf = get(&app, &cookie, "/connections").await.csrf();
    let script = "<script>alert(1)</script>";
    let refused = post(
        &app,
        &cookie,
        "/connections/new",
        &[
            ("_csrf", &csrf),
            ("kind", "http"),
            ("provider", "custom"),
            ("name", script),
            ("config.base_url", "https://api.example.com"),
            ("auth.type", "none"),
        ],
        same_origin(&app),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("id=\"f-name-error\""));
    assert!(
        !refused.body.contains(script),
        "the name comes back escaped"
    );
    assert!(refused.body.contains("&#60;script&#62;alert(1)&#60;"));

    let id = app
        .connection(serde_json::json!({
            "name": "db", "kind": "database",
            "config": {"driver": "postgresql", "host": "127.0.0.1", "database": script, "username": script},
            "auth": {"type": "basic"}, "secrets": {"password": "x"}
        }))
        .await;
    for path in [
        "/connections".to_owned(),
        format!("/connections/{id}"),
        format!("/connections/{id}/edit"),
    ] {
        let p = get(&app, &cookie, &path).await;
        assert_eq!(p.status, StatusCode::OK, "{path}");
        assert!(
            !p.body.contains(script),
            "{path} renders the stored text as markup"
        );
        if path != "/connections" {
            assert!(
                p.body.contains("&#60;script&#62;"),
                "{path} shows it as text"
            );
        }
    }
}

async fn browsers_get_pages_and_api_clients_problem_documents(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let page_404 = get(&app, "", "/no-such-page").await;
    assert_eq!(page_404.status, StatusCode::NOT_FOUND);
    assert!(
        page_404.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page_404.body.contains("no such route"));
    let api_404 = browser()
        .get(format!("{}/v1/nope", app.url))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(
        api_404.headers()["content-type"],
        "application/problem+json"
    );

    let viewer = app
        .admin
        .create_token(&patchbay_domain::api::CreateToken {
            name: "viewer".into(),
            role: Role::Viewer,
            project: None,
        })
        .await
        .unwrap();
    let cookie = login(&app, &viewer.value).await;
    let list = get(&app, &cookie, "/connections").await;
    assert!(
        !list.body.contains("Add connection"),
        "a viewer is not offered what it cannot do"
    );
    for path in [
        "/connections/new",
        "/connections/new?kind=http&provider=custom",
    ] {
        assert_eq!(
            get(&app, &cookie, path).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    let refused = post(
        &app,
        &cookie,
        "/connections/new",
        &[
            ("_csrf", &list.csrf()),
            ("kind", "http"),
            ("provider", "custom"),
            ("name", "x"),
            ("config.base_url", "https://api.example.com"),
            ("auth.type", "none"),
        ],
        same_origin(&app),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(
        app.admin
            .list_connections("")
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

async fn an_https_deployment_keeps_its_session_cookie_secure(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Some(std::sync::Arc::new(|s: &mut patchbay_server::Settings| {
            s.http.public_url = Some("https://patchbay.example".parse().unwrap());
        })),
    )
    .await;
    let mut from_public = HeaderMap::new();
    from_public.insert(
        "origin",
        HeaderValue::from_static("https://patchbay.example"),
    );
    from_public.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
    let r = post(
        &app,
        "",
        "/login",
        &[("token", &app.admin_token)],
        from_public,
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let cookie = r.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("__Host-pb_session="), "{cookie}");
    assert!(
        cookie.contains("; Secure")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
    );
    let value = cookie.split(';').next().unwrap();
    assert_eq!(
        get(&app, value, "/connections").await.status,
        StatusCode::OK
    );
    // The same value under the plain name is not this deployment's cookie.
    let plain = value.replace("__Host-pb_session", "pb_session");
    assert_eq!(
        get(&app, &plain, "/connections").await.status,
        StatusCode::SEE_OTHER
    );
    // A post claiming the plain-http origin of the same host is from another origin.
    let refused = post(
        &app,
        "",
        "/login",
        &[("token", &app.admin_token)],
        same_origin(&app),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

async fn a_status_filter_reads_past_the_first_page(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(crate::helpers::allow_loopback())).await;
    // The one connected connection comes first in id order, then more than a page of others.
    let ok = app
        .connection(serde_json::json!({"name": "healthy", "kind": "http",
            "config": {"base_url": app.url, "verify_path": "/healthz"}}))
        .await;
    app.admin.test_connection(&ok).await.unwrap();
    for i in 0..110 {
        app.connection(
            serde_json::json!({"name": format!("idle-{i:03}"), "kind": "http",
            "config": {"base_url": "https://api.example.com"}}),
        )
        .await;
    }
    let cookie = login(&app, &app.admin_token).await;
    let connected = get(&app, &cookie, "/connections?status=Connected").await;
    assert_eq!(connected.body.matches("class=\"card\"").count(), 1);
    assert!(connected.body.contains(">healthy</a>"));
    let untested = get(&app, &cookie, "/connections?status=Untested").await;
    assert_eq!(
        untested.body.matches("class=\"card\"").count(),
        100,
        "a full page"
    );
    let next = untested
        .body
        .split("href=\"/connections?")
        .nth(1)
        .expect("a next page");
    let next = next[..next.find('"').unwrap()].replace("&#38;", "&");
    let rest = get(&app, &cookie, &format!("/connections?{next}")).await;
    assert_eq!(rest.body.matches("class=\"card\"").count(), 10, "the rest");
}

async fn an_oauth_sign_in_is_finished_only_by_the_browser_that_started_it(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(crate::helpers::allow_loopback())).await;
    let callback = format!("{}/v1/oauth/callback", app.url);
    let idp = crate::peers::oidc(&callback);
    let c = app
        .admin
        .create_connection(&crate::oauth_flow::oidc_connection("bound", idp.port))
        .await
        .unwrap();
    let cookie = login(&app, &app.admin_token).await;
    let connect = format!("/connections/{}/connect", c.id);
    let mut cross = HeaderMap::new();
    cross.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
    let refused = page(
        browser()
            .get(format!("{}{connect}", app.url))
            .header("cookie", &cookie)
            .headers(cross)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::FORBIDDEN,
        "not started from another site"
    );

    let start = |oauth_cookie: Option<String>| {
        let app_url = app.url.clone();
        let cookie = cookie.clone();
        let connect = connect.clone();
        async move {
            let jar = match oauth_cookie {
                Some(o) => format!("{cookie}; {o}"),
                None => cookie,
            };
            page(
                browser()
                    .get(format!("{app_url}{connect}"))
                    .header("cookie", jar)
                    .header("sec-fetch-site", "same-origin")
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let started = start(None).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER);
    let set = started.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.starts_with("pb_oauth=") && set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    let mine = set.split(';').next().unwrap().to_owned();
    let back = crate::peers::consent(started.location(), &callback).await;
    for (why, presented) in [
        ("no cookie", None),
        (
            "another browser's",
            Some(format!("pb_oauth={}", "A".repeat(43))),
        ),
    ] {
        let mut req = browser().get(&back);
        if let Some(p) = presented {
            req = req.header("cookie", p);
        }
        let r = page(req.send().await.unwrap()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{why}");
        assert!(
            r.body.contains("started in another browser"),
            "{why}: {}",
            r.body
        );
    }
    assert!(
        app.admin
            .get_connection(c.id.as_str())
            .await
            .unwrap()
            .oauth
            .is_none_or(|o| o.linked_at.is_none())
    );
    // The browser that started it finishes it, with the request the others could not use up.
    let done = page(
        browser()
            .get(&back)
            .header("cookie", &mine)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(
        done.body.contains("?connected=1"),
        "goes on to the connection's page"
    );
    let linked = app.admin.get_connection(c.id.as_str()).await.unwrap();
    assert!(linked.oauth.is_some_and(|o| o.linked_at.is_some()));
    // A second flow from the same browser keeps its value.
    let again = start(Some(mine.clone())).await;
    assert!(
        again.headers["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with(&mine)
    );
}

both_backends!(
    an_oauth_sign_in_is_finished_only_by_the_browser_that_started_it,
    a_status_filter_reads_past_the_first_page,
    an_https_deployment_keeps_its_session_cookie_secure,
    a_browser_logs_in_and_out,
    forms_are_refused_without_the_sessions_token_or_from_another_site,
    a_session_ends_when_idle_and_at_its_absolute_end,
    a_revoked_token_ends_its_sessions,
    secrets_never_reach_a_page_and_an_edit_keeps_them,
    untrusted_text_renders_inert,
    browsers_get_pages_and_api_clients_problem_documents,
);
