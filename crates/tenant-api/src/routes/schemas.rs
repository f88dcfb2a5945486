//! Schemas of the OpenAPI document built from what validation accepts, so the document cannot
//! drift from the code: wallets from `domain::WALLETS`, currencies from what
//! `Currency::from_code` accepts, modes, statuses, event types and scopes from their lists, id
//! cursors from the ids' prefixes, and the create bodies whose rules span fields from the
//! request types themselves. Fields name them with `#[schema(value_type = …)]` or
//! `#[param(value_type = …)]`; bodies with `request_body = …`.

use crate::auth::jwt::ALL_SCOPES;
use crate::locations::TerminalKind;
use domain::{Currency, EventType, PaymentMode, PaymentStatus, RefundStatus, Wallet};
use std::borrow::Cow;
use std::sync::OnceLock;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{Object, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::{PartialSchema, ToSchema};

/// A string schema whose value is one of `values`.
fn enumeration(description: &str, values: impl IntoIterator<Item = &'static str>) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(values))
        .build()
}

/// Declares a named string enumeration schema (a component the fields reference).
macro_rules! string_enum {
    ($($(#[$doc:meta])* $ty:ident as $name:literal, $description:literal, $values:expr;)+) => {$(
        $(#[$doc])*
        pub struct $ty;

        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                Schema::Object(enumeration($description, $values)).into()
            }
        }

        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    )+};
}

string_enum! {
    /// A wallet name as `Wallet::from_name` accepts it (`domain::WALLETS`).
    WalletName as "Wallet", "A wallet (CodePay `pay_method_id`) by payfac's name.",
        Wallet::all().map(Wallet::name);
    /// An ISO 4217 code as `Currency::from_code` accepts it.
    CurrencyCode as "Currency", "An active ISO 4217 currency with minor units (upper case).",
        currency_codes().iter().copied();
    /// `mpm` or `cpm`.
    PaymentModeName as "PaymentMode",
        "`mpm`: payfac shows a QR code the customer scans; `cpm`: the merchant scans the \
         customer's wallet code (`auth_code`).",
        [PaymentMode::Mpm, PaymentMode::Cpm].map(PaymentMode::as_str);
    /// A payment status as `PaymentStatus::from_str` accepts it.
    PaymentStatusName as "PaymentStatus", "Where a payment stands.",
        PaymentStatus::ALL.map(PaymentStatus::as_str);
    /// An event type as `EventType::from_str` accepts it.
    EventTypeName as "EventType", "A webhook event type.",
        EventType::ALL.map(EventType::as_str);
    /// An event type or `*` (all), as an endpoint's filter accepts it.
    EventFilterName as "EventFilter", "An event type, or `*` for all of them.",
        std::iter::once("*").chain(EventType::ALL.map(EventType::as_str));
    /// A scope of a merchant key or token (`ALL_SCOPES`).
    ScopeName as "Scope", "A permission of a merchant key or token.",
        ALL_SCOPES.iter().copied();
    /// A refund status as `RefundStatus::from_str` accepts it.
    RefundStatusName as "RefundStatus", "Where a refund stands.",
        RefundStatus::ALL.map(RefundStatus::as_str);
    /// A terminal kind as `TerminalKind::parse` accepts it.
    TerminalKindName as "TerminalKind", "What a terminal is.",
        TerminalKind::ALL.map(TerminalKind::as_str);
}

/// Every code `Currency::from_code` accepts, sorted. ISO 4217 alphabetic codes are three
/// upper-case letters, so asking for each of the 17,576 finds exactly the accepted ones: the
/// enumeration is the validation's own answer, not a copy of its table.
pub fn currency_codes() -> &'static [&'static str] {
    static CODES: OnceLock<Vec<&'static str>> = OnceLock::new();
    CODES.get_or_init(|| {
        let letters = b'A'..=b'Z';
        let mut codes = Vec::new();
        for a in letters.clone() {
            for b in letters.clone() {
                for c in letters.clone() {
                    let code = [a, b, c];
                    if let Some(accepted) = std::str::from_utf8(&code)
                        .ok()
                        .and_then(|s| Currency::from_code(s).ok())
                    {
                        codes.push(accepted.code());
                    }
                }
            }
        }
        codes
    })
}

/// The pattern of an id with `prefix` (`pay` → `pay_` and a ULID, case-insensitive Crockford
/// base32), as the ids' `parse` accepts it.
pub fn id_pattern(prefix: &str) -> String {
    format!("^{prefix}_[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{{26}}$")
}

