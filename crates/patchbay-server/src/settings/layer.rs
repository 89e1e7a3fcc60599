//! One layering of every setting: the defaults of [`DEFS`], then a TOML file, then the
//! `PATCHBAY_*` environment, then flags — each later layer replacing a value of an earlier one —
//! and the typed [`Settings`] read from the result. An unknown key in the file, or a value that
//! does not read as its setting's type, fails naming the key and where it came from.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;

use super::defs::{DEFS, Def, SECTIONS, Ty, file_key, find};
use super::{
    EgressSettings, HttpSettings, LimitSettings, LogSettings, MetricsSettings, ProviderSettings,
    Settings, StoreSettings, UiSettings, VaultSettings, WorkerSettings,
};

/// Where a value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env(String),
    Flag(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("the default"),
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Env(v) => f.write_str(v),
            Source::Flag(flag) => write!(f, "--{flag}"),
        }
    }
}

/// A setting that cannot be used as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} (from {origin}): {reason}")]
pub struct SettingError {
    pub key: String,
    /// The file, variable or flag it came from.
    pub origin: String,
    pub reason: String,
}

/// A value as a layer gave it: the value, or (for a secret) a file holding it.
#[derive(Debug, Clone, PartialEq)]
enum Raw {
    Value(toml::Value),
    File(PathBuf),
}

/// The value of each setting and where it came from.
#[derive(Debug, Clone, Default)]
pub struct Layers {
    slots: BTreeMap<&'static str, (Raw, Source)>,
}

impl Layers {
    /// The defaults of every setting that has one.
    pub fn defaults() -> Self {
        let mut layers = Self::default();
        for d in DEFS {
            if let Some(text) = d.default {
                let value = toml_value(text)
                    .unwrap_or_else(|e| unreachable!("{}: the default {text}: {e}", d.key));
                layers
                    .slots
                    .insert(d.key, (Raw::Value(value), Source::Default));
            }
        }
        layers
    }

    /// Where `key`'s value came from, if anywhere.
    pub fn source(&self, key: &str) -> Option<&Source> {
        self.slots.get(key).map(|(_, s)| s)
    }

    /// Reads the TOML file at `path` over the layers.
    pub fn file(&mut self, path: &Path) -> Result<(), SettingError> {
        let text = std::fs::read_to_string(path).map_err(|e| SettingError {
            key: "config".into(),
            origin: path.display().to_string(),
            reason: format!("cannot read it ({})", e.kind()),
        })?;
        self.file_text(path, &text)
    }

