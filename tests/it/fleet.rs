//! Several replicas as real `server` processes on 127.0.0.1, 127.0.0.2, …
//! (one port), clients balancing over them: round_robin's spread, a replica
//! killed under load, a rolling restart with drains, and connection age
//! bringing clients to a replica started after they connected.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures::executor::block_on;
use futures::TryStreamExt;
use grpcio::{ChannelBuilder, EnvBuilder};
use learning_messenger::client::calls::served_by;
use learning_messenger::client::{self, Balancing, ConnectOptions, LbPolicy};
use learning_messenger::proto::messenger::{StatusRequest, TopicRequest};
use learning_messenger::rpc::messenger::LearningMessengerClient;
use messenger_lab::demo::TOPIC;
use messenger_testkit::checks::{check_learning_update, check_status};

use crate::support::{free_port, lines_of, wait_until, ServerProcess, WAIT};

/// Deadline of each call: generous, for a loaded 2-core machine.
const CALL_DEADLINE: Duration = Duration::from_secs(20);

/// Replicas `r1`…`rN` of one server command line, replica K on 127.0.0.K:PORT.
struct Fleet {
    port: u16,
    args: Vec<String>,
    replicas: Vec<Option<ServerProcess>>,
}

impl Fleet {
    fn start(count: usize, args: &[&str]) -> Fleet {
        let mut fleet = Fleet {
            port: free_port(),
            args: args.iter().map(|arg| arg.to_string()).collect(),
            replicas: (0..count).map(|_| None).collect(),
        };
        for k in 0..count {
            fleet.start_replica(k);
        }
        fleet
    }

    fn name(k: usize) -> String {
        format!("r{}", k + 1)
    }

    fn addr(&self, k: usize) -> String {
        format!("127.0.0.{}:{}", k + 1, self.port)
    }

    fn start_replica(&mut self, k: usize) {
        let name = Fleet::name(k);
        let mut args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        args.extend(["--replica-name", &name]);
        self.replicas[k] = Some(ServerProcess::start_at(&self.addr(k), &args));
    }

    fn replica(&mut self, k: usize) -> &mut ServerProcess {
        self.replicas[k].as_mut().expect("replica running")
    }

    /// Every replica's address, as a static `ipv4:` list.
    fn target(&self) -> String {
        let addrs: Vec<String> = (0..self.replicas.len()).map(|k| self.addr(k)).collect();
        format!("ipv4:{}", addrs.join(","))
    }

    /// A round_robin client over every replica, retrying UNAVAILABLE.
    fn client(&self) -> LearningMessengerClient {
        client::connect(&ConnectOptions {
            balancing: Balancing {
                lb: LbPolicy::RoundRobin,
                max_attempts: 5,
                service_config: None,
            },
            timeout: Some(CALL_DEADLINE),
            ..ConnectOptions::new(self.target())
        })
        .expect("client connects")
    }
}

/// One unary call: the replica that answered, or why it failed.
fn status(client: &LearningMessengerClient) -> Result<String, String> {
    block_on(async {
        let mut call = client
            .get_learning_status_async(&StatusRequest::default())
            .map_err(|e| e.to_string())?;
        let replica = served_by(call.headers().await.map_err(|e| e.to_string())?)
            .ok_or("no x-served-by header")?
            .to_owned();
        let response = call.message().await.map_err(|e| e.to_string())?;
        check_status(&response)?;
        Ok(replica)
    })
}

/// One StreamLearnings call read to its end: the replica, or why it was cut.
fn stream(client: &LearningMessengerClient) -> Result<String, String> {
    block_on(async {
        let request = TopicRequest {
            topic: TOPIC.to_owned(),
            ..Default::default()
        };
        let mut updates = client
            .stream_learnings_async(&request)
            .map_err(|e| e.to_string())?;
        let replica = served_by(updates.headers().await.map_err(|e| e.to_string())?)
            .ok_or("no x-served-by header")?
            .to_owned();
        let mut received = 0;
        while let Some(update) = updates.try_next().await.map_err(|e| e.to_string())? {
            check_learning_update(TOPIC, received, &update)?;
            received += 1;
        }
        match received {
            4 => Ok(replica),
            n => Err(format!("{n} of 4 updates")),
        }
    })
}

