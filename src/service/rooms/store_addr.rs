//! Where the rooms are kept (`--rooms`): this process, one Redis, or a Redis
//! Cluster, with or without TLS and a password. The URL may hold a secret:
//! it is shown only with the password masked, and a bad one is described
//! without echoing it.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Where the rooms are kept.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum RoomStoreAddr {
    /// In this process: rooms are this replica's alone.
    #[default]
    Memory,
    /// On a Redis (or a Redis Cluster): every replica that names it shares its rooms.
    Redis(RedisAddr),
}

/// A Redis, or a Redis Cluster by its startup nodes, as `--rooms` named it.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisAddr {
    /// `HOST:PORT` of the server, or of each startup node of a cluster.
    pub(crate) nodes: Vec<String>,
    pub(crate) cluster: bool,
    /// `rediss://`: TLS to every node.
    pub(crate) tls: bool,
    /// An ACL user (`default` when only a password is given).
    pub(crate) user: Option<String>,
    /// Kept as written in the URL (percent-encoded): never shown.
    password: Option<String>,
    pub(crate) db: Option<u32>,
    /// `--rooms-ca-file`, `--rooms-client-cert` and its key.
    pub(crate) files: RedisTlsFiles,
}

/// The files a `rediss://` store is reached with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedisTlsFiles {
    /// The CA that signed the servers' certificates (else the system's roots).
    pub ca: Option<PathBuf>,
    /// A client certificate and its key, for servers that ask for one.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// The forms `--rooms` takes, for messages.
const FORMS: &str = "memory, redis[s]://[USER:PASSWORD@]HOST:PORT[/DB] \
                     or redis[s]+cluster://[USER:PASSWORD@]HOST:PORT,HOST:PORT,...";

impl RedisAddr {
    /// The URL of `node` for the redis crate, with the credentials.
    pub(crate) fn url_of(&self, node: &str) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let credentials = match (&self.user, &self.password) {
            (Some(user), Some(password)) => format!("{user}:{password}@"),
            (None, Some(password)) => format!(":{password}@"),
            (Some(user), None) => format!("{user}@"),
            (None, None) => String::new(),
        };
        let db = self.db.map(|db| format!("/{db}")).unwrap_or_default();
        format!("{scheme}://{credentials}{node}{db}")
    }

    /// The URL of each node (one for a single Redis).
    pub(crate) fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|node| self.url_of(node)).collect()
    }

    /// With the TLS files of `--rooms-ca-file` and `--rooms-client-cert`/`-key`;
    /// they need a `rediss://` store.
    pub fn with_tls_files(mut self, files: RedisTlsFiles) -> Result<Self, String> {
        if !self.tls && files != RedisTlsFiles::default() {
            return Err(
                "--rooms-ca-file and --rooms-client-cert need a TLS store: --rooms rediss://... \
                 or rediss+cluster://..."
                    .to_owned(),
            );
        }
        self.files = files;
        Ok(self)
    }
}

impl FromStr for RoomStoreAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == "memory" {
            return Ok(RoomStoreAddr::Memory);
        }
        // The message shows the URL as Display would: never its password.
        let shown = mask(text);
        let bad = |why: &str| format!("--rooms {shown}: {why} ({FORMS})");
        let (scheme, rest) = text.split_once("://").ok_or_else(|| bad("unknown store"))?;
        let (tls, cluster) = match scheme {
            "redis" => (false, false),
            "rediss" => (true, false),
            "redis+cluster" => (false, true),
            "rediss+cluster" => (true, true),
            _ => return Err(bad("unknown store")),
        };
        let (credentials, rest) = match rest.rsplit_once('@') {
            Some((credentials, rest)) => (Some(credentials), rest),
            None => (None, rest),
        };
        let (user, password) = match credentials {
            None => (None, None),
            Some(credentials) => match credentials.split_once(':') {
                Some((user, password)) => (
                    Some(user).filter(|user| !user.is_empty()),
                    Some(password.to_owned()),
                ),
                None => (Some(credentials), None),
            },
        };
        if password.as_deref() == Some("") {
            return Err(bad("an empty password"));
        }
        let (hosts, db) = rest.split_once('/').unwrap_or((rest, ""));
        let db = match db {
            "" => None,
            db if cluster => return Err(bad(&format!("a cluster has no database /{db}"))),
            db => Some(
                db.parse::<u32>()
                    .map_err(|_| bad("the database is not a number"))?,
            ),
        };
        let nodes: Vec<String> = hosts.split(',').map(str::to_owned).collect();
        if !cluster && nodes.len() > 1 {
            return Err(bad("several nodes name a cluster: redis+cluster://"));
        }
        for node in &nodes {
            let (host, port) = node.rsplit_once(':').ok_or_else(|| bad("no :PORT"))?;
            if host.is_empty() {
                return Err(bad("no HOST"));
            }
            port.parse::<u16>()
                .map_err(|_| bad("the port is not a number"))?;
        }
        Ok(RoomStoreAddr::Redis(RedisAddr {
            nodes,
            cluster,
            tls,
            user: user.map(str::to_owned),
            password,
            db,
            files: RedisTlsFiles::default(),
        }))
    }
}

