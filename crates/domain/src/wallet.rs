//! Wallets (CodePay `pay_method_id`) as data, not code.

use crate::DomainError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// payfac's wallet name and CodePay's case-sensitive `pay_method_id`, side by side.
/// Add a wallet by adding a row.
pub const WALLETS: &[(&str, &str)] = &[
    ("alipay", "Alipay"),
    ("alipay_plus", "Alipay+"),
    ("wechat_pay", "WeChatPay"),
    ("unionpay", "UnionPay"),
    ("paypay", "PayPay"),
    ("kbzpay", "KBZPay"),
];

/// A wallet payfac can route to.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Wallet {
    index: usize,
}

impl Wallet {
    /// From payfac's name (`alipay`, `wechat_pay`, …).
    pub fn from_name(name: &str) -> Result<Self, DomainError> {
        WALLETS
            .iter()
            .position(|(n, _)| *n == name)
            .map(|index| Wallet { index })
            .ok_or_else(|| DomainError::UnknownValue {
                kind: "wallet",
                value: name.to_owned(),
            })
    }

    /// From CodePay's `pay_method_id` (`Alipay`, `WeChatPay`, …).
    pub fn from_pay_method_id(id: &str) -> Result<Self, DomainError> {
        WALLETS
            .iter()
            .position(|(_, m)| *m == id)
            .map(|index| Wallet { index })
            .ok_or_else(|| DomainError::UnknownValue {
                kind: "pay_method_id",
                value: id.to_owned(),
            })
    }

    /// payfac's name.
    pub fn name(self) -> &'static str {
        WALLETS[self.index].0
    }

    /// CodePay's `pay_method_id`.
    pub fn pay_method_id(self) -> &'static str {
        WALLETS[self.index].1
    }

    /// Every known wallet.
    pub fn all() -> impl Iterator<Item = Wallet> {
        (0..WALLETS.len()).map(|index| Wallet { index })
    }
}

impl fmt::Debug for Wallet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Wallet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Wallet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Wallet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Wallet::from_name(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_method_ids_map_both_ways() {
        for w in Wallet::all() {
            assert_eq!(Wallet::from_name(w.name()), Ok(w));
            assert_eq!(Wallet::from_pay_method_id(w.pay_method_id()), Ok(w));
        }
        assert!(
            Wallet::from_pay_method_id("alipay").is_err(),
            "pay_method_id is case-sensitive"
        );
    }
}
