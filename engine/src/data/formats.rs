//! Reading preference data in the shapes people have it, with errors that name the file, the
//! line (or array index) and the field.
//!
//! A file is JSON Lines, or one JSON array of records; its record shape is detected from its
//! first record unless the caller names one:
//! - `standard`: `{prompt, chosen, rejected}` strings (TRL's standard form);
//! - `conversational`: `{prompt, chosen, rejected}` lists of `{role, content}` messages (TRL's
//!   conversational form; the last assistant message of chosen/rejected is the response);
//! - `paper`: `{input, win, lose}` (the HaF-RM authors' files);
//! - `hh`: HH-RLHF transcripts `{chosen, rejected}`;
//! - `sharegpt`: `{conversations: [{from, value}], chosen: {from, value}, rejected: {from, value}}`
//!   (LLaMA-Factory's preference form).
//!
//! An empty response is data, not an error (HH-RLHF prefers silence to harm in places): the
//! model sees EOS alone. Dialogues are rendered the HH-RLHF way (`"\n\nHuman: …\n\nAssistant: …"`); the prompt ends
//! with `"\n\nAssistant:"` and the response starts with a space.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{DecisiveSpans, PreferencePair};
use crate::error::{DataError, Location};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordShape {
    /// Detect from the first record.
    #[default]
    Auto,
    Standard,
    Conversational,
    Paper,
    Hh,
    Sharegpt,
}

impl std::str::FromStr for RecordShape {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "standard" => Ok(Self::Standard),
            "conversational" => Ok(Self::Conversational),
            "paper" => Ok(Self::Paper),
            "hh" => Ok(Self::Hh),
            "sharegpt" => Ok(Self::Sharegpt),
            other => Err(format!(
                "unknown data format `{other}` (known: auto, standard, conversational, paper, hh, sharegpt)"
            )),
        }
    }
}

/// What a load produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    pub pairs: Vec<PreferencePair>,
    /// Bad records that were skipped (only with `skip_bad`).
    pub skipped: Vec<DataError>,
    pub shape: RecordShape,
}

const ASSISTANT_TAG: &str = "\n\nAssistant:";

/// How much a reader takes: a single record, and a whole file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadLimits {
    pub max_record_bytes: usize,
    pub max_file_bytes: u64,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self { max_record_bytes: 4 << 20, max_file_bytes: 2 << 30 }
    }
}

/// Byte counts for people: `4 MiB`, `2 GiB`, `512 B`.
pub fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / f64::from(1u32 << 30)),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20)),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// Reads pairs from a stream one record at a time: a record is never held with the rest of
/// the file, a record over `limits.max_record_bytes` and a stream over
/// `limits.max_file_bytes` are refused where they happen, and every error names `file` and
/// the record's line (JSON Lines) or index (a JSON array).
pub fn read_pairs(file: &str, reader: impl std::io::Read, shape: RecordShape, skip_bad: bool, limits: ReadLimits) -> Result<Loaded, DataError> {
    let mut parser = RecordParser { file, shape, skip_bad, pairs: Vec::new(), skipped: Vec::new() };
    RecordReader::new(file, reader, limits).for_each_record(&mut |location, first_line, bytes| parser.record(location, first_line, bytes))?;
    let RecordParser { pairs, skipped, shape, .. } = parser;
    if pairs.is_empty() {
        return Err(DataError {
            file: file.to_string(),
            location: Location::Line(1),
            field: None,
            message: if skipped.is_empty() {
                "no records".into()
            } else {
                format!("no usable records ({} bad records skipped)", skipped.len())
            },
        });
    }
    Ok(Loaded { pairs, skipped, shape })
}

/// Reads and parses a file, refusing one over `limits.max_file_bytes` before reading it.
#[cfg(not(target_family = "wasm"))]
pub fn load_file(path: &std::path::Path, shape: RecordShape, skip_bad: bool, limits: ReadLimits) -> crate::error::Result<Loaded> {
    let io = |e| crate::error::Error::io(path, e);
    let file = std::fs::File::open(path).map_err(io)?;
    let name = path.display().to_string();
    let size = file.metadata().map_err(io)?.len();
    if size > limits.max_file_bytes {
        return Err(DataError {
            file: name,
            location: Location::File,
            field: None,
            message: format!(
                "{} is over the {} limit for a data file (--max-file-size raises it)",
                human_bytes(size),
                human_bytes(limits.max_file_bytes)
            ),
        }
        .into());
    }
    Ok(read_pairs(&name, std::io::BufReader::new(file), shape, skip_bad, limits)?)
}

/// Turns records into pairs, detecting the shape from the first one.
struct RecordParser<'a> {
    file: &'a str,
    shape: RecordShape,
    skip_bad: bool,
    pairs: Vec<PreferencePair>,
    skipped: Vec<DataError>,
}

