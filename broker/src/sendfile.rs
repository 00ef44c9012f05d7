//! Zero-copy transfer of a [`FileSlice`] to a non-blocking TCP socket.
//!
//! The kernel copies page-cache pages straight to the socket; record bytes never
//! enter user space. The socket is non-blocking (tokio), so `sendfile` may write
//! part of the range or return `EAGAIN`; we then await writability on the tokio
//! reactor, which parks only this connection's task.

use std::io;

use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::log::FileSlice;

/// Writes the whole slice to `stream`. Fails with `UnexpectedEof` if the file is
/// shorter than the slice claims (e.g. truncated underneath us): the response
/// would be corrupt, so the caller must close the connection.
pub async fn send_file_slice(stream: &TcpStream, slice: &FileSlice) -> io::Result<()> {
    let mut offset: libc::off_t = libc::off_t::try_from(slice.position)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file position too large"))?;
    let mut remaining = slice.len;
    while remaining > 0 {
        stream.writable().await?;
        let res = stream.try_io(Interest::WRITABLE, || {
            nix::sys::sendfile::sendfile(stream, &*slice.file, Some(&mut offset), remaining)
                .map_err(io::Error::from)
        });
        match res {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shorter than the slice being sent",
                ))
            }
            Ok(n) => remaining -= n.min(remaining),
            // Readiness was cleared by try_io; wait again.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
