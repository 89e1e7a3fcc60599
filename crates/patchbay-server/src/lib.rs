//! The HTTP server: axum routes for the REST API (`api/`), problem+json errors, the observe
//! layer (request ids, request logs without secrets, `/metrics`), and start-up
//! ([`Application`]). Handlers parse and authenticate,
//! then call the engine; this crate never touches SQL or ciphertext.

pub mod api;
mod error;
mod extract;
mod logging;
mod observe;
mod serving;
pub mod settings;
mod startup;
mod ui;

pub use error::ApiError;
pub use logging::{LogFormat, init_logging};
pub use observe::REQUEST_ID;
pub use settings::Settings;
pub use startup::{AppState, Application, StartupError};
