//! File servers for tests: SFTP (asyncssh) and FTPS or FTP (pyftpdlib), run by
//! `tests/peers/file_server.py` with the test peers' Python in `.tools/`, which
//! `scripts/test.sh` fills.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// A running file server, stopped when dropped.
#[derive(Debug)]
pub struct FileServer {
    child: Child,
    lines: mpsc::Receiver<String>,
    pub port: u16,
    pub user: String,
    pub password: String,
    /// The directory the server serves (its working directory, or the user's home).
    pub root: PathBuf,
    /// What the server printed when it was ready: for SFTP `host_key`, `next_host_key`,
    /// `client_key`, `client_rsa_key` (encrypted with `passphrase`) and `stranger_key` (a key
    /// the server does not accept); for FTPS `ca`.
    pub ready: Value,
}

impl FileServer {
    /// An SFTP server on the files under `root`.
    pub fn sftp(root: &Path) -> Self {
        Self::start(&["sftp"], root)
    }

    /// An FTPS server (explicit TLS required), or a plain FTP one, whose user's home is `root`.
    /// `masquerade` is the address its PASV answers name instead of its own.
    pub fn ftp(tls: bool, root: &Path, masquerade: Option<&str>) -> Self {
        let protocol = if tls { "ftps" } else { "ftp" };
        match masquerade {
            Some(m) => Self::start(&[protocol, m], root),
            None => Self::start(&[protocol], root),
        }
    }

    fn start(args: &[&str], root: &Path) -> Self {
        let (repo, python) = crate::peer_python();
        let port = crate::free_port();
        let (user, password) = ("transfer".to_owned(), "s3cret-files-pw".to_owned());
        let mut argv: Vec<String> = vec![
            repo.join("tests/peers/file_server.py")
                .display()
                .to_string(),
            args[0].to_owned(),
            port.to_string(),
            root.display().to_string(),
            user.clone(),
            password.clone(),
        ];
        argv.extend(args[1..].iter().map(|a| (*a).to_owned()));
        let mut child = Command::new(python)
            .args(&argv)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let ready = loop {
            let line = lines
                .recv_timeout(Duration::from_secs(60))
                .expect("the file server did not start");
            if let Some(rest) = line.strip_prefix("READY ") {
                break serde_json::from_str(rest).expect("READY <json>");
            }
        };
        Self {
            child,
            lines,
            port,
            user,
            password,
            root: root.to_path_buf(),
            ready,
        }
    }

    /// A field of the ready line.
    pub fn get(&self, field: &str) -> String {
        self.ready[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} in the ready line"))
            .to_owned()
    }

    /// SFTP: the server presents its other host key from now on.
    pub fn rotate_host_key(&self) {
        let status = Command::new("kill")
            .args(["-USR1", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(10))
                .expect("the server did not rotate its key");
            if line == "ROTATED" {
                return;
            }
        }
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
