//! A merchant's daily statement in one currency: its lines and their totals.
//!
//! The caller gives one line per payment, refund or adjustment of the business day; this module
//! checks each line against its kind and its own net, keeps only lines inside the day's
//! window, and adds them up with checked integer arithmetic.

use crate::LedgerError;
use crate::cutoff::{Cutoff, Window};
use chrono::{DateTime, NaiveDate, Utc};
use domain::{Currency, MerchantId};

/// What a statement line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineKind {
    /// A captured payment: gross and fee.
    Payment,
    /// A succeeded refund: refund and fee return.
    Refund,
    /// A manual adjustment: a signed amount.
    Adjustment,
}

impl LineKind {
    /// `payment`, `refund` or `adjustment`, as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::Payment => "payment",
            LineKind::Refund => "refund",
            LineKind::Adjustment => "adjustment",
        }
    }
}

/// One transaction of the statement, amounts in minor units of the statement's currency.
///
/// `net = gross − refund − fee + fee_return + adjustment`. Fields that do not belong to the
/// kind are zero; the constructors fill them and compute `net`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementLine {
    /// Payment, refund or adjustment.
    pub kind: LineKind,
    /// The payment's, refund's or adjustment's id.
    pub object_id: String,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Captured amount (payments), `>= 0`.
    pub gross: i64,
    /// Platform fee charged (payments), `>= 0`.
    pub fee: i64,
    /// Fee given back (refunds), `>= 0`.
    pub fee_return: i64,
    /// Refunded amount (refunds), `>= 0`.
    pub refund: i64,
    /// Signed adjustment (adjustments).
    pub adjustment: i64,
    /// What the line adds to the merchant's balance.
    pub net: i64,
}

impl StatementLine {
    /// A payment line: `net = gross − fee`.
    pub fn payment(
        object_id: impl Into<String>,
        occurred_at: DateTime<Utc>,
        gross: i64,
        fee: i64,
    ) -> Result<Self, LedgerError> {
        Self::build(
            LineKind::Payment,
            object_id,
            occurred_at,
            [gross, fee, 0, 0, 0],
        )
    }

    /// A refund line: `net = fee_return − refund`.
    pub fn refund(
        object_id: impl Into<String>,
        occurred_at: DateTime<Utc>,
        refund: i64,
        fee_return: i64,
    ) -> Result<Self, LedgerError> {
        Self::build(
            LineKind::Refund,
            object_id,
            occurred_at,
            [0, 0, fee_return, refund, 0],
        )
    }

    /// An adjustment line: `net = amount`.
    pub fn adjustment(
        object_id: impl Into<String>,
        occurred_at: DateTime<Utc>,
        amount: i64,
    ) -> Result<Self, LedgerError> {
        Self::build(
            LineKind::Adjustment,
            object_id,
            occurred_at,
            [0, 0, 0, 0, amount],
        )
    }

    /// `[gross, fee, fee_return, refund, adjustment]`, net computed and the line checked.
    fn build(
        kind: LineKind,
        object_id: impl Into<String>,
        occurred_at: DateTime<Utc>,
        [gross, fee, fee_return, refund, adjustment]: [i64; 5],
    ) -> Result<Self, LedgerError> {
        let mut line = Self {
            kind,
            object_id: object_id.into(),
            occurred_at,
            gross,
            fee,
            fee_return,
            refund,
            adjustment,
            net: 0,
        };
        line.net = line.computed_net().ok_or(LedgerError::Overflow)?;
        line.check()
            .map_err(|reason| LedgerError::InvalidLine { index: 0, reason })?;
        Ok(line)
    }

    fn computed_net(&self) -> Option<i64> {
        self.gross
            .checked_sub(self.refund)?
            .checked_sub(self.fee)?
            .checked_add(self.fee_return)?
            .checked_add(self.adjustment)
    }

