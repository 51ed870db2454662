//! How the client prints what it receives: the lab's lines, or one JSON
//! object per message for scripts.
//!
//! Text is what the lab's client.py prints. Only on a terminal does it get
//! colours (unless `NO_COLOR` is set) and, for server streaming, a progress
//! bar; piped, it is plain lines. Every line is written whole and flushed at
//! once, so each appears the moment its message arrives.
//!
//! JSON (`--json`) is one object per line:
//! `{"rpc": "StreamLearnings", "message": {...}}` for each received message,
//! the message in protobuf's JSON mapping (lowerCamelCase names, default values
//! included), and a plain object for a computed result such as the timings of
//! `all --concurrent`. In a feed room, each object also has `"room"`,
//! `"kind"` (`ack`, `update`, `join` or `leave`) and `"seq"`, the event's
//! number in the room.

use std::io::{self, IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};
use protobuf::MessageDyn;
use protobuf_json_mapping::PrintOptions;
use serde_json::{json, Value};

use crate::proto::health::HealthCheckResponse;
use crate::proto::messenger::{FeedUpdate, LearningUpdate, StatusResponse, SummaryResponse};
use crate::untrusted::untrusted;
use messenger_lab::room::Kind;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The lab's lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A message received from the server.
#[derive(Clone, Copy)]
pub enum Received<'a> {
    Status(&'a StatusResponse),
    Update(&'a LearningUpdate),
    Summary(&'a SummaryResponse),
    Echo(&'a FeedUpdate),
    /// A feed update received in `room`, what it is, and its number in the room.
    InRoom {
        room: &'a str,
        kind: Kind,
        update: &'a FeedUpdate,
        seq: Option<u64>,
    },
    /// A health status (Check's answer, or one of Watch's).
    Health(&'a HealthCheckResponse),
}

impl Received<'_> {
    /// The RPC that returned it.
    pub fn rpc(&self) -> &'static str {
        match self {
            Received::Status(_) => "GetLearningStatus",
            Received::Update(_) => "StreamLearnings",
            Received::Summary(_) => "SubmitResearchNotes",
            Received::Echo(_) | Received::InRoom { .. } => "CollaborativeFeed",
            Received::Health(_) => "grpc.health.v1.Health",
        }
    }

    fn message(&self) -> &dyn MessageDyn {
        match *self {
            Received::Status(m) => m,
            Received::Update(m) => m,
            Received::Summary(m) => m,
            Received::Echo(m) => m,
            Received::InRoom { update, .. } => update,
            Received::Health(m) => m,
        }
    }

    /// The lab's line for it.
    pub fn text(&self, colour: bool) -> String {
        match self {
            Received::Status(r) => {
                format!(
                    "Server Response: {} (Active: {})",
                    paint(colour, BOLD, &r.message),
                    python_bool(r.active)
                )
            }
            Received::Update(u) => format!(
                "{} Progress {}: {}",
                paint(colour, DIM, &format!("[{}]", u.timestamp)),
                paint(colour, GREEN, &format!("{}%", u.progress)),
                u.content
            ),
            Received::Summary(s) => {
                format!(
                    "Server Summary: {} (Total {})",
                    paint(colour, BOLD, &s.final_summary),
                    s.count
                )
            }
            // What other callers wrote, escaped: no line of theirs can pass
            // for one of the server's.
            Received::Echo(e) => format!(
                " [Feed Update] {}: {}",
                paint(colour, CYAN, &untrusted(&e.user).to_string()),
                untrusted(&e.message)
            ),
            // Our own updates' acknowledgements, as the echo prints them; the
            // room's traffic after the room's name.
            Received::InRoom {
                kind: Kind::Ack,
                update,
                ..
            } => Received::Echo(update).text(colour),
            Received::InRoom {
                room,
                kind: Kind::Update,
                update,
                ..
            } => format!(
                " [{}] {}: {}",
                paint(colour, BOLD, room),
                paint(colour, CYAN, &untrusted(&update.user).to_string()),
                untrusted(&update.message)
            ),
            Received::InRoom {
                room,
                kind: Kind::Join | Kind::Leave,
                update,
                ..
            } => format!(
                " [{}] * {}",
                paint(colour, BOLD, room),
                paint(colour, DIM, &untrusted(&update.message).to_string())
            ),
            Received::Health(h) => format!("status: {:?}", h.status.enum_value_or_default()),
        }
    }

    /// `{"rpc": ..., "message": {...}}`.
    pub fn json(&self) -> io::Result<Value> {
        let options = PrintOptions {
            always_output_default_values: true,
            ..Default::default()
        };
        let body = protobuf_json_mapping::print_to_string_with_options(self.message(), &options)
            .map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("cannot print as JSON: {e}"),
                )
            })?;
        let body: Value = serde_json::from_str(&body)?;
        Ok(match self {
            Received::InRoom {
                room, kind, seq, ..
            } => {
                json!({ "rpc": self.rpc(), "room": room, "kind": kind.name(), "seq": seq, "message": body })
            }
            _ => json!({ "rpc": self.rpc(), "message": body }),
        })
    }
}

