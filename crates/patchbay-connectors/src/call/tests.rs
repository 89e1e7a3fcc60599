use super::*;
use secrecy::ExposeSecret as _;

fn material(base: &str) -> Material {
    crate::test_material(
        serde_json::json!({"base_url": base}),
        serde_json::json!({}),
        &[],
    )
}

#[test]
fn urls_stay_under_the_base() {
    let m = material("https://api.example.com/v2/");
    assert_eq!(
        call_url(&m, "/users/1", Some("a=1&b=2")).unwrap().as_str(),
        "https://api.example.com/v2/users/1?a=1&b=2"
    );
    assert_eq!(
        call_url(&m, "", None).unwrap().as_str(),
        "https://api.example.com/v2/"
    );
    assert_eq!(
        call_url(&m, "files/a%3Fb%2Fc", Some("x=%26"))
            .unwrap()
            .as_str(),
        "https://api.example.com/v2/files/a%3Fb%2Fc?x=%26"
    );
    let keyed = material("https://api.example.com/v1?key=k1");
    assert_eq!(
        call_url(&keyed, "/items", Some("page=2")).unwrap().as_str(),
        "https://api.example.com/v1/items?key=k1&page=2"
    );
    for bad in [
        "../admin",
        "a/../../admin",
        "%2e%2e/admin",
        "a/%2E%2E/b",
        "./x",
        "a\\..\\b",
    ] {
        assert!(
            matches!(call_url(&m, bad, None), Err(CallError::Invalid(_))),
            "{bad}"
        );
    }
}

fn with_auth(base: &str, auth: serde_json::Value, secrets: &[(&str, &str)]) -> Material {
    let config = serde_json::json!({
        "base_url": base,
        "headers": {"Accept": "application/json", "X-Team": "core"},
    });
    crate::test_material(config, auth, secrets)
}

/// What a call sends, comparable: where to, the path and query, and every header.
fn sent(a: Assembled<'_>) -> (Destination, String, Vec<(String, String)>) {
    let mut headers: Vec<(String, String)> = a
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    headers.sort();
    (a.to.into_owned(), a.path_and_query.to_string(), headers)
}

/// The planned path sends exactly what the general path sends, for every auth type and
/// the paths, queries and caller headers a proxy sees.
#[tokio::test]
async fn a_planned_call_sends_what_the_general_path_sends() {
    let gate = patchbay_net::Gate::new(&Default::default()).unwrap();
    let c = Connectors::new(gate, Default::default()).unwrap();
    let materials = [
        with_auth(
            "https://api.example.com/v2/",
            serde_json::json!({"type": "none"}),
            &[],
        ),
        with_auth(
            "http://127.0.0.1:8080",
            serde_json::json!({"type": "bearer"}),
            &[("token", "tok-1")],
        ),
        with_auth(
            "https://api.example.com/v1?key=k1",
            serde_json::json!({"type": "api_key", "in": "query", "name": "api key"}),
            &[("api_key", "a&b=c d")],
        ),
        with_auth(
            "https://api.example.com",
            serde_json::json!({"type": "api_key", "in": "cookie", "name": "sid"}),
            &[("api_key", "sid-secret")],
        ),
        with_auth(
            "https://api.example.com:8443/x",
            serde_json::json!({"type": "api_key", "name": "X-Key", "prefix": "K "}),
            &[("api_key", "key-secret")],
        ),
        with_auth(
            "http://[::1]:9000/",
            serde_json::json!({"type": "basic", "username": "ann"}),
            &[("password", "pass:word")],
        ),
        with_auth(
            "https://api.example.com",
            serde_json::json!({"type": "custom", "inject": [
                {"in": "header", "name": "X-A", "template": "a-${secrets.one}"},
                {"in": "query", "name": "q1", "template": "${secrets.two}"},
                {"in": "cookie", "name": "c1", "template": "${secrets.one}"},
                {"in": "query", "name": "q2", "template": "x/y"},
            ]}),
            &[("one", "one-1"), ("two", "two-2?")],
        ),
        with_auth(
            "https://api.example.com",
            serde_json::json!({"type": "oauth2"}),
            &[("access_token", "at-1")],
        ),
        with_auth(
            "https://api.example.com",
            serde_json::json!({"type": "oauth2_client_credentials"}),
            &[("access_token", "at-2")],
        ),
    ];
    type Caller<'a> = &'a [(&'a str, &'a str)];
    let requests: [(&str, Option<&str>, Caller<'_>); 7] = [
        ("/user", None, &[]),
        ("", None, &[("accept", "text/plain")]),
        ("/", Some("a=1&b=2"), &[("cookie", "theirs=1")]),
        ("repos/o/r/issues", Some(""), &[("x-team", "mine")]),
        ("files/a%3Fb%2Fc", Some("x=%26&y=:@/?"), &[]),
        ("/with space/\u{e9}", Some("q=it's"), &[]),
        (
            "a//b;c=d",
            Some("f[]=1"),
            &[("connection", "x-gone"), ("x-gone", "1")],
        ),
    ];
    let mut planned = 0;
    for m in &materials {
        let plan = format!("{:?}", m.plan().expect("planned"));
        for secret in m.secrets.values() {
            assert!(!plan.contains(secret.expose_secret()), "{plan}");
        }
        for (path, query, caller) in requests {
            let headers = header_map(caller);
            let plan = m.plan().unwrap();
            if plan.path_and_query(path, query).unwrap().is_some() {
                planned += 1;
            }
            let fast = c.assemble(m, path, query, headers.clone()).await.unwrap();
            let each = c
                .assemble_each(m, path, query, forwardable(headers))
                .await
                .unwrap();
            assert_eq!(sent(fast), sent(each), "{:?} {path} {query:?}", m.auth);
        }
    }
    // Most requests take the planned path; those needing encoding do not.
    assert_eq!(planned, materials.len() * 5);
    for bad in ["../admin", "a/%2e%2E/b"] {
        assert!(matches!(
            c.assemble(&materials[1], bad, None, HeaderMap::new()).await,
            Err(CallError::Invalid(_))
        ));
    }
}

#[test]
fn connections_that_cannot_be_planned_take_the_general_path() {
    for m in [
        with_auth(
            "https://api.example.com",
            serde_json::json!({"type": "bearer"}),
            &[],
        ),
        with_auth("not a url", serde_json::json!({"type": "none"}), &[]),
        with_auth(
            "ftp://files.example.com",
            serde_json::json!({"type": "none"}),
            &[],
        ),
        with_auth(
            "https://api.example.com/?",
            serde_json::json!({"type": "none"}),
            &[],
        ),
        with_auth(
            "https://api.example.com",
            serde_json::json!({"type": "oauth2_client_credentials"}),
            &[],
        ),
        with_auth(
            "https://api.example.com",
            serde_json::json!({"type": "aws_sigv4", "region": "us-east-1", "service": "s3"}),
            &[],
        ),
    ] {
        assert!(m.plan().is_none(), "{:?} {:?}", m.spec, m.auth);
    }
}

/// A header map of `pairs`, in order (a repeated name keeps every value).
fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(k, v)| (k.parse::<HeaderName>().unwrap(), v.parse().unwrap()))
        .collect()
}

