//! The `client` commands: what each one does, the pause it uses by default,
//! Ctrl-C, and how a failure becomes one line on stderr and an exit code.

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures::channel::mpsc;
use futures::future::{self, Either};
use futures::{Future, StreamExt, TryStreamExt};
use serde_json::json;

use super::input::{self, Input};
use super::output::{self, Format, Printer};
use messenger_lab::answers::LAB_DELAY;

use super::wire::{ShowWire, WireView};
use super::{calls, connect, demo, health, room, ClientError, ConnectOptions};
use crate::proto::messenger::ResearchNote;
use crate::rpc::messenger::LearningMessengerClient;

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// The lab's four demos: in order, or all at once over one connection.
    All { concurrent: bool },
    /// GetLearningStatus for `user_id`.
    Status { user_id: String },
    /// StreamLearnings on `topic`.
    Learn { topic: String },
    /// SubmitResearchNotes: one note per line of `input`, or the lab's four notes.
    Upload { input: Option<Input> },
    /// CollaborativeFeed: one update per line of standard input, as `user`
    /// unless the line names one; in `room` if given, else the lab's echo.
    Chat {
        user: Option<String>,
        room: Option<String>,
    },
    /// grpc.health.v1.Health: Check `service` once, or Watch it until the stream ends.
    Health { service: String, watch: bool },
}

impl Command {
    /// The pause before each outgoing streamed message when none is asked
    /// for: the lab's second for its demos, none for real data.
    fn default_delay(&self) -> Duration {
        match self {
            Command::All { .. } => LAB_DELAY,
            Command::Status { .. }
            | Command::Learn { .. }
            | Command::Upload { .. }
            | Command::Chat { .. }
            | Command::Health { .. } => Duration::ZERO,
        }
    }
}

/// How every command connects and prints.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub connect: ConnectOptions,
    /// The pause before each outgoing streamed message; `None` for the command's default.
    pub delay: Option<Duration>,
    pub format: Format,
    /// Print which replica answered each call (its `x-served-by` header).
    pub show_replica: bool,
    /// Run the calls through an in-process tap that shows every frame.
    pub show_wire: Option<ShowWire>,
}

/// Runs `command` to its end or until Ctrl-C (or SIGTERM), which cancels its
/// calls. A failure is reported in one line on stderr; the exit code is one
/// of [`super::exit`]. When our output is closed by its reader, we stop quietly.
pub fn run(command: Command, options: &ClientOptions) -> ExitCode {
    let mut interrupted = Box::pin(interruption());
    let wire_view = options
        .show_wire
        .map(|show| WireView::start(&options.connect, show))
        .transpose();
    let (wire, started) = match wire_view {
        Ok(wire) => (wire, Ok(())),
        Err(e) => (None, Err(e)),
    };
    let connect_options = wire
        .as_ref()
        .map_or(&options.connect, WireView::connect_options);
    let connected = started.and_then(|()| connect(connect_options));
    let result = connected.and_then(|client| {
        futures::executor::block_on(async {
            let work = execute(command, &client, options);
            futures::pin_mut!(work);
            match future::select(work, &mut interrupted).await {
                Either::Left((result, _)) => result,
                // Dropping the command's future cancels its calls.
                Either::Right(((), _)) => Err(ClientError::Interrupted),
            }
        })
    });
    // The channel is gone by now: the tap sees its connection close.
    if let Some(wire) = wire {
        if wire.is_web() && result.is_ok() {
            let _ = writeln!(
                io::stderr(),
                "client: the calls are done; the wire view stays up until Ctrl-C"
            );
            futures::executor::block_on(&mut interrupted);
        }
        wire.finish();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_closed_output() => ExitCode::SUCCESS,
        Err(e) => report(&e, &options.connect.target),
    }
}

/// Reports `error` of a command against `target` in one line on stderr; the
/// exit code that says what failed.
pub fn report(error: &ClientError, target: &str) -> ExitCode {
    // Not eprintln!, which panics when stderr is closed too.
    let _ = writeln!(
        io::stderr(),
        "{}",
        output::error_line(&error.report(target))
    );
    ExitCode::from(error.exit_code())
}

/// Diagnostics, gRPC C-core's included, only as RUST_LOG asks (none by
/// default): a failure is reported in one line, not in C-core's log lines.
pub fn init_logging() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("off")).init();
    // grpcio's redirect_log hands an Off level back to C-core's own stderr
    // logger; installed at Error, it routes C-core through `log`, which then
    // drops what RUST_LOG does not ask for.
    let level = log::max_level();
    log::set_max_level(level.max(log::LevelFilter::Error));
    grpcio::redirect_log();
    log::set_max_level(level);
}

/// Resolves on the first Ctrl-C or SIGTERM; a second one exits at once.
fn interruption() -> impl Future<Output = ()> {
    let (tx, mut rx) = mpsc::unbounded();
    let mut signals = 0;
    let installed = ctrlc::set_handler(move || {
        signals += 1;
        if signals > 1 {
            std::process::exit(i32::from(super::exit::INTERRUPTED));
        }
        let _ = tx.unbounded_send(());
    });
    async move {
        match installed {
            Ok(()) => {
                rx.next().await;
            }
            // Without a handler the default action still ends the process.
            Err(_) => future::pending().await,
        }
    }
}

