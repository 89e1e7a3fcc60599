//! stdio servers: a child process in a process group of its own, with a minimal environment,
//! whose stderr is kept (redacted, the last lines only) for error messages, and which is killed
//! with its whole group and reaped when its session ends.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use process_wrap::tokio::{ChildWrapper, CommandWrap, KillOnDrop, ProcessGroup};
use rmcp::transport::async_rw::AsyncRwTransport;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout};

use crate::limit::LineLimited;
use crate::{Command, ErrorKind, McpError};

/// The variables of Patchbay's own environment a server process inherits.
const INHERITED: &[&str] = &["PATH", "HOME", "LANG"];
/// How much of stderr is kept.
const STDERR_LINES: usize = 20;
const STDERR_BYTES: usize = 2048;

pub(crate) type StdioTransport =
    AsyncRwTransport<rmcp::RoleClient, LineLimited<ChildStdout>, ChildStdin>;

/// The running process: killed (with its group) and reaped when dropped.
pub(crate) struct Child {
    inner: Option<Box<dyn ChildWrapper>>,
    pub stderr: Stderr,
    pub tripped: Arc<std::sync::OnceLock<McpError>>,
}

impl std::fmt::Debug for Child {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.inner.as_ref().and_then(|c| c.id()))
            .finish_non_exhaustive()
    }
}

impl Child {
    pub fn id(&self) -> Option<u32> {
        self.inner.as_ref().and_then(|c| c.id())
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let Some(mut child) = self.inner.take() else {
            return;
        };
        // The whole group: a server started through a launcher (npx, uv) has children.
        let _ = child.start_kill();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    let _ = child.wait().await;
                });
            }
            Err(_) => {
                let _ = child.try_wait();
            }
        }
    }
}

/// Starts `command`; its stdout is read in lines of at most `max_line` bytes.
pub(crate) fn spawn(
    command: &Command,
    max_line: usize,
) -> Result<(StdioTransport, Child), McpError> {
    let mut wrap = CommandWrap::with_new(&command.program, |cmd| {
        cmd.args(&command.args)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for var in INHERITED {
            if let Ok(v) = std::env::var(var) {
                cmd.env(var, v);
            }
        }
        cmd.envs(&command.env);
    });
    wrap.wrap(ProcessGroup::leader()).wrap(KillOnDrop);
    let mut child = wrap.spawn().map_err(|e| {
        McpError::new(
            ErrorKind::Refused,
            format!("cannot start {:?}: {}", command.label, e.kind()),
        )
    })?;
    let (Some(stdin), Some(stdout), Some(stderr)) = (
        child.stdin().take(),
        child.stdout().take(),
        child.stderr().take(),
    ) else {
        return Err(McpError::protocol(
            "the server process has no standard streams",
        ));
    };
    let kept = Stderr::default();
    kept.collect(stderr, command.redact.clone());
    let reader = LineLimited::new(stdout, max_line);
    let tripped = reader.tripped.clone();
    let transport = AsyncRwTransport::new_client(reader, stdin).with_max_line_length(usize::MAX);
    Ok((
        transport,
        Child {
            inner: Some(child),
            stderr: kept,
            tripped,
        },
    ))
}

/// The last lines a process wrote to stderr, secrets replaced.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stderr(Arc<Mutex<VecDeque<String>>>);

impl Stderr {
    fn collect(&self, stream: impl AsyncRead + Unpin + Send + 'static, redact: Vec<String>) {
        let lines = self.0.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            // Lines are read in bounded pieces: a process cannot make this grow.
            loop {
                line.clear();
                let mut limited = (&mut reader).take(STDERR_BYTES as u64);
                match limited.read_until(b'\n', &mut line).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let mut text = String::from_utf8_lossy(&line).trim_end().to_owned();
                for secret in redact.iter().filter(|s| s.len() >= 4) {
                    text = text.replace(secret.as_str(), "[redacted]");
                }
                let text = patchbay_net::redact_urls(&text);
                if text.is_empty() {
                    continue;
                }
                let Ok(mut kept) = lines.lock() else { break };
                kept.push_back(text);
                while kept.len() > STDERR_LINES
                    || kept.iter().map(String::len).sum::<usize>() > STDERR_BYTES
                {
                    kept.pop_front();
                }
            }
        });
    }

    /// The kept lines, joined.
    pub fn tail(&self) -> Option<String> {
        let kept = self.0.lock().ok()?;
        if kept.is_empty() {
            return None;
        }
        Some(kept.iter().cloned().collect::<Vec<_>>().join(" | "))
    }
}
