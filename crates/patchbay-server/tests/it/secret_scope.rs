//! Organization secrets stay in their scope: one shared with projects is usable only from
//! connections in those projects, one without a list only by unscoped tokens, and a
//! project-scoped token cannot tell a secret shared elsewhere from one that does not exist.

use patchbay_domain::Role;
use patchbay_domain::api::{CreateProject, PutSecret};
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, allow_loopback};
use crate::upstream::Upstream;

fn put(value: &str, projects: Option<Option<Vec<String>>>) -> PutSecret {
    PutSecret {
        value: value.into(),
        description: None,
        projects,
    }
}

/// The status and whole message of a refused call.
fn refusal<T: std::fmt::Debug>(r: Result<T, patchbay_client::ClientError>) -> (u16, String) {
    match r {
        Err(e @ patchbay_client::ClientError::Api { status, .. }) => (status, e.to_string()),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn body(v: Value) -> patchbay_domain::api::CreateConnection {
    serde_json::from_value(v).unwrap()
}

async fn secrets_are_used_only_where_they_are_shared(backend: Backend) {
    let app = TestApp::spawn_with(backend, Some(allow_loopback())).await;
    let up = Upstream::start().await;
    let project = |name: &str| {
        let req = CreateProject {
            name: name.into(),
            description: None,
        };
        let admin = app.admin.clone();
        async move { admin.create_project(&req).await.unwrap() }
    };
    let a = project("alpha").await;
    let b = project("beta").await;
    app.admin
        .put_secret(
            "a_key",
            &put("alpha-secret-1", Some(Some(vec!["alpha".into()]))),
        )
        .await
        .unwrap();
    app.admin
        .put_secret(
            "b_key",
            &put("beta-secret-22", Some(Some(vec![b.id.to_string()]))),
        )
        .await
        .unwrap();
    app.admin
        .put_secret("org_key", &put("org-secret-333", None))
        .await
        .unwrap();
    let listed = app.admin.list_secrets().await.unwrap();
    let a_meta = listed.iter().find(|s| s.name == "a_key").unwrap();
    assert_eq!(a_meta.projects, Some(vec![a.id.to_string()]));

    // A token scoped to alpha sees and uses only what is shared with alpha.
    let scoped = app
        .token(&app.admin, Role::Member, Some(a.id.clone()))
        .await;
    let names: Vec<String> = scoped
        .list_secrets()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["a_key"]);
    let with_ref = |name: &str, secret: &str| {
        body(
            json!({"name": name, "kind": "http", "auth": {"type": "bearer"},
            "config": {"base_url": up.url}, "secrets": {"token": {"ref": secret}}}),
        )
    };
    let ok = scoped
        .create_connection(&with_ref("uses-a", "a_key"))
        .await
        .unwrap();
    let (status, missing) = refusal(scoped.create_connection(&with_ref("c1", "nope")).await);
    assert_eq!(status, 422);
    for other in ["b_key", "org_key"] {
        let (status, detail) = refusal(scoped.create_connection(&with_ref("c2", other)).await);
        assert_eq!(status, 422, "{detail}");
        assert_eq!(
            detail.replace(other, "nope"),
            missing,
            "a secret shared elsewhere reads exactly like a missing one"
        );
    }
    // The action's auth override is held to the same rule.
    let override_with = |secret: &str| {
        serde_json::from_value(json!({"connection": ok.id, "path": "/echo",
            "auth": {"type": "bearer", "secret_ref": secret}}))
        .unwrap()
    };
    let (status, missing) = refusal(scoped.http_action(&override_with("nope")).await);
    assert_eq!(status, 422);
    for other in ["b_key", "org_key"] {
        let (status, detail) = refusal(scoped.http_action(&override_with(other)).await);
        assert_eq!(
            (status, detail.replace(other, "nope")),
            (422, missing.clone())
        );
    }
    let before = up.seen().len();
    scoped.http_action(&override_with("a_key")).await.unwrap();
    assert_eq!(up.seen().len(), before + 1);
    assert_eq!(
        up.last().header("authorization"),
        Some("Bearer alpha-secret-1")
    );

    // An unscoped member uses organization-wide secrets anywhere, project ones in their
    // projects only.
    let member = app.token(&app.admin, Role::Member, None).await;
    let mut in_alpha = with_ref("org-in-alpha", "org_key");
    in_alpha.project = Some("alpha".into());
    member.create_connection(&in_alpha).await.unwrap();
    let mut b_in_alpha = with_ref("b-in-alpha", "b_key");
    b_in_alpha.project = Some("alpha".into());
    let (status, detail) = refusal(member.create_connection(&b_in_alpha).await);
    assert_eq!(status, 422);
    assert!(detail.contains("secrets.token"), "{detail}");
    let mut b_in_beta = with_ref("b-in-beta", "b_key");
    b_in_beta.project = Some("beta".into());
    member.create_connection(&b_in_beta).await.unwrap();

    // Narrowing a secret stops its use where it is no longer shared, without sending it.
    app.admin
        .put_secret(
            "a_key",
            &put("alpha-secret-1", Some(Some(vec!["beta".into()]))),
        )
        .await
        .unwrap();
    let before = up.seen().len();
    let act = serde_json::from_value(json!({"connection": ok.id, "path": "/echo"})).unwrap();
    let (status, detail) = refusal(app.admin.http_action(&act).await);
    assert_eq!(status, 403, "{detail}");
    assert_eq!(up.seen().len(), before, "nothing was sent");
}

async fn a_secrets_projects_are_checked_and_kept(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.admin
        .create_project(&CreateProject {
            name: "alpha".into(),
            description: None,
        })
        .await
        .unwrap();
    // A project that does not exist is not found, like any object a body names; an empty
    // list is invalid.
    for (projects, status, says) in [
        (
            Some(Some(vec!["nowhere".to_owned()])),
            404,
            "project not found",
        ),
        (Some(Some(vec![])), 422, "projects"),
    ] {
        let (got, detail) = refusal(app.admin.put_secret("k", &put("v", projects)).await);
        assert_eq!(got, status, "{detail}");
        assert!(detail.contains(says), "{detail}");
    }
    assert!(
        app.admin.list_secrets().await.unwrap().is_empty(),
        "nothing was stored"
    );
    let shared = Some(Some(vec!["alpha".to_owned()]));
    let m = app.admin.put_secret("k", &put("v1", shared)).await.unwrap();
    assert_eq!(m.projects.as_ref().map(Vec::len), Some(1));
    // A new value without `projects` keeps the sharing; `null` makes it organization-wide.
    let m = app.admin.put_secret("k", &put("v2", None)).await.unwrap();
    assert_eq!(m.projects.as_ref().map(Vec::len), Some(1));
    let m = app
        .admin
        .put_secret("k", &put("v3", Some(None)))
        .await
        .unwrap();
    assert_eq!(m.projects, None);
    // Project-scoped tokens still cannot write organization secrets.
    let a = app.admin.list_projects().await.unwrap();
    let alpha = a.iter().find(|p| p.name == "alpha").unwrap();
    let scoped = app
        .token(&app.admin, Role::Admin, Some(alpha.id.clone()))
        .await;
    let (status, _) = refusal(scoped.put_secret("k", &put("v4", None)).await);
    assert_eq!(status, 403);
}

both_backends!(
    secrets_are_used_only_where_they_are_shared,
    a_secrets_projects_are_checked_and_kept,
);
