use std::collections::BTreeMap;
use std::path::Path;

use super::*;

fn dir() -> &'static Path {
    Path::new("/tmp/pb-settings-test")
}

/// The settings as text (secrets' values included), to compare whole settings.
fn shown(s: &Settings) -> String {
    use secrecy::ExposeSecret as _;
    let secret = |v: &Option<SecretString>| v.as_ref().map(|v| v.expose_secret().to_owned());
    format!(
        "{s:?} key={:?} hook={:?} metrics={:?}",
        secret(&s.vault.master_key),
        secret(&s.workers.event_webhook_secret),
        secret(&s.metrics.token)
    )
}

fn defaults() -> Settings {
    Layers::defaults().settings(dir()).unwrap()
}

/// The example value of `d` written to a temporary file, for secrets given by file.
fn secret_file(d: &Def) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), format!("{}\n", flag_text(d).join(","))).unwrap();
    f
}

/// A flag's text for `d`'s example.
fn flag_text(d: &Def) -> Vec<String> {
    match toml_value(d.example).unwrap() {
        toml::Value::String(s) => vec![s],
        toml::Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().unwrap().to_owned())
            .collect(),
        other => vec![other.to_string()],
    }
}

#[test]
fn every_setting_can_be_set_by_file_by_environment_and_by_flag() {
    let base = shown(&defaults());
    for d in DEFS {
        let file_dir = tempfile::tempdir().unwrap();
        let section = d.key.split_once('.').unwrap().0;
        let name = &d.key[section.len() + 1..];

        // The file, with the value itself.
        let mut by_file = Layers::defaults();
        by_file
            .file_text(
                &file_dir.path().join("patchbay.toml"),
                &format!("[{section}]\n{name} = {}\n", d.example),
            )
            .unwrap_or_else(|e| panic!("{}: {e}", d.key));
        let from_file = shown(&by_file.settings(dir()).unwrap());
        assert_ne!(from_file, base, "{}: the file did not change it", d.key);

        // The environment.
        let held = secret_file(d);
        let env: BTreeMap<String, String> = [(d.env.to_owned(), flag_text(d).join(","))].into();
        let mut by_env = Layers::defaults();
        by_env.env(|k| env.get(k).cloned()).unwrap();
        assert_eq!(by_env.source(d.key), Some(&Source::Env(d.env.into())));
        assert_eq!(
            shown(&by_env.settings(dir()).unwrap()),
            from_file,
            "{}: the environment and the file disagree",
            d.key
        );

        // The flag: a secret's names a file holding it.
        let mut by_flag = Layers::defaults();
        let text = if d.secret {
            vec![held.path().display().to_string()]
        } else {
            flag_text(d)
        };
        by_flag.set_flag_text(d.key, &text).unwrap();
        let from_flag = shown(&by_flag.settings(dir()).unwrap());
        if d.key == "vault.master_key" {
            let s = by_flag.settings(dir()).unwrap();
            assert_eq!(s.vault.master_key_file.as_deref(), Some(held.path()));
        } else {
            assert_eq!(
                from_flag, from_file,
                "{}: the flag and the file disagree",
                d.key
            );
        }

        // A secret's file variants, in the file and the environment.
        if d.secret && d.key != "vault.master_key" {
            let mut by_file_variant = Layers::defaults();
            by_file_variant
                .file_text(
                    &file_dir.path().join("patchbay.toml"),
                    &format!(
                        "[{section}]\n{name}_file = {:?}\n",
                        held.path().display().to_string()
                    ),
                )
                .unwrap();
            assert_eq!(
                shown(&by_file_variant.settings(dir()).unwrap()),
                from_file,
                "{}",
                d.key
            );
            let env: BTreeMap<String, String> =
                [(format!("{}_FILE", d.env), held.path().display().to_string())].into();
            let mut by_env_file = Layers::defaults();
            by_env_file.env(|k| env.get(k).cloned()).unwrap();
            assert_eq!(
                shown(&by_env_file.settings(dir()).unwrap()),
                from_file,
                "{}",
                d.key
            );
        }
    }
}

