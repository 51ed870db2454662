//! StreamLearnings stamps each update with the local time as `HH:MM:SS`, like
//! the lab's `time.strftime("%H:%M:%S")`. Transcripts differ only there, so
//! comparisons mask it.

/// The local wall-clock time now, as `HH:MM:SS`.
pub fn now() -> String {
    chrono::Local::now().format("%H:%M:%S").to_string()
}

/// Whether `text` is a time as [`now`] writes it.
pub fn is_clock_time(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 8
        && bytes.iter().enumerate().all(|(i, b)| {
            if i % 3 == 2 {
                *b == b':'
            } else {
                b.is_ascii_digit()
            }
        })
}

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
    fn clock_times_are_two_digits_three_times() {
        assert!(is_clock_time("12:34:56"));
        assert!(is_clock_time(&now()));
        assert!(!is_clock_time("12:34"));
        assert!(!is_clock_time("12-34-56"));
        assert!(!is_clock_time("1:234:56"));
    }

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
