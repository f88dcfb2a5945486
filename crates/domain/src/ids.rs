//! Prefixed, time-sortable identifiers.
//!
//! Every id is `<prefix>_<ULID>`: the prefix says what it names (so a refund id pasted where a
//! payment id belongs is refused at parse time), and the ULID sorts by creation time, which makes
//! cursor pagination by id equal to pagination by creation order.

use crate::DomainError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The prefix (without `_`) every id of this kind carries.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id, sortable by creation time.
            pub fn generate() -> Self {
                Self(format!("{}_{}", $prefix, ulid::Ulid::new()))
            }

            /// Parses an id, checking its prefix and ULID body.
            pub fn parse(value: &str) -> Result<Self, DomainError> {
                let ok = value
                    .strip_prefix(concat!($prefix, "_"))
                    .is_some_and(|body| ulid::Ulid::from_string(body).is_ok());
                if ok {
                    Ok(Self(value.to_owned()))
                } else {
                    Err(DomainError::InvalidId { value: value.to_owned(), prefix: $prefix })
                }
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

prefixed_id!(
    /// A sub-merchant.
    MerchantId, "mer"
);
prefixed_id!(
    /// A payment (one MPM order or one CPM submission).
    PaymentId, "pay"
);
prefixed_id!(
    /// A refund of a payment.
    RefundId, "ref"
);
prefixed_id!(
    /// An event in the outbox.
    EventId, "evt"
);
prefixed_id!(
    /// A merchant's webhook endpoint.
    WebhookEndpointId, "we"
);
prefixed_id!(
    /// An API key (operator or merchant); not the secret itself.
    ApiKeyId, "key"
);
prefixed_id!(
    /// An upstream CodePay gateway account.
    GatewayAccountId, "gwa"
);
prefixed_id!(
    /// A merchant's store (one CodePay `store_no`).
    StoreId, "store"
);
prefixed_id!(
    /// A store's terminal (one CodePay `terminal_sn`).
    TerminalId, "term"
);
prefixed_id!(
    /// One webhook delivery (event × endpoint).
    DeliveryId, "dlv"
);
prefixed_id!(
    /// One attempt of a delivery.
    AttemptId, "att"
);
prefixed_id!(
    /// A durable background job.
    JobId, "job"
);
prefixed_id!(
    /// A notification received from CodePay.
    NotificationId, "ntf"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back_and_carry_their_prefix() {
        let id = PaymentId::generate();
        assert!(id.as_str().starts_with("pay_"));
        assert_eq!(PaymentId::parse(id.as_str()), Ok(id));
    }

    #[test]
    fn an_id_of_another_kind_is_refused() {
        let refund = RefundId::generate();
        assert!(PaymentId::parse(refund.as_str()).is_err());
        assert!(PaymentId::parse("pay_").is_err());
        assert!(PaymentId::parse("pay_not-a-ulid").is_err());
    }

    #[test]
    fn ids_sort_by_creation_time() {
        let a = EventId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = EventId::generate();
        assert!(a < b);
    }
}
