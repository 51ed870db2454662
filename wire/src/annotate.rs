//! A message's bytes, field by field, as the protobuf wire format lays them
//! out (protobuf.dev/programming-guides/encoding): each field's tag (field
//! number and wire type as one varint, so `0a` is field 1, wire type 2), its
//! length if it has one, and its value. With the message's descriptor the
//! fields get their names and nested messages are opened; without one
//! (a service the contract does not know) it is a schema-less dump.

use protobuf::reflect::{MessageDescriptor, RuntimeFieldType, RuntimeType};

/// At most this many bytes of a value are shown in hex.
const HEX_SHOWN: usize = 24;
/// Nested messages are opened this deep at most.
const MAX_DEPTH: usize = 16;

/// One field as it lies on the wire.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// The tag's bytes.
    pub tag: Vec<u8>,
    pub number: u64,
    pub wire_type: u8,
    /// The field's name, when the schema knows it.
    pub name: Option<String>,
    /// LEN fields: the length varint's bytes and its value.
    pub length_bytes: Vec<u8>,
    pub length: Option<usize>,
    /// The value's bytes (the first [`HEX_SHOWN`] of them) and how many there are.
    pub value_bytes: Vec<u8>,
    pub value_len: usize,
    /// The value as a learner reads it: a number, a quoted string, hex.
    pub value: String,
    /// The fields of a nested message.
    pub fields: Vec<Field>,
}

pub fn wire_type_name(wire_type: u8) -> &'static str {
    match wire_type {
        0 => "VARINT",
        1 => "I64",
        2 => "LEN",
        3 => "SGROUP",
        4 => "EGROUP",
        5 => "I32",
        _ => "INVALID",
    }
}

/// The fields of `bytes`, named after `descriptor` if there is one.
pub fn annotate(
    bytes: &[u8],
    descriptor: Option<&MessageDescriptor>,
) -> Result<Vec<Field>, String> {
    fields(bytes, descriptor, 0)
}

