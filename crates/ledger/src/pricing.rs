//! Pricing: what the platform charges a merchant per payment, and what it gives back on a refund.
//!
//! A [`PriceList`] is a versioned set of [`Rate`]s; the list in force for a payment is the newest
//! one effective at the payment's creation ([`pick_version`]), so a price change applies to
//! payments created after it and never re-prices an older one. Within a list the most specific
//! rate wins ([`PriceList::rate_for`]). All arithmetic is on integer minor units with `i128`
//! intermediates; rounding is half up to the minor unit.

use crate::LedgerError;
use chrono::{DateTime, Utc};
use domain::{Currency, Money, Wallet};
use serde::{Deserialize, Serialize};

/// Basis points in 100 %.
pub const BPS_PER_UNIT: u32 = 10_000;

/// One rate: a percentage of the amount plus a fixed amount, for payments matching its wallet
/// and currency (`None` matches any).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    /// The wallet this rate is for; `None`: every wallet.
    pub wallet: Option<Wallet>,
    /// The currency this rate is for; `None`: every currency.
    pub currency: Option<Currency>,
    /// Percentage of the amount in basis points (290 = 2.9 %), `0..=10_000`.
    pub percent_bps: u32,
    /// Fixed part in minor units of `currency`, `>= 0`.
    pub fixed: i64,
}

impl Rate {
    /// Checks the rate's fields on their own (no price-list context).
    ///
    /// A non-zero `fixed` needs a `currency`: minor units mean nothing without one (30 is
    /// 0.30 USD but 30 JPY), so a currency-less rate may only be a percentage.
    pub fn check(&self) -> Result<(), LedgerError> {
        self.check_at(None)
    }

    fn check_at(&self, index: Option<usize>) -> Result<(), LedgerError> {
        let invalid = |field, reason| LedgerError::InvalidRate {
            index,
            field,
            reason,
        };
        if self.percent_bps > BPS_PER_UNIT {
            return Err(invalid("percent_bps", "must be at most 10000 (100 %)"));
        }
        if self.fixed < 0 {
            return Err(invalid("fixed", "must not be negative"));
        }
        if self.fixed > 0 && self.currency.is_none() {
            return Err(invalid(
                "currency",
                "a fixed amount needs a currency: minor units mean nothing without one",
            ));
        }
        Ok(())
    }

    /// How specific the rate is: wallet+currency 3, currency only 2, wallet only 1, neither 0.
    /// A currency outranks a wallet because a currency-specific rate is the only kind that can
    /// carry a fixed amount, which a wallet-only rate would silently drop.
    fn specificity(&self) -> u8 {
        match (self.wallet.is_some(), self.currency.is_some()) {
            (true, true) => 3,
            (false, true) => 2,
            (true, false) => 1,
            (false, false) => 0,
        }
    }

    fn matches(&self, wallet: Wallet, currency: Currency) -> bool {
        self.wallet.is_none_or(|w| w == wallet) && self.currency.is_none_or(|c| c == currency)
    }
}

/// A versioned set of rates, in force from `effective_at`. Only valid lists can be built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PriceListFields")]
pub struct PriceList {
    version: i64,
    effective_at: DateTime<Utc>,
    rates: Vec<Rate>,
}

/// The unchecked shape a price list is read from; turned into a [`PriceList`] by its checks.
#[derive(Deserialize)]
struct PriceListFields {
    version: i64,
    effective_at: DateTime<Utc>,
    rates: Vec<Rate>,
}

impl TryFrom<PriceListFields> for PriceList {
    type Error = LedgerError;
    fn try_from(f: PriceListFields) -> Result<Self, Self::Error> {
        PriceList::new(f.version, f.effective_at, f.rates)
    }
}

impl PriceList {
    /// Builds a price list, checking every rate (errors name its index) and refusing two rates
    /// for the same wallet and currency pair (which one applied would be ambiguous).
    pub fn new(
        version: i64,
        effective_at: DateTime<Utc>,
        rates: Vec<Rate>,
    ) -> Result<Self, LedgerError> {
        for (index, rate) in rates.iter().enumerate() {
            rate.check_at(Some(index))?;
            if let Some(first) = rates[..index]
                .iter()
                .position(|r| r.wallet == rate.wallet && r.currency == rate.currency)
            {
                return Err(LedgerError::DuplicateRate { index, first });
            }
        }
        Ok(Self {
            version,
            effective_at,
            rates,
        })
    }

