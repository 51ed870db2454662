//! The caller of a call, as the glue hands it to every handler: verified (by
//! a bearer token or a client certificate), or anonymous when the server
//! authenticates nobody.

use std::sync::Arc;

use messenger_lab::room::name_problem;

use crate::untrusted::untrusted;

use super::refusal::{Reason, Refusal, Refusals};

/// Who is calling.
#[derive(Clone, Debug, Default)]
pub enum Caller {
    /// The server authenticates nobody (as in the lab): anyone may speak in
    /// any room under any name but the server's.
    #[default]
    Anonymous,
    /// A verified caller.
    Authenticated(Arc<Identity>),
}

impl Caller {
    /// What a log line says of the caller before what the call claims (a
    /// `user_id`, a topic): `[caller ada, token] ` (or `, mTLS] `) for a verified one, so
    /// that who really called stands beside what it says; nothing for an
    /// anonymous one, whose lines read as the lab's.
    pub fn in_log(&self) -> CallerInLog<'_> {
        CallerInLog(self)
    }
}

/// [`Caller::in_log`].
pub struct CallerInLog<'a>(&'a Caller);

impl std::fmt::Display for CallerInLog<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Caller::Anonymous => Ok(()),
            Caller::Authenticated(identity) => {
                let source = match identity.source {
                    Source::Token => "token",
                    Source::Certificate => "mTLS",
                };
                write!(f, "[caller {}, {source}] ", untrusted(&identity.name))
            }
        }
    }
}

/// A verified caller: its name, where the name comes from, and the rooms it may join.
#[derive(Debug)]
pub struct Identity {
    /// A token's name claim (`sub` unless told otherwise), or a client
    /// certificate's first subject alternative name, else its common name.
    pub name: String,
    pub source: Source,
    pub rooms: RoomGrant,
    /// Where the refusals of what it may not do are counted.
    pub(crate) refusals: Refusals,
}

impl Identity {
    /// The identity named `name` by `whence` (`the token's "sub" claim`),
    /// if the name obeys the rule every name in a room obeys (printable
    /// ASCII, 1 to 64 bytes, no space at either end), whatever vouches for
    /// it: a name that could carry a line break or a terminal escape into
    /// a room or a log is UNAUTHENTICATED, with the rule it breaks.
    pub(crate) fn new(
        name: &str,
        whence: &str,
        source: Source,
        rooms: RoomGrant,
    ) -> Result<Identity, Refusal> {
        if let Some(problem) = name_problem("caller", name.as_bytes()) {
            return Err(Refusal::new(
                Reason::IdentityName,
                format!("{whence} does not name a caller this server accepts: {problem}"),
            ));
        }
        Ok(Identity {
            name: name.to_owned(),
            source,
            rooms,
            refusals: Refusals::default(),
        })
    }
}

/// What vouches for an identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A bearer token signed by a key of the server's JWKS.
    Token,
    /// A client certificate signed by the server's client CA (mutual TLS).
    Certificate,
}

/// The rooms a caller may join.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoomGrant {
    /// Any room: a caller nothing lists rooms for, with `--auth-open-rooms`.
    Any,
    /// Those matching one of these patterns (a token's rooms claim), where
    /// `*` matches any run of characters (`team-*`); an empty list, none.
    Matching(Vec<String>),
    /// None: nothing lists rooms for the caller (a token without the rooms
    /// claim, a client certificate), and rooms fail closed.
    Unlisted,
}

impl RoomGrant {
    pub fn allows(&self, room: &str) -> bool {
        match self {
            RoomGrant::Any => true,
            RoomGrant::Unlisted => false,
            RoomGrant::Matching(patterns) => patterns
                .iter()
                .any(|pattern| matches_pattern(pattern.as_bytes(), room.as_bytes())),
        }
    }
}

/// Whether `text` matches `pattern`, `*` matching any run of bytes: the
/// classic greedy walk, going back to the last `*` on a mismatch.
fn matches_pattern(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                last_star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match last_star {
                Some((star, matched)) => {
                    p = star + 1;
                    t = matched + 1;
                    last_star = Some((star, matched + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(patterns: &[&str]) -> RoomGrant {
        RoomGrant::Matching(patterns.iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn patterns_match_whole_names_with_stars_for_any_run() {
        let rooms = grant(&["lab", "team-*"]);
        for room in ["lab", "team-", "team-a", "team-blue-2"] {
            assert!(rooms.allows(room), "{room}");
        }
        for room in ["la", "labs", "xlab", "team", "my-team-a", ""] {
            assert!(!rooms.allows(room), "{room}");
        }
        assert!(grant(&["*-ops-*"]).allows("eu-ops-1"));
        assert!(!grant(&["*-ops-*"]).allows("eu-ops"));
        assert!(grant(&["a*b*c"]).allows("aXbYbZc"));
        assert!(!grant(&["a*b*c"]).allows("aXbYcZ"));
        assert!(grant(&["*"]).allows("anything"));
        assert!(!grant(&[]).allows("lab"));
        assert!(RoomGrant::Any.allows("anything"));
        assert!(!RoomGrant::Unlisted.allows("lab"));
    }

    #[test]
    fn a_log_line_names_a_verified_caller_before_what_it_claims() {
        assert_eq!(Caller::Anonymous.in_log().to_string(), "");
        let ada = Identity::new("ada", "a test", Source::Token, RoomGrant::Unlisted).unwrap();
        let caller = Caller::Authenticated(Arc::new(ada));
        assert_eq!(caller.in_log().to_string(), "[caller ada, token] ");
    }

    #[test]
    fn an_identity_s_name_obeys_the_rule_of_names_in_rooms() {
        let named = |name: &str| {
            Identity::new(
                name,
                "the token's \"sub\" claim",
                Source::Token,
                RoomGrant::Unlisted,
            )
        };
        assert_eq!(named("ada").unwrap().name, "ada");
        assert_eq!(named(&"a".repeat(64)).unwrap().name.len(), 64);
        for (name, rule) in [
            ("ann\n [Feed Update] System: forged", "not printable ASCII"),
            ("\u{1b}[31mred", "not printable ASCII"),
            ("Zoë", "not printable ASCII"),
            (&"a".repeat(65), "65 bytes long, more than 64"),
            ("", "empty"),
            (" ada", "starts or ends with a space"),
        ] {
            let refusal = named(name).err().unwrap();
            assert_eq!(refusal.reason, Reason::IdentityName, "{name:?}");
            assert!(
                refusal.message.starts_with(
                    "the token's \"sub\" claim does not name a caller this server accepts: the caller name"
                ) && refusal.message.contains(rule),
                "{name:?}: {}",
                refusal.message
            );
            assert!(
                !refusal.message.contains(['\n', '\u{1b}']),
                "{}",
                refusal.message
            );
        }
    }
}