/// Declares a string schema matching the ids of one `domain` id type, for cursors.
macro_rules! id_schema {
    ($($(#[$doc:meta])* $ty:ident for $id:ty;)+) => {$(
        $(#[$doc])*
        pub struct $ty;

        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                Schema::Object(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some(id_pattern(<$id>::PREFIX)))
                        .build(),
                )
                .into()
            }
        }

        impl ToSchema for $ty {}
    )+};
}

id_schema! {
    /// A payment id (`pay_…`).
    PaymentIdText for domain::PaymentId;
    /// A merchant id (`mer_…`).
    MerchantIdText for domain::MerchantId;
    /// A refund id (`ref_…`).
    RefundIdText for domain::RefundId;
    /// A store id (`store_…`).
    StoreIdText for domain::StoreId;
    /// A terminal id (`term_…`).
    TerminalIdText for domain::TerminalId;
    /// A gateway account id (`gwa_…`).
    GatewayAccountIdText for domain::GatewayAccountId;
}

/// The characters `char::is_whitespace` (Unicode White_Space) takes, as the body of a regex
/// character class: what `str::trim` removes.
const WHITE_SPACE: &str =
    r"\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

/// The pattern of a text that `str::trim`s to 1 … `max` characters (`max` ≥ 2): what the
/// store and terminal checks (`check_name`, the address check) accept. A `maxLength` would
/// count the surrounding white space they ignore.
pub fn trimmed_pattern(max: usize) -> String {
    let ws = WHITE_SPACE;
    format!(
        "^[{ws}]*[^{ws}]([\\s\\S]{{0,{}}}[^{ws}])?[{ws}]*$",
        max.saturating_sub(2)
    )
}

/// A string schema of text that trims to 1 … `max` characters; `nullable` adds `null`.
fn trimmed_text(description: &str, max: usize, nullable: bool) -> Object {
    let kind = if nullable {
        SchemaType::Array(vec![Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    };
    ObjectBuilder::new()
        .schema_type(kind)
        .description(Some(description))
        .pattern(Some(trimmed_pattern(max)))
        .build()
}

/// A store's or terminal's `name`: 1 to 100 characters once trimmed (`stores::check_name`).
pub fn location_name() -> Object {
    trimmed_text(
        "Display name: 1 to 100 characters once trimmed.",
        100,
        false,
    )
}

/// A store's or terminal's new `name` (absent or `null`: unchanged).
pub fn location_name_update() -> Object {
    trimmed_text(
        "New display name: 1 to 100 characters once trimmed (`null`: unchanged).",
        100,
        true,
    )
}

/// A store's `address`: 1 to 200 characters once trimmed; `null` for none.
pub fn store_address() -> Object {
    trimmed_text(
        "Free-text address: 1 to 200 characters once trimmed (`null`: none).",
        200,
        true,
    )
}

/// The shape `locations::is_timezone_name` accepts: `UTC`, or two or three `/`-separated
/// segments each starting with an upper-case letter, then letters, digits, `_`, `-`, `+`.
pub const TIMEZONE_PATTERN: &str = r"^(UTC|[A-Z][A-Za-z0-9_+-]*(/[A-Z][A-Za-z0-9_+-]*){1,2})$";

/// The longest time zone name `locations::is_timezone_name` accepts, in bytes.
pub const TIMEZONE_MAX_LEN: usize = 64;

/// A store's `timezone`: an IANA-shaped name; `null` for none.
pub fn store_timezone() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::Array(vec![Type::String, Type::Null]))
        .description(Some(
            "IANA time zone name such as `Asia/Hong_Kong` or `UTC` (checked for its shape, not \
             looked up; informational); `null`: none.",
        ))
        .max_length(Some(TIMEZONE_MAX_LEN))
        .pattern(Some(TIMEZONE_PATTERN))
        .build()
}

/// CodePay's identifier alphabet (`merchant_no`, `store_no`, `terminal_sn`), as
/// `locations::check_codepay_identifier` checks it.
pub const CODEPAY_IDENTIFIER_PATTERN: &str = r"^[A-Za-z0-9_-]{1,32}$";

/// A webhook endpoint URL as the API accepts it, checked with this very pattern: `http(s)://`,
/// a host name (whose last label starts with a letter) or a dotted IPv4 address, an optional
/// port up to 65535, then path, query and fragment in visible ASCII. The `url` crate accepts
/// much more (any scheme case, `*` or `%41` in a host, an address as `0x7f.1`), which no client
/// needs and no schema could state.
pub const WEBHOOK_URL_PATTERN: &str = concat!(
    r"^https?://",
    r"(([A-Za-z0-9-]+\.)*[A-Za-z][A-Za-z0-9-]*",
    r"|(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])",
    r"(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3})",
    r"(:([0-5]?[0-9]{1,4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?",
    r"([/?#][\x21-\x7E]*)?$",
);

