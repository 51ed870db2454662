//! Why a client command failed, as one line for the user and an exit code.

use std::fmt;

use grpcio::RpcStatusCode;

/// Why a client command failed.
#[derive(Debug)]
pub enum ClientError {
    /// The call failed with this gRPC status (or the channel failed).
    Rpc(grpcio::Error),
    /// Reading input or writing output failed.
    Io(std::io::Error),
    /// Bad local set-up: unreadable file, bad option value.
    Setup(String),
    /// A flag's value that gRPC cannot use: a bad target, a service config C-core refuses.
    Usage(String),
    /// The input to send is unreadable: where, and why.
    Input(String),
    /// Ctrl-C (or SIGTERM) ended the command; its calls were cancelled.
    Interrupted,
    /// The health probe's service is not SERVING: its status.
    NotServing(String),
    /// The health probe's service is unknown to the server.
    UnknownService(String),
}

/// The client's exit codes (clap's usage errors exit with [`exit::USAGE`]).
pub mod exit {
    /// A call failed: the server answered with an error status, was unreachable, or the deadline passed.
    pub const CALL_FAILED: u8 = 1;
    /// A bad flag or argument.
    pub const USAGE: u8 = 2;
    /// A local problem: an unreadable input or certificate file, or output that cannot be written.
    pub const LOCAL: u8 = 3;
    /// `client health`: the service is known but not SERVING.
    pub const NOT_SERVING: u8 = 4;
    /// `client health`: the server does not know the service.
    pub const UNKNOWN_SERVICE: u8 = 5;
    /// Interrupted by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
    pub const INTERRUPTED: u8 = 130;
}

impl From<grpcio::Error> for ClientError {
    fn from(e: grpcio::Error) -> Self {
        ClientError::Rpc(e)
    }
}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        ClientError::Io(e)
    }
}

/// The name of a status code as gRPC spells it, e.g. `UNAVAILABLE`.
pub fn code_name(code: RpcStatusCode) -> &'static str {
    messenger_lab::status_code::status_code_name(i32::from(code).into()).unwrap_or("UNKNOWN")
}

impl ClientError {
    /// The status code of a failed call, if it was one.
    pub fn code(&self) -> Option<RpcStatusCode> {
        match self {
            ClientError::Rpc(grpcio::Error::RpcFailure(status)) => Some(status.code()),
            ClientError::Rpc(grpcio::Error::RpcFinished(Some(status))) => Some(status.code()),
            _ => None,
        }
    }

    /// One line for the user: for a failed call the target, the status code
    /// and its message; for a local problem, what and where.
    pub fn report(&self, target: &str) -> String {
        match self {
            ClientError::Rpc(_)
            | ClientError::Interrupted
            | ClientError::NotServing(_)
            | ClientError::UnknownService(_) => format!("error: {target}: {self}"),
            ClientError::Io(_) => format!("error: cannot write the output: {self}"),
            ClientError::Setup(_) | ClientError::Input(_) | ClientError::Usage(_) => {
                format!("error: {self}")
            }
        }
    }

    /// The process exit code for this failure, one of [`exit`].
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Rpc(_) => exit::CALL_FAILED,
            ClientError::Interrupted => exit::INTERRUPTED,
            ClientError::Usage(_) => exit::USAGE,
            ClientError::NotServing(_) => exit::NOT_SERVING,
            ClientError::UnknownService(_) => exit::UNKNOWN_SERVICE,
            ClientError::Io(_) | ClientError::Setup(_) | ClientError::Input(_) => exit::LOCAL,
        }
    }

    /// Whether our output was closed by its reader (e.g. `client learn | head -1`):
    /// the reader chose to stop, so the client stops quietly.
    pub fn is_closed_output(&self) -> bool {
        matches!(self, ClientError::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Rpc(
                grpcio::Error::RpcFailure(status) | grpcio::Error::RpcFinished(Some(status)),
            ) => {
                let message = status.message().replace('\n', " ");
                if message.is_empty() {
                    write!(f, "{}", code_name(status.code()))
                } else {
                    write!(f, "{}: {message}", code_name(status.code()))
                }
            }
            ClientError::Rpc(e) => write!(f, "{e}"),
            ClientError::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                write!(f, "output closed")
            }
            ClientError::Io(e) => write!(f, "{e}"),
            ClientError::Setup(message)
            | ClientError::Input(message)
            | ClientError::Usage(message) => write!(f, "{message}"),
            ClientError::Interrupted => write!(f, "CANCELLED: interrupted"),
            ClientError::NotServing(status) => write!(f, "health: {status}"),
            ClientError::UnknownService(service) => {
                write!(f, "health: unknown service {service:?}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_named_as_grpc_spells_them() {
        assert_eq!(code_name(RpcStatusCode::OK), "OK");
        assert_eq!(code_name(RpcStatusCode::UNAVAILABLE), "UNAVAILABLE");
        assert_eq!(code_name(RpcStatusCode::UNAUTHENTICATED), "UNAUTHENTICATED");
        assert_eq!(code_name(RpcStatusCode::from(99)), "UNKNOWN");
    }
}
