//! Feed rooms end to end: participants as real programs (`client chat
//! --room`, python/client.py --room) and as library calls, one order for
//! everyone, join and leave notices however a participant goes (killed
//! included), a participant that never reads removed while the others go on
//! in flat memory, and the limits' and bad names' statuses. The feed without
//! a room is the lab's echo: `messenger.rs` tests it unchanged.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use futures::executor::block_on;
use futures::{stream, SinkExt, TryStreamExt};
use grpcio::{
    CallOption, ChannelBuilder, ClientDuplexReceiver, ClientDuplexSender, EnvBuilder,
    MetadataBuilder, RpcStatus, RpcStatusCode, WriteFlags,
};
use learning_messenger::proto::messenger::FeedUpdate;
use learning_messenger::rpc::messenger::LearningMessengerClient;
use learning_messenger::rpc::ok_if_call_over;
use learning_messenger::server::{RoomLimits, ServerConfig};
use messenger_lab::answers::acknowledgement;
use messenger_lab::room::{classify, Kind, ROOM_HEADER, USER_HEADER};

use crate::support::{
    failure, feed, free_port, gathered, python_client_command, python_stubs, scrape, test_config,
    wait_until, PeakWatcher, ServerProcess, TestServer,
};

pub(crate) const CLIENT: &str = env!("CARGO_BIN_EXE_client");
/// How long any one expected thing may take to happen.
pub(crate) const WAIT: Duration = Duration::from_secs(60);
/// How long the 100,000 updates of the never-reader test may take (a debug build, a busy machine).
const EXCHANGE: Duration = Duration::from_secs(600);

/// A participant run as a program: its stdin a pipe the test writes lines
/// into, its output lines collected as they come. Killed on drop.
pub(crate) struct Chatter {
    pub(crate) name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl Chatter {
    pub(crate) fn spawn(name: &str, mut command: Command) -> Chatter {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let collected = lines.clone();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                collected.lock().unwrap().push(line);
            }
        });
        let stderr = gathered(child.stderr.take().unwrap());
        Chatter {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
        }
    }

    /// `client chat --room ROOM --user NAME`, with `flags` before the command.
    pub(crate) fn rust(target: &str, room: &str, name: &str, flags: &[&str]) -> Chatter {
        let mut command = Command::new(CLIENT);
        command
            .args(["--target", target])
            .args(flags)
            .args(["chat", "--room", room, "--user", name]);
        Chatter::spawn(name, command)
    }

    /// `python/client.py --room ROOM --user NAME`, run from `stubs`.
    pub(crate) fn python(stubs: &Path, target: &str, room: &str, name: &str) -> Chatter {
        let command =
            python_client_command(stubs, &["--target", target, "--room", room, "--user", name]);
        Chatter::spawn(name, command)
    }

    pub(crate) fn say(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("still talking");
        writeln!(stdin, "{text}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("{} stopped reading its input: {e}", self.name));
    }

    /// What it has written on stderr so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub(crate) fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until what it printed satisfies `done`; fails saying `what` did not come.
    pub(crate) fn wait_for(&self, what: &str, done: impl Fn(&[String]) -> bool) {
        if !wait_until(WAIT, || done(&self.lines())) {
            let stderr = self.stderr.lock().unwrap().clone();
            panic!(
                "{}: no {what} within {WAIT:?}; it printed:\n{}\nstderr: {stderr}",
                self.name,
                self.lines().join("\n"),
            );
        }
    }

    /// Ends its input (it leaves the room) and waits for it to exit.
    pub(crate) fn leave(&mut self) -> ExitStatus {
        drop(self.stdin.take());
        let mut status = None;
        wait_until(WAIT, || {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        });
        status.unwrap_or_else(|| panic!("{} did not exit after its input ended", self.name))
    }

    /// SIGKILL: it vanishes without a word, its connection dropped by the kernel.
    pub(crate) fn kill(&mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }
}

impl Drop for Chatter {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One received update as a participant saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) kind: Kind,
    /// The update's sender (for an ack, whose update it acknowledges); for a notice, its text.
    pub(crate) user: String,
    pub(crate) message: String,
}