/// The longest webhook endpoint URL (`webhook_fanout`'s limit, in bytes).
pub const WEBHOOK_URL_MAX_LEN: usize = 2048;

/// Whether `url` is in the grammar of [`WEBHOOK_URL_PATTERN`] (the network rules come after).
pub fn is_webhook_url(url: &str) -> bool {
    static GRAMMAR: OnceLock<regex::Regex> = OnceLock::new();
    GRAMMAR
        .get_or_init(|| regex::Regex::new(WEBHOOK_URL_PATTERN).expect("the URL pattern compiles"))
        .is_match(url)
}

/// The `url` of a webhook endpoint.
pub struct WebhookUrl;

impl PartialSchema for WebhookUrl {
    fn schema() -> RefOr<Schema> {
        Schema::Object(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(
                    "An absolute `https://` URL of a host name or IPv4 address; `http://` and \
                     private addresses only where the deployment allows them (the embedded \
                     sandbox does).",
                ))
                .max_length(Some(WEBHOOK_URL_MAX_LEN))
                .pattern(Some(WEBHOOK_URL_PATTERN))
                .build(),
        )
        .into()
    }
}

impl ToSchema for WebhookUrl {}

/// `T`'s schema as an object (the derived schema of a request struct).
fn object_of<T: PartialSchema>() -> Object {
    match T::schema() {
        RefOr::T(Schema::Object(object)) => object,
        _ => panic!("a request body derives an object schema"),
    }
}

/// `schema` without `null` among its types or values.
fn without_null(schema: &mut RefOr<Schema>) {
    match schema {
        RefOr::T(Schema::Object(object)) => {
            if let SchemaType::Array(types) = &object.schema_type {
                let kept: Vec<Type> = types
                    .iter()
                    .filter(|t| **t != Type::Null)
                    .cloned()
                    .collect();
                object.schema_type = match kept.as_slice() {
                    [one] => SchemaType::Type(one.clone()),
                    _ => SchemaType::Array(kept),
                };
            }
            if let Some(values) = &mut object.enum_values {
                values.retain(|v| !v.is_null());
            }
        }
        RefOr::T(Schema::Array(array)) => {
            if let SchemaType::Array(types) = &array.schema_type {
                let kept: Vec<Type> = types
                    .iter()
                    .filter(|t| **t != Type::Null)
                    .cloned()
                    .collect();
                array.schema_type = match kept.as_slice() {
                    [one] => SchemaType::Type(one.clone()),
                    _ => SchemaType::Array(kept),
                };
            }
        }
        // `Option<Ref>` is `oneOf: [null, ref]`: keep the non-null items.
        RefOr::T(Schema::OneOf(one_of)) => {
            one_of.items.retain(|item| {
                !matches!(item, RefOr::T(Schema::Object(o))
                    if o.schema_type == SchemaType::Type(Type::Null))
            });
        }
        _ => {}
    }
}

/// `T`'s object schema with `fields` required and not `null`: the create whose update body
/// (the same struct) may leave them out.
fn requiring<T: PartialSchema>(fields: &[&str]) -> Object {
    let mut object = object_of::<T>();
    for field in fields {
        if let Some(schema) = object.properties.get_mut(*field) {
            without_null(schema);
        }
        if !object.required.iter().any(|r| r == field) {
            object.required.push((*field).to_owned());
        }
    }
    object
}

/// Declares a documented create body: `$base`'s derived schema with more fields required.
macro_rules! create_body {
    ($($(#[$doc:meta])* $ty:ident = $base:ty, requiring $fields:expr;)+) => {$(
        $(#[$doc])*
        pub struct $ty;

        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                Schema::Object(requiring::<$base>($fields)).into()
            }
        }

        impl ToSchema for $ty {
            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                <$base as ToSchema>::schemas(schemas);
            }
        }
    )+};
}

create_body! {
    /// `POST /v1/merchants` as documented: the merchant body with `name` required.
    CreateMerchantBody = super::merchants::MerchantRequest, requiring &["name"];
    /// `POST /v1/gateway-accounts` as documented: the account body with what a new account
    /// needs required.
    CreateGatewayAccountBody = super::gateway_accounts::GatewayAccountRequest,
        requiring &["name", "base_url", "app_id", "private_key", "gateway_public_key"];
}

/// `POST /v1/payments` as documented: [`super::payments::CreatePaymentRequest`] split by `mode`,
/// because the mode decides the other fields' rules: `mpm` takes no `auth_code` and an
/// `expires_in` within the engine's bounds; `cpm` needs the `auth_code` and ignores
/// `expires_in`.
pub struct CreatePaymentBody;

