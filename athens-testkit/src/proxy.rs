//! A TCP proxy in front of a real service, for outage tests: while it is down, connections are
//! refused and the ones open are cut, as when the service crashes or the network fails, without
//! stopping the service other tests share.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

/// A proxy forwarding a local port to `target`.
pub struct Proxy {
    addr: SocketAddr,
    target: SocketAddr,
    up: watch::Sender<bool>,
    listener: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Proxy {
    /// Starts forwarding a fresh local port to `target` (host:port).
    pub async fn start(target: &str) -> anyhow::Result<Proxy> {
        let target: SocketAddr = tokio::net::lookup_host(target)
            .await?
            .next()
            .context("proxy target does not resolve")?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (up, _) = watch::channel(true);
        let proxy = Proxy {
            addr,
            target,
            up,
            listener: Arc::new(Mutex::new(None)),
        };
        proxy.listen(listener).await;
        Ok(proxy)
    }

    /// The local address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts every open connection and refuses new ones.
    pub async fn down(&self) {
        self.up.send_replace(false);
        if let Some(task) = self.listener.lock().await.take() {
            task.abort();
        }
    }

    /// Accepts connections again on the same port.
    pub async fn up(&self) -> anyhow::Result<()> {
        self.up.send_replace(true);
        let listener = TcpListener::bind(self.addr).await?;
        self.listen(listener).await;
        Ok(())
    }

    async fn listen(&self, listener: TcpListener) {
        let target = self.target;
        let up = self.up.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut down = up.subscribe();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = down.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        *self.listener.lock().await = Some(task);
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buffer = [0u8; 64];
                    while let Ok(n) = socket.read(&mut buffer).await {
                        if n == 0 || socket.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(addr: SocketAddr) -> anyhow::Result<Vec<u8>> {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(b"ping").await?;
        let mut reply = [0u8; 4];
        stream.read_exact(&mut reply).await?;
        Ok(reply.to_vec())
    }

    #[tokio::test]
    async fn forwards_refuses_while_down_and_recovers() {
        let proxy = Proxy::start(&echo_server().await.to_string())
            .await
            .unwrap();
        assert_eq!(round_trip(proxy.addr()).await.unwrap(), b"ping");

        let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
        proxy.down().await;
        assert!(
            round_trip(proxy.addr()).await.is_err(),
            "refused while down"
        );
        let mut buffer = [0u8; 4];
        let cut = open.write_all(b"ping").await.is_err()
            || matches!(open.read(&mut buffer).await, Ok(0) | Err(_));
        assert!(cut, "open connections are cut");

        proxy.up().await.unwrap();
        assert_eq!(round_trip(proxy.addr()).await.unwrap(), b"ping");
    }
}