/// What `client chat --room ROOM` (or python/client.py, which prints the
/// same) printed, line by line; a line of neither form fails the test.
pub(crate) fn seen_in_text(lines: &[String], room: &str) -> Vec<Seen> {
    let ack_prefix = " [Feed Update] System: Acknowledged ";
    let room_prefix = format!(" [{room}] ");
    lines
        .iter()
        .map(|line| {
            if let Some(ack) = line.strip_prefix(ack_prefix) {
                let (user, message) = ack.split_once("'s update: ").expect("an ack");
                return Seen {
                    kind: Kind::Ack,
                    user: user.to_owned(),
                    message: message.to_owned(),
                };
            }
            let rest = line
                .strip_prefix(&room_prefix)
                .unwrap_or_else(|| panic!("a line of neither form: {line:?}"));
            match rest.strip_prefix("* ") {
                Some(notice) => Seen {
                    kind: if notice.ends_with(" joined the room") {
                        Kind::Join
                    } else {
                        Kind::Leave
                    },
                    user: notice.to_owned(),
                    message: String::new(),
                },
                None => {
                    let (user, message) = rest.split_once(": ").expect("user: message");
                    Seen {
                        kind: Kind::Update,
                        user: user.to_owned(),
                        message: message.to_owned(),
                    }
                }
            }
        })
        .collect()
}

/// The `--json` lines of `client chat --room`: kind, and the update as sent.
pub(crate) fn seen_in_json(lines: &[String], room: &str) -> Vec<Seen> {
    lines
        .iter()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            assert_eq!(value["rpc"], "CollaborativeFeed", "{line}");
            assert_eq!(value["room"], room, "{line}");
            let kind = match value["kind"].as_str() {
                Some("ack") => Kind::Ack,
                Some("update") => Kind::Update,
                Some("join") => Kind::Join,
                Some("leave") => Kind::Leave,
                other => panic!("unknown kind {other:?} in {line}"),
            };
            let text = |field: &str| value["message"][field].as_str().unwrap_or("").to_owned();
            Seen {
                kind,
                user: text("user"),
                message: text("message"),
            }
        })
        .collect()
}

fn notice(kind: Kind, text: &str) -> Seen {
    Seen {
        kind,
        user: "System".into(),
        message: text.into(),
    }
}

fn update(user: &str, message: &str) -> Seen {
    Seen {
        kind: Kind::Update,
        user: user.into(),
        message: message.into(),
    }
}

#[test]
fn two_rust_and_one_python_participant_see_each_other_in_one_order() {
    const EACH: usize = 40;
    const ROOM: &str = "lab";
    let server = TestServer::with_config(ServerConfig {
        delay: Duration::ZERO,
        metrics_addr: Some("127.0.0.1:0".to_owned()),
        ..test_config()
    });
    let metrics_port = server.running().metrics_port().unwrap();
    let stubs = tempfile::tempdir().unwrap();
    python_stubs(stubs.path());
    let joined = |name: &str| {
        let line = format!(" [{ROOM}] * {name} joined the room");
        move |lines: &[String]| lines.contains(&line)
    };
    // One at a time, so that each is told of those who come after it.
    let mut ann = Chatter::rust(&server.target, ROOM, "ann", &[]);
    wait_for_sample(metrics_port, "messenger_feed_participants", 1.0);
    let mut bob = Chatter::rust(&server.target, ROOM, "bob", &[]);
    ann.wait_for("join of bob", joined("bob"));
    let mut pia = Chatter::python(stubs.path(), &server.target, ROOM, "pia");
    ann.wait_for("join of pia", joined("pia"));
    bob.wait_for("join of pia", joined("pia"));

    // All three talk at once: the server decides one order.
    for i in 0..EACH {
        for chatter in [&mut ann, &mut bob, &mut pia] {
            let line = format!("{} says {i}", chatter.name);
            chatter.say(&line);
        }
    }
    let everything = |lines: &[String]| {
        seen_in_text(lines, ROOM)
            .iter()
            .filter(|seen| matches!(seen.kind, Kind::Ack | Kind::Update))
            .count()
            == 3 * EACH
    };
    for chatter in [&ann, &bob, &pia] {
        chatter.wait_for("acks of its own and the others' updates", everything);
    }
    let orders: Vec<Vec<(String, String)>> = [&ann, &bob, &pia]
        .iter()
        .map(|chatter| {
            let seen = seen_in_text(&chatter.lines(), ROOM);
            let traffic: Vec<_> = seen
                .into_iter()
                .filter(|seen| matches!(seen.kind, Kind::Ack | Kind::Update))
                .collect();
            for seen in &traffic {
                let own = seen.user == chatter.name;
                assert_eq!(
                    seen.kind,
                    if own { Kind::Ack } else { Kind::Update },
                    "{}: its own updates come back as acks, the others' as sent: {seen:?}",
                    chatter.name
                );
            }
            for sender in ["ann", "bob", "pia"] {
                let from: Vec<_> = traffic
                    .iter()
                    .filter(|seen| seen.user == sender)
                    .map(|seen| seen.message.clone())
                    .collect();
                let sent: Vec<_> = (0..EACH).map(|i| format!("{sender} says {i}")).collect();
                assert_eq!(from, sent, "{} saw {sender}'s updates", chatter.name);
            }
            traffic
                .into_iter()
                .map(|seen| (seen.user, seen.message))
                .collect()
        })
        .collect();
    assert_eq!(orders[0], orders[1], "ann and bob saw different orders");
    assert_eq!(orders[1], orders[2], "bob and pia saw different orders");
    for chatter in [&mut ann, &mut bob, &mut pia] {
        let status = chatter.leave();
        assert!(status.success(), "{} exited with {status}", chatter.name,);
    }
}

