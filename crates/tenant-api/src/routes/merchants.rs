//! Operator routes: merchants and their API keys.

use super::list::{List, page_limit, split_page};
use crate::AppState;
use crate::accounts::{ApiKeyRecord, MerchantRecord, MerchantStatus};
use crate::audit::Audit;
use crate::auth::{Principal, jwt::ALL_SCOPES, keys};
use crate::error::{Error, Result};
use crate::gateway_accounts::MerchantRouting;
use crate::{idempotency, json};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use domain::{ApiKeyId, Currency, GatewayAccountId, MerchantId, RoutingRule, Wallet};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::params::{IdempotencyKey, MerchantKeyPath, MerchantPath};
use super::responses::{Authenticated, BadQuery, Idempotent, JsonBody, Lookup, Refused, Upstream};
use super::schemas::{
    CreateMerchantBody, CurrencyCode, GatewayAccountIdText, MerchantIdText, ScopeName, StoreIdText,
    TerminalIdText, WalletName,
};

/// CodePay identifiers of a merchant.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodepayIds {
    /// CodePay `merchant_no`: 1 to 32 letters, digits, `_` or `-` (sandbox: assigned when
    /// omitted; required otherwise).
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,32}$")]
    pub merchant_no: Option<String>,
    /// CodePay `store_no`.
    pub store_no: Option<String>,
}

/// `POST /v1/merchants` and `PATCH /v1/merchants/{id}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MerchantRequest {
    /// Display name: 1 to 200 bytes (of UTF-8), not only whitespace.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub name: Option<String>,
    /// CodePay ids.
    #[serde(default, deserialize_with = "crate::json::optional_object")]
    pub codepay: Option<CodepayIds>,
    /// ISO 4217 (default `USD`).
    #[schema(value_type = Option<CurrencyCode>)]
    pub default_currency: Option<String>,
    /// Wallet names; empty means all.
    #[schema(value_type = Option<Vec<WalletName>>)]
    pub allowed_wallets: Option<Vec<String>>,
    /// Per-payment limit in minor units of `default_currency` (payments in another currency
    /// are then refused).
    #[schema(minimum = 1, maximum = 9223372036854775807i64)]
    pub max_amount: Option<i64>,
    /// Contact e-mail.
    pub contact_email: Option<String>,
    /// The operator gateway account (`gwa_…`) this merchant's payments go through unless a
    /// routing rule says otherwise (it must exist: 422 `gateway_account_unknown` otherwise);
    /// `null` clears it (the platform's default account).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<GatewayAccountIdText>)]
    pub gateway_account_id: Option<Option<String>>,
    /// Ordered routing rules (at most 32; the first match wins), replacing the merchant's
    /// rules; `[]` clears them.
    #[schema(max_items = 32)]
    pub routing: Option<Vec<RoutingRuleRequest>>,
}

/// A present field, `null` included (`Some(None)`), as opposed to an absent one (`None`).
fn nullable<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Most routing rules a merchant may have.
pub const MAX_ROUTING_RULES: usize = 32;

/// One routing rule: payments in `currency` (any when absent) with `wallet` (any when absent)
/// go through `gateway_account_id`, which must exist and be enabled.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutingRuleRequest {
    /// ISO 4217 code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<CurrencyCode>)]
    pub currency: Option<String>,
    /// Wallet name (`alipay`, `wechat_pay`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<WalletName>)]
    pub wallet: Option<String>,
    /// The gateway account (`gwa_…`): it must exist and be enabled (422 otherwise).
    #[schema(value_type = GatewayAccountIdText)]
    pub gateway_account_id: String,
}

impl From<&RoutingRule> for RoutingRuleRequest {
    fn from(r: &RoutingRule) -> Self {
        Self {
            currency: r.currency.map(|c| c.code().to_owned()),
            wallet: r.wallet.map(|w| w.name().to_owned()),
            gateway_account_id: r.gateway_account_id.to_string(),
        }
    }
}

