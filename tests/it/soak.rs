//! A bounded soak: for about 30 s, 64 concurrent clients on 4 connections mix
//! all four patterns against one `server` process, some cancelling or running
//! out of deadline mid-stream. Every outcome must be the expected one, the
//! server's memory and threads must end where they started, and a graceful
//! stop afterwards must find nothing left running.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::support::{feed, note, PeakWatcher, ServerProcess};
use futures::executor::block_on;
use futures::future;
use futures::{SinkExt, TryStreamExt};
use futures_timer::Delay;
use grpcio::{CallOption, RpcStatusCode, WriteFlags};
use learning_messenger::client::{self, ConnectOptions};
use learning_messenger::proto::messenger::{FeedUpdate, ResearchNote, StatusRequest, TopicRequest};
use learning_messenger::rpc::messenger::LearningMessengerClient;

const SOAK: Duration = Duration::from_secs(30);
const WARM_UP: Duration = Duration::from_secs(3);
const CONNECTIONS: usize = 4;
const CLIENTS_PER_CONNECTION: usize = 16;
/// The server's pause before each StreamLearnings update: a stream lasts ≥ 400 ms.
const DELAY_MS: &str = "100";

/// What a client does in one step; each kind has exactly one expected outcome.
#[derive(Clone, Copy, Debug)]
enum Step {
    Unary,
    StreamToEnd,
    StreamPastDeadline,
    StreamCancelled,
    Upload,
    UploadCancelled,
    UploadPastDeadline,
    Feed,
    FeedCancelled,
    FeedPastDeadline,
}

const STEPS: [Step; 10] = [
    Step::Unary,
    Step::StreamToEnd,
    Step::StreamPastDeadline,
    Step::StreamCancelled,
    Step::Upload,
    Step::UploadCancelled,
    Step::UploadPastDeadline,
    Step::Feed,
    Step::FeedCancelled,
    Step::FeedPastDeadline,
];

fn numbered_note(i: usize) -> ResearchNote {
    note(&format!("note {i}"))
}

