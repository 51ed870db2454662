//! Credentials on the wire: the headers whose values are secrets, shown by
//! their length only, and their bytes found in a header block's HPACK
//! encoding (RFC 7541 §6) so the frame's raw bytes can be masked too.
//!
//! A value is a string literal in the block, plain or Huffman-coded; a
//! later reference to it through the dynamic table (an indexed field)
//! carries only an index, no bytes of it.

use std::ops::Range;

/// Headers whose values are credentials: never shown, in no view.
const CREDENTIALS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// What masked bytes become in a frame's raw bytes (`*`).
pub const MASK_BYTE: u8 = b'*';

/// Whether header `name` (lowercase, as HTTP/2 sends it) carries a credential.
pub fn is_credential(name: &str) -> bool {
    CREDENTIALS.contains(&name)
}

/// A header's value as the views show it: a credential only by its scheme
/// (`Bearer`, `Basic`) and length, so a printed or pasted view leaks none.
pub fn shown_value(name: &str, value: &[u8]) -> String {
    if !is_credential(name) {
        return String::from_utf8_lossy(value).into_owned();
    }
    let scheme = match name {
        "authorization" | "proxy-authorization" => value
            .iter()
            .position(|&b| b == b' ')
            .map(|end| &value[..end])
            .filter(|scheme| scheme.iter().all(u8::is_ascii_alphanumeric)),
        _ => None,
    };
    match scheme {
        Some(scheme) => format!(
            "{} <{} bytes, masked>",
            String::from_utf8_lossy(scheme),
            value.len()
        ),
        None => format!("<{} bytes, masked>", value.len()),
    }
}

/// One credential's value in a header block: where its bytes lie (the
/// string literal's, after its length prefix) and which header it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Secret {
    pub bytes: Range<usize>,
    pub header: String,
}

/// The credentials' value bytes in `block`, a whole header block whose
/// decoded fields, in order, have the names `names`. None when the block
/// cannot be walked in step with them: then no byte of it may be shown.
pub fn secrets_in_block<'a>(
    block: &[u8],
    names: impl IntoIterator<Item = &'a str>,
) -> Option<Vec<Secret>> {
    let mut names = names.into_iter();
    let mut at = 0;
    let mut secrets = Vec::new();
    while at < block.len() {
        let first = block[at];
        let (literal_prefix, field) = match first {
            // Indexed field: an index, no bytes of the value.
            0x80..=0xff => (None, true),
            // Literal with incremental indexing: a 6-bit name index.
            0x40..=0x7f => (Some(6), true),
            // Dynamic table size update: no field.
            0x20..=0x3f => (None, false),
            // Literal without indexing, or never indexed: a 4-bit name index.
            _ => (Some(4), true),
        };
        let prefix = match (literal_prefix, first) {
            (Some(bits), _) => bits,
            (None, 0x80..=0xff) => 7,
            (None, _) => 5,
        };
        let (index, next) = integer(block, at, prefix)?;
        at = next;
        if !field {
            continue;
        }
        let name = names.next()?;
        if literal_prefix.is_none() {
            continue;
        }
        if index == 0 {
            at = string(block, at)?.end;
        }
        let value = string(block, at)?;
        at = value.end;
        if is_credential(name) {
            secrets.push(Secret {
                bytes: value,
                header: name.to_owned(),
            });
        }
    }
    // Every decoded field was walked, no more.
    names.next().is_none().then_some(secrets)
}

/// An HPACK integer with a `prefix`-bit prefix at `at` (RFC 7541 §5.1):
/// its value and where what follows starts.
fn integer(block: &[u8], at: usize, prefix: u8) -> Option<(usize, usize)> {
    let max = (1usize << prefix) - 1;
    let mut value = usize::from(*block.get(at)?) & max;
    let mut at = at + 1;
    if value < max {
        return Some((value, at));
    }
    let mut shift = 0u32;
    loop {
        let byte = *block.get(at)?;
        at += 1;
        // More than a header block could hold: not HPACK.
        if shift > 28 {
            return None;
        }
        value = value.checked_add(usize::from(byte & 0x7f) << shift)?;
        shift += 7;
        if byte & 0x80 == 0 {
            return Some((value, at));
        }
    }
}

