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

/// The repository's root and the test peers' Python in `.tools/`, which `scripts/test.sh`
/// fills.
pub(crate) fn peer_python() -> (std::path::PathBuf, std::path::PathBuf) {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = repo.join(".tools/venv/bin/python");
    assert!(
        python.exists(),
        "the test peers are missing in .tools: run scripts/test.sh, which installs them"
    );
    (repo, python)
}

/// A loopback port free now.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
