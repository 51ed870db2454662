//! Transcripts compared across runs and implementations: they differ only in
//! StreamLearnings' `HH:MM:SS` stamps, which comparisons mask.

use messenger_lab::clock::is_clock_time;

/// What a masked time reads as.
const MASK: &str = "--:--:--";

/// `transcript` with every `[HH:MM:SS]` replaced by `[--:--:--]`.
pub fn mask_times(transcript: &str) -> String {
    let mut masked = String::with_capacity(transcript.len());
    let mut rest = transcript;
    while let Some(open) = rest.find('[') {
        let (before, from) = rest.split_at(open);
        masked.push_str(before);
        match from.get(1..9).filter(|time| is_clock_time(time)) {
            Some(_) if from[9..].starts_with(']') => {
                masked.push('[');
                masked.push_str(MASK);
                rest = &from[9..];
            }
            _ => {
                masked.push('[');
                rest = &from[1..];
            }
        }
    }
    masked.push_str(rest);
    masked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bracketed_times_are_masked() {
        assert_eq!(
            mask_times("[12:34:56] Progress 25%: a [b] [1:2:3]\n[23:59:59]"),
            "[--:--:--] Progress 25%: a [b] [1:2:3]\n[--:--:--]"
        );
        assert_eq!(mask_times("[12:34:56"), "[12:34:56");
        assert_eq!(mask_times("é[00:00:00]é"), "é[--:--:--]é");
    }
}
