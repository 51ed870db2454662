//! `bench rooms`: feed rooms of several sizes on our own server (started
//! here, so its memory can be read): every participant talks at once, and
//! each update's delivery to each other participant is counted and timed
//! from its send. Every delivery is checked: each sender's updates arrive in
//! order, each participant's acknowledgements in order, and nobody is
//! removed.
//!
//! The participants pace themselves (closed loop): one has at most
//! `in_flight` updates unacknowledged, and sends only while it has heard,
//! from the others, all but `in_flight` rounds of what it sent. A room is
//! then as fast as its slowest reader, and no queue comes near the server's
//! `--feed-queue`.
//!
//! With `--rooms redis://...` (or `redis+cluster://...`, once per store),
//! the same rooms run again spread over two replicas sharing that store,
//! and then open loop: every participant sends on a fixed schedule, at half
//! the rate the closed loop reached, whatever comes back.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::future::{self, Either};
use futures::{SinkExt, TryStreamExt};
use futures_timer::Delay;
use grpcio::{CallOption, ClientDuplexReceiver, ClientDuplexSender, MetadataBuilder, WriteFlags};
use messenger_lab::proto::messenger::FeedUpdate;
use messenger_lab::room::{classify, Kind, ROOM_HEADER, USER_HEADER};
use messenger_testkit::closed_loop::{Tally, Window};
use messenger_testkit::process::PeakWatcher;
use messenger_testkit::report::{per_second, Figure, Latency, Unit};

use crate::compare::{free_port, ServerProcess};
use crate::workloads::{outcomes, spawn_on, wait_with_progress};
use crate::{BenchError, Connections, Progress};
use learning_messenger::rpc::messenger::LearningMessengerClient;

const NAME: &str = "rooms";
/// How long the participants may take to join, and to leave.
const SETTLE: Duration = Duration::from_secs(30);

/// How to run the room workload.
#[derive(Clone, Debug)]
pub struct RoomOptions {
    /// Participants of each room measured, one room after the other.
    pub sizes: Vec<usize>,
    /// Unacknowledged updates a participant may have; None for 256 / size
    /// (at least 1), which keeps every queue under a quarter of the default `--feed-queue`.
    pub in_flight: Option<u64>,
    pub warmup: Duration,
    pub duration: Duration,
    /// HTTP/2 connections the participants are spread over.
    pub connections: usize,
    pub client_threads: usize,
    /// Our `server` binary.
    pub server_bin: PathBuf,
    /// Where the servers' logs go.
    pub out_dir: PathBuf,
    /// Also on these Redis stores (`redis://HOST:PORT[/DB]`,
    /// `redis+cluster://...`), each over two replicas.
    pub redis: Vec<String>,
}

/// How participants send.
#[derive(Clone, Copy, Debug)]
enum Pace {
    /// At most `in_flight` unacknowledged, and not ahead of the others.
    Closed { in_flight: u64 },
    /// One update every `every`, whatever comes back.
    Open { every: Duration },
}

/// The servers a room runs on: one with rooms in its memory, or replicas
/// sharing a Redis; participant k is on replica k mod n.
struct Replicas {
    servers: Vec<ServerProcess>,
    connections: Vec<Connections>,
    metrics_ports: Vec<u16>,
}

impl Replicas {
    fn start(options: &RoomOptions, count: usize, extra: &[&str]) -> Result<Replicas, BenchError> {
        let mut replicas = Replicas {
            servers: Vec::new(),
            connections: Vec::new(),
            metrics_ports: Vec::new(),
        };
        for k in 1..=count {
            let out_dir = options.out_dir.join(format!("r{k}"));
            std::fs::create_dir_all(&out_dir).map_err(|e| {
                BenchError::Setup(format!("cannot create {}: {e}", out_dir.display()))
            })?;
            let metrics_port = free_port()?;
            let metrics_addr = format!("127.0.0.1:{metrics_port}");
            let mut args = vec!["--metrics-addr", &metrics_addr];
            args.extend(extra);
            let server = ServerProcess::start_rust(&options.server_bin, &out_dir, &args)?;
            let per_replica = options.connections.div_ceil(count).max(1);
            replicas
                .connections
                .push(server.connect(per_replica, options.client_threads)?);
            replicas.servers.push(server);
            replicas.metrics_ports.push(metrics_port);
        }
        Ok(replicas)
    }

