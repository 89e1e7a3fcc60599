//! End-to-end tests of the `patchbay` binary: `serve` as a newcomer runs it, the CLI finding it
//! without configuration, `keys rotate` over 10,000 connections, `kill -9` during token refreshes, and the canary test that
//! greps every response and log line for planted secrets.

#![allow(clippy::unwrap_used)]

mod canary;
mod cli;
mod kill;
mod outbox;
#[path = "../../../patchbay-server/tests/it/peers.rs"]
#[allow(dead_code)]
mod peers;
mod rotate;
mod server;
