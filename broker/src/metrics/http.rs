//! The scrape endpoint: a deliberately tiny HTTP/1.1 server on plain tokio.
//!
//! It answers `GET /metrics` (and `GET /`, as the JMX exporter agent does) with the text
//! format and closes the connection; anything else gets 404 or 405. A full HTTP stack
//! (hyper/axum) would add a dozen crates for one read-only route that Prometheus calls
//! every few seconds; see docs/design.md. Request heads are capped at 8 KiB and must
//! arrive within 10 s, so a stuck or hostile client holds one small task at most.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{debug, info};

use crate::broker::BrokerContext;

const MAX_HEAD: usize = 8 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Content type of the Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Binds the endpoint (a taken port fails start-up, naming the key).
pub async fn bind(addr: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for {}: {e}", super::LISTENER_KEY))
}

/// Serves scrapes until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    ctx: Option<Arc<BrokerContext>>,
    mut shutdown: watch::Receiver<bool>,
) {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "metrics endpoint listening");
    }
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|v| *v) => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    if let Err(e) = answer(stream, peer, ctx).await {
                        debug!(%peer, error = %e, "metrics request failed");
                    }
                });
            }
            Err(e) => {
                debug!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    Metrics,
    NotFound,
    MethodNotAllowed,
    BadRequest,
}

/// Parses the request line of a head (`GET /metrics?x HTTP/1.1`).
pub fn route(head: &[u8]) -> Route {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(proto)) = (parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if !proto.starts_with("HTTP/1.") {
        return Route::BadRequest;
    }
    if method != "GET" && method != "HEAD" {
        return Route::MethodNotAllowed;
    }
    let path = target.split('?').next().unwrap_or_default();
    match path {
        "/metrics" | "/" => Route::Metrics,
        _ => Route::NotFound,
    }
}

async fn answer(
    mut stream: TcpStream,
    _peer: SocketAddr,
    ctx: Option<Arc<BrokerContext>>,
) -> anyhow::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let complete = tokio::time::timeout(READ_TIMEOUT, async {
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok::<bool, std::io::Error>(false);
            }
            head.extend_from_slice(&buf[..n]);
            if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
                return Ok(true);
            }
            if head.len() > MAX_HEAD {
                return Ok(true);
            }
        }
    })
    .await??;
    if !complete {
        return Ok(());
    }
    let is_head = head.starts_with(b"HEAD ");
    let (status, ctype, body) = if head.len() > MAX_HEAD {
        (
            "431 Request Header Fields Too Large",
            "text/plain",
            String::new(),
        )
    } else {
        match route(&head) {
            Route::Metrics => {
                let body = tokio::task::spawn_blocking(move || super::scrape::render(ctx.as_ref()))
                    .await
                    .map_err(|e| anyhow::anyhow!("scrape panicked: {e}"))?;
                ("200 OK", CONTENT_TYPE, body)
            }
            Route::NotFound => ("404 Not Found", "text/plain", "not found\n".into()),
            Route::MethodNotAllowed => {
                ("405 Method Not Allowed", "text/plain", "only GET\n".into())
            }
            Route::BadRequest => ("400 Bad Request", "text/plain", String::new()),
        }
    };
    let resp_head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(resp_head.as_bytes()).await?;
    if !is_head {
        stream.write_all(body.as_bytes()).await?;
    }
    stream.shutdown().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route(b"GET /metrics HTTP/1.1\r\n\r\n"), Route::Metrics);
        assert_eq!(route(b"GET /metrics?name[]=x HTTP/1.0\r\n"), Route::Metrics);
        assert_eq!(route(b"GET / HTTP/1.1\r\n"), Route::Metrics);
        assert_eq!(route(b"GET /other HTTP/1.1\r\n"), Route::NotFound);
        assert_eq!(
            route(b"POST /metrics HTTP/1.1\r\n"),
            Route::MethodNotAllowed
        );
        assert_eq!(route(b"\x00\xff garbage"), Route::BadRequest);
        assert_eq!(route(b""), Route::BadRequest);
    }

    #[tokio::test]
    async fn serves_a_scrape_over_tcp() {
        let l = bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let (tx, rx) = watch::channel(false);
        let server = tokio::spawn(serve(l, None, rx));
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut resp = String::new();
        s.read_to_string(&mut resp).await.expect("read");
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
        assert!(resp.contains(CONTENT_TYPE));
        assert!(resp.contains("kafka_server_brokertopicmetrics_messagesin_total"));
        let _ = tx.send(true);
        server.await.expect("server stops");
    }
}