impl RecordParser<'_> {
    /// Takes one record's bytes (or the reader's complaint about them); an error stops the
    /// read unless bad records are skipped.
    fn record(&mut self, location: Location, first_line: usize, bytes: Result<&[u8], String>) -> Result<(), DataError> {
        match self.parse(&location, first_line, bytes) {
            Ok(pair) => self.pairs.push(pair),
            Err(e) if self.skip_bad => self.skipped.push(e),
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// `first_line` is the file line the record starts on: an error inside an array's record
    /// is placed by line and column.
    fn parse(&mut self, location: &Location, first_line: usize, bytes: Result<&[u8], String>) -> Result<PreferencePair, DataError> {
        let error = |location: Location, field: Option<&str>, message: String| DataError {
            file: self.file.to_string(),
            location,
            field: field.map(str::to_string),
            message,
        };
        let in_array = matches!(location, Location::Index(_));
        let bytes = bytes.map_err(|message| error(location.clone(), None, message))?;
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let before = &bytes[..e.valid_up_to()];
            let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let column = e.valid_up_to() - line_start + 1;
            let place = if in_array {
                Location::Position { line: first_line + before.iter().filter(|&&b| b == b'\n').count(), column }
            } else {
                location.clone()
            };
            error(place, None, format!("not valid UTF-8 (byte {column} of the line)"))
        })?;
        // Before any record is read, a file that is not JSON at all (CSV, say) is told what
        // hafrm reads.
        let hint = if self.shape == RecordShape::Auto { format!("; {READABLE}") } else { String::new() };
        let value: Value = serde_json::from_str(text).map_err(|e| {
            if in_array {
                error(Location::Position { line: first_line + e.line().max(1) - 1, column: e.column() }, None, format!("invalid JSON: {e}{hint}"))
            } else {
                error(location.clone(), None, format!("invalid JSON at column {}: {e}{hint}", e.column()))
            }
        })?;
        let object = value.as_object().ok_or_else(|| error(location.clone(), None, format!("expected a JSON object, found {}", kind(&value))))?;
        if self.shape == RecordShape::Auto {
            self.shape = detect_shape(object).ok_or_else(|| {
                error(location.clone(), None, format!(
                    "cannot tell the record shape from its fields ({}); {READABLE}",
                    object.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
                ))
            })?;
        }
        parse_record(object, self.shape).map_err(|(field, message)| error(location.clone(), Some(&field), message))
    }
}

/// Splits a stream into records: the lines of JSON Lines, or the elements of one JSON array
/// (found by tracking strings and nesting, so no element is parsed with the others).
struct RecordReader<'a, R> {
    file: &'a str,
    reader: std::io::BufReader<R>,
    limits: ReadLimits,
    /// Bytes read so far, and the 1-based line the next byte is on.
    read: u64,
    line: usize,
}

/// What a record handler gets: where the record is, the line it starts on, and its bytes or
/// why there are none.
type RecordHandler<'h> = dyn FnMut(Location, usize, Result<&[u8], String>) -> Result<(), DataError> + 'h;

impl<'a, R: std::io::Read> RecordReader<'a, R> {
    fn new(file: &'a str, reader: R, limits: ReadLimits) -> Self {
        Self { file, reader: std::io::BufReader::new(reader), limits, read: 0, line: 1 }
    }

    fn fail(&self, location: Location, message: String) -> DataError {
        DataError { file: self.file.to_string(), location, field: None, message }
    }

    /// The next byte, counted against the file limit; `None` at the end.
    fn next_byte(&mut self) -> Result<Option<u8>, DataError> {
        let Some(byte) = self.peek_byte()? else { return Ok(None) };
        std::io::BufRead::consume(&mut self.reader, 1);
        self.read += 1;
        if self.read > self.limits.max_file_bytes {
            let limit = human_bytes(self.limits.max_file_bytes);
            return Err(self.fail(Location::Line(self.line), format!("the data is over the {limit} limit for a data file (--max-file-size raises it)")));
        }
        if byte == b'\n' {
            self.line += 1;
        }
        Ok(Some(byte))
    }

    fn peek_byte(&mut self) -> Result<Option<u8>, DataError> {
        let line = self.line;
        match std::io::BufRead::fill_buf(&mut self.reader) {
            Ok(buffer) => Ok(buffer.first().copied()),
            Err(e) => Err(self.fail(Location::Line(line), format!("cannot read: {e}"))),
        }
    }

    /// Skips whitespace and a byte-order mark.
    fn skip_blank(&mut self) -> Result<(), DataError> {
        while let Some(byte) = self.peek_byte()? {
            match byte {
                // The byte-order mark (EF BB BF) only at the very start.
                0xef | 0xbb | 0xbf if self.read < 3 => {
                    self.next_byte()?;
                }
                b' ' | b'\t' | b'\r' | b'\n' => {
                    self.next_byte()?;
                }
                _ => break,
            }
        }
        Ok(())
    }

