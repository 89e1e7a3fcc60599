//! Integration tests of the REST API against a real server on port 0, on SQLite and on
//! PostgreSQL (`PATCHBAY_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`).

#![allow(clippy::unwrap_used)]

mod helpers;

mod actions;
mod apps;
mod audit;
mod connection_schema;
mod connection_tests;
mod connections;
mod cross_org;
mod destinations;
mod echo;
mod exhaustion;
mod files;
mod hostile;
mod inbound;
mod isolation;
mod kinds_catalog;
mod malformed;
mod mcp;
mod mcp_auth;
mod mcp_client;
mod mcp_gateway;
mod meta;
mod metrics;
mod nodes;
mod oauth_flow;
mod oauth_start;
mod peers;
mod plaintext;
mod provider_quirks;
mod providers;
mod proxy;
mod renewal;
mod revocation;
mod sandbox;
mod scheduler;
mod secret_scope;
mod storage;
mod ui;
mod upstream;
mod vault;
mod webhooks;
