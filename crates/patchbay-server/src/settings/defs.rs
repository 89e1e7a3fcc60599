//! Every setting, once: its key in the TOML file, its `PATCHBAY_*` variable, its flag, its
//! type, its default and its help. The layering, the flags of `patchbay serve` and
//! `patchbay config example` are all made from this table.

/// What a setting's value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Str,
    Bool,
    Int,
    /// A span such as `20s`, `30m`, `24h`, `7d` (or seconds).
    Span,
    /// Several strings (repeat the flag, or separate with commas).
    List,
}

/// One setting.
#[derive(Debug, Clone, Copy)]
pub struct Def {
    /// `section.name` in the TOML file.
    pub key: &'static str,
    pub env: &'static str,
    /// The `--flag` of `patchbay serve`; for a secret, the flag names a file holding it.
    pub flag: &'static str,
    pub ty: Ty,
    /// The default as a TOML value; `None` when there is none or it is worked out at start.
    pub default: Option<&'static str>,
    /// A value other than the default, shown in the example and used by the tests.
    pub example: &'static str,
    /// A credential: never a flag of its own (others could read it from the process list);
    /// `<key>_file`, `PATCHBAY_…_FILE` and `--…-file` name a file holding it.
    pub secret: bool,
    pub help: &'static str,
}

const fn def(
    key: &'static str,
    env: &'static str,
    flag: &'static str,
    ty: Ty,
    default: Option<&'static str>,
    example: &'static str,
    help: &'static str,
) -> Def {
    Def {
        key,
        env,
        flag,
        ty,
        default,
        example,
        secret: false,
        help,
    }
}

const fn secret(
    key: &'static str,
    env: &'static str,
    flag: &'static str,
    example: &'static str,
    help: &'static str,
) -> Def {
    Def {
        secret: true,
        ..def(key, env, flag, Ty::Str, None, example, help)
    }
}

/// The sections of the TOML file, in the order the example shows them.
pub const SECTIONS: &[(&str, &str)] = &[
    ("http", "The API's listener"),
    ("store", "Where Patchbay keeps its data"),
    ("vault", "The root key secrets are sealed under"),
    ("egress", "What outbound connections may reach"),
    ("limits", "Limits on callers"),
    ("workers", "Background work"),
    ("providers", "The provider catalog"),
    ("metrics", "Prometheus metrics"),
    ("log", "Logging"),
    ("ui", "The web UI's sessions"),
];

use Ty::{Bool, Int, List, Span, Str};