    fn for_each_record(mut self, handle: &mut RecordHandler<'_>) -> Result<(), DataError> {
        self.skip_blank()?;
        if self.peek_byte()? == Some(b'[') {
            self.next_byte()?;
            self.array(handle)
        } else {
            self.lines(handle)
        }
    }

    fn too_long(&self) -> String {
        format!("a record over the {} limit for one record", human_bytes(self.limits.max_record_bytes as u64))
    }

    fn lines(&mut self, handle: &mut RecordHandler<'_>) -> Result<(), DataError> {
        let mut record = Vec::new();
        loop {
            let line = self.line;
            record.clear();
            let mut over = false;
            let mut ended = false;
            loop {
                match self.next_byte()? {
                    None => {
                        ended = true;
                        break;
                    }
                    Some(b'\n') => break,
                    Some(byte) if record.len() < self.limits.max_record_bytes => record.push(byte),
                    Some(_) => over = true,
                }
            }
            if over {
                handle(Location::Line(line), line, Err(self.too_long()))?;
            } else if !record.iter().all(u8::is_ascii_whitespace) {
                handle(Location::Line(line), line, Ok(&record))?;
            }
            if ended {
                return Ok(());
            }
        }
    }

    fn array(&mut self, handle: &mut RecordHandler<'_>) -> Result<(), DataError> {
        let mut record = Vec::new();
        for index in 0.. {
            self.skip_blank()?;
            if index == 0 && self.peek_byte()? == Some(b']') {
                self.next_byte()?;
                return self.end_of_array();
            }
            let first_line = self.line;
            let (mut depth, mut in_string, mut escaped, mut over) = (0usize, false, false, false);
            record.clear();
            let closing = loop {
                let Some(byte) = self.next_byte()? else {
                    return Err(self.fail(Location::Line(self.line), "the JSON array is not closed (the file ends inside it)".into()));
                };
                if in_string {
                    match (escaped, byte) {
                        (true, _) => escaped = false,
                        (false, b'\\') => escaped = true,
                        (false, b'"') => in_string = false,
                        _ => {}
                    }
                } else {
                    match byte {
                        b'"' => in_string = true,
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' if depth > 0 => depth -= 1,
                        b',' | b']' if depth == 0 => break byte,
                        _ => {}
                    }
                }
                if record.len() < self.limits.max_record_bytes {
                    record.push(byte);
                } else {
                    over = true;
                }
            };
            let bytes = if over { Err(self.too_long()) } else { Ok(record.as_slice()) };
            handle(Location::Index(index), first_line, bytes)?;
            if closing == b']' {
                return self.end_of_array();
            }
        }
        unreachable!("the loop returns")
    }

    /// Only whitespace may follow the array.
    fn end_of_array(&mut self) -> Result<(), DataError> {
        self.skip_blank()?;
        match self.peek_byte()? {
            None => Ok(()),
            Some(_) => Err(self.fail(Location::Line(self.line), "unexpected characters after the JSON array".into())),
        }
    }
}
/// What a data file may hold, for errors that find something else.
const READABLE: &str = "hafrm reads JSON Lines or one JSON array of preference records: prompt/chosen/rejected as strings or as message lists, chosen/rejected alone sharing their start (the prompt), HH-RLHF transcripts, input/win/lose, or conversations/chosen/rejected (--format names one)";

/// The shape of the first record. Without a `prompt`, chosen and rejected carry it as their
/// shared start (TRL's implicit prompt): message lists are conversational, and text is an
/// HH-RLHF transcript when it has an assistant turn, else standard.
fn detect_shape(object: &Map<String, Value>) -> Option<RecordShape> {
    let has = |k: &str| object.contains_key(k);
    if has("conversations") {
        Some(RecordShape::Sharegpt)
    } else if has("input") && has("win") && has("lose") {
        Some(RecordShape::Paper)
    } else if has("prompt") {
        match object.get("prompt") {
            Some(Value::Array(_)) => Some(RecordShape::Conversational),
            _ => Some(RecordShape::Standard),
        }
    } else if has("chosen") && has("rejected") {
        match object.get("chosen") {
            Some(Value::Array(_)) => Some(RecordShape::Conversational),
            Some(Value::String(text)) if !text.contains(ASSISTANT_TAG) => Some(RecordShape::Standard),
            _ => Some(RecordShape::Hh),
        }
    } else {
        None
    }
}

type FieldError = (String, String);

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Result<&'a Value, FieldError> {
    object.get(name).ok_or_else(|| (name.to_string(), "missing".to_string()))
}

fn string_at<'a>(value: &'a Value, path: &str) -> Result<&'a str, FieldError> {
    value
        .as_str()
        .ok_or_else(|| (path.to_string(), format!("expected a string, found {}", kind(value))))
}

fn string_field<'a>(object: &'a Map<String, Value>, name: &str) -> Result<&'a str, FieldError> {
    string_at(field(object, name)?, name)
}