async fn execute(
    command: Command,
    client: &LearningMessengerClient,
    options: &ClientOptions,
) -> Result<(), ClientError> {
    let delay = options.delay.unwrap_or_else(|| command.default_delay());
    let format = options.format;
    let show_replica = options.show_replica;
    let stdout = || Printer::stdout(format).showing_replica(show_replica);
    match command {
        // The lab's transcript stays as it is, on a terminal too.
        Command::All { concurrent: false } => {
            let mut printer = Printer::plain(io::stdout(), format).showing_replica(show_replica);
            demo::run_all(client, delay, &mut printer).await
        }
        Command::All { concurrent: true } => all_at_once(client, delay, format, show_replica).await,
        Command::Status { user_id } => calls::status(client, &user_id, &mut stdout()).await,
        Command::Learn { topic } => calls::learn(client, &topic, &mut stdout()).await,
        Command::Upload { input: None } => {
            calls::upload(client, demo::notes(), delay, &mut stdout()).await
        }
        Command::Upload { input: Some(input) } => {
            let notes = input::lines(&input)?.map_ok(|text| ResearchNote {
                text,
                ..Default::default()
            });
            calls::upload(client, notes, delay, &mut stdout()).await
        }
        Command::Chat { user, room } => {
            // In a room a token names us: updates without a user speak as it.
            let named_by_token = room.is_some() && options.connect.token.is_some();
            let user = user.unwrap_or_else(|| match named_by_token {
                true => String::new(),
                false => input::login_name(),
            });
            let speaker = user.clone();
            let updates = input::lines(&Input::Stdin)?
                .try_filter(|line| future::ready(!line.trim().is_empty()))
                .map_ok(move |line| input::parse_chat_line(&line, &speaker));
            let printer = &mut stdout();
            match room {
                None => calls::feed(client, updates, delay, printer).await,
                Some(room) => room::chat(client, &room, &user, updates, delay, printer).await,
            }
        }
        Command::Health { service, watch } => {
            health::probe(client, &service, watch, &mut stdout()).await
        }
    }
}

/// The patterns of `all --concurrent`, as their lines are labelled.
const PATTERNS: [&str; 4] = ["unary", "server-stream", "client-stream", "bidi"];

/// The four demos at the same time, as four calls on one channel (one HTTP/2
/// connection). Each pattern's lines are printed as they arrive, labelled,
/// then the total time: close to the longest pattern, not to their sum.
async fn all_at_once(
    client: &LearningMessengerClient,
    delay: Duration,
    format: Format,
    show_replica: bool,
) -> Result<(), ClientError> {
    let started = Instant::now();
    let printer = |pattern| {
        Printer::plain(io::stdout(), format)
            .labelled(pattern)
            .showing_replica(show_replica)
    };
    let [unary, server_stream, client_stream, bidi] = PATTERNS;
    let times = futures::try_join!(
        timed(printer(unary), |mut p| async move {
            demo::run_unary(client, &mut p).await.map(|()| p)
        }),
        timed(printer(server_stream), |mut p| async move {
            demo::run_server_streaming(client, &mut p).await.map(|()| p)
        }),
        timed(printer(client_stream), |mut p| async move {
            demo::run_client_streaming(client, delay, &mut p)
                .await
                .map(|()| p)
        }),
        timed(printer(bidi), |mut p| async move {
            demo::run_bidirectional_streaming(client, delay, &mut p)
                .await
                .map(|()| p)
        }),
    )?;
    let times = [times.0, times.1, times.2, times.3];
    let total = started.elapsed();
    let sum: Duration = times.iter().sum();
    let pattern_ms: serde_json::Map<_, _> = PATTERNS
        .iter()
        .zip(times)
        .map(|(pattern, time)| (pattern.to_string(), json!(time.as_millis() as u64)))
        .collect();
    let text = format!(
        "Total time: {:.2} s for the four patterns at once over one connection (their own times add up to {:.2} s)",
        total.as_secs_f64(),
        sum.as_secs_f64()
    );
    let json = json!({ "total_ms": total.as_millis() as u64, "pattern_ms": pattern_ms });
    Printer::plain(io::stdout(), format).result(&text, json)?;
    Ok(())
}

/// Runs one demo with its own `printer` (which it hands back) and says how
/// long it took, on its own labelled line as soon as it is done.
async fn timed<W, F, Fut>(printer: Printer<W>, demo: F) -> Result<Duration, ClientError>
where
    W: Write,
    F: FnOnce(Printer<W>) -> Fut,
    Fut: Future<Output = Result<Printer<W>, ClientError>>,
{
    let started = Instant::now();
    let mut printer = demo(printer).await?;
    let elapsed = started.elapsed();
    if printer.format() == Format::Text {
        printer.result(
            &format!("finished in {:.2} s", elapsed.as_secs_f64()),
            serde_json::Value::Null,
        )?;
    }
    Ok(elapsed)
}