/// A schema-less one-line view, `1: "text" 2: 25`, nested messages in braces.
pub fn schemaless_text(fields: &[Field]) -> String {
    fields
        .iter()
        .map(|f| {
            let label = f.name.clone().unwrap_or_else(|| f.number.to_string());
            if f.fields.is_empty() {
                format!("{label}: {}", f.value)
            } else {
                format!("{label} {{ {} }}", schemaless_text(&f.fields))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A `u64` varint at the start of `bytes`: its value and its length.
fn varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

fn fields(
    bytes: &[u8],
    descriptor: Option<&MessageDescriptor>,
    depth: usize,
) -> Result<Vec<Field>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let (key, tag_len) =
            varint(&bytes[at..]).ok_or_else(|| format!("a broken tag at byte {at}"))?;
        let tag = bytes[at..at + tag_len].to_vec();
        at += tag_len;
        let number = key >> 3;
        let wire_type = (key & 7) as u8;
        if number == 0 {
            return Err(format!("field number 0 at byte {}", at - tag_len));
        }
        let field = descriptor.and_then(|d| {
            u32::try_from(number)
                .ok()
                .and_then(|n| d.field_by_number(n))
        });
        let field_type = field.as_ref().map(|f| f.runtime_field_type());
        let scalar = field_type.as_ref().map(|t| match t {
            RuntimeFieldType::Singular(t) | RuntimeFieldType::Repeated(t) => t.clone(),
            RuntimeFieldType::Map(_, value) => value.clone(),
        });
        let (length_bytes, length, value_range) = match wire_type {
            0 => {
                let (_, n) =
                    varint(&bytes[at..]).ok_or_else(|| format!("a broken varint at byte {at}"))?;
                (Vec::new(), None, at..at + n)
            }
            1 | 5 => {
                let n = if wire_type == 1 { 8 } else { 4 };
                if bytes.len() < at + n {
                    return Err(format!("a {n}-byte value cut short at byte {at}"));
                }
                (Vec::new(), None, at..at + n)
            }
            2 => {
                let (len, n) =
                    varint(&bytes[at..]).ok_or_else(|| format!("a broken length at byte {at}"))?;
                let start = at + n;
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                if bytes.len() - start < len {
                    return Err(format!("a {len}-byte value cut short at byte {start}"));
                }
                (bytes[at..start].to_vec(), Some(len), start..start + len)
            }
            other => {
                return Err(format!(
                    "wire type {other} ({}) at byte {at}",
                    wire_type_name(other)
                ))
            }
        };
        let value_slice = &bytes[value_range.clone()];
        at = value_range.end;
        let mut nested = Vec::new();
        let value = match (wire_type, &scalar) {
            (2, Some(RuntimeType::Message(inner))) if depth < MAX_DEPTH => {
                nested = fields(value_slice, Some(inner), depth + 1)?;
                format!("a {}-byte {}", value_slice.len(), inner.full_name())
            }
            (2, Some(RuntimeType::String)) => quoted_utf8(value_slice),
            (2, Some(_)) => hex(value_slice),
            (2, None) => match std::str::from_utf8(value_slice) {
                Ok(text) if !text.chars().any(char::is_control) => quoted_utf8(value_slice),
                _ => hex(value_slice),
            },
            (0, scalar) => {
                let (n, _) = varint(value_slice).unwrap_or_default();
                match scalar {
                    Some(RuntimeType::Bool) => (n != 0).to_string(),
                    Some(RuntimeType::I32) | Some(RuntimeType::I64) => (n as i64).to_string(),
                    Some(RuntimeType::Enum(e)) => e
                        .value_by_number(n as i32)
                        .map_or_else(|| n.to_string(), |v| v.name().to_owned()),
                    _ => n.to_string(),
                }
            }
            (1, Some(RuntimeType::F64)) => {
                f64::from_le_bytes(value_slice.try_into().unwrap_or_default()).to_string()
            }
            (5, Some(RuntimeType::F32)) => {
                f32::from_le_bytes(value_slice.try_into().unwrap_or_default()).to_string()
            }
            (1, _) => u64::from_le_bytes(value_slice.try_into().unwrap_or_default()).to_string(),
            _ => u32::from_le_bytes(value_slice.try_into().unwrap_or_default()).to_string(),
        };
        out.push(Field {
            tag,
            number,
            wire_type,
            name: field.map(|f| f.name().to_owned()),
            length_bytes,
            length,
            value_bytes: value_slice[..value_slice.len().min(HEX_SHOWN)].to_vec(),
            value_len: value_slice.len(),
            value,
            fields: nested,
        });
    }
    Ok(out)
}

fn quoted_utf8(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

/// Bytes as spaced hex pairs: `6e 6f 74 65`.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A field on one line: `0a = field 1 (text), wire type 2 LEN | 06 = length 6 | 6e 6f ... = "note 1"`.
pub fn field_line(field: &Field) -> String {
    let name = field
        .name
        .as_ref()
        .map_or_else(String::new, |n| format!(" ({n})"));
    let mut line = format!(
        "{} = field {}{name}, wire type {} {}",
        hex(&field.tag),
        field.number,
        field.wire_type,
        wire_type_name(field.wire_type)
    );
    if let Some(length) = field.length {
        line.push_str(&format!(
            " | {} = length {length}",
            hex(&field.length_bytes)
        ));
    }
    if field.value_len > 0 {
        let more = if field.value_len > field.value_bytes.len() {
            " …"
        } else {
            ""
        };
        line.push_str(&format!(
            " | {}{more} = {}",
            hex(&field.value_bytes),
            field.value
        ));
    } else {
        line.push_str(&format!(" = {}", field.value));
    }
    line
}

/// A field as JSON, nested fields included.
pub fn field_json(field: &Field) -> serde_json::Value {
    serde_json::json!({
        "tag": hex(&field.tag).replace(' ', ""),
        "field": field.number,
        "name": field.name,
        "wire_type": field.wire_type,
        "wire_type_name": wire_type_name(field.wire_type),
        "length": field.length,
        "value_hex": hex(&field.value_bytes).replace(' ', ""),
        "value_bytes": field.value_len,
        "value": field.value,
        "fields": field.fields.iter().map(field_json).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use messenger_lab::proto::messenger::{LearningUpdate, ResearchNote};
    use protobuf::{Message, MessageFull};

    #[test]
    fn fields_show_their_tag_length_and_value() {
        let note = ResearchNote {
            text: "note 1".into(),
            ..Default::default()
        };
        let bytes = note.write_to_bytes().unwrap();
        let fields = annotate(&bytes, Some(&ResearchNote::descriptor())).unwrap();
        assert_eq!(fields.len(), 1);
        assert_eq!(
            field_line(&fields[0]),
            "0a = field 1 (text), wire type 2 LEN | 06 = length 6 | 6e 6f 74 65 20 31 = \"note 1\""
        );
    }

    #[test]
    fn varints_and_schemaless_dumps() {
        let update = LearningUpdate {
            content: "c".into(),
            progress: 300,
            timestamp: "09:00:00".into(),
            ..Default::default()
        };
        let bytes = update.write_to_bytes().unwrap();
        let named = annotate(&bytes, Some(&LearningUpdate::descriptor())).unwrap();
        assert_eq!(
            field_line(&named[1]),
            "10 = field 2 (progress), wire type 0 VARINT | ac 02 = 300"
        );
        let raw = annotate(&bytes, None).unwrap();
        assert_eq!(schemaless_text(&raw), "1: \"c\" 2: 300 3: \"09:00:00\"");
    }

    #[test]
    fn broken_bytes_are_an_error_not_a_panic() {
        assert!(annotate(&[0x0a, 0x05, b'a'], None).is_err());
        assert!(annotate(&[0xff; 11], None).is_err());
        assert!(annotate(&[0x0b], None).is_err());
        assert!(annotate(&[0x00, 0x01], None).is_err());
    }
}