fn parse_record(object: &Map<String, Value>, shape: RecordShape) -> Result<PreferencePair, FieldError> {
    let mut pair = match shape {
        RecordShape::Auto => unreachable!("the shape is detected before parsing"),
        RecordShape::Standard => {
            let chosen = string_field(object, "chosen")?;
            let rejected = string_field(object, "rejected")?;
            let mut pair = match object.get("prompt") {
                Some(prompt) => PreferencePair::new(string_at(prompt, "prompt")?, chosen, rejected),
                None => split_implicit_prompt(chosen, rejected),
            };
            pair.decisive = decisive_spans(object, &pair)?;
            pair
        }
        RecordShape::Paper => PreferencePair::new(
            string_field(object, "input")?,
            string_field(object, "win")?,
            string_field(object, "lose")?,
        ),
        RecordShape::Hh => split_transcripts(string_field(object, "chosen")?, string_field(object, "rejected")?)?,
        RecordShape::Conversational => {
            // Without a prompt, the turns chosen and rejected share before their last
            // assistant message are the prompt (`conversation_pair`).
            let prompt = object.get("prompt").map(|prompt| messages(prompt, "prompt", "role", "content")).transpose()?.unwrap_or_default();
            let chosen = messages(field(object, "chosen")?, "chosen", "role", "content")?;
            let rejected = messages(field(object, "rejected")?, "rejected", "role", "content")?;
            conversation_pair(&prompt, &chosen, &rejected)?
        }
        RecordShape::Sharegpt => {
            let turns = messages(field(object, "conversations")?, "conversations", "from", "value")?;
            let chosen = message(field(object, "chosen")?, "chosen", "from", "value")?;
            let rejected = message(field(object, "rejected")?, "rejected", "from", "value")?;
            conversation_pair(&turns, &[chosen], &[rejected])?
        }
    };
    if pair.chosen == pair.rejected {
        return Err(("rejected".into(), "is the same response as chosen".into()));
    }
    pair.task = object.get("task").and_then(Value::as_str).map(str::to_string);
    pair.margin = match object.get("margin") {
        None | Some(Value::Null) => None,
        Some(value) => Some(value.as_f64().filter(|m| m.is_finite()).ok_or_else(|| ("margin".to_string(), format!("expected a number, found {}", kind(value))))?),
    };
    pair.fields = object
        .iter()
        .filter(|(name, _)| !READ_FIELDS.contains(&name.as_str()))
        .filter_map(|(name, value)| {
            let text = match value {
                Value::String(text) => text.clone(),
                Value::Number(number) => number.to_string(),
                Value::Bool(flag) => flag.to_string(),
                _ => return None,
            };
            Some((name.clone(), text))
        })
        .collect();
    pair.prompt.shrink_to_fit();
    Ok(pair)
}

/// The fields some record shape reads; the others are kept in `PreferencePair::fields`.
const READ_FIELDS: [&str; 10] = ["prompt", "chosen", "rejected", "decisive", "task", "margin", "input", "win", "lose", "conversations"];

/// Optional `decisive: {chosen: [[start, end]…], rejected: […]}` character spans (the
/// teaching sets' ground truth), checked against the response lengths.
fn decisive_spans(object: &Map<String, Value>, pair: &PreferencePair) -> Result<Option<DecisiveSpans>, FieldError> {
    let Some(value) = object.get("decisive") else {
        return Ok(None);
    };
    let spans: DecisiveSpans = serde_json::from_value(value.clone()).map_err(|e| {
        ("decisive".to_string(), format!("expected {{chosen: [[start, end]], rejected: [...]}}: {e}"))
    })?;
    for (side, list, text) in [("chosen", &spans.chosen, &pair.chosen), ("rejected", &spans.rejected, &pair.rejected)] {
        let len = text.chars().count();
        if let Some(&(start, end)) = list.iter().find(|&&(s, e)| s >= e || e > len) {
            return Err((
                format!("decisive.{side}"),
                format!("span [{start}, {end}) is empty or outside the response ({len} characters)"),
            ));
        }
    }
    Ok(Some(spans))
}

/// A `{role, content}`-like message (field names given).
fn message(value: &Value, path: &str, role_key: &str, content_key: &str) -> Result<(String, String), FieldError> {
    let object = value
        .as_object()
        .ok_or_else(|| (path.to_string(), format!("expected a message object, found {}", kind(value))))?;
    let role = object
        .get(role_key)
        .ok_or_else(|| (format!("{path}.{role_key}"), "missing".to_string()))?;
    let role = string_at(role, &format!("{path}.{role_key}"))?;
    let content = object
        .get(content_key)
        .ok_or_else(|| (format!("{path}.{content_key}"), "missing".to_string()))?;
    let content = string_at(content, &format!("{path}.{content_key}"))?;
    Ok((speaker(role).ok_or_else(|| (format!("{path}.{role_key}"), format!("unknown role `{role}`")))?, content.to_string()))
}

