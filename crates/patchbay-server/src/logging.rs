//! Structured logs: the subscriber and its format. Request lines are written by the observe
//! layer (`observe.rs`); no header or body is ever logged.

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

/// Libraries whose events may quote what they carry (the MCP library logs whole JSON-RPC
/// messages, tool results and a stdio server's environment among them; the SigV4 signer logs
/// its parameters, the access key id among them): never logged, whatever `RUST_LOG` says.
const SILENCED: &[&str] = &["rmcp=off", "aws_sigv4=off"];

/// Installs the global subscriber (`RUST_LOG` filters, `info` by default).
pub fn init_logging(format: LogFormat) {
    let mut filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    for directive in SILENCED {
        if let Ok(d) = directive.parse() {
            filter = filter.add_directive(d);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