/// `text` with the password of a URL's credentials replaced by `***`; of
/// text that is not a URL (no `scheme://` before its `@`, a mistyped one),
/// nothing before the `@` is shown.
fn mask(text: &str) -> String {
    let Some((credentials, hosts)) = text.rsplit_once('@') else {
        return text.to_owned();
    };
    match credentials.split_once("://") {
        Some((scheme, userinfo)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{hosts}"),
            // A user alone: nothing secret.
            None => text.to_owned(),
        },
        None => format!("***@{hosts}"),
    }
}

impl fmt::Display for RoomStoreAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoomStoreAddr::Memory => write!(f, "memory"),
            RoomStoreAddr::Redis(addr) => write!(f, "{addr}"),
        }
    }
}

/// The URL with its password masked (`***`).
impl fmt::Display for RedisAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match (self.tls, self.cluster) {
            (false, false) => "redis",
            (true, false) => "rediss",
            (false, true) => "redis+cluster",
            (true, true) => "rediss+cluster",
        };
        write!(f, "{scheme}://")?;
        match (&self.user, &self.password) {
            (user, Some(_)) => write!(f, "{}:***@", user.as_deref().unwrap_or(""))?,
            (Some(user), None) => write!(f, "{user}@")?,
            (None, None) => {}
        }
        write!(f, "{}", self.nodes.join(","))?;
        if let Some(db) = self.db {
            write!(f, "/{db}")?;
        }
        Ok(())
    }
}

/// As Display: a configuration dump never shows the password.
impl fmt::Debug for RedisAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisAddr({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redis(text: &str) -> RedisAddr {
        match text.parse() {
            Ok(RoomStoreAddr::Redis(addr)) => addr,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn stores_parse_and_bad_ones_say_why() {
        assert_eq!("memory".parse(), Ok(RoomStoreAddr::Memory));
        let one = redis("redis://127.0.0.1:6379/2");
        assert_eq!(one.to_string(), "redis://127.0.0.1:6379/2");
        assert_eq!(one.urls(), ["redis://127.0.0.1:6379/2"]);
        assert!("redis://[::1]:6379".parse::<RoomStoreAddr>().is_ok());
        for (text, why) in [
            ("mem", "unknown store"),
            ("http://host:1", "unknown store"),
            ("redis://host", "no :PORT"),
            ("redis://host:x", "not a number"),
            ("redis://host:1/a", "database"),
            ("redis://h:1,h:2", "redis+cluster"),
            ("redis+cluster://h:1,h:2/3", "no database"),
            ("redis://u:@h:1", "empty password"),
        ] {
            let error = text.parse::<RoomStoreAddr>().unwrap_err();
            assert!(error.contains(why), "{text}: {error}");
        }
    }

    #[test]
    fn a_cluster_is_named_by_its_startup_nodes() {
        let cluster = redis("rediss+cluster://a:7000,b:7001,c:7002");
        assert!(cluster.cluster && cluster.tls);
        assert_eq!(cluster.nodes, ["a:7000", "b:7001", "c:7002"]);
        assert_eq!(cluster.urls()[1], "rediss://b:7001");
        assert_eq!(cluster.to_string(), "rediss+cluster://a:7000,b:7001,c:7002");
    }

    #[test]
    fn the_password_is_used_but_never_shown() {
        let addr = redis("rediss://ann:s3cr%40t@host:6380/1");
        assert_eq!(addr.urls(), ["rediss://ann:s3cr%40t@host:6380/1"]);
        let shown = [
            addr.to_string(),
            format!("{addr:?}"),
            RoomStoreAddr::Redis(addr.clone()).to_string(),
        ];
        for text in shown {
            assert!(!text.contains("s3cr"), "{text}");
            assert!(text.contains("ann:***@host:6380"), "{text}");
        }
        assert_eq!(
            redis("redis://:pw@h:1").to_string(),
            "redis://:***@h:1",
            "a password alone (the default user)"
        );
        let error = "redis://ann:hunter2@host:x"
            .parse::<RoomStoreAddr>()
            .unwrap_err();
        assert!(!error.contains("hunter2"), "{error}");
        assert!(error.contains("ann:***@host:x"), "{error}");
        // Not a URL (a mistyped scheme): nothing before the `@` is shown.
        for text in ["redis:/ann:hunter2@host:1", "ann:hunter2@host:1"] {
            let error = text.parse::<RoomStoreAddr>().unwrap_err();
            assert!(!error.contains("hunter2"), "{error}");
            assert!(
                error.contains("--rooms ***@host:1: unknown store"),
                "{error}"
            );
        }
    }

    #[test]
    fn tls_files_need_a_tls_store() {
        let files = RedisTlsFiles {
            ca: Some("ca.pem".into()),
            client: None,
        };
        assert!(redis("redis://h:1")
            .with_tls_files(files.clone())
            .unwrap_err()
            .contains("rediss://"));
        let addr = redis("rediss://h:1").with_tls_files(files.clone()).unwrap();
        assert_eq!(addr.files, files);
    }
}