/// What a load saw: each call's start and end, its replica or its failure.
struct Outcome {
    started: Instant,
    at: Instant,
    result: Result<String, String>,
}

/// Threads that each make one call after another (a short pause between)
/// until stopped; what they saw so far can be waited on.
struct Load {
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    workers: Vec<JoinHandle<()>>,
}

impl Load {
    fn new() -> Load {
        Load {
            stop: Arc::new(AtomicBool::new(false)),
            outcomes: Arc::default(),
            workers: Vec::new(),
        }
    }

    fn add(
        mut self,
        workers: usize,
        client: impl Fn() -> LearningMessengerClient,
        call: fn(&LearningMessengerClient) -> Result<String, String>,
    ) -> Load {
        for _ in 0..workers {
            let (client, stop) = (client(), self.stop.clone());
            let outcomes = self.outcomes.clone();
            self.workers.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let result = call(&client);
                    outcomes.lock().unwrap().push(Outcome {
                        started,
                        at: Instant::now(),
                        result,
                    });
                    std::thread::sleep(Duration::from_millis(10));
                }
            }));
        }
        self
    }

    /// Waits until what the load saw so far satisfies `done`, or fails saying `what`.
    fn wait_for(&self, what: &str, done: impl Fn(&[Outcome]) -> bool) {
        let seen = wait_until(WAIT, || done(&self.outcomes.lock().unwrap()));
        let outcomes = self.outcomes.lock().unwrap();
        assert!(
            seen,
            "no {what} within {WAIT:?}: {:?} of {} calls; failures {:?}",
            per_replica(&outcomes, None),
            outcomes.len(),
            failures(&outcomes)
        );
    }

    fn stop(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::Relaxed);
        for worker in self.workers {
            worker.join().expect("load worker");
        }
        std::mem::take(&mut *self.outcomes.lock().unwrap())
    }
}

/// Calls answered per replica, among `outcomes` started after `since` (all: none).
fn per_replica(outcomes: &[Outcome], since: Option<Instant>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for outcome in outcomes
        .iter()
        .filter(|o| since.is_none_or(|since| o.started > since))
    {
        if let Ok(replica) = &outcome.result {
            *counts.entry(replica.clone()).or_default() += 1;
        }
    }
    counts
}

/// The failures among `outcomes`, for an assertion message.
fn failures(outcomes: &[Outcome]) -> Vec<&str> {
    outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err().map(String::as_str))
        .collect()
}

/// Calls `status` until every replica in `names` has answered one (each
/// subchannel connected and health-checked), or panics after `timeout`.
fn until_all_answer(client: &LearningMessengerClient, names: &[String], timeout: Duration) {
    let mut seen = BTreeMap::new();
    let all = wait_until(timeout, || {
        if let Ok(replica) = status(client) {
            seen.insert(replica, ());
        }
        names.iter().all(|name| seen.contains_key(name))
    });
    assert!(all, "not every replica of {names:?} answered: {seen:?}");
}

#[test]
fn round_robin_spreads_300_calls_over_3_replicas() {
    let fleet = Fleet::start(3, &["--delay-ms", "0"]);
    let client = fleet.client();
    let names: Vec<String> = (0..3).map(Fleet::name).collect();
    until_all_answer(&client, &names, Duration::from_secs(30));
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..300 {
        let replica = status(&client).expect("call answered");
        *counts.entry(replica).or_default() += 1;
    }
    assert_eq!(counts.len(), 3, "{counts:?}");
    for (replica, calls) in &counts {
        // Between 20% and 47% of the 300 calls each.
        assert!((60..=141).contains(calls), "{replica}: {counts:?}");
    }
}

