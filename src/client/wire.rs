//! `client --show-wire`: the command's calls go through a tap in this
//! process (messenger-wire), which prints every frame and message on stderr,
//! beside the command's own output on stdout, or (`=web`) draws them on a
//! page it serves, kept up after the calls until Ctrl-C.

use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use messenger_wire::{BackgroundTap, Format, TapOptions};

use super::{ClientError, ConnectOptions};

/// How long the tap waits, once the command is done, for its connection to
/// close, so the last frames and the connection's summary are printed.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// How the wire view shows the calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShowWire {
    /// Records on stderr.
    Print(Format),
    /// A page on 127.0.0.1 at a free port (the web view).
    Web,
}

/// A tap in front of the command's target.
pub struct WireView {
    tap: BackgroundTap,
    through: ConnectOptions,
}

impl WireView {
    /// Starts a tap on 127.0.0.1 at a free port, forwarding to `connect`'s target.
    pub fn start(connect: &ConnectOptions, show: ShowWire) -> Result<WireView, ClientError> {
        super::target::check_target(&connect.target).map_err(ClientError::Usage)?;
        // The tap is local, but it forwards the calls to the target as they are.
        if connect.token.is_some() {
            super::token::check_transport(&connect.target, connect.tls_ca.is_some())?;
        }
        let upstream = super::target::single_address(&connect.target).ok_or_else(|| {
            ClientError::Usage(format!(
                "--show-wire taps one TCP address; {} is not one (several, or a Unix socket)",
                connect.target
            ))
        })?;
        let stderr = io::stderr();
        let colour = stderr.is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let (format, sink, web): (_, Option<Box<dyn Write + Send>>, _) = match show {
            ShowWire::Print(format) => (format, Some(Box::new(stderr)), None),
            // Nothing printed: the format goes unused.
            ShowWire::Web => (Format::Text, None, Some("127.0.0.1:0".to_owned())),
        };
        let options = TapOptions {
            upstream: upstream.to_owned(),
            format,
            colour,
            bytes: false,
            web,
        };
        let tap = BackgroundTap::start(options, sink)
            .map_err(|e| ClientError::Setup(format!("cannot start the wire view: {e}")))?;
        if let Some(page) = tap.web_addr() {
            let _ = writeln!(
                io::stderr(),
                "client: the wire view is at http://{page}/ (it stays up after the calls, until Ctrl-C)"
            );
        }
        let mut through = connect.clone();
        through.target = tap.addr().to_string();
        // The calls still name the server, not the tap, in `:authority`.
        through.authority.get_or_insert_with(|| upstream.to_owned());
        // TLS passes the tap undecoded; the certificate still has to name the server.
        if through.tls_ca.is_some() && through.tls_server_name.is_none() {
            through.tls_server_name = Some(host_of(upstream).to_owned());
        }
        Ok(WireView { tap, through })
    }

    /// How the command connects: to the tap.
    pub fn connect_options(&self) -> &ConnectOptions {
        &self.through
    }

    /// Whether it serves a page (to be kept up once the calls are done).
    pub fn is_web(&self) -> bool {
        self.tap.web_addr().is_some()
    }

    /// Call once the command's channel is dropped.
    pub fn finish(self) {
        self.tap.stop(CLOSE_GRACE);
    }
}

/// `HOST` of `HOST:PORT` (`[::1]:50051` gives `::1`).
fn host_of(target: &str) -> &str {
    let host = target.rsplit_once(':').map_or(target, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_targets() {
        assert_eq!(host_of("localhost:50051"), "localhost");
        assert_eq!(host_of("[::1]:50051"), "::1");
        assert_eq!(host_of("example.org"), "example.org");
    }
}
