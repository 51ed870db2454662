//! The room scripts, each one atomic step in Redis (as Centrifugo's engine
//! does it): numbering an event, keeping it in the room's history stream
//! (its number as the ID, trimmed to the history length) and publishing it
//! on the room's channel happen together, and so do a presence change and
//! its notice. The Lua is in `lua/`, each script after the shared prelude.

use std::time::Duration;

use messenger_lab::room::Recovery;
use redis::{Script, Value};

use super::super::event::Event;
use super::super::store::recovery;
use super::codec::{array, bytes, from_entries, number};
use super::keys::Keys;

/// The command that publishes a room's events: the prelude's one use of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Publish {
    /// One Redis: `PUBLISH` (any version).
    Everywhere,
    /// A cluster: `SPUBLISH` (Redis 7), on the shard of the room's keys
    /// only; `PUBLISH` would go to every node of the cluster.
    Sharded,
}

impl Publish {
    fn command(self) -> &'static str {
        match self {
            Publish::Everywhere => "PUBLISH",
            Publish::Sharded => "SPUBLISH",
        }
    }
}

macro_rules! script {
    ($publish:expr, $file:literal) => {
        Script::new(&format!(
            "local publish_command = '{}'\n{}{}",
            $publish.command(),
            include_str!("lua/prelude.lua"),
            include_str!(concat!("lua/", $file))
        ))
    };
}

/// The scripts, loaded once (Redis caches them by digest; after a restart
/// the client sends them again).
pub(super) struct Scripts {
    join: Script,
    publish: Script,
    leave: Script,
    heartbeat: Script,
    history: Script,
}

impl Scripts {
    /// Every script, to load into a new connection's server.
    pub(super) fn all(&self) -> [&Script; 5] {
        [
            &self.join,
            &self.publish,
            &self.leave,
            &self.heartbeat,
            &self.history,
        ]
    }
}

impl Scripts {
    pub(super) fn new(publish: Publish) -> Self {
        Scripts {
            join: script!(publish, "join.lua"),
            publish: script!(publish, "publish.lua"),
            leave: script!(publish, "leave.lua"),
            heartbeat: script!(publish, "heartbeat.lua"),
            history: script!(publish, "history.lua"),
        }
    }
}

/// What every script is told about its room.
#[derive(Clone, Copy, Debug)]
pub(super) struct RoomTerms {
    pub(super) history: usize,
    pub(super) linger: Duration,
    pub(super) presence_ttl: Duration,
}

/// A script call, ready to run on a connection.
pub(super) struct Call<'a> {
    script: &'a Script,
    keys: &'a Keys,
    args: Vec<Vec<u8>>,
}

impl<'a> Call<'a> {
    fn new(script: &'a Script, keys: &'a Keys, terms: RoomTerms) -> Self {
        let millis = |d: Duration| d.as_millis().max(1).to_string().into_bytes();
        Call {
            script,
            keys,
            args: vec![
                keys.channel.clone().into_bytes(),
                terms.history.max(1).to_string().into_bytes(),
                millis(terms.linger.max(terms.presence_ttl)),
                millis(terms.presence_ttl),
            ],
        }
    }

    fn arg(mut self, arg: impl Into<Vec<u8>>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// The invocation, to run on a connection.
    pub(super) fn invocation(&self) -> redis::ScriptInvocation<'a> {
        let mut invocation = self.script.prepare_invoke();
        for key in &self.keys.all {
            invocation.key(key);
        }
        for arg in &self.args {
            invocation.arg(arg.as_slice());
        }
        invocation
    }
}

/// A participant's join, as the join script runs it.
pub(super) struct JoinArgs<'a> {
    pub(super) id: &'a str,
    pub(super) since: Option<u64>,
    pub(super) most: usize,
    /// Its join notice, encoded; empty while it has no name.
    pub(super) joined: Vec<u8>,
    /// Its leave notice, encoded; empty while it has no name.
    pub(super) left: Vec<u8>,
}

