//! Object storage and AWS Signature Version 4 against a real S3-compatible server (moto, with
//! authentication enforced: a wrong secret or a tampered signature is refused by the server).

use patchbay_domain::actions::{StorageAction, StorageActionResult};
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, allow_loopback, err_status, error_fields};
use crate::peers;

fn action(v: Value) -> StorageAction {
    serde_json::from_value(v).unwrap()
}

async fn storage(app: &TestApp, v: Value) -> StorageActionResult {
    app.admin.storage_action(&action(v)).await.unwrap()
}

fn keys(r: &StorageActionResult) -> Vec<String> {
    r.objects
        .as_ref()
        .unwrap()
        .iter()
        .map(|o| o.key.clone())
        .collect()
}

async fn a_bucket_is_used_under_its_prefix_and_signed_urls_work(backend: Backend) {
    let uploads = tempfile::tempdir().unwrap();
    let allowed = uploads.path().to_path_buf();
    let app = TestApp::spawn_with(
        backend,
        Some(std::sync::Arc::new(move |s| {
            s.egress.allow_net = vec!["127.0.0.0/8".parse().unwrap()];
            s.egress.allow_upload_dirs = vec![allowed.clone()];
        })),
    )
    .await;
    let s3 = peers::S3Server::start(&["pb-test"]);
    let (key_id, secret) = (s3.access_key_id.clone(), s3.secret_access_key.clone());
    let endpoint = s3.endpoint();
    let conn = |name: &str, prefix: Option<&str>, secret: &str| {
        json!({"name": name, "kind": "storage", "provider": "minio",
            "config": {"bucket": "pb-test", "endpoint": endpoint, "prefix": prefix},
            "secrets": {"access_key_id": key_id, "secret_access_key": secret}})
    };
    let a = app
        .connection(conn("tenant-a", Some("tenant-a"), &secret))
        .await;
    let t = app.admin.test_connection(&a).await.unwrap();
    assert!(t.success, "{t:?}");
    assert!(t.message.contains("pb-test"), "{}", t.message);

    let put = storage(
        &app,
        json!({"connection": a, "op": "put", "key": "docs/hello.txt",
        "body": "hello world", "content_type": "text/plain", "acl": "private",
        "metadata": {"owner": "ops"}}),
    )
    .await;
    assert_eq!(put.size, Some(11));
    assert!(
        put.etag
            .as_deref()
            .is_some_and(|e| e.contains("5eb63bbbe01eeed093cb22bb8f5acdc3"))
    );
    let bin: Vec<u8> = (0..=255u8).collect();
    storage(
        &app,
        json!({"connection": a, "op": "put", "key": "bin/all.bin",
        "encoding": "base64", "body": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bin)}),
    )
    .await;

    let got = app.admin.storage_get(&a, "docs/hello.txt").await.unwrap();
    assert_eq!(got.status, 200);
    assert_eq!(got.body, b"hello world");
    assert_eq!(got.headers["content-type"], "text/plain");
    assert_eq!(got.headers["x-amz-meta-owner"], "ops");
    let got = app.admin.storage_get(&a, "bin/all.bin").await.unwrap();
    assert_eq!(got.body, bin, "bytes come back as they were put");

    // Listings: relative to the prefix, grouped by a delimiter, paged with a cursor.
    let all = storage(&app, json!({"connection": a, "op": "list"})).await;
    assert_eq!(keys(&all), ["bin/all.bin", "docs/hello.txt"]);
    let folders = storage(
        &app,
        json!({"connection": a, "op": "list", "delimiter": "/"}),
    )
    .await;
    assert_eq!(
        folders.prefixes.as_deref(),
        Some(&["bin/".to_owned(), "docs/".to_owned()][..])
    );
    let first = storage(&app, json!({"connection": a, "op": "list", "limit": 1})).await;
    assert_eq!(keys(&first), ["bin/all.bin"]);
    let cursor = first.next_cursor.expect("a second page");
    let second = storage(
        &app,
        json!({"connection": a, "op": "list", "limit": 1, "cursor": cursor}),
    )
    .await;
    assert_eq!(keys(&second), ["docs/hello.txt"]);
    assert_eq!(second.next_cursor, None);
    let docs = storage(
        &app,
        json!({"connection": a, "op": "list", "prefix": "docs/"}),
    )
    .await;
    assert_eq!(keys(&docs), ["docs/hello.txt"]);

    // Confinement: keys never leave the prefix; another prefix sees none of them.
    for bad in [
        "../tenant-b/x",
        "/tenant-a/docs/hello.txt",
        "docs/../../x",
        "docs//x",
    ] {
        let r = app.admin.storage_get(&a, bad).await.unwrap();
        assert_eq!(r.status, 422, "{bad}");
        assert_eq!(error_fields(&r.json()), ["key"], "{bad}");
    }
    let (status, _) = err_status(
        app.admin
            .storage_action(&action(
                json!({"connection": a, "op": "list", "prefix": "../"}),
            ))
            .await,
    );
    assert_eq!(status, 422);
    let b = app
        .connection(conn("tenant-b", Some("tenant-b/"), &secret))
        .await;
    let none = storage(&app, json!({"connection": b, "op": "list"})).await;
    assert_eq!(keys(&none), Vec::<String>::new());
    let (status, _) = err_status(
        app.admin
            .storage_action(&action(
                json!({"connection": b, "op": "get", "key": "docs/hello.txt"}),
            ))
            .await,
    );
    assert_eq!(status, 404, "tenant-b's docs/hello.txt does not exist");
    let whole = app.connection(conn("whole", None, &secret)).await;
    let stored = storage(&app, json!({"connection": whole, "op": "list"})).await;
    assert_eq!(
        keys(&stored),
        ["tenant-a/bin/all.bin", "tenant-a/docs/hello.txt"],
        "the objects are stored under the prefix"
    );

    // Fields an operation does not take, and bad ones, are named.
    let r = app
        .admin
        .raw(
            Method::POST,
            "/v1/actions/storage",
            Some(&json!({"connection": a, "op": "get", "key": "x", "body": "y", "limit": 3})),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 422);
    assert_eq!(error_fields(&r.json()), ["body", "limit"]);
    for (field, body) in [
        ("acl", json!({"acl": "everyone"})),
        ("metadata", json!({"metadata": {"bad name": "v"}})),
        ("body", json!({"body": "***", "encoding": "base64"})),
    ] {
        let mut v = json!({"connection": a, "op": "put", "key": "x"});
        v.as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        let r = app
            .admin
            .raw(Method::POST, "/v1/actions/storage", Some(&v), &[])
            .await
            .unwrap();
        assert_eq!(r.status, 422, "{field}");
        assert_eq!(error_fields(&r.json()), [field]);
    }

    // Presigned URLs work without Patchbay, until tampered with.
    let url = storage(
        &app,
        json!({"connection": a, "op": "presign", "key": "docs/hello.txt",
        "expires_in": 60}),
    )
    .await;
    assert_eq!(url.method.as_deref(), Some("GET"));
    let url = url.url.unwrap();
    assert!(url.contains("/pb-test/tenant-a/docs/hello.txt?"), "{url}");
    assert!(
        !url.contains(&secret),
        "a presigned URL never carries the secret"
    );
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = plain.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "hello world");
    let tampered = url.replace("tenant-a/docs/hello.txt", "tenant-a/bin/all.bin");
    assert_eq!(plain.get(&tampered).send().await.unwrap().status(), 403);
    let put_url = storage(
        &app,
        json!({"connection": a, "op": "presign", "key": "up/by-url.txt",
        "method": "put"}),
    )
    .await
    .url
    .unwrap();
    let r = plain.put(&put_url).body("uploaded").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let got = app.admin.storage_get(&a, "up/by-url.txt").await.unwrap();
    assert_eq!(got.body, b"uploaded");
    for expires in [0, 604_801] {
        let r = app
            .admin
            .raw(
                Method::POST,
                "/v1/actions/storage",
                Some(&json!({"connection": a,
                "op": "presign", "key": "x", "expires_in": expires})),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(r.status, 422, "{expires}");
        assert_eq!(error_fields(&r.json()), ["expires_in"]);
    }

    // Delete, then the object is gone.
    let gone = storage(
        &app,
        json!({"connection": a, "op": "delete", "key": "docs/hello.txt"}),
    )
    .await;
    assert_eq!(gone.deleted, Some(true));
    let r = app.admin.storage_get(&a, "docs/hello.txt").await.unwrap();
    assert_eq!(r.status, 404);

    // A wrong secret: the server refuses the signature, and Patchbay says it is the credentials.
    let wrong = app.connection(conn("wrong", None, "not-the-secret")).await;
    let t = app.admin.test_connection(&wrong).await.unwrap();
    assert!(!t.success);
    assert_eq!(t.error_kind.map(|k| k.as_str()), Some("auth"), "{t:?}");
    assert_eq!(t.status_code, Some(403));
    let r = app
        .admin
        .raw(
            Method::POST,
            "/v1/actions/storage",
            Some(&json!({"connection": wrong, "op": "put", "key": "x", "body": "y"})),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["code"], "upstream_auth");
    assert!(!String::from_utf8_lossy(&r.body).contains("not-the-secret"));

    // The seeds' s3-upload node: the content from the context, or a file the operator allows.
    let node = |config: Value| {
        json!({"type": "s3-upload", "config": config,
            "context": {"month": "2026-04", "text": "invoice body"}})
    };
    let r = app
        .admin
        .run_node(&node(json!({"connectionId": a, "bucket": "pb-test",
            "key": "invoices/${month}/invoice-001.txt", "body": "{{text}}", "acl": "private"})))
        .await
        .unwrap();
    assert_eq!(
        r.outputs["output"]["key"],
        "invoices/2026-04/invoice-001.txt"
    );
    let got = app
        .admin
        .storage_get(&a, "invoices/2026-04/invoice-001.txt")
        .await
        .unwrap();
    assert_eq!(got.body, b"invoice body");
    let pdf = uploads.path().join("invoice.pdf");
    std::fs::write(&pdf, b"%PDF-1.7 not really").unwrap();
    app.admin
        .run_node(&node(
            json!({"connectionId": a, "key": "invoices/invoice.pdf",
            "file_path": pdf, "contentType": "application/pdf"}),
        ))
        .await
        .unwrap();
    let got = app
        .admin
        .storage_get(&a, "invoices/invoice.pdf")
        .await
        .unwrap();
    assert_eq!(got.body, b"%PDF-1.7 not really");
    assert_eq!(got.headers["content-type"], "application/pdf");
    for (config, field) in [
        (
            json!({"connectionId": a, "key": "x", "file_path": "/etc/hostname"}),
            "config.file_path",
        ),
        (
            json!({"connectionId": a, "key": "x", "file_path": "relative.txt"}),
            "config.file_path",
        ),
        (
            json!({"connectionId": a, "key": "x", "bucket": "other-bucket", "body": "b"}),
            "config.bucket",
        ),
    ] {
        let r = app
            .admin
            .raw(Method::POST, "/v1/nodes/run", Some(&node(config)), &[])
            .await
            .unwrap();
        assert_eq!(r.status, 422, "{field}");
        assert_eq!(error_fields(&r.json()), [field]);
    }

    // Every action is audited, without the content.
    let audit = app
        .admin
        .raw(
            Method::GET,
            "/v1/audit?action=action.storage&limit=100",
            None,
            &[],
        )
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&audit.body);
    assert!(text.contains("docs/hello.txt"), "{text}");
    assert!(!text.contains("hello world"), "no content in the audit log");
}

