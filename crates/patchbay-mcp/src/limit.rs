//! Bounds on what a server may send without a break: a stdio line, an SSE event.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use crate::McpError;

/// Counts the bytes since the last message boundary and fails once they pass the limit, so a
/// server that writes one endless message is cut off instead of filling memory.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    limit: usize,
    since_break: usize,
    /// The previous byte was `\n` (an SSE event ends with an empty line).
    after_newline: bool,
}

impl Run {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            since_break: 0,
            after_newline: false,
        }
    }

    /// Feeds bytes; `double` says that a break is an empty line (SSE) rather than any newline
    /// (stdio).
    pub fn feed(&mut self, bytes: &[u8], double: bool) -> Result<(), McpError> {
        for &b in bytes {
            if b == b'\n' && (!double || self.after_newline) {
                self.since_break = 0;
            } else if b != b'\r' {
                self.since_break += 1;
            }
            if b != b'\r' {
                self.after_newline = b == b'\n';
            }
            if self.since_break > self.limit {
                return Err(too_large(self.limit));
            }
        }
        Ok(())
    }
}

pub(crate) fn too_large(limit: usize) -> McpError {
    McpError::protocol(format!(
        "the MCP server sent a message larger than {limit} bytes"
    ))
}

/// A reader whose lines are at most `limit` bytes: a longer one ends the stream with an error.
pub(crate) struct LineLimited<R> {
    inner: R,
    run: Run,
    failed: Option<McpError>,
    /// Set when the limit was hit, for the session's error message.
    pub tripped: std::sync::Arc<std::sync::OnceLock<McpError>>,
}

impl<R> LineLimited<R> {
    pub fn new(inner: R, limit: usize) -> Self {
        Self {
            inner,
            run: Run::new(limit),
            failed: None,
            tripped: Default::default(),
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for LineLimited<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Some(e) = &self.failed {
            return Poll::Ready(Err(std::io::Error::other(e.clone())));
        }
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if let Err(e) = this.run.feed(&buf.filled()[before..], false) {
                    let _ = this.tripped.set(e.clone());
                    this.failed = Some(e.clone());
                    return Poll::Ready(Err(std::io::Error::other(e)));
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Run;

    #[test]
    fn a_line_may_fill_the_limit_but_not_pass_it() {
        let mut r = Run::new(4);
        assert!(r.feed(b"abcd\nabcd\n", false).is_ok());
        assert!(r.feed(b"ab", false).is_ok());
        assert!(r.feed(b"cd", false).is_ok());
        assert!(r.feed(b"e", false).is_err());
    }

    #[test]
    fn an_sse_event_ends_at_an_empty_line_only() {
        let mut r = Run::new(10);
        assert!(r.feed(b"data: 1\r\n\r\n", true).is_ok());
        assert!(r.feed(b"data: 12\n", true).is_ok());
        // One newline does not end the event: the count goes on.
        assert!(r.feed(b"data: 3", true).is_err());
        let mut r = Run::new(11);
        assert!(r.feed(b"data: 1234\n\ndata: 1234\n\n", true).is_ok());
    }
}
