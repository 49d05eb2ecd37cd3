//! Serving a simulator's router on 127.0.0.1 with an ephemeral port, wrapped in its [`Faults`],
//! and stopping it when the handle that owns the [`Server`] is dropped.

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::sandbox::faults::Faults;

/// A listener bound to 127.0.0.1 but not serving yet: its address is known, so a simulator can
/// build links naming itself before its router exists.
#[derive(Debug)]
pub struct Bound {
    listener: TcpListener,
    base_url: String,
}

/// Binds 127.0.0.1 on an ephemeral port.
pub async fn bind() -> std::io::Result<Bound> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let address = listener.local_addr()?;
    Ok(Bound {
        listener,
        base_url: format!("http://{address}"),
    })
}

impl Bound {
    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Serves `router` (every route behind `faults`) in the background until the returned
    /// [`Server`] is stopped or dropped; `name` says which simulator a serving error is from.
    pub fn serve(self, name: &'static str, router: Router, faults: &Faults) -> Server {
        let router = faults.layer(router);
        let (shutdown, shutdown_signal) = oneshot::channel::<()>();
        let listener = self.listener;
        tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    // A dropped sender also means "stop".
                    let _ = shutdown_signal.await;
                })
                .await;
            if let Err(error) = served {
                tracing::warn!(%error, simulator = name, "simulator stopped with an error");
            }
        });
        Server {
            base_url: self.base_url,
            shutdown: Some(shutdown),
        }
    }
}

/// A running simulator server; dropping it stops the server.
#[derive(Debug)]
pub struct Server {
    base_url: String,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Server {
    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Stops serving (also done on drop); connections in flight finish first.
    pub fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    #[tokio::test]
    async fn serves_until_dropped() {
        let bound = bind().await.unwrap();
        let base_url = bound.base_url().to_owned();
        assert!(base_url.starts_with("http://127.0.0.1:"), "{base_url}");
        let faults = Faults::new();
        let server = bound.serve(
            "test",
            Router::new().route("/", get(|| async { "up" })),
            &faults,
        );
        assert_eq!(server.base_url(), base_url);
        let address = base_url.trim_start_matches("http://").to_owned();
        let probe = || async {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut stream = tokio::net::TcpStream::connect(&address).await?;
            stream
                .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                .await?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await?;
            Ok::<_, std::io::Error>(answer)
        };
        let answer = probe().await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert_eq!(faults.requests(&axum::http::Method::GET, "/"), 1);
        drop(server);
        // Graceful shutdown closes the listener once the serving task sees the signal.
        let mut refused = false;
        for _ in 0..200 {
            if probe().await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(
            refused,
            "the server still answers after its handle was dropped"
        );
    }
}