    /// Why the line is inconsistent, if it is.
    fn check(&self) -> Result<(), &'static str> {
        if self.object_id.is_empty() {
            return Err("object_id must not be empty");
        }
        if [self.gross, self.fee, self.fee_return, self.refund]
            .iter()
            .any(|v| *v < 0)
        {
            return Err("gross, fee, fee_return and refund must not be negative");
        }
        let fits = match self.kind {
            LineKind::Payment => {
                self.gross > 0 && self.refund == 0 && self.fee_return == 0 && self.adjustment == 0
            }
            LineKind::Refund => {
                self.refund > 0 && self.gross == 0 && self.fee == 0 && self.adjustment == 0
            }
            LineKind::Adjustment => {
                self.adjustment != 0
                    && self.gross == 0
                    && self.fee == 0
                    && self.refund == 0
                    && self.fee_return == 0
            }
        };
        if !fits {
            return Err(match self.kind {
                LineKind::Payment => "a payment line has a positive gross and only gross and fee",
                LineKind::Refund => {
                    "a refund line has a positive refund and only refund and fee_return"
                }
                LineKind::Adjustment => "an adjustment line has only a non-zero adjustment",
            });
        }
        match self.computed_net() {
            Some(net) if net == self.net => Ok(()),
            Some(_) => Err("net is not gross − refund − fee + fee_return + adjustment"),
            None => Err("amounts overflow"),
        }
    }
}

/// Counts and sums of a statement's lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatementTotals {
    /// Number of payment lines.
    pub count_payments: u64,
    /// Number of refund lines.
    pub count_refunds: u64,
    /// Sum of `gross`.
    pub gross: i64,
    /// Sum of `refund`.
    pub refunds: i64,
    /// Sum of `fee`.
    pub fees: i64,
    /// Sum of `fee_return`.
    pub fee_returns: i64,
    /// Sum of `adjustment`.
    pub adjustments: i64,
    /// `gross − refunds − fees + fee_returns + adjustments` (also the sum of the lines' nets).
    pub net: i64,
}

impl StatementTotals {
    /// Totals of `lines`, each checked first (errors name the line's index).
    pub fn from_lines(lines: &[StatementLine]) -> Result<Self, LedgerError> {
        let mut t = Self::default();
        let add = |sum: i64, v: i64| sum.checked_add(v).ok_or(LedgerError::Overflow);
        for (index, line) in lines.iter().enumerate() {
            line.check()
                .map_err(|reason| LedgerError::InvalidLine { index, reason })?;
            match line.kind {
                LineKind::Payment => t.count_payments += 1,
                LineKind::Refund => t.count_refunds += 1,
                LineKind::Adjustment => {}
            }
            t.gross = add(t.gross, line.gross)?;
            t.refunds = add(t.refunds, line.refund)?;
            t.fees = add(t.fees, line.fee)?;
            t.fee_returns = add(t.fee_returns, line.fee_return)?;
            t.adjustments = add(t.adjustments, line.adjustment)?;
        }
        t.net = t
            .gross
            .checked_sub(t.refunds)
            .and_then(|v| v.checked_sub(t.fees))
            .and_then(|v| v.checked_add(t.fee_returns))
            .and_then(|v| v.checked_add(t.adjustments))
            .ok_or(LedgerError::Overflow)?;
        Ok(t)
    }
}

/// One merchant's statement of one business day in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    merchant_id: MerchantId,
    currency: Currency,
    business_date: NaiveDate,
    window: Window,
    lines: Vec<StatementLine>,
    totals: StatementTotals,
}

impl Statement {
    /// Builds the statement of `business_date` under `cutoff`: every line must have occurred in
    /// that day's window; lines are ordered by time, then id, so the same transactions always
    /// give the same statement (and the same CSV digest).
    pub fn build(
        merchant_id: MerchantId,
        currency: Currency,
        business_date: NaiveDate,
        cutoff: &Cutoff,
        mut lines: Vec<StatementLine>,
    ) -> Result<Self, LedgerError> {
        let window = cutoff.window(business_date)?;
        if let Some(index) = lines.iter().position(|l| !window.contains(l.occurred_at)) {
            return Err(LedgerError::LineOutsideWindow { index });
        }
        let totals = StatementTotals::from_lines(&lines)?;
        lines.sort_by(|a, b| {
            (a.occurred_at, &a.object_id, a.kind.as_str()).cmp(&(
                b.occurred_at,
                &b.object_id,
                b.kind.as_str(),
            ))
        });
        Ok(Self {
            merchant_id,
            currency,
            business_date,
            window,
            lines,
            totals,
        })
    }

    /// The merchant.
    pub fn merchant_id(&self) -> &MerchantId {
        &self.merchant_id
    }

    /// The currency of every amount.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The business date.
    pub fn business_date(&self) -> NaiveDate {
        self.business_date
    }

    /// The business date's `[start, end)` in UTC.
    pub fn window(&self) -> Window {
        self.window
    }

    /// The lines, ordered by time then id.
    pub fn lines(&self) -> &[StatementLine] {
        &self.lines
    }