async fn http_connections_sign_requests_with_sigv4(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let s3 = peers::S3Server::start(&["signed"]);
    let (key_id, secret) = (s3.access_key_id.clone(), s3.secret_access_key.clone());
    let conn = |name: &str, secret: &str| {
        json!({"name": name, "kind": "http",
            "auth": {"type": "aws_sigv4", "region": "us-east-1", "service": "s3"},
            "config": {"base_url": format!("http://127.0.0.1:{}", s3.port)},
            "secrets": {"access_key_id": key_id, "secret_access_key": secret}})
    };
    let id = app.connection(conn("s3-api", &secret)).await;
    let t = app.admin.test_connection(&id).await.unwrap();
    assert!(t.success, "{t:?}");

    // A small body is hashed; a large one is streamed and signed UNSIGNED-PAYLOAD.
    let small = app
        .admin
        .proxy(
            &id,
            Method::PUT,
            "/signed/small.txt",
            &[("content-type".into(), "text/plain".into())],
            Some(b"small body".to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(
        small.status,
        200,
        "{}",
        String::from_utf8_lossy(&small.body)
    );
    let large: Vec<u8> = (0..600 * 1024).map(|i| (i % 251) as u8).collect();
    let streamed = app
        .admin
        .proxy(
            &id,
            Method::PUT,
            "/signed/large.bin",
            &[],
            Some(large.clone()),
        )
        .await
        .unwrap();
    assert_eq!(
        streamed.status,
        200,
        "{}",
        String::from_utf8_lossy(&streamed.body)
    );
    let listed = app
        .admin
        .proxy(&id, Method::GET, "/signed?list-type=2&prefix=", &[], None)
        .await
        .unwrap();
    assert_eq!(listed.status, 200);
    let xml = String::from_utf8_lossy(&listed.body);
    assert!(
        xml.contains("<Key>large.bin</Key>") && xml.contains("<Key>small.txt</Key>"),
        "{xml}"
    );
    let back = app
        .admin
        .proxy(&id, Method::GET, "/signed/large.bin", &[], None)
        .await
        .unwrap();
    assert_eq!(back.body, large);
    // Keys with characters a URL encodes are signed as sent.
    let odd = app
        .admin
        .proxy(
            &id,
            Method::PUT,
            "/signed/a%20b%2Bc.txt",
            &[],
            Some(b"odd".to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(odd.status, 200, "{}", String::from_utf8_lossy(&odd.body));

    // An HTTP action signs too.
    let r = app
        .admin
        .http_action(
            &serde_json::from_value(json!({"connection": id, "method": "GET",
            "path": "/signed/small.txt"}))
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "small body");

    // The server itself refuses a wrong secret.
    let wrong = app.connection(conn("s3-wrong", "wrong-secret")).await;
    let t = app.admin.test_connection(&wrong).await.unwrap();
    assert_eq!(t.error_kind.map(|k| k.as_str()), Some("auth"), "{t:?}");
    let refused = app
        .admin
        .proxy(&wrong, Method::GET, "/signed/small.txt", &[], None)
        .await
        .unwrap();
    assert_eq!(refused.status, 403);
    assert!(String::from_utf8_lossy(&refused.body).contains("SignatureDoesNotMatch"));
}

both_backends!(
    a_bucket_is_used_under_its_prefix_and_signed_urls_work,
    http_connections_sign_requests_with_sigv4
);
