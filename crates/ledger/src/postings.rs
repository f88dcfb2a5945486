//! The posting rules: which accounts each business event debits and credits.
//!
//! | event | journal kind | debit | credit |
//! |---|---|---|---|
//! | payment captured | `capture` | gateway clearing | merchant payable |
//! | platform fee | `fee` | merchant payable | platform fee revenue |
//! | refund succeeded | `refund` | merchant payable | gateway clearing |
//! | fee share given back | `fee_return` | platform fee revenue | merchant payable |
//! | CodePay's fee | `codepay_fee` | CodePay fee expense | gateway clearing |
//! | late success refunded | `late_success_refund` | clearing, then payable | payable, then clearing |
//! | capture undone | `reversal` | payable (amount), fee revenue (fee) | clearing (amount), payable (fee) |
//! | manual adjustment | `adjustment` | platform adjustments (credit to merchant) or payable (debit) | the other |
//!
//! Every function reads the currency from the [`Money`] it is given, so a journal's postings
//! are in one currency by construction; where two amounts meet, their currencies must match.
//! Fees of zero post nothing (`Ok(None)`): an empty journal records no event.

use crate::LedgerError;
use crate::journal::{Account, Journal, JournalKind, Posting, Subject};
use chrono::{DateTime, Utc};
use domain::{Currency, MerchantId, Money, PaymentId, RefundId};

/// A payment succeeded: CodePay now owes the platform the amount, and the platform owes it to
/// the merchant.
pub fn capture(
    merchant: &MerchantId,
    payment: &PaymentId,
    amount: Money,
    occurred_at: DateTime<Utc>,
) -> Result<Journal, LedgerError> {
    positive(amount, "amount")?;
    two_legs(
        JournalKind::Capture,
        Account::GatewayClearing,
        Account::MerchantPayable(merchant.clone()),
        amount,
        merchant,
        Subject::Payment(payment.clone()),
        occurred_at,
    )
}

/// The platform's fee on a captured payment, taken from what the merchant is owed.
/// `None` for a zero fee.
pub fn fee(
    merchant: &MerchantId,
    payment: &PaymentId,
    fee: Money,
    occurred_at: DateTime<Utc>,
) -> Result<Option<Journal>, LedgerError> {
    if fee.is_zero() {
        return Ok(None);
    }
    two_legs(
        JournalKind::Fee,
        Account::MerchantPayable(merchant.clone()),
        Account::PlatformFeeRevenue,
        fee,
        merchant,
        Subject::Payment(payment.clone()),
        occurred_at,
    )
    .map(Some)
}

/// A refund succeeded: the merchant owes the amount back, and CodePay owes the platform that
/// much less (it paid the customer).
pub fn refund(
    merchant: &MerchantId,
    refund: &RefundId,
    amount: Money,
    occurred_at: DateTime<Utc>,
) -> Result<Journal, LedgerError> {
    positive(amount, "amount")?;
    two_legs(
        JournalKind::Refund,
        Account::MerchantPayable(merchant.clone()),
        Account::GatewayClearing,
        amount,
        merchant,
        Subject::Refund(refund.clone()),
        occurred_at,
    )
}

/// The share of the fee given back to the merchant for a refund (see
/// [`crate::pricing::fee_return_for_cumulative`]). `None` for a zero share.
pub fn fee_return(
    merchant: &MerchantId,
    refund: &RefundId,
    amount: Money,
    occurred_at: DateTime<Utc>,
) -> Result<Option<Journal>, LedgerError> {
    if amount.is_zero() {
        return Ok(None);
    }
    two_legs(
        JournalKind::FeeReturn,
        Account::PlatformFeeRevenue,
        Account::MerchantPayable(merchant.clone()),
        amount,
        merchant,
        Subject::Refund(refund.clone()),
        occurred_at,
    )
    .map(Some)
}

/// What CodePay charged the platform for a payment, netted from what it owes the platform.
/// The merchant's balance does not move; the merchant is named for attribution. `None` for
/// a zero fee.
pub fn codepay_fee(
    merchant: &MerchantId,
    payment: &PaymentId,
    fee: Money,
    occurred_at: DateTime<Utc>,
) -> Result<Option<Journal>, LedgerError> {
    if fee.is_zero() {
        return Ok(None);
    }
    two_legs(
        JournalKind::CodePayFee,
        Account::CodePayFeeExpense,
        Account::GatewayClearing,
        fee,
        merchant,
        Subject::Payment(payment.clone()),
        occurred_at,
    )
    .map(Some)
}

