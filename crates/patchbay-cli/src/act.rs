//! Acting through connections from the command line: `patchbay proxy`, `patchbay storage`,
//! `patchbay files`, `patchbay deliveries`.

use std::io::{Read, Write};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use crate::output::{json, table, when};

use crate::Global;

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// The connection to act through (its id).
    pub connection: String,
    /// The HTTP method (GET, POST, …).
    pub method: String,
    /// The path under the connection's base URL, with any query (`/user`, `/items?page=2`).
    pub path: String,
    /// A request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,
    /// The request body; `@-` reads it from standard input, `@FILE` from a file.
    #[arg(short = 'd', long = "data")]
    pub data: Option<String>,
    /// Who is acting, recorded in the connection's `used_by` (a workflow id).
    #[arg(long)]
    pub caller: Option<String>,
    /// Print the status line and headers before the body.
    #[arg(short = 'i', long)]
    pub include: bool,
}

fn body(data: Option<&str>) -> Result<Option<Vec<u8>>> {
    Ok(match data {
        None => None,
        Some("@-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("reading the body from standard input")?;
            Some(buf)
        }
        Some(s) if s.starts_with('@') => Some(
            std::fs::read(&s[1..]).with_context(|| format!("reading the body from {}", &s[1..]))?,
        ),
        Some(s) => Some(s.as_bytes().to_vec()),
    })
}