/// The value of an unlabelled sample on a metrics page.
pub(crate) fn sample(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

pub(crate) fn wait_for_sample(port: u16, name: &str, value: f64) {
    let mut last = None;
    let reached = wait_until(WAIT, || {
        last = sample(&scrape(port).2, name);
        last == Some(value)
    });
    assert!(reached, "{name} stayed {last:?}, expected {value}");
}

/// A client stub on a connection of its own (separate channels to one
/// target otherwise share one connection and its flow-control window).
pub(crate) fn own_connection(target: &str) -> LearningMessengerClient {
    let env = Arc::new(EnvBuilder::new().cq_count(1).build());
    let channel = ChannelBuilder::new(env)
        .use_local_subchannel_pool(true)
        .connect(target);
    LearningMessengerClient::new(channel)
}

type Feed = (
    ClientDuplexSender<FeedUpdate>,
    ClientDuplexReceiver<FeedUpdate>,
);

/// Opens the feed in `room`, named `user` by header if given.
fn open_room(client: &LearningMessengerClient, room: &str, user: Option<&str>) -> Feed {
    let mut headers = MetadataBuilder::new();
    headers.add_str(ROOM_HEADER, room).unwrap();
    if let Some(user) = user {
        headers.add_str(USER_HEADER, user).unwrap();
    }
    let options = CallOption::default()
        .headers(headers.build())
        .timeout(Duration::from_secs(600));
    client
        .clone()
        .with_options(options)
        .collaborative_feed_async()
        .unwrap()
}

/// Runs `work` on a thread of its own, failing the test if it takes over `limit`.
pub(crate) fn bounded<T: Send + 'static>(
    what: &str,
    limit: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(work());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what} did not finish within {limit:?}"))
}

