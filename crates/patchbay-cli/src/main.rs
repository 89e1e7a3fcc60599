//! `patchbay`: the server (`serve`, `init`) and a client for its API (everything else).

mod act;
mod commands;
mod config;
mod discover;
mod hooks;
mod mcp;
mod output;
mod serve;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "patchbay",
    version,
    about = "A self-hostable connections hub",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Server URL (default: the one `patchbay serve` recorded in the data directory).
    #[arg(long, env = "PATCHBAY_URL", global = true)]
    pub url: Option<String>,
    /// API token (default: the first-run token recorded in the data directory).
    #[arg(long, env = "PATCHBAY_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Data directory of the embedded default.
    #[arg(long, env = "PATCHBAY_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (embedded SQLite by default).
    Serve(serve::ServeArgs),
    /// Create the data directory, key file and first-run token without serving.
    Init(serve::ServeArgs),
    /// Who am I?
    Me,
    /// Organizations (operator).
    #[command(subcommand)]
    Orgs(commands::OrgsCmd),
    /// Projects.
    #[command(subcommand)]
    Projects(commands::ProjectsCmd),
    /// Connections.
    #[command(subcommand, alias = "conn")]
    Connections(Box<commands::ConnectionsCmd>),
    /// OAuth: connect an account.
    #[command(subcommand)]
    Oauth(commands::OauthCmd),
    /// Send a request through a connection: `patchbay proxy con_… GET /user`.
    Proxy(act::ProxyArgs),
    /// Objects in a storage connection's bucket: `patchbay storage con_… ls`.
    Storage(act::StorageArgs),
    /// Files on a file-transfer connection's server: `patchbay files con_… ls`.
    Files(act::FilesArgs),
    /// Webhook deliveries (the outbox).
    #[command(subcommand)]
    Deliveries(act::DeliveriesCmd),
    /// Inbound webhook endpoints and their events.
    #[command(subcommand)]
    Hooks(hooks::HooksCmd),
    /// MCP servers: discover one, list a connection's tools, call a tool.
    #[command(subcommand)]
    Mcp(Box<mcp::McpCmd>),
    /// The provider catalog.
    Providers(commands::ProvidersArgs),
    /// Organization secrets (write-only values).
    #[command(subcommand)]
    Secrets(commands::SecretsCmd),
    /// API tokens (admin).
    #[command(subcommand)]
    Tokens(commands::TokensCmd),
    /// The audit log (admin).
    Audit(commands::AuditArgs),
    /// Encryption keys (operator).
    #[command(subcommand)]
    Keys(commands::KeysCmd),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(config::ConfigCmd),
    /// Print shell completions.
    Completions { shell: clap_complete::Shell },
}

/// mimalloc: the proxy's many small, short-lived allocations across threads contend on glibc's
/// arenas.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