/// The names in `m`, sorted.
fn sorted_names(m: &HeaderMap) -> Vec<&str> {
    let mut names: Vec<&str> = m.keys().map(HeaderName::as_str).collect();
    names.sort_unstable();
    names
}

#[test]
fn hop_by_hop_and_patchbay_headers_are_dropped() {
    let h = header_map(&[
        ("authorization", "Bearer pb_secret"),
        ("patchbay-connection", "con_1"),
        ("patchbay-caller", "wf-1"),
        ("connection", "close, x-private"),
        ("x-private", "1"),
        ("keep-alive", "timeout=5"),
        ("te", "trailers"),
        ("host", "proxy.local"),
        ("accept", "application/json"),
        ("x-multi", "a"),
        ("x-multi", "b"),
    ]);
    let out = forwardable(h);
    assert_eq!(sorted_names(&out), ["accept", "x-multi"]);
    assert_eq!(out.get_all("x-multi").iter().count(), 2);
    // Nothing to keep: the map comes back empty, and takes new headers.
    let h = header_map(&[
        ("host", "proxy.local"),
        ("authorization", "Bearer pb_secret"),
        ("patchbay-connection", "con_1"),
    ]);
    let mut out = forwardable(h);
    assert!(out.is_empty());
    out.insert("authorization", "Bearer upstream".parse().unwrap());
    assert_eq!(out.len(), 1);
    assert_eq!(out["authorization"], "Bearer upstream");
}

#[test]
fn headers_that_mostly_stay_keep_every_value_in_order() {
    // Few names go: they are removed in place (most going is the test above).
    let h = header_map(&[
        ("accept", "application/json"),
        ("x-multi", "a"),
        ("x-multi", "b"),
        ("host", "proxy.local"),
        ("user-agent", "client/1"),
        ("x-request-id", "r-1"),
    ]);
    let out = strip(h, |n| n == header::USER_AGENT);
    assert_eq!(
        sorted_names(&out),
        ["accept", "user-agent", "x-multi", "x-request-id"]
    );
    let multi: Vec<_> = out.get_all("x-multi").iter().collect();
    assert_eq!(multi, ["a", "b"]);
    // A name the Connection header lists goes, whatever its case there.
    let h = header_map(&[
        ("connection", "X-Trace , keep-alive"),
        ("x-trace", "1"),
        ("content-type", "text/plain"),
        ("content-length", "4"),
        ("date", "today"),
    ]);
    let out = strip(h, |n| n == header::CONTENT_LENGTH);
    assert_eq!(
        sorted_names(&out),
        ["content-length", "content-type", "date"]
    );
    // Listing only the usual options drops no other name; their own headers still go.
    let h = header_map(&[
        ("connection", "Keep-Alive, CLOSE"),
        ("keep-alive", "timeout=5"),
        ("close", "1"),
        ("x-trace", "1"),
        ("content-type", "text/plain"),
        ("date", "today"),
        ("server", "upstream"),
    ]);
    let out = strip(h, |_| false);
    assert_eq!(
        sorted_names(&out),
        ["content-type", "date", "server", "x-trace"]
    );
}

#[test]
fn retry_after_reads_seconds_and_dates() {
    let mut h = HeaderMap::new();
    h.insert(header::RETRY_AFTER, "3".parse().unwrap());
    assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
    let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(20));
    h.insert(header::RETRY_AFTER, soon.parse().unwrap());
    let d = retry_after(&h).unwrap();
    assert!(
        d > Duration::from_secs(15) && d <= Duration::from_secs(20),
        "{d:?}"
    );
    h.insert(header::RETRY_AFTER, "soon".parse().unwrap());
    assert_eq!(retry_after(&h), None);
}