#[test]
fn joins_and_leaves_are_announced_however_a_participant_goes() {
    const ROOM: &str = "hall";
    let metrics_port = free_port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let server = ServerProcess::start(&["--delay-ms", "0", "--metrics-addr", &metrics_addr]);
    let observer = Chatter::rust(&server.target, ROOM, "olga", &["--json"]);
    wait_for_sample(metrics_port, "messenger_feed_participants", 1.0);
    let observed = |expected: &[Seen]| {
        let expected = expected.to_vec();
        move |lines: &[String]| seen_in_json(lines, ROOM) == expected
    };
    let mut expected = Vec::new();

    // Leaves cleanly: its input ends.
    let mut quinn = Chatter::rust(&server.target, ROOM, "quinn", &[]);
    expected.push(notice(Kind::Join, "quinn joined the room"));
    observer.wait_for("join of quinn", observed(&expected));
    quinn.say("bye all");
    expected.push(update("quinn", "bye all"));
    observer.wait_for("quinn's update", observed(&expected));
    assert!(quinn.leave().success());
    expected.push(notice(Kind::Leave, "quinn left the room"));
    observer.wait_for("leave of quinn", observed(&expected));

    // Vanishes: killed, its connection dropped.
    let mut kim = Chatter::rust(&server.target, ROOM, "kim", &[]);
    expected.push(notice(Kind::Join, "kim joined the room"));
    observer.wait_for("join of kim", observed(&expected));
    kim.kill();
    expected.push(notice(Kind::Leave, "kim left the room"));
    observer.wait_for("leave of the killed kim", observed(&expected));

    // Cancels its call.
    let client = server.client();
    let cal = open_room(&client, ROOM, Some("cal"));
    expected.push(notice(Kind::Join, "cal joined the room"));
    observer.wait_for("join of cal", observed(&expected));
    drop(cal);
    expected.push(notice(Kind::Leave, "cal left the room"));
    observer.wait_for("leave of the cancelled cal", observed(&expected));

    // No user header: named by its first update, announced with it (to
    // itself too: it gets every event after its room-seq).
    let (mut sink, mut echoes) = open_room(&client, ROOM, None);
    block_on(sink.send((feed("ned", "hello"), WriteFlags::default()))).unwrap();
    let ack = bounded("ned's ack", WAIT, move || {
        let join = block_on(echoes.try_next()).unwrap().unwrap();
        let ack = block_on(echoes.try_next()).unwrap().unwrap();
        ((join, ack), echoes)
    });
    assert_eq!(ack.0 .0.message, "ned joined the room");
    assert_eq!(ack.0 .1.message, acknowledgement("ned", "hello"));
    expected.push(notice(Kind::Join, "ned joined the room"));
    expected.push(update("ned", "hello"));
    observer.wait_for("ned, named by its update", observed(&expected));
    drop((sink, ack.1));
    expected.push(notice(Kind::Leave, "ned left the room"));
    observer.wait_for("leave of ned", observed(&expected));

    // The last one out closes the room.
    drop(observer);
    wait_for_sample(metrics_port, "messenger_feed_participants", 0.0);
    wait_for_sample(metrics_port, "messenger_feed_rooms", 0.0);
}

/// Joins `room` as `user` and checks it is in: its first update is acknowledged.
fn joined(client: &LearningMessengerClient, room: &str, user: &str) -> Feed {
    let (mut sink, echoes) = open_room(client, room, Some(user));
    block_on(sink.send((feed(user, "in"), WriteFlags::default()))).unwrap();
    let (ack, echoes) = bounded("an ack", WAIT, move || {
        let mut echoes = echoes;
        (block_on(echoes.try_next()), echoes)
    });
    let ack = ack.unwrap_or_else(|e| panic!("{user} could not join {room}: {e:?}"));
    assert_eq!(ack.unwrap().message, acknowledgement(user, "in"));
    (sink, echoes)
}

/// The status that refuses a join of `room` as `user`.
fn refused(client: &LearningMessengerClient, room: &str, user: Option<&str>) -> RpcStatus {
    let (sink, echoes) = open_room(client, room, user);
    let (outcome, _sink) = bounded("a refusal", WAIT, move || {
        let mut echoes = echoes;
        (block_on(echoes.try_next()), sink)
    });
    failure(outcome)
}

