//! The seed's client.py, demo by demo: the same calls, the same printed lines.

use std::io::Write;
use std::time::Duration;

use futures::TryStreamExt;

use super::{send_paced, ClientError};
use crate::proto::messenger::{FeedUpdate, ResearchNote, StatusRequest, TopicRequest};
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

/// The four demos in the seed's order.
pub async fn run_all(client: &LearningMessengerClient, delay: Duration, out: &mut impl Write) -> Result<(), ClientError> {
    run_unary(client, out).await?;
    run_server_streaming(client, out).await?;
    run_client_streaming(client, delay, out).await?;
    run_bidirectional_streaming(client, delay, out).await
}

/// 1. Unary: one request, one response.
pub async fn run_unary(client: &LearningMessengerClient, out: &mut impl Write) -> Result<(), ClientError> {
    writeln!(out, "--- Unary Request ---")?;
    let request = StatusRequest { user_id: DEMO_USER_ID.to_owned(), ..Default::default() };
    let response = client.get_learning_status_async(&request)?.await?;
    writeln!(out, "Server Response: {} (Active: {})", response.message, python_bool(response.active))?;
    Ok(())
}

/// 2. Server streaming: each update printed as it arrives.
pub async fn run_server_streaming(client: &LearningMessengerClient, out: &mut impl Write) -> Result<(), ClientError> {
    writeln!(out, "\n--- Server Streaming (Real-time updates) ---")?;
    let request = TopicRequest { topic: DEMO_TOPIC.to_owned(), ..Default::default() };
    let mut updates = client.stream_learnings_async(&request)?;
    while let Some(update) = updates.try_next().await? {
        writeln!(out, "[{}] Progress {}%: {}", update.timestamp, update.progress, update.content)?;
    }
    Ok(())
}

/// 3. Client streaming: the notes go up one by one, the summary comes back once.
pub async fn run_client_streaming(
    client: &LearningMessengerClient,
    delay: Duration,
    out: &mut impl Write,
) -> Result<(), ClientError> {
    writeln!(out, "\n--- Client Streaming (Uploading research notes) ---")?;
    let notes = DEMO_NOTES.map(|text| ResearchNote { text: text.to_owned(), ..Default::default() });
    let (mut sender, summary) = client.submit_research_notes_async()?;
    let sent = send_paced(&mut sender, notes, delay).await;
    // If sending failed, the summary carries the status that says why.
    let summary = summary.await?;
    sent?;
    writeln!(out, "Server Summary: {} (Total {})", summary.final_summary, summary.count)?;
    Ok(())
}

/// 4. Bidirectional streaming: updates go up while echoes come back.
pub async fn run_bidirectional_streaming(
    client: &LearningMessengerClient,
    delay: Duration,
    out: &mut impl Write,
) -> Result<(), ClientError> {
    writeln!(out, "\n--- Bi-directional Streaming (Collaborative Feed) ---")?;
    let updates = DEMO_FEED.map(|(user, message)| FeedUpdate {
        user: user.to_owned(),
        message: message.to_owned(),
        ..Default::default()
    });
    let (mut sender, mut echoes) = client.collaborative_feed_async()?;
    let send = send_paced(&mut sender, updates, delay);
    let receive = async {
        while let Some(echo) = echoes.try_next().await? {
            writeln!(out, " [Feed Update] {}: {}", echo.user, echo.message)?;
        }
        Ok::<(), ClientError>(())
    };
    let (sent, received) = futures::join!(send, receive);
    received?;
    sent?;
    Ok(())
}

/// Python's spelling of a bool, as the seed prints it.
fn python_bool(value: bool) -> &'static str {
    if value { "True" } else { "False" }
}
