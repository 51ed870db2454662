//! What the lab's server answers, word for word. The server's handlers
//! build their answers with these; the tools and tests check against them.

use std::time::Duration;

use crate::clock;
use crate::proto::messenger::{FeedUpdate, LearningUpdate, SummaryResponse};

/// The lab's simulated latency: the server's pause before each StreamLearnings
/// update, and the client demos' pause before each streamed message.
pub const LAB_DELAY: Duration = Duration::from_secs(1);

/// The unary answer.
pub const STATUS_MESSAGE: &str = "System ready for research. Status check OK.";

/// The user the server's feed echoes come from.
pub const FEED_ECHO_USER: &str = "System";

/// The four StreamLearnings contents for `topic`, in order.
pub fn learning_contents(topic: &str) -> [String; 4] {
    [
        format!("Searching for research papers on {topic}..."),
        format!("Analyzing core principles of {topic}..."),
        "Synthesizing key gRPC use cases...".to_owned(),
        "Finalizing the consolidated report.".to_owned(),
    ]
}

/// StreamLearnings update `index` (from 0) of `contents`, stamped now.
pub fn learning_update(index: usize, content: String) -> LearningUpdate {
    LearningUpdate {
        content,
        progress: progress_of(index),
        timestamp: clock::now(),
        ..Default::default()
    }
}

/// The progress of update `index` (from 0): 25, 50, 75, 100.
pub fn progress_of(index: usize) -> i32 {
    (index as i32 + 1) * 25
}

/// The SubmitResearchNotes answer for `count` notes, the last being `last`.
pub fn summarize(count: i32, last: Option<&str>) -> SummaryResponse {
    SummaryResponse {
        count,
        final_summary: format!(
            "Processed {count} notes. Key takeaway: {}",
            last.unwrap_or("None")
        ),
        ..Default::default()
    }
}

/// The CollaborativeFeed echo of one update.
pub fn acknowledge(update: &FeedUpdate) -> FeedUpdate {
    FeedUpdate {
        user: FEED_ECHO_USER.to_owned(),
        message: acknowledgement(&update.user, &update.message),
        ..Default::default()
    }
}

/// The text of the echo of `user`'s `message`.
pub fn acknowledgement(user: &str, message: &str) -> String {
    let mut text = String::new();
    write_acknowledgement(&mut text, user, message);
    text
}

/// [`acknowledgement`], written into `out`: a checker of a million echoes
/// reuses one buffer.
pub fn write_acknowledgement(out: &mut String, user: &str, message: impl std::fmt::Display) {
    use std::fmt::Write as _;
    // Writing to a String cannot fail.
    let _ = write!(out, "Acknowledged {user}'s update: {message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_no_notes_says_none() {
        assert_eq!(
            summarize(0, None).final_summary,
            "Processed 0 notes. Key takeaway: None"
        );
        assert_eq!(
            summarize(2, Some("b")).final_summary,
            "Processed 2 notes. Key takeaway: b"
        );
    }

    #[test]
    fn updates_count_up_to_a_hundred_percent() {
        let progress: Vec<_> = (0..4).map(progress_of).collect();
        assert_eq!(progress, [25, 50, 75, 100]);
        assert!(clock::is_clock_time(
            &learning_update(0, "c".into()).timestamp
        ));
    }
}
