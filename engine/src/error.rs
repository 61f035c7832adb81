//! The engine's error type: every message names what the user has to fix.

use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where in a data file a problem is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// 1-based line of a JSON Lines file.
    Line(usize),
    /// 0-based index into a JSON array file.
    Index(usize),
    /// Position of a syntax error (1-based line and column).
    Position { line: usize, column: usize },
    /// The file as a whole (its size).
    File,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(line) => write!(f, "line {line}"),
            Location::Index(index) => write!(f, "record [{index}]"),
            Location::Position { line, column } => write!(f, "line {line}, column {column}"),
            Location::File => write!(f, "size"),
        }
    }
}

/// A record the loader could not use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {location}{}: {message}", field.as_ref().map(|f| format!(": field `{f}`")).unwrap_or_default())]
pub struct DataError {
    pub file: String,
    pub location: Location,
    pub field: Option<String>,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("configuration: {0}")]
    Config(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: String, message: String },
    #[error("backend: {0}")]
    Backend(String),
    /// Training produced a non-finite number; the model was put back to before that step.
    #[error(
        "training diverged at step {step}: {quantity} is {value}. The model stays as it was after step {last_good}; \
         lower the learning rate (--lr, now {learning_rate:e}) or clip gradients harder (--max-grad-norm, now {max_grad_norm})"
    )]
    Diverged { step: usize, quantity: String, value: f32, last_good: usize, learning_rate: f64, max_grad_norm: f64 },
}

impl Error {
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    pub fn checkpoint(path: impl AsRef<std::path::Path>, message: impl fmt::Display) -> Self {
        Error::Checkpoint {
            path: path.as_ref().display().to_string(),
            message: message.to_string(),
        }
    }
}
