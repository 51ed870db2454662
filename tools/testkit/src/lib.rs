//! The toolkit of the tests and the load tools (bench, loadgen), over the
//! lab's contract (messenger-lab). Nothing here needs grpcio, so loadgen,
//! which frames gRPC itself, links no C-core.
//!
//! - [`checks`]: numbered requests for load tools, and checks of their answers.
//! - [`closed_loop`]: the measured window and tally of a closed-loop load.
//! - [`report`]: figures, units and tables.
//! - [`process`]: a process's memory and threads, from `/proc`.
//! - [`port`]: loopback ports for child processes, safe from parallel tests.
//! - [`transcript`]: transcripts with their clock times masked.

pub mod checks;
pub mod closed_loop;
pub mod port;
pub mod process;
pub mod report;
pub mod transcript;
