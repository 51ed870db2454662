//! `client chat --room`: the feed in a room, as a participant that stays.
//! Each received event is printed with its number (`room-seq` + k); when the
//! stream is cut, or ends UNAVAILABLE (a replica restarted, the store
//! blipped), the client reconnects with backoff and `room-since`, so it
//! misses nothing and gets nothing twice. The position it resumes from is
//! `room-since` with the `room-epoch` the answer sent, so a store that lost
//! the room's history (or came back older) cannot take it into a new run of
//! numbers: if the room can no longer recover that far (OUT_OF_RANGE), it
//! rejoins without `room-since` and says that updates were lost, and how
//! many when it knows. Updates of its own that were read from the input but
//! not acknowledged when a call ended are not sent again (that could repeat
//! them): it says how many. Each of these is one line on stderr.

use std::io::{self, Write};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt, TryStreamExt};
use futures_timer::Delay;
use grpcio::{Metadata, MetadataBuilder, RpcStatusCode};
use messenger_lab::room::{
    classify, lost_events, name_problem, Kind, EPOCH_HEADER, ROOM_HEADER, SEQ_HEADER, SINCE_HEADER,
    USER_HEADER,
};

use super::calls::served_by;
use super::output::{Printer, Received};
use super::streaming::{send_and_receive, send_paced};
use super::ClientError;
use crate::proto::messenger::FeedUpdate;
use crate::rpc::messenger::LearningMessengerClient;

/// The first pause before reconnecting; it doubles up to [`MOST_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MOST_BACKOFF: Duration = Duration::from_secs(2);
/// How long reconnecting is tried before the client gives up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(30);
/// A call open this long was in the room, even if nothing came yet (the
/// answer's headers come with its first message); a join that fails fails sooner.
const SETTLED: Duration = Duration::from_secs(5);

type Updates = Pin<Box<dyn Stream<Item = Result<FeedUpdate, ClientError>> + Send>>;

/// Chats in `room` as `user` (its header, if that can be a header; otherwise
/// the server names us by our first update's user) until `updates` ends and
/// what the room sent before we left has arrived.
pub async fn chat<W: Write>(
    client: &LearningMessengerClient,
    room: &str,
    user: &str,
    updates: impl Stream<Item = Result<FeedUpdate, ClientError>> + Send + 'static,
    delay: Duration,
    printer: &mut Printer<W>,
) -> Result<(), ClientError> {
    // Updates taken from the input, to tell those never acknowledged.
    let taken = Arc::new(AtomicU64::new(0));
    let counted = taken.clone();
    let mut updates: Updates = Box::pin(updates.inspect(move |update| {
        if update.is_ok() {
            counted.fetch_add(1, Ordering::Relaxed);
        }
    }));
    let mut place = Place::default();
    let mut cut: Option<(Instant, Duration)> = None;
    loop {
        let options = client.options();
        let resume = place.last.zip(place.epoch.clone());
        let headers = join_headers(options.get_headers(), room, user, resume)?;
        let client = client.clone().with_options(options.headers(headers));
        let opened = Instant::now();
        let outcome = attempt(&client, room, &mut updates, delay, printer, &mut place).await;
        if opened.elapsed() >= SETTLED {
            place.joined = true;
        }
        if outcome.is_err() {
            let unacknowledged = taken
                .load(Ordering::Relaxed)
                .saturating_sub(place.acknowledged);
            if unacknowledged > 0 {
                place.acknowledged += unacknowledged;
                say(&format!(
                    "chat: room {room}: {unacknowledged} of your updates were not acknowledged when the call ended; they are not sent again, and may not have reached the room"
                ));
            }
        }
        match outcome {
            Ok(()) => return Ok(()),
            Err(e) if e.code() == Some(RpcStatusCode::OUT_OF_RANGE) && place.last.is_some() => {
                let since = place.last.take().unwrap_or_default();
                place.epoch = None;
                let lost = lost_events(&e.to_string())
                    .map_or("an unknown number of events".to_owned(), |n| {
                        format!("{n} events")
                    });
                say(&format!(
                    "chat: room {room}: updates were lost: cannot recover after event {since} ({e}); rejoined without {SINCE_HEADER}: {lost} lost"
                ));
            }
            Err(e) if place.joined && reconnectable(&e) => {
                let (since, backoff) = match cut {
                    None => {
                        say(&format!(
                            "chat: room {room}: the stream was cut after event {} ({e}); reconnecting with {SINCE_HEADER}",
                            place.last.map_or("(none yet)".to_owned(), |n| n.to_string())
                        ));
                        (Instant::now(), FIRST_BACKOFF)
                    }
                    Some((since, _)) if since.elapsed() >= GIVE_UP_AFTER => return Err(e),
                    Some((since, backoff)) => (since, (backoff * 2).min(MOST_BACKOFF)),
                };
                cut = Some((since, backoff));
                Delay::new(backoff).await;
            }
            Err(e) => return Err(e),
        }
        if place.reconnected {
            cut = None;
            place.reconnected = false;
        }
    }
}

