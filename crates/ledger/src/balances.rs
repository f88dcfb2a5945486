//! Account balances folded from journals.

use crate::LedgerError;
use crate::journal::{Account, Journal, Side, signed};
use domain::{Currency, MerchantId};
use std::collections::HashMap;

/// Signed balances per (account, currency), positive on each account's normal side (see
/// [`Account::normal_side`]): clearing positive = CodePay owes the platform, a payable
/// positive = the platform owes the merchant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Balances {
    by_account: HashMap<(Account, Currency), i64>,
}

impl Balances {
    /// No balances.
    pub fn new() -> Self {
        Self::default()
    }

    /// Balances of all `journals`.
    pub fn from_journals<'a>(
        journals: impl IntoIterator<Item = &'a Journal>,
    ) -> Result<Self, LedgerError> {
        let mut balances = Self::new();
        for journal in journals {
            balances.apply(journal)?;
        }
        Ok(balances)
    }

    /// Adds one journal. On overflow nothing of the journal is applied.
    pub fn apply(&mut self, journal: &Journal) -> Result<(), LedgerError> {
        let currency = journal.currency();
        let mut updated = Vec::with_capacity(journal.postings().len());
        for posting in journal.postings() {
            let key = (posting.account.clone(), currency);
            // Earlier postings of this journal to the same account count too.
            let current = updated
                .iter()
                .rev()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| *v)
                .unwrap_or_else(|| self.by_account.get(&key).copied().unwrap_or(0));
            let change = signed(posting, posting.account.normal_side());
            let next =
                i64::try_from(i128::from(current) + change).map_err(|_| LedgerError::Overflow)?;
            updated.push((key, next));
        }
        self.by_account.extend(updated);
        Ok(())
    }

    /// The balance of `account` in `currency` (zero when never moved).
    pub fn balance(&self, account: &Account, currency: Currency) -> i64 {
        self.by_account
            .get(&(account.clone(), currency))
            .copied()
            .unwrap_or(0)
    }

    /// What the platform owes `merchant` in `currency`: its payable's balance. Negative when the
    /// merchant owes the platform (refunds and fees beyond its captures).
    pub fn merchant_net(&self, merchant: &MerchantId, currency: Currency) -> i64 {
        self.balance(&Account::MerchantPayable(merchant.clone()), currency)
    }

    /// Every non-zero balance, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Account, Currency, i64)> {
        self.by_account
            .iter()
            .filter(|(_, v)| **v != 0)
            .map(|((a, c), v)| (a, *c, *v))
    }

    /// Debit-normal balances minus credit-normal balances in `currency`: zero whenever every
    /// journal applied balanced, which [`Journal::new`] guarantees.
    pub fn trial_difference(&self, currency: Currency) -> i128 {
        self.iter()
            .filter(|(_, c, _)| *c == currency)
            .map(|(account, _, v)| match account.normal_side() {
                Side::Debit => i128::from(v),
                Side::Credit => -i128::from(v),
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postings;
    use chrono::DateTime;
    use domain::{Money, PaymentId, RefundId};

    #[test]
    fn balances_follow_each_accounts_normal_side() {
        let usd = Currency::from_code("USD").unwrap();
        let money = |minor| Money::new(minor, usd).unwrap();
        let m = MerchantId::generate();
        let p = PaymentId::generate();
        let r = RefundId::generate();
        let at = DateTime::UNIX_EPOCH;
        let journals = [
            postings::capture(&m, &p, money(1000), at).unwrap(),
            postings::fee(&m, &p, money(59), at).unwrap().unwrap(),
            postings::refund(&m, &r, money(400), at).unwrap(),
            postings::fee_return(&m, &r, money(12), at)
                .unwrap()
                .unwrap(),
            postings::codepay_fee(&m, &p, money(20), at)
                .unwrap()
                .unwrap(),
        ];
        let b = Balances::from_journals(&journals).unwrap();
        assert_eq!(b.merchant_net(&m, usd), 1000 - 59 - 400 + 12);
        assert_eq!(b.balance(&Account::GatewayClearing, usd), 1000 - 400 - 20);
        assert_eq!(b.balance(&Account::PlatformFeeRevenue, usd), 59 - 12);
        assert_eq!(b.balance(&Account::CodePayFeeExpense, usd), 20);
        assert_eq!(b.trial_difference(usd), 0);
        let jpy = Currency::from_code("JPY").unwrap();
        assert_eq!(b.merchant_net(&m, jpy), 0, "currencies are kept apart");
        assert_eq!(b.merchant_net(&MerchantId::generate(), usd), 0);
    }

    /// The worked example of `docs/books.md`: 2.9 % + 0.30 on 10.00 USD, refunded 4.00 then 6.00.
    #[test]
    fn the_worked_example_of_the_books_doc() {
        use crate::pricing::{Rate, fee_for, fee_return_for_cumulative};
        let usd = Currency::from_code("USD").unwrap();
        let money = |minor| Money::new(minor, usd).unwrap();
        let (m, p, at) = (
            MerchantId::generate(),
            PaymentId::generate(),
            DateTime::UNIX_EPOCH,
        );
        let rate = Rate {
            wallet: None,
            currency: Some(usd),
            percent_bps: 290,
            fixed: 30,
        };
        let fee = fee_for(&rate, money(1000)).unwrap();
        assert_eq!(fee.total(), money(59));
        let mut b = Balances::new();
        b.apply(&postings::capture(&m, &p, money(1000), at).unwrap())
            .unwrap();
        b.apply(&postings::fee(&m, &p, fee.total(), at).unwrap().unwrap())
            .unwrap();
        let mut refunded = money(0);
        for (refund, returned, net, clearing, revenue) in
            [(400, 12, 553, 600, 47), (600, 17, -30, 0, 30)]
        {
            let r = RefundId::generate();
            let back =
                fee_return_for_cumulative(&fee, money(1000), refunded, money(refund)).unwrap();
            assert_eq!(back, money(returned));
            b.apply(&postings::refund(&m, &r, money(refund), at).unwrap())
                .unwrap();
            b.apply(&postings::fee_return(&m, &r, back, at).unwrap().unwrap())
                .unwrap();
            refunded = refunded.checked_add(money(refund)).unwrap();
            assert_eq!(b.merchant_net(&m, usd), net);
            assert_eq!(b.balance(&Account::GatewayClearing, usd), clearing);
            assert_eq!(b.balance(&Account::PlatformFeeRevenue, usd), revenue);
        }
    }

    #[test]
    fn an_overflowing_journal_is_not_applied_at_all() {
        let usd = Currency::from_code("USD").unwrap();
        let m = MerchantId::generate();
        let at = DateTime::UNIX_EPOCH;
        let big = Money::new(i64::MAX, usd).unwrap();
        let mut b = Balances::new();
        b.apply(&postings::capture(&m, &PaymentId::generate(), big, at).unwrap())
            .unwrap();
        let before = b.clone();
        let again = postings::capture(&m, &PaymentId::generate(), big, at).unwrap();
        assert_eq!(b.apply(&again), Err(LedgerError::Overflow));
        assert_eq!(b, before);
    }
}