/// The bytes of the string literal at `at` (RFC 7541 §5.2), Huffman-coded
/// or not, after its length.
fn string(block: &[u8], at: usize) -> Option<Range<usize>> {
    let (length, start) = integer(block, at, 7)?;
    let end = start.checked_add(length)?;
    (end <= block.len()).then_some(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZGEifQ.c2lnbmF0dXJl";

    #[test]
    fn credentials_show_their_scheme_and_length_only() {
        let bearer = format!("Bearer {TOKEN}");
        assert_eq!(
            shown_value("authorization", bearer.as_bytes()),
            "Bearer <59 bytes, masked>"
        );
        assert_eq!(
            shown_value("proxy-authorization", b"Basic YWRhOnB3"),
            "Basic <14 bytes, masked>"
        );
        assert_eq!(shown_value("cookie", b"sid=abc"), "<7 bytes, masked>");
        // No scheme: nothing of the value, not even a first word.
        assert_eq!(
            shown_value("authorization", b"se-cret"),
            "<7 bytes, masked>"
        );
        assert_eq!(
            shown_value("authorization", b"a.b/c d"),
            "<7 bytes, masked>"
        );
        assert_eq!(shown_value("x-lab-user", b"ada"), "ada");
    }

    #[test]
    fn literal_values_are_found_indexed_ones_carry_none() {
        let mut encoder = loona_hpack::Encoder::new();
        let bearer = format!("Bearer {TOKEN}");
        let headers: [(&[u8], &[u8]); 4] = [
            (b":method", b"POST"),
            (b"authorization", bearer.as_bytes()),
            (b"cookie", b"sid=1"),
            (b"x-lab-user", b"ada"),
        ];
        let names = [":method", "authorization", "cookie", "x-lab-user"];
        let first = encoder.encode(headers);
        let secrets = secrets_in_block(&first, names).unwrap();
        let values: Vec<_> = secrets
            .iter()
            .map(|s| (&first[s.bytes.clone()], s.header.as_str()))
            .collect();
        assert_eq!(
            values,
            [
                (bearer.as_bytes(), "authorization"),
                (&b"sid=1"[..], "cookie")
            ]
        );
        // Out of step with the decoded fields: nothing may be shown.
        assert_eq!(secrets_in_block(&first, [":method"]), None);
        assert_eq!(
            secrets_in_block(&first, names.iter().chain(&["x"]).copied()),
            None
        );
        assert_eq!(secrets_in_block(&first[..first.len() - 1], names), None);
        // Added to the dynamic table (index 23, incremental indexing), then
        // referred to by its index (62): that reference has no bytes to mask.
        let mut added = vec![0x40 | 23, bearer.len() as u8];
        added.extend(bearer.as_bytes());
        assert_eq!(
            secrets_in_block(&added, ["authorization"]).unwrap()[0].bytes,
            2..2 + bearer.len()
        );
        assert_eq!(
            secrets_in_block(&[0x80 | 62], ["authorization"]),
            Some(vec![])
        );
    }

    #[test]
    fn huffman_and_never_indexed_literals_and_size_updates() {
        // "Bearer <TOKEN>" Huffman-coded (by Python's hpack).
        let huffman = hex("ba51d85b142facb3c78886d46cbbb87bc81d26cafae5f597dc9cb21b51b2cffb8b01a5d8b9054551d384127e65a3");
        let mut block = vec![0x3f, 0xe1, 0x1f]; // a size update to 4096
        block.push(0x10 | 0x0f); // never indexed, name index 23 (authorization) = 15 + 8
        block.push(8);
        block.push(0x80 | huffman.len() as u8);
        let start = block.len();
        block.extend(&huffman);
        block.push(0x82); // :method GET, indexed
        let secrets = secrets_in_block(&block, ["authorization", ":method"]).unwrap();
        assert_eq!(
            secrets,
            [Secret {
                bytes: start..start + huffman.len(),
                header: "authorization".into()
            }]
        );
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }
}
