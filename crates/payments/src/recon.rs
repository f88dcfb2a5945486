//! Reconciliation of a business day with CodePay (docs/books.md).
//!
//! Every payment and refund created in the day's window is queried at CodePay
//! (`order.query` / `order.refund.query`, through the engine's own upstream, in batches of
//! [`ReconConfig::batch`], each gateway account paced to [`ReconConfig::per_account_per_second`]
//! queries) and compared: status, amount and currency, and CodePay's fee. A difference is a
//! *break*:
//!
//! | kind | when | repaired by the run |
//! |---|---|---|
//! | `status_mismatch` | the statuses disagree | when CodePay's status is final and payfac's is not (or a success came after payfac closed the payment): applied through the normal settle path, as a notification would have been |
//! | `missing_upstream` | CodePay has no such order but payfac holds it succeeded | never |
//! | `amount_mismatch` | CodePay reports another amount or currency for a paid order | never |
//! | `fee_mismatch` | CodePay's fee differs from the one booked with the success | never |
//!
//! A repair goes through [`Engine::apply_payment_answer`] / [`Engine::apply_refund_answer`],
//! so it moves the state with its event and its journals exactly as the notification that was
//! lost would have, and its entries go into the next statement. Everything else stays `open`
//! for an operator; a later run that finds the two sides agreeing marks it `resolved`.

use crate::Engine;
use crate::books::Books;
use crate::error::{PaymentError, Result};
use crate::model::{Payment, Refund};
use crate::ports::{Outcome, UpstreamOrder, is_order_not_found};
use chrono::{DateTime, NaiveDate, Utc};
use domain::{PaymentId, PaymentStatus, RefundId, RefundStatus, TransStatus};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use store::reconciliation::{self as repo, Break, Run};

/// How a reconciliation run talks to CodePay.
#[derive(Clone, Debug)]
pub struct ReconConfig {
    /// Payments (then refunds) read and checked per batch.
    pub batch: usize,
    /// Queries per second per gateway account, at most.
    pub per_account_per_second: u32,
}

impl Default for ReconConfig {
    fn default() -> Self {
        Self {
            batch: 50,
            per_account_per_second: 10,
        }
    }
}

/// A break kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakKind {
    /// CodePay has no order payfac holds succeeded.
    MissingUpstream,
    /// The statuses disagree.
    StatusMismatch,
    /// CodePay reports another amount or currency.
    AmountMismatch,
    /// CodePay's fee differs from the booked one.
    FeeMismatch,
}

impl BreakKind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakKind::MissingUpstream => "missing_upstream",
            BreakKind::StatusMismatch => "status_mismatch",
            BreakKind::AmountMismatch => "amount_mismatch",
            BreakKind::FeeMismatch => "fee_mismatch",
        }
    }
}

/// One difference found about one subject.
struct Finding {
    kind: BreakKind,
    ours: Value,
    theirs: Value,
    repaired: bool,
    detail: Option<String>,
}

/// The result of checking one payment or refund: what differs, or `None` when CodePay gave no
/// usable answer (the subject is left for the next run).
type Checked = Option<Vec<Finding>>;

/// Spaces the queries of each gateway account.
struct Pacer {
    interval: Duration,
    next: HashMap<String, tokio::time::Instant>,
}

impl Pacer {
    fn new(per_second: u32) -> Self {
        Self {
            interval: Duration::from_secs(1) / per_second.max(1),
            next: HashMap::new(),
        }
    }

    async fn wait(&mut self, account: Option<&domain::GatewayAccountId>) {
        let key = account.map_or_else(String::new, |a| a.to_string());
        let now = tokio::time::Instant::now();
        let at = self.next.get(&key).copied().unwrap_or(now).max(now);
        tokio::time::sleep_until(at).await;
        self.next.insert(key, at + self.interval);
    }
}

fn unavailable(e: store::StoreError) -> PaymentError {
    PaymentError::Unavailable(e.to_string())
}

fn their_values(order: &UpstreamOrder) -> Value {
    json!({
        "trans_status": order.status.code(),
        "amount": order.amount.map(|a| a.minor()),
        "currency": order.amount.map(|a| a.currency().code()),
        "trans_fee_c": order.fee.map(|f| f.minor()),
    })
}

fn not_found_values(code: &str) -> Value {
    json!({ "found": false, "code": code })
}

fn payment_values(p: &Payment) -> Value {
    json!({
        "status": p.status.as_str(),
        "amount": p.amount.minor(),
        "currency": p.amount.currency().code(),
        "codepay_fee": p.fee.as_ref().and_then(|f| f.codepay_fee).map(|f| f.minor()),
    })
}

fn refund_values(r: &Refund) -> Value {
    json!({
        "status": r.status.as_str(),
        "amount": r.amount.minor(),
        "currency": r.amount.currency().code(),
    })
}

