//! What the lab's client sends in its four demos, in order.

use crate::proto::messenger::{FeedUpdate, ResearchNote, StatusRequest, TopicRequest};

pub const USER_ID: &str = "researcher-01";
pub const TOPIC: &str = "gRPC Protocols";
pub const NOTES: [&str; 4] = [
    "Note 1: gRPC uses HTTP/2 Multiplexing",
    "Note 2: Built on Protocol Buffers",
    "Note 3: Binary TLV serialization",
    "Note 4: Typed interface contracts",
];
const FEED: [(&str, &str); 3] = [
    ("Engineer", "Initializing system..."),
    ("Lead", "Monitoring data flow..."),
    ("QA", "Verifying latency..."),
];

pub fn status_request() -> StatusRequest {
    StatusRequest {
        user_id: USER_ID.to_owned(),
        ..Default::default()
    }
}

pub fn topic_request() -> TopicRequest {
    TopicRequest {
        topic: TOPIC.to_owned(),
        ..Default::default()
    }
}

pub fn notes() -> impl Iterator<Item = ResearchNote> {
    NOTES.into_iter().map(|text| ResearchNote {
        text: text.to_owned(),
        ..Default::default()
    })
}

pub fn feed() -> impl Iterator<Item = FeedUpdate> {
    FEED.into_iter().map(|(user, message)| FeedUpdate {
        user: user.to_owned(),
        message: message.to_owned(),
        ..Default::default()
    })
}