    /// The totals.
    pub fn totals(&self) -> &StatementTotals {
        &self.totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 5, hour, 0, 0).unwrap()
    }

    #[test]
    fn constructors_compute_net_and_refuse_misfits() {
        let p = StatementLine::payment("pay_1", at(1), 1000, 59).unwrap();
        assert_eq!(p.net, 941);
        let r = StatementLine::refund("ref_1", at(2), 400, 12).unwrap();
        assert_eq!(r.net, -388);
        let a = StatementLine::adjustment("adj_1", at(3), -50).unwrap();
        assert_eq!(a.net, -50);
        assert!(StatementLine::payment("pay_2", at(1), 0, 0).is_err());
        assert!(StatementLine::payment("pay_2", at(1), 10, -1).is_err());
        assert!(StatementLine::refund("ref_2", at(1), 0, 0).is_err());
        assert!(StatementLine::adjustment("adj_2", at(1), 0).is_err());
        assert!(StatementLine::payment("", at(1), 10, 1).is_err());
        assert_eq!(
            StatementLine::adjustment("adj_3", at(1), i64::MIN)
                .unwrap()
                .net,
            i64::MIN
        );
        assert_eq!(
            StatementLine::refund("ref_3", at(1), i64::MAX, 0)
                .unwrap()
                .net,
            -i64::MAX
        );
        assert_eq!(
            StatementLine::payment("pay_3", at(1), i64::MAX, 0)
                .map(|l| l.net)
                .unwrap(),
            i64::MAX
        );
    }

    #[test]
    fn totals_add_up_the_lines() {
        let lines = vec![
            StatementLine::payment("pay_1", at(1), 1000, 59).unwrap(),
            StatementLine::payment("pay_2", at(2), 500, 45).unwrap(),
            StatementLine::refund("ref_1", at(3), 400, 12).unwrap(),
            StatementLine::adjustment("adj_1", at(4), 25).unwrap(),
        ];
        let t = StatementTotals::from_lines(&lines).unwrap();
        assert_eq!(
            t,
            StatementTotals {
                count_payments: 2,
                count_refunds: 1,
                gross: 1500,
                refunds: 400,
                fees: 104,
                fee_returns: 12,
                adjustments: 25,
                net: 1500 - 400 - 104 + 12 + 25,
            }
        );
        assert_eq!(t.net, lines.iter().map(|l| l.net).sum::<i64>());
    }

    #[test]
    fn a_tampered_line_is_refused_by_index() {
        let mut lines = vec![
            StatementLine::payment("pay_1", at(1), 1000, 59).unwrap(),
            StatementLine::payment("pay_2", at(2), 500, 45).unwrap(),
        ];
        lines[1].net += 1;
        assert!(matches!(
            StatementTotals::from_lines(&lines),
            Err(LedgerError::InvalidLine { index: 1, .. })
        ));
        lines[1].net -= 1;
        lines[1].refund = 10;
        lines[1].net -= 10;
        assert!(matches!(
            StatementTotals::from_lines(&lines),
            Err(LedgerError::InvalidLine { index: 1, .. })
        ));
    }

    #[test]
    fn overflowing_totals_are_an_error() {
        let lines = vec![
            StatementLine::payment("pay_1", at(1), i64::MAX, 0).unwrap(),
            StatementLine::payment("pay_2", at(2), 1, 0).unwrap(),
        ];
        assert_eq!(
            StatementTotals::from_lines(&lines),
            Err(LedgerError::Overflow)
        );
    }

    #[test]
    fn a_statement_keeps_to_its_window_and_orders_its_lines() {
        let cutoff = Cutoff::parse("00:00 UTC").unwrap();
        let usd = Currency::from_code("USD").unwrap();
        let day = NaiveDate::from_ymd_opt(2025, 3, 5).unwrap();
        let lines = vec![
            StatementLine::refund("ref_1", at(3), 400, 12).unwrap(),
            StatementLine::payment("pay_1", at(1), 1000, 59).unwrap(),
        ];
        let s = Statement::build(MerchantId::generate(), usd, day, &cutoff, lines.clone()).unwrap();
        assert_eq!(s.lines()[0].object_id, "pay_1");
        assert_eq!(s.totals().net, 1000 - 59 - 400 + 12);

        let late =
            StatementLine::payment("pay_2", at(0) + chrono::Duration::days(1), 1, 0).unwrap();
        let mut outside = lines;
        outside.push(late);
        assert_eq!(
            Statement::build(MerchantId::generate(), usd, day, &cutoff, outside),
            Err(LedgerError::LineOutsideWindow { index: 2 })
        );
    }
}