#[test]
#[ignore = "slow: a replica killed under load"]
fn a_replica_killed_under_load_fails_no_call_and_the_others_take_over() {
    let mut fleet = Fleet::start(3, &["--delay-ms", "0"]);
    let names: Vec<String> = (0..3).map(Fleet::name).collect();
    until_all_answer(&fleet.client(), &names, Duration::from_secs(30));
    let load = Load::new().add(4, || fleet.client(), status);
    load.wait_for("call answered by every replica", |outcomes| {
        per_replica(outcomes, None).len() == 3
    });
    // Killed and reaped: no call started from now on can reach it.
    fleet.replica(1).kill();
    let killed_at = Instant::now();
    let taken_over = |outcomes: &[Outcome]| {
        let after = per_replica(outcomes, Some(killed_at));
        ["r1", "r3"]
            .iter()
            .all(|r| after.get(*r).is_some_and(|&calls| calls >= 10))
    };
    load.wait_for("take-over by r1 and r3 (ten calls each)", taken_over);
    let outcomes = load.stop();

    assert_eq!(failures(&outcomes), Vec::<&str>::new(), "calls failed");
    let after = per_replica(&outcomes, Some(killed_at));
    assert!(
        !after.contains_key("r2"),
        "a dead replica answered: {after:?}"
    );
}

#[test]
#[ignore = "slow: a rolling restart of 3 replicas"]
fn a_rolling_restart_with_drains_fails_no_call_and_cuts_no_stream() {
    // Streams of 4 updates 100 ms apart; a drain long enough for clients'
    // health checks to see NOT_SERVING, a grace long enough for any stream.
    let args = [
        "--delay-ms",
        "100",
        "--drain-ms",
        "1500",
        "--shutdown-grace-ms",
        "10000",
    ];
    let mut fleet = Fleet::start(3, &args);
    let names: Vec<String> = (0..3).map(Fleet::name).collect();
    until_all_answer(&fleet.client(), &names, Duration::from_secs(30));
    let load = Load::new()
        .add(3, || fleet.client(), status)
        .add(2, || fleet.client(), stream);
    let probe = fleet.client();
    load.wait_for("ten calls before the restarts", |outcomes| {
        outcomes.len() >= 10
    });
    for k in 0..3 {
        let replica = fleet.replica(k);
        replica.signal("TERM");
        let exit = replica
            .wait_exit(Duration::from_secs(30))
            .expect("the replica exits");
        let log = replica.log();
        assert_eq!(exit.code(), Some(0), "{exit:?}; log:\n{log}");
        assert!(log.contains("draining: health NOT_SERVING"), "{log}");
        assert!(log.contains("stopped (Drained)"), "{log}");
        fleet.start_replica(k);
        // Back in the rotation before the next one goes.
        until_all_answer(&probe, &names, Duration::from_secs(30));
    }
    let restarted = Instant::now();
    load.wait_for("ten calls after the restarts", |outcomes| {
        outcomes.iter().filter(|o| o.started > restarted).count() >= 10
    });
    let outcomes = load.stop();
    assert_eq!(failures(&outcomes), Vec::<&str>::new(), "calls failed");
    assert!(outcomes.len() > 50, "only {} calls", outcomes.len());
}