#[test]
fn limits_and_bad_names_get_their_statuses() {
    let server = TestServer::with_config(ServerConfig {
        delay: Duration::ZERO,
        rooms: RoomLimits {
            max_rooms: 2,
            max_room_size: 2,
            ..RoomLimits::default()
        },
        ..test_config()
    });
    let client = server.client();
    let too_long = "x".repeat(65);
    for (room, user, why) in [
        ("", None, "the room name is empty"),
        (too_long.as_str(), None, "65 bytes long, more than 64"),
        (" lab", None, "starts or ends with a space"),
        ("lab", Some(""), "the user name is empty"),
        ("lab", Some(too_long.as_str()), "the user name is 65 bytes"),
    ] {
        let status = refused(&client, room, user);
        assert_eq!(
            status.code(),
            RpcStatusCode::INVALID_ARGUMENT,
            "{room:?} {user:?}: {status:?}"
        );
        assert!(status.message().contains(why), "{room:?}: {status:?}");
    }

    let first = joined(&client, "a", "a1");
    let second = joined(&client, "a", "a2");
    let full = refused(&client, "a", Some("a3"));
    assert_eq!(full.code(), RpcStatusCode::RESOURCE_EXHAUSTED);
    assert!(full.message().contains("room 'a' is full"), "{full:?}");
    let _b = joined(&client, "b", "b1");
    let too_many = refused(&client, "c", Some("c1"));
    assert_eq!(too_many.code(), RpcStatusCode::RESOURCE_EXHAUSTED);
    assert!(
        too_many.message().contains("maximum of 2 rooms"),
        "{too_many:?}"
    );

    // The server's own name cannot be borrowed in a room.
    let (mut sink, echoes) = open_room(&client, "b", Some("b2"));
    // The write may be refused already: the call is over, its status is read below.
    let written = block_on(sink.send((feed("System", "b1 left the room"), WriteFlags::default())));
    ok_if_call_over(written).unwrap();
    let (outcome, _sink) = bounded("a refused update", WAIT, move || {
        let mut echoes = echoes;
        (block_on(echoes.try_next()), sink)
    });
    assert_eq!(failure(outcome).code(), RpcStatusCode::INVALID_ARGUMENT);

    // Once room a is empty it is gone, and its place is free.
    drop((first, second));
    assert!(
        wait_until(WAIT, || server.running().calls_in_flight() == 1),
        "the calls of room a did not end"
    );
    let _c = joined(&client, "c", "c1");
}

/// An update of about a kilobyte, numbered: the never-reader's windows fill
/// within a few thousand of them, far before the end.
fn big_update(user: &str, i: usize) -> FeedUpdate {
    feed(user, &format!("{i:08} {}", "x".repeat(1000)))
}

fn number_of(message: &str) -> usize {
    message[..8].parse().expect("a numbered update")
}

/// What one active participant saw: its acks and the other's updates
/// counted (each checked in order), and the notices.
struct Talked {
    acks: usize,
    heard: usize,
    notices: Vec<String>,
}

/// Sends `count` updates in rounds of `window`: each round's updates, then
/// reads until they are acknowledged and `other`'s of the same round have
/// arrived. The room waits for no reader, so its participants pace
/// themselves: nobody's queue holds more than two rounds.
fn talk(
    (mut sink, mut echoes): Feed,
    me: &str,
    other: &str,
    count: usize,
    window: usize,
) -> Result<Talked, String> {
    sink.enhance_batch(true);
    let mut talked = Talked {
        acks: 0,
        heard: 0,
        notices: Vec::new(),
    };
    block_on(async {
        for start in (0..count).step_by(window) {
            let end = count.min(start + window);
            let batch = (start..end).map(|i| Ok((big_update(me, i), WriteFlags::default())));
            sink.send_all(&mut stream::iter(batch))
                .await
                .map_err(|e| format!("{me}: send: {e}"))?;
            while talked.acks < end || talked.heard < end {
                let update = echoes
                    .try_next()
                    .await
                    .map_err(|e| format!("{me}: receive: {e}"))?
                    .ok_or_else(|| format!("{me}: the feed ended"))?;
                match classify(&update) {
                    Kind::Ack => {
                        let expected = acknowledgement(me, &big_update(me, talked.acks).message);
                        if update.message != expected {
                            return Err(format!("{me}: ack {} out of order", talked.acks));
                        }
                        talked.acks += 1;
                    }
                    Kind::Update => {
                        if update.user != other || number_of(&update.message) != talked.heard {
                            return Err(format!(
                                "{me}: update {} was {}'s number {}",
                                talked.heard,
                                update.user,
                                number_of(&update.message)
                            ));
                        }
                        talked.heard += 1;
                    }
                    Kind::Join | Kind::Leave => talked.notices.push(update.message),
                }
            }
        }
        // The call's end can overtake the half-close; what was read is the outcome.
        learning_messenger::rpc::ok_if_call_over(sink.close().await)
            .map_err(|e| format!("{me}: close: {e}"))?;
        Ok(talked)
    })
}

