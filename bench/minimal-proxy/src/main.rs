//! `minimal-proxy <listen> <upstream host:port> [multi|per-core]`: forwards every request to
//! the upstream with a static `Authorization` header. `multi` serves on tokio's multi-threaded
//! runtime; `per-core` runs one single-threaded runtime per core, each with its own
//! `SO_REUSEPORT` listener and upstream pool (nginx's model, and Patchbay's).

use std::convert::Infallible;
use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, HeaderValue};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn listener(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    tokio::net::TcpListener::from_std(s.into())
}

async fn serve(addr: SocketAddr, upstream: String) -> std::io::Result<()> {
    let listener = listener(addr)?;
    let client: Client<HttpConnector, Incoming> =
        Client::builder(TokioExecutor::new()).build_http();
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let client = client.clone();
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let client = client.clone();
                let upstream = upstream.clone();
                async move {
                    let (mut parts, body) = req.into_parts();
                    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                    parts.uri = match format!("http://{upstream}{path}").parse() {
                        Ok(uri) => uri,
                        Err(_) => return Ok(bad_gateway()),
                    };
                    parts.headers.insert(
                        AUTHORIZATION,
                        HeaderValue::from_static("Bearer static-upstream-token"),
                    );
                    let answer = client
                        .request(hyper::Request::from_parts(parts, body))
                        .await;
                    Ok::<_, Infallible>(
                        answer.map_or_else(|_| bad_gateway(), |r| r.map(Either::Left)),
                    )
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

type Either = http_body_either::Either;

mod http_body_either {
    use hyper::body::{Body, Bytes, Frame, Incoming};
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// The upstream's body, or nothing (a 502 of our own).
    pub enum Either {
        Left(Incoming),
        Empty,
    }

    impl Body for Either {
        type Data = Bytes;
        type Error = hyper::Error;
        fn poll_frame(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
            match self.get_mut() {
                Either::Left(b) => Pin::new(b).poll_frame(cx),
                Either::Empty => Poll::Ready(None),
            }
        }
    }
}

fn bad_gateway() -> hyper::Response<Either> {
    let mut r = hyper::Response::new(Either::Empty);
    *r.status_mut() = hyper::StatusCode::BAD_GATEWAY;
    r
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, listen, upstream, mode] = args.as_slice() else {
        eprintln!("usage: minimal-proxy <listen addr> <upstream host:port> <multi|per-core>");
        std::process::exit(2);
    };
    let addr: SocketAddr = listen.parse().map_err(std::io::Error::other)?;
    if mode == "per-core" {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads: Vec<_> = (0..cores)
            .map(|_| {
                let upstream = upstream.clone();
                std::thread::spawn(move || {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?
                        .block_on(serve(addr, upstream))
                })
            })
            .collect();
        for t in threads {
            t.join()
                .map_err(|_| std::io::Error::other("a serving thread panicked"))??;
        }
        Ok(())
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(serve(addr, upstream.clone()))
    }
}
