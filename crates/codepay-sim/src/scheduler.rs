//! The timer loop: fires due jobs on the scheduling clock, so time scale and clock jumps apply
//! to every gateway-side delay at once.

use crate::ledger::Job;
use crate::sim::{Inner, Simulator};
use crate::{notify, ops, refunds};
use std::sync::Weak;
use std::time::Duration;

/// Longest sleep between checks, so the loop notices when the simulator has been dropped.
const MAX_IDLE: Duration = Duration::from_secs(2);

pub(crate) async fn run(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let sim = Simulator { inner };
        let now_virtual = sim.inner.clock.virtual_ms();
        let (due, next) = sim.inner.state.lock().ledger.take_due(now_virtual);
        let fired = !due.is_empty();
        for job in due {
            fire(&sim, job);
        }
        if fired {
            sim.changed();
        }
        let wait = next
            .map(|d| sim.inner.clock.real_until(d))
            .unwrap_or(MAX_IDLE)
            .min(MAX_IDLE);
        let woken = sim.inner.wake.notified();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = woken => {}
        }
    }
}

fn fire(sim: &Simulator, job: Job) {
    let now_ms = sim.inner.clock.now_ms();
    let now_virtual = sim.inner.clock.virtual_ms();
    match job {
        Job::Notify(n) => {
            tokio::spawn(notify::deliver(sim.inner.clone(), n));
        }
        Job::Expire { trans_no } => {
            let mut st = sim.inner.state.lock();
            ops::expire_if_due(sim, &mut st, &trans_no, now_virtual, now_ms);
        }
        Job::FinishPin { trans_no, succeed } => {
            let mut st = sim.inner.state.lock();
            let still_paying = st
                .ledger
                .orders
                .get(&trans_no)
                .is_some_and(|o| o.trans_status() == domain::TransStatus::InProgress);
            // A revoked order is already closed: the PIN arriving late changes nothing.
            if still_paying {
                let res = if succeed {
                    ops::settle_sale(sim, &mut st, &trans_no, now_ms)
                } else {
                    ops::fail_sale(
                        sim,
                        &mut st,
                        &trans_no,
                        ("PIN_FAILED", "the customer did not confirm the payment"),
                        now_ms,
                    )
                };
                if let Err(e) = res {
                    tracing::warn!(%trans_no, error = %e, "codepay-sim: PIN outcome not applied");
                }
            }
        }
        Job::SettleRefund { trans_no, fails } => {
            let mut st = sim.inner.state.lock();
            refunds::settle(sim, &mut st, &trans_no, fails, now_ms);
        }
        Job::ReleaseHeld { id } => {
            let mut st = sim.inner.state.lock();
            notify::release_held(sim, &mut st, Some(&id));
        }
    }
}
