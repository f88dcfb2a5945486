//! The engine's one error type. It says what went wrong in payment terms; the tenant API maps
//! each variant to its public error body and HTTP status in one place (`tenant_api::error`).

/// Everything a payment operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// The request is malformed or names a value the engine cannot take.
    #[error("{message}")]
    Invalid {
        /// Stable code.
        code: &'static str,
        /// Human text.
        message: String,
        /// The offending field, if any.
        param: Option<String>,
    },
    /// The merchant may not take payments now (suspended or closed).
    #[error("this merchant is suspended and cannot take payments")]
    MerchantInactive,
    /// No such payment or refund for this merchant (a foreign id looks exactly like a missing one).
    #[error("no such {what}: {id}")]
    NotFound {
        /// `payment` or `refund`.
        what: &'static str,
        /// The id as asked.
        id: String,
    },
    /// The object's state forbids the operation now.
    #[error("{message}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// Human text.
        message: String,
    },
    /// Well-formed but refused by a business rule (limits, refundable amount).
    #[error("{message}")]
    Unprocessable {
        /// Stable code.
        code: &'static str,
        /// Human text.
        message: String,
        /// The offending field, if any.
        param: Option<String>,
    },
    /// CodePay did not give a usable answer.
    #[error("{message}")]
    Upstream {
        /// Stable code.
        code: &'static str,
        /// Human text.
        message: String,
    },
    /// Storage failed; nothing was committed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A compare-and-swap lost (storage port); retried internally.
    #[error("concurrent update, retry")]
    VersionConflict,
    /// A unique reference is taken (storage port): `merchant_order_id`, `merchant_refund_id`
    /// or `idempotency_key`.
    #[error("duplicate {0}")]
    Duplicate(&'static str),
}

/// The engine's result type.
pub type Result<T, E = PaymentError> = std::result::Result<T, E>;

impl PaymentError {
    /// A malformed value in `param`.
    pub fn invalid(code: &'static str, message: impl Into<String>, param: Option<&str>) -> Self {
        PaymentError::Invalid {
            code,
            message: message.into(),
            param: param.map(str::to_owned),
        }
    }

    /// A business rule refused the request.
    pub fn unprocessable(
        code: &'static str,
        message: impl Into<String>,
        param: Option<&str>,
    ) -> Self {
        PaymentError::Unprocessable {
            code,
            message: message.into(),
            param: param.map(str::to_owned),
        }
    }

    /// The object's state forbids it.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        PaymentError::Conflict {
            code,
            message: message.into(),
        }
    }

    /// No such `what` with `id` for this caller.
    pub fn not_found(what: &'static str, id: impl Into<String>) -> Self {
        PaymentError::NotFound {
            what,
            id: id.into(),
        }
    }
}

impl PaymentError {
    /// The stable code of a refusal (`amount_over_limit`, …), `None` for storage and
    /// concurrency failures, which have no code of their own.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            PaymentError::Invalid { code, .. }
            | PaymentError::Conflict { code, .. }
            | PaymentError::Unprocessable { code, .. }
            | PaymentError::Upstream { code, .. } => Some(code),
            PaymentError::MerchantInactive => Some("merchant_suspended"),
            PaymentError::NotFound { .. } => Some("resource_missing"),
            PaymentError::Unavailable(_)
            | PaymentError::VersionConflict
            | PaymentError::Duplicate(_) => None,
        }
    }
}

impl From<domain::DomainError> for PaymentError {
    fn from(e: domain::DomainError) -> Self {
        PaymentError::invalid("parameter_invalid", e.to_string(), None)
    }
}
