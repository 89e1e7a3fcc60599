//! The HTTP server: axum routes for the REST API (`api/`), problem+json errors, request
//! logging without secrets, and start-up ([`Application`]). Handlers parse and authenticate,
//! then call the engine; this crate never touches SQL or ciphertext.

pub mod api;
mod error;
mod extract;
mod logging;
mod serving;
mod settings;
mod startup;

pub use error::ApiError;
pub use logging::{LogFormat, init_logging};
pub use settings::Settings;
pub use startup::{AppState, Application, StartupError};