/// Python's spelling of a bool, as the lab prints it.
fn python_bool(value: bool) -> &'static str {
    if value {
        "True"
    } else {
        "False"
    }
}

const BOLD: &str = "1";
const DIM: &str = "2";
const GREEN: &str = "32";
const CYAN: &str = "36";
const RED_BOLD: &str = "1;31";

/// `text` in an ANSI colour when `colour` is on.
fn paint(colour: bool, sgr: &str, text: &str) -> String {
    if colour {
        format!("\x1b[{sgr}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// Colours are for people at a terminal who have not asked for none.
fn wants_colour(stream_is_terminal: bool) -> bool {
    stream_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A one-line error report for stderr, its `error:` in red on a terminal.
pub fn error_line(report: &str) -> String {
    match report.strip_prefix("error:") {
        Some(rest) if wants_colour(io::stderr().is_terminal()) => {
            format!("{}{rest}", paint(true, RED_BOLD, "error:"))
        }
        _ => report.to_owned(),
    }
}

/// Prints received messages and results to `out`, line by line.
pub struct Printer<W: Write> {
    out: W,
    format: Format,
    colour: bool,
    /// Whether a progress bar may be drawn (text on a terminal).
    progress: bool,
    bar: Option<ProgressBar>,
    /// Put before every text line: which of several concurrent calls it is from.
    label: Option<String>,
    sections: usize,
    /// Whether each call's replica (its `x-served-by` header) is printed.
    show_replica: bool,
}

impl Printer<io::Stdout> {
    /// For standard output: colours and a progress bar only on a terminal.
    pub fn stdout(format: Format) -> Self {
        let terminal = format == Format::Text && io::stdout().is_terminal();
        Printer {
            colour: wants_colour(terminal),
            progress: terminal,
            ..Printer::plain(io::stdout(), format)
        }
    }
}

impl<W: Write> Printer<W> {
    /// Exactly the lab's lines (or JSON): no colours, no progress bar.
    pub fn plain(out: W, format: Format) -> Self {
        Printer {
            out,
            format,
            colour: false,
            progress: false,
            bar: None,
            label: None,
            sections: 0,
            show_replica: false,
        }
    }

    /// With `on`, each call's replica is printed, before its messages.
    pub fn showing_replica(mut self, on: bool) -> Self {
        self.show_replica = on;
        self
    }

    pub fn shows_replica(&self) -> bool {
        self.show_replica
    }

    /// The replica that answered `rpc`, as its `x-served-by` header named it
    /// (None: the answer had none); printed only when asked for.
    pub fn replica(&mut self, rpc: &str, served_by: Option<&str>) -> io::Result<()> {
        if !self.show_replica {
            return Ok(());
        }
        let name = served_by.unwrap_or("(no x-served-by header)");
        let text = format!("Served by: {name}");
        self.result(&text, json!({ "rpc": rpc, "served_by": served_by }))
    }

    /// Every text line prefixed with `label`, and no blank lines between sections.
    pub fn labelled(mut self, label: &str) -> Self {
        self.label = Some(label.to_owned());
        self
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// A heading in text, with a blank line before all but the first (as the lab).
    pub fn section(&mut self, heading: &str) -> io::Result<()> {
        if self.format == Format::Json {
            return Ok(());
        }
        if self.sections > 0 && self.label.is_none() {
            self.line("")?;
        }
        self.sections += 1;
        let heading = paint(self.colour, BOLD, heading);
        self.line(&heading)
    }

    /// One received message: its line, or its JSON object.
    pub fn received(&mut self, message: Received) -> io::Result<()> {
        match self.format {
            Format::Json => self.json(&message.json()?),
            Format::Text => {
                let text = message.text(self.colour);
                match (&self.bar, message) {
                    (Some(bar), Received::Update(update)) => {
                        bar.set_position(update.progress.clamp(0, 100) as u64);
                        bar.set_message(update.content.clone());
                        bar.println(text);
                        Ok(())
                    }
                    _ => self.line(&text),
                }
            }
        }
    }

    /// A result the client worked out itself: `text` as a line, or `json`.
    pub fn result(&mut self, text: &str, json: Value) -> io::Result<()> {
        match self.format {
            Format::Json => self.json(&json),
            Format::Text => self.line(text),
        }
    }

    /// On a terminal, shows a bar that the `progress` of each received
    /// LearningUpdate moves (0 to 100); elsewhere does nothing.
    pub fn start_progress(&mut self) {
        if !self.progress {
            return;
        }
        let style = ProgressStyle::with_template("{bar:40.cyan/blue} {pos:>3}% {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        // Cleared however the call ends, even when Ctrl-C drops it half way.
        let bar = ProgressBar::with_draw_target(Some(100), ProgressDrawTarget::stdout())
            .with_style(style)
            .with_finish(ProgressFinish::AndClear);
        self.bar = Some(bar);
    }

    pub fn finish_progress(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn json(&mut self, value: &Value) -> io::Result<()> {
        let line = serde_json::to_string(value)?;
        self.write_line(&line)
    }

    fn line(&mut self, text: &str) -> io::Result<()> {
        match &self.label {
            Some(label) => {
                let line = format!("{label:<13} | {text}");
                self.write_line(&line)
            }
            None => self.write_line(text),
        }
    }

    /// The whole line in one write, flushed: concurrent printers never split
    /// each other's lines, and a reader sees each line as soon as it is ready.
    fn write_line(&mut self, text: &str) -> io::Result<()> {
        let mut line = String::with_capacity(text.len() + 1);
        line.push_str(text);
        line.push('\n');
        self.out.write_all(line.as_bytes())?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update() -> LearningUpdate {
        LearningUpdate {
            content: "c".into(),
            progress: 25,
            timestamp: "12:00:00".into(),
            ..Default::default()
        }
    }

    #[test]
    fn text_is_the_labs_line_without_colour() {
        assert_eq!(
            Received::Update(&update()).text(false),
            "[12:00:00] Progress 25%: c"
        );
        let summary = SummaryResponse {
            count: 0,
            final_summary: "s".into(),
            ..Default::default()
        };
        assert_eq!(
            Received::Summary(&summary).text(false),
            "Server Summary: s (Total 0)"
        );
    }

    #[test]
    fn what_others_wrote_cannot_pass_for_a_line_of_its_own() {
        let update = FeedUpdate {
            user: "ann\n [Feed Update] System".into(),
            message: "hi\n [lab] * bob left the room\u{1b}[2J".into(),
            ..Default::default()
        };
        let in_room = Received::InRoom {
            room: "lab",
            kind: Kind::Update,
            update: &update,
            seq: None,
        };
        assert_eq!(
            in_room.text(false),
            " [lab] ann\\n [Feed Update] System: hi\\n [lab] * bob left the room\\u{1b}[2J"
        );
        let echo = Received::Echo(&update).text(false);
        assert_eq!(echo.lines().count(), 1, "{echo}");
        // The lab's lines are unchanged.
        let lab = FeedUpdate {
            user: "System".into(),
            message: "Acknowledged Engineer's update: Initializing system...".into(),
            ..Default::default()
        };
        assert_eq!(
            Received::Echo(&lab).text(false),
            " [Feed Update] System: Acknowledged Engineer's update: Initializing system..."
        );
    }

    #[test]
    fn json_names_the_rpc_and_keeps_default_values() {
        let status = StatusResponse {
            message: "m".into(),
            active: false,
            ..Default::default()
        };
        assert_eq!(
            Received::Status(&status).json().unwrap(),
            json!({"rpc": "GetLearningStatus", "message": {"message": "m", "active": false}})
        );
        let summary = SummaryResponse {
            count: 3,
            final_summary: "s".into(),
            ..Default::default()
        };
        assert_eq!(
            Received::Summary(&summary).json().unwrap()["message"],
            json!({"count": 3, "finalSummary": "s"})
        );
    }

    #[test]
    fn room_traffic_is_marked_apart_from_acknowledgements() {
        let update = FeedUpdate {
            user: "bob".into(),
            message: "hi".into(),
            ..Default::default()
        };
        let from_bob = Received::InRoom {
            room: "lab",
            kind: Kind::Update,
            update: &update,
            seq: Some(17),
        };
        assert_eq!(from_bob.text(false), " [lab] bob: hi");
        assert_eq!(
            from_bob.json().unwrap(),
            json!({"rpc": "CollaborativeFeed", "room": "lab", "kind": "update", "seq": 17,
                   "message": {"user": "bob", "message": "hi"}})
        );
        let ack = messenger_lab::answers::acknowledge(&update);
        let acked = Received::InRoom {
            room: "lab",
            kind: Kind::Ack,
            update: &ack,
            seq: Some(18),
        };
        assert_eq!(acked.text(false), Received::Echo(&ack).text(false));
        let joined = messenger_lab::room::joined("ann");
        let join = Received::InRoom {
            room: "lab",
            kind: Kind::Join,
            update: &joined,
            seq: Some(19),
        };
        assert_eq!(join.text(false), " [lab] * ann joined the room");
    }

    #[test]
    fn sections_are_separated_by_a_blank_line_unless_labelled() {
        let mut out = Vec::new();
        let mut printer = Printer::plain(&mut out, Format::Text);
        printer.section("--- A ---").unwrap();
        printer.section("--- B ---").unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "--- A ---\n\n--- B ---\n");

        let mut out = Vec::new();
        let mut printer = Printer::plain(&mut out, Format::Text).labelled("unary");
        printer.section("--- A ---").unwrap();
        printer.received(Received::Update(&update())).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "unary         | --- A ---\nunary         | [12:00:00] Progress 25%: c\n"
        );
    }
}