/// A merchant as operators see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MerchantObject {
    /// `mer_…`.
    pub id: String,
    /// Always `merchant`.
    pub object: &'static str,
    /// Display name.
    pub name: String,
    /// `active`, `suspended`, `closed`.
    pub status: String,
    /// CodePay ids.
    pub codepay: CodepayIds,
    /// ISO 4217.
    #[schema(value_type = CurrencyCode)]
    pub default_currency: String,
    /// Wallet names (empty: all).
    #[schema(value_type = Vec<WalletName>)]
    pub allowed_wallets: Vec<String>,
    /// Per-payment limit.
    pub max_amount: Option<i64>,
    /// Contact.
    pub contact_email: Option<String>,
    /// The gateway account it names, if any (none: the platform's default account).
    pub gateway_account_id: Option<String>,
    /// Its ordered routing rules (the first match wins, then `gateway_account_id`).
    pub routing: Vec<RoutingRuleRequest>,
    /// Creation.
    pub created_at: DateTime<Utc>,
}

impl From<&MerchantRecord> for MerchantObject {
    fn from(m: &MerchantRecord) -> Self {
        Self {
            id: m.id.to_string(),
            object: "merchant",
            name: m.name.clone(),
            status: m.status.as_str().to_owned(),
            codepay: CodepayIds {
                merchant_no: Some(m.merchant_no.clone()),
                store_no: m.store_no.clone(),
            },
            default_currency: m.default_currency.code().to_owned(),
            allowed_wallets: m
                .allowed_wallets
                .iter()
                .map(|w| w.name().to_owned())
                .collect(),
            max_amount: m.max_amount_minor,
            contact_email: m.contact_email.clone(),
            gateway_account_id: m.gateway_account_id.as_ref().map(|g| g.to_string()),
            routing: m.routing.iter().map(RoutingRuleRequest::from).collect(),
            created_at: m.created_at,
        }
    }
}

/// `POST /v1/merchants/{id}/api-keys` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyRequest {
    /// Free label.
    pub label: Option<String>,
    /// Scopes (default: all).
    #[schema(value_type = Option<Vec<ScopeName>>)]
    pub scopes: Option<Vec<String>>,
    /// Bind the key to this store of the merchant (`store_…`): it acts only there.
    #[schema(value_type = Option<StoreIdText>)]
    pub store_id: Option<String>,
    /// Bind the key to this terminal of the merchant (`term_…`; implies its store).
    #[schema(value_type = Option<TerminalIdText>)]
    pub terminal_id: Option<String>,
}

/// An API key; `secret` appears only in the create response (and never in `Debug`).
#[derive(Serialize, ToSchema)]
pub struct ApiKeyObject {
    /// `key_…`.
    pub id: String,
    /// Always `api_key`.
    pub object: &'static str,
    /// The secret (create response only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The first characters, for recognition.
    pub prefix: String,
    /// Label.
    pub label: Option<String>,
    /// Scopes.
    pub scopes: Vec<String>,
    /// The store the key is bound to (with `terminal_id`: the terminal's store), if any.
    pub store_id: Option<String>,
    /// The terminal the key is bound to, if any.
    pub terminal_id: Option<String>,
    /// Creation.
    pub created_at: DateTime<Utc>,
    /// Revocation time.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it stops working by itself (none: never).
    pub expires_at: Option<DateTime<Utc>>,
    /// When it last authenticated a request (recorded at most once a minute per process).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for ApiKeyObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyObject")
            .field("id", &self.id)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("prefix", &self.prefix)
            .field("label", &self.label)
            .field("scopes", &self.scopes)
            .field("store_id", &self.store_id)
            .field("terminal_id", &self.terminal_id)
            .field("created_at", &self.created_at)
            .field("revoked_at", &self.revoked_at)
            .field("expires_at", &self.expires_at)
            .field("last_used_at", &self.last_used_at)
            .finish()
    }
}

