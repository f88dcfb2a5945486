//! The parameters routes share in the OpenAPI document: the path ids (each with what it names)
//! and the `Idempotency-Key` header. A route names them in `params(…)`; a new id gets a type
//! here beside the others.

use utoipa::IntoParams;

/// Declares a path parameter set: `id` (or the given names) documented as the ids it names.
macro_rules! path_params {
    ($($(#[$doc:meta])* $ty:ident { $($(#[$field_doc:meta])* $field:ident),+ })+) => {$(
        $(#[$doc])*
        #[derive(IntoParams)]
        #[into_params(parameter_in = Path)]
        pub struct $ty {
            $($(#[$field_doc])* pub $field: String,)+
        }
    )+};
}

path_params! {
    /// `{id}` of a payment.
    PaymentPath {
        /// The payment (`pay_…`); a malformed or another merchant's id is a 404.
        id
    }
    /// `{id}` of a refund.
    RefundPath {
        /// The refund (`ref_…`); a malformed or another merchant's id is a 404.
        id
    }
    /// `{id}` of a merchant.
    MerchantPath {
        /// The merchant (`mer_…`).
        id
    }
    /// `{id}` of a merchant and `{key_id}` of one of its keys.
    MerchantKeyPath {
        /// The merchant (`mer_…`).
        id,
        /// The API key (`key_…`).
        key_id
    }
    /// `{key_id}` of an API key.
    KeyPath {
        /// The API key (`key_…`).
        key_id
    }
    /// `{id}` of a gateway account.
    GatewayAccountPath {
        /// The gateway account (`gwa_…`).
        id
    }
    /// `{id}` of a webhook endpoint.
    EndpointPath {
        /// The webhook endpoint (`we_…`); a malformed or another merchant's id is a 404.
        id
    }
    /// `{id}` of an event.
    EventPath {
        /// The event (`evt_…`); a malformed or another merchant's id is a 404.
        id
    }
    /// `{id}` of a store.
    StorePath {
        /// The store (`store_…`); a malformed or another merchant's id, or another store than a
        /// bound credential's own, is a 404.
        id
    }
    /// `{id}` of a terminal.
    TerminalPath {
        /// The terminal (`term_…`); a malformed or another merchant's id, or one beyond a bound
        /// credential's store or terminal, is a 404.
        id
    }
    /// `{id}` of a merchant whose stores a route reads or adds.
    MerchantStoresPath {
        /// The merchant (`mer_…`): any for an operator, the caller's own for a merchant
        /// credential (another merchant's is a 404).
        id
    }
}

/// The `Idempotency-Key` header of a create run under [`crate::idempotency::run_resuming`]
/// (`params(IdempotencyKey)`; pair it with the `Idempotent` responses).
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyKey {
    /// Replay protection: the same key with the same request within 24 h answers the first
    /// answer again (`Idempotent-Replayed: true`); 1 to 255 visible ASCII characters.
    #[param(
        rename = "Idempotency-Key",
        min_length = 1,
        max_length = 255,
        nullable = false,
        pattern = r"^[\x21-\x7E]([\t\x20-\x7E]*[\x21-\x7E])?$"
    )]
    pub idempotency_key: Option<String>,
}
