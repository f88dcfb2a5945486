//! What a CodePay call ends in. Three cases, so a caller cannot mistake "we do not know" for "no".

/// The result of one call to CodePay.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "an Unknown outcome must be settled with a query"]
pub enum CallOutcome<T> {
    /// CodePay answered `code` `"0"` with a verified signature and a readable `data`.
    Success(T),
    /// CodePay definitely refused: its `code` and `msg` kept for support.
    Declined {
        /// CodePay's error code, e.g. `E04111`.
        code: String,
        /// CodePay's message.
        msg: String,
    },
    /// The request may or may not have taken effect. Settle it with `order.query` (or
    /// `order.refund.query`) on the **same** order number; never retry under a new one.
    Unknown {
        /// Why the answer could not be trusted.
        reason: UnknownReason,
    },
}

impl<T> CallOutcome<T> {
    /// `success`, `declined` or `unknown`: the metrics and trace label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Success(_) => "success",
            Self::Declined { .. } => "declined",
            Self::Unknown { .. } => "unknown",
        }
    }

    /// Converts the success value, keeping the other cases.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> CallOutcome<U> {
        match self {
            Self::Success(t) => CallOutcome::Success(f(t)),
            Self::Declined { code, msg } => CallOutcome::Declined { code, msg },
            Self::Unknown { reason } => CallOutcome::Unknown { reason },
        }
    }
}

/// Why a call's outcome is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnknownReason {
    /// No complete answer within the configured timeout.
    Timeout,
    /// The connection could not be opened, so nothing was sent; still settled by query, which
    /// is harmless, because "not sent" cannot be proven for every transport error.
    Connect(String),
    /// The connection broke after the request was (or may have been) sent.
    ConnectionLost(String),
    /// CodePay (or a proxy in front of it) answered with an HTTP error status.
    HttpStatus(u16),
    /// The body is not a CodePay envelope, or its `data` cannot be read.
    Unparsable(String),
    /// The response carries a signature that does not verify with the gateway key.
    BadSignature,
    /// A success response without a signature (refused unless configured otherwise).
    UnsignedSuccess,
}

impl UnknownReason {
    /// The metric label for the reason.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connect(_) => "connect",
            Self::ConnectionLost(_) => "connection_lost",
            Self::HttpStatus(_) => "http_status",
            Self::Unparsable(_) => "unparsable",
            Self::BadSignature => "bad_signature",
            Self::UnsignedSuccess => "unsigned_success",
        }
    }
}

impl std::fmt::Display for UnknownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Timeout => f.write_str("timed out"),
            Self::Connect(e) => write!(f, "could not connect: {e}"),
            Self::ConnectionLost(e) => write!(f, "connection lost: {e}"),
            Self::HttpStatus(s) => write!(f, "HTTP status {s}"),
            Self::Unparsable(e) => write!(f, "unreadable response: {e}"),
            Self::BadSignature => f.write_str("response signature does not verify"),
            Self::UnsignedSuccess => f.write_str("success response without signature"),
        }
    }
}
