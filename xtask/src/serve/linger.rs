//! A lingering close: a server that answers before reading a whole request (413 from the
//! header) and then closes would make the kernel reset the connection over the unread bytes,
//! and the client would see the reset instead of the answer. [`Lingering`] shuts its write
//! side down first and reads what the client still sends, for a bounded time and amount,
//! before closing.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// Longest a closing connection keeps reading.
const LINGER: Duration = Duration::from_secs(2);
/// Most bytes read and dropped while closing.
const LINGER_BYTES: usize = 4 << 20;

/// A TCP stream whose shutdown lingers (see the module docs).
pub struct Lingering {
    stream: TcpStream,
    closing: Option<(Pin<Box<Sleep>>, usize)>,
}

impl Lingering {
    /// Wraps `stream`.
    pub fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            closing: None,
        }
    }
}

impl AsyncRead for Lingering {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.closing.is_none() {
            // The answer is out: send FIN, then drain.
            match Pin::new(&mut this.stream).poll_shutdown(cx) {
                Poll::Ready(Ok(())) => {}
                other => return other,
            }
            this.closing = Some((Box::pin(tokio::time::sleep(LINGER)), 0));
        }
        let (deadline, drained) = this.closing.as_mut().expect("closing");
        let mut scratch = [0u8; 8192];
        loop {
            if deadline.as_mut().poll(cx).is_ready() || *drained >= LINGER_BYTES {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => *drained += buf.filled().len(),
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
