//! Payments this process saw paid, by CodePay order number, so a repeated success notification
//! is answered without reading the payment again: CodePay notifies every CPM payment it has
//! already answered paid, and redelivers notifications.
//!
//! A success is final (a paid payment never changes status again), so a remembered one can
//! only go stale by being forgotten. Bounded: the oldest entries go first; a payment not
//! remembered is simply read, as before.

use domain::{GatewayAccountId, Money, PaymentId};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};

/// Entries kept: notifications follow a success within seconds, so a few thousand cover every
/// payment still being notified at several hundred payments per second.
const CAPACITY: usize = 16_384;

/// A paid payment as the notification shortcut needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Paid {
    pub id: PaymentId,
    pub merchant_no: String,
    pub account: Option<GatewayAccountId>,
    pub amount: Money,
    pub has_trans_no: bool,
}

#[derive(Default)]
struct Inner {
    by_order_no: HashMap<String, Paid>,
    oldest_first: VecDeque<String>,
}

/// Recently paid payments by `merchant_order_no` (payfac's own, unique upstream order number).
#[derive(Default)]
pub(crate) struct PaidPayments(Mutex<Inner>);

impl PaidPayments {
    /// Remembers a paid payment.
    pub fn remember(&self, order_no: &str, paid: Paid) {
        let mut inner = self.0.lock();
        if inner
            .by_order_no
            .insert(order_no.to_owned(), paid)
            .is_none()
        {
            inner.oldest_first.push_back(order_no.to_owned());
        }
        while inner.oldest_first.len() > CAPACITY {
            if let Some(old) = inner.oldest_first.pop_front() {
                inner.by_order_no.remove(&old);
            }
        }
    }

    /// The paid payment of `order_no`, if remembered.
    pub fn get(&self, order_no: &str) -> Option<Paid> {
        self.0.lock().by_order_no.get(order_no).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::Currency;

    fn paid(n: i64) -> Paid {
        Paid {
            id: PaymentId::generate(),
            merchant_no: "m".to_owned(),
            account: None,
            amount: Money::new(n, Currency::from_code("USD").unwrap()).unwrap(),
            has_trans_no: true,
        }
    }

    #[test]
    fn keeps_the_newest_entries_up_to_its_capacity() {
        let cache = PaidPayments::default();
        for i in 0..(CAPACITY + 10) {
            cache.remember(&format!("P{i}"), paid(1 + i as i64));
        }
        assert!(cache.get("P0").is_none());
        assert!(cache.get("P9").is_none());
        assert_eq!(
            cache
                .get(&format!("P{}", CAPACITY + 9))
                .map(|p| p.amount.minor()),
            Some(CAPACITY as i64 + 10)
        );
        assert_eq!(cache.0.lock().by_order_no.len(), CAPACITY);
    }
}