    /// Reads TOML `text` (named `path`) over the layers.
    pub fn file_text(&mut self, path: &Path, text: &str) -> Result<(), SettingError> {
        let source = Source::File(path.to_owned());
        let fail = |key: String, reason: String| SettingError {
            key,
            origin: path.display().to_string(),
            reason,
        };
        let table: toml::Table = toml::from_str(text).map_err(|e| {
            fail(
                "config".into(),
                format!("is not TOML: {}", e.message().trim_end()),
            )
        })?;
        for (section, body) in table {
            if !SECTIONS.iter().any(|(s, _)| *s == section) {
                return Err(fail(
                    section.clone(),
                    format!(
                        "unknown section; expected one of {}",
                        SECTIONS
                            .iter()
                            .map(|(s, _)| *s)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            let toml::Value::Table(body) = body else {
                return Err(fail(section, "must be a [section] of keys".into()));
            };
            for (name, value) in body {
                let key = format!("{section}.{name}");
                if let Some(d) = find(&key) {
                    self.slots
                        .insert(d.key, (Raw::Value(value), source.clone()));
                } else if let Some(d) = DEFS.iter().find(|d| d.secret && file_key(d) == key) {
                    let toml::Value::String(p) = value else {
                        return Err(fail(key, "must be a file path".into()));
                    };
                    self.slots
                        .insert(d.key, (Raw::File(PathBuf::from(p)), source.clone()));
                } else {
                    let known: Vec<&str> = DEFS
                        .iter()
                        .filter(|d| d.key.starts_with(&format!("{section}.")))
                        .map(|d| &d.key[section.len() + 1..])
                        .collect();
                    return Err(fail(
                        key,
                        format!("unknown key; [{section}] takes {}", known.join(", ")),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Reads each setting's `PATCHBAY_*` variable (and a secret's `…_FILE`) from `get`.
    pub fn env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), SettingError> {
        for d in DEFS {
            let file_var = format!("{}_FILE", d.env);
            if d.secret
                && let Some(path) = get(&file_var).filter(|v| !v.is_empty())
            {
                self.slots
                    .insert(d.key, (Raw::File(path.into()), Source::Env(file_var)));
            }
            if let Some(raw) = get(d.env).filter(|v| !v.is_empty()) {
                let value = from_text(d, &raw).map_err(|reason| SettingError {
                    key: d.key.into(),
                    origin: d.env.into(),
                    reason,
                })?;
                self.slots
                    .insert(d.key, (Raw::Value(value), Source::Env(d.env.into())));
            }
        }
        Ok(())
    }

    /// A flag's value for `key` (a secret's flag names its file: see [`Layers::set_flag_text`]).
    pub fn set_flag(&mut self, key: &str, value: toml::Value) {
        if let Some(d) = find(key) {
            self.slots
                .insert(d.key, (Raw::Value(value), Source::Flag(d.flag.into())));
        }
    }

    /// A flag's text for `key`, read as the setting's type; a secret's is the path of a file.
    pub fn set_flag_text(&mut self, key: &str, raw: &[String]) -> Result<(), SettingError> {
        let Some(d) = find(key) else {
            return Ok(());
        };
        let source = Source::Flag(d.flag.into());
        let raw_value = if d.secret {
            Raw::File(PathBuf::from(raw.join(",")))
        } else if d.ty == Ty::List {
            Raw::Value(toml::Value::Array(
                raw.iter()
                    .flat_map(|r| r.split(','))
                    .map(|s| toml::Value::String(s.trim().to_owned()))
                    .collect(),
            ))
        } else {
            let text = raw.last().cloned().unwrap_or_default();
            Raw::Value(from_text(d, &text).map_err(|reason| SettingError {
                key: d.key.into(),
                origin: format!("--{}", d.flag),
                reason,
            })?)
        };
        self.slots.insert(d.key, (raw_value, source));
        Ok(())
    }

    /// The typed settings; `data_dir` is used when no layer names one.
    pub fn settings(&self, data_dir: &Path) -> Result<Settings, SettingError> {
        let mut s = unset(data_dir);
        for (key, (raw, source)) in &self.slots {
            let d = find(key).unwrap_or_else(|| unreachable!("slots hold known keys"));
            apply(&mut s, d, raw).map_err(|reason| SettingError {
                key: (*key).into(),
                origin: source.to_string(),
                reason,
            })?;
        }
        if let Some(url) = &s.store.database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(SettingError {
                key: "store.database_url".into(),
                origin: self
                    .source("store.database_url")
                    .map(Source::to_string)
                    .unwrap_or_default(),
                reason: "must be a postgres:// URL (the embedded SQLite store needs none)".into(),
            });
        }
        Ok(s)
    }
}

/// `v = <text>` read as TOML: the value.
fn toml_value(text: &str) -> Result<toml::Value, String> {
    let mut table: toml::Table =
        toml::from_str(&format!("v = {text}")).map_err(|e| e.message().to_owned())?;
    table.remove("v").ok_or_else(|| "no value".to_owned())
}

/// A variable's or flag's text as the setting's type.
fn from_text(d: &Def, raw: &str) -> Result<toml::Value, String> {
    let raw = raw.trim();
    Ok(match d.ty {
        Ty::Str | Ty::Span => toml::Value::String(raw.to_owned()),
        Ty::Bool => toml::Value::Boolean(match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => return Err(format!("{raw:?} is not true or false")),
        }),
        Ty::Int => toml::Value::Integer(
            raw.parse()
                .map_err(|_| format!("{raw:?} is not a whole number"))?,
        ),
        Ty::List => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_owned()))
                .collect(),
        ),
    })
}

/// Settings before any value is applied: what an absent setting means (none, empty, or worked
/// out at start), not defaults — those are the table's.
fn unset(data_dir: &Path) -> Settings {
    Settings {
        http: HttpSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: None,
            serve_threads: crate::serving::default_threads(),
            header_timeout: Duration::ZERO,
            max_connections: None,
        },
        store: StoreSettings {
            data_dir: data_dir.to_owned(),
            database_url: None,
        },
        vault: VaultSettings {
            master_key: None,
            master_key_file: None,
        },
        egress: EgressSettings {
            allow_net: Vec::new(),
            allow_sqlite_dirs: Vec::new(),
            allow_upload_dirs: Vec::new(),
            allow_commands: Vec::new(),
            dns_servers: Vec::new(),
            allow_plaintext_smtp_auth: false,
            allow_plaintext_ftp: false,
            test_timeout: Duration::ZERO,
        },
        limits: LimitSettings {
            body_limit: 0,
            proxy_body_limit: 0,
            test_rate_per_minute: 0,
            tool_call_rate_per_minute: 0,
        },
        workers: WorkerSettings {
            retest_interval: None,
            event_webhook_url: None,
            event_webhook_secret: None,
        },
        providers: ProviderSettings {
            dir: None,
            client_metadata_url: None,
        },
        metrics: MetricsSettings { token: None },
        log: LogSettings {
            format: crate::logging::LogFormat::Text,
        },
        ui: UiSettings {
            session_idle: Duration::ZERO,
            session_max: Duration::ZERO,
        },
    }
}

fn string(v: &toml::Value) -> Result<String, String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| "must be a string".to_owned())
}

