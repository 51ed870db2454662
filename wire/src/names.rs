//! The names of the numbers on the wire: HTTP/2 settings and error codes
//! (RFC 9113 §6.5.2, §7) and gRPC status codes (grpc/doc/statuscodes.md).

/// SETTINGS_HEADER_TABLE_SIZE.
pub const HEADER_TABLE_SIZE: u16 = 0x1;
/// SETTINGS_MAX_FRAME_SIZE.
pub const MAX_FRAME_SIZE: u16 = 0x5;

/// A setting's name; gRPC's own (C-core's `GRPC_ALLOW_TRUE_BINARY_METADATA`)
/// included, `UNKNOWN_0xNNNN` for the rest.
pub fn setting(id: u16) -> String {
    match id {
        0x1 => "HEADER_TABLE_SIZE".into(),
        0x2 => "ENABLE_PUSH".into(),
        0x3 => "MAX_CONCURRENT_STREAMS".into(),
        0x4 => "INITIAL_WINDOW_SIZE".into(),
        0x5 => "MAX_FRAME_SIZE".into(),
        0x6 => "MAX_HEADER_LIST_SIZE".into(),
        0x8 => "ENABLE_CONNECT_PROTOCOL".into(),
        0x9 => "NO_RFC7540_PRIORITIES".into(),
        0xfe03 => "GRPC_ALLOW_TRUE_BINARY_METADATA".into(),
        0xfe04 => "GRPC_PREFERRED_RECEIVE_CRYPTO_FRAME_SIZE".into(),
        other => format!("UNKNOWN_{other:#06x}"),
    }
}

/// An HTTP/2 error code's name (RST_STREAM, GOAWAY).
pub fn error_code(code: u32) -> String {
    const NAMES: [&str; 14] = [
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    ];
    NAMES
        .get(code as usize)
        .map_or_else(|| format!("UNKNOWN_{code:#x}"), |name| (*name).to_owned())
}

/// A gRPC status code's name, as the `grpc-status` trailer carries its number.
pub fn grpc_status(code: &str) -> Option<&'static str> {
    code.parse()
        .ok()
        .and_then(messenger_lab::status_code::status_code_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_get_their_names() {
        assert_eq!(setting(4), "INITIAL_WINDOW_SIZE");
        assert_eq!(setting(0xfe03), "GRPC_ALLOW_TRUE_BINARY_METADATA");
        assert_eq!(setting(0x42), "UNKNOWN_0x0042");
        assert_eq!(error_code(8), "CANCEL");
        assert_eq!(error_code(11), "ENHANCE_YOUR_CALM");
        assert_eq!(error_code(99), "UNKNOWN_0x63");
        assert_eq!(grpc_status("0"), Some("OK"));
        assert_eq!(grpc_status("14"), Some("UNAVAILABLE"));
        assert_eq!(grpc_status("17"), None);
        assert_eq!(grpc_status("x"), None);
    }
}
