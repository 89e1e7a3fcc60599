//! `patchbay serve` and `patchbay init`: layer the settings, start, and tell the operator the
//! URL, where the data lives, and (on the first run only) the admin token.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use patchbay_server::{Application, LogFormat, Settings, init_logging};
use secrecy::SecretString;

use crate::Global;
use crate::config::FileConfig;
use crate::discover;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file (see `patchbay config example`).
    #[arg(long, env = "PATCHBAY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8750].
    #[arg(long, env = "PATCHBAY_LISTEN")]
    pub listen: Option<String>,
    /// The URL users reach Patchbay at.
    #[arg(long, env = "PATCHBAY_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// PostgreSQL URL; the embedded SQLite store is used when absent.
    #[arg(long, env = "PATCHBAY_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// File holding the base64 master key.
    #[arg(long, env = "PATCHBAY_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, env = "PATCHBAY_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Open an address range to outbound connections despite the deny-list (repeatable).
    #[arg(
        long = "allow-net",
        env = "PATCHBAY_ALLOW_NET",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    pub allow_net: Vec<String>,
    /// A directory SQLite connections may use (repeatable).
    #[arg(
        long = "allow-sqlite-dir",
        env = "PATCHBAY_ALLOW_SQLITE_DIR",
        value_delimiter = ',',
        value_name = "DIR"
    )]
    pub allow_sqlite_dir: Vec<PathBuf>,
    /// A command stdio MCP connections may start (repeatable).
    #[arg(
        long = "allow-command",
        env = "PATCHBAY_ALLOW_COMMAND",
        value_delimiter = ',',
        value_name = "CMD"
    )]
    pub allow_command: Vec<String>,
    /// DNS server for outbound names instead of the system's (repeatable), e.g. 127.0.0.1:53.
    #[arg(
        long = "dns-server",
        env = "PATCHBAY_DNS_SERVER",
        value_delimiter = ',',
        value_name = "ADDR"
    )]
    pub dns_server: Vec<String>,
    /// Connection tests per token per minute (0: unlimited) [default: 10].
    #[arg(long, env = "PATCHBAY_TEST_RATE_LIMIT")]
    pub test_rate_limit: Option<u32>,
    /// Where system events (connection.created, .expired, .refresh_failed, .recovered, .revoked)
    /// are posted, signed with PATCHBAY_EVENT_WEBHOOK_SECRET.
    #[arg(long, env = "PATCHBAY_EVENT_WEBHOOK_URL")]
    pub event_webhook_url: Option<String>,
    /// A directory of YAML provider entries added to (or replacing) the built-in catalog.
    #[arg(long, env = "PATCHBAY_PROVIDERS_DIR")]
    pub providers_dir: Option<PathBuf>,
    /// How often connections are re-tested in the background, e.g. 24h; 0 turns it off
    /// [default: 24h].
    #[arg(long, env = "PATCHBAY_RETEST_INTERVAL")]
    pub retest_interval: Option<String>,
    /// Threads serving connections, each with a runtime of its own [default: one per core].
    #[arg(long, env = "PATCHBAY_SERVE_THREADS")]
    pub serve_threads: Option<usize>,
    /// How long a client may take to send a request's headers, and stay idle between
    /// requests, e.g. 20s [default: 20s].
    #[arg(long, env = "PATCHBAY_HEADER_TIMEOUT")]
    pub header_timeout: Option<String>,
    /// Open client connections at most; more are answered 503 [default: what the open-file
    /// limit allows].
    #[arg(long, env = "PATCHBAY_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Let SMTP connections send AUTH to a non-loopback server without TLS.
    #[arg(long, env = "PATCHBAY_ALLOW_PLAINTEXT_SMTP_AUTH")]
    pub allow_plaintext_smtp_auth: bool,
}

/// `10.0.0.0/8`, or a single address (`127.0.0.2` = `/32`).
fn parse_net(raw: &str) -> Result<patchbay_net::IpNet> {
    let raw = raw.trim();
    if let Ok(net) = raw.parse::<patchbay_net::IpNet>() {
        return Ok(net);
    }
    raw.parse::<std::net::IpAddr>()
        .map(patchbay_net::IpNet::from)
        .with_context(|| format!("--allow-net {raw:?} is not a CIDR range such as 10.0.0.0/8"))
}

/// `24h`, `30m`, `45s`, `7d` or seconds; `0` is off.
fn parse_interval(raw: &str) -> Result<Option<std::time::Duration>> {
    parse_span("--retest-interval", raw)
}

/// A span for `flag`: `24h`, `30m`, `45s`, `7d` or seconds; `0` is `None`.
fn parse_span(flag: &str, raw: &str) -> Result<Option<std::time::Duration>> {
    let raw = raw.trim();
    let (digits, mult) = match raw.chars().last() {
        Some('s') => (&raw[..raw.len() - 1], 1),
        Some('m') => (&raw[..raw.len() - 1], 60),
        Some('h') => (&raw[..raw.len() - 1], 3600),
        Some('d') => (&raw[..raw.len() - 1], 86_400),
        _ => (raw, 1),
    };
    let n: u64 = digits
        .parse()
        .with_context(|| format!("{flag} {raw:?} is not a span such as 24h or 20s"))?;
    Ok((n > 0).then(|| std::time::Duration::from_secs(n * mult)))
}

