//! Organization boundaries and roles: another organization's objects answer 404 on every
//! id-bearing route; viewers cannot read credentials, executors can.

use patchbay_domain::Role;
use patchbay_domain::api::{CreateConnection, CreateProject, PutSecret};
use reqwest::Method;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, err_status, every_kind};

async fn other_orgs_objects_are_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let a = app.org("alpha").await;
    let b = app.org("bravo").await;
    let project = a
        .create_project(&CreateProject {
            name: "payments".into(),
            description: None,
        })
        .await
        .unwrap();
    a.put_secret(
        "alpha_key",
        &PutSecret {
            value: "alpha-secret-value".into(),
            description: None,
            projects: None,
        },
    )
    .await
    .unwrap();
    let (spec, _) = every_kind("iso").remove(0);
    let conn = a
        .create_connection(&serde_json::from_value::<CreateConnection>(spec).unwrap())
        .await
        .unwrap();
    let token = a
        .create_token(&patchbay_domain::api::CreateToken {
            name: "ci".into(),
            role: Role::Executor,
            project: None,
        })
        .await
        .unwrap();
    let before = serde_json::to_value(a.get_connection(conn.id.as_str()).await.unwrap()).unwrap();

    let c = conn.id.as_str();
    let p = project.id.to_string();
    let t = token.token.id.to_string();
    let patch = json!({"name": "hijacked"});
    let routes: Vec<(Method, String, Option<serde_json::Value>)> = vec![
        (Method::GET, format!("/v1/connections/{c}"), None),
        (
            Method::PATCH,
            format!("/v1/connections/{c}"),
            Some(patch.clone()),
        ),
        (Method::DELETE, format!("/v1/connections/{c}"), None),
        (
            Method::GET,
            format!("/v1/connections/{c}/credentials"),
            None,
        ),
        (Method::GET, format!("/v1/projects/{p}"), None),
        (
            Method::PATCH,
            format!("/v1/projects/{p}"),
            Some(patch.clone()),
        ),
        (Method::DELETE, format!("/v1/projects/{p}"), None),
        (Method::DELETE, format!("/v1/tokens/{t}"), None),
        (Method::DELETE, "/v1/secrets/alpha_key".to_owned(), None),
    ];
    let b_executor = app.token(&b, Role::Executor, None).await;
    for client in [&b, &b_executor] {
        for (method, path, body) in &routes {
            let r = client
                .raw(method.clone(), path, body.as_ref(), &[])
                .await
                .unwrap();
            assert_eq!(
                r.status.as_u16(),
                404,
                "{method} {path} answered {} for another org",
                r.status
            );
            assert_eq!(r.headers["content-type"], "application/problem+json");
            let text = r.text();
            assert!(
                !text.contains("alpha"),
                "{method} {path} revealed something: {text}"
            );
        }
    }
    // B's lists hold none of A's objects.
    assert!(b.list_connections("").await.unwrap().items.is_empty());
    assert!(b.list_secrets().await.unwrap().is_empty());
    assert!(
        b.list_projects()
            .await
            .unwrap()
            .iter()
            .all(|x| x.name == "default")
    );
    assert!(
        b.list_connections(&format!("project={p}"))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // ...and A's objects are untouched.
    let after = serde_json::to_value(a.get_connection(conn.id.as_str()).await.unwrap()).unwrap();
    assert_eq!(before, after);
    assert_eq!(
        a.get_project(project.id.as_str()).await.unwrap().name,
        "payments"
    );
    assert_eq!(a.list_secrets().await.unwrap().len(), 1);
    assert_eq!(a.list_tokens().await.unwrap().len(), 2);
    // Organizations are the operator's business alone.
    assert_eq!(err_status(b.create_org("charlie").await).0, 403);
    assert_eq!(err_status(b.list_orgs().await).0, 403);
}

async fn roles_limit_what_tokens_do(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (spec, secrets) = every_kind("roles").remove(0);
    let conn = app
        .admin
        .create_connection(&serde_json::from_value::<CreateConnection>(spec.clone()).unwrap())
        .await
        .unwrap();
    let id = conn.id.as_str();
    let viewer = app.token(&app.admin, Role::Viewer, None).await;
    let executor = app.token(&app.admin, Role::Executor, None).await;
    let member = app.token(&app.admin, Role::Member, None).await;

    assert_eq!(viewer.get_connection(id).await.unwrap().id, conn.id);
    assert_eq!(
        err_status(viewer.credentials(id).await),
        (403, "forbidden".into())
    );
    assert_eq!(err_status(member.credentials(id).await).0, 403);
    assert_eq!(
        executor.credentials(id).await.unwrap().secrets["token"],
        secrets[0]
    );

    let mut other = spec.clone();
    other["name"] = json!("from-viewer");
    let body: CreateConnection = serde_json::from_value(other).unwrap();
    assert_eq!(err_status(viewer.create_connection(&body).await).0, 403);
    assert_eq!(err_status(executor.create_connection(&body).await).0, 403);
    assert!(member.create_connection(&body).await.is_ok());
    assert_eq!(err_status(member.list_tokens().await).0, 403);
    assert_eq!(err_status(viewer.audit("").await).0, 403);
    assert_eq!(
        err_status(
            viewer
                .put_secret(
                    "x",
                    &PutSecret {
                        value: "v".into(),
                        description: None,
                        projects: None,
                    }
                )
                .await
        )
        .0,
        403
    );

    // A project-scoped token sees its project only.
    let project = app
        .admin
        .create_project(&CreateProject {
            name: "scoped".into(),
            description: None,
        })
        .await
        .unwrap();
    let scoped = app
        .token(&app.admin, Role::Admin, Some(project.id.clone()))
        .await;
    assert_eq!(err_status(scoped.get_connection(id).await).0, 404);
    assert!(scoped.list_connections("").await.unwrap().items.is_empty());
    let mut inside = spec.clone();
    inside["name"] = json!("inside");
    let made = scoped
        .create_connection(&serde_json::from_value(inside).unwrap())
        .await
        .unwrap();
    assert_eq!(made.project, project.id);
    assert_eq!(scoped.list_connections("").await.unwrap().items.len(), 1);
    assert_eq!(scoped.list_projects().await.unwrap().len(), 1);
    // Revoked tokens stop working at once.
    let me = viewer.me().await.unwrap();
    app.admin.revoke_token(me.token.as_str()).await.unwrap();
    assert_eq!(
        err_status(viewer.me().await),
        (401, "unauthenticated".into())
    );
    assert_eq!(err_status(app.anonymous().me().await).0, 401);
}

both_backends!(other_orgs_objects_are_not_found, roles_limit_what_tokens_do);
