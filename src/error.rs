//! One error type: a kind a program can branch on and a message a person can act on.

use serde::Serialize;

/// What went wrong, for callers that react differently (the page recovers from a lost device,
/// waits when busy, and shows bad input to the person who gave it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// An option, a file or a request that cannot be used as given.
    BadInput,
    /// Another call is running; try again when it is done.
    Busy,
    /// The GPU device was lost or reported an error: results cannot be trusted, restart the engine.
    Device,
    /// Not enough memory for the requested sizes.
    OutOfMemory,
    /// Saved state that cannot be read or is not this model's.
    BadState,
    /// A file could not be read or written.
    Io,
    /// Nothing usable to train on yet.
    NotReady,
    /// A bug: an invariant of the program did not hold.
    Internal,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error { kind, message: message.into() }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// A plain message is bad input: most errors are checks of what came in.
impl From<String> for Error {
    fn from(s: String) -> Self {
        Error::new(ErrorKind::BadInput, s)
    }
}

impl From<&str> for Error {
    fn from(s: &str) -> Self {
        Error::new(ErrorKind::BadInput, s)
    }
}

/// Returns an `Err` built from a format string: of kind BadInput, or of the kind given first
/// (`bail!(kind: ErrorKind::Io, "...")`).
#[macro_export]
macro_rules! bail {
    (kind: $kind:expr, $($arg:tt)*) => { return Err($crate::error::Error::new($kind, format!($($arg)*))) };
    ($($arg:tt)*) => { return Err($crate::error::Error::new($crate::error::ErrorKind::BadInput, format!($($arg)*))) };
}
