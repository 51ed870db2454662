//! gRPC C-core's own log lines, routed into the `log` crate as grpcio's
//! `redirect_log` does, except that a peer's failed TLS handshake is logged
//! at debug level.
//!
//! Why: C-core logs every failed handshake at ERROR from
//! `ssl_transport_security.cc` ("Handshake failed with fatal error
//! SSL_ERROR_SSL: ...": a client without a certificate, with one from another
//! CA or an expired one, a plaintext client). Those are the peer's problem,
//! not the server's, and anyone who can open a TCP connection can make them:
//! at ERROR, a handshake flood would flood the log. At debug they are there
//! for `RUST_LOG=grpcio=debug`; everything else keeps C-core's severity.

use std::ffi::CStr;
use std::sync::atomic::{AtomicUsize, Ordering};

use grpcio_sys::{gpr_log_func_args, gpr_log_severity};
use log::Level;

/// The target of C-core's lines: `RUST_LOG=grpcio=...` selects them.
const TARGET: &str = "grpcio";

/// Lines C-core logs when a peer's handshake fails, as (the source file's
/// name, the start of the message). The files' other lines (credentials
/// that cannot be loaded, at start) keep their severity.
const PEER_HANDSHAKE_FAILURES: &[(&str, &str)] = &[
    // The peer sent no certificate, an unverifiable one, or no TLS at all.
    (
        "ssl_transport_security.cc",
        "Handshake failed with fatal error",
    ),
    // With CRL checking: the peer's certificate failed verification.
    ("ssl_transport_security.cc", "Certificate verify failed"),
    // The peer asked (SNI) for a name none of the server's certificates has.
    (
        "ssl_transport_security.cc",
        "No match found for server name",
    ),
    // The peer's handshake ended in the middle.
    (
        "ssl_transport_security.cc",
        "Failed to read the expected number of bytes",
    ),
    // C-core's own summaries, already at debug: listed so they stay there.
    ("security_handshaker.cc", "Security handshake failed"),
    ("chttp2_server.cc", "Handshaking failed"),
];

/// Runs under way in [`muted`]: while any is, C-core's lines are dropped.
static MUTED: AtomicUsize = AtomicUsize::new(0);

/// Runs `f` with C-core's own lines muted (a failed start is said in one
/// line of ours, not C-core's). Only C-core's: what the rest of the process
/// logs meanwhile (the room store found unreachable as the server starts)
/// goes out, and the level set by `RUST_LOG` is never touched, so runs on
/// several threads at once cannot leave it off.
pub fn muted<T>(f: impl FnOnce() -> T) -> T {
    struct Unmute;
    impl Drop for Unmute {
        fn drop(&mut self) {
            MUTED.fetch_sub(1, Ordering::SeqCst);
        }
    }
    MUTED.fetch_add(1, Ordering::SeqCst);
    let _unmute = Unmute;
    f()
}

/// The level a C-core line is logged at.
fn level_of(file: &str, severity: gpr_log_severity, message: &str) -> Level {
    let file_name = file.rsplit(['/', '\\']).next().unwrap_or(file);
    if PEER_HANDSHAKE_FAILURES
        .iter()
        .any(|(name, start)| file_name == *name && message.starts_with(start))
    {
        return Level::Debug;
    }
    match severity {
        gpr_log_severity::GPR_LOG_SEVERITY_DEBUG => Level::Debug,
        gpr_log_severity::GPR_LOG_SEVERITY_INFO => Level::Info,
        gpr_log_severity::GPR_LOG_SEVERITY_ERROR => Level::Error,
    }
}

/// C-core's log function: called on C-core's threads, must not panic.
extern "C" fn log_line(args: *mut gpr_log_func_args) {
    // SAFETY: C-core passes valid arguments, its strings NUL-terminated,
    // for the duration of the call.
    let args = unsafe { &*args };
    let (file, message) = unsafe { (CStr::from_ptr(args.file), CStr::from_ptr(args.message)) };
    let (file, message) = (file.to_string_lossy(), message.to_string_lossy());
    let level = level_of(&file, args.severity, &message);
    if MUTED.load(Ordering::SeqCst) > 0 || !log::log_enabled!(target: TARGET, level) {
        return;
    }
    log::logger().log(
        &log::Record::builder()
            .args(format_args!("{message}"))
            .level(level)
            .target(TARGET)
            .file(Some(&file))
            .line(u32::try_from(args.line).ok())
            .build(),
    );
}

/// Routes C-core's log into `log` (call it after the logger is set up: it
/// reads the maximum level), peers' failed handshakes at debug.
pub fn redirect() {
    // grpcio sets C-core's verbosity from log::max_level() and, at Off, turns
    // C-core's log off; then our function replaces grpcio's.
    grpcio::redirect_log();
    if log::max_level() != log::LevelFilter::Off {
        // SAFETY: `log_line` is a valid log function for the whole process.
        unsafe { grpcio_sys::gpr_set_log_function(Some(log_line)) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SSL: &str = "/build/grpc/src/core/tsi/ssl_transport_security.cc";

    #[test]
    fn a_peers_failed_handshake_is_debug() {
        let message = "Handshake failed with fatal error SSL_ERROR_SSL: error:0A0000C7:SSL routines::peer did not return a certificate.";
        let error = gpr_log_severity::GPR_LOG_SEVERITY_ERROR;
        assert_eq!(level_of(SSL, error, message), Level::Debug);
        assert_eq!(
            level_of("ssl_transport_security.cc", error, message),
            Level::Debug
        );
    }

    #[test]
    fn other_lines_keep_their_severity() {
        let error = gpr_log_severity::GPR_LOG_SEVERITY_ERROR;
        assert_eq!(
            level_of(SSL, error, "Invalid cert chain file."),
            Level::Error
        );
        // The same words from another file are not a peer's handshake.
        assert_eq!(
            level_of(
                "tcp_server_posix.cc",
                error,
                "Handshake failed with fatal error"
            ),
            Level::Error
        );
        assert_eq!(
            level_of(
                "chttp2_server.cc",
                gpr_log_severity::GPR_LOG_SEVERITY_INFO,
                "WARNING: x"
            ),
            Level::Info
        );
    }
}
