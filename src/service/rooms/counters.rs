//! The rooms' metrics as the stores count them (nothing when metrics are off).

use std::time::Duration;

use log::{debug, info};

use crate::metrics::RoomMetrics;

#[derive(Clone, Default)]
pub(crate) struct Counters(Option<RoomMetrics>);

impl Counters {
    pub(crate) fn new(metrics: Option<RoomMetrics>) -> Self {
        Counters(metrics)
    }

    fn with(&self, count: impl FnOnce(&RoomMetrics)) {
        if let Some(metrics) = &self.0 {
            count(metrics);
        }
    }

    pub(crate) fn room_opened(&self, room: &str) {
        info!("room {room} opened");
        self.with(|m| m.rooms.inc());
    }

    pub(crate) fn room_closed(&self, room: &str) {
        info!("room {room} closed");
        self.with(|m| m.rooms.dec());
    }

    pub(crate) fn joined(&self, room: &str, id: &str) {
        debug!("room {room}: participant {id} joined");
        self.with(|m| m.participants.inc());
    }

    pub(crate) fn left(&self, room: &str, id: &str) {
        debug!("room {room}: participant {id} left");
        self.with(|m| m.participants.dec());
    }

    /// Participants removed for lagging (already counted out by `left`).
    pub(crate) fn removed_for_lag(&self, room: &str, id: &str) {
        info!("room {room}: participant {id} removed for falling behind");
        self.with(|m| m.lagging.inc());
    }

    /// One round trip to the store.
    pub(crate) fn round_trip(&self, took: Duration) {
        self.with(|m| m.store_seconds.observe(took.as_secs_f64()));
    }

    pub(crate) fn subscription_reconnected(&self) {
        self.with(|m| m.subscription_reconnects.inc());
    }

    pub(crate) fn gap_filled(&self) {
        self.with(|m| m.gaps_filled.inc());
    }

    pub(crate) fn calls_ended_for_gap(&self, calls: usize) {
        self.with(|m| m.gap_ended_calls.inc_by(calls as u64));
    }

    pub(crate) fn presence_expired(&self, participants: u64) {
        self.with(|m| m.presence_expiries.inc_by(participants));
    }
}