pub fn settings(args: &ServeArgs, global: &Global) -> Result<Settings> {
    let file = match &args.config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    let data_dir = global
        .data_dir
        .clone()
        .or(file.data_dir)
        .unwrap_or_else(discover::default_data_dir);
    let mut s = Settings::with_data_dir(data_dir);
    let listen = args
        .listen
        .clone()
        .or(file.listen)
        .unwrap_or_else(|| Settings::DEFAULT_LISTEN.into());
    s.listen = listen
        .parse::<SocketAddr>()
        .with_context(|| format!("--listen {listen:?} is not an address such as 127.0.0.1:8750"))?;
    if let Some(u) = args.public_url.clone().or(file.public_url) {
        s.public_url =
            Some(url::Url::parse(&u).with_context(|| format!("--public-url {u:?} is not a URL"))?);
    }
    s.database_url = args.database_url.clone().or(file.database_url);
    if let Some(url) = &s.database_url
        && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
    {
        bail!("--database-url must be a postgres:// URL (the embedded SQLite store needs none)");
    }
    s.master_key_file = args.master_key_file.clone().or(file.master_key_file);
    s.master_key = std::env::var("PATCHBAY_MASTER_KEY")
        .ok()
        .filter(|v| !v.is_empty())
        .map(SecretString::from);
    let format = args
        .log_format
        .clone()
        .or(file.log_format)
        .unwrap_or_else(|| "text".into());
    s.log_format = format.parse::<LogFormat>().map_err(anyhow::Error::msg)?;
    if let Some(limit) = file.body_limit_bytes {
        s.body_limit = limit;
    }
    let nets = if args.allow_net.is_empty() {
        file.allow_net
    } else {
        args.allow_net.clone()
    };
    s.allow_net = nets.iter().map(|n| parse_net(n)).collect::<Result<_>>()?;
    s.allow_sqlite_dirs = if args.allow_sqlite_dir.is_empty() {
        file.allow_sqlite_dirs
    } else {
        args.allow_sqlite_dir.clone()
    };
    s.allow_commands = if args.allow_command.is_empty() {
        file.allow_commands
    } else {
        args.allow_command.clone()
    };
    let dns = if args.dns_server.is_empty() {
        file.dns_servers
    } else {
        args.dns_server.clone()
    };
    s.dns_servers = dns
        .iter()
        .map(|d| {
            d.parse::<SocketAddr>().with_context(|| {
                format!("--dns-server {d:?} is not an address such as 127.0.0.1:53")
            })
        })
        .collect::<Result<_>>()?;
    s.providers_dir = args.providers_dir.clone().or(file.providers_dir);
    if let Some(u) = args.event_webhook_url.clone().or(file.event_webhook_url) {
        s.event_webhook_url = Some(
            url::Url::parse(&u)
                .with_context(|| format!("--event-webhook-url {u:?} is not a URL"))?,
        );
    }
    s.event_webhook_secret = std::env::var("PATCHBAY_EVENT_WEBHOOK_SECRET")
        .ok()
        .filter(|v| !v.is_empty())
        .map(SecretString::from);
    s.test_rate_per_minute = args.test_rate_limit.or(file.test_rate_limit).unwrap_or(10);
    s.retest_interval = parse_interval(
        args.retest_interval
            .as_deref()
            .or(file.retest_interval.as_deref())
            .unwrap_or("24h"),
    )?;
    match args.serve_threads.or(file.serve_threads) {
        Some(0) => bail!("--serve-threads must be at least 1"),
        Some(n) => s.serve_threads = n,
        None => {}
    }
    if let Some(raw) = args
        .header_timeout
        .as_deref()
        .or(file.header_timeout.as_deref())
    {
        s.header_timeout = parse_span("--header-timeout", raw)?
            .context("--header-timeout must be longer than 0")?;
    }
    match args.max_connections.or(file.max_connections) {
        Some(0) => bail!("--max-connections must be at least 1"),
        n => s.max_connections = n.or(s.max_connections),
    }
    s.allow_plaintext_smtp_auth =
        args.allow_plaintext_smtp_auth || file.allow_plaintext_smtp_auth.unwrap_or(false);
    // A secret: from the environment only, never a flag (visible to other users) or the file.
    s.metrics_token = std::env::var("PATCHBAY_METRICS_TOKEN")
        .ok()
        .filter(|v| !v.is_empty())
        .map(SecretString::from);
    Ok(s)
}

pub async fn serve(args: ServeArgs, global: &Global, serve: bool) -> Result<()> {
    let mut settings = settings(&args, global)?;
    init_logging(settings.log_format);
    let data_dir = settings.data_dir.clone();
    let embedded = settings.database_url.is_none();
    let configured = format!("http://{}", settings.listen);
    if !serve {
        // `init` prepares the store without taking the port.
        settings.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    }
    let app = Application::build(settings).await?;
    let url = if serve { app.url() } else { configured };
    if serve {
        println!("Patchbay listening on {url}");
    } else {
        println!("Patchbay initialised");
    }
    println!("Store: {}", app.store_location());
    if let Some(note) = app.key_note() {
        println!("Key: {note}");
    }
    if let Some(why) = app.sealed_reason() {
        println!("WARNING: the vault is sealed ({why}); secrets and actions are unavailable");
    }
    if let Some(token) = app.first_run_token() {
        println!("Admin token (shown once, operator of the default organization): {token}");
    }
    if embedded {
        // Lets `patchbay <command>` on this machine find the server without configuration.
        if let Err(e) = discover::write(&data_dir, &url, app.first_run_token()) {
            eprintln!("warning: could not record the server for the CLI: {e:#}");
        } else if app.first_run_token().is_some() {
            println!(
                "The CLI on this machine will use it from {}",
                data_dir.join(discover::FILE).display()
            );
        }
    }
    if !serve {
        return Ok(());
    }
    app.run_until_stopped()
        .await
        .context("server stopped with an error")?;
    Ok(())
}
