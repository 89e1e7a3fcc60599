//! The TOML configuration file and `patchbay config example`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Subcommand;
use serde::Deserialize;

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Print a documented configuration file.
    Example,
}

/// The file's keys; every one is optional and flags or `PATCHBAY_*` variables override it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub master_key_file: Option<PathBuf>,
    pub log_format: Option<String>,
    pub body_limit_bytes: Option<usize>,
    #[serde(default)]
    pub allow_net: Vec<String>,
    #[serde(default)]
    pub allow_sqlite_dirs: Vec<PathBuf>,
    #[serde(default)]
    pub allow_commands: Vec<String>,
    #[serde(default)]
    pub dns_servers: Vec<String>,
    pub test_rate_limit: Option<u32>,
    pub retest_interval: Option<String>,
    pub providers_dir: Option<PathBuf>,
    pub event_webhook_url: Option<String>,
    pub serve_threads: Option<usize>,
    pub header_timeout: Option<String>,
    pub max_connections: Option<usize>,
    pub allow_plaintext_smtp_auth: Option<bool>,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

pub const EXAMPLE: &str = r#"# Patchbay configuration. Every key is optional; a PATCHBAY_* environment variable or a
# command-line flag of the same name overrides the file (e.g. PATCHBAY_LISTEN, --listen).
# Use it with: patchbay serve --config patchbay.toml

# Address to listen on.
listen = "127.0.0.1:8750"

# The URL users and OAuth providers reach Patchbay at (default: http://{listen}).
# public_url = "https://patchbay.example.com"

# Where the embedded SQLite database, the generated master key and cli.json live.
# data_dir = "/var/lib/patchbay"

# PostgreSQL for several replicas sharing one store. Needs a master key (below).
# database_url = "postgres://patchbay@db.internal/patchbay"

# File holding the base64 root key (32 bytes). PATCHBAY_MASTER_KEY may carry it instead.
# Without either, the embedded default generates <data_dir>/master.key (mode 0600).
# master_key_file = "/etc/patchbay/master.key"

# "text" or "json".
log_format = "text"

# Largest accepted JSON request body.
body_limit_bytes = 1048576

# Outbound connections never reach loopback, private, link-local (cloud metadata), CGNAT,
# multicast or reserved addresses. Only the operator can open a range here.
# allow_net = ["10.20.0.0/16"]

# Directories SQLite connections may name files under (never Patchbay's own data directory).
# allow_sqlite_dirs = ["/srv/sqlite"]

# Commands stdio MCP connections may start (matched exactly).
# allow_commands = ["/usr/local/bin/mcp-server-filesystem"]

# DNS servers for outbound names instead of the system's.
# dns_servers = ["10.0.0.2:53"]

# YAML files of extra providers (or replacements of built-in ones, by key).
# providers_dir = "/etc/patchbay/providers"

# System events are posted here, signed with PATCHBAY_EVENT_WEBHOOK_SECRET (Standard Webhooks).
# event_webhook_url = "https://automation.example.com/patchbay-events"

# Connection tests per token per minute (0: unlimited).
test_rate_limit = 10

# How often connections are re-tested in the background ("0" turns it off).
retest_interval = "24h"

# Threads serving connections, each with a runtime of its own (default: one per core).
# serve_threads = 4

# How long a client may take to send a request's headers, and stay idle between requests,
# before its connection is closed.
header_timeout = "20s"

# Open client connections at most; more are answered 503 at once (default: what the open-file
# limit allows, which start-up raises to its hard limit).
# max_connections = 10000

# SMTP AUTH is refused to a non-loopback server without TLS (encryption "none"); this allows it.
# allow_plaintext_smtp_auth = false
"#;

pub fn example() {
    print!("{EXAMPLE}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_parses_as_a_config_file() {
        let parsed: FileConfig = toml::from_str(EXAMPLE).unwrap();
        assert_eq!(parsed.listen.as_deref(), Some("127.0.0.1:8750"));
        assert_eq!(parsed.body_limit_bytes, Some(1_048_576));
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<FileConfig>("lisen = \"x\"").is_err());
    }
}
