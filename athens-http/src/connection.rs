//! Connections that go quiet are closed: every accepted connection gets a read and a write timeout
//! (`tokio-io-timeout`), so a client that stalls half-way through its request headers, or stops
//! reading its answer, holds its connection no longer than
//! [`idle_timeout_ms`](crate::HttpConfig::idle_timeout_ms).
//!
//! poem's own idle timeout only asks hyper to close a connection gracefully, and hyper waits for a
//! request whose headers have started to arrive to complete first: a slow-headers client
//! ("slowloris") would keep its connections for ever. A read that stays pending past the timeout
//! fails instead, and hyper drops the connection.

use std::io;
use std::pin::Pin;
use std::time::Duration;

use poem::http::uri::Scheme;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use tokio_io_timeout::TimeoutStream;

/// Wraps `inner`'s connections in read and write timeouts of `timeout`.
pub(crate) struct TimeoutAcceptor<A> {
    pub(crate) inner: A,
    pub(crate) timeout: Duration,
}

impl<A: Acceptor> Acceptor for TimeoutAcceptor<A> {
    type Io = Pin<Box<TimeoutStream<A::Io>>>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (io, local, remote, scheme) = self.inner.accept().await?;
        let mut stream = TimeoutStream::new(io);
        stream.set_read_timeout(Some(self.timeout));
        stream.set_write_timeout(Some(self.timeout));
        Ok((Box::pin(stream), local, remote, scheme))
    }
}