/// Whether payfac's payment and CodePay's order say the same. A canceled payment that CodePay
/// holds paid agrees once its automatic late-success refund exists (the late-success rule).
fn payment_agrees(p: &Payment, theirs: TransStatus, late_refund: bool) -> bool {
    use PaymentStatus as P;
    use TransStatus as T;
    match (theirs, p.status) {
        (T::Succeeded, P::Succeeded) => true,
        (T::Succeeded, P::Canceled) => late_refund,
        (T::Failed | T::Canceled, P::Failed | P::Canceled) => true,
        (T::Created | T::InProgress | T::Unknown(_), P::Pending | P::Processing) => true,
        _ => false,
    }
}

fn refund_agrees(r: &Refund, theirs: TransStatus) -> bool {
    theirs.refund_status() == r.status
}

impl Engine {
    /// Reconciles business date `date` (see the module doc) and returns the run, recorded with
    /// its counts; breaks are recorded as they are found.
    pub async fn reconcile_day(
        &self,
        books: &Books,
        date: NaiveDate,
        cfg: &ReconConfig,
    ) -> Result<Run> {
        let window = books
            .cutoff()
            .window(date)
            .map_err(|e| PaymentError::invalid("parameter_invalid", e.to_string(), Some("date")))?;
        let now = self.now();
        if window.start > now {
            return Err(PaymentError::invalid(
                "date_in_future",
                format!("business date {date} has not started yet"),
                Some("date"),
            ));
        }
        let mut run = Run {
            id: format!("rcn_{}", ulid::Ulid::new()),
            business_date: date.to_string(),
            started_at: now.timestamp_millis(),
            finished_at: None,
            checked: 0,
            breaks_found: 0,
            repaired: 0,
        };
        let started = run.clone();
        books
            .db()
            .write(move |c| repo::start_run(c, &started))
            .await
            .map_err(unavailable)?;
        let (from, to) = (
            window.start.timestamp_millis(),
            window.end.timestamp_millis(),
        );
        let batch = i64::try_from(cfg.batch.max(1)).unwrap_or(50);
        let mut pacer = Pacer::new(cfg.per_account_per_second);
        let mut after: Option<String> = None;
        loop {
            let cursor = after.clone();
            let ids = books
                .db()
                .read(move |c| {
                    repo::payment_ids_created_between(c, from, to, cursor.as_deref(), batch)
                })
                .await
                .map_err(unavailable)?;
            let Some(last) = ids.last().cloned() else {
                break;
            };
            for id in ids {
                let Ok(id) = PaymentId::parse(&id) else {
                    continue;
                };
                let Some(p) = self.store.payment(&id).await? else {
                    continue;
                };
                pacer.wait(p.gateway_account_id.as_ref()).await;
                if let Some(found) = self.check_payment(&p).await? {
                    let subject = Subject::payment(&p);
                    self.record(books, &mut run, &subject, found).await?;
                }
            }
            after = Some(last);
        }
        let mut after: Option<String> = None;
        loop {
            let cursor = after.clone();
            let ids = books
                .db()
                .read(move |c| {
                    repo::refund_ids_created_between(c, from, to, cursor.as_deref(), batch)
                })
                .await
                .map_err(unavailable)?;
            let Some(last) = ids.last().cloned() else {
                break;
            };
            for id in ids {
                let Ok(id) = RefundId::parse(&id) else {
                    continue;
                };
                let Some(r) = self.store.refund(&id).await? else {
                    continue;
                };
                pacer.wait(r.gateway_account_id.as_ref()).await;
                if let Some(found) = self.check_refund(&r).await? {
                    let subject = Subject::refund(&r);
                    self.record(books, &mut run, &subject, found).await?;
                }
            }
            after = Some(last);
        }
        run.finished_at = Some(self.now().timestamp_millis());
        let finished = run.clone();
        books
            .db()
            .write(move |c| repo::finish_run(c, &finished))
            .await
            .map_err(unavailable)?;
        tracing::info!(date = %run.business_date, checked = run.checked, breaks = run.breaks_found,
            repaired = run.repaired, "reconciliation run done");
        Ok(run)
    }

