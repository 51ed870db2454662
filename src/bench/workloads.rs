//! The load patterns. Each runs on the bench client's completion-queue threads
//! (grpcio's own executor, so no thread hand-offs per message), checks every
//! answer against what the seed's server must say, and returns its figures.

use std::fmt::Write as _;
use std::future::Future;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures::future::{self, Either};
use futures::{stream, SinkExt, TryStreamExt};
use futures_timer::Delay;
use hdrhistogram::Histogram;
use grpcio::{CallOption, WriteFlags};

use super::report::{latency_histogram, record_latency, Figure, Latency, Unit};
use super::{BenchError, Connections, Counter, Progress};
use crate::proto::messenger::{FeedUpdate, LearningUpdate, ResearchNote, StatusRequest, StatusResponse, SummaryResponse, TopicRequest};
use crate::rpc::messenger::LearningMessengerClient;
use crate::service::{learning_contents, FEED_ECHO_USER, STATUS_MESSAGE};

/// The topic every StreamLearnings call asks about.
pub const TOPIC: &str = "gRPC Protocols";
/// The user every bench feed update comes from.
pub const FEED_USER: &str = "bench";

/// How long a call of a timed workload may outlast its window.
const CALL_GRACE: Duration = Duration::from_secs(10);
/// How long one client-stream or bidi call may take.
const STREAM_DEADLINE: Duration = Duration::from_secs(600);

/// How hard and how long to drive a server.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Calls in flight at once (unary, server-stream).
    pub concurrency: usize,
    /// Measured time of the timed workloads (unary, server-stream, ping-pong).
    pub duration: Duration,
    /// Unmeasured time before it, for connections, caches and windows to settle.
    pub warmup: Duration,
    /// Messages in the one client-stream call and the one bidi call.
    pub messages: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { concurrency: 64, duration: Duration::from_secs(10), warmup: Duration::from_secs(2), messages: 1_000_000 }
    }
}

impl Settings {
    /// Messages of the unmeasured call that comes before a measured stream.
    pub fn warmup_messages(&self) -> u64 {
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
    pub const ALL: [Workload; 5] =
        [Workload::Unary, Workload::ServerStream, Workload::ClientStream, Workload::Bidi, Workload::PingPong];

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
    pub fn run(self, connections: &Connections, settings: &Settings) -> Result<Vec<Figure>, BenchError> {
        // A server that stops answering fails the run instead of hanging it.
        let deadline = match self {
            Workload::ClientStream | Workload::Bidi => STREAM_DEADLINE,
            _ => settings.warmup + settings.duration + CALL_GRACE,
        };
        let connections = connections.with_options(CallOption::default().timeout(deadline));
        match self {
            Workload::Unary => unary(&connections, settings),
            Workload::ServerStream => server_stream(&connections, settings),
            Workload::ClientStream => client_stream(connections.client(0), settings),
            Workload::Bidi => bidi(connections.client(0), settings),
            Workload::PingPong => ping_pong(connections.client(0), settings),
        }
    }
}

/// Runs `work` on `client`'s completion-queue thread; the receiver gets its result.
fn spawn_on<T: Send + 'static>(
    client: &LearningMessengerClient,
    work: impl Future<Output = T> + Send + 'static,
) -> oneshot::Receiver<T> {
    let (done, result) = oneshot::channel();
    client.spawn(async move {
        let _ = done.send(work.await);
    });
    result
}

