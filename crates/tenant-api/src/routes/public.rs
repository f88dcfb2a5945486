//! Unauthenticated routes: the hosted pay page, its status poll, the CodePay callback, health.

use crate::AppState;
use crate::error::{Error, Result};
use actix_web::{HttpResponse, web};
use domain::PaymentId;

/// `POST /callbacks/codepay`: verify, record, apply (state change + event in one commit), and
/// only then reply the plain body `success`. Duplicates and stale ones change nothing.
pub async fn codepay_callback(
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let Some(intake) = &state.notifications else {
        return Err(Error::Unavailable(
            "no notification intake configured".to_owned(),
        ));
    };
    let n = match intake.parse(&body) {
        Ok(n) => n,
        Err(reason) => {
            tracing::warn!(%reason, "CodePay notification rejected");
            intake
                .record(&body, false, &format!("rejected: {reason}"))
                .await?;
            return Ok(HttpResponse::BadRequest()
                .content_type("text/plain")
                .body("invalid signature"));
        }
    };
    let effect = state.engine.apply_notification(&n).await?;
    intake
        .record(&body, n.verified, &format!("{effect:?}"))
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
