//! Structured logs. Request lines carry method, path (never the query string, which may hold
//! keys), status and latency; no header or body is ever logged.

use std::time::Instant;

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("unknown log format {s:?}; expected text or json")),
        }
    }
}

/// Installs the global subscriber (`RUST_LOG` filters, `info` by default).
pub fn init_logging(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

pub(crate) async fn log_requests(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(req).await;
    request_line(
        &method,
        &path,
        response.status(),
        started,
        tracing::Level::INFO,
    );
    response
}

/// Logs one request line at `level`.
pub(crate) fn request_line(
    method: &Method,
    path: &str,
    status: StatusCode,
    started: Instant,
    level: tracing::Level,
) {
    let status = status.as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    if level == tracing::Level::DEBUG {
        tracing::debug!(%method, %path, status, latency_ms, "request");
    } else {
        tracing::info!(%method, %path, status, latency_ms, "request");
    }
}
