//! Numbered requests a load tool sends, and checks of every answer against
//! what the lab's server must say: a fast wrong answer never counts.

use messenger_lab::answers::{self, FEED_ECHO_USER, STATUS_MESSAGE};
use messenger_lab::clock;
use messenger_lab::proto::messenger::{
    FeedUpdate, LearningUpdate, ResearchNote, StatusResponse, SummaryResponse,
};

/// The user every numbered feed update comes from.
const LOAD_USER: &str = "bench";

/// Checks a GetLearningStatus answer.
pub fn check_status(response: &StatusResponse) -> Result<(), String> {
    if response.message != STATUS_MESSAGE || !response.active {
        return Err(format!(
            "status was {:?} (active: {})",
            response.message, response.active
        ));
    }
    Ok(())
}

/// Checks the `index`th StreamLearnings update for `topic`.
pub fn check_learning_update(
    topic: &str,
    index: usize,
    update: &LearningUpdate,
) -> Result<(), String> {
    let expected = answers::learning_contents(topic);
    let Some(content) = expected.get(index) else {
        return Err(format!("more than {} updates", expected.len()));
    };
    if update.content != *content || update.progress != answers::progress_of(index) {
        return Err(format!(
            "update {index} was {:?} at {}%",
            update.content, update.progress
        ));
    }
    if !clock::is_clock_time(&update.timestamp) {
        return Err(format!(
            "update {index} has timestamp {:?}, not HH:MM:SS",
            update.timestamp
        ));
    }
    Ok(())
}

/// The `i`th note of a load run, made when it is sent.
pub fn numbered_note(i: u64) -> ResearchNote {
    ResearchNote {
        text: format!("Note {i}: gRPC streams notes"),
        ..Default::default()
    }
}

/// Checks the summary of `count` notes made by [`numbered_note`].
pub fn check_summary(count: u64, summary: &SummaryResponse) -> Result<(), String> {
    let last = count.checked_sub(1).map(|i| numbered_note(i).text);
    let expected = answers::summarize(i32::try_from(count).unwrap_or(i32::MAX), last.as_deref());
    if summary.count != expected.count || summary.final_summary != expected.final_summary {
        return Err(format!(
            "summary was {} notes, {:?}; expected {} notes, {:?}",
            summary.count, summary.final_summary, expected.count, expected.final_summary
        ));
    }
    Ok(())
}

/// The `i`th feed update of a load run.
pub fn numbered_update(i: u64) -> FeedUpdate {
    FeedUpdate {
        user: LOAD_USER.to_owned(),
        message: format!("update {i}"),
        ..Default::default()
    }
}

/// Checks the echo of [`numbered_update`]`(i)`; `expected` is scratch space, reused.
pub fn check_echo(i: u64, echo: &FeedUpdate, expected: &mut String) -> Result<(), String> {
    expected.clear();
    answers::write_acknowledgement(expected, LOAD_USER, format_args!("update {i}"));
    if echo.user != FEED_ECHO_USER || echo.message != *expected {
        return Err(format!(
            "echo {i} was {:?}: {:?}; expected {FEED_ECHO_USER:?}: {expected:?}",
            echo.user, echo.message
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use messenger_lab::answers::{acknowledge, learning_contents, summarize};
    use messenger_lab::demo::TOPIC;

    #[test]
    fn the_right_summary_passes_and_a_wrong_one_is_caught() {
        let right = summarize(3, Some(&numbered_note(2).text));
        assert_eq!(check_summary(3, &right), Ok(()));
        let off_by_one = summarize(2, Some(&numbered_note(1).text));
        assert!(check_summary(3, &off_by_one)
            .unwrap_err()
            .contains("expected 3 notes"));
        let wrong_last = summarize(3, Some(&numbered_note(1).text));
        assert!(check_summary(3, &wrong_last).is_err());
        assert_eq!(check_summary(0, &summarize(0, None)), Ok(()));
    }

    #[test]
    fn echoes_are_checked_against_their_update() {
        let mut scratch = String::new();
        assert_eq!(
            check_echo(7, &acknowledge(&numbered_update(7)), &mut scratch),
            Ok(())
        );
        assert!(
            check_echo(7, &acknowledge(&numbered_update(8)), &mut scratch)
                .unwrap_err()
                .contains("echo 7")
        );
        let mut wrong_user = acknowledge(&numbered_update(7));
        wrong_user.user = "Someone".into();
        assert!(check_echo(7, &wrong_user, &mut scratch).is_err());
    }

    #[test]
    fn learning_updates_are_checked_in_order() {
        let update = |index: usize, timestamp: &str| LearningUpdate {
            content: learning_contents(TOPIC)[index].clone(),
            progress: answers::progress_of(index),
            timestamp: timestamp.to_owned(),
            ..Default::default()
        };
        assert_eq!(
            check_learning_update(TOPIC, 0, &update(0, "12:34:56")),
            Ok(())
        );
        assert!(check_learning_update(TOPIC, 1, &update(0, "12:34:56")).is_err());
        assert!(check_learning_update(TOPIC, 0, &update(0, "12:34"))
            .unwrap_err()
            .contains("HH:MM:SS"));
        assert!(check_learning_update(TOPIC, 4, &update(3, "12:34:56"))
            .unwrap_err()
            .contains("more than 4"));
    }

    #[test]
    fn a_wrong_status_is_caught() {
        let right = StatusResponse {
            message: STATUS_MESSAGE.to_owned(),
            active: true,
            ..Default::default()
        };
        assert_eq!(check_status(&right), Ok(()));
        assert!(check_status(&StatusResponse {
            active: false,
            ..right.clone()
        })
        .is_err());
        assert!(check_status(&StatusResponse {
            message: "ok".into(),
            ..right
        })
        .is_err());
    }
}
