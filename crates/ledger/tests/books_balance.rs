//! Property tests over whole books: random payments, partial refunds, late successes,
//! reversals and adjustments are posted through the crate's rules, and what the journals add
//! up to is compared with totals computed here, from the generated events alone, with a
//! separate implementation of the pricing arithmetic.

use chrono::{DateTime, Duration, Utc};
use domain::{Currency, MerchantId, Money, PaymentId, RefundId, Wallet};
use ledger::journal::Side;
use ledger::pricing::{fee_return_for_cumulative, pick_version};
use ledger::statement::LineKind;
use ledger::{Account, Balances, Fee, Journal, PriceList, Rate, StatementLine, StatementTotals};
use proptest::prelude::*;
use std::collections::HashMap;

const CURRENCIES: [&str; 3] = ["USD", "JPY", "KWD"];
const MERCHANTS: usize = 3;

fn currency(i: usize) -> Currency {
    Currency::from_code(CURRENCIES[i]).expect("known currency")
}
fn wallet(i: usize) -> Wallet {
    Wallet::all().nth(i).expect("known wallet")
}
fn wallets() -> usize {
    Wallet::all().count()
}

#[derive(Debug, Clone)]
enum Outcome {
    /// Captured, then refunded in parts; each raw value picks a refund of
    /// `1 + raw % remaining`, so the refunds never exceed the captured amount.
    Captured { refunds: Vec<u64> },
    /// Captured after payfac closed it, refunded in full automatically.
    LateSuccess,
    /// Captured, then reversed.
    Reversed,
}

#[derive(Debug, Clone)]
struct Payment {
    merchant: usize,
    wallet: usize,
    currency: usize,
    amount: i64,
    /// CodePay's fee in per mille of the amount.
    codepay_permille: i64,
    outcome: Outcome,
}

fn payment() -> impl Strategy<Value = Payment> {
    let outcome = prop_oneof![
        4 => prop::collection::vec(any::<u64>(), 0..5).prop_map(|refunds| Outcome::Captured { refunds }),
        1 => Just(Outcome::LateSuccess),
        1 => Just(Outcome::Reversed),
    ];
    (
        0..MERCHANTS,
        0..wallets(),
        0..CURRENCIES.len(),
        prop_oneof![1i64..1_000, 1i64..1_000_000_000_000],
        0i64..30,
        outcome,
    )
        .prop_map(
            |(merchant, wallet, currency, amount, codepay_permille, outcome)| Payment {
                merchant,
                wallet,
                currency,
                amount,
                codepay_permille,
                outcome,
            },
        )
}

/// Rates over a random subset of (wallet?, currency?) pairs, duplicates dropped.
fn rates() -> impl Strategy<Value = Vec<Rate>> {
    let rate = (
        prop::option::of(0..wallets()),
        prop::option::of(0..CURRENCIES.len()),
        prop_oneof![0u32..=1_000, 0u32..=10_000],
        0i64..=500,
    );
    prop::collection::vec(rate, 0..12).prop_map(|raw| {
        let mut rates: Vec<Rate> = Vec::new();
        for (w, c, percent_bps, fixed) in raw {
            let rate = Rate {
                wallet: w.map(wallet),
                currency: c.map(currency),
                percent_bps,
                fixed: if c.is_some() { fixed } else { 0 },
            };
            if !rates
                .iter()
                .any(|r| r.wallet == rate.wallet && r.currency == rate.currency)
            {
                rates.push(rate);
            }
        }
        rates
    })
}

fn adjustment() -> impl Strategy<Value = (usize, usize, i64)> {
    (
        0..MERCHANTS,
        0..CURRENCIES.len(),
        prop_oneof![-1_000_000_000i64..0, 1i64..1_000_000_000],
    )
}

// ---- the reference arithmetic: written apart from the crate's on purpose ----

/// `n / d` rounded half up, by quotient and remainder.
fn half_up(n: i128, d: i128) -> i64 {
    let (q, r) = (n / d, n % d);
    let q = if 2 * r >= d { q + 1 } else { q };
    i64::try_from(q).expect("fits")
}

/// The rate the price list should choose, by explicit search order.
fn reference_rate(rates: &[Rate], w: Wallet, c: Currency) -> Option<&Rate> {
    [
        (Some(w), Some(c)),
        (None, Some(c)),
        (Some(w), None),
        (None, None),
    ]
    .into_iter()
    .find_map(|(rw, rc)| rates.iter().find(|r| r.wallet == rw && r.currency == rc))
}

