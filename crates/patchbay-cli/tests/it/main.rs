//! End-to-end tests of the `patchbay` binary: `serve` as a newcomer runs it, the CLI finding it
//! without configuration, `keys rotate` over 10,000 connections, and the canary test that
//! greps every response and log line for planted secrets.

#![allow(clippy::unwrap_used)]

mod canary;
mod cli;
mod rotate;
mod server;
