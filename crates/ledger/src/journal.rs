//! Double-entry journals: accounts, postings, and a [`Journal`] that can only exist balanced.
//!
//! One journal records one business event (a capture, a fee, a refund, …) of one merchant in
//! one currency. Its debits equal its credits, checked in [`Journal::new`]; the rules that say
//! which accounts an event moves are in [`crate::postings`].

use crate::LedgerError;
use chrono::{DateTime, Utc};
use domain::{Currency, MerchantId, PaymentId, RefundId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The side of a posting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Increases an asset or expense, decreases a liability or revenue.
    Debit,
    /// Increases a liability or revenue, decreases an asset or expense.
    Credit,
}

impl Side {
    /// `debit` or `credit`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Debit => "debit",
            Side::Credit => "credit",
        }
    }
}

/// The platform's accounts. Kept to what the posting rules need.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Account {
    /// What CodePay owes the platform: captured money not yet paid out to the platform (asset).
    GatewayClearing,
    /// What the platform owes one merchant (liability).
    MerchantPayable(MerchantId),
    /// The platform's fee income from merchants (revenue).
    PlatformFeeRevenue,
    /// What CodePay charges the platform (expense).
    CodePayFeeExpense,
    /// The platform's side of manual adjustments: a credit to a merchant is paid by the
    /// platform, a debit to a merchant comes back to it (expense; negative when recoveries win).
    PlatformAdjustments,
}

impl Account {
    /// The account's kind as stored (`gateway_clearing`, `merchant_payable`, …); the merchant of
    /// a payable is stored beside it ([`Account::merchant`]).
    pub fn kind_str(&self) -> &'static str {
        match self {
            Account::GatewayClearing => "gateway_clearing",
            Account::MerchantPayable(_) => "merchant_payable",
            Account::PlatformFeeRevenue => "platform_fee_revenue",
            Account::CodePayFeeExpense => "codepay_fee_expense",
            Account::PlatformAdjustments => "platform_adjustments",
        }
    }

    /// The merchant a payable belongs to.
    pub fn merchant(&self) -> Option<&MerchantId> {
        match self {
            Account::MerchantPayable(m) => Some(m),
            _ => None,
        }
    }

    /// The account from its stored kind and merchant (a payable needs one, the others none).
    pub fn from_parts(kind: &str, merchant: Option<MerchantId>) -> Option<Self> {
        match (kind, merchant) {
            ("gateway_clearing", None) => Some(Account::GatewayClearing),
            ("merchant_payable", Some(m)) => Some(Account::MerchantPayable(m)),
            ("platform_fee_revenue", None) => Some(Account::PlatformFeeRevenue),
            ("codepay_fee_expense", None) => Some(Account::CodePayFeeExpense),
            ("platform_adjustments", None) => Some(Account::PlatformAdjustments),
            _ => None,
        }
    }

    /// The side that increases the account: debit for assets and expenses, credit for
    /// liabilities and revenue. Balances are reported positive on this side.
    pub fn normal_side(&self) -> Side {
        match self {
            Account::GatewayClearing
            | Account::CodePayFeeExpense
            | Account::PlatformAdjustments => Side::Debit,
            Account::MerchantPayable(_) | Account::PlatformFeeRevenue => Side::Credit,
        }
    }
}

/// One line of a journal: an amount in minor units of the journal's currency on one side of
/// one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    /// The account moved.
    pub account: Account,
    /// Debit or credit.
    pub side: Side,
    /// Minor units, `> 0`.
    pub amount: i64,
}

impl Posting {
    /// A debit of `amount` to `account`.
    pub fn debit(account: Account, amount: i64) -> Self {
        Self {
            account,
            side: Side::Debit,
            amount,
        }
    }

    /// A credit of `amount` to `account`.
    pub fn credit(account: Account, amount: i64) -> Self {
        Self {
            account,
            side: Side::Credit,
            amount,
        }
    }
}

/// What business event a journal records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalKind {
    /// A payment succeeded: the merchant is owed its amount.
    Capture,
    /// The platform's fee on a captured payment.
    Fee,
    /// A refund succeeded: the merchant owes its amount back.
    Refund,
    /// The share of the fee given back for a refund.
    FeeReturn,
    /// A payment captured after payfac closed it, refunded in full automatically.
    LateSuccessRefund,
    /// A captured payment undone (capture and fee reversed).
    Reversal,
    /// What CodePay charged the platform for a payment.
    CodePayFee,
    /// A manual adjustment of a merchant's balance.
    Adjustment,
}

impl JournalKind {
    /// Every kind, for tables and exhaustive tests.
    pub const ALL: [JournalKind; 8] = [
        JournalKind::Capture,
        JournalKind::Fee,
        JournalKind::Refund,
        JournalKind::FeeReturn,
        JournalKind::LateSuccessRefund,
        JournalKind::Reversal,
        JournalKind::CodePayFee,
        JournalKind::Adjustment,
    ];

