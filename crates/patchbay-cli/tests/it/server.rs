//! Running the real binary: `patchbay serve` on port 0 in a temporary data directory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_patchbay");

/// A `patchbay` command isolated from the caller's environment.
pub fn patchbay(data_dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    for var in [
        "PATCHBAY_URL",
        "PATCHBAY_TOKEN",
        "PATCHBAY_MASTER_KEY",
        "PATCHBAY_DATABASE_URL",
        "PATCHBAY_CONFIG",
        "RUST_LOG",
    ] {
        c.env_remove(var);
    }
    c.env("PATCHBAY_DATA_DIR", data_dir);
    c
}

/// Runs a CLI command to completion, failing the test with its output when it fails.
pub fn run_ok(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let out = run(data_dir, args, stdin);
    assert!(
        out.status.success(),
        "patchbay {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn run(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut cmd = patchbay(data_dir);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

pub struct Server {
    pub child: Child,
    pub url: String,
    pub token: Option<String>,
    /// The start-up lines.
    pub stdout: Vec<String>,
    /// Every line printed so far (stdout is read for the server's whole life).
    printed: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    pub log_path: PathBuf,
}

impl Server {
    /// Starts `patchbay serve` (on a free port unless `extra_args` name `--listen`) and waits
    /// for its start-up lines.
    pub fn start(data_dir: &Path, extra_args: &[&str], env: &[(&str, &str)]) -> Self {
        let log_path = data_dir.with_extension(format!("{}.log", ulid_like()));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut cmd = patchbay(data_dir);
        cmd.arg("serve");
        if !extra_args.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        cmd.args(extra_args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(log).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let printed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let all = printed.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                all.lock().unwrap().push(line.clone());
                // Once start-up is over nobody listens; the lines are still kept.
                let _ = tx.send(line);
            }
        });
        let mut lines = Vec::new();
        let mut url = None;
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| {
                    panic!(
                        "serve printed no start-up lines: {lines:?}\n{}",
                        std::fs::read_to_string(&log_path).unwrap_or_default()
                    )
                });
            if let Some(u) = line.strip_prefix("Patchbay listening on ") {
                url = Some(u.to_owned());
            }
            lines.push(line);
            // The last start-up line is the store's, or the CLI note after a first run.
            if url.is_some() && lines.iter().any(|l| l.starts_with("Store: ")) {
                let first_run = lines.iter().any(|l| l.starts_with("Admin token"));
                if !first_run
                    || lines
                        .iter()
                        .any(|l| l.starts_with("The CLI on this machine"))
                {
                    // Give a late line a moment, then stop reading.
                    while let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
                        lines.push(l);
                    }
                    break;
                }
            }
        }
        let token = lines.iter().find_map(|l| {
            l.rsplit_once(": ")
                .filter(|_| l.starts_with("Admin token"))
                .map(|(_, t)| t.to_owned())
        });
        Self {
            child,
            url: url.unwrap(),
            token,
            stdout: lines,
            printed,
            log_path,
        }
    }

    /// Everything the server printed on stdout, start-up lines included.
    pub fn printed(&self) -> String {
        self.printed.lock().unwrap().join("\n")
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn stop(&mut self) {
        // SIGTERM for a graceful stop.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ulid_like() -> String {
    format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}
