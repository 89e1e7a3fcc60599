//! `patchbay mcp`: MCP servers from the command line — discover one before saving it, list a
//! connection's tools, call one, and the registry of known servers.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use patchbay_domain::actions::{McpAction, McpActionResult};
use patchbay_domain::api::{McpDiscover, McpDiscovery};
use serde_json::{Map, Value};

use crate::Global;
use crate::commands::{ConnectionArgs, client, connection_body, split_pair};
use crate::output::{json, table};

#[derive(Debug, Subcommand)]
pub enum McpCmd {
    /// Connect to a server and list its tools without saving anything:
    /// `patchbay mcp discover --server-url https://…/mcp --auth bearer --secret-env token=TOKEN`.
    Discover(Box<DiscoverArgs>),
    /// A saved MCP connection's tools (as last discovered; --refresh asks the server again).
    Tools {
        connection: String,
        #[arg(long)]
        refresh: bool,
    },
    /// Call a tool: `patchbay mcp call con_… echo --arg message=hi`; fails when the tool
    /// answers an error.
    Call(CallArgs),
    /// The registry of known MCP servers.
    Providers,
}

#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// The server's URL (Streamable HTTP, or legacy SSE with --transport sse).
    #[arg(long)]
    pub server_url: Option<String>,
    /// A stdio server's command (the operator must allow it).
    #[arg(long)]
    pub command: Option<String>,
    /// streamable_http, sse or stdio.
    #[arg(long)]
    pub transport: Option<String>,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(Debug, Args)]
pub struct CallArgs {
    pub connection: String,
    pub tool: String,
    /// The arguments as a JSON object.
    #[arg(long)]
    pub args: Option<String>,
    /// One argument, KEY=VALUE (JSON values are parsed: n=3, flag=true).
    #[arg(long = "arg", value_name = "KEY=VALUE")]
    pub arg: Vec<String>,
    #[arg(long)]
    pub timeout_ms: Option<u64>,
}

pub async fn run(g: &Global, cmd: McpCmd) -> Result<()> {
    let c = client(g)?;
    match cmd {
        McpCmd::Discover(a) => {
            let body = discover_body(&a)?;
            let found = c.mcp_discover(&body).await?;
            print_discovery(g, &found)?;
            if !found.test.success {
                bail!("the discovery failed");
            }
        }
        McpCmd::Tools {
            connection,
            refresh,
        } => {
            let tools = if refresh {
                let found = c.refresh_tools(&connection).await?;
                if !found.test.success {
                    print_discovery(g, &found)?;
                    bail!("the discovery failed");
                }
                found.tools
            } else {
                let conn = c.get_connection(&connection).await?;
                match conn.mcp.as_ref().and_then(|m| m["tools"].as_array()) {
                    Some(tools) => tools.clone(),
                    None => {
                        // Never discovered (its server was down): ask now.
                        c.refresh_tools(&connection).await?.tools
                    }
                }
            };
            if g.json {
                return json(&tools);
            }
            tool_rows(&tools);
        }
        McpCmd::Call(a) => {
            let action = McpAction {
                connection: a
                    .connection
                    .parse()
                    .with_context(|| format!("{:?} is not a connection id", a.connection))?,
                tool: a.tool.clone(),
                arguments: Some(arguments(&a)?),
                timeout_ms: a.timeout_ms,
            };
            let result = c.mcp_action(&action).await?;
            print_result(g, &result)?;
            if result.is_error {
                bail!("the tool {} answered an error", a.tool);
            }
        }
        McpCmd::Providers => {
            let providers = c.mcp_providers().await?;
            if g.json {
                return json(&providers);
            }
            table(
                &["NAME", "SERVER", "TRANSPORT", "AUTH"],
                providers
                    .iter()
                    .map(|p| {
                        let server = p
                            .default_server_url
                            .clone()
                            .or_else(|| {
                                p.command.as_ref().map(|c| {
                                    [c.clone()]
                                        .into_iter()
                                        .chain(p.args.clone())
                                        .collect::<Vec<_>>()
                                        .join(" ")
                                })
                            })
                            .unwrap_or_else(|| "(your URL)".into());
                        vec![
                            p.name.clone(),
                            server,
                            p.transport.clone(),
                            p.auth_types.join(", "),
                        ]
                    })
                    .collect(),
            );
        }
    }
    Ok(())
}

/// The discovery body: the connection flags, their config at the top level.
fn discover_body(a: &DiscoverArgs) -> Result<McpDiscover> {
    let mut body = connection_body(&a.connection)?;
    let mut config = match body.remove("config") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for (k, v) in [
        ("server_url", &a.server_url),
        ("command", &a.command),
        ("transport", &a.transport),
    ] {
        if let Some(v) = v {
            config.insert(k.into(), Value::String(v.clone()));
        }
    }
    body.remove("name");
    body.remove("kind");
    body.extend(config);
    serde_json::from_value(Value::Object(body)).context("the discovery's fields")
}

fn arguments(a: &CallArgs) -> Result<Map<String, Value>> {
    let mut args = match &a.args {
        Some(raw) => match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(m)) => m,
            _ => bail!("--args must be a JSON object"),
        },
        None => Map::new(),
    };
    for pair in &a.arg {
        let (k, v) = split_pair(pair, "--arg")?;
        let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()));
        args.insert(k.to_owned(), value);
    }
    Ok(args)
}

fn print_discovery(g: &Global, found: &McpDiscovery) -> Result<()> {
    if g.json {
        return json(found);
    }
    if found.test.success {
        println!("✓ {} ({} ms)", found.test.message, found.test.latency_ms);
        tool_rows(&found.tools);
    } else {
        let kind = found.test.error_kind.map_or("error", |k| k.as_str());
        println!(
            "✗ {} ({kind}, {} ms)",
            found.test.message, found.test.latency_ms
        );
    }
    Ok(())
}

fn tool_rows(tools: &[Value]) {
    table(
        &["TOOL", "DESCRIPTION"],
        tools
            .iter()
            .map(|t| {
                let description = t["description"].as_str().unwrap_or_default();
                let first = description.lines().next().unwrap_or_default();
                vec![
                    t["name"].as_str().unwrap_or_default().to_owned(),
                    first.chars().take(80).collect(),
                ]
            })
            .collect(),
    );
}

/// A tool's result: its text content as text, other content by type, structured content as
/// JSON.
fn print_result(g: &Global, r: &McpActionResult) -> Result<()> {
    if g.json {
        return json(r);
    }
    for block in &r.content {
        match block["type"].as_str() {
            Some("text") => println!("{}", block["text"].as_str().unwrap_or_default()),
            Some(other) => {
                let mime = block["mimeType"].as_str().unwrap_or("");
                println!("[{other} {mime}]");
            }
            None => println!("{block}"),
        }
    }
    if let Some(s) = &r.structured_content
        && r.content.is_empty()
    {
        println!("{}", serde_json::to_string_pretty(s)?);
    }
    Ok(())
}