/// The public form of a key; `secret` only in a create response.
/// A key to mint: whose (none for an operator key), its secret's prefix, label, scopes, expiry.
pub(crate) struct NewKey {
    pub(crate) merchant: Option<domain::MerchantId>,
    pub(crate) prefix: &'static str,
    pub(crate) label: Option<String>,
    pub(crate) scopes: Vec<String>,
    pub(crate) expires_at: Option<chrono::DateTime<Utc>>,
    pub(crate) binding: Option<crate::auth::Binding>,
    /// Who mints it, for the audit log.
    pub(crate) audit: crate::audit::Audit,
}

/// Mints a key, stores its hash and answers 201 with its secret (shown in this response only).
pub(crate) async fn issue_key(
    state: &AppState,
    new: NewKey,
) -> Result<(StatusCode, serde_json::Value)> {
    let secret = keys::generate_secret(new.prefix);
    let k = ApiKeyRecord {
        id: ApiKeyId::generate(),
        merchant_id: new.merchant,
        secret_hash: keys::hash_secret(&secret),
        prefix: keys::display_prefix(&secret),
        label: new.label,
        scopes: new.scopes,
        created_at: Utc::now(),
        revoked_at: None,
        expires_at: new.expires_at,
        binding: new.binding,
    };
    state.accounts.insert_api_key(&k, &new.audit).await?;
    Ok((
        StatusCode::CREATED,
        json::value(&key_object(&k, Some(secret)))?,
    ))
}

/// The answer to a revocation: the key as it now is, or 404 when `owner` (a merchant, or none
/// for operator keys) has no such key. A key revoked before is answered as it is: a retried
/// DELETE must not read "no such key" of a key that is listed.
pub(crate) async fn revoked_key(
    state: &AppState,
    revoked: bool,
    key_id: &ApiKeyId,
    owner: Option<&MerchantId>,
) -> Result<HttpResponse> {
    let missing = || Error::not_found("api key", key_id.as_str());
    let k = state.accounts.api_key(key_id).await?.ok_or_else(missing)?;
    if !revoked && (k.merchant_id.as_ref() != owner || k.revoked_at.is_none()) {
        return Err(missing());
    }
    Ok(HttpResponse::Ok().json(key_object(&k, None)))
}

pub(crate) fn key_object(k: &ApiKeyRecord, secret: Option<String>) -> ApiKeyObject {
    ApiKeyObject {
        id: k.id.to_string(),
        object: "api_key",
        secret,
        prefix: k.prefix.clone(),
        label: k.label.clone(),
        scopes: k.scopes.clone(),
        store_id: k.binding.as_ref().map(|b| b.store_id.to_string()),
        terminal_id: k
            .binding
            .as_ref()
            .and_then(|b| b.terminal_id.as_ref())
            .map(ToString::to_string),
        created_at: k.created_at,
        revoked_at: k.revoked_at,
        expires_at: k.expires_at,
        last_used_at: None,
    }
}

/// `keys` as objects with their last use.
pub(crate) async fn key_objects(
    state: &AppState,
    keys: &[ApiKeyRecord],
) -> Result<Vec<ApiKeyObject>> {
    let ids: Vec<ApiKeyId> = keys.iter().map(|k| k.id.clone()).collect();
    let used = state.accounts.api_keys_last_used(&ids).await?;
    Ok(keys
        .iter()
        .map(|k| ApiKeyObject {
            last_used_at: used.get(&k.id).copied(),
            ..key_object(k, None)
        })
        .collect())
}

fn parse_wallets(names: &[String]) -> Result<Vec<Wallet>> {
    names
        .iter()
        .map(|n| {
            Wallet::from_name(n).map_err(|_| {
                Error::invalid(
                    "wallet_unsupported",
                    format!("unknown wallet `{n}`"),
                    Some("allowed_wallets"),
                )
            })
        })
        .collect()
}