    /// The kind as stored (`capture`, `fee_return`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            JournalKind::Capture => "capture",
            JournalKind::Fee => "fee",
            JournalKind::Refund => "refund",
            JournalKind::FeeReturn => "fee_return",
            JournalKind::LateSuccessRefund => "late_success_refund",
            JournalKind::Reversal => "reversal",
            JournalKind::CodePayFee => "codepay_fee",
            JournalKind::Adjustment => "adjustment",
        }
    }

    /// The kind from its stored name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// What a journal of this kind is about: `payment`, `refund` or `adjustment`.
    pub fn subject_kind(self) -> &'static str {
        match self {
            JournalKind::Capture
            | JournalKind::Fee
            | JournalKind::LateSuccessRefund
            | JournalKind::Reversal
            | JournalKind::CodePayFee => "payment",
            JournalKind::Refund | JournalKind::FeeReturn => "refund",
            JournalKind::Adjustment => "adjustment",
        }
    }
}

impl fmt::Display for JournalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The object a journal is about. With the kind it identifies the journal: one capture per
/// payment, one fee return per refund, so a store can make `(kind, subject)` unique and post
/// idempotently.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// A payment.
    Payment(PaymentId),
    /// A refund.
    Refund(RefundId),
    /// A manual adjustment, by the caller's reference for it (e.g. its row id).
    Adjustment(String),
}

impl Subject {
    /// `payment`, `refund` or `adjustment`.
    pub fn kind_str(&self) -> &'static str {
        match self {
            Subject::Payment(_) => "payment",
            Subject::Refund(_) => "refund",
            Subject::Adjustment(_) => "adjustment",
        }
    }

    /// The id as text.
    pub fn id_str(&self) -> &str {
        match self {
            Subject::Payment(id) => id.as_str(),
            Subject::Refund(id) => id.as_str(),
            Subject::Adjustment(reference) => reference,
        }
    }
}

/// A balanced set of postings recording one event of one merchant in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journal {
    kind: JournalKind,
    currency: Currency,
    postings: Vec<Posting>,
    merchant_id: MerchantId,
    subject: Subject,
    occurred_at: DateTime<Utc>,
    memo: Option<String>,
}

impl Journal {
    /// Builds a journal, refusing one that is empty, has a non-positive posting, does not
    /// balance, moves another merchant's payable, or whose subject does not fit its kind.
    ///
    /// The currency is the journal's: every posting is in it. Amounts in other currencies are
    /// refused where they enter, by the rules in [`crate::postings`], which read the currency
    /// from the [`domain::Money`] they are given.
    pub fn new(
        kind: JournalKind,
        currency: Currency,
        postings: Vec<Posting>,
        merchant_id: MerchantId,
        subject: Subject,
        occurred_at: DateTime<Utc>,
        memo: Option<String>,
    ) -> Result<Self, LedgerError> {
        if postings.is_empty() {
            return Err(LedgerError::EmptyJournal);
        }
        if kind.subject_kind() != subject.kind_str() {
            return Err(LedgerError::SubjectMismatch {
                kind,
                expected: kind.subject_kind(),
                found: subject.kind_str(),
            });
        }
        let (mut debits, mut credits) = (0i128, 0i128);
        for (index, posting) in postings.iter().enumerate() {
            if posting.amount <= 0 {
                return Err(LedgerError::NonPositivePosting {
                    index,
                    amount: posting.amount,
                });
            }
            if posting
                .account
                .merchant()
                .is_some_and(|m| *m != merchant_id)
            {
                return Err(LedgerError::ForeignMerchant { index });
            }
            // i128 sums: a journal of many i64 postings cannot overflow them.
            match posting.side {
                Side::Debit => debits += i128::from(posting.amount),
                Side::Credit => credits += i128::from(posting.amount),
            }
        }
        if debits != credits {
            return Err(LedgerError::Unbalanced { debits, credits });
        }
        Ok(Self {
            kind,
            currency,
            postings,
            merchant_id,
            subject,
            occurred_at,
            memo,
        })
    }

    /// What event the journal records.
    pub fn kind(&self) -> JournalKind {
        self.kind
    }

    /// The currency of every posting.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The postings, in order.
    pub fn postings(&self) -> &[Posting] {
        &self.postings
    }

    /// The merchant the event belongs to.
    pub fn merchant_id(&self) -> &MerchantId {
        &self.merchant_id
    }

    /// The payment, refund or adjustment the journal is about.
    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// When the event happened (not when it was recorded).
    pub fn occurred_at(&self) -> DateTime<Utc> {
        self.occurred_at
    }

    /// The operator's note (adjustments carry one).
    pub fn memo(&self) -> Option<&str> {
        self.memo.as_deref()
    }