#[test]
#[ignore = "slow: 100,000 updates through a room"]
fn a_participant_that_never_reads_is_removed_while_the_others_go_on_in_flat_memory() {
    const ROOM: &str = "busy";
    const EACH: usize = 50_000;
    let metrics_port = free_port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let server = ServerProcess::start(&["--delay-ms", "0", "--metrics-addr", &metrics_addr]);
    let sleeper_client = own_connection(&server.target);
    let (_sleeper_sink, sleeper) = open_room(&sleeper_client, ROOM, Some("sleeper"));
    wait_for_sample(metrics_port, "messenger_feed_participants", 1.0);

    // Both in the room before either speaks (each call lives as long as its client).
    let joined = |me: &'static str| {
        let client = own_connection(&server.target);
        let feed = open_room(&client, ROOM, Some(me));
        (me, client, feed)
    };
    let (ann, bob) = (joined("ann"), joined("bob"));
    wait_for_sample(metrics_port, "messenger_feed_participants", 3.0);
    let talker = |(me, client, feed): (&'static str, LearningMessengerClient, Feed), other| {
        std::thread::spawn(move || {
            let _client = client;
            talk(feed, me, other, EACH, 200)
        })
    };
    let ann = talker(ann, "bob");
    let bob = talker(bob, "ann");
    // The sleeper is dropped early; from then on memory must stay flat.
    wait_for_sample(metrics_port, "messenger_feed_lagging_removed_total", 1.0);
    let after_removal = server.status();
    let watcher = PeakWatcher::start(server.pid());
    let (ann, bob) = bounded("the exchange", EXCHANGE, move || (ann.join(), bob.join()));
    let peak = watcher.stop();
    for (name, talked) in [("ann", ann), ("bob", bob)] {
        let talked = talked
            .expect("talker thread")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((talked.acks, talked.heard), (EACH, EACH), "{name}");
        let removal = |n: &String| {
            n.starts_with("sleeper was removed from the room: fell ")
                && n.ends_with(" updates behind the room")
        };
        assert!(
            talked.notices.iter().any(removal),
            "{name} was not told: {:?}",
            talked.notices
        );
    }
    let growth_mib = (peak.rss_kib.saturating_sub(after_removal.rss_kib)) as f64 / 1024.0;
    assert!(
        growth_mib < 32.0,
        "server RSS grew {growth_mib:.1} MiB during the exchange (from {:.1} MiB)",
        after_removal.rss_mib()
    );

    // What reached the sleeper before it fell behind, then the status saying why.
    let outcome = bounded("the sleeper's call", WAIT, move || {
        let mut sleeper = sleeper;
        loop {
            match block_on(sleeper.try_next()) {
                Ok(Some(_)) => continue,
                other => return other,
            }
        }
    });
    // Its status if the window let it through, else the stream is cut
    // (RST_STREAM: CANCELLED here), so that it holds nothing.
    let status = failure(outcome);
    match status.code() {
        RpcStatusCode::RESOURCE_EXHAUSTED => assert!(
            status
                .message()
                .contains("updates behind the room for 5000 ms"),
            "{status:?}"
        ),
        code => assert_eq!(code, RpcStatusCode::CANCELLED, "{status:?}"),
    }
    wait_for_sample(metrics_port, "messenger_feed_rooms", 0.0);
}