fn apply(m: &mut MerchantRecord, b: MerchantRequest) -> Result<()> {
    if let Some(name) = b.name {
        if name.trim().is_empty() || name.len() > 200 {
            return Err(Error::invalid(
                "parameter_invalid",
                "name must be 1 to 200 characters",
                Some("name"),
            ));
        }
        m.name = name;
    }
    if let Some(c) = b.default_currency {
        m.default_currency = Currency::from_code(&c).map_err(|_| {
            Error::invalid(
                "currency_unsupported",
                "unknown currency",
                Some("default_currency"),
            )
        })?;
    }
    if let Some(w) = b.allowed_wallets {
        m.allowed_wallets = parse_wallets(&w)?;
    }
    if let Some(max) = b.max_amount {
        if max <= 0 {
            return Err(Error::invalid(
                "amount_invalid",
                "max_amount must be positive",
                Some("max_amount"),
            ));
        }
        m.max_amount_minor = Some(max);
    }
    if let Some(e) = b.contact_email {
        m.contact_email = Some(e);
    }
    if let Some(c) = b.codepay {
        if let Some(no) = c.merchant_no {
            check_merchant_no(&no)?;
            m.merchant_no = no;
        }
        if c.store_no.is_some() {
            m.store_no = c.store_no;
        }
    }
    Ok(())
}

fn check_merchant_no(no: &str) -> Result<()> {
    if no.is_empty()
        || no.len() > 32
        || !no
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(Error::invalid(
            "parameter_invalid",
            "codepay.merchant_no must be 1 to 32 letters, digits, `_` or `-`",
            Some("codepay.merchant_no"),
        ));
    }
    Ok(())
}

/// A gateway account a merchant request names, as `param`: it must exist (422
/// `gateway_account_unknown` if not) and, with `enabled`, be enabled (422
/// `gateway_account_disabled`).
async fn check_account(
    state: &AppState,
    id: &str,
    param: &str,
    enabled: bool,
) -> Result<GatewayAccountId> {
    let unknown = || {
        Error::unprocessable(
            "gateway_account_unknown",
            format!("no such gateway account: {id}"),
            Some(param),
        )
    };
    let gid = GatewayAccountId::parse(id).map_err(|_| unknown())?;
    let gw = state.accounts.gateway_accounts().ok_or_else(unknown)?;
    let account = gw.get(&gid).await?.ok_or_else(unknown)?;
    if enabled && !account.settings.enabled {
        return Err(Error::unprocessable(
            "gateway_account_disabled",
            format!("gateway account {id} is disabled; enable it before routing payments to it"),
            Some(param),
        ));
    }
    Ok(gid)
}

/// The routing change a merchant request asks for, checked: the merchant's own account must
/// exist; each rule's currency and wallet must be known and its account exist and be enabled.
async fn routing_change(
    state: &AppState,
    account: Option<Option<String>>,
    rules: Option<Vec<RoutingRuleRequest>>,
) -> Result<MerchantRouting> {
    let gateway_account_id = match account {
        None => None,
        Some(None) => Some(None),
        Some(Some(id)) => Some(Some(
            check_account(state, &id, "gateway_account_id", false).await?,
        )),
    };
    let routing = match rules {
        None => None,
        Some(rules) => {
            if rules.len() > MAX_ROUTING_RULES {
                return Err(Error::invalid(
                    "parameter_invalid",
                    format!("routing takes at most {MAX_ROUTING_RULES} rules"),
                    Some("routing"),
                ));
            }
            let mut checked = Vec::with_capacity(rules.len());
            for (i, r) in rules.into_iter().enumerate() {
                let param = |field: &str| format!("routing[{i}].{field}");
                let currency = r
                    .currency
                    .map(|c| {
                        Currency::from_code(&c).map_err(|_| {
                            Error::invalid(
                                "currency_unsupported",
                                format!("unknown currency `{c}`"),
                                Some(&param("currency")),
                            )
                        })
                    })
                    .transpose()?;
                let wallet = r
                    .wallet
                    .map(|w| {
                        Wallet::from_name(&w).map_err(|_| {
                            Error::invalid(
                                "wallet_unsupported",
                                format!("unknown wallet `{w}`"),
                                Some(&param("wallet")),
                            )
                        })
                    })
                    .transpose()?;
                let gateway_account_id = check_account(
                    state,
                    &r.gateway_account_id,
                    &param("gateway_account_id"),
                    true,
                )
                .await?;
                checked.push(RoutingRule {
                    currency,
                    wallet,
                    gateway_account_id,
                });
            }
            Some(checked)
        }
    };
    Ok(MerchantRouting {
        gateway_account_id,
        routing,
    })
}

