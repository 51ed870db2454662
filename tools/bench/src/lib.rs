//! The benchmark behind `bench`: load patterns that drive any LearningMessenger
//! server over grpcio and check every answer ([`workloads`]), the lab's
//! "serialization tax" measured ([`codec`]), our server against the Python
//! reference in one run ([`compare`]), what the wire view costs ([`tap`]), and
//! feed rooms of several sizes on our own server ([`rooms`]). Figures are shown with
//! `messenger_testkit::report`.

pub mod codec;
pub mod compare;
pub mod rooms;
pub mod tap;
pub mod workloads;

use std::fmt;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use grpcio::{ChannelBuilder, ConnectivityState, EnvBuilder};
use indicatif::{ProgressBar, ProgressStyle};

use learning_messenger::client::{open_channel, Balancing, ClientError};
use learning_messenger::rpc::messenger::LearningMessengerClient;
use messenger_testkit::report::{self, Figure};

/// Why a benchmark run failed. Every variant reads as one line.
#[derive(Debug)]
pub enum BenchError {
    /// No connection could be made to the target.
    Unreachable { target: String, why: String },
    /// A call failed.
    Rpc {
        workload: &'static str,
        error: ClientError,
    },
    /// The server answered, but wrongly: a fast wrong answer never counts.
    WrongAnswer {
        workload: &'static str,
        what: String,
    },
    /// Starting or stopping a server, or writing results, failed.
    Setup(String),
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Unreachable { target, why } => write!(f, "cannot reach {target}: {why}"),
            BenchError::Rpc { workload, error } => write!(f, "{workload}: call failed: {error}"),
            BenchError::WrongAnswer { workload, what } => {
                write!(f, "{workload}: wrong answer: {what}")
            }
            BenchError::Setup(message) => write!(f, "{message}"),
        }
    }
}

impl std::error::Error for BenchError {}

impl BenchError {
    /// A failed call of `workload`.
    pub fn rpc(workload: &'static str) -> impl FnOnce(grpcio::Error) -> BenchError {
        move |error| BenchError::Rpc {
            workload,
            error: ClientError::Rpc(error),
        }
    }

    pub fn wrong(workload: &'static str, what: impl Into<String>) -> BenchError {
        BenchError::WrongAnswer {
            workload,
            what: what.into(),
        }
    }
}

/// Open connections to one server: one client stub per HTTP/2 connection.
pub struct Connections {
    pub target: String,
    clients: Vec<LearningMessengerClient>,
}

impl Connections {
    /// `count` separate channels to `target` (in gRPC's name syntax), each
    /// with its own HTTP/2 connection to every address it balances over with
    /// `balancing`, and connected before this returns; `threads`
    /// completion-queue threads drive them.
    pub fn open(
        target: &str,
        balancing: &Balancing,
        count: usize,
        threads: usize,
        timeout: Duration,
    ) -> Result<Connections, BenchError> {
        let env = Arc::new(
            EnvBuilder::new()
                .cq_count(threads.max(1))
                .name_prefix("bench")
                .build(),
        );
        let clients = (0..count.max(1))
            .map(|_| {
                // A channel of its own subchannel pool gets a connection of its own.
                let builder = ChannelBuilder::new(env.clone()).use_local_subchannel_pool(true);
                let channel = open_channel(builder, target, balancing)
                    .map_err(|e| BenchError::Setup(e.to_string()))?;
                wait_until_ready(&channel, timeout).map_err(|why| BenchError::Unreachable {
                    target: target.to_owned(),
                    why,
                })?;
                Ok(LearningMessengerClient::new(channel))
            })
            .collect::<Result<_, BenchError>>()?;
        Ok(Connections {
            target: target.to_owned(),
            clients,
        })
    }

    /// The same connections, with `options` (e.g. a deadline) on every call.
    pub fn with_options(&self, options: grpcio::CallOption) -> Connections {
        let clients = self
            .clients
            .iter()
            .map(|client| client.clone().with_options(options.clone()))
            .collect();
        Connections {
            target: self.target.clone(),
            clients,
        }
    }

    /// The client stub for worker `i` (workers are spread over the connections).
    pub fn client(&self, i: usize) -> &LearningMessengerClient {
        &self.clients[i % self.clients.len()]
    }

    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

/// Connects `channel`, failing at once on a refused connection instead of
/// retrying until the timeout.
fn wait_until_ready(channel: &grpcio::Channel, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut state = channel.check_connectivity_state(true);
    loop {
        match state {
            ConnectivityState::GRPC_CHANNEL_READY => return Ok(()),
            ConnectivityState::GRPC_CHANNEL_TRANSIENT_FAILURE => {
                return Err("connection failed (is a server listening there?)".to_owned())
            }
            ConnectivityState::GRPC_CHANNEL_SHUTDOWN => return Err("channel shut down".to_owned()),
            _ => {}
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero()
            || !futures::executor::block_on(channel.wait_for_state_change(state, left))
        {
            return Err(format!(
                "not connected within {}",
                report::format_duration(timeout)
            ));
        }
        state = channel.check_connectivity_state(true);
    }
}

/// A progress bar on stderr, shown only when stderr is a terminal.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar counting up to `total` `unit`s, prefixed by `label`.
    pub fn new(label: &str, total: u64, unit: &str) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let template = format!(
            "{{prefix:>14}} [{{bar:30}}] {{human_pos}}/{{human_len}} {unit} ({{eta}} left)"
        );
        let style = ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        let bar = ProgressBar::new(total)
            .with_style(style.progress_chars("=> "))
            .with_prefix(label.to_owned());
        Progress { bar: Some(bar) }
    }

    pub fn set(&self, position: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(position);
        }
    }

    /// Waits for `result`, moving the bar to what `position` reads every tenth of a second.
    pub fn wait<T>(
        &self,
        mut result: oneshot::Receiver<T>,
        position: impl Fn() -> u64,
    ) -> Option<T> {
        loop {
            match result.try_recv() {
                Ok(Some(value)) => return Some(value),
                Ok(None) => {
                    self.set(position());
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(oneshot::Canceled) => return None,
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A counter the load loops bump and the progress bar reads.
#[derive(Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    pub fn set(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Runs `workloads` against the server (or servers) at `target` and returns their figures.
pub fn run(
    target: &str,
    balancing: &Balancing,
    connections: usize,
    client_threads: usize,
    workloads: &[workloads::Workload],
    load: &workloads::Load,
) -> Result<Vec<Figure>, BenchError> {
    let connections = Connections::open(
        target,
        balancing,
        connections,
        client_threads,
        Duration::from_secs(5),
    )?;
    let mut figures = Vec::new();
    for workload in workloads {
        figures.extend(workload.run(&connections, load)?);
    }
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_as_one_line() {
        let error = BenchError::WrongAnswer {
            workload: "bidi",
            what: "echo 7 was \"x\"".to_owned(),
        };
        assert_eq!(error.to_string(), "bidi: wrong answer: echo 7 was \"x\"");
        let status =
            grpcio::RpcStatus::with_message(grpcio::RpcStatusCode::UNAVAILABLE, "gone".into());
        let error = BenchError::rpc("unary")(grpcio::Error::RpcFailure(status));
        assert_eq!(error.to_string(), "unary: call failed: UNAVAILABLE: gone");
    }
}