/// A payment CodePay captured after payfac had closed it, refunded in full automatically.
///
/// One journal, not a capture plus a refund: the merchant was told the payment was canceled,
/// so it never becomes a capture that could be charged a fee or counted in a payout on its
/// own. Its four postings (the capture leg and the refund leg) keep the amount visible on the
/// merchant's payable and on clearing while netting both to zero. No fee is charged.
pub fn late_success_refund(
    merchant: &MerchantId,
    payment: &PaymentId,
    amount: Money,
    occurred_at: DateTime<Utc>,
) -> Result<Journal, LedgerError> {
    positive(amount, "amount")?;
    let minor = amount.minor();
    let payable = Account::MerchantPayable(merchant.clone());
    Journal::new(
        JournalKind::LateSuccessRefund,
        amount.currency(),
        vec![
            Posting::debit(Account::GatewayClearing, minor),
            Posting::credit(payable.clone(), minor),
            Posting::debit(payable, minor),
            Posting::credit(Account::GatewayClearing, minor),
        ],
        merchant.clone(),
        Subject::Payment(payment.clone()),
        occurred_at,
        None,
    )
}

/// A captured payment undone (e.g. CodePay's amount did not match): the exact opposite of its
/// capture and of its fee (`fee` is the fee's total; zero when none was charged).
///
/// The whole fee, fixed part included, goes back: unlike a refund, a reversal is not the
/// merchant's choice, and the payment ends as if it had never been captured.
pub fn reversal(
    merchant: &MerchantId,
    payment: &PaymentId,
    amount: Money,
    fee: Money,
    occurred_at: DateTime<Utc>,
) -> Result<Journal, LedgerError> {
    positive(amount, "amount")?;
    let currency = amount.currency();
    if fee.currency() != currency {
        return Err(LedgerError::CurrencyMismatch {
            expected: currency,
            found: fee.currency(),
        });
    }
    let payable = Account::MerchantPayable(merchant.clone());
    let mut postings = vec![
        Posting::debit(payable.clone(), amount.minor()),
        Posting::credit(Account::GatewayClearing, amount.minor()),
    ];
    if !fee.is_zero() {
        postings.push(Posting::debit(Account::PlatformFeeRevenue, fee.minor()));
        postings.push(Posting::credit(payable, fee.minor()));
    }
    Journal::new(
        JournalKind::Reversal,
        currency,
        postings,
        merchant.clone(),
        Subject::Payment(payment.clone()),
        occurred_at,
        None,
    )
}

/// A manual adjustment of `amount` minor units: positive credits the merchant (the platform
/// pays it), negative debits the merchant (it comes back to the platform).
///
/// `reference` identifies the adjustment (the caller's id for it); `memo` says why. Both are
/// required, and so is a non-zero amount: an adjustment nobody can explain cannot be audited.
pub fn adjustment(
    merchant: &MerchantId,
    reference: &str,
    currency: Currency,
    amount: i64,
    memo: &str,
    occurred_at: DateTime<Utc>,
) -> Result<Journal, LedgerError> {
    if reference.trim().is_empty() {
        return Err(LedgerError::EmptyText { field: "reference" });
    }
    if memo.trim().is_empty() {
        return Err(LedgerError::EmptyText { field: "memo" });
    }
    if amount == 0 {
        return Err(LedgerError::InvalidAmount {
            field: "amount",
            reason: "an adjustment must not be zero",
        });
    }
    // i64::MIN has no positive counterpart.
    let size = amount.checked_abs().ok_or(LedgerError::Overflow)?;
    let payable = Account::MerchantPayable(merchant.clone());
    let (debited, credited) = if amount > 0 {
        (Account::PlatformAdjustments, payable)
    } else {
        (payable, Account::PlatformAdjustments)
    };
    Journal::new(
        JournalKind::Adjustment,
        currency,
        vec![
            Posting::debit(debited, size),
            Posting::credit(credited, size),
        ],
        merchant.clone(),
        Subject::Adjustment(reference.to_owned()),
        occurred_at,
        Some(memo.to_owned()),
    )
}

/// One amount from `credited` to `debited`: the shape of most events.
fn two_legs(
    kind: JournalKind,
    debited: Account,
    credited: Account,
    amount: Money,
    merchant: &MerchantId,
    subject: Subject,
    occurred_at: DateTime<Utc>,
) -> Result<Journal, LedgerError> {
    Journal::new(
        kind,
        amount.currency(),
        vec![
            Posting::debit(debited, amount.minor()),
            Posting::credit(credited, amount.minor()),
        ],
        merchant.clone(),
        subject,
        occurred_at,
        None,
    )
}

