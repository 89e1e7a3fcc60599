use super::*;

fn builtin() -> Catalog {
    Catalog::builtin().expect("the built-in catalog parses")
}

#[test]
fn every_seed_service_is_in_the_catalog() {
    let c = builtin();
    assert!(c.len() >= 40, "{} providers", c.len());
    for key in [
        "slack",
        "google-gmail",
        "google-drive",
        "google-sheets",
        "google-calendar",
        "microsoft-graph",
        "github",
        "notion",
        "quickbooks",
        "clio",
        "bexio",
        "salesforce",
        "hubspot",
        "stripe",
        "twilio",
        "openai",
        "anthropic",
        "google-ai",
        "cohere",
        "aws-s3",
        "sendgrid",
    ] {
        assert!(c.get(key).is_some(), "{key} is missing");
    }
}

#[test]
fn provider_quirks_are_recorded() {
    let c = builtin();
    let gmail = c.get("google-gmail").unwrap();
    assert_eq!(
        gmail
            .authorization_params
            .get("access_type")
            .map(String::as_str),
        Some("offline")
    );
    assert_eq!(
        gmail.authorization_params.get("prompt").map(String::as_str),
        Some("consent")
    );
    // The merge key copies Google's endpoints into every Google entry.
    let sheets = c.get("google-sheets").unwrap();
    assert_eq!(sheets.token_url, gmail.token_url);
    assert!(sheets.operations.contains_key("append_row"));
    assert_eq!(
        c.get("notion").unwrap().token_request_auth_method,
        "client_secret_basic"
    );
    let slack = c.get("slack").unwrap();
    assert_eq!(
        slack.token_response.as_ref().unwrap().ok_field.as_deref(),
        Some("ok")
    );
    assert_eq!(slack.scope_separator, ",");
    assert!(slack.operations.contains_key("send_message"));
    assert_eq!(
        c.get("quickbooks").unwrap().callback_params,
        vec!["realmId"]
    );
    assert!(
        c.get("salesforce")
            .unwrap()
            .base_url
            .as_deref()
            .unwrap()
            .starts_with("${token_response.instance_url}")
    );
    assert!(c.get("salesforce").unwrap().static_base_url().is_none());
    assert_eq!(
        c.get("openai").unwrap().static_base_url(),
        Some("https://api.openai.com/v1")
    );
    assert!(c.get("openai").unwrap().operations.contains_key("chat"));
    assert!(c.get("anthropic").unwrap().operations.contains_key("chat"));
    assert!(
        c.get("github")
            .unwrap()
            .operations
            .contains_key("create_issue")
    );
    assert!(
        c.get("microsoft-graph")
            .unwrap()
            .operations
            .contains_key("create_calendar_event")
    );
}

#[test]
fn operator_files_add_and_replace_entries() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("acme.yaml"),
        "- key: acme\n  display_name: Acme\n  auth_modes: [bearer]\n  base_url: https://api.acme.test\n\
         - key: slack\n  display_name: Slack (ours)\n  auth_modes: [bearer]\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let c = Catalog::with_dir(dir.path()).unwrap();
    assert_eq!(
        c.get("acme").unwrap().static_base_url(),
        Some("https://api.acme.test")
    );
    assert_eq!(c.get("slack").unwrap().display_name, "Slack (ours)");
    assert_eq!(c.len(), builtin().len() + 1);
}

#[test]
fn broken_entries_are_refused_with_their_source() {
    let dir = tempfile::tempdir().unwrap();
    for (file, text, expected) in [
        (
            "a.yaml",
            "- key: x\n  display_name: X\n  auth_modes: [telepathy]\n",
            "unknown auth mode",
        ),
        (
            "b.yaml",
            "- key: x\n  display_name: X\n  auth_modes: [oauth2]\n",
            "token_url",
        ),
        (
            "c.yaml",
            "- key: x\n  display_name: X\n  auth_modes: [bearer]\n  base_url: http://plain.example\n",
            "https",
        ),
        (
            "d.yaml",
            "- key: x\n  display_name: X\n  auth_modes: [bearer]\n  colour: red\n",
            "unknown field",
        ),
        (
            "e.yaml",
            "- key: X Y\n  display_name: X\n  auth_modes: [bearer]\n",
            "key",
        ),
        (
            "f.yaml",
            "- key: x\n  display_name: X\n  docs_url: javascript:alert(1)\n  auth_modes: [bearer]\n",
            "docs_url must be an https URL",
        ),
    ] {
        let sub = dir.path().join(file.trim_end_matches(".yaml"));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(file), text).unwrap();
        let err = Catalog::with_dir(&sub).unwrap_err().to_string();
        assert!(
            err.contains(expected) && err.contains(file),
            "{file}: {err}"
        );
    }
}