/// A participant that stops granting HTTP/2 window (a raw h2 client that
/// reads what frames come but never sends WINDOW_UPDATE) holds its room's
/// senders for the lag bound and is then removed; its stream must end at
/// once (RST_STREAM, or its status), not stay open holding its queue.
#[test]
fn a_removed_laggard_that_grants_no_window_is_cut_at_once() {
    use protobuf::Message;
    const ROOM: &str = "stall";
    let server = TestServer::with_config(ServerConfig {
        delay: Duration::ZERO,
        rooms: RoomLimits {
            queue: 16,
            lag: Duration::from_millis(1000),
            ..RoomLimits::default()
        },
        ..test_config()
    });
    let client = server.client();
    let mut headers = MetadataBuilder::new();
    headers.add_str(ROOM_HEADER, ROOM).unwrap();
    headers.add_str(USER_HEADER, "fast").unwrap();
    // fast is in the room first, so that it sees slow join.
    // The client is kept: a call does not keep its channel alive.
    let client = client.with_options(CallOption::default().headers(headers.build()));
    let (mut sink, mut echoes) = client.collaborative_feed_async().unwrap();
    let saw = |echoes: &mut ClientDuplexReceiver<FeedUpdate>, text: &str| loop {
        let update = block_on(echoes.try_next()).unwrap().expect("still open");
        if update.message.contains(text) {
            return;
        }
    };
    block_on(sink.send((feed("fast", "here"), WriteFlags::default()))).unwrap();
    saw(&mut echoes, "fast's update: here");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (stalled_tx, stalled_rx) = mpsc::channel::<String>();
    let target = server.target.clone();
    // The stalled reader: joins as `slow`, takes every frame it is sent,
    // releases no capacity (so sends no WINDOW_UPDATE), and reports how its
    // stream ended.
    let reader = std::thread::spawn(move || {
        runtime.block_on(async move {
            let tcp = tokio::net::TcpStream::connect(&target).await.unwrap();
            let (client, connection) = h2::client::handshake(tcp).await.unwrap();
            tokio::spawn(connection);
            let mut client = client.ready().await.unwrap();
            let request = http::Request::post(format!(
                "http://{target}/messenger.LearningMessenger/CollaborativeFeed"
            ))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header(ROOM_HEADER, ROOM)
            .header(USER_HEADER, "slow")
            .body(())
            .unwrap();
            let (response, _requests) = client.send_request(request, false).unwrap();
            let mut body = response.await.unwrap().into_body();
            let mut bytes = 0;
            let end = loop {
                match body.data().await {
                    Some(Ok(chunk)) => bytes += chunk.len(),
                    Some(Err(e)) => break format!("reset after {bytes} bytes: {e}"),
                    None => {
                        let trailers = body.trailers().await;
                        break format!("ended after {bytes} bytes: {trailers:?}");
                    }
                }
            };
            let _ = stalled_tx.send(end);
        })
    });
    saw(&mut echoes, "slow joined the room");
    let big = "x".repeat(4000);
    let sender = std::thread::spawn(move || {
        let updates = (0..200).map(move |i| {
            let update = feed("fast", &format!("{i} {big}"));
            assert!(update.compute_size() < 64 << 10);
            Ok((update, WriteFlags::default()))
        });
        let sent = block_on(sink.send_all(&mut stream::iter(updates)));
        (sent, sink)
    });
    // Past 64 KiB of window and 16 queued updates, `slow` stops everything
    // for the lag bound, then is removed.
    saw(&mut echoes, "slow was removed from the room");
    let removed = std::time::Instant::now();
    let ended = stalled_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the removed participant's stream ended");
    let took = removed.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "ended {took:?} after the removal: {ended}"
    );
    let (sent, mut sink) = sender.join().unwrap();
    sent.expect("the sender went on");
    let _ = block_on(sink.close());
    reader.join().unwrap();
}

/// A room takes updates of at most --room-update-bytes (64 KiB by default):
/// a larger one ends its call with RESOURCE_EXHAUSTED saying the limit,
/// while the echo without a room still takes it (--max-message-bytes).
#[test]
fn a_room_update_past_its_byte_limit_is_resource_exhausted_and_the_echo_keeps_its_own() {
    let server = TestServer::start();
    let client = server.client();
    let big = "x".repeat(100 << 10);
    let mut headers = MetadataBuilder::new();
    headers.add_str(ROOM_HEADER, "bytes").unwrap();
    headers.add_str(USER_HEADER, "ann").unwrap();
    // The client is kept: a call does not keep its channel alive.
    let client = client.with_options(CallOption::default().headers(headers.build()));
    let (mut sink, mut updates) = client.collaborative_feed_async().unwrap();
    let _ = block_on(sink.send((feed("ann", &big), WriteFlags::default())));
    let status = failure(block_on(async {
        while updates.try_next().await?.is_some() {}
        Ok::<(), grpcio::Error>(())
    }));
    assert_eq!(
        status.code(),
        RpcStatusCode::RESOURCE_EXHAUSTED,
        "{status:?}"
    );
    assert!(
        status.message().contains("--room-update-bytes"),
        "{status:?}"
    );
    let echo_client = server.client();
    let (mut sink, mut echoes) = echo_client.collaborative_feed_async().unwrap();
    block_on(sink.send((feed("ann", &big), WriteFlags::default()))).unwrap();
    let echo = block_on(echoes.try_next()).unwrap().expect("an echo");
    assert_eq!(echo.message, acknowledgement("ann", &big));
    let _ = block_on(sink.close());
}
