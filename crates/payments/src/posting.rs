//! What each state change posts to the ledger, and how a journal is stored.
//!
//! The engine attaches these journals to the same [`crate::model::Change`] that moves the
//! state, so a payment never succeeds without its capture and fee being booked, and a refund
//! never succeeds without its refund and fee return. The rules themselves (accounts, rounding)
//! are the `ledger` crate's; this module only picks the rule for each event:
//!
//! | state change | journals |
//! |---|---|
//! | payment → `succeeded` | `capture` (amount), `fee` (platform fee, if any), `codepay_fee` (CodePay's `trans_fee_c`, if reported) |
//! | refund → `succeeded` | `refund` (amount), `fee_return` (pro-rata share of the fee's percentage part, if any) |
//! | automatic late-success refund → `succeeded` | `late_success_refund` (amount in and out; no fee) |

use crate::error::{PaymentError, Result};
use crate::model::{FeeSnapshot, Payment, Refund};
use crate::refunds::RESERVED_REFUND_PREFIX;
use chrono::{DateTime, Utc};
use domain::{Money, PaymentStatus};
use ledger::{Fee, Journal, PriceList, Side, postings};

/// A ledger rule refused an amount the engine computed: a bug or an amount beyond `i64`, never
/// the caller's input, so the change is not committed and the operation is retried later.
pub(crate) fn books_error(e: ledger::LedgerError) -> PaymentError {
    PaymentError::Unavailable(format!("cannot book the change: {e}"))
}

/// The fee of a payment succeeding now: the most specific rate of `prices` (the price list in
/// force at the payment's creation), or nothing when the merchant had no pricing or no rate
/// matches. `codepay_fee` is CodePay's `trans_fee_c` from the same answer; one in another
/// currency than the payment's is not kept (and logged).
pub fn fee_of(
    p: &Payment,
    prices: Option<&PriceList>,
    codepay_fee: Option<Money>,
) -> Result<FeeSnapshot> {
    let currency = p.amount.currency();
    let fee = match prices {
        Some(list) => list.fee(p.wallet, p.amount).map_err(books_error)?,
        None => None,
    }
    .unwrap_or_else(|| Fee::zero(currency));
    let codepay_fee = codepay_fee.filter(|f| {
        let same = f.currency() == currency;
        if !same {
            tracing::warn!(payment_id = %p.id, "CodePay reported its fee in another currency; not booked");
        }
        same
    });
    Ok(FeeSnapshot {
        percent_part: fee.percent_part(),
        fixed_part: fee.fixed_part(),
        pricing_version: prices.map(PriceList::version),
        codepay_fee,
    })
}

/// The journals of a payment that succeeds at `at` with `fee`.
pub fn capture_journals(p: &Payment, fee: &FeeSnapshot, at: DateTime<Utc>) -> Result<Vec<Journal>> {
    let (m, id) = (&p.merchant_id, &p.id);
    let mut journals = vec![postings::capture(m, id, p.amount, at).map_err(books_error)?];
    journals.extend(postings::fee(m, id, fee.total(), at).map_err(books_error)?);
    if let Some(theirs) = fee.codepay_fee {
        journals.extend(postings::codepay_fee(m, id, theirs, at).map_err(books_error)?);
    }
    Ok(journals)
}

/// True for payfac's automatic refund of a success reported after it closed the payment.
pub fn is_late_success_refund(p: &Payment, r: &Refund) -> bool {
    p.status == PaymentStatus::Canceled && r.merchant_refund_id.starts_with(RESERVED_REFUND_PREFIX)
}

/// The journals of refund `r` succeeding at `at`, and the share of the fee it gives back.
/// `p` is the payment as it stood before this refund (its `amount_refunded` counts the earlier
/// succeeded refunds only), so each refund gets the difference of the cumulative shares.
pub fn refund_journals(
    p: &Payment,
    r: &Refund,
    at: DateTime<Utc>,
) -> Result<(Option<Money>, Vec<Journal>)> {
    if is_late_success_refund(p, r) {
        let j = postings::late_success_refund(&p.merchant_id, &p.id, r.amount, at)
            .map_err(books_error)?;
        return Ok((None, vec![j]));
    }
    let currency = p.amount.currency();
    let fee = match &p.fee {
        Some(f) => Fee::new(f.percent_part, f.fixed_part).map_err(books_error)?,
        // A payment that succeeded before the books existed was charged nothing.
        None => Fee::zero(currency),
    };
    let before = Money::new(p.amount_refunded, currency).map_err(PaymentError::from)?;
    let back = if fee.percent_part().is_zero() || p.amount.is_zero() {
        Money::zero(currency)
    } else {
        ledger::pricing::fee_return_for_cumulative(&fee, p.amount, before, r.amount)
            .map_err(books_error)?
    };
    let mut journals =
        vec![postings::refund(&p.merchant_id, &r.id, r.amount, at).map_err(books_error)?];
    journals.extend(postings::fee_return(&p.merchant_id, &r.id, back, at).map_err(books_error)?);
    Ok((Some(back), journals))
}