#[test]
fn later_layers_win() {
    let mut l = Layers::defaults();
    l.file_text(Path::new("p.toml"), "[http]\nlisten = \"127.0.0.1:1001\"\n")
        .unwrap();
    assert_eq!(l.settings(dir()).unwrap().http.listen.port(), 1001);
    l.env(|k| (k == "PATCHBAY_LISTEN").then(|| "127.0.0.1:1002".into()))
        .unwrap();
    assert_eq!(l.settings(dir()).unwrap().http.listen.port(), 1002);
    l.set_flag_text("http.listen", &["127.0.0.1:1003".into()])
        .unwrap();
    assert_eq!(l.settings(dir()).unwrap().http.listen.port(), 1003);
    assert_eq!(
        l.source("http.listen"),
        Some(&Source::Flag("listen".into()))
    );
}

#[test]
fn the_example_parses_back_to_the_defaults() {
    let text = example();
    let mut l = Layers::defaults();
    l.file_text(Path::new("example.toml"), &text).unwrap();
    assert_eq!(shown(&l.settings(dir()).unwrap()), shown(&defaults()));
    // Every setting is in it, with its variable and flag.
    for d in DEFS {
        let name = d.key.split_once('.').unwrap().1;
        assert!(text.contains(&format!("{name} = ")), "{} missing", d.key);
        assert!(
            text.contains(d.env) && text.contains(&format!("--{}", d.flag)),
            "{}",
            d.key
        );
    }
    // Uncommenting every example gives each setting a value other than its default.
    let uncommented: String = text
        .lines()
        .map(
            |l| match l.strip_prefix("# ").and_then(|r| r.split_once(" = ")) {
                Some((name, _)) if name.chars().all(|c| c.is_ascii_lowercase() || c == '_') => {
                    format!("{}\n", &l[2..])
                }
                _ => format!("{l}\n"),
            },
        )
        .collect();
    let mut all = Layers::defaults();
    all.file_text(Path::new("all.toml"), &uncommented)
        .unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
    assert_ne!(shown(&all.settings(dir()).unwrap()), shown(&defaults()));
}

#[test]
fn unknown_keys_and_bad_values_fail_naming_them() {
    let err = |text: &str| {
        let mut l = Layers::defaults();
        match l.file_text(Path::new("p.toml"), text) {
            Err(e) => e,
            Ok(()) => l.settings(dir()).unwrap_err(),
        }
    };
    let e = err("[http]\nlisten_on = \"x\"\n");
    assert_eq!(e.key, "http.listen_on");
    assert!(e.reason.contains("listen"), "{e}");
    assert_eq!(err("[htp]\nlisten = \"x\"\n").key, "htp");
    assert_eq!(err("listen = \"127.0.0.1:1\"\n").key, "listen");
    let e = err("[http]\nlisten = \"nowhere\"\n");
    assert_eq!(e.key, "http.listen");
    assert!(
        e.to_string().contains("p.toml") && e.reason.contains("address"),
        "{e}"
    );
    assert_eq!(
        err("[limits]\ntest_rate_limit = \"ten\"\n").key,
        "limits.test_rate_limit"
    );
    assert_eq!(
        err("[egress]\nallow_net = [\"10.0.0.0/99\"]\n").key,
        "egress.allow_net"
    );
    assert_eq!(
        err("[http]\nheader_timeout = \"0\"\n").key,
        "http.header_timeout"
    );
    assert_eq!(
        err("[store]\ndatabase_url = \"mysql://x\"\n").key,
        "store.database_url"
    );
    assert_eq!(err("[log]\nformat = \"xml\"\n").key, "log.format");

    let mut l = Layers::defaults();
    let e = l
        .env(|k| (k == "PATCHBAY_SERVE_THREADS").then(|| "many".into()))
        .unwrap_err();
    assert_eq!(
        (e.key.as_str(), e.origin.as_str()),
        ("http.serve_threads", "PATCHBAY_SERVE_THREADS")
    );
    let e = Layers::defaults()
        .set_flag_text("egress.allow_plaintext_smtp_auth", &["perhaps".into()])
        .unwrap_err();
    assert_eq!(e.origin, "--allow-plaintext-smtp-auth");
    // A secret file that cannot be read is named, its path but no content.
    let mut l = Layers::defaults();
    l.env(|k| (k == "PATCHBAY_METRICS_TOKEN_FILE").then(|| "/nonexistent/token".into()))
        .unwrap();
    let e = l.settings(dir()).unwrap_err();
    assert_eq!(e.key, "metrics.token");
    assert!(e.reason.contains("/nonexistent/token"), "{e}");
}
