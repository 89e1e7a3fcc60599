//! Real peers for tests: an SMTP server (aiosmtpd), the MCP reference server
//! (`@modelcontextprotocol/server-everything`, Streamable HTTP), and an HTTP upstream. The
//! first two come from `.tools/`, which `scripts/test.sh` fills.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub fn tools_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools");
    assert!(
        dir.join("venv/bin/python").exists() && dir.join("node_modules").exists(),
        "test peers are missing in {}: run scripts/test.sh, which installs them",
        dir.display()
    );
    dir
}

/// Runs `tests/peers/{script}` with the test peers' Python, `input` as JSON on its standard
/// input; what it printed.
pub fn python_json(script: &str, input: &serde_json::Value) -> String {
    use std::io::Write as _;
    let mut child = Command::new(tools_dir().join("venv/bin/python"))
        .arg(repo_dir().join("tests/peers").join(script))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{script} failed");
    String::from_utf8(out.stdout).unwrap()
}

pub fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when dropped.
pub struct Peer {
    child: Child,
    pub port: u16,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until a line of `reader` contains `needle`.
fn wait_for(reader: impl std::io::Read + Send + 'static, needle: &'static str, what: &str) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            if line.contains(needle) {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{what} did not start"));
}

/// aiosmtpd on loopback; with `auth`, AUTH is required; with `maildir`, mail is kept there.
pub fn smtp(auth: Option<(&str, &str)>, maildir: Option<&Path>) -> Peer {
    let port = free_port();
    let mut cmd = Command::new(tools_dir().join("venv/bin/python"));
    cmd.arg(repo_dir().join("tests/peers/smtp_server.py"))
        .arg(port.to_string());
    if let Some((user, password)) = auth {
        cmd.args(["--user", user, "--password", password]);
    }
    if let Some(dir) = maildir {
        cmd.arg("--maildir").arg(dir);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python");
    wait_for(child.stdout.take().unwrap(), "READY", "the SMTP server");
    Peer { child, port }
}

/// An S3-compatible server (moto) with `buckets`, every request authenticated.
pub use patchbay_testkit::files::FileServer;
pub use patchbay_testkit::s3::S3Server;

/// The MCP reference server's entry point (`node <it> stdio|sse|streamableHttp`).
pub fn everything_entry() -> PathBuf {
    tools_dir().join("node_modules/@modelcontextprotocol/server-everything/dist/index.js")
}

/// The MCP reference server in Streamable HTTP mode.
pub fn mcp_everything() -> Peer {
    everything("streamableHttp", "listening on port")
}

/// The MCP reference server in the legacy HTTP+SSE mode (`/sse`).
pub fn mcp_everything_sse() -> Peer {
    everything("sse", "running on port")
}

fn everything(mode: &str, ready: &'static str) -> Peer {
    let port = free_port();
    let mut child = Command::new("node")
        .arg(everything_entry())
        .arg(mode)
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node");
    wait_for(child.stderr.take().unwrap(), ready, "server-everything");
    Peer { child, port }
}

/// The Python interpreter of the test peers (with the MCP SDK).
pub fn python() -> PathBuf {
    tools_dir().join("venv/bin/python")
}

/// An MCP server built with the Python SDK (`tests/peers/mcp_server.py`) with `args`.
pub fn mcp_python(args: &[&str]) -> Peer {
    let port = free_port();
    let mut all = vec![port.to_string()];
    all.extend(args.iter().map(|a| a.to_string()));
    python_peer("mcp_server.py", &all, port)
}

/// The misbehaving MCP server (`tests/peers/mcp_misbehaving.py`) over HTTP in `mode`.
pub fn mcp_misbehaving(mode: &str) -> Peer {
    let port = free_port();
    let args = [mode.to_owned(), "--port".into(), port.to_string()];
    python_peer("mcp_misbehaving.py", &args, port)
}

/// `tests/peers/<script>` run by the peers' Python, once it printed READY.
fn python_peer(script: &str, args: &[String], port: u16) -> Peer {
    let mut child = Command::new(python())
        .arg(repo_dir().join("tests/peers").join(script))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python");
    wait_for(child.stdout.take().unwrap(), "READY", "a Python MCP server");
    Peer { child, port }
}

/// oidc-provider with one client (`patchbay` / `patchbay-secret`) redirecting to `redirect`.
pub fn oidc(redirect: &str) -> Peer {
    oidc_with(redirect, &[])
}

/// oidc-provider as an MCP server's authorization server too: dynamic registration, resource
/// indicators and introspection (`--mcp`).
pub fn oidc_mcp(redirect: &str) -> Peer {
    oidc_with(redirect, &["--mcp"])
}

fn oidc_with(redirect: &str, flags: &[&str]) -> Peer {
    let port = free_port();
    let mut child = Command::new("node")
        .arg(repo_dir().join("tests/peers/oidc_server.mjs"))
        .arg(tools_dir())
        .arg(port.to_string())
        .arg(redirect)
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node");
    wait_for(child.stdout.take().unwrap(), "READY", "oidc-provider");
    Peer { child, port }
}

/// Plays the browser: follows the authorization server's redirects (with its cookies) until it
/// is sent to Patchbay's callback, and returns that URL.
pub async fn consent(authorization_url: &str, callback_prefix: &str) -> String {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let mut url = authorization_url.to_owned();
    for _ in 0..10 {
        let r = browser.get(&url).send().await.unwrap();
        let location = r
            .headers()
            .get("location")
            .unwrap_or_else(|| panic!("no redirect from {url}: {}", r.status()))
            .to_str()
            .unwrap()
            .to_owned();
        let next = reqwest::Url::parse(&url)
            .unwrap()
            .join(&location)
            .unwrap()
            .to_string();
        if next.starts_with(callback_prefix) {
            return next;
        }
        url = next;
    }
    panic!("the authorization server never redirected back");
}

/// A client that shows redirects instead of following them (the provider's host is never
/// contacted from here).
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}
