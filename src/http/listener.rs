//! The TCP acceptor: poem's, with Nagle's algorithm off on every connection.

use std::net::SocketAddr;

use poem::http::uri::Scheme;
use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};
use poem::web::{LocalAddr, RemoteAddr};

/// Accepts connections with `TCP_NODELAY` set. With Nagle's algorithm on, a small websocket
/// frame written while the previous one is unacknowledged waits for the client's delayed
/// ACK (up to 40 ms on Linux): events a few milliseconds apart arrived tens of
/// milliseconds late.
pub struct NoDelayAcceptor(TcpAcceptor);

impl NoDelayAcceptor {
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        Ok(Self(TcpListener::bind(addr).into_acceptor().await?))
    }
}

impl Acceptor for NoDelayAcceptor {
    type Io = tokio::net::TcpStream;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.0.local_addr()
    }

    async fn accept(&mut self) -> std::io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let accepted = self.0.accept().await?;
        accepted.0.set_nodelay(true)?;
        Ok(accepted)
    }
}
