//! The load patterns. Each runs on the bench client's completion-queue threads
//! (grpcio's own executor, so no thread hand-offs per message), checks every
//! answer against what the lab's server must say, and returns its figures.

use std::future::Future;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures::future::{self, Either};
use futures::{stream, SinkExt, TryStreamExt};
use futures_timer::Delay;
use grpcio::{CallOption, WriteFlags};
use learning_messenger::client::error::code_name;
use learning_messenger::rpc::messenger::LearningMessengerClient;
use learning_messenger::rpc::ok_if_call_over;
use messenger_lab::answers::learning_contents;
use messenger_lab::demo::TOPIC;
use messenger_lab::proto::messenger::{StatusRequest, TopicRequest};
use messenger_testkit::checks::{
    check_echo, check_learning_update, check_status, check_summary, numbered_note, numbered_update,
};
use messenger_testkit::closed_loop::{self, Tally, Window};
use messenger_testkit::report::{per_second, Figure, Latency, Unit};

use crate::{BenchError, Connections, Counter, Progress};

/// How long a call of a timed workload may outlast its window.
const CALL_GRACE: Duration = Duration::from_secs(10);
/// How long one client-stream or bidi call may take.
const STREAM_DEADLINE: Duration = Duration::from_secs(600);
/// A worker's pause after a failed call: a target that refuses at once
/// (every replica down) must not spin its completion-queue thread.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_millis(10);

/// How hard and how long to drive a server.
#[derive(Clone, Debug)]
pub struct Load {
    /// Calls in flight at once (unary, server-stream).
    pub concurrency: usize,
    /// Measured time of the timed workloads (unary, server-stream, ping-pong).
    pub duration: Duration,
    /// Unmeasured time before it, for connections, caches and windows to settle.
    pub warmup: Duration,
    /// Messages in the one client-stream call and the one bidi call.
    pub messages: u64,
}

impl Default for Load {
    fn default() -> Self {
        Load {
            concurrency: 64,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            messages: 1_000_000,
        }
    }
}

impl Load {
    /// Messages of the unmeasured call that comes before a measured stream.
    fn warmup_messages(&self) -> u64 {
        (self.messages / 10).clamp(1, 100_000)
    }
}

/// The load patterns, by the names the command line uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    Unary,
    ServerStream,
    ClientStream,
    Bidi,
    PingPong,
}

impl Workload {
    pub const ALL: [Workload; 5] = [
        Workload::Unary,
        Workload::ServerStream,
        Workload::ClientStream,
        Workload::Bidi,
        Workload::PingPong,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Unary => "unary",
            Workload::ServerStream => "server-stream",
            Workload::ClientStream => "client-stream",
            Workload::Bidi => "bidi",
            Workload::PingPong => "ping-pong",
        }
    }

    /// Runs this workload (warm-up included) and returns its figures.
    pub fn run(self, connections: &Connections, load: &Load) -> Result<Vec<Figure>, BenchError> {
        // A server that stops answering fails the run instead of hanging it.
        let deadline = match self {
            Workload::ClientStream | Workload::Bidi => STREAM_DEADLINE,
            _ => load.warmup + load.duration + CALL_GRACE,
        };
        let connections = connections.with_options(CallOption::default().timeout(deadline));
        match self {
            Workload::Unary => unary(&connections, load),
            Workload::ServerStream => server_stream(&connections, load),
            Workload::ClientStream => client_stream(connections.client(0), load),
            Workload::Bidi => bidi(connections.client(0), load),
            Workload::PingPong => ping_pong(connections.client(0), load),
        }
    }
}

/// Runs `work` on `client`'s completion-queue thread; the receiver gets its result.
pub(crate) fn spawn_on<T: Send + 'static>(
    client: &LearningMessengerClient,
    work: impl Future<Output = T> + Send + 'static,
) -> oneshot::Receiver<T> {
    let (done, result) = oneshot::channel();
    client.spawn(async move {
        let _ = done.send(work.await);
    });
    result
}

/// The results of spawned tasks (`who` each is, for the message when one
/// was dropped unfinished), or the first failure.
pub(crate) fn outcomes<T>(
    workload: &str,
    who: &str,
    results: Vec<Result<Result<T, BenchError>, oneshot::Canceled>>,
) -> Result<Vec<T>, BenchError> {
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|_| {
                Err(BenchError::Setup(format!(
                    "{workload}: {who} stopped without a result"
                )))
            })
        })
        .collect()
}