pub const DEFS: &[Def] = &[
    def(
        "http.listen",
        "PATCHBAY_LISTEN",
        "listen",
        Str,
        Some("\"127.0.0.1:8750\""),
        "\"0.0.0.0:9000\"",
        "Address to listen on.",
    ),
    def(
        "http.public_url",
        "PATCHBAY_PUBLIC_URL",
        "public-url",
        Str,
        None,
        "\"https://patchbay.example.com\"",
        "The URL users and OAuth providers reach Patchbay at (default: http://{listen}).",
    ),
    def(
        "http.serve_threads",
        "PATCHBAY_SERVE_THREADS",
        "serve-threads",
        Int,
        None,
        "3",
        "Threads serving connections, each with a runtime of its own (default: one per core).",
    ),
    def(
        "http.header_timeout",
        "PATCHBAY_HEADER_TIMEOUT",
        "header-timeout",
        Span,
        Some("\"20s\""),
        "\"45s\"",
        "How long a client may take to send a request's headers, and stay idle between requests.",
    ),
    def(
        "http.max_connections",
        "PATCHBAY_MAX_CONNECTIONS",
        "max-connections",
        Int,
        None,
        "5000",
        "Open client connections at most; more are answered 503 at once (default: what the \
         open-file limit allows, which start-up raises to its hard limit).",
    ),
    def(
        "store.data_dir",
        "PATCHBAY_DATA_DIR",
        "data-dir",
        Str,
        None,
        "\"/var/lib/patchbay\"",
        "Where the embedded SQLite database, the generated master key and cli.json live \
         (default: the user's data directory).",
    ),
    def(
        "store.database_url",
        "PATCHBAY_DATABASE_URL",
        "database-url",
        Str,
        None,
        "\"postgres://patchbay@db.internal/patchbay\"",
        "PostgreSQL for several replicas sharing one store (needs a master key); the embedded \
         SQLite store is used without it. A URL with a password is better given by the variable.",
    ),
    secret(
        "vault.master_key",
        "PATCHBAY_MASTER_KEY",
        "master-key-file",
        "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"",
        "The base64 root key (32 bytes). Without one, the embedded default generates \
         <data_dir>/master.key (mode 0600).",
    ),
    def(
        "egress.allow_net",
        "PATCHBAY_ALLOW_NET",
        "allow-net",
        List,
        Some("[]"),
        "[\"10.20.0.0/16\"]",
        "Ranges opened to outbound connections despite the deny-list (loopback, private, \
         link-local, CGNAT, multicast, reserved).",
    ),
    def(
        "egress.allow_sqlite_dirs",
        "PATCHBAY_ALLOW_SQLITE_DIR",
        "allow-sqlite-dir",
        List,
        Some("[]"),
        "[\"/srv/sqlite\"]",
        "Directories SQLite connections may name files under (never Patchbay's own).",
    ),
    def(
        "egress.allow_upload_dirs",
        "PATCHBAY_ALLOW_UPLOAD_DIR",
        "allow-upload-dir",
        List,
        Some("[]"),
        "[\"/srv/outbox\"]",
        "Directories an s3-upload node may read its file_path under (never Patchbay's own).",
    ),
    def(
        "egress.allow_commands",
        "PATCHBAY_ALLOW_COMMAND",
        "allow-command",
        List,
        Some("[]"),
        "[\"/usr/local/bin/mcp-server-filesystem\"]",
        "Commands stdio MCP connections may start: exactly, or by the file name of a path.",
    ),
    def(
        "egress.dns_servers",
        "PATCHBAY_DNS_SERVER",
        "dns-server",
        List,
        Some("[]"),
        "[\"10.0.0.2:53\"]",
        "DNS servers for outbound names instead of the system's.",
    ),
    def(
        "egress.allow_plaintext_ftp",
        "PATCHBAY_ALLOW_PLAINTEXT_FTP",
        "allow-plaintext-ftp",
        Bool,
        Some("false"),
        "true",
        "Let file-transfer connections use plain FTP, which sends passwords and files in clear.",
    ),
    def(
        "egress.allow_plaintext_smtp_auth",
        "PATCHBAY_ALLOW_PLAINTEXT_SMTP_AUTH",
        "allow-plaintext-smtp-auth",
        Bool,
        Some("false"),
        "true",
        "Let SMTP connections send AUTH to a non-loopback server without TLS.",
    ),
    def(
        "egress.test_timeout",
        "PATCHBAY_TEST_TIMEOUT",
        "test-timeout",
        Span,
        Some("\"15s\""),
        "\"30s\"",
        "Upper bound of one connection test.",
    ),
    def(
        "limits.body_limit_bytes",
        "PATCHBAY_BODY_LIMIT_BYTES",
        "body-limit-bytes",
        Int,
        Some("1048576"),
        "2097152",
        "Largest accepted JSON request body.",
    ),
    def(
        "limits.proxy_body_limit_bytes",
        "PATCHBAY_PROXY_BODY_LIMIT_BYTES",
        "proxy-body-limit-bytes",
        Int,
        Some("16777216"),
        "33554432",
        "The largest body the proxy passes in either direction.",
    ),
    def(
        "limits.test_rate_limit",
        "PATCHBAY_TEST_RATE_LIMIT",
        "test-rate-limit",
        Int,
        Some("10"),
        "60",
        "Connection tests per token per minute (0: unlimited).",
    ),
    def(
        "limits.tool_call_rate_limit",
        "PATCHBAY_TOOL_CALL_RATE_LIMIT",
        "tool-call-rate-limit",
        Int,
        Some("6000"),
        "600",
        "Tool calls through the MCP gateway per token per minute (0: unlimited); a call over \
         the limit is answered with a JSON-RPC error carrying retry_after.",
    ),
    def(
        "workers.retest_interval",
        "PATCHBAY_RETEST_INTERVAL",
        "retest-interval",
        Span,
        Some("\"24h\""),
        "\"6h\"",
        "How often connections are re-tested in the background (\"0\" turns it off).",
    ),
    def(
        "workers.event_webhook_url",
        "PATCHBAY_EVENT_WEBHOOK_URL",
        "event-webhook-url",
        Str,
        None,
        "\"https://automation.example.com/patchbay-events\"",
        "Where system events (connection.created, .expired, .refresh_failed, .recovered, \
         .revoked) are posted, signed with workers.event_webhook_secret (Standard Webhooks).",
    ),
    secret(
        "workers.event_webhook_secret",
        "PATCHBAY_EVENT_WEBHOOK_SECRET",
        "event-webhook-secret-file",
        "\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"",
        "The secret system events are signed with.",
    ),
    def(
        "providers.dir",
        "PATCHBAY_PROVIDERS_DIR",
        "providers-dir",
        Str,
        None,
        "\"/etc/patchbay/providers\"",
        "A directory of YAML provider entries added to (or replacing, by key) the built-in \
         catalog.",
    ),
    def(
        "providers.client_metadata_url",
        "PATCHBAY_CLIENT_METADATA_URL",
        "client-metadata-url",
        Str,
        None,
        "\"https://patchbay.example.com/v1/oauth/client-metadata.json\"",
        "The https URL of Patchbay's OAuth client ID metadata document, its client_id with \
         authorization servers that accept such documents (MCP authorization); default: \
         {public_url}/v1/oauth/client-metadata.json when the public URL is https.",
    ),
    secret(
        "metrics.token",
        "PATCHBAY_METRICS_TOKEN",
        "metrics-token-file",
        "\"scrape-token-0123456789\"",
        "The bearer token /metrics asks for; without one it is open.",
    ),
    def(
        "log.format",
        "PATCHBAY_LOG_FORMAT",
        "log-format",
        Str,
        Some("\"text\""),
        "\"json\"",
        "\"text\" or \"json\".",
    ),
    def(
        "ui.session_idle",
        "PATCHBAY_UI_SESSION_IDLE",
        "ui-session-idle",
        Span,
        Some("\"2h\""),
        "\"30m\"",
        "A web UI session ends when unused this long.",
    ),
    def(
        "ui.session_max",
        "PATCHBAY_UI_SESSION_MAX",
        "ui-session-max",
        Span,
        Some("\"12h\""),
        "\"8h\"",
        "A web UI session ends this long after the log-in, however active.",
    ),
];

/// The setting `key` names.
pub fn find(key: &str) -> Option<&'static Def> {
    DEFS.iter().find(|d| d.key == key)
}

/// The TOML file's key of a secret's file variant (`metrics.token_file`).
pub fn file_key(d: &Def) -> String {
    format!("{}_file", d.key)
}
