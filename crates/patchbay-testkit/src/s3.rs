//! An S3-compatible server for tests: moto (`tests/peers/s3_server.py`, run by the test peers'
//! Python in `.tools/`, which `scripts/test.sh` fills) with authentication enforced.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running S3 server, stopped when dropped, and the one access key it accepts.
#[derive(Debug)]
pub struct S3Server {
    child: Child,
    pub port: u16,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl S3Server {
    /// Starts one with `buckets` created.
    pub fn start(buckets: &[&str]) -> Self {
        let (repo, python) = crate::peer_python();
        let port = crate::free_port();
        let mut child = Command::new(python)
            .arg(repo.join("tests/peers/s3_server.py"))
            .arg(port.to_string())
            .args(buckets)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python");
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("READY ") {
                    let _ = tx.send(rest.to_owned());
                }
            }
        });
        let ready = rx
            .recv_timeout(Duration::from_secs(90))
            .expect("the S3 server did not start");
        let (key, secret) = ready.split_once(' ').expect("READY <key> <secret>");
        Self {
            child,
            port,
            access_key_id: key.to_owned(),
            secret_access_key: secret.to_owned(),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