/// Waits for `work`, moving `progress` to what `position` reads meanwhile.
pub(crate) fn wait_with_progress<F: Future>(
    work: F,
    progress: &Progress,
    position: impl Fn() -> u64,
) -> F::Output {
    futures::pin_mut!(work);
    futures::executor::block_on(async {
        loop {
            match future::select(work.as_mut(), Delay::new(Duration::from_millis(100))).await {
                Either::Left((output, _)) => return output,
                Either::Right(_) => progress.set(position()),
            }
        }
    })
}

/// Milliseconds since the start of `window`'s warm-up, for a progress bar over the whole run.
fn progress_of(window: &Window, load: &Load) -> (u64, impl Fn() -> u64) {
    let start = window.measure_from - load.warmup;
    let total = (load.warmup + load.duration).as_millis() as u64;
    (total, move || start.elapsed().as_millis() as u64)
}

/// Runs `concurrency` closed-loop workers over the connections, each on its
/// connection's completion-queue thread; `call(client, worker)` makes one call
/// and checks its answer. A call that ends with an error status is counted
/// by its code and the worker goes on (a fleet that loses a replica is
/// measured, not aborted); a wrong answer stops the run.
fn closed_loop<C, F>(
    workload: &'static str,
    connections: &Connections,
    load: &Load,
    call: C,
) -> Result<(Tally, Duration), BenchError>
where
    C: Fn(LearningMessengerClient, usize) -> F + Clone + Send + 'static,
    F: Future<Output = Result<(), BenchError>> + Send + 'static,
{
    let window = Window::starting_now(load.warmup, load.duration);
    let results: Vec<_> = (0..load.concurrency.max(1))
        .map(|i| {
            let client = connections.client(i).clone();
            let call = call.clone();
            let worker = closed_loop::worker_counting_failures(window, move || {
                let call = call(client.clone(), i);
                async move {
                    match call.await {
                        Ok(()) => Ok(Ok(())),
                        Err(failed) => match failed_code(&failed) {
                            Some(code) => {
                                Delay::new(PAUSE_AFTER_FAILURE).await;
                                Ok(Err(code))
                            }
                            None => Err(failed),
                        },
                    }
                }
            });
            spawn_on(connections.client(i), worker)
        })
        .collect();
    let (total, position) = progress_of(&window, load);
    let progress = Progress::new(workload, total, "ms");
    let results = wait_with_progress(future::join_all(results), &progress, position);
    let tallies = outcomes(workload, "a worker", results)?;
    let (tally, elapsed) = Tally::merge(tallies, &window);
    if tally.calls == 0 {
        let failed: Vec<String> = tally
            .failures
            .iter()
            .map(|(code, count)| format!("{count} {code}"))
            .collect();
        return Err(match failed.is_empty() {
            true => BenchError::wrong(workload, "no call completed in the measured window"),
            false => BenchError::Setup(format!(
                "{workload}: every call in the measured window failed ({})",
                failed.join(", ")
            )),
        });
    }
    Ok((tally, elapsed))
}

/// The status code of a call that failed with one.
fn failed_code(error: &BenchError) -> Option<&'static str> {
    match error {
        BenchError::Rpc { error, .. } => error.code().map(code_name),
        _ => None,
    }
}

/// The calls that failed, if any: their number, then one figure per status code.
fn failed_calls(workload: &'static str, tally: &Tally) -> Vec<Figure> {
    let total: u64 = tally.failures.values().sum();
    if total == 0 {
        return Vec::new();
    }
    let by_code = tally.failures.iter().map(|(code, &count)| {
        Figure::new(workload, code, Unit::Count("failed calls"), count as f64)
    });
    std::iter::once(Figure::new(
        workload,
        "failed",
        Unit::Count("calls"),
        total as f64,
    ))
    .chain(by_code)
    .collect()
}

/// Closed-loop GetLearningStatus: calls/s and latency percentiles.
pub fn unary(connections: &Connections, load: &Load) -> Result<Vec<Figure>, BenchError> {
    const NAME: &str = "unary";
    let (tally, elapsed) = closed_loop(NAME, connections, load, |client, i| async move {
        let request = StatusRequest {
            user_id: format!("bench-{i}"),
            ..Default::default()
        };
        let response = client
            .get_learning_status_async(&request)
            .map_err(BenchError::rpc(NAME))?;
        let response = response.await.map_err(BenchError::rpc(NAME))?;
        check_status(&response).map_err(|what| BenchError::wrong(NAME, what))
    })?;
    let latency = Latency::from_histogram(&tally.latencies).expect("calls were counted");
    let mut figures = vec![Figure::new(
        NAME,
        "throughput",
        Unit::Rate("calls/s"),
        per_second(tally.calls, elapsed),
    )];
    figures.extend(Figure::latencies(NAME, &latency));
    figures.extend(failed_calls(NAME, &tally));
    Ok(figures)
}