    fn client(&self, me: usize) -> &LearningMessengerClient {
        let n = self.servers.len();
        self.connections[me % n].client(me / n)
    }

    /// Waits until the replicas together count `count` participants.
    fn wait_for_participants(&self, count: usize) -> Result<(), BenchError> {
        let deadline = Instant::now() + SETTLE;
        let mut last = None;
        while Instant::now() < deadline {
            let counts: Option<Vec<f64>> = self
                .metrics_ports
                .iter()
                .map(|&port| metric(port, "messenger_feed_participants"))
                .collect();
            last = counts.map(|counts| counts.iter().sum::<f64>());
            if last == Some(count as f64) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(BenchError::Setup(format!(
            "the servers counted {last:?} participants for {SETTLE:?}, not {count}"
        )))
    }
}

/// Starts our server, runs a room of each size on it, and returns the figures:
/// deliveries per second, send-to-delivery p50 and p99, and the server's peak
/// memory; with a Redis, the same over two replicas sharing it, closed loop
/// and then open loop at half the closed loop's rate.
pub fn run(options: &RoomOptions) -> Result<Vec<Figure>, BenchError> {
    std::fs::create_dir_all(&options.out_dir).map_err(|e| {
        BenchError::Setup(format!("cannot create {}: {e}", options.out_dir.display()))
    })?;
    for &size in &options.sizes {
        if size < 2 {
            return Err(BenchError::Setup(format!(
                "a room of {size} has nobody to deliver to: sizes start at 2"
            )));
        }
    }
    let memory = Replicas::start(options, 1, &[])?;
    let mut figures: Vec<Figure> = memory.servers[0].memory_at_start().into_iter().collect();
    for &size in &options.sizes {
        eprintln!("  room of {size} ...");
        let pace = Pace::Closed {
            in_flight: options
                .in_flight
                .unwrap_or((256 / size as u64).max(1))
                .max(1),
        };
        figures.extend(room(
            &memory,
            size,
            options,
            pace,
            &format!("room of {size}"),
        )?);
    }
    drop(memory);
    for url in &options.redis {
        figures.extend(on_redis(options, url)?);
    }
    Ok(figures)
}

/// The rooms over two replicas sharing the store at `url`: closed loop, then
/// open loop at half the rate reached.
fn on_redis(options: &RoomOptions, url: &str) -> Result<Vec<Figure>, BenchError> {
    let store = match url.contains("+cluster://") {
        true => "Redis Cluster",
        false => "Redis",
    };
    let mut figures = Vec::new();
    let shared = Replicas::start(options, 2, &["--rooms", url])?;
    for &size in &options.sizes {
        eprintln!("  room of {size} on {store}, 2 replicas ...");
        let pace = Pace::Closed {
            in_flight: options
                .in_flight
                .unwrap_or((256 / size as u64).max(1))
                .max(1),
        };
        let workload = format!("room of {size}, {store}, 2 replicas");
        let closed = room(&shared, size, options, pace, &workload)?;
        let rate = closed
            .iter()
            .find(|figure| figure.metric == "deliveries")
            .map(|figure| figure.value)
            .unwrap_or_default();
        figures.extend(closed);
        // Half the deliveries: each participant sends one update every `every`.
        let updates_per_participant = rate / 2.0 / (size - 1) as f64 / size as f64;
        if updates_per_participant > 0.0 {
            let every = Duration::from_secs_f64(1.0 / updates_per_participant);
            eprintln!(
                "  room of {size} on {store}, open loop at {:.0} deliveries/s ...",
                rate / 2.0
            );
            let workload = format!(
                "room of {size}, {store}, open loop at {:.1}k/s",
                rate / 2000.0
            );
            figures.extend(room(
                &shared,
                size,
                options,
                Pace::Open { every },
                &workload,
            )?);
        }
    }
    Ok(figures)
}

/// One room of `size`, from the joins to the leaves.
fn room(
    replicas: &Replicas,
    size: usize,
    options: &RoomOptions,
    pace: Pace,
    workload: &str,
) -> Result<Vec<Figure>, BenchError> {
    let workload: &'static str = Box::leak(workload.to_owned().into_boxed_str());
    let room = format!("bench-{size}-{}", std::process::id() ^ rand_suffix());
    let deadline = options.warmup + options.duration + SETTLE * 2;
    let feeds = (0..size)
        .map(|me| {
            let mut headers = MetadataBuilder::new();
            headers
                .add_str(ROOM_HEADER, &room)
                .and_then(|h| h.add_str(USER_HEADER, &participant_name(me)))
                .map_err(BenchError::rpc(NAME))?;
            let options = CallOption::default()
                .headers(headers.build())
                .timeout(deadline);
            let client = replicas.client(me).clone().with_options(options);
            let feed = client
                .collaborative_feed_async()
                .map_err(BenchError::rpc(NAME))?;
            Ok((client, feed))
        })
        .collect::<Result<Vec<_>, BenchError>>()?;
    replicas.wait_for_participants(size)?;

    let window = Window::starting_now(options.warmup, options.duration);
    let epoch = Instant::now();
    let tasks: Vec<_> = feeds
        .into_iter()
        .enumerate()
        .map(|(me, (client, (sink, updates)))| {
            let talk = participant(me, size, pace, sink, updates, window, epoch);
            spawn_on(&client, talk)
        })
        .collect();
    let peaks: Vec<_> = replicas
        .servers
        .iter()
        .map(|server| PeakWatcher::start(server.pid()))
        .collect();
    let total = (options.warmup + options.duration).as_millis() as u64;
    let progress = Progress::new(workload, total, "ms");
    let started = Instant::now();
    let results = wait_with_progress(future::join_all(tasks), &progress, || {
        started.elapsed().as_millis() as u64
    });
    let peak = peaks
        .into_iter()
        .filter_map(PeakWatcher::stop)
        .map(|peak| peak.rss_bytes())
        .reduce(f64::max);
    let tallies = outcomes(workload, "a participant", results)?;
    let (tally, elapsed) = Tally::merge(tallies, &window);
    let latency = Latency::from_histogram(&tally.latencies).ok_or_else(|| {
        BenchError::wrong(
            NAME,
            format!("{workload}: no delivery in the measured window"),
        )
    })?;
    // The participants' calls are over (their futures are done): the room empties.
    replicas.wait_for_participants(0)?;
    let mut figures = vec![Figure::new(
        workload,
        "deliveries",
        Unit::Rate("deliveries/s"),
        per_second(tally.calls, elapsed),
    )];
    figures.extend(
        Figure::latencies(workload, &latency)
            .into_iter()
            .filter(|figure| figure.metric != "p99.9"),
    );
    if let Some(peak) = peak {
        figures.push(Figure::new(workload, "server RSS peak", Unit::Memory, peak));
    }
    Ok(figures)
}

/// A few bits that differ between runs: a Redis keeps a room's history for
/// a while, and a rerun's room must be new.
fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos())
}

