//! Errors of the OLTP side and of change data capture.

use thiserror::Error;

/// What can go wrong talking to the store's database or landing its changes.
#[derive(Debug, Error)]
pub enum OltpError {
    /// The database URL is not one.
    #[error("bad database URL: {0}")]
    BadUrl(String),
    /// Connecting failed.
    #[error("cannot connect to {target}: {reason}")]
    Connect {
        /// Host and database, without the password.
        target: String,
        /// The server's or the network's words.
        reason: String,
    },
    /// A statement failed.
    #[error("{context}: {reason}")]
    Sql {
        /// What was being done.
        context: String,
        /// The server's words.
        reason: String,
        /// The connection was lost or the server is shutting down (a reconnect may cure it).
        transient: bool,
    },
    /// The database is not ready for what was asked; the message says what to run.
    #[error("{0}")]
    NotReady(String),
    /// The export could not be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The replication stream failed.
    #[error("replication: {message}")]
    Replication {
        /// What went wrong.
        message: String,
        /// A lost connection or a timeout (a reconnect may cure it), as opposed to a refusal,
        /// a bad frame or a broken invariant, which would recur.
        transient: bool,
    },
    /// The replicated data does not fit the lake's tables (a schema change, a value that
    /// does not parse); the stream stops rather than mis-map it.
    #[error("{0}")]
    Mapping(String),
    /// The lake failed.
    #[error(transparent)]
    Lake(#[from] shoplake_lake::LakeError),
}

impl OltpError {
    /// A failed statement, with what was being done.
    pub fn sql(context: impl Into<String>, e: tokio_postgres::Error) -> OltpError {
        // Connection exceptions (class 08) and a server shutting down (57P01-57P03) pass;
        // anything else the server said would be said again.
        let transient = e.is_closed()
            || match e.code() {
                Some(code) => {
                    let c = code.code();
                    c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03")
                }
                None => e.as_db_error().is_none(),
            };
        OltpError::Sql {
            context: context.into(),
            reason: describe(&e),
            transient,
        }
    }

    /// A replication failure that a reconnect will not cure.
    pub fn replication(message: impl Into<String>) -> OltpError {
        OltpError::Replication {
            message: message.into(),
            transient: false,
        }
    }

    /// Whether a new session may succeed where this one failed.
    pub fn is_transient(&self) -> bool {
        match self {
            OltpError::Connect { .. } => true,
            OltpError::Sql { transient, .. } | OltpError::Replication { transient, .. } => {
                *transient
            }
            _ => false,
        }
    }
}

/// A tokio-postgres error in one line: the server's message (with its detail and hint) when
/// there is one, else the client's.
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = db.message().to_string();
            if let Some(detail) = db.detail() {
                s.push_str(&format!(" ({detail})"));
            }
            if let Some(hint) = db.hint() {
                s.push_str(&format!("; {hint}"));
            }
            s
        }
        None => {
            let mut s = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(inner) = source {
                s.push_str(&format!(": {inner}"));
                source = inner.source();
            }
            s
        }
    }
}

/// Result of this crate.
pub type Result<T, E = OltpError> = std::result::Result<T, E>;
