//! Unauthenticated routes: the hosted pay page, its status poll, the CodePay callback, health.

use crate::AppState;
use crate::error::{Error, Result};
use actix_web::{HttpRequest, HttpResponse, web};
use domain::PaymentId;

/// Most rejected callbacks kept (in `upstream_notifications`) per process and minute: enough
/// to see what is being sent, never enough for a flood of forged bodies to fill the database
/// or queue on SQLite's write lock. The rest are only logged.
pub const REJECTED_SAMPLE_PER_MINUTE: u32 = 10;

/// Most bytes of a rejected body kept in its sample (a verified one is kept whole).
pub const REJECTED_SAMPLE_BYTES: usize = 2 * 1024;

/// Whether this rejected callback is one of the minute's sample (process-wide fixed window).
fn sample_rejected() -> bool {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};
    static WINDOW: Mutex<Option<(Instant, u32)>> = Mutex::new(None);
    let mut window = WINDOW.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    let (started, kept) = window.get_or_insert((now, 0));
    if now.duration_since(*started) >= Duration::from_secs(60) {
        (*started, *kept) = (now, 0);
    }
    if *kept < REJECTED_SAMPLE_PER_MINUTE {
        *kept += 1;
        true
    } else {
        false
    }
}

/// `POST /callbacks/codepay/{gateway_account_id}`: the `notify_url` of every order routed
/// through that gateway account. The notification is verified with that account's gateway key,
/// refused when it names another `app_id`, and matches only that account's payments and
/// refunds; otherwise as [`codepay_callback`].
pub async fn codepay_account_callback(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    receive(&state, &req, Some(path.as_str()), &body).await
}

/// `POST /callbacks/codepay`: the `notify_url` of orders created before each gateway account
/// had its own (and of a deployment without accounts). The account is the one whose `app_id`
/// the notification names, else the default account. Verify, record, apply (state change +
/// event in one commit), and only then reply the plain body `success`. Duplicates and stale
/// ones change nothing.
///
/// The route is public, so it is rate-limited per source address (the per-key request rate),
/// and a rejected body is stored only as part of a bounded sample ([`REJECTED_SAMPLE_PER_MINUTE`],
/// truncated to [`REJECTED_SAMPLE_BYTES`]).
pub async fn codepay_callback(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    receive(&state, &req, None, &body).await
}

/// Both callback routes: `account` is the path's gateway account, if any.
async fn receive(
    state: &AppState,
    req: &HttpRequest,
    account: Option<&str>,
    body: &[u8],
) -> Result<HttpResponse> {
    let Some(intake) = &state.notifications else {
        return Err(Error::Unavailable(
            "no notification intake configured".to_owned(),
        ));
    };
    // The peer address, not X-Forwarded-For: a forger chooses that header freely.
    let source = req
        .peer_addr()
        .map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string());
    state
        .rate_limiter
        .check(&format!("callback:{source}"))
        .await?;
    let n = match intake.parse(account, body).await {
        Ok(n) => n,
        Err(reason) => {
            tracing::warn!(%reason, %source, gateway_account_id = account.unwrap_or("-"), "CodePay notification rejected");
            if sample_rejected() {
                let kept = &body[..body.len().min(REJECTED_SAMPLE_BYTES)];
                intake
                    .record(kept, false, &format!("rejected: {reason}"))
                    .await?;
            }
            return Ok(HttpResponse::BadRequest()
                .content_type("text/plain")
                .body("invalid signature"));
        }
    };
    let effect = state.engine.apply_notification(&n).await?;
    intake
        .record(body, n.verified, &format!("{effect:?}"))
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain")
        .body("success"))
}

/// `GET /pay/{id}/status`: the public status of a payment (for the pay page's polling).
pub async fn pay_status(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let p = any_payment(&state, &path).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"id": p.id, "status": p.status.as_str()})))
}

/// A payment by id for the public pages, whoever owns it (the id is the capability).
async fn any_payment(state: &AppState, id: &str) -> Result<::payments::model::Payment> {
    let pid = PaymentId::parse(id).map_err(|_| Error::not_found("payment", id))?;
    state
        .engine
        .store()
        .payment(&pid)
        .await?
        .ok_or_else(|| Error::not_found("payment", id))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// `GET /pay/{id}`: the hosted QR page; it polls its status and flips to "paid".
pub async fn pay_page(state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse> {
    let p = any_payment(&state, &path).await?;
    let qr = match &p.qr_code {
        Some(content) => crate::qr::svg(content)?,
        None => String::new(),
    };
    let html = format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Pay {amount} {currency}</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>body{{font-family:sans-serif;text-align:center;margin-top:2em}}#s{{font-size:1.4em}}.succeeded{{color:green}}.failed,.canceled{{color:#b00}}</style></head>
<body><h1>{amount} {currency}</h1><p>{desc}</p><div id="qr">{qr}</div><p id="s" class="{status}">{status}</p>
<script>
const label={{pending:"Scan to pay",processing:"Processing…",succeeded:"Paid ✔",failed:"Failed",canceled:"Canceled"}};
function show(st){{const e=document.getElementById("s");e.textContent=label[st]||st;e.className=st;if(st!=="pending"&&st!=="processing"){{document.getElementById("qr").style.opacity=0.2;return true}}return false}}
show("{status}");
async function poll(){{try{{const r=await fetch("/pay/{id}/status");const j=await r.json();if(show(j.status))return}}catch(e){{}}setTimeout(poll,1500)}}
setTimeout(poll,1500);
</script></body></html>"#,
        amount = escape(&p.amount.to_major_string()),
        currency = p.amount.currency().code(),
        desc = escape(p.description.as_deref().unwrap_or("")),
        status = p.status.as_str(),
        id = p.id,
    );
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}