/// One stored transfer: `amount` debited to `debit` and credited to `credit` (account kinds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    /// Account kind debited.
    pub debit: &'static str,
    /// Account kind credited.
    pub credit: &'static str,
    /// Minor units, `> 0`.
    pub amount: i64,
}

/// A journal's postings as two-leg transfers, the form the ledger table stores (each row
/// balanced by construction). Postings are first added up per account and side; each debit is
/// then paired with credits of other accounts until both are used up. What is left on one
/// account on both sides (never produced by the posting rules) moves nothing and is dropped.
pub fn transfers(journal: &Journal) -> Vec<Transfer> {
    let mut debits: Vec<(&'static str, i64)> = Vec::new();
    let mut credits: Vec<(&'static str, i64)> = Vec::new();
    for p in journal.postings() {
        let side = match p.side {
            Side::Debit => &mut debits,
            Side::Credit => &mut credits,
        };
        let kind = p.account.kind_str();
        match side.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, sum)) => *sum += p.amount,
            None => side.push((kind, p.amount)),
        }
    }
    let mut out = Vec::new();
    for (debit, mut left) in debits {
        for (credit, available) in credits.iter_mut() {
            if left == 0 {
                break;
            }
            if *credit == debit || *available == 0 {
                continue;
            }
            let amount = left.min(*available);
            *available -= amount;
            left -= amount;
            match out
                .iter_mut()
                .find(|t: &&mut Transfer| t.debit == debit && t.credit == *credit)
            {
                Some(t) => t.amount += amount,
                None => out.push(Transfer {
                    debit,
                    credit,
                    amount,
                }),
            }
        }
    }
    out
}

/// The rows a journal is stored as: its header and its transfers (see [`transfers`]).
pub fn stored_rows(
    journal: &Journal,
    now: DateTime<Utc>,
) -> (store::ledger::Journal, Vec<store::ledger::Entry>) {
    let id = format!("jrn_{}", ulid::Ulid::new());
    let occurred_at = journal.occurred_at().timestamp_millis();
    let (merchant_id, currency) = (
        journal.merchant_id().to_string(),
        journal.currency().code().to_owned(),
    );
    let subject = journal.subject();
    let entries = transfers(journal)
        .into_iter()
        .map(|t| store::ledger::Entry {
            id: format!("le_{}", ulid::Ulid::new()),
            journal_id: id.clone(),
            kind: journal.kind().as_str().to_owned(),
            subject_id: subject.id_str().to_owned(),
            merchant_id: merchant_id.clone(),
            debit_account: t.debit.to_owned(),
            credit_account: t.credit.to_owned(),
            currency: currency.clone(),
            amount_minor: t.amount,
            occurred_at,
            created_at: now.timestamp_millis(),
        })
        .collect();
    let header = store::ledger::Journal {
        id,
        kind: journal.kind().as_str().to_owned(),
        subject_type: subject.kind_str().to_owned(),
        subject_id: subject.id_str().to_owned(),
        merchant_id,
        currency,
        occurred_at,
        memo: journal.memo().map(str::to_owned),
        created_at: now.timestamp_millis(),
    };
    (header, entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use domain::{Currency, MerchantId, PaymentId};

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::from_code("USD").unwrap()).unwrap()
    }

    #[test]
    fn transfers_keep_every_leg_and_balance() {
        let m = MerchantId::generate();
        let p = PaymentId::generate();
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let late = postings::late_success_refund(&m, &p, usd(700), at).unwrap();
        assert_eq!(
            transfers(&late),
            [
                Transfer {
                    debit: "gateway_clearing",
                    credit: "merchant_payable",
                    amount: 700
                },
                Transfer {
                    debit: "merchant_payable",
                    credit: "gateway_clearing",
                    amount: 700
                },
            ],
            "the amount stays visible on both accounts"
        );
        let reversal = postings::reversal(&m, &p, usd(1000), usd(59), at).unwrap();
        let t = transfers(&reversal);
        let debits: i64 = t.iter().map(|t| t.amount).sum();
        let posted: i64 = reversal
            .postings()
            .iter()
            .filter(|p| p.side == Side::Debit)
            .map(|p| p.amount)
            .sum();
        assert_eq!(debits, posted);
        assert!(t.iter().all(|t| t.debit != t.credit && t.amount > 0));
    }
}
