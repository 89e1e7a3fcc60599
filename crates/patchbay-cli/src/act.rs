//! Acting through connections from the command line: `patchbay proxy`.

use std::io::{Read, Write};

use anyhow::{Context, Result, bail};
use clap::Args;

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
