//! TCP_NODELAY on PostgreSQL connections.
//!
//! sqlx 0.9.0 opens its TCP connections without `TCP_NODELAY` (a
//! regression: sqlx issue 4335, fixed upstream after 0.9.0 but not
//! released). With Nagle's algorithm on, a statement whose bind message
//! leaves a small last segment waits for the server's delayed ACK, about
//! 40 ms on Linux: a poll page or a batch of webhooks took ~55 ms per
//! transaction instead of a few. Every new PostgreSQL connection therefore
//! asks the server which local port it came from and sets the option on
//! that socket. Remove this module once a sqlx release sets it again.

use std::os::fd::RawFd;

use sqlx::PgConnection;

/// Sets `TCP_NODELAY` on the socket of `conn` (nothing over a Unix socket).
pub(super) async fn set_nodelay(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    let ports: (Option<i32>, Option<i32>) =
        sqlx::query_as("SELECT inet_client_port(), inet_server_port()")
            .fetch_one(conn)
            .await?;
    if let (Some(local), Some(remote)) = ports
        && let (Ok(local), Ok(remote)) = (u16::try_from(local), u16::try_from(remote))
        && !set_on_socket(local, remote)
    {
        tracing::debug!(
            local,
            remote,
            "could not find the PostgreSQL connection's socket to set TCP_NODELAY"
        );
    }
    Ok(())
}

/// Finds this process's TCP socket from `local` to `remote` and sets
/// `TCP_NODELAY` on it. Returns whether it was found. A socket closed and
/// reused meanwhile is checked again by its ports before it is changed.
fn set_on_socket(local: u16, remote: u16) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return false;
    };
    for entry in entries.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<RawFd>().ok())
        else {
            continue;
        };
        if port_of(fd, libc::getsockname) == Some(local)
            && port_of(fd, libc::getpeername) == Some(remote)
        {
            let on: libc::c_int = 1;
            // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from `on`;
            // on an fd that is no socket (any more) it fails with ENOTSOCK.
            let done = unsafe {
                libc::setsockopt(
                    fd,
                    libc::IPPROTO_TCP,
                    libc::TCP_NODELAY,
                    (&raw const on).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            return done == 0;
        }
    }
    false
}

type NameFn =
    unsafe extern "C" fn(libc::c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> libc::c_int;

/// The TCP port of `fd`'s own (`getsockname`) or peer (`getpeername`)
/// address, if it is an IPv4 or IPv6 socket.
fn port_of(fd: RawFd, name: NameFn) -> Option<u16> {
    // SAFETY: an all-zero sockaddr_storage is a valid value.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: the call writes at most `len` bytes into `addr` and updates
    // `len`; on an fd that is not a socket it fails with ENOTSOCK.
    if unsafe { name(fd, (&raw mut addr).cast(), &raw mut len) } != 0 {
        return None;
    }
    match i32::from(addr.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let v4: libc::sockaddr_in = unsafe { std::ptr::read((&raw const addr).cast()) };
            Some(u16::from_be(v4.sin_port))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let v6: libc::sockaddr_in6 = unsafe { std::ptr::read((&raw const addr).cast()) };
            Some(u16::from_be(v6.sin6_port))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn nodelay(fd: RawFd) -> bool {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `value`.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&raw mut value).cast(),
                &raw mut len,
            )
        };
        assert_eq!(rc, 0);
        value != 0
    }

    #[test]
    fn the_socket_with_those_ports_gets_nodelay_and_no_other() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let ours = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let other = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert!(!nodelay(ours.as_raw_fd()) && !nodelay(other.as_raw_fd()));
        let local = ours.local_addr().unwrap().port();
        let remote = listener.local_addr().unwrap().port();
        assert!(set_on_socket(local, remote));
        assert!(nodelay(ours.as_raw_fd()));
        assert!(!nodelay(other.as_raw_fd()));
        // Ports no socket has: nothing found.
        assert!(!set_on_socket(local, remote.wrapping_add(1)));
    }
}
