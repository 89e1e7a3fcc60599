//! `patchbay hooks`: inbound webhook endpoints and the events they accepted.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::json;

use crate::Global;
use crate::output::{json, table, when};

#[derive(Debug, Subcommand)]
pub enum HooksCmd {
    /// The organization's endpoints.
    Ls,
    /// A new endpoint; without --secret-env a secret is made and printed once.
    Create {
        name: String,
        /// standard_webhooks, github, stripe, slack, shopify, twilio or hmac.
        #[arg(long)]
        scheme: String,
        /// The environment variable holding the provider's signing secret.
        #[arg(long, value_name = "VAR")]
        secret_env: Option<String>,
        /// The webhook connection accepted events are forwarded to (held for polling without).
        #[arg(long)]
        target: Option<String>,
        /// The project (id or name).
        #[arg(long)]
        project: Option<String>,
        /// Seconds a signed timestamp may be off.
        #[arg(long)]
        tolerance: Option<u32>,
        /// Largest body accepted, in bytes.
        #[arg(long)]
        max_body: Option<u32>,
    },
    /// One endpoint.
    Show { id: String },
    /// Forward accepted events to this webhook connection (`--target none` to hold them).
    Target { id: String, target: String },
    /// Delete an endpoint: deliveries to it are refused from now.
    Rm { id: String },
    /// An endpoint's events, oldest first.
    Events {
        id: String,
        #[arg(long)]
        cursor: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Print the events after --cursor with their bodies, one JSON object per line, and the
    /// cursor to continue from.
    Poll {
        id: String,
        #[arg(long)]
        cursor: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// One event, with its headers and body for an admin.
    Event { id: String, event: String },
    /// Forward an event to the endpoint's target again.
    Replay { id: String, event: String },
}

fn query(cursor: Option<&str>, limit: u32) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("limit", &limit.to_string());
    if let Some(c) = cursor {
        q.append_pair("cursor", c);
    }
    q.finish()
}

fn endpoint_rows(items: &[patchbay_domain::inbound::Inbound]) {
    table(
        &["ID", "NAME", "SCHEME", "TARGET", "URL"],
        items
            .iter()
            .map(|e| {
                vec![
                    e.id.to_string(),
                    e.name.clone(),
                    e.scheme.clone(),
                    e.target
                        .as_ref()
                        .map_or_else(|| "(held)".into(), ToString::to_string),
                    e.url.clone(),
                ]
            })
            .collect(),
    );
}

fn event_rows(items: &[patchbay_domain::inbound::InboundEvent]) {
    table(
        &[
            "ID",
            "RECEIVED",
            "PROVIDER ID",
            "STATUS",
            "SIZE",
            "DELIVERY",
        ],
        items
            .iter()
            .map(|e| {
                vec![
                    e.id.to_string(),
                    when(Some(e.received_at)),
                    e.provider_id.clone().unwrap_or_default(),
                    e.status.clone(),
                    e.size.to_string(),
                    e.delivery
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                ]
            })
            .collect(),
    );
}

pub async fn hooks(g: &Global, cmd: HooksCmd) -> Result<()> {
    let c = crate::commands::client(g)?;
    match cmd {
        HooksCmd::Ls => {
            let items = c.list_inbound().await?;
            if g.json {
                return json(&items);
            }
            endpoint_rows(&items);
        }
        HooksCmd::Create {
            name,
            scheme,
            secret_env,
            target,
            project,
            tolerance,
            max_body,
        } => {
            let secret = match &secret_env {
                Some(var) => Some(
                    std::env::var(var)
                        .with_context(|| format!("--secret-env {var}: the variable is not set"))?,
                ),
                None => None,
            };
            let body = serde_json::from_value(json!({"name": name, "scheme": scheme,
                "secret": secret, "target": target, "project": project,
                "tolerance_s": tolerance, "max_body": max_body}))
            .context("building the endpoint")?;
            let created = c.create_inbound(&body).await?;
            if g.json {
                return json(&created);
            }
            endpoint_rows(std::slice::from_ref(&created.endpoint));
            if let Some(s) = &created.generated_secret {
                println!("signing secret (shown once; give it to the provider): {s}");
            }
        }
        HooksCmd::Show { id } => {
            let e = c.get_inbound(&id).await?;
            if g.json {
                return json(&e);
            }
            endpoint_rows(std::slice::from_ref(&e));
        }
        HooksCmd::Target { id, target } => {
            let target = (target != "none").then_some(target);
            let e = c.update_inbound(&id, &json!({"target": target})).await?;
            if g.json {
                return json(&e);
            }
            endpoint_rows(std::slice::from_ref(&e));
        }
        HooksCmd::Rm { id } => {
            c.delete_inbound(&id).await?;
            if !g.json {
                println!("deleted {id}");
            }
        }
        HooksCmd::Events { id, cursor, limit } => {
            let page = c
                .inbound_events(&id, &query(cursor.as_deref(), limit))
                .await?;
            if g.json {
                return json(&page);
            }
            event_rows(&page.events);
            if let Some(next) = &page.next_cursor {
                println!("more: --cursor {next}");
            }
        }
        HooksCmd::Poll { id, cursor, limit } => {
            let page = c.poll_hook(&id, &query(cursor.as_deref(), limit)).await?;
            if g.json {
                return json(&page);
            }
            for e in &page.events {
                println!("{}", serde_json::to_string(e)?);
            }
            match (&page.next_cursor, page.events.last()) {
                (Some(next), _) => eprintln!("more: --cursor {next}"),
                (None, Some(last)) => eprintln!("next time: --cursor {}", last.id),
                (None, None) => {}
            }
        }
        HooksCmd::Event { id, event } => {
            let e = c.inbound_event(&id, &event).await?;
            if g.json || e.body.is_some() {
                return json(&e);
            }
            event_rows(std::slice::from_ref(&e));
        }
        HooksCmd::Replay { id, event } => {
            let e = c.replay_inbound_event(&id, &event).await?;
            if g.json {
                return json(&e);
            }
            match &e.delivery {
                Some(d) => println!("{} queued again as delivery {d}", e.id),
                None => bail!("the event was not queued"),
            }
        }
    }
    Ok(())
}
