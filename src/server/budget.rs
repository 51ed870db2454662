//! The request budget's default: a share of the memory this process may use.
//!
//! C-core (patch 0006) counts the request bytes that the server's
//! connections have let in by gRPC length prefixes and not yet handed to a
//! handler, and refuses a message that would take them past the budget.

/// The budget's share of the machine's memory (or of the cgroup's limit, if
/// lower): what requests on the wire may hold, beside everything else.
const MEMORY_SHARE: u64 = 8;

/// The most C-core's integer channel arguments carry: 2 GiB - 1.
pub const MAX_REQUEST_BYTES_IN_FLIGHT: usize = i32::MAX as usize;

/// One eighth of the memory this process may use (the machine's, or its
/// cgroup's limit if lower), at most [`MAX_REQUEST_BYTES_IN_FLIGHT`] and at
/// least `max_message_bytes`: one message of the largest size always fits.
/// Memory that cannot be read counts as 1 GiB.
pub fn default_max_request_bytes_in_flight(max_message_bytes: usize) -> usize {
    let memory = memory_limit().unwrap_or(1 << 30);
    let share = usize::try_from(memory / MEMORY_SHARE).unwrap_or(usize::MAX);
    share
        .min(MAX_REQUEST_BYTES_IN_FLIGHT)
        .max(max_message_bytes.min(MAX_REQUEST_BYTES_IN_FLIGHT))
}

/// The memory this process may use, in bytes: the lower of the machine's
/// (`MemTotal`) and its cgroup's limit (v2 `memory.max`, v1
/// `memory.limit_in_bytes`), where one is set.
fn memory_limit() -> Option<u64> {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|meminfo| mem_total(&meminfo));
    let cgroup = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .find_map(|path| std::fs::read_to_string(path).ok())
    .and_then(|limit| limit.trim().parse::<u64>().ok());
    match (total, cgroup) {
        (Some(total), Some(cgroup)) => Some(total.min(cgroup)),
        (total, cgroup) => total.or(cgroup),
    }
}

/// `MemTotal` of /proc/meminfo, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_total_is_read_in_bytes() {
        let meminfo = "MemTotal:       24576000 kB\nMemFree:        1000 kB\n";
        assert_eq!(mem_total(meminfo), Some(24_576_000 * 1024));
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn the_default_holds_one_largest_message_and_fits_an_int_argument() {
        let default = default_max_request_bytes_in_flight(4 << 20);
        assert!(default >= 4 << 20, "{default}");
        assert!(default <= MAX_REQUEST_BYTES_IN_FLIGHT, "{default}");
        assert_eq!(
            default_max_request_bytes_in_flight(usize::MAX),
            MAX_REQUEST_BYTES_IN_FLIGHT
        );
    }
}