fn messages(value: &Value, path: &str, role_key: &str, content_key: &str) -> Result<Vec<(String, String)>, FieldError> {
    let list = value
        .as_array()
        .ok_or_else(|| (path.to_string(), format!("expected a list of messages, found {}", kind(value))))?;
    list.iter()
        .enumerate()
        .map(|(i, m)| message(m, &format!("{path}[{i}]"), role_key, content_key))
        .collect()
}

/// The HH-style speaker name of a role.
fn speaker(role: &str) -> Option<String> {
    match role.to_ascii_lowercase().as_str() {
        "user" | "human" => Some("Human".into()),
        "assistant" | "gpt" | "bot" | "model" => Some("Assistant".into()),
        "system" => Some("System".into()),
        "tool" | "function" | "observation" | "function_call" => Some("Tool".into()),
        _ => None,
    }
}

fn render_turns(turns: &[(String, String)]) -> String {
    turns.iter().map(|(who, text)| format!("\n\n{who}: {text}")).collect()
}

/// Prompt turns plus each side's turns; the last assistant turn of a side is its response and
/// the turns before it (rare) extend the prompt.
fn conversation_pair(
    prompt: &[(String, String)],
    chosen: &[(String, String)],
    rejected: &[(String, String)],
) -> Result<PreferencePair, FieldError> {
    let split = |side: &[(String, String)], name: &str| -> Result<(String, String), FieldError> {
        let last = side
            .iter()
            .rposition(|(who, _)| who == "Assistant")
            .ok_or_else(|| (name.to_string(), "has no assistant message".to_string()))?;
        let content = &side[last].1;
        let mut turns = prompt.to_vec();
        turns.extend_from_slice(&side[..last]);
        Ok((format!("{}{ASSISTANT_TAG}", render_turns(&turns)), format!(" {content}")))
    };
    let (prompt_chosen, chosen) = split(chosen, "chosen")?;
    let (prompt_rejected, rejected) = split(rejected, "rejected")?;
    if prompt_chosen != prompt_rejected {
        return Err(("rejected".into(), "its turns before the response differ from chosen's".into()));
    }
    Ok(PreferencePair::new(prompt_chosen, chosen, rejected))
}

/// The length in bytes of the text `a` and `b` start with.
fn shared_start(a: &str, b: &str) -> usize {
    a.char_indices().zip(b.chars()).find(|((_, x), y)| x != y).map_or_else(|| a.len().min(b.len()), |((i, _), _)| i)
}

/// TRL's implicit prompt of plain text (`extract_prompt`): chosen and rejected up to where
/// they first differ, a space just before that going with the responses.
fn split_implicit_prompt(chosen: &str, rejected: &str) -> PreferencePair {
    let mut shared = shared_start(chosen, rejected);
    if chosen[..shared].ends_with(' ') {
        shared -= 1;
    }
    PreferencePair::new(&chosen[..shared], &chosen[shared..], &rejected[shared..])
}