fn int(v: &toml::Value, min: i64, max: i64) -> Result<i64, String> {
    match v.as_integer() {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        Some(_) => Err(format!("must be between {min} and {max}")),
        None => Err("must be a whole number".into()),
    }
}

fn strings(v: &toml::Value) -> Result<Vec<String>, String> {
    match v {
        toml::Value::Array(items) => items.iter().map(string).collect(),
        toml::Value::String(s) => Ok(vec![s.clone()]),
        _ => Err("must be a list of strings".into()),
    }
}

/// `24h`, `30m`, `45s`, `7d` or seconds (a string or a number); `0` is `None`.
fn span(v: &toml::Value) -> Result<Option<Duration>, String> {
    let raw = match v {
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::String(s) => s.trim().to_owned(),
        _ => return Err("must be a span such as \"24h\" or \"20s\"".into()),
    };
    let n = patchbay_domain::span::span_seconds(&raw)
        .ok_or_else(|| format!("{raw:?} is not a span such as 24h or 20s"))?;
    Ok((n > 0).then(|| Duration::from_secs(n)))
}

fn nonzero_span(v: &toml::Value) -> Result<Duration, String> {
    span(v)?.ok_or_else(|| "must be longer than 0".to_owned())
}

fn url(v: &toml::Value) -> Result<url::Url, String> {
    let raw = string(v)?;
    url::Url::parse(&raw).map_err(|e| format!("{raw:?} is not a URL ({e})"))
}

fn addr(raw: &str, example: &str) -> Result<SocketAddr, String> {
    raw.trim()
        .parse()
        .map_err(|_| format!("{raw:?} is not an address such as {example}"))
}

/// `10.0.0.0/8`, or a single address (`127.0.0.2` = `/32`).
fn net(raw: &str) -> Result<patchbay_net::IpNet, String> {
    let raw = raw.trim();
    raw.parse::<patchbay_net::IpNet>()
        .or_else(|_| {
            raw.parse::<std::net::IpAddr>()
                .map(patchbay_net::IpNet::from)
        })
        .map_err(|_| format!("{raw:?} is not a CIDR range such as 10.0.0.0/8"))
}

/// A secret's value: given, or read from its file (a trailing newline dropped).
fn secret_of(raw: &Raw) -> Result<SecretString, String> {
    match raw {
        Raw::Value(v) => Ok(SecretString::from(string(v)?)),
        Raw::File(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {} ({})", path.display(), e.kind()))?;
            let text = text.trim_end_matches(['\r', '\n']);
            if text.is_empty() {
                return Err(format!("{} is empty", path.display()));
            }
            Ok(SecretString::from(text.to_owned()))
        }
    }
}

fn value(raw: &Raw) -> Result<&toml::Value, String> {
    match raw {
        Raw::Value(v) => Ok(v),
        Raw::File(_) => Err("takes a value, not a file".into()),
    }
}

/// Applies one setting's value to `s`.
fn apply(s: &mut Settings, d: &Def, raw: &Raw) -> Result<(), String> {
    match d.key {
        // The vault reads (or generates) the key file itself.
        "vault.master_key" => match raw {
            Raw::File(path) => s.vault.master_key_file = Some(path.clone()),
            Raw::Value(_) => s.vault.master_key = Some(secret_of(raw)?),
        },
        "workers.event_webhook_secret" => s.workers.event_webhook_secret = Some(secret_of(raw)?),
        "metrics.token" => s.metrics.token = Some(secret_of(raw)?),
        _ => apply_value(s, d.key, value(raw)?)?,
    }
    Ok(())
}

