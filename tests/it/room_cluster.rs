//! Rooms on a real Redis Cluster (three masters the test starts with
//! `redis-server --cluster-enabled yes` and `redis-cli --cluster create`),
//! shared by three replicas (`--rooms redis+cluster://...`): rooms spread
//! over the masters, each room's events on its own shard only (SPUBLISH and
//! SSUBSCRIBE), one order, recovery across a replica restart, OUT_OF_RANGE,
//! a master restarted empty, and a failover to a replica.

use crate::room_store::{
    assert_contiguous, one_order, out_of_range, recovery, store_restarted_empty, Fleet,
};
use crate::rooms::WAIT;
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
