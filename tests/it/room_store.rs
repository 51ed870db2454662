//! What every room store guarantees, on the memory store (one replica) and
//! on a real redis-server shared by two or three replicas (server
//! processes), with Rust (`client chat --room`), Python (python/client.py
//! --room --since) and raw (grpcio calls with the headers) participants:
//! one order with contiguous numbers, `room-since` recovery (across a
//! replica restart, a dropped subscription), OUT_OF_RANGE, the size limit
//! counted on every replica, a killed replica's participants leaving within
//! the presence TTL, a store restarted empty or stopped, and a burst that
//! removes no reader that reads.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::executor::block_on;
use futures::{SinkExt, TryStreamExt};
use grpcio::{
    CallOption, ClientDuplexSender, MetadataBuilder, RpcStatus, RpcStatusCode, WriteFlags,
};
use learning_messenger::proto::messenger::FeedUpdate;
use learning_messenger::rpc::messenger::LearningMessengerClient;
use messenger_lab::answers::acknowledgement;
use messenger_lab::room::{EPOCH_HEADER, ROOM_HEADER, SEQ_HEADER, SINCE_HEADER, USER_HEADER};

use crate::rooms::{own_connection, sample, wait_for_sample, Chatter, WAIT};
use crate::support::{
    feed, free_port, python_client_command, python_stubs, redis_command, scrape, wait_until,
    RedisServer, ServerProcess,
};

/// The presence TTL the replicas run with here, long enough that a busy
/// machine's late heartbeat expires nobody; the test of a killed replica
/// sets a shorter one.
pub(crate) const TTL_MS: &str = "5000";
/// How long open calls ride out a silent store here.
const GRACE_MS: &str = "500";

/// Replicas sharing one store (or one replica with its memory store).
pub(crate) struct Fleet {
    redis: Option<RedisServer>,
    pub(crate) replicas: Vec<ServerProcess>,
    /// Each replica's address and metrics port, to start it again.
    places: Vec<(String, u16)>,
    flags: Vec<String>,
}

impl Fleet {
    /// One replica, rooms in its memory.
    fn memory(flags: &[&str]) -> Fleet {
        Fleet::start(None, None, 1, flags)
    }

    /// `count` replicas on one real Redis.
    fn redis(count: usize, flags: &[&str]) -> Fleet {
        let redis = RedisServer::start();
        let url = redis.url();
        Fleet::start(Some(redis), Some(url), count, flags)
    }

    /// `count` replicas on the store at `url` (`--rooms URL`), which the caller runs.
    pub(crate) fn on(url: &str, count: usize, flags: &[&str]) -> Fleet {
        Fleet::start(None, Some(url.to_owned()), count, flags)
    }

    fn start(
        redis: Option<RedisServer>,
        url: Option<String>,
        count: usize,
        flags: &[&str],
    ) -> Fleet {
        let ttl = match flags.contains(&"--room-presence-ttl-ms") {
            true => None,
            false => Some(["--room-presence-ttl-ms", TTL_MS]),
        };
        let mut common: Vec<String> = [
            "--delay-ms",
            "0",
            "--room-store-grace-ms",
            GRACE_MS,
            "--shutdown-grace-ms",
            "200",
        ]
        .iter()
        .chain(ttl.iter().flatten())
        .chain(flags)
        .map(|flag| flag.to_string())
        .collect();
        if let Some(url) = url {
            common.extend(["--rooms".to_owned(), url]);
        }
        let places: Vec<(String, u16)> = (1..=count)
            .map(|k| (format!("127.0.0.{k}:{}", free_port()), free_port()))
            .collect();
        let mut fleet = Fleet {
            redis,
            replicas: Vec::new(),
            places,
            flags: common,
        };
        for k in 0..count {
            let replica = fleet.replica(k);
            fleet.replicas.push(replica);
        }
        fleet
    }

    pub(crate) fn replica(&self, k: usize) -> ServerProcess {
        let (addr, metrics) = &self.places[k];
        let name = format!("r{}", k + 1);
        let metrics = format!("127.0.0.1:{metrics}");
        let mut args: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        args.extend(["--replica-name", &name, "--metrics-addr", &metrics]);
        ServerProcess::start_at(addr, &args)
    }

    pub(crate) fn target(&self, k: usize) -> &str {
        &self.replicas[k].target
    }

    fn store(&mut self) -> &mut RedisServer {
        self.redis.as_mut().expect("a fleet on Redis")
    }

    /// Runs `join` (a participant joining replica `k`) and waits until the
    /// replica counts it: joins that race would see each other or not by
    /// chance. The count is of participants now: wait for the notice of a
    /// leave on that replica before the next join, or the leave may cancel
    /// the join out in the count (a loaded machine delays the leave).
    pub(crate) fn joining<T>(&self, k: usize, join: impl FnOnce(&str) -> T) -> T {
        const PARTICIPANTS: &str = "messenger_feed_participants";
        let before = self.metric(k, PARTICIPANTS);
        let participant = join(self.target(k));
        let counted = wait_until(WAIT, || self.metric(k, PARTICIPANTS) > before);
        assert!(counted, "replica r{} did not count the participant", k + 1);
        participant
    }

    pub(crate) fn raw(&self, k: usize, room: &str, user: &str, since: Option<u64>) -> Raw {
        self.joining(k, |target| Raw::join(target, room, user, since))
    }

    pub(crate) fn rust(&self, k: usize, room: &str, user: &str) -> Chatter {
        self.joining(k, |target| Chatter::rust(target, room, user, &["--json"]))
    }

    fn python(&self, k: usize, stubs: &Path, room: &str, user: &str) -> Chatter {
        self.joining(k, |target| Chatter::python(stubs, target, room, user))
    }

    /// A sample of replica `k`'s metrics.
    pub(crate) fn metric(&self, k: usize, name: &str) -> f64 {
        sample(&scrape(self.places[k].1).2, name).unwrap_or(0.0)
    }
}

impl Drop for Fleet {
    /// A failed test shows what the replicas logged.
    fn drop(&mut self) {
        if std::thread::panicking() {
            for (k, replica) in self.replicas.iter().enumerate() {
                eprintln!("--- replica r{} log:\n{}", k + 1, replica.log());
            }
        }
    }
}

/// One received event: its number (the answer's room-seq + k) and `user: message`.
pub(crate) type Event = (u64, String);

/// A participant as grpcio calls: a thread reads everything it is sent,
/// numbering it from the answer's `room-seq`, until the call ends.
pub(crate) struct Raw {
    pub(crate) user: String,
    sink: Option<ClientDuplexSender<FeedUpdate>>,
    got: Arc<Mutex<Vec<Event>>>,
    /// The answer's room-epoch, once it came.
    epoch: Arc<Mutex<Option<String>>>,
    ended: Arc<Mutex<Option<Result<(), RpcStatus>>>>,
    _client: LearningMessengerClient,
}

impl Raw {
    pub(crate) fn join(target: &str, room: &str, user: &str, since: Option<u64>) -> Raw {
        Raw::join_at(target, room, user, since.map(|since| (since, None)))
    }