/// Closed-loop StreamLearnings (the server's delay should be 0): calls/s and messages/s.
pub fn server_stream(connections: &Connections, load: &Load) -> Result<Vec<Figure>, BenchError> {
    const NAME: &str = "server-stream";
    let updates_per_call = learning_contents(TOPIC).len();
    let (tally, elapsed) = closed_loop(NAME, connections, load, move |client, _| async move {
        let request = TopicRequest {
            topic: TOPIC.to_owned(),
            ..Default::default()
        };
        let mut updates = client
            .stream_learnings_async(&request)
            .map_err(BenchError::rpc(NAME))?;
        let mut received = 0;
        while let Some(update) = updates.try_next().await.map_err(BenchError::rpc(NAME))? {
            check_learning_update(TOPIC, received, &update)
                .map_err(|what| BenchError::wrong(NAME, what))?;
            received += 1;
        }
        if received != updates_per_call {
            return Err(BenchError::wrong(
                NAME,
                format!("{received} updates, expected {updates_per_call}"),
            ));
        }
        Ok(())
    })?;
    let latency = Latency::from_histogram(&tally.latencies).expect("calls were counted");
    let messages = tally.calls * updates_per_call as u64;
    let mut figures = vec![
        Figure::new(
            NAME,
            "throughput",
            Unit::Rate("calls/s"),
            per_second(tally.calls, elapsed),
        ),
        Figure::new(
            NAME,
            "messages",
            Unit::Rate("msgs/s"),
            per_second(messages, elapsed),
        ),
        Figure::new(NAME, "p99", Unit::Latency, latency.p99.as_secs_f64()),
    ];
    figures.extend(failed_calls(NAME, &tally));
    Ok(figures)
}

/// Sends `count` notes, made lazily, in one SubmitResearchNotes call; checks the summary.
async fn submit_notes(
    client: LearningMessengerClient,
    count: u64,
    sent: Counter,
) -> Result<Duration, BenchError> {
    const NAME: &str = "client-stream";
    let start = Instant::now();
    let (mut sink, summary) = client
        .submit_research_notes_async()
        .map_err(BenchError::rpc(NAME))?;
    // Notes that are ready together are written together; C-core flushes as its buffer fills.
    sink.enhance_batch(true);
    let mut notes = stream::iter((0..count).map(|i| {
        if i % 4096 == 0 {
            sent.set(i);
        }
        Ok((numbered_note(i), WriteFlags::default()))
    }));
    let sending = async {
        sink.send_all(&mut notes).await?;
        sink.close().await
    };
    // The summary, checked below, tells whether every note arrived: it
    // decides before a write refused because the call had ended.
    let written = sending.await;
    let summary = summary.await.map_err(BenchError::rpc(NAME))?;
    ok_if_call_over(written).map_err(BenchError::rpc(NAME))?;
    let elapsed = start.elapsed();
    sent.set(count);
    check_summary(count, &summary).map_err(|what| BenchError::wrong(NAME, what))?;
    Ok(elapsed)
}

/// A smaller unmeasured call made by `call`, then the measured one of
/// `load.messages` messages: the figure is their rate.
fn measured_stream<F, Fut>(
    name: &'static str,
    metric: &'static str,
    unit: &'static str,
    client: &LearningMessengerClient,
    load: &Load,
    call: F,
) -> Result<Vec<Figure>, BenchError>
where
    F: Fn(LearningMessengerClient, u64, Counter) -> Fut,
    Fut: Future<Output = Result<Duration, BenchError>> + Send + 'static,
{
    let done = Counter::default();
    let progress = Progress::new(name, load.messages, metric);
    let lost = || BenchError::Setup(format!("{name}: the call stopped without a result"));
    let warmup = spawn_on(
        client,
        call(client.clone(), load.warmup_messages(), Counter::default()),
    );
    wait_with_progress(warmup, &progress, || 0).unwrap_or_else(|_| Err(lost()))?;
    let run = spawn_on(client, call(client.clone(), load.messages, done.clone()));
    let elapsed =
        wait_with_progress(run, &progress, || done.get()).unwrap_or_else(|_| Err(lost()))?;
    Ok(vec![Figure::new(
        name,
        metric,
        Unit::Rate(unit),
        per_second(load.messages, elapsed),
    )])
}

/// One SubmitResearchNotes call of `load.messages` notes (after a smaller one): notes/s.
pub fn client_stream(
    client: &LearningMessengerClient,
    load: &Load,
) -> Result<Vec<Figure>, BenchError> {
    measured_stream(
        "client-stream",
        "notes",
        "notes/s",
        client,
        load,
        submit_notes,
    )
}