/// Writes a routing change (with its audit entry) and shows it on `m`; nothing when the
/// request changes no routing.
async fn route(
    state: &AppState,
    principal: &Principal,
    m: &mut MerchantRecord,
    change: MerchantRouting,
) -> Result<()> {
    if change == MerchantRouting::default() {
        return Ok(());
    }
    let gw = super::gateway_accounts::store(state)?;
    gw.route_merchant(&m.id, &change, principal.key_id().as_str())
        .await?;
    if let Some(account) = change.gateway_account_id {
        m.gateway_account_id = account;
    }
    if let Some(rules) = change.routing {
        m.routing = rules;
    }
    Ok(())
}

async fn load(state: &AppState, id: &str) -> Result<MerchantRecord> {
    let mid = MerchantId::parse(id).map_err(|_| Error::not_found("merchant", id))?;
    state
        .accounts
        .merchant(&mid)
        .await?
        .ok_or_else(|| Error::not_found("merchant", id))
}

/// Onboard a merchant.
#[utoipa::path(post, path = "/v1/merchants", tag = "operator",
    request_body = CreateMerchantBody, params(IdempotencyKey),
    responses((status = 201, description = "The merchant.", body = MerchantObject), Authenticated,
        JsonBody, Idempotent, Refused, Upstream),
    security(("bearer" = [])))]
pub async fn create_merchant(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    principal.operator()?;
    let mut b = json::parse::<MerchantRequest>(&body)?;
    if b.name.is_none() {
        return Err(Error::invalid(
            "parameter_missing",
            "missing field `name`",
            Some("name"),
        ));
    }
    let routing = routing_change(&state, b.gateway_account_id.take(), b.routing.take()).await?;
    let scope = format!("operator:{}", principal.key_id());
    idempotency::run_resuming(state.idempotency.as_ref(), &req, &scope, &body, |_| async {
        let given = b.codepay.as_ref().and_then(|c| c.merchant_no.clone());
        let merchant_no = match (given, &state.sandbox) {
            (Some(no), _) => no,
            (None, Some(sandbox)) => {
                sandbox
                    .register_merchant(b.name.as_deref().unwrap_or("merchant"))
                    .await?
            }
            (None, None) => {
                return Err(Error::invalid(
                    "parameter_missing",
                    "codepay.merchant_no is required outside sandbox mode",
                    Some("codepay.merchant_no"),
                ));
            }
        };
        let now = Utc::now();
        let mut m = MerchantRecord {
            id: MerchantId::generate(),
            name: String::new(),
            status: MerchantStatus::Active,
            merchant_no,
            store_no: None,
            default_currency: Currency::from_code("USD")?,
            allowed_wallets: vec![],
            max_amount_minor: None,
            contact_email: None,
            gateway_account_id: None,
            routing: vec![],
            created_at: now,
            updated_at: now,
        };
        check_merchant_no(&m.merchant_no)?;
        apply(&mut m, b)?;
        let audit = Audit::by(&principal, "merchant.create");
        state.accounts.insert_merchant(&m, &audit).await?;
        route(&state, &principal, &mut m, routing).await?;
        Ok((StatusCode::CREATED, json::value(&MerchantObject::from(&m))?))
    })
    .await
}

