//! Rooms on a real Redis Cluster (three masters the test starts with
//! `redis-server --cluster-enabled yes` and `redis-cli --cluster create`),
//! shared by three replicas (`--rooms redis+cluster://...`): rooms spread
//! over the masters, each room's events on its own shard only (SPUBLISH and
//! SSUBSCRIBE), one order, recovery across a replica restart, OUT_OF_RANGE,
//! a master restarted empty, a failover to a replica, and a killed master's
//! replica taking over.

use std::time::Duration;

use grpcio::RpcStatusCode;

use crate::room_store::{
    assert_contiguous, json_events, one_order, out_of_range, recovery, store_restarted_empty,
    Event, Fleet, Raw, TTL_MS,
};
use crate::rooms::{Chatter, WAIT};
use crate::support::{python_stubs, redis_info, wait_until, RedisCluster};

#[test]
fn rooms_spread_over_the_masters_and_stay_on_their_shards() {
    let cluster = RedisCluster::start(3);
    let fleet = Fleet::on(&cluster.url(), 3, &[]);
    let rooms: Vec<String> = (0..12).map(|k| format!("room{k}")).collect();
    let mut people: Vec<_> = rooms
        .iter()
        .enumerate()
        .map(|(k, room)| fleet.raw(k % 3, room, "ann", None))
        .collect();
    for (k, ann) in people.iter_mut().enumerate() {
        ann.say(&format!("hello {k}"));
        ann.wait_for_text(&format!("System: Acknowledged ann's update: hello {k}"));
    }
    let channels: Vec<Option<u16>> = rooms
        .iter()
        .map(|room| cluster.node_with_channel(&format!("room:{{{room}}}")))
        .collect();
    assert!(
        channels.iter().all(Option::is_some),
        "every room is subscribed on a master: {channels:?}"
    );
    let mut used: Vec<u16> = channels.into_iter().flatten().collect();
    used.sort_unstable();
    used.dedup();
    assert!(used.len() >= 2, "rooms on one master only: {used:?}");
    let mut with_keys = 0;
    for port in cluster.masters() {
        // Nothing was published cluster-wide (PUBLISH): no classic channels.
        assert_eq!(redis_info(port, &["PUBSUB", "CHANNELS"]).trim(), "");
        let keys: u32 = redis_info(port, &["DBSIZE"]).trim().parse().unwrap();
        with_keys += usize::from(keys > 0);
    }
    assert!(with_keys >= 2, "the rooms' keys on {with_keys} master(s)");
    for mut ann in people {
        ann.leave();
    }
}

#[test]
fn three_replicas_on_a_cluster_share_a_room_in_one_order() {
    let stubs = tempfile::tempdir().unwrap();
    python_stubs(stubs.path());
    let cluster = RedisCluster::start(3);
    one_order(&Fleet::on(&cluster.url(), 3, &[]), stubs.path());
}

#[test]
fn a_participant_recovers_across_a_replica_restart_on_a_cluster() {
    let stubs = tempfile::tempdir().unwrap();
    python_stubs(stubs.path());
    let cluster = RedisCluster::start(3);
    recovery(&mut Fleet::on(&cluster.url(), 3, &[]), stubs.path());
}

#[test]
fn room_since_out_of_the_history_is_out_of_range_on_a_cluster() {
    let stubs = tempfile::tempdir().unwrap();
    python_stubs(stubs.path());
    let cluster = RedisCluster::start(3);
    let fleet = Fleet::on(&cluster.url(), 2, &["--room-history", "5"]);
    out_of_range(&fleet, stubs.path());
}

#[test]
fn a_master_restarted_empty_gives_unavailable_then_a_clear_out_of_range() {
    let mut cluster = RedisCluster::start(3);
    let mut fleet = Fleet::on(&cluster.url(), 2, &[]);
    store_restarted_empty(&mut fleet, |_| {
        let master = cluster
            .node_with_channel("room:{lab}")
            .expect("room lab is subscribed on its master");
        cluster.restart_empty(master);
    });
}

/// A replica is added to each master, and the shard of a busy room fails
/// over to its replica (`CLUSTER FAILOVER`): the participants get every
/// update once, in order, or are told to recover (UNAVAILABLE) and do.
#[test]
fn a_failover_to_a_replica_loses_nothing_silently() {
    fail_over(|cluster, _master, replica| cluster.fail_over_to(replica, &[]));
}

