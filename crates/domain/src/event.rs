//! Event types written to the outbox and delivered as webhooks.

use crate::DomainError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Every event type payfac emits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// A payment is waiting for the customer (CPM PIN entry, unknown outcome being settled).
    #[serde(rename = "payment.processing")]
    PaymentProcessing,
    /// A payment captured money.
    #[serde(rename = "payment.succeeded")]
    PaymentSucceeded,
    /// A payment was declined.
    #[serde(rename = "payment.failed")]
    PaymentFailed,
    /// A payment was closed unpaid, expired or reversed.
    #[serde(rename = "payment.canceled")]
    PaymentCanceled,
    /// A refund returned the money.
    #[serde(rename = "refund.succeeded")]
    RefundSucceeded,
    /// A refund failed.
    #[serde(rename = "refund.failed")]
    RefundFailed,
    /// One of the merchant's webhook endpoints was disabled.
    #[serde(rename = "endpoint.disabled")]
    EndpointDisabled,
    /// A daily settlement statement of the merchant was closed.
    #[serde(rename = "settlement.created")]
    SettlementCreated,
}

impl EventType {
    /// All types.
    pub const ALL: [EventType; 8] = [
        EventType::PaymentProcessing,
        EventType::PaymentSucceeded,
        EventType::PaymentFailed,
        EventType::PaymentCanceled,
        EventType::RefundSucceeded,
        EventType::RefundFailed,
        EventType::EndpointDisabled,
        EventType::SettlementCreated,
    ];

    /// The wire name (`payment.succeeded`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::PaymentProcessing => "payment.processing",
            EventType::PaymentSucceeded => "payment.succeeded",
            EventType::PaymentFailed => "payment.failed",
            EventType::PaymentCanceled => "payment.canceled",
            EventType::RefundSucceeded => "refund.succeeded",
            EventType::RefundFailed => "refund.failed",
            EventType::EndpointDisabled => "endpoint.disabled",
            EventType::SettlementCreated => "settlement.created",
        }
    }

    /// The event a payment entering `status` causes, if any (`pending` announces nothing).
    pub fn for_payment(status: crate::PaymentStatus) -> Option<EventType> {
        use crate::PaymentStatus::*;
        match status {
            Pending => None,
            Processing => Some(EventType::PaymentProcessing),
            Succeeded => Some(EventType::PaymentSucceeded),
            Failed => Some(EventType::PaymentFailed),
            Canceled => Some(EventType::PaymentCanceled),
        }
    }

    /// The event a refund entering `status` causes, if any.
    pub fn for_refund(status: crate::RefundStatus) -> Option<EventType> {
        use crate::RefundStatus::*;
        match status {
            Pending => None,
            Succeeded => Some(EventType::RefundSucceeded),
            Failed => Some(EventType::RefundFailed),
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| DomainError::UnknownValue {
                kind: "event type",
                value: s.to_owned(),
            })
    }
}
