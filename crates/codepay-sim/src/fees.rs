//! CodePay's fee on a payment (`trans_fee_c`): each merchant has a rate in basis points, and a
//! paid sale's fee is fixed when it is paid. Integer arithmetic only.

use crate::config::MAX_FEE_BPS;
use crate::error::SimError;
use crate::sim::Simulator;
use domain::Money;

/// The fee on `amount` at `fee_bps`: amount × fee_bps / 10 000, rounded half up to the
/// currency's minor unit (the amount is already in minor units, so the rounding is to a whole
/// number of them).
pub(crate) fn fee(amount: Money, fee_bps: u32) -> Money {
    let scaled = i128::from(amount.minor()) * i128::from(fee_bps.min(MAX_FEE_BPS));
    // Amounts are never negative, so adding half the divisor rounds half up.
    let minor = (scaled + 5_000) / 10_000;
    // At most the amount itself (the rate is capped at 100 %), so it fits.
    let minor = i64::try_from(minor).unwrap_or(amount.minor());
    Money::new(minor, amount.currency()).unwrap_or_else(|_| Money::zero(amount.currency()))
}

/// A rate the gateway accepts.
pub(crate) fn check_fee_bps(fee_bps: u32) -> Result<(), SimError> {
    if fee_bps <= MAX_FEE_BPS {
        Ok(())
    } else {
        Err(SimError::Invalid(format!(
            "fee_bps must be 0 to {MAX_FEE_BPS} basis points, got {fee_bps}"
        )))
    }
}

impl Simulator {
    /// Sets a registered merchant's fee rate (basis points, 0..=10 000) for payments paid from
    /// now on; sales already paid keep their fee. [`SimError::UnknownMerchant`] for an unknown
    /// merchant, [`SimError::Invalid`] for a rate above 100 %.
    pub fn set_fee_bps(&self, merchant_no: &str, fee_bps: u32) -> Result<(), SimError> {
        check_fee_bps(fee_bps)?;
        {
            let mut st = self.inner.state.lock();
            let m = st
                .merchants
                .get_mut(merchant_no)
                .ok_or_else(|| SimError::UnknownMerchant(merchant_no.to_owned()))?;
            m.fee_bps = Some(fee_bps);
        }
        self.save_now()
    }

    /// A registered merchant's fee rate, basis points.
    pub fn fee_bps(&self, merchant_no: &str) -> Option<u32> {
        let st = self.inner.state.lock();
        st.merchants
            .get(merchant_no)
            .map(|m| m.fee_bps.unwrap_or(self.inner.cfg.default_fee_bps))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::Currency;

    fn money(minor: i64, code: &str) -> Money {
        Money::new(minor, Currency::from_code(code).expect("currency")).expect("amount")
    }

    #[test]
    fn fees_round_half_up_to_the_minor_unit() {
        // 1.00 USD at 0.60 % is 0.006: a whole cent.
        assert_eq!(fee(money(100, "USD"), 60), money(1, "USD"));
        // 0.83 USD → 0.00498 → 0.00; 0.84 → 0.00504 → 0.01 (half a cent and up).
        assert_eq!(fee(money(83, "USD"), 60).minor(), 0);
        assert_eq!(fee(money(84, "USD"), 60).minor(), 1);
        assert_eq!(fee(money(12_345, "USD"), 60).minor(), 74); // 74.07 cents
        // JPY has no minor unit: 250 × 0.6 % = 1.5 → 2, 249 → 1.494 → 1.
        assert_eq!(fee(money(250, "JPY"), 60), money(2, "JPY"));
        assert_eq!(fee(money(249, "JPY"), 60).minor(), 1);
        // KWD has three decimals: 1.000 KWD at 0.60 % = 0.006 exactly.
        assert_eq!(fee(money(1_000, "KWD"), 60).minor(), 6);
        assert_eq!(fee(money(100, "USD"), 0).minor(), 0);
        assert_eq!(fee(money(100, "USD"), 10_000).minor(), 100);
        assert_eq!(fee(money(i64::MAX, "USD"), 10_000).minor(), i64::MAX);
    }

    #[test]
    fn rates_above_the_whole_amount_are_refused() {
        assert!(check_fee_bps(0).is_ok());
        assert!(check_fee_bps(MAX_FEE_BPS).is_ok());
        assert!(check_fee_bps(MAX_FEE_BPS + 1).is_err());
    }
}
