//! What the operating system offers beyond std: the socket options std has
//! no call for, set through `libc`. No thread of its own; the acceptors call
//! it once per connection, and `Server::start` once per listener.
//!
//! Each `unsafe` block makes one call, with a `SAFETY` comment.

use std::io;
use std::net::{TcpListener, TcpStream};

/// TCP keepalive: after this long with nothing received, the kernel starts
/// probing the peer.
pub(crate) const KEEPALIVE_IDLE_SECS: u32 = 60;
/// Between probes.
pub(crate) const KEEPALIVE_INTERVAL_SECS: u32 = 10;
/// Unanswered probes before the kernel declares the connection dead.
pub(crate) const KEEPALIVE_PROBES: u32 = 6;

/// Turns on TCP keepalive, so that a peer that vanished without closing
/// (cable pulled, laptop lid shut, NAT entry expired) is noticed: after
/// `KEEPALIVE_IDLE_SECS` of silence the kernel sends a probe every
/// `KEEPALIVE_INTERVAL_SECS`, and after `KEEPALIVE_PROBES` unanswered ones
/// the reader's `read` fails, and the client leaves the usual way. With
/// these values, within two minutes. A peer that is merely quiet answers
/// the probes at the TCP level and is never disturbed.
///
/// std has no call for this; `libc::setsockopt` does it.
pub(crate) fn set_keepalive(stream: &TcpStream) -> io::Result<()> {
    set_option(stream, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
    #[cfg(target_os = "linux")]
    {
        set_option(
            stream,
            libc::IPPROTO_TCP,
            libc::TCP_KEEPIDLE,
            KEEPALIVE_IDLE_SECS,
        )?;
        set_option(
            stream,
            libc::IPPROTO_TCP,
            libc::TCP_KEEPINTVL,
            KEEPALIVE_INTERVAL_SECS,
        )?;
        set_option(
            stream,
            libc::IPPROTO_TCP,
            libc::TCP_KEEPCNT,
            KEEPALIVE_PROBES,
        )?;
    }
    Ok(())
}

/// Lets the kernel queue up to `SOMAXCONN` (4096 on Linux since 5.4, and
/// capped by `net.core.somaxconn`) connections that have arrived but not yet
/// been accepted. std listens with a backlog of 128: in a storm of
/// connections the acceptor competes for the CPU with the reader and writer
/// threads it has just started, those 128 places fill, and the kernel drops
/// further SYNs, so those clients wait out TCP's retransmission timer (1 s,
/// then 3 s, ...). `nstat TcpExtListenOverflows` counts the drops.
///
/// std has no call for this; calling `listen` again on a listening socket
/// only changes its backlog, as POSIX allows.
pub(crate) fn widen_listen_backlog(listener: &TcpListener) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open for as long as `listener` is borrowed,
    // and `listen` takes no pointers.
    let result = unsafe { libc::listen(listener.as_raw_fd(), libc::SOMAXCONN) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `setsockopt` for one integer option.
fn set_option(
    stream: &TcpStream,
    level: libc::c_int,
    name: libc::c_int,
    value: u32,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let value = libc::c_int::try_from(value).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: the descriptor is open for as long as `stream` is borrowed;
    // the pointer and length describe `value`, a live c_int on our stack,
    // which the kernel only reads during the call.
    let result = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn get_option(stream: &TcpStream, level: libc::c_int, name: libc::c_int) -> libc::c_int {
        let mut value: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: the descriptor is open (borrowed from `stream`); the
        // pointers are to live locals of the right size, written only
        // during the call.
        let result = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                level,
                name,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(result, 0, "getsockopt: {}", io::Error::last_os_error());
        value
    }

    #[test]
    fn keepalive_is_on_with_our_timings() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let _client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server_side, _) = listener.accept().expect("accept");
        assert_eq!(
            get_option(&server_side, libc::SOL_SOCKET, libc::SO_KEEPALIVE),
            0
        );
        set_keepalive(&server_side).expect("set_keepalive");
        assert_eq!(
            get_option(&server_side, libc::SOL_SOCKET, libc::SO_KEEPALIVE),
            1
        );
        #[cfg(target_os = "linux")]
        {
            let tcp = |name| get_option(&server_side, libc::IPPROTO_TCP, name);
            assert_eq!(tcp(libc::TCP_KEEPIDLE), 60);
            assert_eq!(tcp(libc::TCP_KEEPINTVL), 10);
            assert_eq!(tcp(libc::TCP_KEEPCNT), 6);
        }
    }
}
