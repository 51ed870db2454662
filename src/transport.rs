//! HTTP/2 settings that the server and the client share.

use std::time::Duration;

/// gRPC's own default message limit: the server refuses larger requests, the
/// client refuses larger input lines.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// How often an idle connection is pinged...
pub const KEEPALIVE_TIME: Duration = Duration::from_secs(30);
/// ...and how long a ping may go unanswered before the peer counts as gone
/// and its calls end.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
