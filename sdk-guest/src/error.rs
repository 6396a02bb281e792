//! The error type of plugin code.

use std::fmt;

/// What went wrong, as ward understands it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The tool, prompt, resource or completion target does not exist.
    NotFound,
    /// The arguments are missing, mistyped or out of range.
    InvalidParams,
    /// The request was understood but could not be carried out. For a tool,
    /// ward turns this into an `isError` result whose text is the message.
    Failed,
}

/// An error returned by plugin code.
///
/// Any [`std::error::Error`] converts into it (as [`ErrorKind::Failed`], with
/// the error's text as the message), so `?` works on `std::io::Result` and
/// friends. Build one from a message with [`Error::failed`],
/// [`Error::invalid_params`] or [`Error::not_found`], or with [`fail!`](crate::fail).
///
/// Like `anyhow::Error`, it deliberately does not implement
/// [`std::error::Error`] itself (that is what makes the blanket conversion
/// possible).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    /// An error of the given kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }
    /// The request could not be carried out (a tool's `isError` result).
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Failed, message)
    }
    /// The arguments are wrong.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidParams, message)
    }
    /// The thing asked for does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Error {
    fn from(e: E) -> Self {
        Self::failed(e.to_string())
    }
}

impl From<Error> for crate::bindings::ward::plugin::types::Error {
    fn from(e: Error) -> Self {
        use crate::bindings::ward::plugin::types::Error as W;
        match e.kind {
            ErrorKind::NotFound => W::NotFound(e.message),
            ErrorKind::InvalidParams => W::InvalidParams(e.message),
            ErrorKind::Failed => W::Failed(e.message),
        }
    }
}

/// `Result<T, ward_guest::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Returns early with an [`Error::failed`] built like `format!`.
///
/// ```ignore
/// if n < 0 { ward_guest::fail!("n must not be negative, got {n}"); }
/// ```
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => {
        return ::core::result::Result::Err($crate::Error::failed(::std::format!($($arg)*)))
    };
}