impl PartialSchema for CreatePaymentBody {
    fn schema() -> RefOr<Schema> {
        let mut base = object_of::<super::payments::CreatePaymentRequest>();
        // The struct's rustdoc speaks of its `Debug`; the body is described here.
        base.description = None;
        if let Some(RefOr::T(Schema::Object(metadata))) = base.properties.get_mut("metadata") {
            // `to_new_payment`'s limit (its 8 KB limit has no JSON Schema keyword).
            metadata.max_properties = Some(50);
        }
        let engine = ::payments::EngineConfig::default();
        let mode = |m: PaymentMode| -> RefOr<Schema> {
            Schema::Object(enumeration("The payment mode.", [m.as_str()])).into()
        };
        let mut mpm = base.clone();
        mpm.title = Some("mpm".to_owned());
        mpm.properties
            .insert("mode".to_owned(), mode(PaymentMode::Mpm));
        mpm.properties.insert(
            "auth_code".to_owned(),
            Schema::Object(
                ObjectBuilder::new()
                    .schema_type(Type::Null)
                    .description(Some("Only for `cpm`: absent or null."))
                    .build(),
            )
            .into(),
        );
        mpm.properties.insert(
            "expires_in".to_owned(),
            Schema::Object(
                ObjectBuilder::new()
                    .schema_type(SchemaType::Array(vec![Type::Integer, Type::Null]))
                    .description(Some(format!(
                        "Seconds until the QR code expires (default {} s).",
                        engine.default_mpm_expiry.as_secs()
                    )))
                    .minimum(Some(engine.min_mpm_expiry.as_secs().max(1)))
                    .maximum(Some(engine.max_mpm_expiry.as_secs()))
                    .build(),
            )
            .into(),
        );
        let mut cpm = base.clone();
        cpm.title = Some("cpm".to_owned());
        cpm.properties
            .insert("mode".to_owned(), mode(PaymentMode::Cpm));
        cpm.properties.insert(
            "auth_code".to_owned(),
            Schema::Object(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some(
                        "The customer's wallet code, as scanned (at most 64 bytes); never logged.",
                    ))
                    .min_length(Some(1))
                    .max_length(Some(64))
                    .build(),
            )
            .into(),
        );
        cpm.required.push("auth_code".to_owned());
        cpm.properties.insert(
            "expires_in".to_owned(),
            Schema::Object(
                ObjectBuilder::new()
                    .schema_type(SchemaType::Array(vec![Type::Integer, Type::Null]))
                    .description(Some("Ignored for `cpm`."))
                    .build(),
            )
            .into(),
        );
        Schema::OneOf(
            OneOfBuilder::new()
                .description(Some(
                    "A payment to create; `mode` decides which of `auth_code` and \
                     `expires_in` apply.",
                ))
                .item(Schema::Object(mpm))
                .item(Schema::Object(cpm))
                .build(),
        )
        .into()
    }
}

impl ToSchema for CreatePaymentBody {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        <super::payments::CreatePaymentRequest as ToSchema>::schemas(schemas);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_webhook_url_grammar_takes_host_names_and_ipv4_addresses_only() {
        for url in [
            "https://hooks.example/hook",
            "http://127.0.0.1:9/hook",
            "https://a",
            "https://A-1.b-2-:65535/x/%zz?y=1#z",
            "http://255.255.255.255:0",
            "https://1.a/",
            "https://xn--bcher-kva.example/",
        ] {
            assert!(is_webhook_url(url), "{url}");
        }
        for url in [
            "ftp://x.example/",
            "HTTPS://a.example",
            "https:a.example",
            "https://a*b.example",
            "https://a..b",
            "https://a.1",
            "https://1.2.3",
            "https://256.1.1.1",
            "https://01.2.3.4",
            "https://a:65536",
            "https://a:",
            "https://[::1]/",
            "https://user@a.example",
            " https://a.example",
            "https://a.example/ b",
            "https://a.example\n",
            "https://ex%41mple.com",
        ] {
            assert!(!is_webhook_url(url), "{url:?}");
        }
    }

    #[test]
    fn the_currency_enumeration_is_what_currency_accepts() {
        let codes = currency_codes();
        assert!(codes.len() > 100, "{}", codes.len());
        for code in ["USD", "JPY", "KWD", "EUR", "MMK"] {
            assert!(codes.contains(&code), "{code}");
        }
        assert!(!codes.contains(&"XAU"), "no minor units, no payments");
        assert!(codes.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
    }
}