fn numbered_update(i: usize) -> FeedUpdate {
    feed("soak", &format!("update {i}"))
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

fn expect_code<T: std::fmt::Debug>(
    result: grpcio::Result<T>,
    code: RpcStatusCode,
) -> Result<(), String> {
    match result {
        Err(grpcio::Error::RpcFailure(status)) if status.code() == code => Ok(()),
        other => Err(format!("expected {code:?}, got {other:?}")),
    }
}

/// The two client stubs of one connection: with a generous deadline (a hang
/// becomes an unexpected DEADLINE_EXCEEDED) and with a short one.
struct Clients {
    patient: LearningMessengerClient,
    hasty: LearningMessengerClient,
}

async fn run_step(clients: &Clients, step: Step) -> Result<(), String> {
    let e = |e: grpcio::Error| e.to_string();
    let (patient, hasty) = (&clients.patient, &clients.hasty);
    let topic = TopicRequest {
        topic: "soak".into(),
        ..Default::default()
    };
    match step {
        Step::Unary => {
            let reply = patient
                .get_learning_status_async(&StatusRequest::default())
                .map_err(e)?
                .await
                .map_err(e)?;
            check(reply.active, || format!("{reply:?}"))
        }
        Step::StreamToEnd => {
            let updates: Vec<_> = patient
                .stream_learnings_async(&topic)
                .map_err(e)?
                .try_collect()
                .await
                .map_err(e)?;
            let progress: Vec<_> = updates.iter().map(|u| u.progress).collect();
            check(progress == [25, 50, 75, 100], || {
                format!("progress {progress:?}")
            })
        }
        Step::StreamPastDeadline => {
            let updates = hasty.stream_learnings_async(&topic).map_err(e)?;
            expect_code(
                updates.try_collect::<Vec<_>>().await,
                RpcStatusCode::DEADLINE_EXCEEDED,
            )
        }
        Step::StreamCancelled => {
            let mut updates = patient.stream_learnings_async(&topic).map_err(e)?;
            let first = updates.try_next().await.map_err(e)?;
            updates.cancel();
            check(first.as_ref().is_some_and(|u| u.progress == 25), || {
                format!("first update {first:?}")
            })
        }
        Step::Upload => {
            let (mut sink, summary) = patient.submit_research_notes_async().map_err(e)?;
            for i in 0..200 {
                sink.send((numbered_note(i), WriteFlags::default()))
                    .await
                    .map_err(e)?;
            }
            let closed = sink.close().await;
            let summary = summary.await.map_err(e)?;
            learning_messenger::rpc::ok_if_call_over(closed).map_err(e)?;
            check(
                summary.count == 200 && summary.final_summary.ends_with("note 199"),
                || format!("{summary:?}"),
            )
        }
        Step::UploadCancelled => {
            let (mut sink, _summary) = patient.submit_research_notes_async().map_err(e)?;
            for i in 0..50 {
                sink.send((numbered_note(i), WriteFlags::default()))
                    .await
                    .map_err(e)?;
            }
            sink.cancel();
            Ok(())
        }
        Step::UploadPastDeadline => {
            // A slow uploader: one note per 50 ms against a 200 ms deadline.
            let (mut sink, summary) = hasty.submit_research_notes_async().map_err(e)?;
            for i in 0..100 {
                Delay::new(Duration::from_millis(50)).await;
                if sink
                    .send((numbered_note(i), WriteFlags::default()))
                    .await
                    .is_err()
                {
                    break;
                }
            }
            expect_code(summary.await, RpcStatusCode::DEADLINE_EXCEEDED)
        }
        Step::Feed => {
            let (mut sink, echoes) = patient.collaborative_feed_async().map_err(e)?;
            let send = async {
                for i in 0..100 {
                    sink.send((numbered_update(i), WriteFlags::default()))
                        .await?;
                }
                sink.close().await
            };
            let (sent, echoes) = future::join(send, echoes.try_collect::<Vec<_>>()).await;
            learning_messenger::rpc::ok_if_call_over(sent).map_err(e)?;
            let echoes = echoes.map_err(e)?;
            let last = echoes.last().map(|echo| echo.message.as_str());
            check(
                echoes.len() == 100 && last == Some("Acknowledged soak's update: update 99"),
                || format!("{} echoes, last {last:?}", echoes.len()),
            )
        }
        Step::FeedCancelled => {
            let (mut sink, mut echoes) = patient.collaborative_feed_async().map_err(e)?;
            for i in 0..10 {
                sink.send((numbered_update(i), WriteFlags::default()))
                    .await
                    .map_err(e)?;
            }
            for _ in 0..5 {
                echoes
                    .try_next()
                    .await
                    .map_err(e)?
                    .ok_or("the feed ended early")?;
            }
            echoes.cancel();
            Ok(())
        }
        Step::FeedPastDeadline => {
            // A slow chat: one update per 50 ms, each echo read, against a 200 ms deadline.
            let (mut sink, mut echoes) = hasty.collaborative_feed_async().map_err(e)?;
            for i in 0..100 {
                Delay::new(Duration::from_millis(50)).await;
                if sink
                    .send((numbered_update(i), WriteFlags::default()))
                    .await
                    .is_err()
                {
                    break;
                }
                match echoes.try_next().await {
                    Ok(Some(_)) => continue,
                    other => return expect_code(other, RpcStatusCode::DEADLINE_EXCEEDED),
                }
            }
            expect_code(echoes.try_next().await, RpcStatusCode::DEADLINE_EXCEEDED)
        }
    }
}

/// Steps run and unexpected outcomes.
#[derive(Default)]
struct Tally {
    steps: [usize; STEPS.len()],
    unexpected: Vec<String>,
}

/// Runs every client of every connection until `duration` has passed.
fn soak(target: &str, duration: Duration) -> Tally {
    let tally = Mutex::new(Tally::default());
    let until = Instant::now() + duration;
    std::thread::scope(|scope| {
        for _ in 0..CONNECTIONS {
            scope.spawn(|| {
                let patient = client::connect(&ConnectOptions::new(target)).unwrap();
                let clients = Clients {
                    hasty: patient
                        .clone()
                        .with_options(CallOption::default().timeout(Duration::from_millis(200))),
                    patient: patient
                        .with_options(CallOption::default().timeout(Duration::from_secs(30))),
                };
                let client_loops = (0..CLIENTS_PER_CONNECTION).map(|offset| {
                    let (clients, tally) = (&clients, &tally);
                    async move {
                        for round in offset.. {
                            if Instant::now() >= until {
                                break;
                            }
                            let kind = round % STEPS.len();
                            let outcome = run_step(clients, STEPS[kind]).await;
                            let mut tally = tally.lock().unwrap();
                            tally.steps[kind] += 1;
                            if let Err(what) = outcome {
                                tally.unexpected.push(format!("{:?}: {what}", STEPS[kind]));
                            }
                        }
                    }
                });
                block_on(future::join_all(client_loops));
            });
        }
    });
    tally.into_inner().unwrap()
}

#[test]
#[ignore = "slow: a 30 s soak of mixed patterns with cancels and deadlines"]
fn soak_mixed_patterns_with_cancels_and_deadlines() {
    let mut server =
        ServerProcess::start(&["--delay-ms", DELAY_MS, "--shutdown-grace-ms", "20000"]);
    let warm_up = soak(&server.target, WARM_UP);
    assert!(
        warm_up.unexpected.is_empty(),
        "warm-up: {:?}",
        warm_up.unexpected
    );
    let start = server.status();
    let watcher = PeakWatcher::start(server.pid());
    let tally = soak(&server.target, SOAK);
    let peak = watcher.stop();
    let end = server.status();

    let total: usize = tally.steps.iter().sum();
    let per_step: Vec<_> = STEPS
        .iter()
        .zip(tally.steps)
        .map(|(step, n)| format!("{step:?} {n}"))
        .collect();
    eprintln!(
        "soak {SOAK:?}, {} clients: {total} steps ({}); server RSS start {:.1} MiB, peak {:.1} MiB, end {:.1} MiB; threads {} -> {} (peak {})",
        CONNECTIONS * CLIENTS_PER_CONNECTION,
        per_step.join(", "),
        start.rss_mib(),
        peak.rss_mib(),
        end.rss_mib(),
        start.threads,
        end.threads,
        peak.threads
    );
    let shown = &tally.unexpected[..tally.unexpected.len().min(10)];
    assert!(
        tally.unexpected.is_empty(),
        "{} unexpected outcomes, first ones: {shown:#?}",
        tally.unexpected.len()
    );
    assert!(
        tally.steps.iter().all(|&n| n > 0),
        "a step never ran: {per_step:?}"
    );
    assert!(
        end.rss_kib <= start.rss_kib + 64 * 1024,
        "memory grew: {start:?} -> {end:?}"
    );
    // C-core's executor pool may have grown by a thread or two.
    assert!(
        end.threads <= start.threads + 8,
        "threads grew: {start:?} -> {end:?}"
    );

    // Nothing was left running: a graceful stop drains at once.
    server.signal("TERM");
    let exit = server
        .wait_exit(Duration::from_secs(60))
        .expect("the server exits");
    assert_eq!(exit.code(), Some(0), "{exit:?}");
    assert!(
        server.log().contains("stopped (Drained)"),
        "log tail: {}",
        tail(&server.log())
    );
}

fn tail(log: &str) -> String {
    let lines: Vec<_> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