    /// The journal's signed effect on `account`: credits minus debits for a credit-normal
    /// account, debits minus credits for a debit-normal one.
    pub fn effect_on(&self, account: &Account) -> i128 {
        self.postings
            .iter()
            .filter(|p| p.account == *account)
            .map(|p| signed(p, account.normal_side()))
            .sum()
    }
}

/// A posting's amount, positive when it is on `normal` side.
pub(crate) fn signed(posting: &Posting, normal: Side) -> i128 {
    let amount = i128::from(posting.amount);
    if posting.side == normal {
        amount
    } else {
        -amount
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::from_code("USD").unwrap()
    }

    fn build(postings: Vec<Posting>, merchant: &MerchantId) -> Result<Journal, LedgerError> {
        Journal::new(
            JournalKind::Capture,
            usd(),
            postings,
            merchant.clone(),
            Subject::Payment(PaymentId::generate()),
            DateTime::UNIX_EPOCH,
            None,
        )
    }

    #[test]
    fn a_balanced_journal_is_built() {
        let m = MerchantId::generate();
        let j = build(
            vec![
                Posting::debit(Account::GatewayClearing, 100),
                Posting::credit(Account::MerchantPayable(m.clone()), 100),
            ],
            &m,
        )
        .unwrap();
        assert_eq!(j.effect_on(&Account::MerchantPayable(m)), 100);
        assert_eq!(j.effect_on(&Account::GatewayClearing), 100);
        assert_eq!(j.effect_on(&Account::PlatformFeeRevenue), 0);
    }

    #[test]
    fn unbalanced_empty_and_non_positive_journals_are_refused() {
        let m = MerchantId::generate();
        let payable = || Account::MerchantPayable(m.clone());
        assert_eq!(build(vec![], &m), Err(LedgerError::EmptyJournal));
        assert_eq!(
            build(
                vec![
                    Posting::debit(Account::GatewayClearing, 100),
                    Posting::credit(payable(), 99)
                ],
                &m
            ),
            Err(LedgerError::Unbalanced {
                debits: 100,
                credits: 99
            })
        );
        assert_eq!(
            build(
                vec![
                    Posting::debit(Account::GatewayClearing, 0),
                    Posting::credit(payable(), 0)
                ],
                &m
            ),
            Err(LedgerError::NonPositivePosting {
                index: 0,
                amount: 0
            })
        );
        assert_eq!(
            build(
                vec![
                    Posting::debit(Account::GatewayClearing, 5),
                    Posting::debit(payable(), -5)
                ],
                &m
            ),
            Err(LedgerError::NonPositivePosting {
                index: 1,
                amount: -5
            })
        );
        // Sums past i64 are still compared exactly.
        assert_eq!(
            build(
                vec![
                    Posting::debit(Account::GatewayClearing, i64::MAX),
                    Posting::debit(Account::GatewayClearing, i64::MAX),
                    Posting::credit(payable(), i64::MAX),
                ],
                &m
            ),
            Err(LedgerError::Unbalanced {
                debits: 2 * i128::from(i64::MAX),
                credits: i128::from(i64::MAX)
            })
        );
    }

    #[test]
    fn another_merchants_payable_and_a_wrong_subject_are_refused() {
        let m = MerchantId::generate();
        let other = MerchantId::generate();
        assert_eq!(
            build(
                vec![
                    Posting::debit(Account::GatewayClearing, 1),
                    Posting::credit(Account::MerchantPayable(other), 1)
                ],
                &m
            ),
            Err(LedgerError::ForeignMerchant { index: 1 })
        );
        let wrong = Journal::new(
            JournalKind::Refund,
            usd(),
            vec![
                Posting::debit(Account::MerchantPayable(m.clone()), 1),
                Posting::credit(Account::GatewayClearing, 1),
            ],
            m,
            Subject::Payment(PaymentId::generate()),
            DateTime::UNIX_EPOCH,
            None,
        );
        assert_eq!(
            wrong,
            Err(LedgerError::SubjectMismatch {
                kind: JournalKind::Refund,
                expected: "refund",
                found: "payment"
            })
        );
    }

    #[test]
    fn stored_names_read_back() {
        for kind in JournalKind::ALL {
            assert_eq!(JournalKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(JournalKind::parse("Capture"), None);
        let m = MerchantId::generate();
        for account in [
            Account::GatewayClearing,
            Account::MerchantPayable(m.clone()),
            Account::PlatformFeeRevenue,
            Account::CodePayFeeExpense,
            Account::PlatformAdjustments,
        ] {
            assert_eq!(
                Account::from_parts(account.kind_str(), account.merchant().cloned()),
                Some(account)
            );
        }
        assert_eq!(Account::from_parts("merchant_payable", None), None);
        assert_eq!(Account::from_parts("gateway_clearing", Some(m)), None);
    }
}
