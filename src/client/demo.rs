//! The lab's client.py, demo by demo: the same calls, the same printed lines.

use std::io::Write;
use std::time::Duration;

use futures::{stream, Stream};

use super::calls;
use messenger_lab::demo;

use super::output::Printer;
use super::ClientError;
use crate::proto::messenger::{FeedUpdate, ResearchNote};
use crate::rpc::messenger::LearningMessengerClient;

/// The lab's four notes, as the stream an upload sends.
pub fn notes() -> impl Stream<Item = Result<ResearchNote, ClientError>> {
    stream::iter(demo::notes().map(Ok))
}

/// The lab's three feed updates, as the stream a feed sends.
pub fn feed() -> impl Stream<Item = Result<FeedUpdate, ClientError>> {
    stream::iter(demo::feed().map(Ok))
}

/// The four demos in the lab's order, through `printer`: with
/// [`Printer::plain`] and text, exactly the lab's transcript.
pub async fn run_all<W: Write>(
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
pub async fn run_unary<W: Write>(
    client: &LearningMessengerClient,
    printer: &mut Printer<W>,
) -> Result<(), ClientError> {
    printer.section("--- Unary Request ---")?;
    calls::status(client, demo::USER_ID, printer).await
}

/// 2. Server streaming: each update printed as it arrives.
pub async fn run_server_streaming<W: Write>(
    client: &LearningMessengerClient,
    printer: &mut Printer<W>,
) -> Result<(), ClientError> {
    printer.section("--- Server Streaming (Real-time updates) ---")?;
    calls::learn(client, demo::TOPIC, printer).await
}

/// 3. Client streaming: the notes go up one by one, the summary comes back once.
pub async fn run_client_streaming<W: Write>(
    client: &LearningMessengerClient,
    delay: Duration,
    printer: &mut Printer<W>,
) -> Result<(), ClientError> {
    printer.section("--- Client Streaming (Uploading research notes) ---")?;
    calls::upload(client, notes(), delay, printer).await
}

/// 4. Bidirectional streaming: updates go up while echoes come back.
pub async fn run_bidirectional_streaming<W: Write>(
    client: &LearningMessengerClient,
    delay: Duration,
    printer: &mut Printer<W>,
) -> Result<(), ClientError> {
    printer.section("--- Bi-directional Streaming (Collaborative Feed) ---")?;
    calls::feed(client, feed(), delay, printer).await
}
