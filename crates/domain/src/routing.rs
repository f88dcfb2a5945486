//! Which gateway account carries a payment: a merchant's ordered routing rules, then its own
//! account, then the platform's default.

use crate::{Currency, GatewayAccountId, Wallet};
use serde::{Deserialize, Serialize};

/// One routing rule: payments in `currency` (any when absent) with `wallet` (any when absent)
/// go through `gateway_account_id`. Rules are tried in order; the first match wins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingRule {
    /// Only payments in this currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
    /// Only payments with this wallet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet: Option<Wallet>,
    /// The account such payments go through.
    pub gateway_account_id: GatewayAccountId,
}

impl RoutingRule {
    /// True when a payment in `currency` with `wallet` falls under this rule.
    pub fn matches(&self, currency: Currency, wallet: Wallet) -> bool {
        self.currency.is_none_or(|c| c == currency) && self.wallet.is_none_or(|w| w == wallet)
    }
}

/// The account a new payment goes through: the first matching rule's, else the merchant's own
/// account, else `None` (the platform's default account).
pub fn route<'a>(
    rules: &'a [RoutingRule],
    merchant_account: Option<&'a GatewayAccountId>,
    currency: Currency,
    wallet: Wallet,
) -> Option<&'a GatewayAccountId> {
    rules
        .iter()
        .find(|r| r.matches(currency, wallet))
        .map(|r| &r.gateway_account_id)
        .or(merchant_account)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> GatewayAccountId {
        GatewayAccountId::generate()
    }

    #[test]
    fn the_first_matching_rule_wins_then_the_merchant_account_then_the_default() {
        let (eur, alipay_any, own) = (id(), id(), id());
        let usd = Currency::from_code("USD").unwrap();
        let euro = Currency::from_code("EUR").unwrap();
        let rules = vec![
            RoutingRule {
                currency: Some(euro),
                wallet: None,
                gateway_account_id: eur.clone(),
            },
            RoutingRule {
                currency: None,
                wallet: Some(Wallet::from_name("alipay").unwrap()),
                gateway_account_id: alipay_any.clone(),
            },
        ];
        assert_eq!(
            route(
                &rules,
                Some(&own),
                euro,
                Wallet::from_name("alipay").unwrap()
            ),
            Some(&eur)
        );
        assert_eq!(
            route(
                &rules,
                Some(&own),
                usd,
                Wallet::from_name("alipay").unwrap()
            ),
            Some(&alipay_any)
        );
        assert_eq!(
            route(
                &rules,
                Some(&own),
                usd,
                Wallet::from_name("wechat_pay").unwrap()
            ),
            Some(&own)
        );
        assert_eq!(
            route(&rules, None, usd, Wallet::from_name("wechat_pay").unwrap()),
            None
        );
    }
}