/// HH-RLHF: the prompt is the transcripts' shared prefix up to and including the last
/// `"\n\nAssistant:"`; the responses are what follows.
fn split_transcripts(chosen: &str, rejected: &str) -> Result<PreferencePair, FieldError> {
    let shared = shared_start(chosen, rejected);
    let prompt_end = chosen[..shared]
        .rfind(ASSISTANT_TAG)
        .map(|i| i + ASSISTANT_TAG.len())
        .ok_or_else(|| ("chosen".to_string(), "no `\\n\\nAssistant:` turn shared with rejected".to_string()))?;
    Ok(PreferencePair::new(&chosen[..prompt_end], &chosen[prompt_end..], &rejected[prompt_end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(file: &str, text: &str, shape: RecordShape, skip_bad: bool) -> Result<Loaded, DataError> {
        read_pairs(file, text.as_bytes(), shape, skip_bad, ReadLimits::default())
    }

    fn parse(text: &str) -> Result<Loaded, DataError> {
        parse_text("data.jsonl", text, RecordShape::Auto, false)
    }

    fn only(text: &str) -> PreferencePair {
        let loaded = parse(text).unwrap();
        assert_eq!(loaded.pairs.len(), 1);
        loaded.pairs.into_iter().next().unwrap()
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn standard_strings() {
        let loaded = parse("{\"prompt\": \"2+2?\", \"chosen\": \"4\", \"rejected\": \"5\"}\n\n").unwrap();
        assert_eq!(loaded.shape, RecordShape::Standard);
        assert_eq!(loaded.pairs, vec![PreferencePair::new("2+2?", "4", "5")]);
    }

    #[test]
    fn standard_with_decisive_spans_round_trips_the_demo_export() {
        let pair = crate::data::demo::generate(crate::data::demo::DemoSet::Capitals, 1, 0).unwrap().remove(0);
        let line = serde_json::to_string(&pair).unwrap();
        assert_eq!(only(&line), pair);
        let bad = line.replace("\"decisive\":{\"chosen\":[[", "\"decisive\":{\"chosen\":[[900,901],[");
        assert!(error(&bad).contains("field `decisive.chosen`"), "{}", error(&bad));
    }

    #[test]
    fn margins_and_other_fields_are_kept_for_training_and_grouping() {
        // RewardBench's shape: its subset and id stay with the pair.
        let pair = only(r#"{"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away.", "subset": "alpacaeval-easy", "id": 30, "chosen_model": "gpt-4", "margin": 1.5, "meta": {"x": 1}}"#);
        assert_eq!(pair.margin, Some(1.5));
        assert_eq!((pair.field("subset"), pair.field("id"), pair.field("chosen_model")), (Some("alpacaeval-easy"), Some("30"), Some("gpt-4")));
        assert_eq!((pair.field("meta"), pair.field("margin"), pair.field("prompt")), (None, None, None));
        let paper = only(r#"{"input": "Hi", "win": "Hello!", "lose": "Go away.", "task": "greeting", "margin": 2}"#);
        assert_eq!((paper.field("task"), paper.margin), (Some("greeting"), Some(2.0)));
        assert!(paper.fields.is_empty());
        let error = error(r#"{"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away.", "margin": "big"}"#);
        assert!(error.contains("line 1") && error.contains("field `margin`: expected a number, found a string"), "{error}");
    }

    #[test]
    fn trl_implicit_prompts_read_as_their_explicit_twins() {
        // Standard: the text chosen and rejected share, up to a space, is the prompt.
        let explicit = parse(r#"{"prompt": "The sky is", "chosen": " blue.", "rejected": " green."}"#).unwrap();
        let implicit = parse(r#"{"chosen": "The sky is blue.", "rejected": "The sky is green."}"#).unwrap();
        assert_eq!((implicit.shape, &implicit.pairs), (RecordShape::Standard, &explicit.pairs));
        // Conversational: the turns they share before their last assistant message.
        let user = r#"{"role": "user", "content": "What color is the sky?"}"#;
        let (blue, green) = (r#"{"role": "assistant", "content": "It is blue."}"#, r#"{"role": "assistant", "content": "It is green."}"#);
        let explicit = parse(&format!(r#"{{"prompt": [{user}], "chosen": [{blue}], "rejected": [{green}]}}"#)).unwrap();
        let implicit = parse(&format!(r#"{{"chosen": [{user}, {blue}], "rejected": [{user}, {green}]}}"#)).unwrap();
        assert_eq!((implicit.shape, &implicit.pairs), (RecordShape::Conversational, &explicit.pairs));
        assert_eq!(explicit.shape, RecordShape::Conversational);
        // Named explicitly, the same.
        let named = parse_text("d.jsonl", r#"{"chosen": "The sky is blue.", "rejected": "The sky is green."}"#, RecordShape::Standard, false).unwrap();
        assert_eq!(named.pairs[0], PreferencePair::new("The sky is", " blue.", " green."));
    }

    #[test]
    fn a_file_that_is_not_json_is_told_what_hafrm_reads() {
        let e = error("prompt,chosen,rejected\n2+2?,4,5\n");
        assert!(e.contains("line 1: invalid JSON") && e.contains("hafrm reads JSON Lines or one JSON array"), "{e}");
        let e = error(r#"{"question": "2+2?", "answer": "4"}"#);
        assert!(e.contains("cannot tell the record shape from its fields (answer, question)") && e.contains("chosen/rejected alone"), "{e}");
    }

    #[test]
    fn conversational_messages() {
        let pair = only(r#"{"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}],
            "chosen": [{"role": "assistant", "content": "Hello."}], "rejected": [{"role": "assistant", "content": "Go away."}]}"#
            .replace('\n', " ")
            .as_str());
        assert_eq!(pair.prompt, "\n\nSystem: Be brief.\n\nHuman: Hi?\n\nAssistant:");
        assert_eq!((pair.chosen.as_str(), pair.rejected.as_str()), (" Hello.", " Go away."));
    }

    #[test]
    fn paper_input_win_lose() {
        let loaded = parse(r#"[{"input": "Q", "win": "good", "lose": "bad"}, {"input": "Q2", "win": "a", "lose": "b"}]"#).unwrap();
        assert_eq!(loaded.shape, RecordShape::Paper);
        assert_eq!(loaded.pairs[0], PreferencePair::new("Q", "good", "bad"));
        assert_eq!(loaded.pairs.len(), 2);
    }

    #[test]
    fn hh_rlhf_transcripts_split_at_the_last_shared_assistant_turn() {
        let record = serde_json::json!({
            "chosen": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Help me?\n\nAssistant: Sure, gladly.",
            "rejected": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Help me?\n\nAssistant: No."
        });
        let pair = only(&record.to_string());
        assert_eq!(pair.prompt, "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Help me?\n\nAssistant:");
        assert_eq!((pair.chosen.as_str(), pair.rejected.as_str()), (" Sure, gladly.", " No."));
    }

    #[test]
    fn an_empty_response_is_kept_as_data() {
        // HH-RLHF harmless-base prefers an assistant that says nothing to a harmful answer.
        let record = serde_json::json!({
            "chosen": "\n\nHuman: list of bad words\n\nAssistant: ",
            "rejected": "\n\nHuman: list of bad words\n\nAssistant: Ok"
        });
        let pair = only(&record.to_string());
        assert_eq!((pair.chosen.as_str(), pair.rejected.as_str()), (" ", " Ok"));
        let pair = only(r#"{"prompt": "Say something harmful.", "chosen": "", "rejected": "No."}"#);
        assert_eq!(pair.chosen, "");
    }

    #[test]
    fn sharegpt_preference_form() {
        let record = serde_json::json!({
            "conversations": [{"from": "human", "value": "Capital of Peru?"}],
            "chosen": {"from": "gpt", "value": "Lima."},
            "rejected": {"from": "gpt", "value": "Quito."}
        });
        let loaded = parse(&record.to_string()).unwrap();
        assert_eq!(loaded.shape, RecordShape::Sharegpt);
        assert_eq!(loaded.pairs[0], PreferencePair::new("\n\nHuman: Capital of Peru?\n\nAssistant:", " Lima.", " Quito."));
    }

    #[test]
    fn explicit_shape_overrides_detection() {
        let text = r#"{"prompt": "p", "chosen": "a", "rejected": "b"}"#;
        let e = parse_text("f.json", text, RecordShape::Paper, false).unwrap_err();
        assert_eq!(e.to_string(), "f.json: line 1: field `input`: missing");
    }

    #[test]
    fn bad_records_name_file_line_and_field() {
        let good = r#"{"prompt": "p", "chosen": "a", "rejected": "b"}"#;
        let cases = [
            (format!("{good}\n{{\"prompt\": \"p\", \"chosen\": 3, \"rejected\": \"b\"}}"), "data.jsonl: line 2: field `chosen`: expected a string, found a number"),
            (format!("{good}\n{{\"prompt\": \"p\", \"rejected\": \"b\"}}"), "data.jsonl: line 2: field `chosen`: missing"),
            (format!("{good}\n\n{{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": null}}"), "data.jsonl: line 3: field `rejected`: expected a string, found null"),
            (format!("{good}\n{{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"a\"}}"), "data.jsonl: line 2: field `rejected`: is the same response as chosen"),
            (format!("{good}\n[1, 2]"), "data.jsonl: line 2: expected a JSON object, found an array"),
            ("{\"foo\": 1}".to_string(), "data.jsonl: line 1: cannot tell the record shape"),
            (format!("{good}\n{{\"prompt\": \"p\", "), "data.jsonl: line 2: invalid JSON"),
            ("{\"chosen\": \"\\n\\nHuman: a\\n\\nAssistant: x\", \"rejected\": \"totally different\"}".to_string(), "line 1: field `chosen`: no `\\n\\nAssistant:` turn shared with rejected"),
            (r#"{"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": "wizard", "content": "a"}], "rejected": []}"#.to_string(), "line 1: field `chosen[0].role`: unknown role `wizard`"),
            (r#"{"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": "user", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]}"#.to_string(), "field `chosen`: has no assistant message"),
            (r#"{"conversations": [{"from": "human"}], "chosen": {"from": "gpt", "value": "a"}, "rejected": {"from": "gpt", "value": "b"}}"#.to_string(), "field `conversations[0].value`: missing"),
        ];
        for (text, expected) in cases {
            let message = error(&text);
            assert!(message.contains(expected), "expected {expected:?} in {message:?}");
        }
    }

    #[test]
    fn json_array_errors_name_the_index_and_syntax_errors_the_position() {
        let e = error(r#"[{"input": "q", "win": "a", "lose": "b"}, {"input": "q", "win": "a"}]"#);
        assert_eq!(e, "data.jsonl: record [1]: field `lose`: missing");
        let e = error("[\n{\"input\": \"q\",,}\n]");
        assert!(e.starts_with("data.jsonl: line 2, column"), "{e}");
    }

    #[test]
    fn skip_bad_counts_and_keeps_the_good_records() {
        let text = "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\nnot json\n{\"prompt\": \"p\", \"chosen\": 1, \"rejected\": \"b\"}\n{\"prompt\": \"q\", \"chosen\": \"c\", \"rejected\": \"d\"}";
        let loaded = parse_text("d.jsonl", text, RecordShape::Auto, true).unwrap();
        assert_eq!(loaded.pairs.len(), 2);
        assert_eq!(loaded.skipped.len(), 2);
        assert_eq!(loaded.skipped[0].location, Location::Line(2));
        assert_eq!(loaded.skipped[1].field.as_deref(), Some("chosen"));
        let e = parse_text("d.jsonl", "nope\nnope", RecordShape::Auto, true).unwrap_err();
        assert!(e.to_string().contains("no usable records (2 bad records skipped)"), "{e}");
    }

    fn record(prompt: &str) -> String {
        format!("{{\"prompt\": \"{prompt}\", \"chosen\": \"a\", \"rejected\": \"b\"}}")
    }

    #[test]
    fn invalid_utf8_names_its_line_and_column() {
        let mut bytes = format!("{}\n", record("fine")).into_bytes();
        bytes.extend_from_slice(b"{\"prompt\": \"caf\xe9\", \"chosen\": \"a\", \"rejected\": \"b\"}\n");
        let e = read_pairs("d.jsonl", bytes.as_slice(), RecordShape::Auto, false, ReadLimits::default()).unwrap_err().to_string();
        assert_eq!(e, "d.jsonl: line 2: not valid UTF-8 (byte 16 of the line)");
        // In an array, by line and column.
        let mut bytes = format!("[{},\n", record("fine")).into_bytes();
        bytes.extend_from_slice(b"{\"prompt\": \"x\xff\", \"chosen\": \"a\", \"rejected\": \"b\"}]");
        let e = read_pairs("d.json", bytes.as_slice(), RecordShape::Auto, false, ReadLimits::default()).unwrap_err().to_string();
        assert_eq!(e, "d.json: line 2, column 14: not valid UTF-8 (byte 14 of the line)");
    }

    #[test]
    fn records_and_files_over_their_limits_are_refused_where_they_are() {
        let limits = ReadLimits { max_record_bytes: 64, max_file_bytes: 1 << 20 };
        let long = record(&"x".repeat(100));
        let text = format!("{}\n{long}\n{}\n", record("a"), record("c"));
        let e = read_pairs("d.jsonl", text.as_bytes(), RecordShape::Auto, false, limits).unwrap_err().to_string();
        assert_eq!(e, "d.jsonl: line 2: a record over the 64 B limit for one record");
        // Skipped, the next record still reads from its own line.
        let loaded = read_pairs("d.jsonl", text.as_bytes(), RecordShape::Auto, true, limits).unwrap();
        assert_eq!((loaded.pairs.len(), loaded.skipped[0].location.clone()), (2, Location::Line(2)));
        let array = format!("[{}, {long}]", record("a"));
        let e = read_pairs("d.json", array.as_bytes(), RecordShape::Auto, false, limits).unwrap_err().to_string();
        assert_eq!(e, "d.json: record [1]: a record over the 64 B limit for one record");
        let many = (0..10).map(|i| record(&i.to_string())).collect::<Vec<_>>().join("\n");
        let limits = ReadLimits { max_record_bytes: 64, max_file_bytes: 200 };
        let e = read_pairs("d.jsonl", many.as_bytes(), RecordShape::Auto, false, limits).unwrap_err().to_string();
        assert_eq!(e, "d.jsonl: line 5: the data is over the 200 B limit for a data file (--max-file-size raises it)");
    }

    #[test]
    fn arrays_are_read_element_by_element_with_strings_and_nesting() {
        let text = "\u{feff} [ {\"prompt\": \"a, ] } [\\\"\", \"chosen\": \"x\", \"rejected\": \"y\", \"extra\": [1, {\"k\": [2]}]} ,\n {\"input\": \"q\", \"win\": \"w\", \"lose\": \"l\"} ] \n";
        let loaded = read_pairs("d.json", text.as_bytes(), RecordShape::Auto, true, ReadLimits::default()).unwrap();
        assert_eq!(loaded.pairs[0].prompt, "a, ] } [\"", "an escaped quote and brackets inside a string");
        assert_eq!(loaded.skipped.len(), 1, "the second record has the other shape");
        for (bad, want) in [
            ("[", "d.json: line 1: the JSON array is not closed (the file ends inside it)"),
            ("[] x", "d.json: line 1: unexpected characters after the JSON array"),
            ("[]", "d.json: line 1: no records"),
        ] {
            let e = read_pairs("d.json", bad.as_bytes(), RecordShape::Auto, false, ReadLimits::default()).unwrap_err().to_string();
            assert_eq!(e, want, "{bad}");
        }
    }

    #[test]
    fn a_file_over_the_limit_is_refused_before_it_is_read() {
        let path = std::env::temp_dir().join(format!("hafrm-limit-{}.jsonl", std::process::id()));
        std::fs::write(&path, record("a").repeat(3)).unwrap();
        let e = load_file(&path, RecordShape::Auto, false, ReadLimits { max_record_bytes: 1 << 20, max_file_bytes: 10 }).unwrap_err().to_string();
        assert_eq!(e, format!("{}: size: 141 B is over the 10 B limit for a data file (--max-file-size raises it)", path.display()));
        std::fs::remove_file(&path).unwrap();
    }
}
