//! Presence across the fleet: every third of the TTL, a replica renews its
//! participants in each room it has some in, and announces (once, whichever
//! replica gets there first) those whose replica stopped renewing them. One
//! of its own found gone (the store lost it, or this replica was too long
//! without the store) has been announced as left: its call ends.
//!
//! The beats keep a fixed schedule, and each room's is its own task: a
//! thousand rooms beat at once (their round trips overlap on the one
//! connection), so a slow round trip never pushes the others past the TTL.
//! A beat that fails is tried again until the next is due.

use std::sync::Arc;

use log::warn;
use messenger_lab::room::SINCE_HEADER;
use tokio::time::Instant;

use super::super::store::unavailable;
use super::link::PING_EVERY;
use super::remote::RemoteRoom;
use super::scripts::heartbeat_reply;
use super::Shared;

pub(super) async fn run(shared: Arc<Shared>) {
    let every = shared.limits.presence_ttl / 3;
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticks.tick().await;
        if !shared.link.is_up() {
            continue;
        }
        let next = Instant::now() + every;
        for room in shared.rooms() {
            let shared = shared.clone();
            shared
                .runtime
                .clone()
                .spawn(async move { beat(&shared, &room, next).await });
        }
    }
}

/// Renews this replica's participants in `room`; a beat that fails is tried
/// again until the `next` one is due: a second or two without the store (a
/// cluster's failover, a reconnect) must not cost them their presence.
async fn beat(shared: &Arc<Shared>, room: &Arc<RemoteRoom>, next: Instant) {
    let value = loop {
        let ids = room.local.lock().ids();
        if ids.is_empty() {
            return;
        }
        let ids: Vec<&str> = ids.iter().map(|id| &**id).collect();
        let seen = shared.seen(&room.name);
        let call = shared
            .scripts
            .heartbeat(&room.keys, shared.terms, seen.as_ref(), &ids);
        match shared.link.run(call).await {
            Ok(value) => break value,
            // A store that does not answer is the watcher's to report.
            Err(_) if Instant::now() + PING_EVERY >= next => return,
            Err(_) => tokio::time::sleep(PING_EVERY).await,
        }
    };
    let (expired, missing) = match heartbeat_reply(&value) {
        Ok(reply) => reply,
        Err(why) => return warn!("room {}: {why}", room.name),
    };
    shared.counters.presence_expired(expired);
    if missing.is_empty() {
        return;
    }
    let status = unavailable(format!(
        "room '{}': this participant's presence expired in the room store (it was announced as left); \
         rejoin with {SINCE_HEADER} to recover",
        room.name
    ));
    let ended: Vec<_> = {
        let mut local = room.local.lock();
        missing
            .iter()
            .filter_map(|id| local.end(id, &status))
            .collect()
    };
    shared.ended(room, ended);
}