/// The master of a busy room's shard is killed once its replica has all it
/// wrote, and the replica takes over (`CLUSTER FAILOVER FORCE`: it cannot
/// ask its master): every update once, in order (a call that ends with
/// UNAVAILABLE while no master serves the slot rejoins with room-since).
#[test]
fn a_killed_masters_replica_takes_over_and_loses_nothing_silently() {
    fail_over(|cluster, master, replica| {
        cluster.wait_replicated(master, replica);
        cluster.kill(master);
        cluster.fail_over_to(replica, &["FORCE"]);
    });
}

/// ann (raw, replica r1) and bob (`client chat --room`, replica r2) in room
/// "lab" on a cluster whose masters each have a replica; `fail_over` (given
/// the cluster, the room's master and its replica) makes the replica the
/// master. ann's updates before and after reach bob once each, in order
/// (ann rejoins with room-since when her call ends); the room's channel is
/// subscribed on the new master, and presence is renewed there (nobody is
/// swept once the TTL has passed).
fn fail_over(fail_over: impl FnOnce(&mut RedisCluster, u16, u16)) {
    let mut cluster = RedisCluster::start(3);
    let fleet = Fleet::on(&cluster.url(), 2, &[]);
    let mut ann = fleet.raw(0, "lab", "ann", None);
    let bob = fleet.rust(1, "lab", "bob");
    ann.wait_for_text("System: bob joined the room");
    let master = cluster
        .node_with_channel("room:{lab}")
        .expect("room lab is subscribed on its master");
    let mut replicas = Vec::new();
    for port in cluster.masters() {
        replicas.push((port, cluster.add_replica(port)));
    }
    let replica = replicas
        .iter()
        .find(|(of, _)| *of == master)
        .map(|(_, replica)| *replica)
        .unwrap();
    for i in 0..20 {
        ann.say(&format!("before {i}"));
    }
    ann.wait_for_text("System: Acknowledged ann's update: before 19");
    let since = ann.last_seq();
    fail_over(&mut cluster, master, replica);
    assert!(cluster.masters().contains(&replica));
    let mut ann = say_until_acknowledged(&fleet, ann, "after", 20, since);
    let last = "ann: after 19".to_owned();
    bob.wait_for("every update, across the failover", |lines| {
        json_events(lines).iter().any(|(_, t)| *t == last)
    });
    let expected: Vec<String> = (0..20)
        .map(|i| format!("ann: before {i}"))
        .chain((0..20).map(|i| format!("ann: after {i}")))
        .collect();
    // bob's client reconnects with room-since if its call ends: still once each.
    assert_eq!(updates_of_ann(&bob), expected);
    let moved = wait_until(WAIT, || {
        cluster.node_with_channel("room:{lab}") == Some(replica)
    });
    assert!(
        moved,
        "room lab is not subscribed on its shard's new master"
    );
    // Presence: two TTLs on, each replica has renewed its participant on the
    // new master, or the heartbeats would have swept them (a leave notice,
    // ann's call ended, her next update refused).
    let heard = bob.lines().len();
    std::thread::sleep(2 * Duration::from_millis(TTL_MS.parse().unwrap()));
    let ended = ann.ended_within(Duration::ZERO);
    assert!(ended.is_none(), "ann's call ended: {ended:?}");
    ann.say("still here");
    ann.wait_for_text("System: Acknowledged ann's update: still here");
    bob.wait_for("ann's update after two TTLs", |lines| {
        json_events(lines)
            .iter()
            .any(|(_, t)| t == "ann: still here")
    });
    let later: Vec<Event> = json_events(&bob.lines()[heard..]);
    assert!(
        later.iter().all(|(_, t)| !t.ends_with(" left the room")),
        "a participant was swept: {later:?}"
    );
    assert_contiguous("bob", &json_events(&bob.lines()));
    ann.leave();
}