fn positive(amount: Money, field: &'static str) -> Result<(), LedgerError> {
    if amount.is_zero() {
        Err(LedgerError::InvalidAmount {
            field,
            reason: "must be positive",
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Side;

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::from_code("USD").unwrap()).unwrap()
    }
    fn jpy(minor: i64) -> Money {
        Money::new(minor, Currency::from_code("JPY").unwrap()).unwrap()
    }
    const AT: DateTime<Utc> = DateTime::UNIX_EPOCH;

    /// (account kind, side, amount) of each posting, for compact assertions.
    fn legs(j: &Journal) -> Vec<(&'static str, Side, i64)> {
        j.postings()
            .iter()
            .map(|p| (p.account.kind_str(), p.side, p.amount))
            .collect()
    }

    #[test]
    fn each_event_moves_the_accounts_of_its_rule() {
        use Side::{Credit as C, Debit as D};
        let m = MerchantId::generate();
        let p = PaymentId::generate();
        let r = RefundId::generate();
        let capture = capture(&m, &p, usd(1000), AT).unwrap();
        assert_eq!(capture.kind(), JournalKind::Capture);
        assert_eq!(
            legs(&capture),
            [("gateway_clearing", D, 1000), ("merchant_payable", C, 1000)]
        );
        assert_eq!(
            legs(&fee(&m, &p, usd(59), AT).unwrap().unwrap()),
            [("merchant_payable", D, 59), ("platform_fee_revenue", C, 59)]
        );
        assert_eq!(
            legs(&refund(&m, &r, usd(400), AT).unwrap()),
            [("merchant_payable", D, 400), ("gateway_clearing", C, 400)]
        );
        assert_eq!(
            legs(&fee_return(&m, &r, usd(12), AT).unwrap().unwrap()),
            [("platform_fee_revenue", D, 12), ("merchant_payable", C, 12)]
        );
        let cp = codepay_fee(&m, &p, usd(20), AT).unwrap().unwrap();
        assert_eq!(
            legs(&cp),
            [("codepay_fee_expense", D, 20), ("gateway_clearing", C, 20)]
        );
        assert_eq!(cp.effect_on(&Account::MerchantPayable(m.clone())), 0);
    }

    #[test]
    fn zero_fees_post_nothing_but_zero_captures_are_refused() {
        let m = MerchantId::generate();
        let p = PaymentId::generate();
        let r = RefundId::generate();
        assert_eq!(fee(&m, &p, usd(0), AT), Ok(None));
        assert_eq!(fee_return(&m, &r, usd(0), AT), Ok(None));
        assert_eq!(codepay_fee(&m, &p, usd(0), AT), Ok(None));
        assert!(matches!(
            capture(&m, &p, usd(0), AT),
            Err(LedgerError::InvalidAmount {
                field: "amount",
                ..
            })
        ));
        assert!(refund(&m, &r, usd(0), AT).is_err());
    }

    #[test]
    fn a_late_success_nets_to_zero_for_merchant_and_clearing() {
        let m = MerchantId::generate();
        let j = late_success_refund(&m, &PaymentId::generate(), usd(1000), AT).unwrap();
        assert_eq!(j.postings().len(), 4);
        assert_eq!(j.effect_on(&Account::MerchantPayable(m)), 0);
        assert_eq!(j.effect_on(&Account::GatewayClearing), 0);
    }

    #[test]
    fn a_reversal_undoes_capture_and_fee() {
        let m = MerchantId::generate();
        let p = PaymentId::generate();
        let payable = Account::MerchantPayable(m.clone());
        let capture = capture(&m, &p, usd(1000), AT).unwrap();
        let fee = fee(&m, &p, usd(59), AT).unwrap().unwrap();
        let reversal = reversal(&m, &p, usd(1000), usd(59), AT).unwrap();
        for account in [
            payable,
            Account::GatewayClearing,
            Account::PlatformFeeRevenue,
        ] {
            assert_eq!(
                capture.effect_on(&account)
                    + fee.effect_on(&account)
                    + reversal.effect_on(&account),
                0,
                "{account:?}"
            );
        }
        let no_fee = super::reversal(&m, &p, usd(1000), usd(0), AT).unwrap();
        assert_eq!(no_fee.postings().len(), 2);
        assert_eq!(
            super::reversal(&m, &p, usd(1000), jpy(59), AT),
            Err(LedgerError::CurrencyMismatch {
                expected: usd(0).currency(),
                found: jpy(0).currency()
            })
        );
    }

    #[test]
    fn adjustments_credit_or_debit_the_merchant_by_sign() {
        let m = MerchantId::generate();
        let payable = Account::MerchantPayable(m.clone());
        let usd_c = usd(0).currency();
        let credit = adjustment(&m, "adj-1", usd_c, 250, "goodwill", AT).unwrap();
        assert_eq!(credit.effect_on(&payable), 250);
        assert_eq!(credit.effect_on(&Account::PlatformAdjustments), 250);
        assert_eq!(credit.memo(), Some("goodwill"));
        let debit = adjustment(&m, "adj-2", usd_c, -100, "recovered", AT).unwrap();
        assert_eq!(debit.effect_on(&payable), -100);
        assert_eq!(debit.effect_on(&Account::PlatformAdjustments), -100);

        assert!(matches!(
            adjustment(&m, "adj-3", usd_c, 0, "nothing", AT),
            Err(LedgerError::InvalidAmount { .. })
        ));
        assert_eq!(
            adjustment(&m, "adj-3", usd_c, 5, " ", AT),
            Err(LedgerError::EmptyText { field: "memo" })
        );
        assert_eq!(
            adjustment(&m, "", usd_c, 5, "why", AT),
            Err(LedgerError::EmptyText { field: "reference" })
        );
        assert_eq!(
            adjustment(&m, "adj-4", usd_c, i64::MIN, "too much", AT),
            Err(LedgerError::Overflow)
        );
    }
}
