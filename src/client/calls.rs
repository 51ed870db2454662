//! One function per LearningMessenger RPC: make the call, print each message
//! the moment it arrives. The lab's demos and the client's commands are all
//! built on these.

use std::io::Write;
use std::time::Duration;

use futures::{Stream, TryStreamExt};
use grpcio::Metadata;

use super::output::{Printer, Received};
use super::streaming::{send_and_receive, spawn_sender};
use super::ClientError;
use crate::proto::messenger::{FeedUpdate, ResearchNote, StatusRequest, TopicRequest};
use crate::rpc::messenger::LearningMessengerClient;
use crate::rpc::SERVED_BY;

/// The replica named by an answer's initial metadata, if it names one.
pub fn served_by(headers: &Metadata) -> Option<&str> {
    headers
        .iter()
        .find(|(key, _)| *key == SERVED_BY)
        .and_then(|(_, value)| std::str::from_utf8(value).ok())
}

/// Unary: one request, one response.
pub async fn status<W: Write>(
    client: &LearningMessengerClient,
    user_id: &str,
    printer: &mut Printer<W>,
) -> Result<(), ClientError> {
    let request = StatusRequest {
        user_id: user_id.to_owned(),
        ..Default::default()
    };
    let mut call = client.get_learning_status_async(&request)?;
    if printer.shows_replica() {
        let headers = call.headers().await?;
        printer.replica("GetLearningStatus", served_by(headers))?;
    }
    let response = call.message().await?;
    printer.received(Received::Status(&response))?;
    Ok(())
}

/// Server streaming: each update printed as it arrives (on a terminal, with a
/// progress bar that follows it).
pub async fn learn<W: Write>(
    client: &LearningMessengerClient,
    topic: &str,
    printer: &mut Printer<W>,
) -> Result<(), ClientError> {
    let request = TopicRequest {
        topic: topic.to_owned(),
        ..Default::default()
    };
    let mut updates = client.stream_learnings_async(&request)?;
    if printer.shows_replica() {
        let headers = updates.headers().await?;
        printer.replica("StreamLearnings", served_by(headers))?;
    }
    printer.start_progress();
    while let Some(update) = updates.try_next().await? {
        printer.received(Received::Update(&update))?;
    }
    printer.finish_progress();
    Ok(())
}

/// Client streaming: `notes` go up as they come, one `delay` apart, and the
/// summary is printed once the server has them all.
pub async fn upload<W: Write>(
    client: &LearningMessengerClient,
    notes: impl Stream<Item = Result<ResearchNote, ClientError>> + Send + 'static,
    delay: Duration,
    printer: &mut Printer<W>,
) -> Result<(), ClientError> {
    let (mut sender, mut call) = client.submit_research_notes_async()?;
    sender.enhance_batch(true);
    let send = spawn_sender(client, sender, notes, delay);
    let summary = send_and_receive(send, async { Ok(call.message().await?) }).await?;
    if printer.shows_replica() {
        let headers = call.headers().await?;
        printer.replica("SubmitResearchNotes", served_by(headers))?;
    }
    printer.received(Received::Summary(&summary))?;
    Ok(())
}

/// Bidirectional streaming: `updates` go up as they come, one `delay` apart,
/// while each echo is printed the moment it arrives (full duplex). Ends after
/// the last echo, once `updates` has ended.
pub async fn feed<W: Write>(
    client: &LearningMessengerClient,
    updates: impl Stream<Item = Result<FeedUpdate, ClientError>> + Send + 'static,
    delay: Duration,
    printer: &mut Printer<W>,
) -> Result<(), ClientError> {
    feed_printing(client, updates, delay, printer, |p, echo| {
        p.received(Received::Echo(echo))
    })
    .await
}

/// A feed whose every received update is printed by `print`.
async fn feed_printing<W: Write>(
    client: &LearningMessengerClient,
    updates: impl Stream<Item = Result<FeedUpdate, ClientError>> + Send + 'static,
    delay: Duration,
    printer: &mut Printer<W>,
    print: impl Fn(&mut Printer<W>, &FeedUpdate) -> std::io::Result<()>,
) -> Result<(), ClientError> {
    let (mut sender, mut echoes) = client.collaborative_feed_async()?;
    sender.enhance_batch(true);
    let receive = async {
        if printer.shows_replica() {
            let headers = echoes.headers().await?;
            printer.replica("CollaborativeFeed", served_by(headers))?;
        }
        while let Some(echo) = echoes.try_next().await? {
            print(printer, &echo)?;
        }
        Ok(())
    };
    send_and_receive(spawn_sender(client, sender, updates, delay), receive).await
}