/// Where this participant stands in its room.
#[derive(Debug, Default)]
struct Place {
    /// The number of the last event received.
    last: Option<u64>,
    /// The history (`room-epoch`) its numbers count in.
    epoch: Option<String>,
    /// Whether a call ever got into the room (only then is a cut retried).
    joined: bool,
    /// Whether the last attempt got back in after a cut.
    reconnected: bool,
    /// Own updates acknowledged, or already told as not (see [`chat`]).
    acknowledged: u64,
}

/// The headers that join `room` as `user`, resuming after event `since` of
/// its epoch, after those every call carries (`base`: a token).
fn join_headers(
    base: Option<&Metadata>,
    room: &str,
    user: &str,
    since: Option<(u64, String)>,
) -> Result<Metadata, ClientError> {
    let mut headers = MetadataBuilder::new();
    for (key, value) in base.into_iter().flat_map(Metadata::iter) {
        headers.add_str(key, &String::from_utf8_lossy(value))?;
    }
    headers.add_str(ROOM_HEADER, room).map_err(|_| {
        ClientError::Setup(format!("the room name {room:?} is not printable ASCII"))
    })?;
    if name_problem(USER_HEADER, user.as_bytes()).is_none() {
        headers.add_str(USER_HEADER, user)?;
    }
    if let Some((since, epoch)) = since {
        headers.add_str(SINCE_HEADER, &since.to_string())?;
        if !epoch.is_empty() {
            headers.add_str(EPOCH_HEADER, &epoch)?;
        }
    }
    Ok(headers.build())
}

/// Whether a call that ended with `e` is worth joining again: it was cut, the
/// replica or the store was briefly unavailable, or it fell behind.
fn reconnectable(e: &ClientError) -> bool {
    match e.code() {
        Some(RpcStatusCode::UNAVAILABLE | RpcStatusCode::CANCELLED | RpcStatusCode::ABORTED) => {
            true
        }
        Some(RpcStatusCode::RESOURCE_EXHAUSTED) => e.to_string().contains("behind the room"),
        _ => false,
    }
}

/// One call in the room: sends what `updates` has until it ends, printing
/// what arrives, numbered from the answer's `room-seq`.
async fn attempt<W: Write>(
    client: &LearningMessengerClient,
    room: &str,
    updates: &mut Updates,
    delay: Duration,
    printer: &mut Printer<W>,
    place: &mut Place,
) -> Result<(), ClientError> {
    let (mut sender, mut events) = client.collaborative_feed_async()?;
    sender.enhance_batch(true);
    let send = send_paced(&mut sender, updates, delay);
    let receive = async {
        let mut next = None;
        while let Some(update) = events.try_next().await? {
            let seq = match next {
                Some(seq) => seq,
                None => {
                    // The headers come with the first message.
                    let headers = events.headers().await?;
                    place.epoch = Some(header(headers, EPOCH_HEADER).unwrap_or_default());
                    let start = room_seq(headers).ok_or_else(|| {
                        ClientError::Setup(format!(
                            "the server sent no {SEQ_HEADER} header: not a room of this kind"
                        ))
                    })?;
                    if place.joined && !place.reconnected {
                        place.reconnected = true;
                    }
                    place.joined = true;
                    if printer.shows_replica() {
                        printer.replica("CollaborativeFeed", served_by(headers))?;
                    }
                    after(start)?
                }
            };
            next = Some(after(seq)?);
            place.last = Some(seq);
            let kind = classify(&update);
            if kind == Kind::Ack {
                place.acknowledged += 1;
            }
            printer.received(Received::InRoom {
                room,
                kind,
                update: &update,
                seq: Some(seq),
            })?;
        }
        Ok(())
    };
    send_and_receive(send, receive).await
}

/// The number after `seq`; a server numbering past the last u64 is not one of ours.
fn after(seq: u64) -> Result<u64, ClientError> {
    seq.checked_add(1).ok_or_else(|| {
        ClientError::Setup(format!(
            "the server numbered an event {seq}: no number follows it, not a room of this kind"
        ))
    })
}

/// The answer's `room-seq`.
fn room_seq(headers: &Metadata) -> Option<u64> {
    header(headers, SEQ_HEADER)?.parse().ok()
}

/// The answer's header `key`, as text.
fn header(headers: &Metadata, key: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, value)| Some(std::str::from_utf8(value).ok()?.to_owned()))
}

/// One line on stderr (never a panic if it is closed).
fn say(line: &str) {
    let _ = writeln!(io::stderr(), "{line}");
}
