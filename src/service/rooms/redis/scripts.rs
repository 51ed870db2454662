//! The room scripts, each one atomic step in Redis (as Centrifugo's engine
//! does it): numbering an event, keeping it in the room's history stream
//! (its number as the ID, trimmed to the history length) and publishing it
//! on the room's channel happen together, and so do a presence change and
//! its notice. The Lua is in `lua/`, each script after the shared prelude.

use std::time::Duration;

use messenger_lab::room::Recovery;
use redis::{Script, Value};

use super::super::epoch::{self, Position};
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
    /// A page of history (the join's backlog, a gap's fill) holds at most
    /// this many events, and past its first this many bytes.
    pub(super) page_events: usize,
    pub(super) page_bytes: usize,
}

/// A script call, ready to run on a connection.
pub(super) struct Call<'a> {
    script: &'a Script,
    keys: &'a Keys,
    args: Vec<Vec<u8>>,
}

impl<'a> Call<'a> {
    /// A call of `script` in the room of `keys`, by a replica that has seen
    /// up to `seen` there: a store found below it begins a new epoch.
    fn new(script: &'a Script, keys: &'a Keys, terms: RoomTerms, seen: Option<&Position>) -> Self {
        let millis = |d: Duration| d.as_millis().max(1).to_string().into_bytes();
        let (seen_epoch, seen_high) = match seen {
            Some(seen) => (
                seen.epoch.clone().into_bytes(),
                seen.seq.to_string().into_bytes(),
            ),
            None => Default::default(),
        };
        Call {
            script,
            keys,
            args: vec![
                keys.channel.clone().into_bytes(),
                terms.history.max(1).to_string().into_bytes(),
                millis(terms.linger.max(terms.presence_ttl)),
                millis(terms.presence_ttl),
                epoch::fresh().into_bytes(),
                seen_epoch,
                seen_high,
            ],
        }
    }

    fn page(self, terms: RoomTerms) -> Self {
        self.arg(terms.page_events.max(1).to_string())
            .arg(terms.page_bytes.to_string())
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
    /// The epoch `since` counts in, if the caller said.
    pub(super) since_epoch: Option<&'a str>,
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
        seen: Option<&Position>,
        join: JoinArgs<'_>,
    ) -> Call<'a> {
        Call::new(&self.join, keys, terms, seen)
            .arg(join.id)
            .arg(join.since.map(|s| s.to_string()).unwrap_or_default())
            .arg(join.since_epoch.unwrap_or_default())
            .arg(join.most.to_string())
            .arg(join.joined)
            .arg(join.left)
            .page(terms)
    }

    /// Participant `id`'s update number `counter` (a repeat is numbered
    /// once; only the one after the last numbered is taken); `named` its
    /// join and leave notices if this update names it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn publish<'a>(
        &'a self,
        keys: &'a Keys,
        terms: RoomTerms,
        seen: Option<&Position>,
        id: &str,
        counter: u64,
        update: Vec<u8>,
        named: Option<(Vec<u8>, Vec<u8>)>,
    ) -> Call<'a> {
        let (joined, left) = named.unwrap_or_default();
        Call::new(&self.publish, keys, terms, seen)
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
        seen: Option<&Position>,
        id: &str,
        notice: Option<Vec<u8>>,
    ) -> Call<'a> {
        Call::new(&self.leave, keys, terms, seen)
            .arg(id)
            .arg(notice.unwrap_or_default())
    }

    pub(super) fn heartbeat<'a>(
        &'a self,
        keys: &'a Keys,
        terms: RoomTerms,
        seen: Option<&Position>,
        ids: &[&str],
    ) -> Call<'a> {
        ids.iter()
            .fold(Call::new(&self.heartbeat, keys, terms, seen), |call, id| {
                call.arg(*id)
            })
    }

    /// A page of the room's history from number `from` on.
    pub(super) fn history<'a>(
        &'a self,
        keys: &'a Keys,
        terms: RoomTerms,
        seen: Option<&Position>,
        from: u64,
    ) -> Call<'a> {
        Call::new(&self.history, keys, terms, seen)
            .arg(from.to_string())
            .page(terms)
    }
}

