//! StreamLearnings stamps each update with the local time as `HH:MM:SS`, like
//! the lab's `time.strftime("%H:%M:%S")`. Transcripts differ only there
//! (messenger-testkit's `transcript` masks them).

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
}
