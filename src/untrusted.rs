//! What a caller sent, as a log line may quote it: a newline in a `user_id`
//! must not start a line of its own, nor a terminal escape recolour one.
//! Control characters, backslashes and the invisible characters that
//! reorder or hide text (bidi overrides, zero-width ones) are escaped the
//! way Rust writes them (`\n`, `\\`, `\u{202e}`); everything else, any
//! script included, is kept as it is, so the lab's lines read the same.

use std::fmt::{self, Write as _};

/// `text`, escaped when shown: `info!("from: {}", untrusted(&req.user_id))`.
pub fn untrusted(text: &str) -> Untrusted<'_> {
    Untrusted(text)
}

/// Text a caller sent; its `Display` escapes what could forge a log line.
#[derive(Clone, Copy, Debug)]
pub struct Untrusted<'a>(&'a str);

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if c.is_control() || hides_or_reorders(c) => {
                    write!(f, "\\u{{{:x}}}", u32::from(c))?
                }
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// Characters that show nothing themselves but change what is seen: bidi
/// controls, zero-width ones, line and paragraph separators, the BOM.
fn hides_or_reorders(c: char) -> bool {
    matches!(
        c,
        '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}'
            | '\u{061c}'
            | '\u{feff}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(text: &str) -> String {
        untrusted(text).to_string()
    }

    #[test]
    fn a_line_cannot_be_forged_and_plain_text_is_unchanged() {
        assert_eq!(shown("researcher-01"), "researcher-01");
        assert_eq!(shown("Ada Lovelace, 短い, é"), "Ada Lovelace, 短い, é");
        assert_eq!(
            shown("ann\n[2026-12-05T10:05:59Z INFO  x] forged"),
            "ann\\n[2026-12-05T10:05:59Z INFO  x] forged"
        );
        assert_eq!(shown("a\r\tb"), "a\\r\\tb");
        assert_eq!(shown("\x1b[31mred"), "\\u{1b}[31mred");
        assert_eq!(shown("\u{85}\u{7f}"), "\\u{85}\\u{7f}");
        assert_eq!(shown("evil\u{202e}gnp.exe"), "evil\\u{202e}gnp.exe");
        assert_eq!(shown("a\u{200b}b\u{2028}c"), "a\\u{200b}b\\u{2028}c");
        // The escape itself cannot be forged: a backslash is doubled.
        assert_eq!(shown("a\\nb"), "a\\\\nb");
        assert!(!shown("x\ny\rz\u{2028}").contains(['\n', '\r', '\u{2028}']));
    }
}