    /// The list's version (recorded with each payment priced by it).
    pub fn version(&self) -> i64 {
        self.version
    }

    /// From when the list applies (to payments created at or after it).
    pub fn effective_at(&self) -> DateTime<Utc> {
        self.effective_at
    }

    /// The rates, in the order given.
    pub fn rates(&self) -> &[Rate] {
        &self.rates
    }

    /// The rate for a payment in `wallet` and `currency`: the most specific matching rate
    /// (wallet+currency, then currency only, then wallet only, then the catch-all); `None` when
    /// nothing matches.
    pub fn rate_for(&self, wallet: Wallet, currency: Currency) -> Option<&Rate> {
        self.rates
            .iter()
            .filter(|r| r.matches(wallet, currency))
            .max_by_key(|r| r.specificity())
    }

    /// The fee for a payment of `amount` in `wallet`: [`fee_for`] with [`PriceList::rate_for`];
    /// `None` when no rate matches.
    pub fn fee(&self, wallet: Wallet, amount: Money) -> Result<Option<Fee>, LedgerError> {
        self.rate_for(wallet, amount.currency())
            .map(|rate| fee_for(rate, amount))
            .transpose()
    }
}

/// The price list in force for a payment created at `created_at`: the one with the latest
/// `effective_at` not after it (ties: the higher version). `None` before the first list.
pub fn pick_version(lists: &[PriceList], created_at: DateTime<Utc>) -> Option<&PriceList> {
    lists
        .iter()
        .filter(|l| l.effective_at <= created_at)
        .max_by_key(|l| (l.effective_at, l.version))
}

/// A fee split into its percentage and fixed parts (all in the payment's currency).
///
/// The split is kept because a refund gives back a share of the percentage part only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fee {
    percent_part: Money,
    fixed_part: Money,
    total: Money,
}

impl Fee {
    /// A fee from its parts (e.g. as stored with the payment); the total is their checked sum.
    pub fn new(percent_part: Money, fixed_part: Money) -> Result<Self, LedgerError> {
        same_currency(percent_part.currency(), fixed_part.currency())?;
        let total = percent_part
            .checked_add(fixed_part)
            .map_err(|_| LedgerError::Overflow)?;
        Ok(Self {
            percent_part,
            fixed_part,
            total,
        })
    }

    /// No fee, in `currency`.
    pub fn zero(currency: Currency) -> Self {
        let zero = Money::zero(currency);
        Self {
            percent_part: zero,
            fixed_part: zero,
            total: zero,
        }
    }

    /// The percentage part (rounded half up to the minor unit).
    pub fn percent_part(&self) -> Money {
        self.percent_part
    }

    /// The fixed part.
    pub fn fixed_part(&self) -> Money {
        self.fixed_part
    }

    /// Percentage plus fixed part: what the merchant is charged.
    pub fn total(&self) -> Money {
        self.total
    }

    /// The fee's currency.
    pub fn currency(&self) -> Currency {
        self.total.currency()
    }
}

/// The fee `rate` charges on `amount`: `amount × percent_bps / 10 000` rounded half up to the
/// minor unit, plus the rate's fixed part.
///
/// A rate bound to another currency than the amount's is refused (it was never meant for this
/// payment). The fixed part applies only through a rate bound to the amount's currency, as a
/// currency-less rate has no fixed part (see [`Rate::check`]). The fee is not capped at the
/// amount: a fixed part can exceed a very small payment, leaving its net negative.
pub fn fee_for(rate: &Rate, amount: Money) -> Result<Fee, LedgerError> {
    rate.check()?;
    let currency = amount.currency();
    if let Some(rate_currency) = rate.currency {
        same_currency(currency, rate_currency)?;
    }
    let percent = round_half_up_div(
        i128::from(amount.minor()) * i128::from(rate.percent_bps),
        i128::from(BPS_PER_UNIT),
    )?;
    let fixed = if rate.currency == Some(currency) {
        rate.fixed
    } else {
        0
    };
    Fee::new(Money::new(percent, currency)?, Money::new(fixed, currency)?)
}