    /// Compares one payment with CodePay's order, repairing what is safe.
    async fn check_payment(&self, p: &Payment) -> Result<Checked> {
        let asked = self
            .upstream
            .query(&crate::upstream_merchant(p), &p.merchant_order_no)
            .await;
        let order = match asked {
            Outcome::Success(order) => order,
            Outcome::Declined { code, .. } if is_order_not_found(&code) => {
                let found = (p.status == PaymentStatus::Succeeded).then(|| Finding {
                    kind: BreakKind::MissingUpstream,
                    ours: payment_values(p),
                    theirs: not_found_values(&code),
                    repaired: false,
                    detail: Some("CodePay has no such order".to_owned()),
                });
                return Ok(Some(found.into_iter().collect()));
            }
            Outcome::Declined { code, msg } => {
                tracing::warn!(payment_id = %p.id, %code, %msg, "reconciliation query refused; checked next run");
                return Ok(None);
            }
            Outcome::Unknown { reason } => {
                tracing::warn!(payment_id = %p.id, %reason, "reconciliation query unanswered; checked next run");
                return Ok(None);
            }
        };
        let mut found = Vec::new();
        let theirs = their_values(&order);
        let late_refund = self.automatic_refund_of(p).await?.is_some();
        let mut now = p.clone();
        if !payment_agrees(p, order.status, late_refund) {
            // Safe: CodePay's final word where payfac has none yet (a lost notification), or
            // a success after payfac's close (the late-success rule refunds it).
            let safe = order.status.is_final()
                && (!p.status.is_final()
                    || (p.status == PaymentStatus::Canceled
                        && order.status == TransStatus::Succeeded));
            let mut detail = None;
            if safe {
                now = self.apply_payment_answer(&p.id, &order, None).await?;
                if !now.status.is_final() && now.closed_by_us {
                    detail = Some("payfac is closing this order; its close settles it".to_owned());
                }
            }
            let late_refund = self.automatic_refund_of(&now).await?.is_some();
            found.push(Finding {
                kind: BreakKind::StatusMismatch,
                ours: payment_values(p),
                theirs: theirs.clone(),
                repaired: safe && payment_agrees(&now, order.status, late_refund),
                detail,
            });
        }
        if order.status == TransStatus::Succeeded && order.amount.is_some_and(|a| a != p.amount) {
            found.push(Finding {
                kind: BreakKind::AmountMismatch,
                ours: payment_values(p),
                theirs: theirs.clone(),
                repaired: false,
                detail: None,
            });
        }
        let booked = now.fee.as_ref().and_then(|f| f.codepay_fee);
        if order.status == TransStatus::Succeeded
            && now.status == PaymentStatus::Succeeded
            && let Some(fee) = order.fee
            && booked != Some(fee)
        {
            found.push(Finding {
                kind: BreakKind::FeeMismatch,
                ours: payment_values(&now),
                theirs,
                repaired: false,
                detail: Some("the booked CodePay fee differs from CodePay's".to_owned()),
            });
        }
        Ok(Some(found))
    }

    /// Compares one refund with CodePay's refund order, repairing what is safe.
    async fn check_refund(&self, r: &Refund) -> Result<Checked> {
        let Some(p) = self.store.payment(&r.payment_id).await? else {
            return Ok(None);
        };
        let asked = self
            .upstream
            .query_refund(&crate::upstream_merchant(&p), &r.merchant_order_no)
            .await;
        let order = match asked {
            Outcome::Success(order) => order,
            Outcome::Declined { code, .. } if is_order_not_found(&code) => {
                let found = (r.status == RefundStatus::Succeeded).then(|| Finding {
                    kind: BreakKind::MissingUpstream,
                    ours: refund_values(r),
                    theirs: not_found_values(&code),
                    repaired: false,
                    detail: Some("CodePay has no such refund".to_owned()),
                });
                return Ok(Some(found.into_iter().collect()));
            }
            Outcome::Declined { .. } | Outcome::Unknown { .. } => return Ok(None),
        };
        let mut found = Vec::new();
        let theirs = their_values(&order);
        if !refund_agrees(r, order.status) {
            let safe = order.status.is_final() && !r.status.is_final();
            let now = if safe {
                self.apply_refund_answer(&r.id, &order).await?
            } else {
                r.clone()
            };
            found.push(Finding {
                kind: BreakKind::StatusMismatch,
                ours: refund_values(r),
                theirs: theirs.clone(),
                repaired: safe && refund_agrees(&now, order.status),
                detail: None,
            });
        }
        if order.status == TransStatus::Succeeded && order.amount.is_some_and(|a| a != r.amount) {
            found.push(Finding {
                kind: BreakKind::AmountMismatch,
                ours: refund_values(r),
                theirs,
                repaired: false,
                detail: None,
            });
        }
        Ok(Some(found))
    }