    /// Resumes after event `since` of `epoch` (room-since and room-epoch).
    fn resume(target: &str, room: &str, user: &str, since: u64, epoch: &str) -> Raw {
        Raw::join_at(target, room, user, Some((since, Some(epoch))))
    }

    fn join_at(target: &str, room: &str, user: &str, since: Option<(u64, Option<&str>)>) -> Raw {
        let client = own_connection(target);
        let mut headers = MetadataBuilder::new();
        headers.add_str(ROOM_HEADER, room).unwrap();
        headers.add_str(USER_HEADER, user).unwrap();
        if let Some((since, epoch)) = since {
            headers.add_str(SINCE_HEADER, &since.to_string()).unwrap();
            if let Some(epoch) = epoch {
                headers.add_str(EPOCH_HEADER, epoch).unwrap();
            }
        }
        let options = CallOption::default()
            .headers(headers.build())
            .timeout(Duration::from_secs(300));
        let (mut sink, mut events) = client
            .clone()
            .with_options(options)
            .collaborative_feed_async()
            .unwrap();
        sink.enhance_batch(true);
        let got = Arc::new(Mutex::new(Vec::new()));
        let ended = Arc::new(Mutex::new(None));
        let epoch = Arc::new(Mutex::new(None));
        let (into, end, epoch_of) = (got.clone(), ended.clone(), epoch.clone());
        std::thread::spawn(move || {
            let outcome = block_on(async {
                let mut next = None;
                while let Some(update) = events.try_next().await? {
                    let seq = match next {
                        Some(seq) => seq,
                        None => {
                            let headers = events.headers().await?;
                            *epoch_of.lock().unwrap() = header(headers, EPOCH_HEADER);
                            room_seq(headers) + 1
                        }
                    };
                    next = Some(seq + 1);
                    into.lock()
                        .unwrap()
                        .push((seq, format!("{}: {}", update.user, update.message)));
                }
                Ok::<(), grpcio::Error>(())
            });
            *end.lock().unwrap() = Some(outcome.map_err(|e| match e {
                grpcio::Error::RpcFailure(status) => status,
                other => RpcStatus::with_message(RpcStatusCode::UNKNOWN, other.to_string()),
            }));
        });
        Raw {
            user: user.to_owned(),
            sink: Some(sink),
            got,
            epoch,
            ended,
            _client: client,
        }
    }

    pub(crate) fn say(&mut self, text: &str) {
        let update = feed(&self.user, text);
        let sink = self.sink.as_mut().expect("still in the room");
        // A refused write means the call is over: its status is what `ended` reads.
        let _ = block_on(sink.send((update, WriteFlags::default())));
    }

    pub(crate) fn events(&self) -> Vec<Event> {
        self.got.lock().unwrap().clone()
    }

    /// The messages of the events received, in order.
    pub(crate) fn texts(&self) -> Vec<String> {
        self.events().into_iter().map(|(_, text)| text).collect()
    }

    pub(crate) fn last_seq(&self) -> u64 {
        self.events().last().expect("an event received").0
    }

    /// The room-epoch its answer sent.
    fn epoch(&self) -> String {
        self.epoch
            .lock()
            .unwrap()
            .clone()
            .expect("an answer received")
    }

    pub(crate) fn wait_for(&self, what: &str, done: impl Fn(&[Event]) -> bool) {
        let ok = wait_until(WAIT, || done(&self.events()));
        assert!(
            ok,
            "{}: no {what} within {WAIT:?}; got {:#?}",
            self.user,
            self.events()
        );
    }

    pub(crate) fn wait_for_text(&self, text: &str) {
        self.wait_for(text, |events| events.iter().any(|(_, t)| t == text));
    }

    /// The status its call ended with, waiting up to `within` for it.
    pub(crate) fn ended_within(&self, within: Duration) -> Option<Result<(), RpcStatus>> {
        wait_until(within, || self.ended.lock().unwrap().is_some());
        self.ended.lock().unwrap().clone()
    }

    /// Ends its updates: it leaves, and its call ends once what was queued arrived.
    pub(crate) fn leave(&mut self) {
        if let Some(mut sink) = self.sink.take() {
            let _ = block_on(sink.close());
        }
    }
}

fn room_seq(headers: &grpcio::Metadata) -> u64 {
    header(headers, SEQ_HEADER)
        .and_then(|value| value.parse().ok())
        .expect("the answer carries room-seq")
}

fn header(headers: &grpcio::Metadata, key: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, value)| Some(std::str::from_utf8(value).ok()?.to_owned()))
}

/// Numbers that follow one another without a gap or a repeat.
pub(crate) fn assert_contiguous(who: &str, events: &[Event]) {
    for pair in events.windows(2) {
        assert_eq!(
            pair[1].0,
            pair[0].0 + 1,
            "{who}: {:?} then {:?}",
            pair[0],
            pair[1]
        );
    }
}

/// `client chat --room ROOM --user NAME --json` lines as events.
pub(crate) fn json_events(lines: &[String]) -> Vec<Event> {
    lines
        .iter()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            let text = |field: &str| value["message"][field].as_str().unwrap_or("").to_owned();
            let seq = value["seq"]
                .as_u64()
                .unwrap_or_else(|| panic!("no seq in {line}"));
            (seq, format!("{}: {}", text("user"), text("message")))
        })
        .collect()
}

/// What python/client.py --room printed, as `user: message` (acks as the server wrote them).
fn python_texts(lines: &[String], room: &str) -> Vec<String> {
    lines
        .iter()
        .map(|line| {
            if let Some(ack) = line.strip_prefix(" [Feed Update] ") {
                return ack.to_owned();
            }
            let rest = line
                .strip_prefix(&format!(" [{room}] "))
                .unwrap_or_else(|| panic!("a line of neither form: {line:?}"));
            match rest.strip_prefix("* ") {
                Some(notice) => format!("System: {notice}"),
                None => rest.to_owned(),
            }
        })
        .collect()
}

