//! What the operating system offers beyond std: the socket options and the
//! scheduling policy std has no call for, set through `libc`. No thread of
//! its own; the acceptors call it once per connection, `Server::start` once
//! per listener, and each writer once as it starts.
//!
//! Every difference between platforms lives here. Linux has all of it;
//! macOS has the socket options but not `SCHED_BATCH`; on Windows, `libc`
//! has no socket options at all, so std's defaults stay, and
//! [`NOT_SET_HERE`] lists what that means, for `Server::start` to log once.
//!
//! Each `unsafe` block makes one call, with a `SAFETY` comment.

use std::io;
use std::net::{TcpListener, TcpStream};

/// What this platform cannot set, and what that costs: logged once at
/// start-up.
#[cfg(windows)]
pub(crate) const NOT_SET_HERE: &[&str] = &[
    "TCP keepalive (a vanished peer is noticed after the system's default, \
     about two hours, instead of two minutes)",
    "the listen backlog (std's default; a storm of connections may wait longer)",
    "writers' wake-up preemption (writers keep the default scheduling)",
];
#[cfg(target_os = "macos")]
pub(crate) const NOT_SET_HERE: &[&str] =
    &["writers' wake-up preemption (writers keep the default scheduling)"];
#[cfg(not(any(windows, target_os = "macos")))]
pub(crate) const NOT_SET_HERE: &[&str] = &[];

/// Logs, once, what [`NOT_SET_HERE`] lists.
pub(crate) fn say_what_is_not_set() {
    if !NOT_SET_HERE.is_empty() {
        log::info!(
            "on this system threadchat cannot set {}; the system's defaults are used",
            NOT_SET_HERE.join("; ")
        );
    }
}

/// TCP keepalive: after this long with nothing received, the kernel starts
/// probing the peer.
#[cfg(unix)]
pub(crate) const KEEPALIVE_IDLE_SECS: u32 = 60;
/// Between probes.
#[cfg(unix)]
pub(crate) const KEEPALIVE_INTERVAL_SECS: u32 = 10;
/// Unanswered probes before the kernel declares the connection dead.
#[cfg(unix)]
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
    #[cfg(unix)]
    {
        unix::set_option(stream, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
        // macOS calls the idle time TCP_KEEPALIVE; Linux and the BSDs
        // TCP_KEEPIDLE.
        #[cfg(target_os = "macos")]
        let idle = libc::TCP_KEEPALIVE;
        #[cfg(not(target_os = "macos"))]
        let idle = libc::TCP_KEEPIDLE;
        let tcp = libc::IPPROTO_TCP;
        unix::set_option(stream, tcp, idle, KEEPALIVE_IDLE_SECS)?;
        unix::set_option(stream, tcp, libc::TCP_KEEPINTVL, KEEPALIVE_INTERVAL_SECS)?;
        unix::set_option(stream, tcp, libc::TCP_KEEPCNT, KEEPALIVE_PROBES)?;
    }
    #[cfg(not(unix))]
    let _ = stream;
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
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: the descriptor is open for as long as `listener` is
        // borrowed, and `listen` takes no pointers.
        let result = unsafe { libc::listen(listener.as_raw_fd(), libc::SOMAXCONN) };
        if result != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(not(unix))]
    let _ = listener;
    Ok(())
}

/// Asks the kernel not to let the calling thread preempt the one that
/// woke it: Linux's `SCHED_BATCH` policy. Each writer calls it as it
/// starts. The manager wakes up to a thousand writers, one after another,
/// at the end of a batch (`outbox.rs`); under the normal policy each woken
/// writer, having slept, preempts the manager on its own CPU, so the
/// manager gets through its list of wake-ups a few at a time and the last
/// writer waits longest. With `SCHED_BATCH` the writers run as soon as a
/// CPU is free, and share the CPU as fairly as before; only the wake-up
/// preemption goes (docs/BENCHMARKS.md measures it). Elsewhere it does
/// nothing, and says so by returning false.
pub(crate) fn do_not_preempt_the_waker() -> bool {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` is a live, initialised sched_param on our stack,
        // read by the kernel during the call only; pid 0 is the calling
        // thread, and SCHED_BATCH needs no privilege.
        let result = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
        result == 0
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

#[cfg(unix)]
mod unix {
    use std::io;
    use std::net::TcpStream;
    use std::os::fd::AsRawFd;

    /// `setsockopt` for one integer option.
    pub(super) fn set_option(
        stream: &TcpStream,
        level: libc::c_int,
        name: libc::c_int,
        value: u32,
    ) -> io::Result<()> {
        let value = libc::c_int::try_from(value).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: the descriptor is open for as long as `stream` is
        // borrowed; the pointer and length describe `value`, a live c_int
        // on our stack, which the kernel only reads during the call.
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
}

#[cfg(all(test, unix))]
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
    #[cfg(target_os = "linux")]
    fn a_thread_can_give_up_wakeup_preemption() {
        let policy = std::thread::spawn(|| {
            let set = do_not_preempt_the_waker();
            // SAFETY: pid 0 is this thread; the call takes no pointers.
            (set, unsafe { libc::sched_getscheduler(0) })
        })
        .join()
        .expect("the thread");
        assert_eq!(policy, (true, libc::SCHED_BATCH));
    }

    #[test]
    fn keepalive_is_on_with_our_timings() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let _client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server_side, _) = listener.accept().expect("accept");
        let keepalive = || get_option(&server_side, libc::SOL_SOCKET, libc::SO_KEEPALIVE);
        assert_eq!(keepalive(), 0);
        set_keepalive(&server_side).expect("set_keepalive");
        // The BSDs answer with the option's flag, Linux with 1.
        assert_ne!(keepalive(), 0);
        #[cfg(target_os = "macos")]
        let idle = libc::TCP_KEEPALIVE;
        #[cfg(not(target_os = "macos"))]
        let idle = libc::TCP_KEEPIDLE;
        let tcp = |name| get_option(&server_side, libc::IPPROTO_TCP, name);
        assert_eq!(tcp(idle), 60);
        assert_eq!(tcp(libc::TCP_KEEPINTVL), 10);
        assert_eq!(tcp(libc::TCP_KEEPCNT), 6);
    }
}