/// Cursor of `GET /v1/merchants`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MerchantListQuery {
    /// 1 … 100 (default 10).
    #[param(minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<usize>,
    /// A merchant id from the previous page.
    #[param(value_type = MerchantIdText, inline, required = false)]
    pub starting_after: Option<String>,
}

/// List merchants, newest first.
#[utoipa::path(get, path = "/v1/merchants", tag = "operator",
    params(MerchantListQuery),
    responses((status = 200, description = "A page of merchants.", body = List<MerchantObject>),
        Authenticated, BadQuery),
    security(("bearer" = [])))]
pub async fn list_merchants(
    state: web::Data<AppState>,
    principal: Principal,
    q: web::Query<MerchantListQuery>,
) -> Result<HttpResponse> {
    principal.operator()?;
    let limit = page_limit(q.limit)?;
    let after = q
        .starting_after
        .as_deref()
        .map(MerchantId::parse)
        .transpose()
        .map_err(|_| {
            Error::invalid(
                "parameter_invalid",
                "starting_after must be a merchant id",
                Some("starting_after"),
            )
        })?;
    let rows = state
        .accounts
        .list_merchants(after.as_ref(), limit + 1)
        .await?;
    let (rows, has_more) = split_page(rows, limit);
    Ok(List::new(rows.iter().map(MerchantObject::from).collect(), has_more).respond())
}

/// Read a merchant.
#[utoipa::path(get, path = "/v1/merchants/{id}", tag = "operator",
    params(MerchantPath),
    responses((status = 200, description = "The merchant.", body = MerchantObject), Authenticated,
        Lookup),
    security(("bearer" = [])))]
pub async fn get_merchant(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    principal.operator()?;
    let m = load(&state, &path).await?;
    Ok(HttpResponse::Ok().json(MerchantObject::from(&m)))
}

/// Update a merchant.
#[utoipa::path(patch, path = "/v1/merchants/{id}", tag = "operator",
    request_body = MerchantRequest, params(MerchantPath),
    responses((status = 200, description = "The merchant as updated.", body = MerchantObject),
        Authenticated, JsonBody, Lookup, Refused),
    security(("bearer" = [])))]
pub async fn update_merchant(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    principal.operator()?;
    let mut b = json::parse::<MerchantRequest>(&body)?;
    let mut m = load(&state, &path).await?;
    let routing = routing_change(&state, b.gateway_account_id.take(), b.routing.take()).await?;
    apply(&mut m, b)?;
    m.updated_at = Utc::now();
    route(&state, &principal, &mut m, routing).await?;
    // After the routing write: this write empties the process's merchant cache, so the next
    // payment here is routed by the new rules.
    let audit = Audit::by(&principal, "merchant.update");
    state.accounts.update_merchant(&m, &audit).await?;
    Ok(HttpResponse::Ok().json(MerchantObject::from(&m)))
}

async fn set_status(
    state: &AppState,
    principal: &Principal,
    id: &str,
    status: MerchantStatus,
) -> Result<HttpResponse> {
    principal.operator()?;
    let mut m = load(state, id).await?;
    m.status = status;
    m.updated_at = Utc::now();
    let action = match status {
        MerchantStatus::Active => "merchant.activate",
        MerchantStatus::Suspended => "merchant.suspend",
        MerchantStatus::Closed => "merchant.close",
    };
    state
        .accounts
        .update_merchant(&m, &Audit::by(principal, action))
        .await?;
    Ok(HttpResponse::Ok().json(MerchantObject::from(&m)))
}

/// Suspend a merchant (no new payments).
#[utoipa::path(post, path = "/v1/merchants/{id}/suspend", tag = "operator",
    params(MerchantPath),
    responses((status = 200, description = "The merchant, suspended.", body = MerchantObject),
        Authenticated, Lookup),
    security(("bearer" = [])))]
