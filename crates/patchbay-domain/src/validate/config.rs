//! The `config` rules of each kind. Defaults are not filled here: the typed specs fill them
//! (`crate::spec`).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::fields::{Rule, Ty, check_fields, r, require};
use crate::connection::Kind;
use crate::error::ValidationErrors;
use crate::spec::{DatabaseDriver, FileProtocol, McpTransportName, SmtpEncryption, WebhookMethod};

pub(super) const HTTP_CONFIG: &[Rule] = &[
    r("base_url", Ty::Url),
    r("headers", Ty::Headers),
    r("timeout_ms", Ty::Int(1, 600_000)),
    r("retries", Ty::Int(0, 10)),
    r("backoff_ms", Ty::Int(0, 60_000)),
    r("verify_path", Ty::UrlPath),
    r("mcp_tools", Ty::Bool),
];
pub(super) const DATABASE_CONFIG: &[Rule] = &[
    r("driver", Ty::Enum(DatabaseDriver::NAMES)),
    r("host", Ty::Str),
    r("port", Ty::Int(1, 65_535)),
    r("database", Ty::Str),
    r("username", Ty::Str),
    r("ssl", Ty::Bool),
    r("ssl_ca", Ty::Pem),
    r("options", Ty::Object),
];
pub(super) const SMTP_CONFIG: &[Rule] = &[
    r("host", Ty::Str),
    r("port", Ty::Int(1, 65_535)),
    r("username", Ty::Str),
    r("from_address", Ty::Email),
    r("encryption", Ty::Enum(SmtpEncryption::NAMES)),
];
pub(super) const WEBHOOK_CONFIG: &[Rule] = &[
    r("url", Ty::Url),
    r("method", Ty::Enum(WebhookMethod::NAMES)),
    r("headers", Ty::Headers),
];
pub(super) const MCP_CONFIG: &[Rule] = &[
    r("server_url", Ty::Url),
    r("command", Ty::Str),
    r("args", Ty::StrList),
    r("env", Ty::Env),
    r("transport", Ty::Enum(McpTransportName::NAMES)),
    r("timeout_ms", Ty::Int(1, 600_000)),
    r("headers", Ty::Headers),
    r("allowed_tools", Ty::StrList),
];

pub(super) const STORAGE_CONFIG: &[Rule] = &[
    r("bucket", Ty::Bucket),
    r("region", Ty::Region),
    r("endpoint", Ty::Origin),
    r("prefix", Ty::KeyPrefix),
    r("path_style", Ty::Bool),
    r("timeout_ms", Ty::Int(1, 600_000)),
];

pub(super) const FILE_TRANSFER_CONFIG: &[Rule] = &[
    r("protocol", Ty::Enum(FileProtocol::NAMES)),
    r("host", Ty::Str),
    r("port", Ty::Int(1, 65_535)),
    r("username", Ty::Str),
    r("base_dir", Ty::DirPath),
    r("host_key", Ty::HostKey),
    r("tls_ca", Ty::Pem),
    r("timeout_ms", Ty::Int(1, 600_000)),
];

/// The `config` fields a kind takes.
pub(super) fn config_rules(kind: Kind) -> &'static [Rule] {
    match kind {
        Kind::Http => HTTP_CONFIG,
        Kind::Database => DATABASE_CONFIG,
        Kind::Smtp => SMTP_CONFIG,
        Kind::Webhook => WEBHOOK_CONFIG,
        Kind::Mcp => MCP_CONFIG,
        Kind::Storage => STORAGE_CONFIG,
        Kind::FileTransfer => FILE_TRANSFER_CONFIG,
    }
}

pub(super) fn check_config(
    kind: Kind,
    config: &mut Map<String, Value>,
    base_url_from_token: bool,
    errs: &mut ValidationErrors,
) {
    let before = errs.errors().len();
    check_fields("config", config, config_rules(kind), errs);
    let bad_fields: BTreeSet<String> = errs.errors()[before..]
        .iter()
        .map(|e| e.field.clone())
        .collect();
    let ok = |f: &str| !bad_fields.contains(&format!("config.{f}"));
    match kind {
        Kind::Http => {
            if !base_url_from_token {
                require(config, "config", "base_url", errs, "");
            }
        }
        Kind::Database => {
            require(config, "config", "driver", errs, "");
            let driver = config
                .get("driver")
                .and_then(Value::as_str)
                .filter(|_| ok("driver"))
                .and_then(DatabaseDriver::parse);
            let sqlite = driver == Some(DatabaseDriver::Sqlite);
            require(
                config,
                "config",
                "database",
                errs,
                if sqlite { " (the file path)" } else { "" },
            );
            match driver {
                Some(DatabaseDriver::Sqlite) => {
                    for f in ["host", "port", "username", "ssl", "ssl_ca"] {
                        if config.contains_key(f) {
                            errs.push(format!("config.{f}"), "is not used by the sqlite driver");
                        }
                    }
                }
                Some(_) => {
                    require(config, "config", "host", errs, "");
                    require(config, "config", "username", errs, "");
                }
                None => {}
            }
        }
        Kind::Smtp => {
            require(config, "config", "host", errs, "");
            require(config, "config", "from_address", errs, "");
            require(
                config,
                "config",
                "encryption",
                errs,
                " (starttls, tls or none)",
            );
        }
        Kind::Webhook => require(config, "config", "url", errs, ""),
        Kind::Mcp => check_mcp(config, &ok, errs),
        Kind::Storage => {
            require(config, "config", "bucket", errs, "");
        }
        Kind::FileTransfer => check_file_transfer(config, &ok, errs),
    }
}

fn check_file_transfer(
    config: &Map<String, Value>,
    ok: &dyn Fn(&str) -> bool,
    errs: &mut ValidationErrors,
) {
    require(config, "config", "protocol", errs, " (sftp, ftps or ftp)");
    require(config, "config", "host", errs, "");
    require(config, "config", "username", errs, "");
    let protocol = config
        .get("protocol")
        .and_then(Value::as_str)
        .filter(|_| ok("protocol"))
        .and_then(FileProtocol::parse);
    let only = |field: &str, wanted: FileProtocol, errs: &mut ValidationErrors| {
        if protocol.is_some_and(|p| p != wanted) && config.contains_key(field) {
            errs.push(
                format!("config.{field}"),
                format!("is only used by {wanted} connections"),
            );
        }
    };
    only("host_key", FileProtocol::Sftp, errs);
    only("tls_ca", FileProtocol::Ftps, errs);
}

fn check_mcp(config: &Map<String, Value>, ok: &dyn Fn(&str) -> bool, errs: &mut ValidationErrors) {
    let has_url = config.contains_key("server_url");
    let has_cmd = config.contains_key("command");
    match (has_url, has_cmd) {
        (false, false) => errs.push(
            "config.server_url",
            "is required (or `command` for a stdio server)",
        ),
        (true, true) => errs.push(
            "config.command",
            "give either server_url or command, not both",
        ),
        _ => {}
    }
    for f in ["args", "env"] {
        if config.contains_key(f) && !has_cmd {
            errs.push(format!("config.{f}"), "is only used with `command`");
        }
    }
    let transport = config
        .get("transport")
        .and_then(Value::as_str)
        .filter(|_| ok("transport"))
        .and_then(McpTransportName::parse);
    match transport {
        Some(McpTransportName::Stdio) if has_url => {
            errs.push("config.transport", "stdio needs `command`, not server_url")
        }
        Some(McpTransportName::StreamableHttp | McpTransportName::Sse) if has_cmd => {
            errs.push("config.transport", "a `command` server speaks stdio")
        }
        _ => {}
    }
}
