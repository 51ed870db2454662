//! The seed's client.py, demo by demo: the same calls, the same printed lines.

use std::io::Write;
use std::time::Duration;

use futures::{stream, Stream};

use super::calls;
use super::output::{Format, Printer};
use super::ClientError;
use crate::proto::messenger::{FeedUpdate, ResearchNote};
use crate::rpc::messenger::LearningMessengerClient;

/// The seed's pause before each outgoing streamed message.
pub const DEFAULT_DELAY: Duration = Duration::from_secs(1);
pub const DEMO_USER_ID: &str = "researcher-01";
pub const DEMO_TOPIC: &str = "gRPC Protocols";
pub const DEMO_NOTES: [&str; 4] = [
    "Note 1: gRPC uses HTTP/2 Multiplexing",
    "Note 2: Built on Protocol Buffers",
    "Note 3: Binary TLV serialization",
    "Note 4: Typed interface contracts",
];
pub const DEMO_FEED: [(&str, &str); 3] = [
    ("Engineer", "Initializing system..."),
    ("Lead", "Monitoring data flow..."),
    ("QA", "Verifying latency..."),
];

/// The seed's four notes, as the stream an upload sends.
pub fn demo_notes() -> impl Stream<Item = Result<ResearchNote, ClientError>> {
    stream::iter(DEMO_NOTES.map(|text| Ok(ResearchNote { text: text.to_owned(), ..Default::default() })))
}

/// The seed's three feed updates, as the stream a feed sends.
pub fn demo_feed() -> impl Stream<Item = Result<FeedUpdate, ClientError>> {
    stream::iter(DEMO_FEED.map(|(user, message)| {
        Ok(FeedUpdate { user: user.to_owned(), message: message.to_owned(), ..Default::default() })
    }))
}

/// The four demos in the seed's order, printed exactly as the seed prints them.
pub async fn run_all(client: &LearningMessengerClient, delay: Duration, out: &mut impl Write) -> Result<(), ClientError> {
    play_all(client, delay, &mut Printer::plain(out, Format::Text)).await
}

/// The four demos in the seed's order, through `printer` (text or JSON).
pub async fn play_all<W: Write>(
    client: &LearningMessengerClient,
    delay: Duration,
    printer: &mut Printer<W>,
) -> Result<(), ClientError> {
    run_unary(client, printer).await?;
    run_server_streaming(client, printer).await?;
    run_client_streaming(client, delay, printer).await?;
    run_bidirectional_streaming(client, delay, printer).await
}

/// 1. Unary: one request, one response.
pub async fn run_unary<W: Write>(client: &LearningMessengerClient, printer: &mut Printer<W>) -> Result<(), ClientError> {
    printer.section("--- Unary Request ---")?;
    calls::status(client, DEMO_USER_ID, printer).await
}

/// 2. Server streaming: each update printed as it arrives.
pub async fn run_server_streaming<W: Write>(
    client: &LearningMessengerClient,
    printer: &mut Printer<W>,
) -> Result<(), ClientError> {
    printer.section("--- Server Streaming (Real-time updates) ---")?;
    calls::learn(client, DEMO_TOPIC, printer).await
}

/// 3. Client streaming: the notes go up one by one, the summary comes back once.
pub async fn run_client_streaming<W: Write>(
    client: &LearningMessengerClient,
    delay: Duration,
    printer: &mut Printer<W>,
) -> Result<(), ClientError> {
    printer.section("--- Client Streaming (Uploading research notes) ---")?;
    calls::upload(client, demo_notes(), delay, printer).await
}

/// 4. Bidirectional streaming: updates go up while echoes come back.
pub async fn run_bidirectional_streaming<W: Write>(
    client: &LearningMessengerClient,
    delay: Duration,
    printer: &mut Printer<W>,
) -> Result<(), ClientError> {
    printer.section("--- Bi-directional Streaming (Collaborative Feed) ---")?;
    calls::feed(client, demo_feed(), delay, printer).await
}