/// The fee given back for a single refund of `refund_amount` on a payment of `payment_amount`
/// that had no earlier refunds: [`fee_return_for_cumulative`] with nothing refunded before.
pub fn fee_return_for(
    fee: &Fee,
    payment_amount: Money,
    refund_amount: Money,
) -> Result<Money, LedgerError> {
    fee_return_for_cumulative(
        fee,
        payment_amount,
        Money::zero(payment_amount.currency()),
        refund_amount,
    )
}

/// The fee given back for a refund of `refund_amount` after `refunded_before` was already
/// refunded on the same payment.
///
/// The percentage part is returned pro rata, the fixed part is kept. The share is computed for
/// the *cumulative* refunded amount (`percent_part × refunded / payment`, half up) and this
/// refund gets the difference between the share after it and the share before it. Rounding
/// each refund on its own would drift: three refunds of 1/3 each, each rounded up, could give
/// back more than the percentage part. The cumulative shares telescope instead, so the returns
/// of all refunds add up to exactly the share of the total refunded, never more than the
/// percentage part, and exactly the percentage part once the payment is refunded in full.
pub fn fee_return_for_cumulative(
    fee: &Fee,
    payment_amount: Money,
    refunded_before: Money,
    refund_amount: Money,
) -> Result<Money, LedgerError> {
    let currency = fee.currency();
    for amount in [payment_amount, refunded_before, refund_amount] {
        same_currency(currency, amount.currency())?;
    }
    if payment_amount.is_zero() {
        return Err(LedgerError::InvalidAmount {
            field: "payment_amount",
            reason: "must be positive to share a fee",
        });
    }
    let payment = i128::from(payment_amount.minor());
    let before = i128::from(refunded_before.minor());
    let after = before + i128::from(refund_amount.minor());
    if after > payment {
        return Err(LedgerError::RefundExceedsPayment {
            payment: payment_amount.minor(),
            refunded: after,
        });
    }
    let percent = i128::from(fee.percent_part.minor());
    let share = |refunded: i128| -> Result<i64, LedgerError> {
        let numerator = percent.checked_mul(refunded).ok_or(LedgerError::Overflow)?;
        round_half_up_div(numerator, payment)
    };
    // The share is monotonic in the refunded amount, so the difference is never negative.
    let returned = share(after)? - share(before)?;
    Ok(Money::new(returned, currency)?)
}

/// `numerator / denominator` rounded half up, for a non-negative numerator and a positive
/// denominator; the result must fit `i64` minor units.
fn round_half_up_div(numerator: i128, denominator: i128) -> Result<i64, LedgerError> {
    let doubled = numerator.checked_mul(2).ok_or(LedgerError::Overflow)?;
    let rounded = doubled
        .checked_add(denominator)
        .ok_or(LedgerError::Overflow)?
        / (2 * denominator);
    i64::try_from(rounded).map_err(|_| LedgerError::Overflow)
}