/// (percentage part, fixed part) of the fee.
fn reference_fee(rates: &[Rate], p: &Payment) -> (i64, i64) {
    match reference_rate(rates, wallet(p.wallet), currency(p.currency)) {
        None => (0, 0),
        Some(r) => (
            half_up(i128::from(p.amount) * i128::from(r.percent_bps), 10_000),
            r.fixed,
        ),
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Expected {
    gross: i64,
    refunds: i64,
    fees: i64,
    fee_returns: i64,
    adjustments: i64,
    codepay_fees: i64,
}

impl Expected {
    fn merchant_net(&self) -> i64 {
        self.gross - self.refunds - self.fees + self.fee_returns + self.adjustments
    }
}

/// The sum of debits equals the sum of credits, counted here rather than trusted.
fn assert_balanced(j: &Journal) {
    let sum = |side| -> i128 {
        j.postings()
            .iter()
            .filter(|p| p.side == side)
            .map(|p| i128::from(p.amount))
            .sum()
    };
    assert!(!j.postings().is_empty());
    assert!(j.postings().iter().all(|p| p.amount > 0));
    assert_eq!(sum(Side::Debit), sum(Side::Credit), "{j:?}");
}

fn at(n: usize) -> DateTime<Utc> {
    DateTime::UNIX_EPOCH + Duration::seconds(i64::try_from(n).expect("small"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn books_balance_and_merchant_nets_match_the_events(
        rates in rates(),
        payments in prop::collection::vec(payment(), 0..40),
        adjustments in prop::collection::vec(adjustment(), 0..6),
    ) {
        let list = PriceList::new(1, DateTime::UNIX_EPOCH, rates.clone()).expect("valid rates");
        let lists = [list];
        let merchants: Vec<MerchantId> = (0..MERCHANTS).map(|_| MerchantId::generate()).collect();
        let mut journals: Vec<Journal> = Vec::new();
        let mut expected: HashMap<(usize, usize), Expected> = HashMap::new();

        for (n, p) in payments.iter().enumerate() {
            let m = &merchants[p.merchant];
            let cur = currency(p.currency);
            let money = |minor| Money::new(minor, cur).expect("non-negative");
            let amount = money(p.amount);
            let pay_id = PaymentId::generate();
            let list = pick_version(&lists, at(n)).expect("one list in force");
            let fee = list
                .fee(wallet(p.wallet), amount)
                .expect("fee computes")
                .unwrap_or_else(|| Fee::zero(cur));
            let (ref_percent, ref_fixed) = reference_fee(&rates, p);
            prop_assert_eq!(fee.percent_part().minor(), ref_percent);
            prop_assert_eq!(fee.fixed_part().minor(), ref_fixed);
            let codepay = money(p.amount * p.codepay_permille / 1000);
            let e = expected.entry((p.merchant, p.currency)).or_default();
            e.codepay_fees += codepay.minor();
            journals.extend(ledger::postings::codepay_fee(m, &pay_id, codepay, at(n)).expect("posts"));

            match &p.outcome {
                Outcome::Captured { refunds } => {
                    journals.push(ledger::postings::capture(m, &pay_id, amount, at(n)).expect("posts"));
                    journals.extend(ledger::postings::fee(m, &pay_id, fee.total(), at(n)).expect("posts"));
                    let mut refunded = 0i64;
                    let mut returned = 0i64;
                    for raw in refunds {
                        let remaining = p.amount - refunded;
                        if remaining == 0 {
                            break;
                        }
                        let refund = 1 + i64::try_from(*raw % remaining.unsigned_abs()).expect("fits");
                        let give_back = fee_return_for_cumulative(&fee, amount, money(refunded), money(refund))
                            .expect("within the payment");
                        let ref_id = RefundId::generate();
                        journals.push(ledger::postings::refund(m, &ref_id, money(refund), at(n)).expect("posts"));
                        journals.extend(ledger::postings::fee_return(m, &ref_id, give_back, at(n)).expect("posts"));
                        refunded += refund;
                        returned += give_back.minor();
                        prop_assert!(returned <= fee.percent_part().minor(), "returns exceed the percentage part");
                    }
                    // Telescoping: all returns together are the share of the total refunded.
                    let ref_returned = half_up(i128::from(ref_percent) * i128::from(refunded), i128::from(p.amount));
                    prop_assert_eq!(returned, ref_returned);
                    if refunded == p.amount {
                        prop_assert_eq!(returned, ref_percent, "a full refund gives the whole percentage part back");
                    }
                    e.gross += p.amount;
                    e.fees += ref_percent + ref_fixed;
                    e.refunds += refunded;
                    e.fee_returns += ref_returned;
                }
                Outcome::LateSuccess => {
                    journals.push(ledger::postings::late_success_refund(m, &pay_id, amount, at(n)).expect("posts"));
                    e.gross += p.amount;
                    e.refunds += p.amount;
                }
                Outcome::Reversed => {
                    journals.push(ledger::postings::capture(m, &pay_id, amount, at(n)).expect("posts"));
                    journals.extend(ledger::postings::fee(m, &pay_id, fee.total(), at(n)).expect("posts"));
                    journals.push(ledger::postings::reversal(m, &pay_id, amount, fee.total(), at(n)).expect("posts"));
                }
            }
        }
        for (n, (merchant, cur, amount)) in adjustments.iter().enumerate() {
            let j = ledger::postings::adjustment(
                &merchants[*merchant], &format!("adj-{n}"), currency(*cur), *amount, "test", at(n),
            ).expect("posts");
            journals.push(j);
            expected.entry((*merchant, *cur)).or_default().adjustments += amount;
        }

        for j in &journals {
            assert_balanced(j);
        }
        let balances = Balances::from_journals(&journals).expect("no overflow");
        for c in 0..CURRENCIES.len() {
            let cur = currency(c);
            let mut clearing = 0;
            let mut fee_revenue = 0;
            let mut adjusted = 0;
            for (mi, m) in merchants.iter().enumerate() {
                let e = expected.get(&(mi, c)).copied().unwrap_or_default();
                prop_assert_eq!(balances.merchant_net(m, cur), e.merchant_net(), "merchant {} in {}", mi, cur);
                clearing += e.gross - e.refunds - e.codepay_fees;
                fee_revenue += e.fees - e.fee_returns;
                adjusted += e.adjustments;
            }
            prop_assert_eq!(balances.balance(&Account::GatewayClearing, cur), clearing);
            prop_assert_eq!(balances.balance(&Account::PlatformFeeRevenue, cur), fee_revenue);
            prop_assert_eq!(balances.balance(&Account::PlatformAdjustments, cur), adjusted);
            prop_assert_eq!(balances.trial_difference(cur), 0);
        }
    }

    #[test]
    fn statement_totals_are_the_sums_of_their_lines(
        raw in prop::collection::vec((0u8..3, 1i64..1_000_000_000_000, 0i64..1_000_000_000, any::<bool>()), 0..50),
    ) {
        let lines: Vec<StatementLine> = raw
            .iter()
            .enumerate()
            .map(|(n, (kind, a, b, negative))| match kind {
                0 => StatementLine::payment(format!("pay_{n}"), at(n), *a, *b),
                1 => StatementLine::refund(format!("ref_{n}"), at(n), *a, *b),
                _ => StatementLine::adjustment(format!("adj_{n}"), at(n), if *negative { -a } else { *a }),
            })
            .collect::<Result<_, _>>()
            .expect("valid lines");
        let totals = StatementTotals::from_lines(&lines).expect("no overflow");
        let sum = |f: fn(&StatementLine) -> i64| lines.iter().map(f).sum::<i64>();
        let count = |k| u64::try_from(lines.iter().filter(|l| l.kind == k).count()).expect("fits");
        prop_assert_eq!(totals.count_payments, count(LineKind::Payment));
        prop_assert_eq!(totals.count_refunds, count(LineKind::Refund));
        prop_assert_eq!(totals.gross, sum(|l| l.gross));
        prop_assert_eq!(totals.refunds, sum(|l| l.refund));
        prop_assert_eq!(totals.fees, sum(|l| l.fee));
        prop_assert_eq!(totals.fee_returns, sum(|l| l.fee_return));
        prop_assert_eq!(totals.adjustments, sum(|l| l.adjustment));
        prop_assert_eq!(totals.net, sum(|l| l.net));

        // The CSV carries the same numbers: its net_minor column adds up to the total.
        let csv = ledger::csv::render(Currency::from_code("USD").expect("known"), &lines);
        let net_minor: i64 = csv
            .split_terminator("\r\n")
            .skip(1)
            .map(|record| record.rsplit(',').next().expect("a field").parse::<i64>().expect("integer"))
            .sum();
        prop_assert_eq!(net_minor, totals.net);
    }
}