/// python/client.py --room ROOM --user NAME --since SINCE with no input: it
/// prints what the room keeps after SINCE and leaves. Its exit, stdout, stderr.
fn python_since(stubs: &Path, target: &str, room: &str, since: u64) -> (bool, Vec<String>, String) {
    let since = since.to_string();
    let output = python_client_command(
        stubs,
        &[
            "--target", target, "--room", room, "--user", "pia", "--since", &since,
        ],
    )
    .stdin(std::process::Stdio::null())
    .output()
    .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    (
        output.status.success(),
        stdout.lines().map(str::to_owned).collect(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub(crate) fn one_order(fleet: &Fleet, stubs: &Path) {
    const EACH: usize = 20;
    const ROOM: &str = "lab";
    let last = fleet.replicas.len() - 1;
    let mut ann = fleet.rust(0, ROOM, "ann");
    let mut bob = fleet.raw(last, ROOM, "bob", None);
    ann.wait_for("join of bob", |lines| {
        lines
            .iter()
            .any(|line| line.contains("bob joined the room"))
    });
    let mut pia = fleet.python(last.min(1), stubs, ROOM, "pia");
    bob.wait_for_text("System: pia joined the room");
    ann.wait_for("join of pia", |lines| {
        lines
            .iter()
            .any(|line| line.contains("pia joined the room"))
    });
    for i in 0..EACH {
        ann.say(&format!("ann says {i}"));
        bob.say(&format!("bob says {i}"));
        pia.say(&format!("pia says {i}"));
    }
    let traffic = |texts: Vec<String>| -> Vec<String> {
        texts
            .into_iter()
            .filter(|text| !text.contains(" the room"))
            .map(|text| match text.strip_prefix("System: Acknowledged ") {
                Some(ack) => ack.replacen("'s update: ", ": ", 1),
                None => text,
            })
            .collect()
    };
    let complete = |texts: Vec<String>| traffic(texts).len() == 3 * EACH;
    bob.wait_for("everyone's updates", |events| {
        complete(events.iter().map(|(_, t)| t.clone()).collect())
    });
    ann.wait_for("everyone's updates", |lines| {
        complete(json_events(lines).into_iter().map(|(_, t)| t).collect())
    });
    pia.wait_for("everyone's updates", |lines| {
        complete(python_texts(lines, ROOM))
    });
    let ann_events = json_events(&ann.lines());
    assert_contiguous("ann", &ann_events);
    assert_contiguous("bob", &bob.events());
    let orders = [
        traffic(ann_events.into_iter().map(|(_, t)| t).collect()),
        traffic(bob.texts()),
        traffic(python_texts(&pia.lines(), ROOM)),
    ];
    assert_eq!(
        orders[0], orders[1],
        "ann (Rust) and bob (raw) saw different orders"
    );
    assert_eq!(
        orders[1], orders[2],
        "bob (raw) and pia (Python) saw different orders"
    );
    for sender in ["ann", "bob", "pia"] {
        let from: Vec<_> = orders[0].iter().filter(|t| t.starts_with(sender)).collect();
        let sent: Vec<_> = (0..EACH)
            .map(|i| format!("{sender}: {sender} says {i}"))
            .collect();
        assert_eq!(
            from,
            sent.iter().collect::<Vec<_>>(),
            "{sender}'s own order"
        );
    }
    bob.leave();
    assert!(ann.leave().success());
    assert!(pia.leave().success());
}

#[test]
fn three_replicas_on_redis_share_a_room_in_one_numbered_order() {
    let stubs = tempfile::tempdir().unwrap();
    python_stubs(stubs.path());
    one_order(&Fleet::redis(3, &[]), stubs.path());
}

#[test]
fn the_memory_store_keeps_one_numbered_order() {
    let stubs = tempfile::tempdir().unwrap();
    python_stubs(stubs.path());
    one_order(&Fleet::memory(&[]), stubs.path());
}

/// ann talks on replica 0, bob (`client chat --room`) listens on the last,
/// whose replica restarts while ann goes on talking.
pub(crate) fn recovery(fleet: &mut Fleet, stubs: &Path) {
    const ROOM: &str = "hall";
    let last = fleet.replicas.len() - 1;
    let mut ann = fleet.raw(0, ROOM, "ann", None);
    let bob = fleet.rust(last, ROOM, "bob");
    ann.wait_for_text("System: bob joined the room");
    let said = |ann: &mut Raw, range: std::ops::Range<usize>| {
        for i in range {
            ann.say(&format!("update {i}"));
        }
    };
    let heard = |n: usize| {
        let line = format!("ann: update {}", n - 1);
        move |lines: &[String]| json_events(lines).iter().any(|(_, t)| *t == line)
    };
    said(&mut ann, 0..5);
    bob.wait_for("the first five", heard(5));
    fleet.replicas[last].signal("TERM");
    assert!(
        fleet.replicas[last].wait_exit(WAIT).is_some(),
        "the replica stopped"
    );
    said(&mut ann, 5..10);
    ann.wait_for_text("System: Acknowledged ann's update: update 9");
    fleet.replicas[last] = fleet.replica(last);
    said(&mut ann, 10..15);
    bob.wait_for("all fifteen, across the restart", heard(15));
    let events = json_events(&bob.lines());
    assert_contiguous("bob", &events);
    let updates: Vec<String> = events
        .iter()
        .map(|(_, t)| t.clone())
        .filter(|t| t.starts_with("ann: "))
        .collect();
    let sent: Vec<String> = (0..15).map(|i| format!("ann: update {i}")).collect();
    assert_eq!(updates, sent, "bob got every update once, in order");
    let said = bob.stderr();
    assert_eq!(
        said.matches("reconnecting with room-since").count(),
        1,
        "{said}"
    );

    // The Python reference recovers the same events from the room's history.
    let first_update = events.iter().find(|(_, t)| t == "ann: update 0").unwrap().0;
    let (ok, lines, stderr) = python_since(stubs, fleet.target(0), ROOM, first_update - 1);
    assert!(ok, "python --since failed: {stderr}");
    let texts = python_texts(&lines, ROOM);
    let from_history: Vec<&String> = texts.iter().filter(|t| t.starts_with("ann: ")).collect();
    assert_eq!(from_history, sent.iter().collect::<Vec<_>>());
    assert!(
        stderr.contains(&format!("room-seq: {}", first_update - 1)),
        "{stderr}"
    );
    ann.leave();
}

#[test]
fn a_participant_recovers_across_a_replica_restart_on_redis() {
    let stubs = tempfile::tempdir().unwrap();
    python_stubs(stubs.path());
    recovery(&mut Fleet::redis(2, &[]), stubs.path());
}

pub(crate) fn out_of_range(fleet: &Fleet, stubs: &Path) {
    const ROOM: &str = "short";
    let mut ann = fleet.raw(0, ROOM, "ann", None);
    for i in 0..10 {
        ann.say(&format!("update {i}"));
    }
    ann.wait_for_text("System: Acknowledged ann's update: update 9");
    let newest = ann.last_seq();
    let last = fleet.replicas.len() - 1;
    // --room-history 5: the newest five are kept.
    let (ok, lines, stderr) = python_since(stubs, fleet.target(last), ROOM, newest - 7);
    assert!(!ok && lines.is_empty(), "{lines:?}");
    assert!(stderr.contains("OUT_OF_RANGE"), "{stderr}");
    assert!(
        stderr.contains(&format!("keeps events {} to {newest}", newest - 4)),
        "{stderr}"
    );
    let (ok, _, stderr) = python_since(stubs, fleet.target(last), ROOM, newest + 1);
    assert!(!ok && stderr.contains("ahead of room"), "{stderr}");
    // Just inside the history: everything after it, then its own join.
    let back = fleet.raw(last, ROOM, "bob", Some(newest - 5));
    back.wait_for_text("System: bob joined the room");
    let events = back.events();
    assert_eq!(events[0].0, newest - 4);
    assert_contiguous("bob", &events);
    assert_eq!(events[0].1, "ann: update 5");
    ann.leave();
}

#[test]
fn room_since_out_of_the_history_is_out_of_range_on_redis() {
    let stubs = tempfile::tempdir().unwrap();
    python_stubs(stubs.path());
    out_of_range(&Fleet::redis(2, &["--room-history", "5"]), stubs.path());
}

#[test]
fn the_memory_store_recovers_and_refuses_out_of_range() {
    let stubs = tempfile::tempdir().unwrap();
    python_stubs(stubs.path());
    let fleet = Fleet::memory(&["--room-history", "5"]);
    out_of_range(&fleet, stubs.path());
    let empty = wait_until(WAIT, || {
        fleet.metric(0, "messenger_feed_participants") == 0.0
    });
    assert!(empty, "the first room's participants did not leave");
    // A participant whose call is cut comes back with room-since: nothing missed, nothing twice.
    let mut ann = fleet.raw(0, "again", "ann", None);
    let bob = fleet.raw(0, "again", "bob", None);
    ann.wait_for_text("System: bob joined the room");
    ann.say("one");
    bob.wait_for_text("ann: one");
    let since = bob.last_seq();
    drop(bob);
    ann.wait_for_text("System: bob left the room");
    ann.say("two");
    ann.say("three");
    let back = fleet.raw(0, "again", "bob", Some(since));
    back.wait_for_text("System: bob joined the room");
    assert_eq!(
        back.texts(),
        [
            "System: bob left the room",
            "ann: two",
            "ann: three",
            "System: bob joined the room"
        ]
    );
    assert_eq!(back.events()[0].0, since + 1);
    assert_contiguous("bob", &back.events());
    ann.leave();
}

#[test]
fn the_room_size_limit_counts_every_replica() {
    let fleet = Fleet::redis(2, &["--max-room-size", "2"]);
    let ann = fleet.raw(0, "small", "ann", None);
    let mut bob = fleet.raw(1, "small", "bob", None);
    ann.wait_for_text("System: bob joined the room");
    let cy = Raw::join(fleet.target(0), "small", "cy", None);
    let refused = cy.ended_within(WAIT).expect("cy's call ended");
    let status = refused.expect_err("a full room refuses");
    assert_eq!(
        status.code(),
        RpcStatusCode::RESOURCE_EXHAUSTED,
        "{status:?}"
    );
    assert!(
        status.message().contains("room 'small' is full"),
        "{status:?}"
    );
    bob.leave();
    ann.wait_for_text("System: bob left the room");
    let dan = fleet.raw(1, "small", "dan", None);
    ann.wait_for_text("System: dan joined the room");
    drop(dan);
}

#[test]
fn a_killed_replicas_participant_leaves_within_the_ttl_once() {
    let mut fleet = Fleet::redis(2, &["--room-presence-ttl-ms", "1500"]);
    let olga = fleet.raw(0, "hall", "olga", None);
    let mut kim = fleet.rust(1, "hall", "kim");
    olga.wait_for_text("System: kim joined the room");
    kim.say("hi");
    olga.wait_for_text("kim: hi");
    fleet.replicas[1].kill();
    let killed = Instant::now();
    olga.wait_for_text("System: kim left the room");
    let took = killed.elapsed();
    // The TTL (1.5 s), plus a heartbeat period, plus a loaded machine's
    // slack (its timers and the store's round trips come late).
    assert!(took < Duration::from_secs(10), "kim left after {took:?}");
    std::thread::sleep(Duration::from_millis(2000));
    let leaves = olga
        .texts()
        .iter()
        .filter(|t| *t == "System: kim left the room")
        .count();
    assert_eq!(leaves, 1, "{:?}", olga.texts());
    assert_eq!(
        fleet.metric(0, "messenger_room_presence_expiries_total"),
        1.0
    );
    drop(kim);
}

#[test]
fn a_dropped_subscription_is_filled_from_history_nothing_lost_or_repeated() {
    const COUNT: usize = 600;
    let fleet = Fleet::redis(2, &[]);
    let mut ann = fleet.raw(0, "busy", "ann", None);
    let bob = fleet.raw(1, "busy", "bob", None);
    let cy = fleet.raw(0, "busy", "cy", None);
    ann.wait_for_text("System: cy joined the room");
    bob.wait_for_text("System: cy joined the room");
    let redis_port = fleet.redis.as_ref().unwrap().port;
    let killer = std::thread::spawn(move || {
        let mut killed = 0;
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(150));
            let reply = redis_command(redis_port, &["CLIENT", "KILL", "TYPE", "pubsub"]);
            killed += reply
                .ok()
                .and_then(|r| r.trim_start_matches(':').parse::<u32>().ok())
                .unwrap_or(0);
        }
        killed
    });
    for i in 0..COUNT {
        ann.say(&format!("update {i}"));
        if i % 50 == 0 {
            std::thread::sleep(Duration::from_millis(30));
        }
    }
    let killed = killer.join().unwrap();
    assert!(killed >= 2, "subscriptions killed: {killed}");
    let last = format!("ann: update {}", COUNT - 1);
    for who in [&bob, &cy] {
        who.wait_for(&last, |events| events.iter().any(|(_, t)| *t == last));
        let events = who.events();
        assert_contiguous(&who.user, &events);
        let updates: Vec<String> = events
            .into_iter()
            .map(|(_, t)| t)
            .filter(|t| t.starts_with("ann: "))
            .collect();
        let sent: Vec<String> = (0..COUNT).map(|i| format!("ann: update {i}")).collect();
        assert_eq!(updates, sent, "{}", who.user);
    }
    assert!(fleet.metric(1, "messenger_room_subscription_reconnects_total") >= 1.0);
    assert!(fleet.metric(0, "messenger_room_store_round_trip_seconds_count") >= COUNT as f64);
    ann.leave();
}

#[test]
fn redis_restarted_empty_gives_unavailable_then_a_clear_out_of_range() {
    let mut fleet = Fleet::redis(2, &[]);
    store_restarted_empty(&mut fleet, |fleet| fleet.store().restart_empty());
}

/// ann (raw, replica 0) and bob (`client chat --room`, replica 1) in room
/// "lab"; `restart` loses the room's data in the store.
pub(crate) fn store_restarted_empty(fleet: &mut Fleet, restart: impl FnOnce(&mut Fleet)) {
    let mut ann = fleet.raw(0, "lab", "ann", None);
    let bob = fleet.rust(1, "lab", "bob");
    ann.wait_for_text("System: bob joined the room");
    ann.say("before");
    ann.wait_for_text("System: Acknowledged ann's update: before");
    let since = ann.last_seq();
    restart(fleet);
    let ended = ann.ended_within(WAIT).expect("ann's call ended");
    let status = ended.expect_err("the room's events were lost");
    assert_eq!(status.code(), RpcStatusCode::UNAVAILABLE, "{status:?}");
    assert!(fleet.metric(0, "messenger_room_gap_ended_calls_total") >= 1.0);
    // Recovery after the lost history is refused in so many words (once
    // the replica has its connection to the restarted store back).
    let mut refusal = None;
    let answered = wait_until(WAIT, || {
        let back = Raw::join(fleet.target(0), "lab", "ann", Some(since));
        let ended = back.ended_within(WAIT).expect("refused");
        refusal = Some(ended.expect_err("out of range"));
        refusal
            .as_ref()
            .is_some_and(|status| status.code() != RpcStatusCode::UNAVAILABLE)
    });
    let status = refusal.unwrap();
    assert!(answered, "still {status:?}");
    assert_eq!(status.code(), RpcStatusCode::OUT_OF_RANGE, "{status:?}");
    assert!(
        status.message().contains("keeps no history") || status.message().contains("new history"),
        "{status:?}"
    );
    // Rooms work again without a restart; bob's client said what it lost,
    // then rejoined (counted by its replica: its call had ended, so it is
    // the one participant there).
    let mut back = fleet.raw(0, "lab", "ann", None);
    bob.wait_for("bob's loss said", |_| {
        bob.stderr().contains("an unknown number of events lost")
    });
    wait_for_sample(fleet.places[1].1, "messenger_feed_participants", 1.0);
    back.say("after");
    bob.wait_for("the update after", |lines| {
        json_events(lines).iter().any(|(_, t)| t == "ann: after")
    });
    back.leave();
}

/// Joins replica `k` until the replica has the store back (a join while it
/// reconnects is UNAVAILABLE): the first call that is not refused.
fn join_when_back(fleet: &Fleet, k: usize, room: &str, user: &str) -> Raw {
    let mut joined = None;
    let back = wait_until(WAIT, || {
        let raw = Raw::join(fleet.target(k), room, user, None);
        let refused = wait_until(Duration::from_millis(500), || {
            raw.ended.lock().unwrap().is_some()
        });
        if refused {
            return false;
        }
        joined = Some(raw);
        true
    });
    assert!(
        back,
        "replica r{} never took {user} back into {room}",
        k + 1
    );
    joined.unwrap()
}

/// How a resume after event `since` of `epoch` on replica `k` ends, once the
/// replica has the store back: never UNAVAILABLE, then.
fn resumed(fleet: &Fleet, k: usize, room: &str, user: &str, since: u64, epoch: &str) -> RpcStatus {
    let mut outcome = None;
    let answered = wait_until(WAIT, || {
        let back = Raw::resume(fleet.target(k), room, user, since, epoch);
        let ended = back.ended_within(Duration::from_secs(3));
        let status = match ended {
            Some(Err(status)) => status,
            other => panic!(
                "{user}'s resume after {since} was taken: {other:?}, {:?}",
                back.events()
            ),
        };
        let code = status.code();
        outcome = Some(status);
        code != RpcStatusCode::UNAVAILABLE
    });
    let status = outcome.unwrap();
    assert!(answered, "still {status:?}");
    status
}

/// What a participant received, each event named by (room-epoch, number),
/// its acknowledgements written as the update they acknowledge.
fn positions(raw: &Raw) -> Vec<((String, u64), String)> {
    let epoch = raw.epoch();
    raw.events()
        .into_iter()
        .map(|(seq, text)| {
            let text = match text.strip_prefix("System: Acknowledged ") {
                Some(ack) => ack.replacen("'s update: ", ": ", 1),
                None => text,
            };
            ((epoch.clone(), seq), text)
        })
        .collect()
}

/// The issue's store-rewind run: Ann on replica A, Bob on replica B; Bob
/// sends b0-b4, Redis saves a snapshot, Bob sends b5-b9; Redis is killed and
/// comes back from the snapshot, without b5-b9. Nobody may then be given
/// one number for two events: Ann's and Bob's calls end, their resumes are
/// refused in words that say history was lost (from the Rust client with
/// room-epoch and from the Python reference without it), and Cy's c0-c4
/// reach Ann once she rejoins.
#[test]
fn a_store_that_comes_back_older_never_issues_a_number_twice() {
    const ROOM: &str = "rewind";
    let stubs = tempfile::tempdir().unwrap();
    python_stubs(stubs.path());
    let mut fleet = Fleet::redis(2, &[]);
    let ann = fleet.raw(0, ROOM, "ann", None);
    let mut bob = fleet.raw(1, ROOM, "bob", None);
    ann.wait_for_text("System: bob joined the room");
    for i in 0..5 {
        bob.say(&format!("b{i}"));
    }
    ann.wait_for_text("bob: b4");
    fleet.store().save();
    for i in 5..10 {
        bob.say(&format!("b{i}"));
    }
    ann.wait_for_text("bob: b9");
    bob.wait_for_text("System: Acknowledged bob's update: b9");
    let (since, epoch) = (ann.last_seq(), ann.epoch());
    let (bob_since, bob_epoch) = (bob.last_seq(), bob.epoch());
    assert_eq!(epoch, bob_epoch, "one room, one epoch");

    fleet.store().restart_from_snapshot();
    for who in [&ann, &bob] {
        let ended = who.ended_within(WAIT).expect("the call ended");
        let status = ended.expect_err("its events were lost");
        assert_eq!(
            status.code(),
            RpcStatusCode::UNAVAILABLE,
            "{}: {status:?}",
            who.user
        );
    }
    // Resumes from what they had seen are refused as lost, never taken into a new run.
    for (k, user, since) in [(0, "ann", since), (1, "bob", bob_since)] {
        let status = resumed(&fleet, k, ROOM, user, since, &epoch);
        assert_eq!(
            status.code(),
            RpcStatusCode::OUT_OF_RANGE,
            "{user}: {status:?}"
        );
        assert!(status.message().contains("lost"), "{user}: {status:?}");
    }
    let (ok, lines, stderr) = python_since(stubs.path(), fleet.target(1), ROOM, since);
    assert!(!ok && lines.is_empty(), "python resumed: {lines:?}");
    assert!(
        stderr.contains("OUT_OF_RANGE") && stderr.contains("lost"),
        "{stderr}"
    );

    let ann_again = join_when_back(&fleet, 0, ROOM, "ann");
    let mut cy = join_when_back(&fleet, 1, ROOM, "cy");
    ann_again.wait_for_text("System: cy joined the room");
    for i in 0..5 {
        cy.say(&format!("c{i}"));
    }
    cy.wait_for_text("System: Acknowledged cy's update: c4");
    ann_again.wait_for_text("cy: c4");
    let heard: Vec<String> = ann_again
        .texts()
        .into_iter()
        .filter(|t| t.starts_with("cy: "))
        .collect();
    let sent: Vec<String> = (0..5).map(|i| format!("cy: c{i}")).collect();
    assert_eq!(heard, sent, "Ann got c0-c4, in order");
    assert_ne!(
        ann_again.epoch(),
        epoch,
        "the rewound history began a new epoch"
    );

    // Every (room-epoch, number) anyone was given names one event.
    let mut named = std::collections::HashMap::new();
    for who in [&ann, &bob, &ann_again, &cy] {
        for (position, text) in positions(who) {
            let first = named
                .entry(position.clone())
                .or_insert_with(|| text.clone());
            assert_eq!(*first, text, "{position:?} was given to two events");
        }
    }
}

/// `client chat --room` across the same rewind: it does not carry on as if
/// nothing happened; it says that updates were lost, and goes on in the room.
#[test]
fn client_chat_says_updates_were_lost_when_the_store_comes_back_older() {
    const ROOM: &str = "rewound";
    let mut fleet = Fleet::redis(2, &[]);
    let mut ann = fleet.raw(0, ROOM, "ann", None);
    let bob = fleet.rust(1, ROOM, "bob");
    ann.wait_for_text("System: bob joined the room");
    let heard = |text: &'static str| {
        move |lines: &[String]| json_events(lines).iter().any(|(_, t)| t == text)
    };
    for i in 0..5 {
        ann.say(&format!("a{i}"));
    }
    bob.wait_for("a4", heard("ann: a4"));
    fleet.store().save();
    for i in 5..10 {
        ann.say(&format!("a{i}"));
    }
    bob.wait_for("a9", heard("ann: a9"));
    fleet.store().restart_from_snapshot();
    bob.wait_for("word that updates were lost", |_| {
        bob.stderr().contains("updates were lost")
    });
    let said = bob.stderr();
    assert!(said.contains("reconnecting with room-since"), "{said}");
    let back = wait_until(WAIT, || {
        fleet.metric(1, "messenger_feed_participants") >= 1.0
    });
    assert!(back, "bob did not rejoin: {}", bob.stderr());
    let mut cy = join_when_back(&fleet, 0, ROOM, "cy");
    cy.say("after");
    bob.wait_for("cy's update after the rewind", heard("cy: after"));
}