/// The join script's answer.
#[derive(Debug)]
pub(super) enum JoinReply {
    /// Seated: `start` is its `room-seq`, `backlog` the first page of the
    /// events after `room-since`.
    Joined {
        start: Position,
        backlog: Vec<Event>,
    },
    OutOfRange(Recovery),
    Full,
}

/// A reply that is not what the script returns.
pub(super) fn malformed(script: &str) -> String {
    format!("the room store's {script} script answered in an unknown form")
}

fn text(value: &Value) -> Option<String> {
    Some(String::from_utf8_lossy(bytes(value)?).into_owned())
}

/// The join script's answer, and how many expired participants it announced.
pub(super) fn join_reply(value: &Value, since: Option<u64>) -> Result<(JoinReply, u64), String> {
    let parse = || -> Option<(JoinReply, u64)> {
        let items = array(value)?;
        let expired = number(items.get(1)?)?;
        let reply = match bytes(items.first()?)? {
            b"ok" => JoinReply::Joined {
                start: Position {
                    seq: number(items.get(2)?)?,
                    epoch: text(items.get(3)?)?,
                },
                backlog: from_entries(items.get(4)?)?,
            },
            b"full" => JoinReply::Full,
            b"range" => JoinReply::OutOfRange(match bytes(items.get(5)?)? {
                b"none" => Recovery::NoHistory,
                b"epoch" => Recovery::OtherEpoch,
                b"ahead" => Recovery::Ahead {
                    newest: number(items.get(4)?)?,
                },
                _ => {
                    let base = number(items.get(2)?)?;
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

/// The publish script's answer.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Published {
    /// Numbered: its place (None for a repeat of an earlier one), in `epoch`.
    Numbered { seq: Option<u64>, epoch: String },
    /// Not taken: the store has numbered this participant's updates only up
    /// to this counter, so the ones after it go first.
    Behind(u64),
    /// Its participant was no longer in the room.
    Gone,
}

/// The publish script's answer, and how many expired participants it announced.
pub(super) fn publish_reply(value: &Value) -> Result<(Published, u64), String> {
    let parse = || -> Option<(Published, u64)> {
        let items = array(value)?;
        let expired = number(items.get(1)?)?;
        let published = match bytes(items.first()?)? {
            b"ok" => Published::Numbered {
                seq: number(items.get(2)?),
                epoch: text(items.get(3)?)?,
            },
            b"behind" => Published::Behind(number(items.get(2)?)?),
            b"gone" => Published::Gone,
            _ => return None,
        };
        Some((published, expired))
    };
    parse().ok_or_else(|| malformed("publish"))
}

/// The heartbeat's answer: participants announced as expired, and those of
/// ours that were no longer there.
pub(super) fn heartbeat_reply(value: &Value) -> Result<(u64, Vec<String>), String> {
    let parse = || -> Option<(u64, Vec<String>)> {
        let items = array(value)?;
        let expired = number(items.first()?)?;
        let missing = items[1..].iter().map(text).collect::<Option<_>>()?;
        Some((expired, missing))
    };
    parse().ok_or_else(|| malformed("heartbeat"))
}

/// A page of a room's history, as the history script read it.
#[derive(Debug)]
pub(super) struct History {
    /// The room's newest number, and its epoch.
    pub(super) newest: Position,
    /// Events from the number asked for on (one page).
    pub(super) events: Vec<Event>,
}

/// What the history script found (None: the room has no history).
pub(super) fn history_reply(value: &Value) -> Result<Option<History>, String> {
    let parse = || -> Option<Option<History>> {
        let items = array(value)?;
        if number(items.first()?).is_none() {
            return Some(None);
        }
        Some(Some(History {
            newest: Position {
                seq: number(items.get(1)?)?,
                epoch: text(items.get(2)?)?,
            },
            events: from_entries(items.get(3)?)?,
        }))
    };
    parse().ok_or_else(|| malformed("history"))
}