#[test]
#[ignore = "slow: connection age moves clients to a new replica"]
fn with_a_connection_age_a_replica_started_later_gets_calls_within_seconds() {
    // Two replicas on one address (C-core binds with SO_REUSEPORT): the kernel
    // spreads new connections over them, as a Kubernetes Service spreads
    // them over pods. A client's connection stays where it is until its age ends it.
    let age = [
        "--delay-ms",
        "0",
        "--max-connection-age-ms",
        "1000",
        "--max-connection-age-grace-ms",
        "5000",
    ];
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let first = ServerProcess::start_at(&addr, &[&age[..], &["--replica-name", "old"]].concat());
    // Four clients, each its own connection (a subchannel pool of its own), pick_first.
    let env = Arc::new(EnvBuilder::new().cq_count(1).build());
    let connect = || {
        let channel = ChannelBuilder::new(env.clone())
            .use_local_subchannel_pool(true)
            .connect(&first.target);
        LearningMessengerClient::new(channel)
            .with_options(grpcio::CallOption::default().timeout(CALL_DEADLINE))
    };
    let load = Load::new().add(4, connect, status);
    load.wait_for("call answered by the first replica", |outcomes| {
        per_replica(outcomes, None).contains_key("old")
    });
    let second = ServerProcess::start_at(&addr, &[&age[..], &["--replica-name", "new"]].concat());
    let started = Instant::now();
    let answered_by_new = |o: &Outcome| o.result.as_deref() == Ok("new");
    load.wait_for("call answered by the new replica", |outcomes| {
        outcomes.iter().any(answered_by_new)
    });
    let outcomes = load.stop();

    assert_eq!(failures(&outcomes), Vec::<&str>::new(), "calls failed");
    let first_new = outcomes
        .iter()
        .filter(|o| answered_by_new(o))
        .map(|o| o.at)
        .min()
        .expect("a call answered by the new replica");
    // The age (1 s, give or take a tenth), a reconnect, and a loaded machine's slack.
    assert!(
        first_new - started < Duration::from_secs(10),
        "the new replica's first call came {:?} after it started: {:?}; its log:\n{}",
        first_new - started,
        per_replica(&outcomes, Some(started)),
        second.log()
    );
    drop(first);
}

/// `scripts/fleet.sh 2`, as a user runs it (RUST_LOG=warn, which hides the
/// servers' start-up lines): it prints a target whose replicas both answer,
/// and SIGTERM stops every replica.
#[test]
fn fleet_script_prints_a_target_that_balances_and_stops_every_replica() {
    use std::process::{Command, Stdio};

    let port = free_port();
    let mut fleet = Command::new("bash")
        .arg(crate::support::project_root().join("scripts/fleet.sh"))
        .arg("2")
        .args(["--delay-ms", "0"])
        .env("PORT", port.to_string())
        .env("SERVER", crate::support::SERVER_BIN)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("fleet.sh starts");
    // If an assertion fails, SIGTERM still stops the script and its replicas.
    struct StopOnDrop(Option<u32>);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            if let Some(pid) = self.0 {
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
        }
    }
    let mut guard = StopOnDrop(Some(fleet.id()));
    let line_rx = lines_of(fleet.stdout.take().unwrap());
    let target = line_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("fleet.sh prints its target");
    let expected = format!("target: ipv4:127.0.0.1:{port},127.0.0.2:{port}");
    assert_eq!(target, expected);

    let client = client::connect(&ConnectOptions {
        balancing: Balancing {
            lb: LbPolicy::RoundRobin,
            ..Balancing::new()
        },
        timeout: Some(CALL_DEADLINE),
        ..ConnectOptions::new(target.trim_start_matches("target: ").to_owned())
    })
    .expect("client connects");
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..100 {
        seen.insert(status(&client).expect("a replica answers"));
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen, ["r1".to_owned(), "r2".to_owned()].into());
    drop(client);

    let sent = Command::new("kill")
        .args(["-TERM", &fleet.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let mut exit = None;
    assert!(
        wait_until(Duration::from_secs(30), || {
            exit = fleet.try_wait().expect("try_wait");
            exit.is_some()
        }),
        "fleet.sh still running 30 s after SIGTERM"
    );
    guard.0 = None;
    assert_eq!(exit.and_then(|status| status.code()), Some(143));
    for k in 1..=2 {
        let addr = format!("127.0.0.{k}:{port}");
        assert!(
            std::net::TcpStream::connect(&addr).is_err(),
            "replica r{k} ({addr}) still listening after the fleet stopped"
        );
    }
}