fn participant_name(me: usize) -> String {
    format!("p{me}")
}

/// An update of participant `me`: its number and when it was sent (ns since `epoch`).
fn numbered(me: usize, seq: u64, sent_ns: u64) -> FeedUpdate {
    FeedUpdate {
        user: participant_name(me),
        message: format!("{seq} {sent_ns}"),
        ..Default::default()
    }
}

/// Who sent an update, its number and when it was sent.
fn parse_update(update: &FeedUpdate) -> Option<(usize, u64, u64)> {
    let sender = update.user.strip_prefix('p')?.parse().ok()?;
    let (seq, sent) = update.message.split_once(' ')?;
    Some((sender, seq.parse().ok()?, sent.parse().ok()?))
}

/// One participant: talks until the window ends, then waits for its last
/// acknowledgements. Each delivery of another's update sent in the measured
/// window is counted and timed from its send.
async fn participant(
    me: usize,
    size: usize,
    pace: Pace,
    mut sink: ClientDuplexSender<FeedUpdate>,
    mut updates: ClientDuplexReceiver<FeedUpdate>,
    window: Window,
    epoch: Instant,
) -> Result<Tally, BenchError> {
    sink.enhance_batch(true);
    let others = (size - 1) as u64;
    let (mut sent, mut acked, mut heard) = (0u64, 0u64, 0u64);
    let mut next_from = vec![0u64; size];
    let mut tally = Tally::default();
    let wrong = |what: String| BenchError::wrong(NAME, format!("{}: {what}", participant_name(me)));
    // Open loop: participants start spread over one interval.
    let mut next_send = match pace {
        Pace::Open { every } => Instant::now() + every.mul_f64(me as f64 / size as f64),
        Pace::Closed { .. } => Instant::now(),
    };
    loop {
        let sending = Instant::now() < window.end;
        let mut fed = false;
        loop {
            let due = match pace {
                // Within its own window, and not ahead of what it has heard from the others.
                Pace::Closed { in_flight } => {
                    sent < acked + in_flight && heard + others * in_flight >= others * sent
                }
                Pace::Open { .. } => Instant::now() >= next_send,
            };
            if !(sending && due) {
                break;
            }
            let sent_ns = epoch.elapsed().as_nanos() as u64;
            sink.feed((numbered(me, sent, sent_ns), WriteFlags::default()))
                .await
                .map_err(BenchError::rpc(NAME))?;
            sent += 1;
            fed = true;
            if let Pace::Open { every } = pace {
                next_send += every;
            }
        }
        if fed {
            sink.flush().await.map_err(BenchError::rpc(NAME))?;
        }
        if !sending && acked == sent {
            return Ok(tally);
        }
        let received = match pace {
            Pace::Open { .. } if sending => {
                let next = updates.try_next();
                let timer = Delay::new(next_send.saturating_duration_since(Instant::now()));
                match future::select(next, timer).await {
                    Either::Left((received, _)) => received,
                    // Time to send the next one.
                    Either::Right(_) => continue,
                }
            }
            _ => updates.try_next().await,
        };
        let update = received
            .map_err(BenchError::rpc(NAME))?
            .ok_or_else(|| wrong("the feed ended".into()))?;
        match classify(&update) {
            Kind::Ack => {
                let acknowledged = update
                    .message
                    .strip_prefix("Acknowledged ")
                    .and_then(|rest| rest.split_once("'s update: "))
                    .and_then(|(user, message)| Some((user, message.split_once(' ')?.0)));
                if acknowledged != Some((&participant_name(me), &acked.to_string())) {
                    return Err(wrong(format!(
                        "acknowledgement {acked} was {:?}",
                        update.message
                    )));
                }
                acked += 1;
            }
            Kind::Update => {
                let (sender, seq, sent_ns) = parse_update(&update)
                    .ok_or_else(|| wrong(format!("not a bench update: {update:?}")))?;
                let expected = next_from.get_mut(sender).ok_or_else(|| {
                    wrong(format!("an update from p{sender}, not in a room of {size}"))
                })?;
                if seq != *expected {
                    return Err(wrong(format!(
                        "p{sender}'s update {seq} arrived in place of {expected}"
                    )));
                }
                *expected += 1;
                heard += 1;
                tally.record(&window, epoch + Duration::from_nanos(sent_ns));
            }
            // Others leave once they are done; being removed is a failure.
            Kind::Join | Kind::Leave if !update.message.contains("removed") => {}
            Kind::Join | Kind::Leave => return Err(wrong(update.message)),
        }
    }
}

/// An unlabelled sample of the server's /metrics page.
fn metric(port: u16, name: &str) -> Option<f64> {
    let mut http = TcpStream::connect(("127.0.0.1", port)).ok()?;
    http.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").ok()?;
    let mut page = String::new();
    http.read_to_string(&mut page).ok()?;
    page.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_say_who_sent_them_which_and_when() {
        assert_eq!(
            parse_update(&numbered(7, 42, 123_456)),
            Some((7, 42, 123_456))
        );
        assert_eq!(parse_update(&FeedUpdate::default()), None);
    }
}
