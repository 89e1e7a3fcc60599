//! Fixtures shared by the integration tests of several crates (never part of a build that
//! ships): peers that no package provides in the strict form a test needs.

pub mod strict_oauth;