    /// Records a subject's findings in one transaction: each as a break (open or repaired),
    /// and its other open breaks as resolved.
    async fn record(
        &self,
        books: &Books,
        run: &mut Run,
        subject: &Subject,
        found: Vec<Finding>,
    ) -> Result<()> {
        run.checked += 1;
        run.breaks_found += i64::try_from(found.len()).unwrap_or(0);
        run.repaired += i64::try_from(found.iter().filter(|f| f.repaired).count()).unwrap_or(0);
        let now = self.now().timestamp_millis();
        let breaks: Vec<Break> = found
            .into_iter()
            .map(|f| Break {
                id: format!("brk_{}", ulid::Ulid::new()),
                run_id: run.id.clone(),
                business_date: run.business_date.clone(),
                subject_type: subject.kind.to_owned(),
                subject_id: subject.id.clone(),
                merchant_id: subject.merchant_id.clone(),
                gateway_account_id: subject.gateway_account_id.clone(),
                kind: f.kind.as_str().to_owned(),
                status: if f.repaired {
                    repo::REPAIRED
                } else {
                    repo::OPEN
                }
                .to_owned(),
                ours: f.ours.to_string(),
                theirs: f.theirs.to_string(),
                detail: f.detail,
                created_at: now,
                updated_at: now,
            })
            .collect();
        // A concurrent run may open the same break first (one open break per subject and
        // kind): the retry then brings that one up to date.
        let mut attempts = 0;
        loop {
            let (subject_id, breaks) = (subject.id.clone(), breaks.clone());
            let written = books
                .db()
                .write(move |c| {
                    let open: Vec<&str> = breaks
                        .iter()
                        .filter(|b| b.status == repo::OPEN)
                        .map(|b| b.kind.as_str())
                        .collect();
                    repo::resolve_others(c, &subject_id, &open, now)?;
                    for b in &breaks {
                        repo::record(c, b)?;
                    }
                    Ok(())
                })
                .await;
            attempts += 1;
            match written {
                Err(e) if e.is_conflict() && attempts < 3 => continue,
                other => return other.map_err(unavailable),
            }
        }
    }
}

/// One line of a CodePay statement file (CodePay's own list of a day's orders), as whoever
/// reads the file parses it. Querying finds every order payfac knows; only such a file can
/// show an order payfac never saw (an order placed with payfac's credentials by something
/// else, or one whose create payfac never recorded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementRecord {
    /// CodePay `merchant_no`.
    pub merchant_no: String,
    /// The order's `merchant_order_no` (a payment's or a refund's).
    pub merchant_order_no: String,
    /// CodePay `trans_no`.
    pub trans_no: Option<String>,
    /// CodePay's `trans_status`.
    pub status: TransStatus,
    /// The order's amount.
    pub amount: domain::Money,
    /// CodePay's fee, when the file has one.
    pub fee: Option<domain::Money>,
}

impl Engine {
    /// The seam for importing a CodePay statement file: the records that match no payment and
    /// no refund of payfac, by CodePay merchant and `merchant_order_no`. The orders payfac
    /// knows are compared by [`Engine::reconcile_day`] already; these are what only the file
    /// can reveal, for an operator to look into. A statement file is one gateway account's:
    /// `scope` names it, and only that account's orders are matched.
    pub async fn orders_unknown_to_payfac(
        &self,
        scope: &crate::ports::AccountScope,
        records: &[StatementRecord],
    ) -> Result<Vec<StatementRecord>> {
        let mut unknown = Vec::new();
        for r in records {
            let known = self
                .store
                .payment_by_order_no(scope, &r.merchant_no, &r.merchant_order_no)
                .await?
                .is_some()
                || self
                    .store
                    .refund_by_order_no(scope, &r.merchant_no, &r.merchant_order_no)
                    .await?
                    .is_some();
            if !known {
                unknown.push(r.clone());
            }
        }
        Ok(unknown)
    }
}

/// What a break is about.
struct Subject {
    kind: &'static str,
    id: String,
    merchant_id: String,
    gateway_account_id: Option<String>,
}

impl Subject {
    fn payment(p: &Payment) -> Self {
        Self {
            kind: "payment",
            id: p.id.to_string(),
            merchant_id: p.merchant_id.to_string(),
            gateway_account_id: p.gateway_account_id.as_ref().map(|a| a.to_string()),
        }
    }

    fn refund(r: &Refund) -> Self {
        Self {
            kind: "refund",
            id: r.id.to_string(),
            merchant_id: r.merchant_id.to_string(),
            gateway_account_id: r.gateway_account_id.as_ref().map(|a| a.to_string()),
        }
    }
}

/// When the day that just ended (the business date before the one `now` is in) closes, and
/// when the next close is due: the end of the current business day.
pub fn day_to_close(
    cutoff: &ledger::Cutoff,
    now: DateTime<Utc>,
) -> std::result::Result<(NaiveDate, DateTime<Utc>), ledger::LedgerError> {
    let today = cutoff.business_date(now)?;
    let yesterday = today
        .pred_opt()
        .ok_or(ledger::LedgerError::DateOutOfRange)?;
    Ok((yesterday, cutoff.window(today)?.end))
}