pub async fn suspend_merchant(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    set_status(&state, &principal, &path, MerchantStatus::Suspended).await
}

/// Re-activate a merchant.
#[utoipa::path(post, path = "/v1/merchants/{id}/activate", tag = "operator",
    params(MerchantPath),
    responses((status = 200, description = "The merchant, active.", body = MerchantObject),
        Authenticated, Lookup),
    security(("bearer" = [])))]
pub async fn activate_merchant(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    set_status(&state, &principal, &path, MerchantStatus::Active).await
}

/// Issue a merchant API key (the secret is shown once).
#[utoipa::path(post, path = "/v1/merchants/{id}/api-keys", tag = "operator",
    request_body(content = ref("#/components/schemas/ApiKeyRequest"),
        description = "Optional: an empty body means `{}`."),
    params(MerchantPath, IdempotencyKey),
    responses(
        (status = 201, description = "The key, with its secret (shown this once).",
            body = ApiKeyObject),
        Authenticated, Lookup, JsonBody, Idempotent, Refused),
    security(("bearer" = [])))]
pub async fn create_api_key(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    principal.operator()?;
    let m = load(&state, &path).await?;
    let b: ApiKeyRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ApiKeyRequest::default()
    } else {
        json::parse(&body)?
    };
    let scopes = match b.scopes {
        None => ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        Some(s) => {
            if let Some(bad) = s.iter().find(|x| !ALL_SCOPES.contains(&x.as_str())) {
                return Err(Error::invalid(
                    "parameter_invalid",
                    format!("unknown scope `{bad}`"),
                    Some("scopes"),
                ));
            }
            s
        }
    };
    let binding = super::api_keys::key_binding(
        &state,
        &m.id,
        b.store_id.as_deref(),
        b.terminal_id.as_deref(),
    )
    .await?;
    let scope = format!("operator:{}", principal.key_id());
    idempotency::run_resuming(state.idempotency.as_ref(), &req, &scope, &body, |_| async {
        let new = NewKey {
            merchant: Some(m.id.clone()),
            prefix: keys::MERCHANT_PREFIX,
            label: b.label,
            scopes,
            expires_at: None,
            binding,
            audit: Audit::by(&principal, "api_key.create"),
        };
        issue_key(&state, new).await
    })
    .await
}

/// List a merchant's keys (never their secrets).
#[utoipa::path(get, path = "/v1/merchants/{id}/api-keys", tag = "operator",
    params(MerchantPath),
    responses((status = 200, description = "The merchant's keys.", body = List<ApiKeyObject>),
        Authenticated, Lookup),
    security(("bearer" = [])))]
pub async fn list_api_keys(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    principal.operator()?;
    let m = load(&state, &path).await?;
    let keys = state.accounts.api_keys_of(&m.id).await?;
    Ok(List::all(key_objects(&state, &keys).await?).respond())
}

/// Revoke a key (effective on its next request, tokens it minted included).
#[utoipa::path(delete, path = "/v1/merchants/{id}/api-keys/{key_id}", tag = "operator",
    params(MerchantKeyPath),
    responses((status = 200, description = "The key, revoked.", body = ApiKeyObject), Authenticated,
        Lookup),
    security(("bearer" = [])))]
pub async fn revoke_api_key(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    principal.operator()?;
    let (mid, kid) = path.into_inner();
    let m = load(&state, &mid).await?;
    let key_id = ApiKeyId::parse(&kid).map_err(|_| Error::not_found("api key", kid.as_str()))?;
    let revoked = state
        .accounts
        .revoke_api_key(
            &m.id,
            &key_id,
            Utc::now(),
            &Audit::by(&principal, "api_key.revoke"),
        )
        .await?;
    revoked_key(&state, revoked, &key_id, Some(&m.id)).await
}