/// One CollaborativeFeed call of `count` updates, sent while the echoes are
/// read and each checked: the time from the first send to the last echo.
async fn feed(
    client: LearningMessengerClient,
    count: u64,
    echoed: Counter,
) -> Result<Duration, BenchError> {
    const NAME: &str = "bidi";
    let start = Instant::now();
    let (mut sink, mut echoes) = client
        .collaborative_feed_async()
        .map_err(BenchError::rpc(NAME))?;
    sink.enhance_batch(true);
    let sender = spawn_on(&client, async move {
        let mut updates =
            stream::iter((0..count).map(|i| Ok((numbered_update(i), WriteFlags::default()))));
        sink.send_all(&mut updates).await?;
        sink.close().await
    });
    let mut expected = String::new();
    for i in 0..count {
        let echo = echoes.try_next().await.map_err(BenchError::rpc(NAME))?;
        let echo = echo.ok_or_else(|| {
            BenchError::wrong(NAME, format!("the feed ended after {i} of {count} echoes"))
        })?;
        check_echo(i, &echo, &mut expected).map_err(|what| BenchError::wrong(NAME, what))?;
        if i % 4096 == 0 {
            echoed.set(i);
        }
    }
    if echoes
        .try_next()
        .await
        .map_err(BenchError::rpc(NAME))?
        .is_some()
    {
        return Err(BenchError::wrong(NAME, format!("more than {count} echoes")));
    }
    let elapsed = start.elapsed();
    echoed.set(count);
    match sender.await {
        // Every echo arrived, checked, and the feed ended well.
        Ok(sent) => ok_if_call_over(sent).map_err(BenchError::rpc(NAME))?,
        Err(_) => {
            return Err(BenchError::Setup(format!(
                "{NAME}: the sender stopped without a result"
            )))
        }
    }
    Ok(elapsed)
}

/// One CollaborativeFeed of `load.messages` updates (after a smaller one): echoes/s.
pub fn bidi(client: &LearningMessengerClient, load: &Load) -> Result<Vec<Figure>, BenchError> {
    measured_stream("bidi", "echoes", "echoes/s", client, load, feed)
}

/// Lock-step round trips on one CollaborativeFeed: send one update, wait for
/// its echo, repeat. Latency percentiles.
pub fn ping_pong(client: &LearningMessengerClient, load: &Load) -> Result<Vec<Figure>, BenchError> {
    const NAME: &str = "ping-pong";
    let window = Window::starting_now(load.warmup, load.duration);
    let feed = client
        .collaborative_feed_async()
        .map_err(BenchError::rpc(NAME))?;
    let run = spawn_on(client, async move {
        let (mut sink, mut echoes) = feed;
        let mut tally = Tally::default();
        let mut expected = String::new();
        for i in 0.. {
            let start = Instant::now();
            if start >= window.end {
                break;
            }
            let (sent, echo) = future::join(
                sink.send((numbered_update(i), WriteFlags::default())),
                echoes.try_next(),
            )
            .await;
            sent.map_err(BenchError::rpc(NAME))?;
            let echo = echo.map_err(BenchError::rpc(NAME))?;
            let echo = echo.ok_or_else(|| {
                BenchError::wrong(NAME, format!("the feed ended after {i} echoes"))
            })?;
            check_echo(i, &echo, &mut expected).map_err(|what| BenchError::wrong(NAME, what))?;
            tally.record(&window, start);
        }
        let closed = sink.close().await;
        if echoes
            .try_next()
            .await
            .map_err(BenchError::rpc(NAME))?
            .is_some()
        {
            return Err(BenchError::wrong(NAME, "an echo nobody asked for"));
        }
        ok_if_call_over(closed).map_err(BenchError::rpc(NAME))?;
        Ok(tally)
    });
    let (total, position) = progress_of(&window, load);
    let progress = Progress::new(NAME, total, "ms");
    let tally = wait_with_progress(run, &progress, position).unwrap_or_else(|_| {
        Err(BenchError::Setup(format!(
            "{NAME}: the call stopped without a result"
        )))
    })?;
    let (tally, elapsed) = Tally::merge([tally], &window);
    let latency = Latency::from_histogram(&tally.latencies)
        .ok_or_else(|| BenchError::wrong(NAME, "no round trip completed in the measured window"))?;
    let mut figures = vec![Figure::new(
        NAME,
        "round trips",
        Unit::Rate("trips/s"),
        per_second(tally.calls, elapsed),
    )];
    figures.extend(Figure::latencies(NAME, &latency));
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warmup_is_a_tenth_capped() {
        let load = |messages| Load {
            messages,
            ..Load::default()
        };
        assert_eq!(load(1_000_000).warmup_messages(), 100_000);
        assert_eq!(load(5_000).warmup_messages(), 500);
        assert_eq!(load(3).warmup_messages(), 1);
    }
}
