//! `bench wiretap`: what the wire view costs. Ping-pong latency and a
//! client-stream upload, first straight to the server, then through a
//! `wiretap` process that decodes everything and writes `--json` to
//! /dev/null; both reported side by side with the tap's cost.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use learning_messenger::client::Balancing;
use messenger_testkit::report::{Figure, Table, Unit};

use crate::compare::free_port;
use crate::workloads::{Load, Workload};
use crate::{BenchError, Connections};

/// The workloads the tap is measured on.
pub const WORKLOADS: [Workload; 2] = [Workload::PingPong, Workload::ClientStream];

/// How to measure the tap.
#[derive(Clone, Debug)]
pub struct TapBench {
    /// The server, HOST:PORT (started by the user, `--delay-ms 0`).
    pub target: String,
    pub load: Load,
    pub client_threads: usize,
    /// The `wiretap` binary.
    pub wiretap_bin: PathBuf,
}

/// The figures of each run.
#[derive(Clone, Debug)]
pub struct TapFigures {
    pub direct: Vec<Figure>,
    pub tapped: Vec<Figure>,
}

impl TapFigures {
    /// One row per figure: direct, through the tap, and what the tap costs
    /// (time added to a latency, the share of the direct rate kept).
    pub fn table(&self) -> Table {
        let mut table = Table::new([
            "workload",
            "metric",
            "direct",
            "through the tap",
            "tap's cost",
        ]);
        for direct in &self.direct {
            let Some(tapped) = self
                .tapped
                .iter()
                .find(|f| f.workload == direct.workload && f.metric == direct.metric)
            else {
                continue;
            };
            let cost = match direct.unit {
                Unit::Latency => {
                    // Noise can make the tapped run the faster one.
                    let added = tapped.value - direct.value;
                    let sign = if added < 0.0 { "-" } else { "+" };
                    format!("{sign}{}", Unit::Latency.format(added.abs()))
                }
                Unit::Rate(_) if direct.value > 0.0 => {
                    format!("{:.0}% of direct", 100.0 * tapped.value / direct.value)
                }
                _ => "n/a".to_owned(),
            };
            table.push([
                direct.workload.to_owned(),
                direct.metric.to_owned(),
                direct.unit.format(direct.value),
                tapped.unit.format(tapped.value),
                cost,
            ]);
        }
        table
    }
}

/// A `wiretap` process, killed when dropped.
struct TapProcess {
    child: Child,
    addr: String,
}

impl TapProcess {
    fn start(bin: &PathBuf, upstream: &str) -> Result<TapProcess, BenchError> {
        let addr = format!("127.0.0.1:{}", free_port()?);
        let child = Command::new(bin)
            .args(["--listen", &addr, "--upstream", upstream, "--json"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                BenchError::Setup(format!(
                    "cannot start {}: {e}; build it with `cargo build --release --bins`, or pass --wiretap-bin",
                    bin.display()
                ))
            })?;
        let mut tap = TapProcess { child, addr };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&tap.addr).is_err() {
            if let Ok(Some(status)) = tap.child.try_wait() {
                return Err(BenchError::Setup(format!(
                    "wiretap exited ({status}) before listening"
                )));
            }
            if Instant::now() >= deadline {
                return Err(BenchError::Setup(
                    "wiretap did not listen within 30 s".to_owned(),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(tap)
    }
}

impl Drop for TapProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn measure(target: &str, options: &TapBench) -> Result<Vec<Figure>, BenchError> {
    let connections = Connections::open(
        target,
        &Balancing::new(),
        1,
        options.client_threads,
        Duration::from_secs(5),
    )?;
    let mut figures = Vec::new();
    for workload in WORKLOADS {
        eprintln!("  {} ...", workload.name());
        figures.extend(workload.run(&connections, &options.load)?);
    }
    Ok(figures)
}

/// Both runs, direct first.
pub fn run(options: &TapBench) -> Result<TapFigures, BenchError> {
    eprintln!("direct to {}:", options.target);
    let direct = measure(&options.target, options)?;
    let tap = TapProcess::start(&options.wiretap_bin, &options.target)?;
    eprintln!("through wiretap on {} (--json to /dev/null):", tap.addr);
    let tapped = measure(&tap.addr, options)?;
    Ok(TapFigures { direct, tapped })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_states_the_tap_cost() {
        let figures = TapFigures {
            direct: vec![
                Figure::new("ping-pong", "p50", Unit::Latency, 0.000_100),
                Figure::new("client-stream", "notes", Unit::Rate("notes/s"), 1_000_000.0),
            ],
            tapped: vec![
                Figure::new("client-stream", "notes", Unit::Rate("notes/s"), 600_000.0),
                Figure::new("ping-pong", "p50", Unit::Latency, 0.000_125),
            ],
        };
        let table = figures.table();
        assert_eq!(table.rows[0][4], "+25.0 µs");
        assert_eq!(table.rows[1][4], "60% of direct");
    }
}