impl Scripts {
    pub(super) fn join<'a>(
        &'a self,
        keys: &'a Keys,
        terms: RoomTerms,
        join: JoinArgs<'_>,
    ) -> Call<'a> {
        Call::new(&self.join, keys, terms)
            .arg(join.id)
            .arg(join.since.map(|s| s.to_string()).unwrap_or_default())
            .arg(join.most.to_string())
            .arg(join.joined)
            .arg(join.left)
    }

    /// Participant `id`'s update number `counter` (a repeat is numbered
    /// once); `named` its join and leave notices if this update names it.
    pub(super) fn publish<'a>(
        &'a self,
        keys: &'a Keys,
        terms: RoomTerms,
        id: &str,
        counter: u64,
        update: Vec<u8>,
        named: Option<(Vec<u8>, Vec<u8>)>,
    ) -> Call<'a> {
        let (joined, left) = named.unwrap_or_default();
        Call::new(&self.publish, keys, terms)
            .arg(id)
            .arg(counter.to_string())
            .arg(update)
            .arg(joined)
            .arg(left)
    }

    /// Participant `id` leaves, announced by its leave notice or by `notice` instead.
    pub(super) fn leave<'a>(
        &'a self,
        keys: &'a Keys,
        terms: RoomTerms,
        id: &str,
        notice: Option<Vec<u8>>,
    ) -> Call<'a> {
        Call::new(&self.leave, keys, terms)
            .arg(id)
            .arg(notice.unwrap_or_default())
    }

    pub(super) fn heartbeat<'a>(
        &'a self,
        keys: &'a Keys,
        terms: RoomTerms,
        ids: &[&str],
    ) -> Call<'a> {
        ids.iter()
            .fold(Call::new(&self.heartbeat, keys, terms), |call, id| {
                call.arg(*id)
            })
    }

    pub(super) fn history<'a>(&'a self, keys: &'a Keys, terms: RoomTerms, from: u64) -> Call<'a> {
        Call::new(&self.history, keys, terms).arg(from.to_string())
    }
}

/// The join script's answer.
#[derive(Debug)]
pub(super) enum JoinReply {
    /// Seated: `start` is its `room-seq`, `backlog` the events after `room-since`.
    Joined {
        start: u64,
        backlog: Vec<Event>,
    },
    OutOfRange(Recovery),
    Full,
}

/// A reply that is not what the script returns.
pub(super) fn malformed(script: &str) -> String {
    format!("the room store's {script} script answered in an unknown form")
}

/// The join script's answer, and how many expired participants it announced.
pub(super) fn join_reply(value: &Value, since: Option<u64>) -> Result<(JoinReply, u64), String> {
    let parse = || -> Option<(JoinReply, u64)> {
        let items = array(value)?;
        let expired = number(items.get(1)?)?;
        let reply = match bytes(items.first()?)? {
            b"ok" => JoinReply::Joined {
                start: number(items.get(2)?)?,
                backlog: from_entries(items.get(3)?)?,
            },
            b"full" => JoinReply::Full,
            b"range" => JoinReply::OutOfRange(match number(items.get(2)?) {
                None => Recovery::NoHistory,
                Some(base) => {
                    let (oldest, newest) = (number(items.get(3)?)?, number(items.get(4)?)?);
                    recovery(since.unwrap_or_default(), base, oldest, newest).err()?
                }
            }),
            _ => return None,
        };
        Some((reply, expired))
    };
    parse().ok_or_else(|| malformed("join"))
}

/// The publish script's answer: the update's number (None: its participant
/// was no longer in the room), and how many expired participants it announced.
pub(super) fn publish_reply(value: &Value) -> Result<(Option<u64>, u64), String> {
    let parse = || -> Option<(Option<u64>, u64)> {
        let items = array(value)?;
        let expired = number(items.get(1)?)?;
        match bytes(items.first()?)? {
            b"ok" => Some((Some(number(items.get(2)?)?), expired)),
            b"gone" => Some((None, expired)),
            _ => None,
        }
    };
    parse().ok_or_else(|| malformed("publish"))
}

/// The heartbeat's answer: participants announced as expired, and those of
/// ours that were no longer there.
pub(super) fn heartbeat_reply(value: &Value) -> Result<(u64, Vec<String>), String> {
    let parse = || -> Option<(u64, Vec<String>)> {
        let items = array(value)?;
        let expired = number(items.first()?)?;
        let missing = items[1..]
            .iter()
            .map(|id| Some(String::from_utf8_lossy(bytes(id)?).into_owned()))
            .collect::<Option<_>>()?;
        Some((expired, missing))
    };
    parse().ok_or_else(|| malformed("heartbeat"))
}

/// What the history script found: where the room's numbering began (None:
/// the room has no history), and its events from the number asked for.
pub(super) fn history_reply(value: &Value) -> Result<(Option<u64>, Vec<Event>), String> {
    let parse = || -> Option<(Option<u64>, Vec<Event>)> {
        let items = array(value)?;
        let base = number(items.first()?);
        Some((base, from_entries(items.get(2)?)?))
    };
    parse().ok_or_else(|| malformed("history"))
}
