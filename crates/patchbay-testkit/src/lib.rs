//! Fixtures shared by the integration tests of several crates (never part of a build that
//! ships): a database per test, a clock tests move, and peers that no package provides in the strict form a test
//! needs.

pub mod clock;
pub mod db;
pub mod files;
pub mod s3;
pub mod strict_oauth;

pub use clock::TestClock;
pub use db::{Backend, TestDatabase, postgres_admin_url};
