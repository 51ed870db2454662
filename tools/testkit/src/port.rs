//! Loopback ports for a child process to listen on, that no other process
//! using this module takes meanwhile (Linux).
//!
//! The tests run in parallel processes (cargo-nextest), and "bind port 0,
//! read it, close it" leaves a window in which any socket can take the port:
//! every bind to port 0 and every outgoing connection draws from the kernel's
//! ephemeral range. So the port comes from outside that range, where the
//! kernel never hands one out, and an abstract Unix socket named after it,
//! held until this process exits, keeps the others off it. Nothing to clean
//! up: the kernel drops the name with the process, however it ends.

use std::io;
use std::net::TcpListener;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Mutex;

/// The names this process holds (one per port it reserved).
static HELD: Mutex<Vec<UnixDatagram>> = Mutex::new(Vec::new());

/// A port on 127.0.0.1 that is free now and stays this process's: nothing
/// else listens there unless this process starts it (a server it spawns).
/// A port where nobody listens, if left alone.
pub fn reserve() -> io::Result<u16> {
    let (first, last) = pool();
    let size = u32::from(last - first) + 1;
    // Start somewhere different in each process, to find a free one at once.
    let start = std::process::id().wrapping_mul(7919) % size;
    for step in 0..size {
        let port = first + ((start + step) % size) as u16;
        let name = SocketAddr::from_abstract_name(format!("learning-messenger/port/{port}"))?;
        let Ok(hold) = UnixDatagram::bind_addr(&name) else {
            continue; // another process holds it
        };
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            HELD.lock().unwrap_or_else(|e| e.into_inner()).push(hold);
            return Ok(port);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("no free port on 127.0.0.1 in {first}..={last}"),
    ))
}

/// The widest span of unprivileged ports outside the ephemeral range.
fn pool() -> (u16, u16) {
    let (low, high) = ephemeral_range().unwrap_or((32768, 60999));
    let below = (1024, low.saturating_sub(1));
    let above = (high.saturating_add(1), u16::MAX);
    if below.1.saturating_sub(below.0) >= above.1.saturating_sub(above.0) {
        below
    } else {
        above
    }
}

/// The kernel's ephemeral range (`ip_local_port_range`).
fn ephemeral_range() -> Option<(u16, u16)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut bounds = text.split_whitespace().map(|n| n.parse().ok());
    Some((bounds.next()??, bounds.next()??))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_ports_are_outside_the_ephemeral_range_and_not_handed_out_twice() {
        let (low, high) = ephemeral_range().unwrap_or((32768, 60999));
        let ports: Vec<u16> = (0..20).map(|_| reserve().unwrap()).collect();
        for &port in &ports {
            assert!(!(low..=high).contains(&port), "{port} is ephemeral");
            assert!(port >= 1024);
            // Free to listen on.
            drop(TcpListener::bind(("127.0.0.1", port)).unwrap());
        }
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len(), "{ports:?}");
    }

    #[test]
    fn a_port_held_by_another_process_is_skipped() {
        let port = reserve().unwrap();
        // The same name again, as another process would try it: taken.
        let name =
            SocketAddr::from_abstract_name(format!("learning-messenger/port/{port}")).unwrap();
        assert!(UnixDatagram::bind_addr(&name).is_err());
    }
}
