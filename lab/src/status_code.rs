//! gRPC's status codes by name, as gRPC spells them (`UNAVAILABLE`): the
//! client's error lines and the wire view's trailers both print them.

/// Each code's name, at its number (grpc/doc/statuscodes.md).
const NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The name of status code `code`, if gRPC defines it.
pub fn status_code_name(code: i64) -> Option<&'static str> {
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i).copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_named_as_grpc_spells_them() {
        assert_eq!(status_code_name(0), Some("OK"));
        assert_eq!(status_code_name(14), Some("UNAVAILABLE"));
        assert_eq!(status_code_name(16), Some("UNAUTHENTICATED"));
        assert_eq!(status_code_name(17), None);
        assert_eq!(status_code_name(-1), None);
    }
}