/// Waits for `work`, moving `progress` to what `position` reads meanwhile.
fn wait_with_progress<F: Future>(work: F, progress: &Progress, position: impl Fn() -> u64) -> F::Output {
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

/// The unmeasured warm-up, then the measured window, of a timed workload.
#[derive(Clone, Copy)]
struct Window {
    measure_from: Instant,
    end: Instant,
}

impl Window {
    fn starting_now(settings: &Settings) -> Window {
        let measure_from = Instant::now() + settings.warmup;
        Window { measure_from, end: measure_from + settings.duration }
    }

    /// Milliseconds since the start, for a progress bar over the whole run.
    fn progress(&self, settings: &Settings) -> (u64, impl Fn() -> u64) {
        let start = self.measure_from - settings.warmup;
        let total = (settings.warmup + settings.duration).as_millis() as u64;
        (total, move || start.elapsed().as_millis() as u64)
    }
}

/// What one closed-loop worker saw in the measured window.
struct Tally {
    calls: u64,
    latencies: Histogram<u64>,
    last_done: Option<Instant>,
}

impl Tally {
    fn new() -> Tally {
        Tally { calls: 0, latencies: latency_histogram(), last_done: None }
    }

    /// Counts a call started at `start` if it started in the measured window.
    fn record(&mut self, window: &Window, start: Instant) {
        if start >= window.measure_from {
            let done = Instant::now();
            self.calls += 1;
            record_latency(&mut self.latencies, done - start);
            self.last_done = Some(done);
        }
    }

    /// The workers' tallies together, and the time from the window's start to the last answer.
    fn merge(tallies: Vec<Tally>, window: &Window) -> (Tally, Duration) {
        let mut total = Tally::new();
        for tally in tallies {
            total.calls += tally.calls;
            let _ = total.latencies.add(&tally.latencies);
            total.last_done = total.last_done.max(tally.last_done);
        }
        let elapsed = total.last_done.map_or(Duration::ZERO, |done| done - window.measure_from);
        (total, elapsed)
    }
}

/// Runs `concurrency` closed-loop workers, made by `worker`, over the connections.
fn closed_loop<W, F>(workload: &'static str, connections: &Connections, settings: &Settings, worker: W) -> Result<(Tally, Duration), BenchError>
where
    W: Fn(LearningMessengerClient, usize, Window) -> F,
    F: Future<Output = Result<Tally, BenchError>> + Send + 'static,
{
    let window = Window::starting_now(settings);
    let results: Vec<_> = (0..settings.concurrency.max(1))
        .map(|i| {
            let client = connections.client(i);
            spawn_on(client, worker(client.clone(), i, window))
        })
        .collect();
    let (total, position) = window.progress(settings);
    let progress = Progress::new(workload, total, "ms");
    let results = wait_with_progress(future::join_all(results), &progress, position);
    let tallies = results
        .into_iter()
        .map(|r| r.unwrap_or_else(|_| Err(BenchError::Setup(format!("{workload}: a worker stopped without a result")))))
        .collect::<Result<Vec<_>, _>>()?;
    let (tally, elapsed) = Tally::merge(tallies, &window);
    if tally.calls == 0 {
        return Err(BenchError::wrong(workload, "no call completed in the measured window"));
    }
    Ok((tally, elapsed))
}

/// `count` events over `elapsed`, per second.
pub fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// Checks a GetLearningStatus answer.
pub fn check_status(response: &StatusResponse) -> Result<(), String> {
    if response.message != STATUS_MESSAGE || !response.active {
        return Err(format!("status was {:?} (active: {})", response.message, response.active));
    }
    Ok(())
}

/// Checks the `index`th StreamLearnings update for `topic`.
pub fn check_learning_update(topic: &str, index: usize, update: &LearningUpdate) -> Result<(), String> {
    let expected = learning_contents(topic);
    let Some(content) = expected.get(index) else {
        return Err(format!("more than {} updates", expected.len()));
    };
    if update.content != *content || update.progress != (index as i32 + 1) * 25 {
        return Err(format!("update {index} was {:?} at {}%", update.content, update.progress));
    }
    if !is_clock_time(&update.timestamp) {
        return Err(format!("update {index} has timestamp {:?}, not HH:MM:SS", update.timestamp));
    }
    Ok(())
}

fn is_clock_time(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 8
        && bytes.iter().enumerate().all(|(i, b)| if i % 3 == 2 { *b == b':' } else { b.is_ascii_digit() })
}

/// The `i`th note of a client-stream run, made when it is sent.
pub fn research_note(i: u64) -> ResearchNote {
    ResearchNote { text: format!("Note {i}: gRPC streams notes"), ..Default::default() }
}

/// Checks the summary of `count` notes made by [`research_note`].
pub fn check_summary(count: u64, summary: &SummaryResponse) -> Result<(), String> {
    let last = count.checked_sub(1).map(|i| research_note(i).text);
    let expected = crate::service::summarize(i32::try_from(count).unwrap_or(i32::MAX), last.as_deref());
    if summary.count != expected.count || summary.final_summary != expected.final_summary {
        return Err(format!(
            "summary was {} notes, {:?}; expected {} notes, {:?}",
            summary.count, summary.final_summary, expected.count, expected.final_summary
        ));
    }
    Ok(())
}

/// The `i`th update of a bidi run.
pub fn feed_update(i: u64) -> FeedUpdate {
    FeedUpdate { user: FEED_USER.to_owned(), message: format!("update {i}"), ..Default::default() }
}

/// Checks the echo of [`feed_update`]`(i)`; `expected` is scratch space, reused.
pub fn check_echo(i: u64, echo: &FeedUpdate, expected: &mut String) -> Result<(), String> {
    expected.clear();
    let _ = write!(expected, "Acknowledged {FEED_USER}'s update: update {i}");
    if echo.user != FEED_ECHO_USER || echo.message != *expected {
        return Err(format!("echo {i} was {:?}: {:?}; expected {FEED_ECHO_USER:?}: {expected:?}", echo.user, echo.message));
    }
    Ok(())
}

/// Closed-loop GetLearningStatus: calls/s and latency percentiles.
pub fn unary(connections: &Connections, settings: &Settings) -> Result<Vec<Figure>, BenchError> {
    const NAME: &str = "unary";
    let (tally, elapsed) = closed_loop(NAME, connections, settings, |client, i, window| async move {
        let request = StatusRequest { user_id: format!("bench-{i}"), ..Default::default() };
        let mut tally = Tally::new();
        loop {
            let start = Instant::now();
            if start >= window.end {
                return Ok(tally);
            }
            let response = client.get_learning_status_async(&request).map_err(BenchError::rpc(NAME))?;
            let response = response.await.map_err(BenchError::rpc(NAME))?;
            check_status(&response).map_err(|what| BenchError::wrong(NAME, what))?;
            tally.record(&window, start);
        }
    })?;
    let latency = Latency::from_histogram(&tally.latencies).expect("calls were counted");
    let mut figures = vec![Figure::new(NAME, "throughput", Unit::Rate("calls/s"), per_second(tally.calls, elapsed))];
    figures.extend(Figure::latencies(NAME, &latency));
    Ok(figures)
}

/// Closed-loop StreamLearnings (the server's delay should be 0): calls/s and messages/s.
pub fn server_stream(connections: &Connections, settings: &Settings) -> Result<Vec<Figure>, BenchError> {
    const NAME: &str = "server-stream";
    let updates_per_call = learning_contents(TOPIC).len() as u64;
    let (tally, elapsed) = closed_loop(NAME, connections, settings, |client, _, window| async move {
        let request = TopicRequest { topic: TOPIC.to_owned(), ..Default::default() };
        let mut tally = Tally::new();
        loop {
            let start = Instant::now();
            if start >= window.end {
                return Ok(tally);
            }
            let mut updates = client.stream_learnings_async(&request).map_err(BenchError::rpc(NAME))?;
            let mut received = 0;
            while let Some(update) = updates.try_next().await.map_err(BenchError::rpc(NAME))? {
                check_learning_update(TOPIC, received, &update).map_err(|what| BenchError::wrong(NAME, what))?;
                received += 1;
            }
            if received as u64 != updates_per_call {
                return Err(BenchError::wrong(NAME, format!("{received} updates, expected {updates_per_call}")));
            }
            tally.record(&window, start);
        }
    })?;
    let latency = Latency::from_histogram(&tally.latencies).expect("calls were counted");
    Ok(vec![
        Figure::new(NAME, "throughput", Unit::Rate("calls/s"), per_second(tally.calls, elapsed)),
        Figure::new(NAME, "messages", Unit::Rate("msgs/s"), per_second(tally.calls * updates_per_call, elapsed)),
        Figure::new(NAME, "p99", Unit::Latency, latency.p99.as_secs_f64()),
    ])
}

/// Sends `count` notes, made lazily, in one SubmitResearchNotes call; checks the summary.
async fn submit_notes(client: LearningMessengerClient, count: u64, sent: Counter) -> Result<Duration, BenchError> {
    const NAME: &str = "client-stream";
    let start = Instant::now();
    let (mut sink, summary) = client.submit_research_notes_async().map_err(BenchError::rpc(NAME))?;
    // Notes that are ready together are written together; C-core flushes as its buffer fills.
    sink.enhance_batch(true);
    let mut notes = stream::iter((0..count).map(|i| {
        if i % 4096 == 0 {
            sent.set(i);
        }
        Ok((research_note(i), WriteFlags::default()))
    }));
    let sending = async {
        sink.send_all(&mut notes).await?;
        sink.close().await
    };
    // The summary, checked below, tells whether every note arrived: it
    // decides before a write refused because the call had ended.
    let written = sending.await;
    let summary = summary.await.map_err(BenchError::rpc(NAME))?;
    crate::rpc::sent(written).map_err(BenchError::rpc(NAME))?;
    let elapsed = start.elapsed();
    sent.set(count);
    check_summary(count, &summary).map_err(|what| BenchError::wrong(NAME, what))?;
    Ok(elapsed)
}

/// A smaller unmeasured call made by `call`, then the measured one of
/// `settings.messages` messages: the figure is their rate.
fn measured_stream<F, Fut>(name: &'static str, metric: &'static str, unit: &'static str, client: &LearningMessengerClient, settings: &Settings, call: F) -> Result<Vec<Figure>, BenchError>
where
    F: Fn(LearningMessengerClient, u64, Counter) -> Fut,
    Fut: Future<Output = Result<Duration, BenchError>> + Send + 'static,
{
    let done = Counter::default();
    let progress = Progress::new(name, settings.messages, metric);
    let lost = || BenchError::Setup(format!("{name}: the call stopped without a result"));
    let warmup = spawn_on(client, call(client.clone(), settings.warmup_messages(), Counter::default()));
    wait_with_progress(warmup, &progress, || 0).unwrap_or_else(|_| Err(lost()))?;
    let run = spawn_on(client, call(client.clone(), settings.messages, done.clone()));
    let elapsed = wait_with_progress(run, &progress, || done.get()).unwrap_or_else(|_| Err(lost()))?;
    Ok(vec![Figure::new(name, metric, Unit::Rate(unit), per_second(settings.messages, elapsed))])
}

/// One SubmitResearchNotes call of `settings.messages` notes (after a smaller one): notes/s.
pub fn client_stream(client: &LearningMessengerClient, settings: &Settings) -> Result<Vec<Figure>, BenchError> {
    measured_stream("client-stream", "notes", "notes/s", client, settings, submit_notes)
}

/// One CollaborativeFeed call of `count` updates, sent while the echoes are
/// read and each checked: the time from the first send to the last echo.
async fn feed(client: LearningMessengerClient, count: u64, echoed: Counter) -> Result<Duration, BenchError> {
    const NAME: &str = "bidi";
    let start = Instant::now();
    let (mut sink, mut echoes) = client.collaborative_feed_async().map_err(BenchError::rpc(NAME))?;
    sink.enhance_batch(true);
    let sender = spawn_on(&client, async move {
        let mut updates = stream::iter((0..count).map(|i| Ok((feed_update(i), WriteFlags::default()))));
        sink.send_all(&mut updates).await?;
        sink.close().await
    });
    let mut expected = String::new();
    for i in 0..count {
        let echo = echoes.try_next().await.map_err(BenchError::rpc(NAME))?;
        let echo = echo.ok_or_else(|| BenchError::wrong(NAME, format!("the feed ended after {i} of {count} echoes")))?;
        check_echo(i, &echo, &mut expected).map_err(|what| BenchError::wrong(NAME, what))?;
        if i % 4096 == 0 {
            echoed.set(i);
        }
    }
    if echoes.try_next().await.map_err(BenchError::rpc(NAME))?.is_some() {
        return Err(BenchError::wrong(NAME, format!("more than {count} echoes")));
    }
    let elapsed = start.elapsed();
    echoed.set(count);
    match sender.await {
        // Every echo arrived, checked, and the feed ended well.
        Ok(sent) => crate::rpc::sent(sent).map_err(BenchError::rpc(NAME))?,
        Err(_) => return Err(BenchError::Setup(format!("{NAME}: the sender stopped without a result"))),
    }
    Ok(elapsed)
}

/// One CollaborativeFeed of `settings.messages` updates (after a smaller one): echoes/s.
pub fn bidi(client: &LearningMessengerClient, settings: &Settings) -> Result<Vec<Figure>, BenchError> {
    measured_stream("bidi", "echoes", "echoes/s", client, settings, feed)
}

/// Lock-step round trips on one CollaborativeFeed: send one update, wait for
/// its echo, repeat. Latency percentiles.
pub fn ping_pong(client: &LearningMessengerClient, settings: &Settings) -> Result<Vec<Figure>, BenchError> {
    const NAME: &str = "ping-pong";
    let window = Window::starting_now(settings);
    let feed = client.collaborative_feed_async().map_err(BenchError::rpc(NAME))?;
    let run = spawn_on(client, async move {
        let (mut sink, mut echoes) = feed;
        let mut tally = Tally::new();
        let mut expected = String::new();
        for i in 0.. {
            let start = Instant::now();
            if start >= window.end {
                break;
            }
            let (sent, echo) = future::join(sink.send((feed_update(i), WriteFlags::default())), echoes.try_next()).await;
            sent.map_err(BenchError::rpc(NAME))?;
            let echo = echo.map_err(BenchError::rpc(NAME))?;
            let echo = echo.ok_or_else(|| BenchError::wrong(NAME, format!("the feed ended after {i} echoes")))?;
            check_echo(i, &echo, &mut expected).map_err(|what| BenchError::wrong(NAME, what))?;
            tally.record(&window, start);
        }
        let closed = sink.close().await;
        if echoes.try_next().await.map_err(BenchError::rpc(NAME))?.is_some() {
            return Err(BenchError::wrong(NAME, "an echo nobody asked for"));
        }
        crate::rpc::sent(closed).map_err(BenchError::rpc(NAME))?;
        Ok(tally)
    });
    let (total, position) = window.progress(settings);
    let progress = Progress::new(NAME, total, "ms");
    let tally = wait_with_progress(run, &progress, position)
        .unwrap_or_else(|_| Err(BenchError::Setup(format!("{NAME}: the call stopped without a result"))))?;
    let (tally, elapsed) = Tally::merge(vec![tally], &window);
    let latency = Latency::from_histogram(&tally.latencies)
        .ok_or_else(|| BenchError::wrong(NAME, "no round trip completed in the measured window"))?;
    let mut figures = vec![Figure::new(NAME, "round trips", Unit::Rate("trips/s"), per_second(tally.calls, elapsed))];
    figures.extend(Figure::latencies(NAME, &latency));
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{acknowledge, summarize};

    #[test]
    fn the_right_summary_passes_and_a_wrong_one_is_caught() {
        let right = summarize(3, Some(&research_note(2).text));
        assert_eq!(check_summary(3, &right), Ok(()));
        let off_by_one = summarize(2, Some(&research_note(1).text));
        assert!(check_summary(3, &off_by_one).unwrap_err().contains("expected 3 notes"));
        let wrong_last = summarize(3, Some(&research_note(1).text));
        assert!(check_summary(3, &wrong_last).is_err());
        assert_eq!(check_summary(0, &summarize(0, None)), Ok(()));
    }

    #[test]
    fn echoes_are_checked_against_their_update() {
        let mut scratch = String::new();
        assert_eq!(check_echo(7, &acknowledge(&feed_update(7)), &mut scratch), Ok(()));
        assert!(check_echo(7, &acknowledge(&feed_update(8)), &mut scratch).unwrap_err().contains("echo 7"));
        let mut wrong_user = acknowledge(&feed_update(7));
        wrong_user.user = "Someone".into();
        assert!(check_echo(7, &wrong_user, &mut scratch).is_err());
    }

    #[test]
    fn learning_updates_are_checked_in_order() {
        let update = |index: usize, timestamp: &str| LearningUpdate {
            content: learning_contents(TOPIC)[index].clone(),
            progress: (index as i32 + 1) * 25,
            timestamp: timestamp.to_owned(),
            ..Default::default()
        };
        assert_eq!(check_learning_update(TOPIC, 0, &update(0, "12:34:56")), Ok(()));
        assert!(check_learning_update(TOPIC, 1, &update(0, "12:34:56")).is_err());
        assert!(check_learning_update(TOPIC, 0, &update(0, "12:34")).unwrap_err().contains("HH:MM:SS"));
        assert!(check_learning_update(TOPIC, 4, &update(3, "12:34:56")).unwrap_err().contains("more than 4"));
    }

    #[test]
    fn a_wrong_status_is_caught() {
        let right = StatusResponse { message: STATUS_MESSAGE.to_owned(), active: true, ..Default::default() };
        assert_eq!(check_status(&right), Ok(()));
        assert!(check_status(&StatusResponse { active: false, ..right.clone() }).is_err());
        assert!(check_status(&StatusResponse { message: "ok".into(), ..right }).is_err());
    }

    #[test]
    fn the_warmup_is_a_tenth_capped() {
        let settings = |messages| Settings { messages, ..Settings::default() };
        assert_eq!(settings(1_000_000).warmup_messages(), 100_000);
        assert_eq!(settings(5_000).warmup_messages(), 500);
        assert_eq!(settings(3).warmup_messages(), 1);
    }
}