/// `client chat --room` does not send again its updates that a call took
/// but never acknowledged (the store stopped): that could repeat them. It
/// says how many, rather than dropping them without a word.
#[test]
fn client_chat_says_how_many_of_its_updates_were_not_acknowledged() {
    let mut fleet = Fleet::redis(1, &[]);
    let mut bob = fleet.rust(0, "unacked", "bob");
    bob.say("before");
    bob.wait_for("the ack of before", |lines| {
        json_events(lines)
            .iter()
            .any(|(_, text)| text == "System: Acknowledged bob's update: before")
    });
    fleet.store().pause();
    for i in 0..3 {
        bob.say(&format!("u{i}"));
    }
    // Told once for each, however the calls that took them ended.
    let told = |stderr: &str| -> u64 {
        stderr
            .lines()
            .filter_map(|line| line.split_once(" of your updates were not acknowledged"))
            .filter_map(|(head, _)| head.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let all_told = wait_until(WAIT, || told(&bob.stderr()) >= 3);
    fleet.store().resume();
    let said = bob.stderr();
    assert!(all_told, "{said}");
    assert_eq!(told(&said), 3, "{said}");
}

#[test]
fn a_stopped_store_gives_unavailable_within_the_bound_and_echo_goes_on() {
    let mut fleet = Fleet::redis(1, &[]);
    let mut ann = fleet.raw(0, "lab", "ann", None);
    ann.say("hi");
    ann.wait_for_text("System: Acknowledged ann's update: hi");
    let since = ann.last_seq();
    fleet.store().pause();
    let stopped = Instant::now();
    let ended = ann.ended_within(WAIT).expect("ann's call ended");
    let took = stopped.elapsed();
    let status = ended.expect_err("unavailable");
    assert_eq!(status.code(), RpcStatusCode::UNAVAILABLE, "{status:?}");
    // The bound: a ping's period and timeout (0.5 s + 1 s), then the grace
    // (0.5 s), and a loaded machine's slack: four times the bound.
    assert!(took < Duration::from_secs(8), "ended after {took:?}");
    // A new room call is refused at once; the echo goes on.
    let cy = Raw::join(fleet.target(0), "lab", "cy", None);
    let refused = cy
        .ended_within(WAIT)
        .expect("refused")
        .expect_err("unavailable");
    assert_eq!(refused.code(), RpcStatusCode::UNAVAILABLE);
    let client = fleet.replicas[0].client();
    let (mut sink, mut echoes) = client.collaborative_feed_async().unwrap();
    block_on(sink.send((feed("Lead", "still here"), WriteFlags::default()))).unwrap();
    let echo = block_on(echoes.try_next()).unwrap().unwrap();
    assert_eq!(echo.message, acknowledgement("Lead", "still here"));
    fleet.store().resume();
    let replica = &fleet.replicas[0];
    assert!(
        replica.logged("is reachable again"),
        "the replica did not see the store come back:\n{}",
        replica.log()
    );
    // One line as the outage begins, one as it ends: the subscription's
    // own lines do not repeat them.
    let log = replica.log();
    assert_eq!(log.matches("is unreachable").count(), 1, "{log}");
    assert_eq!(log.matches("is reachable again").count(), 1, "{log}");
    assert!(!log.contains("room subscriptions"), "{log}");
    let dan = fleet.raw(0, "lab", "dan", None);
    let mut eve = fleet.raw(0, "lab", "eve", None);
    dan.wait_for_text("System: eve joined the room");
    eve.leave();
    dan.wait_for_text("System: eve left the room");
    // The store kept its data: ann recovers after the outage, nothing missed or repeated.
    let back = fleet.raw(0, "lab", "ann", Some(since));
    back.wait_for("eve's leave and its own join", |events| {
        ["System: eve left the room", "System: ann joined the room"]
            .iter()
            .all(|text| events.iter().any(|(_, t)| t == text))
    });
    let events = back.events();
    assert_eq!(events[0].0, since + 1, "{events:?}");
    assert_contiguous("ann", &events);
    for notice in ["dan joined", "eve joined", "ann joined"] {
        let text = format!("System: {notice} the room");
        assert_eq!(
            back.texts().iter().filter(|t| **t == text).count(),
            1,
            "{events:?}"
        );
    }
    let log = fleet.replicas[0].log();
    assert_eq!(log.matches("is unreachable").count(), 1, "{log}");
    assert_eq!(log.matches("is reachable again").count(), 1, "{log}");
}

/// Two participants on one replica send 10,000 updates each as fast as
/// they can while reading everything: neither is removed.
fn burst(fleet: &Fleet) {
    const EACH: usize = 10_000;
    let joined = |user: &str| fleet.raw(0, "burst", user, None);
    let (mut ann, mut bob) = (joined("ann"), joined("bob"));
    ann.wait_for_text("System: bob joined the room");
    let send = |raw: &mut Raw| {
        let mut sink = raw.sink.take().unwrap();
        let user = raw.user.clone();
        std::thread::spawn(move || {
            let updates =
                (0..EACH).map(move |i| Ok((feed(&user, &i.to_string()), WriteFlags::default())));
            let sent = block_on(sink.send_all(&mut futures::stream::iter(updates)));
            (sent, sink)
        })
    };
    let (ann_sending, bob_sending) = (send(&mut ann), send(&mut bob));
    for (who, other) in [(&ann, "bob"), (&bob, "ann")] {
        let own = format!("System: Acknowledged {}'s update: {}", who.user, EACH - 1);
        let theirs = format!("{other}: {}", EACH - 1);
        who.wait_for("the whole burst", |events| {
            events.iter().any(|(_, t)| *t == own) && events.iter().any(|(_, t)| *t == theirs)
        });
        assert!(
            who.ended.lock().unwrap().is_none(),
            "{} was removed",
            who.user
        );
        assert_contiguous(&who.user, &who.events());
    }
    for sending in [ann_sending, bob_sending] {
        let (sent, mut sink) = sending.join().unwrap();
        sent.expect("every update was sent");
        let _ = block_on(sink.close());
    }
    assert_eq!(fleet.metric(0, "messenger_feed_lagging_removed_total"), 0.0);
}

#[test]
fn a_burst_removes_neither_reader_on_the_memory_store() {
    burst(&Fleet::memory(&[]));
}

#[test]
fn a_burst_removes_neither_reader_on_redis() {
    burst(&Fleet::redis(1, &[]));
}

/// A join-and-leave storm on one replica (four threads joining and leaving
/// at once, so the room closes and opens again and again) never leaves the
/// room deaf there: each round, a newcomer on that replica hears the other
/// replica's update and gets its own acknowledged.
#[test]
fn a_join_and_leave_storm_never_leaves_a_room_deaf() {
    use std::sync::atomic::{AtomicBool, Ordering};
    const ROOM: &str = "storm";
    const ROUNDS: usize = 20;
    let fleet = Fleet::redis(2, &[]);
    let mut ann = fleet.raw(0, ROOM, "ann", None);
    let target = fleet.target(1).to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let storms: Vec<_> = (0..4)
        .map(|t| {
            let (target, stop) = (target.clone(), stop.clone());
            std::thread::spawn(move || {
                let client = own_connection(&target);
                let mut gusts = 0;
                while !stop.load(Ordering::SeqCst) {
                    let mut headers = MetadataBuilder::new();
                    headers.add_str(ROOM_HEADER, ROOM).unwrap();
                    headers.add_str(USER_HEADER, &format!("gust{t}")).unwrap();
                    let options = CallOption::default()
                        .headers(headers.build())
                        .timeout(Duration::from_secs(30));
                    let call = client
                        .clone()
                        .with_options(options)
                        .collaborative_feed_async();
                    let Ok((mut sink, mut events)) = call else {
                        continue;
                    };
                    let _ = block_on(sink.close());
                    while let Ok(Some(_)) = block_on(events.try_next()) {}
                    gusts += 1;
                }
                gusts
            })
        })
        .collect();
    let joined = |ann: &Raw| {
        ann.texts()
            .iter()
            .filter(|t| *t == "System: ear joined the room")
            .count()
    };
    for round in 0..ROUNDS {
        let mut ear = Raw::join(&target, ROOM, "ear", None);
        ann.wait_for("the newcomer's join", |_| joined(&ann) > round);
        let said = format!("round {round}");
        ann.say(&said);
        ear.wait_for_text(&format!("ann: {said}"));
        ear.say("heard");
        ear.wait_for_text("System: Acknowledged ear's update: heard");
        ear.leave();
        assert!(
            matches!(ear.ended_within(WAIT), Some(Ok(()))),
            "round {round}: {:?}",
            ear.ended_within(Duration::ZERO)
        );
    }
    stop.store(true, Ordering::SeqCst);
    let gusts: Vec<usize> = storms.into_iter().map(|s| s.join().unwrap()).collect();
    assert!(gusts.iter().all(|&n| n > 0), "the storm's joins: {gusts:?}");
    ann.leave();
}

/// A TCP proxy in front of Redis that the test can make stop forwarding on
/// the connections it carries now, without closing them (what a NAT's idle
/// timeout or a partition that swallows the reset does): the subscription
/// connections (those that sent SUBSCRIBE), or all of them. What is held
/// stays in the kernel's buffers and goes on when released. Connections made
/// after a stall are carried.
struct StallingProxy {
    port: u16,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    /// Connections numbered below this are held (subscriptions only, or all).
    held_below: Arc<std::sync::atomic::AtomicUsize>,
    held_all: Arc<std::sync::atomic::AtomicBool>,
}

impl StallingProxy {
    fn start(upstream: u16) -> StallingProxy {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let held_below = Arc::new(AtomicUsize::new(0));
        let held_all = Arc::new(AtomicBool::new(false));
        let (count, below, all) = (accepted.clone(), held_below.clone(), held_all.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let n = count.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let subscribed = Arc::new(AtomicBool::new(false));
                let pipe = |from: std::net::TcpStream, to: std::net::TcpStream, watch: bool| {
                    let (subscribed, below, all) = (subscribed.clone(), below.clone(), all.clone());
                    std::thread::spawn(move || {
                        use std::io::{Read, Write};
                        let (mut from, mut to) = (from, to);
                        let held = || {
                            n < below.load(Ordering::SeqCst)
                                && (all.load(Ordering::SeqCst) || subscribed.load(Ordering::SeqCst))
                        };
                        let mut buffer = [0u8; 16 * 1024];
                        loop {
                            while held() {
                                std::thread::sleep(Duration::from_millis(5));
                            }
                            let Ok(read) = from.read(&mut buffer) else {
                                return;
                            };
                            if read == 0 {
                                let _ = to.shutdown(std::net::Shutdown::Write);
                                return;
                            }
                            let chunk = &buffer[..read];
                            if watch
                                && chunk
                                    .windows(9)
                                    .any(|w| w.eq_ignore_ascii_case(b"SUBSCRIBE"))
                            {
                                subscribed.store(true, Ordering::SeqCst);
                            }
                            while held() {
                                std::thread::sleep(Duration::from_millis(5));
                            }
                            if to.write_all(chunk).is_err() {
                                return;
                            }
                        }
                    });
                };
                pipe(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    true,
                );
                pipe(server, client, false);
            }
        });
        StallingProxy {
            port,
            accepted,
            held_below,
            held_all,
        }
    }

    /// From now on, the subscription connections it carries (or, with
    /// `all`, every connection it carries) forward nothing.
    fn stall(&self, all: bool) {
        use std::sync::atomic::Ordering;
        self.held_all.store(all, Ordering::SeqCst);
        let now = self.accepted.load(Ordering::SeqCst);
        self.held_below.store(now, Ordering::SeqCst);
    }

    /// What was held goes on.
    fn release(&self) {
        self.held_below
            .store(0, std::sync::atomic::Ordering::SeqCst);
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// A replica whose store is behind `proxy`, with `flags`.
fn replica_behind(proxy: &StallingProxy, flags: &[&str]) -> ServerProcess {
    let url = proxy.url();
    let mut args = vec![
        "--delay-ms",
        "0",
        "--room-presence-ttl-ms",
        TTL_MS,
        "--rooms",
        &url,
    ];
    args.extend(flags);
    ServerProcess::start_at(&format!("127.0.0.2:{}", free_port()), &args)
}

/// Every connection of a replica to its store stalls while its participant
/// has updates in flight: their round trips time out, and they are sent
/// again on a new connection; then the stalled connection delivers the
/// originals, late. Each update is in the room once, in the order sent.
#[test]
fn updates_retried_over_a_stalled_connection_keep_their_order_once() {
    const ROOM: &str = "retry";
    const COUNT: usize = 10;
    let fleet = Fleet::redis(1, &[]);
    let proxy = StallingProxy::start(fleet.redis.as_ref().unwrap().port);
    let behind = replica_behind(&proxy, &["--room-store-grace-ms", "15000"]);
    let bob = fleet.raw(0, ROOM, "bob", None);
    let mut ann = Raw::join(&behind.target, ROOM, "ann", None);
    bob.wait_for_text("System: ann joined the room");
    ann.say("first");
    bob.wait_for_text("ann: first");
    proxy.stall(true);
    for i in 0..COUNT {
        ann.say(&format!("held {i}"));
    }
    let last = format!("ann: held {}", COUNT - 1);
    bob.wait_for(&last, |events| events.iter().any(|(_, t)| *t == last));
    proxy.release();
    ann.say("after");
    bob.wait_for_text("ann: after");
    ann.wait_for_text("System: Acknowledged ann's update: after");
    let heard: Vec<String> = bob
        .texts()
        .into_iter()
        .filter(|t| t.starts_with("ann: "))
        .collect();
    let mut sent = vec!["ann: first".to_owned()];
    sent.extend((0..COUNT).map(|i| format!("ann: held {i}")));
    sent.push("ann: after".to_owned());
    assert_eq!(heard, sent, "each update once, in the order sent");
    assert_contiguous("bob", &bob.events());
    assert!(ann.ended.lock().unwrap().is_none(), "ann's call ended");
    assert!(
        behind.logged("is unreachable"),
        "the stall was not noticed:\n{}",
        behind.log()
    );
    ann.leave();
}

/// A replica whose subscription stops answering without closing (the
/// proxy swallows it) finds out by its ping, connects again and fills the
/// gap from the history: its participant gets every update, once, in order.
#[test]
fn a_subscription_that_goes_silent_is_found_and_its_gap_filled() {
    const ROOM: &str = "quiet";
    let fleet = Fleet::redis(1, &[]);
    let proxy = StallingProxy::start(fleet.redis.as_ref().unwrap().port);
    let quiet = replica_behind(&proxy, &["--room-store-grace-ms", GRACE_MS]);
    let mut ann = fleet.raw(0, ROOM, "ann", None);
    let bob = Raw::join(&quiet.target, ROOM, "bob", None);
    ann.wait_for_text("System: bob joined the room");
    ann.say("before");
    bob.wait_for_text("ann: before");
    proxy.stall(false);
    for i in 0..10 {
        ann.say(&format!("during {i}"));
    }
    ann.wait_for_text("System: Acknowledged ann's update: during 9");
    bob.wait_for_text("ann: during 9");
    let events = bob.events();
    assert_contiguous("bob", &events);
    let heard: Vec<String> = events
        .into_iter()
        .map(|(_, t)| t)
        .filter(|t| t.starts_with("ann: during"))
        .collect();
    let sent: Vec<String> = (0..10).map(|i| format!("ann: during {i}")).collect();
    assert_eq!(heard, sent);
    assert!(bob.ended.lock().unwrap().is_none(), "bob's call ended");
    assert!(quiet.logged("no answer to a ping"), "{}", quiet.log());
    ann.leave();
}

/// `scripts/fleet.sh 2 --rooms redis`, as a user runs it: its own
/// redis-server, and two replicas whose participants share a room; SIGTERM
/// stops them all.
#[test]
fn fleet_script_with_rooms_redis_shares_a_room_across_replicas() {
    fleet_script_shares_a_room("redis", 1);
}

/// `scripts/fleet.sh 2 --rooms redis-cluster`: a local Redis Cluster of three
/// masters instead.
#[test]
fn fleet_script_with_rooms_redis_cluster_shares_a_room_across_replicas() {
    fleet_script_shares_a_room("redis-cluster", 3);
}

/// `scripts/fleet.sh 2 --rooms STORE`, whose Redis listens on `redis_nodes`
/// ports from REDIS_PORT on.
fn fleet_script_shares_a_room(store: &str, redis_nodes: u16) {
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};

    /// SIGTERM, so the script stops its replicas and its redis-server too.
    struct Script(Child);
    impl Drop for Script {
        fn drop(&mut self) {
            let _ = Command::new("kill")
                .args(["-TERM", &self.0.id().to_string()])
                .status();
            let _ = self.0.wait();
        }
    }
    let port = free_port();
    // A cluster node's bus is its port + 10000 (redis-server's default,
    // which fleet.sh keeps): that port must exist and be free too.
    // (The first is reserved for this test already.)
    let usable = |first: u16, k: u16| {
        first.checked_add(k).is_some_and(|port| {
            (k == 0 || port_is_free(port))
                && (redis_nodes == 1 || port.checked_add(10000).is_some_and(port_is_free))
        })
    };
    let redis_port = (0..1000)
        .map(|_| free_port())
        .find(|&first| (0..redis_nodes).all(|k| usable(first, k)))
        .expect("consecutive free ports");
    let mut script = Script(
        Command::new("bash")
            .arg(crate::support::project_root().join("scripts/fleet.sh"))
            .args(["2", "--rooms", store, "--delay-ms", "0"])
            .env("PORT", port.to_string())
            .env("REDIS_PORT", redis_port.to_string())
            .env("SERVER", crate::support::SERVER_BIN)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("fleet.sh starts"),
    );
    let stdout = BufReader::new(script.0.stdout.take().unwrap());
    let target = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("target: ").map(str::to_owned))
        .expect("fleet.sh prints its target");
    assert_eq!(target, format!("ipv4:127.0.0.1:{port},127.0.0.2:{port}"));
    let ann = Raw::join(&format!("127.0.0.1:{port}"), "lab", "ann", None);
    // Joins are not ordered across calls: retried until ann (in the room first) sees bob.
    let seen = wait_until(WAIT, || {
        let mut bob = Raw::join(&format!("127.0.0.2:{port}"), "lab", "bob", None);
        let joined = wait_until(Duration::from_secs(2), || {
            ann.texts()
                .iter()
                .any(|t| t == "System: bob joined the room")
        });
        if joined {
            bob.say("across the fleet");
            ann.wait_for_text("bob: across the fleet");
        }
        joined
    });
    assert!(seen, "ann on r1 never saw bob on r2");
    drop(script);
    let redis_addrs = (0..redis_nodes).map(|k| format!("127.0.0.1:{}", redis_port + k));
    for addr in std::iter::once(format!("127.0.0.1:{port}")).chain(redis_addrs) {
        assert!(
            std::net::TcpStream::connect(&addr).is_err(),
            "{addr} still listening after the fleet stopped"
        );
    }
}

/// Whether nobody listens on `port` of 127.0.0.1 (for a redis-server to take it).
fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}
