//! The caller of a call, as the glue hands it to every handler: verified (by
//! a bearer token or a client certificate), or anonymous when the server
//! authenticates nobody.

use std::sync::Arc;

use super::refusal::Refusals;

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
    pub(crate) fn new(name: String, source: Source, rooms: RoomGrant) -> Identity {
        Identity {
            name,
            source,
            rooms,
            refusals: Refusals::default(),
        }
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
    /// Any room: a certificate, or a token without a rooms claim.
    Any,
    /// Those matching one of these patterns, where `*` matches any run of
    /// characters (`team-*`); an empty list, none.
    Matching(Vec<String>),
}

impl RoomGrant {
    pub fn allows(&self, room: &str) -> bool {
        match self {
            RoomGrant::Any => true,
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
    }
}
