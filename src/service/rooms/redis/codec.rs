//! Events as Redis holds them: in the history stream (ID = the number,
//! fields `s` sender and `u` update) and on the channel
//! (`NUMBER\nEPOCH\nSENDER\nUPDATE`), the update in protobuf's encoding.

use protobuf::Message;
use redis::Value;

use super::super::event::Event;
use crate::proto::messenger::FeedUpdate;

pub(super) fn encode(update: &FeedUpdate) -> Vec<u8> {
    update.write_to_bytes().unwrap_or_default()
}

fn event(seq: u64, sender: &[u8], update: &[u8]) -> Option<Event> {
    let sender = match sender {
        [] => None,
        sender => Some(std::str::from_utf8(sender).ok()?.into()),
    };
    Some(Event::new(
        seq,
        sender,
        FeedUpdate::parse_from_bytes(update).ok()?,
    ))
}

/// An event as published on a room's channel, and the epoch it counts in.
pub(super) fn from_message(payload: &[u8]) -> Option<(String, Event)> {
    let mut parts = payload.splitn(4, |&b| b == b'\n');
    let seq = parse_number(parts.next()?)?;
    let epoch = std::str::from_utf8(parts.next()?).ok()?.to_owned();
    let sender = parts.next()?;
    Some((epoch, event(seq, sender, parts.next()?)?))
}

/// Events as XRANGE returns them.
pub(super) fn from_entries(entries: &Value) -> Option<Vec<Event>> {
    array(entries)?.iter().map(from_entry).collect()
}

fn from_entry(entry: &Value) -> Option<Event> {
    let [id, fields] = array(entry)? else {
        return None;
    };
    let id = bytes(id)?;
    let seq = parse_number(id.split(|&b| b == b'-').next()?)?;
    let fields = array(fields)?;
    let field = |name: &[u8]| {
        fields
            .chunks(2)
            .find(|pair| bytes(&pair[0]) == Some(name))
            .and_then(|pair| pair.get(1).and_then(bytes))
    };
    event(seq, field(b"s")?, field(b"u")?)
}

pub(super) fn array(value: &Value) -> Option<&[Value]> {
    match value {
        Value::Array(items) => Some(items),
        _ => None,
    }
}

pub(super) fn bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.as_bytes()),
        _ => None,
    }
}

/// A number, sent as an integer or as its digits; None for anything else (or '').
pub(super) fn number(value: &Value) -> Option<u64> {
    match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        other => parse_number(bytes(other)?),
    }
}

fn parse_number(digits: &[u8]) -> Option<u64> {
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(bytes: &[u8]) -> Value {
        Value::BulkString(bytes.to_vec())
    }

    #[test]
    fn events_read_back_from_messages_and_entries() {
        let update = FeedUpdate {
            user: "ann".into(),
            message: "line\nbreak".into(),
            ..Default::default()
        };
        let mut message = b"17\nab12\nr1.4\n".to_vec();
        message.extend(encode(&update));
        let (epoch, event) = from_message(&message).unwrap();
        assert_eq!(epoch, "ab12");
        assert_eq!((event.seq, event.sender.as_deref()), (17, Some("r1.4")));
        assert_eq!(event.update, update);

        let entry = Value::Array(vec![
            bulk(b"18-0"),
            Value::Array(vec![
                bulk(b"s"),
                bulk(b""),
                bulk(b"u"),
                bulk(&encode(&update)),
            ]),
        ]);
        let events = from_entries(&Value::Array(vec![entry])).unwrap();
        assert_eq!((events[0].seq, events[0].sender.clone()), (18, None));
        assert!(from_message(b"x\n\n\n").is_none());
    }
}
