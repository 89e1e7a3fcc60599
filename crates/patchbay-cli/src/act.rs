//! Acting through connections from the command line: `patchbay proxy`, `patchbay deliveries`.

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
