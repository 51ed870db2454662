//! A participant's call, from its join to its end: its updates go into the
//! room as they are read, in order, and only while no reader on this replica
//! is full (HTTP/2 flow control then holds the sender back), while its
//! deliveries are written out with awaited writes.

use futures::channel::oneshot;
use futures::future::{self, Either};
use futures::stream::FuturesOrdered;
use futures::{SinkExt, StreamExt, TryStreamExt};
use futures_timer::Delay;
use grpcio::{RpcStatus, WriteFlags};
use log::debug;
use std::time::Duration;

use messenger_lab::answers::FEED_ECHO_USER;

use super::local::until;
use super::request::invalid;
use super::store::{exhausted, Joined, Place};
use crate::auth::room_access::Speaker;
use crate::proto::messenger::FeedUpdate;
use crate::rpc::{DuplexReply, Requests};
use crate::service::outcome::{log_outcome, reject};
use protobuf::Message;

const METHOD: &str = "CollaborativeFeed";
/// How long a call the room ended may take to finish its write in flight
/// before it is cut instead of getting its status.
const FLUSH_WITHIN: Duration = Duration::from_millis(200);

/// How a participant's call came to an end.
enum Ended {
    /// Its requests ended (`read`) and what was queued for it was written (`written`).
    Finished {
        read: grpcio::Result<()>,
        written: grpcio::Result<()>,
    },
    /// The room ended it, with this status.
    Ended(RpcStatus),
}

/// Runs a participant's call. Leaving cleanly (the requests end), being
/// cancelled and vanishing (they fail) all leave the room at once; the
/// remaining queue is then written and the call closed. Ended by the room
/// (fell behind, the store failed), the call ends with the room's status.
pub(crate) async fn take_part(
    joined: Joined,
    speaker: Speaker,
    mut updates: Requests<FeedUpdate>,
    mut sink: DuplexReply<FeedUpdate>,
) {
    let Joined { seat, place } = joined;
    let most = seat.update_bytes;
    sink.add_header(messenger_lab::room::SEQ_HEADER, &seat.start.to_string());
    sink.add_header(messenger_lab::room::EPOCH_HEADER, &seat.epoch);
    let me = seat.id.clone();
    let mut deliveries = seat
        .deliveries
        .map(move |event| Ok((event.delivery(&me), WriteFlags::default())));
    let ended = {
        let reader = async {
            let read = read_updates(&*place, &speaker, most, &mut updates).await;
            place.leave();
            read
        };
        let writer = sink.send_all(&mut deliveries);
        let both = future::join(reader, writer);
        futures::pin_mut!(both);
        match future::select(both, seat.ended).await {
            Either::Left(((read, written), _)) => Ended::Finished { read, written },
            Either::Right((Ok(status), _)) => Ended::Ended(status),
            // Our own leave dropped the signal: the queue is being written out.
            Either::Right((Err(oneshot::Canceled), both)) => {
                let (read, written) = both.await;
                Ended::Finished { read, written }
            }
        }
    };
    // Out of the room before waiting on the call's end, which a client that
    // never reads may hold up.
    place.leave();
    drop(place);
    match ended {
        Ended::Ended(status) => {
            // Its queue was dropped, but a write may still be stuck in HTTP/2
            // flow control (a client that stopped granting window), and the
            // status would wait behind it forever: then the call is cut
            // (RST_STREAM), so that a stalled client holds nothing.
            let flushed = matches!(
                future::select(Box::pin(sink.flush()), Delay::new(FLUSH_WITHIN)).await,
                Either::Left(_)
            );
            if flushed {
                log_outcome(METHOD, sink.fail(status).await);
            } else {
                debug!("{METHOD}: cut (its writes were stuck): {status:?}");
                sink.cut(status.code());
            }
        }
        Ended::Finished { read: Err(e), .. } => reject(METHOD, e, |status| sink.fail(status)).await,
        Ended::Finished {
            read: Ok(()),
            written: Err(e),
        } => log_outcome(METHOD, Err(e)),
        Ended::Finished {
            read: Ok(()),
            written: Ok(()),
        } => log_outcome(METHOD, sink.close().await),
    }
}

/// Updates sent into the room whose place in its order is not yet known: a
/// shared store's round trips overlap, in order, up to this many.
const PUBLISHING: usize = 32;

/// Reads the participant's updates into the room until they end, each only
/// while the room's gate is open; a refused update (the server's name, not
/// the authenticated `speaker`'s, or larger than `most` bytes) or a failed
/// publish ends the call with its status.
async fn read_updates(
    place: &dyn Place,
    speaker: &Speaker,
    most: usize,
    updates: &mut Requests<FeedUpdate>,
) -> grpcio::Result<()> {
    let failed = |status| Err(grpcio::Error::RpcFailure(status));
    let mut sending = FuturesOrdered::new();
    loop {
        wait_at_gate(place).await;
        if sending.len() >= PUBLISHING {
            if let Some(Err(status)) = sending.next().await {
                return failed(status);
            }
            continue;
        }
        let read = if sending.is_empty() {
            Some(updates.try_next().await)
        } else {
            match future::select(updates.try_next(), sending.next()).await {
                Either::Left((read, _)) => Some(read),
                Either::Right((Some(Err(status)), _)) => return failed(status),
                Either::Right(_) => None,
            }
        };
        match read {
            None => {}
            Some(Ok(Some(update))) => match speaker.speaks(update) {
                Err(refusal) => return failed(refusal),
                Ok(update) => match refused(&update, most) {
                    Some(refusal) => return failed(refusal),
                    None => sending.push_back(place.publish(update)),
                },
            },
            Some(Ok(None)) => {
                while let Some(published) = sending.next().await {
                    if let Err(status) = published {
                        return failed(status);
                    }
                }
                return Ok(());
            }
            Some(Err(e)) => return Err(e),
        }
    }
}

/// Why `update` cannot go into a room: the user `System` is the server's, so
/// that its notices cannot be forged; and every participant's queue and the
/// room's history hold it, so it may be at most `most` bytes.
fn refused(update: &FeedUpdate, most: usize) -> Option<RpcStatus> {
    if update.user == FEED_ECHO_USER {
        return Some(invalid(format!(
            "the user name {FEED_ECHO_USER} is the server's in a room"
        )));
    }
    let size = update.compute_size() as usize;
    (size > most).then(|| {
        exhausted(format!(
            "a room update may be {most} bytes (--room-update-bytes); this one is {size}"
        ))
    })
}

/// Waits until no participant of the room on this replica has a full
/// queue; one that stays full past the lag bound is removed meanwhile.
async fn wait_at_gate(place: &dyn Place) {
    let gate = place.gate();
    while !gate.is_open() {
        let deadline = place.remove_laggards();
        let opened = gate.opened();
        match deadline {
            None => return opened.await,
            Some(deadline) => {
                if let Either::Left(_) = future::select(opened, Delay::new(until(deadline))).await {
                    return;
                }
            }
        }
    }
}