fn same_currency(expected: Currency, found: Currency) -> Result<(), LedgerError> {
    if expected == found {
        Ok(())
    } else {
        Err(LedgerError::CurrencyMismatch { expected, found })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn cur(code: &str) -> Currency {
        Currency::from_code(code).expect("known currency")
    }
    fn usd(minor: i64) -> Money {
        Money::new(minor, cur("USD")).expect("non-negative")
    }
    fn wallet(name: &str) -> Wallet {
        Wallet::from_name(name).expect("known wallet")
    }
    fn rate(w: Option<&str>, c: Option<&str>, percent_bps: u32, fixed: i64) -> Rate {
        Rate {
            wallet: w.map(wallet),
            currency: c.map(cur),
            percent_bps,
            fixed,
        }
    }
    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, day, 0, 0, 0).unwrap()
    }

    #[test]
    fn invalid_rates_are_refused_with_their_index_and_field() {
        let bad = |rates: Vec<Rate>| PriceList::new(1, at(1), rates).unwrap_err();
        assert_eq!(
            bad(vec![
                rate(None, None, 0, 0),
                rate(None, Some("USD"), 10_001, 0)
            ]),
            LedgerError::InvalidRate {
                index: Some(1),
                field: "percent_bps",
                reason: "must be at most 10000 (100 %)"
            }
        );
        assert!(matches!(
            bad(vec![rate(None, Some("USD"), 0, -1)]),
            LedgerError::InvalidRate {
                index: Some(0),
                field: "fixed",
                ..
            }
        ));
        assert!(matches!(
            bad(vec![rate(Some("alipay"), None, 100, 30)]),
            LedgerError::InvalidRate {
                index: Some(0),
                field: "currency",
                ..
            }
        ));
        assert_eq!(
            bad(vec![
                rate(Some("alipay"), Some("USD"), 100, 0),
                rate(None, None, 0, 0),
                rate(Some("alipay"), Some("USD"), 200, 0),
            ]),
            LedgerError::DuplicateRate { index: 2, first: 0 }
        );
        assert!(
            PriceList::new(1, at(1), vec![rate(None, None, 10_000, 0)]).is_ok(),
            "100 % is the upper bound, not past it"
        );
    }

    #[test]
    fn deserializing_runs_the_same_checks() {
        let ok = r#"{"version":2,"effective_at":"2025-03-01T00:00:00Z",
            "rates":[{"wallet":"alipay","currency":"USD","percent_bps":290,"fixed":30}]}"#;
        let list: PriceList = serde_json::from_str(ok).expect("valid list");
        assert_eq!(list.version(), 2);
        assert_eq!(list.rates(), &[rate(Some("alipay"), Some("USD"), 290, 30)]);

        let fixed_without_currency = r#"{"version":2,"effective_at":"2025-03-01T00:00:00Z",
            "rates":[{"wallet":null,"currency":null,"percent_bps":0,"fixed":30}]}"#;
        let err = serde_json::from_str::<PriceList>(fixed_without_currency).unwrap_err();
        assert!(err.to_string().contains("rates[0].currency"), "{err}");
    }

    #[test]
    fn the_most_specific_rate_wins() {
        let list = PriceList::new(
            1,
            at(1),
            vec![
                rate(None, None, 100, 0),
                rate(Some("alipay"), None, 200, 0),
                rate(None, Some("USD"), 300, 0),
                rate(Some("alipay"), Some("USD"), 400, 0),
            ],
        )
        .unwrap();
        let bps = |w: &str, c: &str| list.rate_for(wallet(w), cur(c)).map(|r| r.percent_bps);
        assert_eq!(bps("alipay", "USD"), Some(400));
        assert_eq!(bps("wechat_pay", "USD"), Some(300));
        assert_eq!(bps("alipay", "JPY"), Some(200));
        assert_eq!(bps("wechat_pay", "JPY"), Some(100));

        let narrow = PriceList::new(1, at(1), vec![rate(None, Some("USD"), 300, 0)]).unwrap();
        assert_eq!(narrow.rate_for(wallet("alipay"), cur("JPY")), None);
    }

    #[test]
    fn the_list_in_force_is_the_newest_effective_at_creation() {
        let list = |version, day| PriceList::new(version, at(day), vec![]).unwrap();
        let lists = vec![list(1, 1), list(3, 20), list(2, 10)];
        let version = |day| pick_version(&lists, at(day)).map(PriceList::version);
        assert_eq!(
            pick_version(&lists, at(1) - chrono::Duration::seconds(1)),
            None
        );
        assert_eq!(version(1), Some(1), "effective_at itself is included");
        assert_eq!(version(9), Some(1));
        assert_eq!(version(10), Some(2));
        assert_eq!(version(25), Some(3));
    }

    #[test]
    fn fee_is_percent_rounded_half_up_plus_fixed() {
        let r = rate(None, Some("USD"), 290, 30);
        let fee = fee_for(&r, usd(1000)).unwrap();
        assert_eq!(fee.percent_part(), usd(29));
        assert_eq!(fee.fixed_part(), usd(30));
        assert_eq!(fee.total(), usd(59));
        // 2.9 % of 0.50 is 1.45 cents: half up.
        let p = |minor| fee_for(&r, usd(minor)).unwrap().percent_part().minor();
        assert_eq!(p(50), 1);
        assert_eq!(p(1550), 45, "44.95 rounds up");
        assert_eq!(p(1517), 44, "43.993 rounds down");
        // 1 bps of 50 is exactly 0.5: half goes up.
        let one_bps = rate(None, None, 1, 0);
        assert_eq!(
            fee_for(&one_bps, usd(5_000))
                .unwrap()
                .percent_part()
                .minor(),
            1
        );
        assert_eq!(
            fee_for(&one_bps, usd(4_999))
                .unwrap()
                .percent_part()
                .minor(),
            0
        );
        // Large amounts use i128 intermediates.
        let all = rate(None, None, 10_000, 0);
        assert_eq!(
            fee_for(&all, usd(i64::MAX)).unwrap().total().minor(),
            i64::MAX
        );
        assert_eq!(
            fee_for(&rate(None, Some("USD"), 10_000, 1), usd(i64::MAX)).unwrap_err(),
            LedgerError::Overflow,
            "the fixed part on top overflows"
        );
    }

    #[test]
    fn a_rate_for_another_currency_is_refused() {
        let r = rate(None, Some("JPY"), 290, 30);
        assert_eq!(
            fee_for(&r, usd(1000)).unwrap_err(),
            LedgerError::CurrencyMismatch {
                expected: cur("USD"),
                found: cur("JPY")
            }
        );
        let unchecked = rate(None, None, 20_000, 0);
        assert!(matches!(
            fee_for(&unchecked, usd(1)),
            Err(LedgerError::InvalidRate { index: None, .. })
        ));
    }

    #[test]
    fn price_list_fee_uses_the_matching_rate() {
        let list = PriceList::new(1, at(1), vec![rate(None, Some("USD"), 290, 30)]).unwrap();
        assert_eq!(
            list.fee(wallet("alipay"), usd(1000))
                .unwrap()
                .map(|f| f.total()),
            Some(usd(59))
        );
        let jpy = Money::new(1000, cur("JPY")).unwrap();
        assert_eq!(list.fee(wallet("alipay"), jpy), Ok(None));
    }

    #[test]
    fn fee_return_is_pro_rata_on_the_percent_part_and_keeps_the_fixed_part() {
        let fee = fee_for(&rate(None, Some("USD"), 290, 30), usd(1000)).unwrap();
        // 29 × 400 / 1000 = 11.6 → 12.
        assert_eq!(fee_return_for(&fee, usd(1000), usd(400)), Ok(usd(12)));
        assert_eq!(
            fee_return_for(&fee, usd(1000), usd(1000)),
            Ok(usd(29)),
            "fixed part kept"
        );
        assert!(matches!(
            fee_return_for(&fee, usd(1000), usd(1001)),
            Err(LedgerError::RefundExceedsPayment {
                payment: 1000,
                refunded: 1001
            })
        ));
        assert!(matches!(
            fee_return_for(&fee, usd(0), usd(0)),
            Err(LedgerError::InvalidAmount {
                field: "payment_amount",
                ..
            })
        ));
    }

    #[test]
    fn cumulative_fee_returns_never_exceed_the_percent_part() {
        // percent part 1 on a payment of 3: each third alone would round 0.33 → 0 and two
        // thirds 0.67 → 1; per-refund rounding of 0.5-shares would overpay instead.
        let fee = Fee::new(usd(1), usd(0)).unwrap();
        let mut before = usd(0);
        let mut returned = 0;
        for _ in 0..3 {
            returned += fee_return_for_cumulative(&fee, usd(3), before, usd(1))
                .unwrap()
                .minor();
            before = before.checked_add(usd(1)).unwrap();
        }
        assert_eq!(returned, 1);

        // percent part 5 on 10, refunded in ten refunds of 1: per refund 0.5 → 1 each would
        // return 10; cumulatively exactly 5.
        let fee = Fee::new(usd(5), usd(0)).unwrap();
        let returns: Vec<i64> = (0..10)
            .map(|i| {
                fee_return_for_cumulative(&fee, usd(10), usd(i), usd(1))
                    .unwrap()
                    .minor()
            })
            .collect();
        assert_eq!(returns.iter().sum::<i64>(), 5);
        assert_eq!(
            fee_return_for(&fee, usd(10), usd(1)),
            Ok(usd(1)),
            "alone it would round up"
        );
    }

    #[test]
    fn mixed_currencies_are_refused() {
        let fee = Fee::new(usd(5), usd(0)).unwrap();
        let jpy = Money::new(10, cur("JPY")).unwrap();
        assert!(matches!(
            fee_return_for(&fee, jpy, jpy),
            Err(LedgerError::CurrencyMismatch { .. })
        ));
        assert!(matches!(
            Fee::new(usd(1), jpy),
            Err(LedgerError::CurrencyMismatch { .. })
        ));
    }
}