fn apply_value(s: &mut Settings, key: &str, v: &toml::Value) -> Result<(), String> {
    match key {
        "http.listen" => s.http.listen = addr(&string(v)?, "127.0.0.1:8750")?,
        "http.public_url" => s.http.public_url = Some(url(v)?),
        "http.serve_threads" => s.http.serve_threads = int(v, 1, 1024)? as usize,
        "http.header_timeout" => s.http.header_timeout = nonzero_span(v)?,
        "http.max_connections" => {
            s.http.max_connections = Some(int(v, 1, 10_000_000)? as usize);
        }
        "store.data_dir" => s.store.data_dir = PathBuf::from(string(v)?),
        "store.database_url" => s.store.database_url = Some(string(v)?),
        "egress.allow_net" => {
            s.egress.allow_net = strings(v)?
                .iter()
                .map(|n| net(n))
                .collect::<Result<_, _>>()?;
        }
        "egress.allow_upload_dirs" => {
            s.egress.allow_upload_dirs = strings(v)?.into_iter().map(PathBuf::from).collect();
        }
        "egress.allow_sqlite_dirs" => {
            s.egress.allow_sqlite_dirs = strings(v)?.into_iter().map(PathBuf::from).collect();
        }
        "egress.allow_commands" => s.egress.allow_commands = strings(v)?,
        "egress.dns_servers" => {
            s.egress.dns_servers = strings(v)?
                .iter()
                .map(|d| addr(d, "127.0.0.1:53"))
                .collect::<Result<_, _>>()?;
        }
        "egress.allow_plaintext_smtp_auth" => {
            s.egress.allow_plaintext_smtp_auth = v.as_bool().ok_or("must be true or false")?;
        }
        "egress.allow_plaintext_ftp" => {
            s.egress.allow_plaintext_ftp = v.as_bool().ok_or("must be true or false")?;
        }
        "egress.test_timeout" => s.egress.test_timeout = nonzero_span(v)?,
        "limits.body_limit_bytes" => s.limits.body_limit = int(v, 1024, 1 << 30)? as usize,
        "limits.proxy_body_limit_bytes" => {
            s.limits.proxy_body_limit = int(v, 1024, 1 << 34)? as usize;
        }
        "limits.test_rate_limit" => s.limits.test_rate_per_minute = int(v, 0, 1_000_000)? as u32,
        "limits.tool_call_rate_limit" => {
            s.limits.tool_call_rate_per_minute = int(v, 0, 100_000_000)? as u32;
        }
        "workers.retest_interval" => s.workers.retest_interval = span(v)?,
        "workers.event_webhook_url" => s.workers.event_webhook_url = Some(url(v)?),
        "providers.dir" => s.providers.dir = Some(PathBuf::from(string(v)?)),
        "providers.client_metadata_url" => {
            let u = url(v)?;
            if u.scheme() != "https" {
                return Err("must be an https URL".into());
            }
            s.providers.client_metadata_url = Some(u);
        }
        "ui.session_idle" => s.ui.session_idle = nonzero_span(v)?,
        "ui.session_max" => s.ui.session_max = nonzero_span(v)?,
        "log.format" => s.log.format = string(v)?.parse().map_err(|e: String| e)?,
        other => return Err(format!("{other} has no typed field")),
    }
    Ok(())
}

/// `patchbay config example`: every section and setting with its help, defaults set and the
/// rest shown commented, made from the same table as the layering.
pub fn example() -> String {
    let mut out = String::from(
        "# Patchbay configuration. Every key is optional; a PATCHBAY_* environment variable or a\n\
         # flag of `patchbay serve` overrides the file (the names are given with each key).\n\
         # Secrets also take <key>_file, <VARIABLE>_FILE or --<flag>-file: a file holding them.\n\
         # Use it with: patchbay serve --config patchbay.toml\n",
    );
    for (section, title) in SECTIONS {
        out.push_str(&format!("\n# ---- {title}\n[{section}]\n"));
        for d in DEFS
            .iter()
            .filter(|d| d.key.split_once('.').is_some_and(|(s, _)| s == *section))
        {
            let name = &d.key[section.len() + 1..];
            out.push('\n');
            for line in wrap(d.help, 94) {
                out.push_str(&format!("# {line}\n"));
            }
            let flag = if d.secret {
                format!("--{} (a file)", d.flag)
            } else {
                format!("--{}", d.flag)
            };
            out.push_str(&format!("# {} / {flag}\n", d.env));
            match d.default {
                Some(v) => out.push_str(&format!("{name} = {v}\n")),
                None => out.push_str(&format!("# {name} = {}\n", d.example)),
            }
        }
    }
    out
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().unwrap_or_else(|| unreachable!());
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(word.to_owned());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

#[cfg(test)]
mod tests;