/// Sends one request through the proxy and prints the upstream's answer; fails (exit 1) unless
/// it is a 2xx.
pub async fn proxy(g: &Global, args: ProxyArgs) -> Result<()> {
    let method = patchbay_client::Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
        .with_context(|| format!("{:?} is not an HTTP method", args.method))?;
    let mut headers = Vec::new();
    for h in &args.headers {
        let Some((k, v)) = h.split_once(':') else {
            bail!("--header {h:?} must look like \"Name: value\"");
        };
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    if let Some(c) = &args.caller {
        headers.push(("Patchbay-Caller".into(), c.clone()));
    }
    let body = body(args.data.as_deref())?;
    let r = crate::commands::client(g)?
        .proxy(&args.connection, method, &args.path, &headers, body)
        .await?;
    let mut out = std::io::stdout().lock();
    if args.include {
        writeln!(out, "HTTP {}", r.status)?;
        for (k, v) in &r.headers {
            writeln!(out, "{k}: {}", v.to_str().unwrap_or("<binary>"))?;
        }
        writeln!(out)?;
    }
    out.write_all(&r.body)?;
    out.flush()?;
    if !r.status.is_success() {
        bail!("the answer was HTTP {}", r.status);
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum DeliveriesCmd {
    /// Queued and past webhook deliveries, newest first.
    List {
        /// pending, delivering, delivered or failed.
        #[arg(long)]
        status: Option<String>,
        /// Only this connection's.
        #[arg(long)]
        connection: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// One delivery.
    Get { id: String },
    /// Send a delivered or failed delivery again (same webhook-id).
    Replay { id: String },
}

fn delivery_rows(items: &[patchbay_domain::actions::Delivery]) {
    table(
        &[
            "ID", "STATUS", "TARGET", "ATTEMPTS", "LAST", "CREATED", "ERROR",
        ],
        items
            .iter()
            .map(|d| {
                vec![
                    d.id.to_string(),
                    d.status.clone(),
                    d.target.clone(),
                    format!("{}/{}", d.attempts, d.max_attempts),
                    d.last_status.map_or("-".into(), |s| s.to_string()),
                    when(Some(d.created_at)),
                    d.last_error.clone().unwrap_or_default(),
                ]
            })
            .collect(),
    );
}

pub async fn deliveries(g: &Global, cmd: DeliveriesCmd) -> Result<()> {
    let c = crate::commands::client(g)?;
    match cmd {
        DeliveriesCmd::List {
            status,
            connection,
            limit,
        } => {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.append_pair("limit", &limit.to_string());
            if let Some(s) = &status {
                q.append_pair("status", s);
            }
            if let Some(c) = &connection {
                q.append_pair("connection", c);
            }
            let page = c.list_deliveries(&q.finish()).await?;
            if g.json {
                return json(&page.items);
            }
            delivery_rows(&page.items);
        }
        DeliveriesCmd::Get { id } => {
            let d = c.get_delivery(&id).await?;
            if g.json {
                return json(&d);
            }
            delivery_rows(std::slice::from_ref(&d));
        }
        DeliveriesCmd::Replay { id } => {
            let d = c.replay_delivery(&id).await?;
            if g.json {
                return json(&d);
            }
            println!("{} queued again (webhook-id {})", d.id, d.webhook_id);
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct StorageArgs {
    /// The storage connection (its id).
    pub connection: String,
    #[command(subcommand)]
    pub op: StorageCmd,
}

#[derive(Debug, Subcommand)]
pub enum StorageCmd {
    /// Store an object: `-d text`, `-d @FILE` or `-d @-` (standard input).
    Put {
        key: String,
        #[arg(short = 'd', long = "data")]
        data: String,
        #[arg(long)]
        content_type: Option<String>,
        /// A canned ACL (private, public-read, …).
        #[arg(long)]
        acl: Option<String>,
    },
    /// Print an object (or write it to `-o FILE`).
    Get {
        key: String,
        #[arg(short = 'o', long)]
        output: Option<std::path::PathBuf>,
    },
    /// List keys under a prefix (relative to the connection's).
    Ls {
        #[arg(default_value = "")]
        prefix: String,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// The `next_cursor` of the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Delete an object.
    Rm { key: String },
    /// Print a URL that lets its holder GET (or, with --put, PUT) the object.
    Presign {
        key: String,
        #[arg(long)]
        put: bool,
        /// Seconds the URL works (at most 604800).
        #[arg(long, default_value_t = 900)]
        expires: u64,
    },
}

/// `patchbay storage CONNECTION put|get|ls|rm|presign …`.
pub async fn storage(g: &Global, args: StorageArgs) -> Result<()> {
    use base64::Engine as _;
    let c = crate::commands::client(g)?;
    let connection = args.connection;
    let action = |v: serde_json::Value| -> Result<patchbay_domain::actions::StorageAction> {
        serde_json::from_value(v).context("building the action")
    };
    let r = match args.op {
        StorageCmd::Get { key, output } => {
            let r = c.storage_get(&connection, &key).await?;
            if !r.status.is_success() {
                let problem = r.json();
                bail!(
                    "{} ({})",
                    problem["detail"].as_str().unwrap_or("refused"),
                    r.status
                );
            }
            match output {
                Some(path) => std::fs::write(&path, &r.body)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&r.body)?;
                    out.flush()?;
                }
            }
            return Ok(());
        }
        StorageCmd::Put {
            key,
            data,
            content_type,
            acl,
        } => {
            let bytes = body(Some(&data))?.unwrap_or_default();
            let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
            c.storage_action(&action(
                serde_json::json!({"connection": connection, "op": "put",
                "key": key, "body": encoded, "encoding": "base64",
                "content_type": content_type, "acl": acl}),
            )?)
            .await?
        }
        StorageCmd::Ls {
            prefix,
            limit,
            cursor,
        } => {
            let r = c
                .storage_action(&action(serde_json::json!({"connection": connection,
                    "op": "list", "prefix": (!prefix.is_empty()).then_some(prefix),
                    "limit": limit, "cursor": cursor}))?)
                .await?;
            if !g.json {
                let objects = r.objects.clone().unwrap_or_default();
                table(
                    &["KEY", "SIZE", "MODIFIED"],
                    objects
                        .iter()
                        .map(|o| {
                            vec![
                                o.key.clone(),
                                o.size.to_string(),
                                o.last_modified.clone().unwrap_or_default(),
                            ]
                        })
                        .collect(),
                );
                if let Some(next) = &r.next_cursor {
                    println!("more: --cursor {next}");
                }
                return Ok(());
            }
            r
        }
        StorageCmd::Rm { key } => {
            c.storage_action(&action(
                serde_json::json!({"connection": connection, "op": "delete", "key": key}),
            )?)
            .await?
        }
        StorageCmd::Presign { key, put, expires } => {
            let r = c
                .storage_action(&action(serde_json::json!({"connection": connection,
                    "op": "presign", "key": key, "method": if put { "PUT" } else { "GET" },
                    "expires_in": expires}))?)
                .await?;
            if !g.json {
                println!("{}", r.url.clone().unwrap_or_default());
                return Ok(());
            }
            r
        }
    };
    if g.json {
        return json(&r);
    }
    match r.op.as_str() {
        "put" => println!(
            "stored {} ({} bytes)",
            r.key.unwrap_or_default(),
            r.size.unwrap_or_default()
        ),
        _ => println!("deleted {}", r.key.unwrap_or_default()),
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct FilesArgs {
    /// The file-transfer connection (its id).
    pub connection: String,
    #[command(subcommand)]
    pub op: FilesCmd,
}

#[derive(Debug, Subcommand)]
pub enum FilesCmd {
    /// Write a file (relative to the base directory): `-d text`, `-d @FILE` or `-d @-`.
    Put {
        path: String,
        #[arg(short = 'd', long = "data")]
        data: String,
    },
    /// Print a file (or write it to `-o FILE`).
    Get {
        path: String,
        #[arg(short = 'o', long)]
        output: Option<std::path::PathBuf>,
    },
    /// List a directory (the base directory by default).
    Ls {
        #[arg(default_value = "")]
        path: String,
    },
    /// Delete a file or an empty directory.
    Rm { path: String },
    /// Create a directory and its missing parents.
    Mkdir { path: String },
}

/// `patchbay files CONNECTION put|get|ls|rm|mkdir …`.
pub async fn files(g: &Global, args: FilesArgs) -> Result<()> {
    use base64::Engine as _;
    let c = crate::commands::client(g)?;
    let connection = args.connection;
    let run = |v: serde_json::Value| {
        let c = &c;
        async move {
            let a: patchbay_domain::actions::FilesAction =
                serde_json::from_value(v).context("building the action")?;
            anyhow::Ok(c.files_action(&a).await?)
        }
    };
    let r = match args.op {
        FilesCmd::Put { path, data } => {
            let bytes = body(Some(&data))?.unwrap_or_default();
            let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
            run(
                serde_json::json!({"connection": connection, "op": "put", "path": path,
                "body": encoded, "encoding": "base64"}),
            )
            .await?
        }
        FilesCmd::Get { path, output } => {
            let r = run(serde_json::json!({"connection": connection, "op": "get",
                "path": path, "encoding": "base64"}))
            .await?;
            if !g.json {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(r.body.as_deref().unwrap_or_default())
                    .context("reading the file's content")?;
                match output {
                    Some(path) => std::fs::write(&path, &bytes)
                        .with_context(|| format!("writing {}", path.display()))?,
                    None => {
                        let mut out = std::io::stdout().lock();
                        out.write_all(&bytes)?;
                        out.flush()?;
                    }
                }
                return Ok(());
            }
            r
        }
        FilesCmd::Ls { path } => {
            let r = run(serde_json::json!({"connection": connection, "op": "list",
                "path": (!path.is_empty()).then_some(path)}))
            .await?;
            if !g.json {
                table(
                    &["NAME", "KIND", "SIZE", "MODIFIED"],
                    r.entries
                        .iter()
                        .flatten()
                        .map(|e| {
                            vec![
                                e.name.clone(),
                                e.kind.clone(),
                                e.size.map(|s| s.to_string()).unwrap_or_default(),
                                e.modified.map(|m| m.to_rfc3339()).unwrap_or_default(),
                            ]
                        })
                        .collect(),
                );
                return Ok(());
            }
            r
        }
        FilesCmd::Rm { path } => {
            run(serde_json::json!({"connection": connection, "op": "delete", "path": path})).await?
        }
        FilesCmd::Mkdir { path } => {
            run(serde_json::json!({"connection": connection, "op": "mkdir", "path": path})).await?
        }
    };
    if g.json {
        return json(&r);
    }
    match r.op.as_str() {
        "put" => println!("wrote {} ({} bytes)", r.path, r.size.unwrap_or_default()),
        "mkdir" if r.created == Some(false) => println!("{} exists already", r.path),
        "mkdir" => println!("created {}", r.path),
        _ => println!("deleted {}", r.path),
    }
    Ok(())
}