/// `ann` says `{what} 0` .. `{what} {count - 1}`, each once: an update is
/// acknowledged, or her call ends (UNAVAILABLE) and she rejoins with
/// room-since and says the rest (an update whose acknowledgement the ended
/// call missed is found in her backlog). Returns her call.
fn say_until_acknowledged(fleet: &Fleet, ann: Raw, what: &str, count: usize, since: u64) -> Raw {
    let mut ann = ann;
    let mut since = since;
    let mut sent = 0;
    while sent < count {
        ann.say(&format!("{what} {sent}"));
        let acknowledgement = format!("System: Acknowledged ann's update: {what} {sent}");
        let settled = wait_until(WAIT, || {
            ann.texts().contains(&acknowledgement) || ann.ended_within(Duration::ZERO).is_some()
        });
        assert!(settled, "{what} {sent}: neither acknowledged nor ended");
        if ann.texts().contains(&acknowledgement) {
            sent += 1;
            since = ann.last_seq();
            continue;
        }
        let status = ann.ended_within(Duration::ZERO).unwrap();
        let status = status.expect_err("an error");
        assert_eq!(status.code(), RpcStatusCode::UNAVAILABLE, "{status:?}");
        ann = rejoin(fleet, 0, "lab", "ann", since);
        let missed = format!("ann: {what} {sent}");
        if ann.texts().contains(&missed) {
            sent += 1;
        }
        if ann.events().last().is_some() {
            since = ann.last_seq();
        }
    }
    ann
}

/// `user` joins `room` on replica `k` with room-since `since`, again and
/// again while the join is refused with UNAVAILABLE (the store, or its
/// shard, is not back yet): the first call whose backlog comes.
fn rejoin(fleet: &Fleet, k: usize, room: &str, user: &str, since: u64) -> Raw {
    let notice = format!("System: {user} joined the room");
    let mut joined = None;
    let back = wait_until(WAIT, || {
        let raw = Raw::join(fleet.target(k), room, user, Some(since));
        let settled = wait_until(WAIT, || {
            raw.texts().contains(&notice) || raw.ended_within(Duration::ZERO).is_some()
        });
        assert!(settled, "{user}'s rejoin neither came in nor ended");
        match raw.ended_within(Duration::ZERO) {
            None => {
                joined = Some(raw);
                true
            }
            Some(Err(status)) if status.code() == RpcStatusCode::UNAVAILABLE => false,
            Some(other) => panic!("{user}'s rejoin ended with {other:?}"),
        }
    });
    assert!(
        back,
        "replica r{} never took {user} back into {room}",
        k + 1
    );
    joined.unwrap()
}

/// The updates of ann that `bob` (`client chat --json`) received, in order.
fn updates_of_ann(bob: &Chatter) -> Vec<String> {
    json_events(&bob.lines())
        .into_iter()
        .map(|(_, t)| t)
        .filter(|t| t.starts_with("ann: "))
        .collect()
}

/// The slot of a busy room moves to another master while its participants
/// talk: the scripts follow MOVED, the subscriptions move with the slot (the
/// old master unsubscribes them), and nobody misses or repeats an update.
#[test]
fn a_rooms_slot_moving_to_another_master_loses_nothing() {
    let cluster = RedisCluster::start(3);
    let fleet = Fleet::on(&cluster.url(), 2, &[]);
    let mut ann = fleet.raw(0, "lab", "ann", None);
    let bob = fleet.raw(1, "lab", "bob", None);
    ann.wait_for_text("System: bob joined the room");
    for i in 0..20 {
        ann.say(&format!("update {i}"));
    }
    ann.wait_for_text("System: Acknowledged ann's update: update 19");
    let before = cluster
        .node_with_channel("room:{lab}")
        .expect("room lab is subscribed on its master");
    let to = cluster
        .masters()
        .into_iter()
        .find(|port| *port != before)
        .unwrap();
    let from = cluster.move_slot_of("room:{lab}:seq", to);
    assert_eq!(from, before);
    for i in 20..40 {
        ann.say(&format!("update {i}"));
    }
    bob.wait_for_text("ann: update 39");
    let moved = wait_until(WAIT, || cluster.node_with_channel("room:{lab}") == Some(to));
    assert!(moved, "the subscriptions did not follow the slot");
    let events = bob.events();
    assert_contiguous("bob", &events);
    let updates: Vec<String> = events
        .into_iter()
        .map(|(_, t)| t)
        .filter(|t| t.starts_with("ann: "))
        .collect();
    let sent: Vec<String> = (0..40).map(|i| format!("ann: update {i}")).collect();
    assert_eq!(updates, sent);
    ann.leave();
}
