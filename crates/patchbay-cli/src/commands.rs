//! The client commands: each calls the API and prints a table or JSON.

use std::io::Read;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, CommandFactory, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use patchbay_client::Client;
use patchbay_domain::api::{
    CreateConnection, CreateProject, CreateToken, PutSecret, UpdateConnection,
};
use patchbay_domain::{ProjectId, Role};
use serde_json::{Map, Value};

use crate::output::{json, table, when};
use crate::{Cli, Command, Global, discover};

#[derive(Debug, Subcommand)]
pub enum OrgsCmd {
    /// Create an organization; prints its first admin token once.
    Create {
        name: String,
    },
    List,
}

#[derive(Debug, Subcommand)]
pub enum ProjectsCmd {
    List,
    Create {
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConnectionsCmd {
    /// List connections.
    List {
        #[arg(long)]
        project: Option<String>,
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        provider: Option<String>,
        #[arg(long)]
        auth: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Follow next_cursor until the last page.
        #[arg(long)]
        all: bool,
    },
    /// Show one connection (secrets only as set/unset).
    Get { id: String },
    /// Create a connection.
    Create(ConnectionArgs),
    /// Change a connection; omitted secrets are kept.
    Update {
        id: String,
        #[command(flatten)]
        args: ConnectionArgs,
        /// Refuse the change unless the connection is still at this version.
        #[arg(long)]
        if_match: Option<i64>,
        /// Set the status: active or disabled.
        #[arg(long)]
        status: Option<String>,
    },
    /// Soft-delete a connection (its secrets are destroyed).
    Delete { id: String },
    /// Print decrypted credentials (executor or admin; audited).
    Credentials { id: String },
    /// Test a saved connection, or (without an id) a connection described by the flags.
    Test {
        id: Option<String>,
        #[command(flatten)]
        args: ConnectionArgs,
    },
}

#[derive(Debug, Args)]
pub struct ConnectionArgs {
    #[arg(long)]
    pub name: Option<String>,
    /// http, database, smtp, webhook or mcp.
    #[arg(long)]
    pub kind: Option<String>,
    #[arg(long)]
    pub provider: Option<String>,
    /// Project id or name (default: `default`).
    #[arg(long)]
    pub project: Option<String>,
    /// Auth as JSON, e.g. '{"type":"bearer"}'; or just the type: --auth bearer.
    #[arg(long)]
    pub auth: Option<String>,
    /// Config as JSON, e.g. '{"base_url":"https://api.github.com"}'.
    #[arg(long)]
    pub config: Option<String>,
    /// One config value, KEY=VALUE (JSON values are parsed: port=5432, ssl=false).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// A secret field, FIELD=VALUE. Prefer --secret-env or --secret-stdin, which keep the
    /// value out of shell history.
    #[arg(long = "secret", value_name = "FIELD=VALUE")]
    pub secret: Vec<String>,
    /// A secret field read from an environment variable, FIELD=VAR.
    #[arg(long = "secret-env", value_name = "FIELD=VAR")]
    pub secret_env: Vec<String>,
    /// A secret field read from standard input (one field).
    #[arg(long = "secret-stdin", value_name = "FIELD")]
    pub secret_stdin: Option<String>,
    /// A secret field that refers to an organization secret, FIELD=SECRET_NAME.
    #[arg(long = "secret-ref", value_name = "FIELD=NAME")]
    pub secret_ref: Vec<String>,
    /// Read the whole body as JSON from this file (- for stdin); flags add to it.
    #[arg(long)]
    pub from_file: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum OauthCmd {
    /// Print the authorization URL of an oauth2 connection and wait until it is connected.
    Connect {
        connection: String,
        /// How long to wait for the browser, in seconds.
        #[arg(long, default_value_t = 600)]
        wait: u64,
    },
}

#[derive(Debug, Args)]
pub struct ProvidersArgs {
    /// Show one provider in full.
    pub key: Option<String>,
    /// Only providers of this category (ai, crm, email, …).
    #[arg(long)]
    pub category: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SecretsCmd {
    List,
    /// Create or replace a secret; the value comes from stdin unless --value-env is given.
    Set {
        name: String,
        #[arg(long)]
        value_env: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Share it only with these projects (ids or names; repeatable, or comma-separated).
        #[arg(long = "project", value_delimiter = ',')]
        projects: Vec<String>,
    },
    Delete {
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokensCmd {
    List,
    /// Create a token; its value is printed once.
    Create {
        #[arg(long)]
        name: String,
        /// admin, member, executor or viewer.
        #[arg(long)]
        role: String,
        /// Limit the token to one project (id).
        #[arg(long)]
        project: Option<String>,
    },
    Revoke {
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub cmd: Option<AuditCmd>,
    #[arg(long)]
    pub actor: Option<String>,
    #[arg(long)]
    pub action: Option<String>,
    #[arg(long)]
    pub target: Option<String>,
    /// RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Check the hash chain.
    Verify,
}

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Key versions and how many ciphertexts each seals.
    Status,
    /// Add a key version and re-encrypt every secret onto it, with progress.
    Rotate,
}

pub async fn run(cli: Cli) -> Result<()> {
    let g = &cli.global;
    match cli.command {
        Command::Serve(args) => crate::serve::serve(args, g, true).await,
        Command::Init(args) => crate::serve::serve(args, g, false).await,
        Command::Config(crate::config::ConfigCmd::Example) => {
            crate::config::example();
            Ok(())
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "patchbay",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Me => {
            let me = client(g)?.me().await?;
            if g.json {
                return json(&me);
            }
            println!("organization: {} ({})", me.org_name, me.org);
            println!("role:         {}", me.role.as_str());
            println!(
                "project:      {}",
                me.project.map_or("(all)".into(), |p| p.to_string())
            );
            println!("operator:     {}", me.operator);
            Ok(())
        }
        Command::Orgs(cmd) => orgs(g, cmd).await,
        Command::Projects(cmd) => projects(g, cmd).await,
        Command::Connections(cmd) => connections(g, *cmd).await,
        Command::Secrets(cmd) => secrets(g, cmd).await,
        Command::Providers(args) => providers(g, args).await,
        Command::Proxy(args) => crate::act::proxy(g, args).await,
        Command::Deliveries(cmd) => crate::act::deliveries(g, cmd).await,
        Command::Hooks(cmd) => crate::hooks::hooks(g, cmd).await,
        Command::Storage(args) => crate::act::storage(g, args).await,
        Command::Files(args) => crate::act::files(g, args).await,
        Command::Mcp(cmd) => crate::mcp::run(g, *cmd).await,
        Command::Oauth(OauthCmd::Connect { connection, wait }) => {
            oauth_connect(g, &connection, wait).await
        }
        Command::Tokens(cmd) => tokens(g, cmd).await,
        Command::Audit(args) => audit(g, args).await,
        Command::Keys(cmd) => keys(g, cmd).await,
    }
}

pub(crate) fn client(g: &Global) -> Result<Client> {
    let found = discover::read(
        &g.data_dir
            .clone()
            .unwrap_or_else(discover::default_data_dir),
    );
    let url = g
        .url
        .clone()
        .or_else(|| found.as_ref().map(|d| d.url.clone()))
        .ok_or_else(|| anyhow!("no server: pass --url or set PATCHBAY_URL (or run `patchbay serve` on this machine)"))?;
    let token = g.token.clone().or_else(|| found.and_then(|d| d.token));
    if token.is_none() {
        bail!("no token: pass --token or set PATCHBAY_TOKEN");
    }
    Ok(Client::new(&url, token)?)
}

async fn orgs(g: &Global, cmd: OrgsCmd) -> Result<()> {
    let c = client(g)?;
    match cmd {
        OrgsCmd::Create { name } => {
            let org = c.create_org(&name).await?;
            if g.json {
                return json(&org);
            }
            println!("created organization {} ({})", org.name, org.id);
            println!("admin token (shown once): {}", org.admin_token);
        }
        OrgsCmd::List => {
            let list = c.list_orgs().await?;
            if g.json {
                return json(&list);
            }
            table(
                &["ID", "NAME", "CREATED"],
                list.iter()
                    .map(|o| vec![o.id.to_string(), o.name.clone(), when(Some(o.created_at))])
                    .collect(),
            );
        }
    }
    Ok(())
}

async fn projects(g: &Global, cmd: ProjectsCmd) -> Result<()> {
    let c = client(g)?;
    match cmd {
        ProjectsCmd::List => {
            let list = c.list_projects().await?;
            if g.json {
                return json(&list);
            }
            table(
                &["ID", "NAME", "DESCRIPTION"],
                list.iter()
                    .map(|p| {
                        vec![
                            p.id.to_string(),
                            p.name.clone(),
                            p.description.clone().unwrap_or_default(),
                        ]
                    })
                    .collect(),
            );
        }
        ProjectsCmd::Create { name, description } => {
            let p = c
                .create_project(&CreateProject { name, description })
                .await?;
            if g.json {
                return json(&p);
            }
            println!("created project {} ({})", p.name, p.id);
        }
    }
    Ok(())
}

pub(crate) fn split_pair<'a>(raw: &'a str, flag: &str) -> Result<(&'a str, &'a str)> {
    raw.split_once('=').ok_or_else(|| {
        anyhow!(
            "{flag} takes KEY=VALUE, got {:?}",
            raw.split('=').next().unwrap_or("")
        )
    })
}

fn parse_object(raw: &str, flag: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(m)) => Ok(m),
        _ => bail!("{flag} must be a JSON object"),
    }
}

/// Builds a JSON body from the flags (on top of --from-file).
pub(crate) fn connection_body(a: &ConnectionArgs) -> Result<Map<String, Value>> {
    let mut body = match &a.from_file {
        None => Map::new(),
        Some(path) => {
            let mut text = String::new();
            if path == "-" {
                std::io::stdin().read_to_string(&mut text)?;
            } else {
                text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
            }
            parse_object(&text, "--from-file")?
        }
    };
    for (key, v) in [
        ("name", &a.name),
        ("kind", &a.kind),
        ("provider", &a.provider),
        ("project", &a.project),
    ] {
        if let Some(v) = v {
            body.insert(key.into(), Value::String(v.clone()));
        }
    }
    if let Some(auth) = &a.auth {
        let auth = if auth.trim_start().starts_with('{') {
            parse_object(auth, "--auth")?
        } else {
            Map::from_iter([("type".to_owned(), Value::String(auth.clone()))])
        };
        body.insert("auth".into(), Value::Object(auth));
    }
    let mut config = match body.remove("config") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    if let Some(c) = &a.config {
        config.extend(parse_object(c, "--config")?);
    }
    for s in &a.set {
        let (k, v) = split_pair(s, "--set")?;
        let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()));
        config.insert(k.to_owned(), value);
    }
    if !config.is_empty() {
        body.insert("config".into(), Value::Object(config));
    }
    let mut secrets = match body.remove("secrets") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for s in &a.secret {
        let (k, v) = split_pair(s, "--secret")?;
        secrets.insert(k.to_owned(), Value::String(v.to_owned()));
    }
    for s in &a.secret_env {
        let (k, var) = split_pair(s, "--secret-env")?;
        let v = std::env::var(var)
            .with_context(|| format!("--secret-env: variable {var} is not set"))?;
        secrets.insert(k.to_owned(), Value::String(v));
    }
    for s in &a.secret_ref {
        let (k, name) = split_pair(s, "--secret-ref")?;
        secrets.insert(k.to_owned(), serde_json::json!({"ref": name}));
    }
    if let Some(field) = &a.secret_stdin {
        let mut v = String::new();
        std::io::stdin().read_to_string(&mut v)?;
        secrets.insert(
            field.clone(),
            Value::String(v.trim_end_matches(['\r', '\n']).to_owned()),
        );
    }
    if !secrets.is_empty() {
        body.insert("secrets".into(), Value::Object(secrets));
    }
    Ok(body)
}

fn connection_row(c: &patchbay_domain::connection::Connection) -> Vec<String> {
    let target = ["base_url", "url", "server_url", "host", "command"]
        .iter()
        .find_map(|k| c.config.get(*k).and_then(Value::as_str))
        .unwrap_or("-")
        .to_owned();
    vec![
        c.id.to_string(),
        c.name.to_string(),
        format!("{}/{}", c.kind, c.auth_type()),
        c.provider.clone(),
        target,
        c.status.to_string(),
        c.test_status.to_string(),
    ]
}

const CONNECTION_HEADERS: &[&str] = &[
    "ID",
    "NAME",
    "KIND/AUTH",
    "PROVIDER",
    "TARGET",
    "STATUS",
    "TEST",
];

fn print_connection(c: &patchbay_domain::connection::Connection) {
    table(CONNECTION_HEADERS, vec![connection_row(c)]);
    let secrets: Vec<String> = c
        .secrets
        .iter()
        .map(|(k, s)| match &s.reference {
            Some(r) => format!("{k} (ref {r})"),
            None => format!("{k} (set)"),
        })
        .collect();
    println!(
        "project: {}  version: {}  secrets: {}",
        c.project,
        c.version,
        if secrets.is_empty() {
            "none".into()
        } else {
            secrets.join(", ")
        }
    );
}

async fn connections(g: &Global, cmd: ConnectionsCmd) -> Result<()> {
    let c = client(g)?;
    match cmd {
        ConnectionsCmd::List {
            project,
            kind,
            provider,
            auth,
            status,
            limit,
            all,
        } => {
            let mut params: Vec<(String, String)> = vec![("limit".into(), limit.to_string())];
            for (k, v) in [
                ("project", project),
                ("kind", kind),
                ("provider", provider),
                ("auth", auth),
                ("status", status),
            ] {
                if let Some(v) = v {
                    params.push((k.into(), v));
                }
            }
            let mut items = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut q = params.clone();
                if let Some(cur) = &cursor {
                    q.push(("cursor".into(), cur.clone()));
                }
                let query = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(q)
                    .finish();
                let page = c.list_connections(&query).await?;
                items.extend(page.items);
                match page.next_cursor {
                    Some(next) if all => cursor = Some(next),
                    _ => break,
                }
            }
            if g.json {
                return json(&items);
            }
            table(
                CONNECTION_HEADERS,
                items.iter().map(connection_row).collect(),
            );
        }
        ConnectionsCmd::Get { id } => {
            let conn = c.get_connection(&id).await?;
            if g.json {
                return json(&conn);
            }
            print_connection(&conn);
        }
        ConnectionsCmd::Create(args) => {
            let body = connection_body(&args)?;
            let req: CreateConnection = serde_json::from_value(Value::Object(body))
                .context("a connection needs at least --name and --kind")?;
            let conn = c.create_connection(&req).await?;
            if g.json {
                return json(&conn);
            }
            println!("created connection {}", conn.id);
            print_connection(&conn);
        }
        ConnectionsCmd::Update {
            id,
            args,
            if_match,
            status,
        } => {
            let mut body = connection_body(&args)?;
            body.remove("project");
            if let Some(kind) = body.remove("kind") {
                bail!("a connection's kind cannot change (asked for {kind})");
            }
            if let Some(s) = status {
                body.insert("status".into(), Value::String(s));
            }
            let req: UpdateConnection = serde_json::from_value(Value::Object(body))?;
            let conn = c.update_connection(&id, &req, if_match).await?;
            if g.json {
                return json(&conn);
            }
            println!("updated connection {} (version {})", conn.id, conn.version);
        }
        ConnectionsCmd::Delete { id } => {
            c.delete_connection(&id).await?;
            if !g.json {
                println!("deleted connection {id}");
            }
        }
        ConnectionsCmd::Credentials { id } => {
            json(&c.credentials(&id).await?)?;
        }
        ConnectionsCmd::Test { id, args } => {
            let result = match id {
                Some(id) => c.test_connection(&id).await?,
                None => {
                    let body = connection_body(&args)?;
                    let req: CreateConnection = serde_json::from_value(Value::Object(body))?;
                    c.test_unsaved(&req).await?
                }
            };
            if g.json {
                json(&result)?;
            } else if result.success {
                println!("✓ {} ({} ms)", result.message, result.latency_ms);
            } else {
                let kind = result.error_kind.map_or("error", |k| k.as_str());
                println!("✗ {} ({kind}, {} ms)", result.message, result.latency_ms);
            }
            if !result.success {
                bail!("the connection test failed");
            }
        }
    }
    Ok(())
}

async fn oauth_connect(g: &Global, connection: &str, wait: u64) -> Result<()> {
    let c = client(g)?;
    let linked_at = |conn: &patchbay_domain::connection::Connection| {
        conn.oauth.as_ref().and_then(|o| o.linked_at)
    };
    let before = linked_at(&c.get_connection(connection).await?);
    let started = c.start_oauth(connection).await?;
    let url = started["authorization_url"]
        .as_str()
        .ok_or_else(|| anyhow!("the server gave no authorization URL"))?;
    if g.json {
        json(&started)?;
    } else {
        println!("Open this URL in a browser to connect the account:\n\n  {url}\n");
        println!("Waiting for the authorization to complete (Ctrl-C to stop)…");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(wait);
    while std::time::Instant::now() < deadline {
        let conn = c.get_connection(connection).await?;
        match conn.status.as_str() {
            "active" if conn.oauth.is_some() && linked_at(&conn) != before => {
                if !g.json {
                    println!("✓ connected");
                }
                return Ok(());
            }
            "expired" | "revoked" => bail!("the connection is {}", conn.status),
            _ => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
    bail!("no authorization arrived within {wait} s (the URL stays valid for 10 minutes)")
}

async fn providers(g: &Global, args: ProvidersArgs) -> Result<()> {
    let c = client(g)?;
    if let Some(key) = args.key {
        return json(&c.get_provider(&key).await?);
    }
    let list = c.list_providers(args.category.as_deref()).await?;
    if g.json {
        return json(&list);
    }
    table(
        &["KEY", "NAME", "AUTH", "BASE URL"],
        list.iter()
            .map(|p| {
                vec![
                    p.key.clone(),
                    p.display_name.clone(),
                    p.auth_modes.join(", "),
                    p.base_url.clone().unwrap_or_default(),
                ]
            })
            .collect(),
    );
    Ok(())
}

async fn secrets(g: &Global, cmd: SecretsCmd) -> Result<()> {
    let c = client(g)?;
    match cmd {
        SecretsCmd::List => {
            let list = c.list_secrets().await?;
            if g.json {
                return json(&list);
            }
            table(
                &["NAME", "DESCRIPTION", "UPDATED"],
                list.iter()
                    .map(|s| {
                        vec![
                            s.name.clone(),
                            s.description.clone().unwrap_or_default(),
                            when(Some(s.updated_at)),
                        ]
                    })
                    .collect(),
            );
        }
        SecretsCmd::Set {
            name,
            value_env,
            description,
            projects,
        } => {
            let value = match value_env {
                Some(var) => {
                    std::env::var(&var).with_context(|| format!("variable {var} is not set"))?
                }
                None => {
                    let mut v = String::new();
                    std::io::stdin().read_to_string(&mut v)?;
                    v.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            let meta = c
                .put_secret(
                    &name,
                    &PutSecret {
                        value,
                        description,
                        projects: (!projects.is_empty()).then_some(Some(projects)),
                    },
                )
                .await?;
            if g.json {
                return json(&meta);
            }
            println!("secret {} stored", meta.name);
        }
        SecretsCmd::Delete { name } => {
            c.delete_secret(&name).await?;
            if !g.json {
                println!("deleted secret {name}");
            }
        }
    }
    Ok(())
}

async fn tokens(g: &Global, cmd: TokensCmd) -> Result<()> {
    let c = client(g)?;
    match cmd {
        TokensCmd::List => {
            let list = c.list_tokens().await?;
            if g.json {
                return json(&list);
            }
            table(
                &["ID", "NAME", "ROLE", "PROJECT", "HINT", "LAST USED"],
                list.iter()
                    .map(|t| {
                        vec![
                            t.id.to_string(),
                            t.name.clone(),
                            t.role.as_str().into(),
                            t.project.as_ref().map_or("-".into(), |p| p.to_string()),
                            t.hint.clone(),
                            when(t.last_used_at),
                        ]
                    })
                    .collect(),
            );
        }
        TokensCmd::Create {
            name,
            role,
            project,
        } => {
            let role = Role::parse(&role)
                .ok_or_else(|| anyhow!("--role must be admin, member, executor or viewer"))?;
            let project = project
                .map(|p| p.parse::<ProjectId>())
                .transpose()
                .map_err(|_| anyhow!("--project takes a project id (prj_…)"))?;
            let t = c
                .create_token(&CreateToken {
                    name,
                    role,
                    project,
                })
                .await?;
            if g.json {
                return json(&t);
            }
            println!("created token {} ({})", t.token.name, t.token.id);
            println!("value (shown once): {}", t.value);
        }
        TokensCmd::Revoke { id } => {
            c.revoke_token(&id).await?;
            if !g.json {
                println!("revoked token {id}");
            }
        }
    }
    Ok(())
}

async fn audit(g: &Global, args: AuditArgs) -> Result<()> {
    let c = client(g)?;
    if let Some(AuditCmd::Verify) = args.cmd {
        let v = c.verify_audit().await?;
        if g.json {
            return json(&v);
        }
        match v.broken_at {
            None => println!("audit chain intact ({} events)", v.events),
            Some(seq) => bail!("audit chain broken at event {seq}"),
        }
        return Ok(());
    }
    let mut q = vec![("limit".to_owned(), args.limit.to_string())];
    for (k, v) in [
        ("actor", args.actor),
        ("action", args.action),
        ("target", args.target),
        ("since", args.since),
    ] {
        if let Some(v) = v {
            q.push((k.into(), v));
        }
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(q)
        .finish();
    let page = c.audit(&query).await?;
    if g.json {
        return json(&page.items);
    }
    table(
        &["SEQ", "AT", "ACTOR", "ACTION", "TARGET", "OUTCOME"],
        page.items
            .iter()
            .map(|e| {
                vec![
                    e.seq.to_string(),
                    when(Some(e.at)),
                    e.actor.clone(),
                    e.action.clone(),
                    e.target.clone().unwrap_or_default(),
                    e.outcome.clone(),
                ]
            })
            .collect(),
    );
    Ok(())
}

async fn keys(g: &Global, cmd: KeysCmd) -> Result<()> {
    let c = client(g)?;
    match cmd {
        KeysCmd::Status => {
            let s = c.keys().await?;
            if g.json {
                return json(&s);
            }
            println!(
                "sealed: {}  current version: {}",
                s.sealed,
                s.current_version.map_or("-".into(), |v| v.to_string())
            );
            table(
                &["VERSION", "CREATED", "CIPHERTEXTS"],
                s.versions
                    .iter()
                    .map(|v| {
                        vec![
                            v.version.to_string(),
                            when(Some(v.created_at)),
                            v.rows.to_string(),
                        ]
                    })
                    .collect(),
            );
        }
        KeysCmd::Rotate => {
            let started = c.rotate_keys().await?;
            let bar = if g.json {
                ProgressBar::hidden()
            } else {
                ProgressBar::new(started.total.max(0) as u64)
            };
            bar.set_style(
                ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ciphertexts ({eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_message(format!(
                "re-encrypting onto key v{}",
                started.target_version
            ));
            let finished = loop {
                let status = c.keys().await?;
                let r = status
                    .rotation
                    .ok_or_else(|| anyhow!("the server lost track of the rotation"))?;
                bar.set_length(r.total.max(0) as u64);
                bar.set_position(r.done.max(0) as u64);
                if !g.json && !bar.is_hidden() {
                    // Also visible when stdout is not a terminal (logs, CI).
                } else if !g.json {
                    println!("progress: {}/{}", r.done, r.total);
                }
                if r.finished {
                    break r;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            bar.finish();
            if let Some(e) = &finished.error {
                bail!("rotation failed: {e}");
            }
            if g.json {
                return json(&finished);
            }
            println!(
                "rotated: {} ciphertexts now on key v{}",
                finished.done, finished.target_version
            );
        }
    }
    Ok(())
}
