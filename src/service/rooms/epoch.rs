//! A room history's epoch: a random id it gets when it begins, so that a
//! position (`room-epoch`, `room-seq`) names one run of numbers. A store that
//! loses a history, or comes back older than its participants had seen,
//! begins a new epoch: an old position is then refused, never read into the
//! new run (Centrifugo's stream epochs).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A place in a room's order: event `seq` of the history `epoch`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) epoch: String,
    pub(crate) seq: u64,
}

/// A fresh epoch: 16 hex digits from the process's random hash keys, the
/// clock and a counter (unique enough for ids; not a secret).
pub(crate) fn fresh() -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    hasher.write_u128(now.as_nanos());
    hasher.write_u64(COUNT.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// Whether `text` can be an epoch: what [`fresh`] makes, 1 to 64 ASCII
/// letters and digits (a header value, checked before it reaches a store).
pub(crate) fn well_formed(text: &[u8]) -> bool {
    (1..=64).contains(&text.len()) && text.iter().all(u8::is_ascii_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_epochs_differ_and_are_well_formed() {
        let (a, b) = (fresh(), fresh());
        assert_ne!(a, b);
        assert!(well_formed(a.as_bytes()) && a.len() == 16, "{a}");
        assert!(!well_formed(b"") && !well_formed(b"a b") && !well_formed(&[b'a'; 65]));
    }
}
