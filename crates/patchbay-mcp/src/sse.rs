//! The legacy HTTP+SSE transport (protocol 2024-11-05): a GET opens an event stream whose first
//! event, `endpoint`, names where to POST; every answer arrives as a `message` event on the
//! stream. The endpoint must be on the stream's own origin (credentials go nowhere else).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use reqwest::header::{ACCEPT, CONTENT_TYPE, WWW_AUTHENTICATE};
use rmcp::RoleClient;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::Transport;
use sse_stream::SseStream;
use tokio::sync::mpsc;

use crate::limit::{Run, too_large};
use crate::{ErrorKind, Headers, Limits, McpError};

#[derive(Debug)]
pub(crate) struct SseTransport {
    client: reqwest::Client,
    post_url: url::Url,
    headers: Headers,
    messages: mpsc::Receiver<ServerJsonRpcMessage>,
    _reader: Reader,
    /// Why the stream ended, when it ended badly.
    pub ended: Arc<OnceLock<McpError>>,
}

/// Opens the stream and waits (at most `timeout`) for its `endpoint` event.
pub(crate) async fn open(
    client: reqwest::Client,
    url: url::Url,
    headers: Headers,
    limits: Limits,
    timeout: Duration,
) -> Result<SseTransport, McpError> {
    let mut request = client.get(url.clone()).header(ACCEPT, "text/event-stream");
    for (k, v) in &headers {
        request = request.header(k, v);
    }
    let answer = tokio::time::timeout(timeout, request.send())
        .await
        .map_err(|_| McpError::timeout(timeout))?
        .map_err(|e| McpError::from_error(&e))?;
    refused(&answer)?;
    if !answer.status().is_success() {
        return Err(McpError::protocol(format!(
            "the SSE stream was refused with HTTP {}",
            answer.status().as_u16()
        )));
    }
    let max = limits.max_message_bytes;
    let mut run = Run::new(max);
    let bytes = answer
        .bytes_stream()
        .map_err(std::io::Error::other)
        .and_then(move |chunk| {
            let fed = run.feed(&chunk, true).map(|()| chunk);
            futures::future::ready(fed.map_err(std::io::Error::other))
        });
    let mut events = Box::pin(SseStream::from_bytes_stream(bytes));
    let first = tokio::time::timeout(timeout, async {
        loop {
            match events.next().await {
                Some(Ok(e)) if e.event.as_deref() == Some("endpoint") => return Ok(e.data),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(McpError::from_error(&e)),
                None => {
                    return Err(McpError::protocol(
                        "the SSE stream ended before it named its endpoint",
                    ));
                }
            }
        }
    })
    .await
    .map_err(|_| McpError::timeout(timeout))??;
    let post_url = endpoint(&url, first.as_deref().unwrap_or_default())?;

    let (tx, messages) = mpsc::channel(64);
    let ended = Arc::new(OnceLock::new());
    let end = ended.clone();
    let reader = tokio::spawn(async move {
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(e) => e,
                Err(e) => {
                    let err = if e.to_string().contains("larger than") {
                        too_large(max)
                    } else {
                        McpError::protocol("the SSE stream broke")
                    };
                    let _ = end.set(err);
                    return;
                }
            };
            if !matches!(event.event.as_deref(), None | Some("message")) {
                continue;
            }
            let Some(data) = event.data else { continue };
            match serde_json::from_str::<ServerJsonRpcMessage>(&data) {
                Ok(m) => {
                    if tx.send(m).await.is_err() {
                        return;
                    }
                }
                Err(_) => {
                    let _ = end.set(McpError::protocol(
                        "the SSE stream carried a message that is not JSON-RPC",
                    ));
                    return;
                }
            }
        }
        let _ = end.set(McpError::protocol("the MCP server closed the SSE stream"));
    });
    Ok(SseTransport {
        client,
        post_url,
        headers,
        messages,
        _reader: Reader(reader),
        ended,
    })
}

/// The task reading the stream, stopped with the transport.
#[derive(Debug)]
struct Reader(tokio::task::JoinHandle<()>);

impl Drop for Reader {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The POST endpoint an `endpoint` event names, resolved against the stream's URL; refused
/// when it is on another origin.
fn endpoint(stream: &url::Url, named: &str) -> Result<url::Url, McpError> {
    let url = stream
        .join(named.trim())
        .map_err(|_| McpError::protocol("the SSE stream named an endpoint that is not a URL"))?;
    if url.origin() != stream.origin() {
        return Err(McpError::protocol(
            "the SSE stream named an endpoint on another origin",
        ));
    }
    Ok(url)
}

/// 401 and 403 as auth failures, with their challenge.
fn refused(answer: &reqwest::Response) -> Result<(), McpError> {
    let status = answer.status().as_u16();
    if status != 401 && status != 403 {
        return Ok(());
    }
    let mut e = McpError::new(
        ErrorKind::Auth,
        format!("the MCP server refused the credentials ({status})"),
    );
    e.challenge = answer
        .headers()
        .get(WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Err(e)
}

impl Transport<RoleClient> for SseTransport {
    type Error = McpError;

    fn send(
        &mut self,
        item: ClientJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let mut request = self
            .client
            .post(self.post_url.clone())
            .header(CONTENT_TYPE, "application/json");
        for (k, v) in &self.headers {
            request = request.header(k, v);
        }
        let body = serde_json::to_vec(&item);
        async move {
            let body = body.map_err(|_| McpError::protocol("a message could not be written"))?;
            let answer = request
                .body(body)
                .send()
                .await
                .map_err(|e| McpError::from_error(&e))?;
            refused(&answer)?;
            if !answer.status().is_success() {
                return Err(McpError::protocol(format!(
                    "the MCP server refused a message with HTTP {}",
                    answer.status().as_u16()
                )));
            }
            Ok(())
        }
    }

    fn receive(&mut self) -> impl Future<Output = Option<ServerJsonRpcMessage>> + Send {
        self.messages.recv()
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.messages.close();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::endpoint;

    #[test]
    fn the_endpoint_stays_on_the_streams_origin() {
        let stream = url::Url::parse("http://127.0.0.1:3001/sse").unwrap();
        assert_eq!(
            endpoint(&stream, "/message?sessionId=1").unwrap().as_str(),
            "http://127.0.0.1:3001/message?sessionId=1"
        );
        assert_eq!(
            endpoint(&stream, "http://127.0.0.1:3001/m")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:3001/m"
        );
        for elsewhere in [
            "http://127.0.0.2:3001/m",
            "https://127.0.0.1:3001/m",
            "//evil.example/m",
        ] {
            assert!(endpoint(&stream, elsewhere).is_err(), "{elsewhere}");
        }
    }
}
