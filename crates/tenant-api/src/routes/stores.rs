//! `/v1/merchants/{id}/stores` and `/v1/stores/{id}`: a merchant's stores, each one CodePay
//! `store_no` sent with every order taken there. Operators manage any merchant's; a merchant
//! manages its own with `stores:write` (`stores:read` to list and read). A credential bound to a
//! store or terminal reads only its own store and changes none; another merchant's store is a
//! 404. The terminals of a store are in [`super::terminals`]; this module mounts both.

use super::list::{List, page_limit};
use crate::accounts::MerchantRecord;
use crate::audit::Audit;
use crate::auth::{Access, Principal};
use crate::error::{Error, Result};
use crate::locations::{self, StorePatch, StoreRecord};
use crate::{AppState, idempotency, json};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use domain::{MerchantId, StoreId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::params::{IdempotencyKey, MerchantStoresPath, StorePath};
use super::responses::{Authenticated, BadQuery, Conflict, Idempotent, JsonBody, Lookup, Upstream};
use super::schemas::StoreIdText;

/// Reading stores and terminals.
pub const READ: &str = "stores:read";
/// Creating and changing them.
pub const WRITE: &str = "stores:write";

/// A store's CodePay identity.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreCodepay {
    /// CodePay `store_no`: 1 to 32 letters, digits, `_` or `-`, unique per merchant (sandbox:
    /// assigned when omitted).
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,32}$")]
    pub store_no: Option<String>,
}

/// `POST /v1/merchants/{id}/stores` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStoreRequest {
    /// Display name, 1 to 100 characters.
    #[schema(schema_with = super::schemas::location_name)]
    pub name: String,
    /// CodePay identity (`store_no` required outside sandbox mode).
    pub codepay: Option<StoreCodepay>,
    /// Free-text address, up to 200 characters.
    #[schema(schema_with = super::schemas::store_address)]
    pub address: Option<String>,
    /// IANA time zone name such as `Asia/Hong_Kong` (checked for its shape: `UTC` or
    /// `Area/Location`); informational.
    #[schema(schema_with = super::schemas::store_timezone)]
    pub timezone: Option<String>,
    /// Whether payments may name it (default true).
    pub enabled: Option<bool>,
}

/// `PATCH /v1/stores/{id}` body; omitted fields stay (`store_no` never changes).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateStoreRequest {
    /// New name.
    #[schema(schema_with = super::schemas::location_name_update)]
    pub name: Option<String>,
    /// New address (`null` clears it).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(schema_with = super::schemas::store_address)]
    pub address: Option<Option<String>>,
    /// New time zone (`null` clears it).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(schema_with = super::schemas::store_timezone)]
    pub timezone: Option<Option<String>>,
    /// Enable or disable (a disabled store takes no new payment; its history stays).
    pub enabled: Option<bool>,
}

/// A store.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoreObject {
    /// `store_…`.
    pub id: String,
    /// Always `store`.
    pub object: &'static str,
    /// Owner.
    pub merchant_id: String,
    /// Display name.
    pub name: String,
    /// CodePay identity.
    pub codepay: StoreCodepay,
    /// Address.
    pub address: Option<String>,
    /// Time zone.
    pub timezone: Option<String>,
    /// Whether payments may name it.
    pub enabled: bool,
    /// Creation.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<&StoreRecord> for StoreObject {
    fn from(s: &StoreRecord) -> Self {
        Self {
            id: s.id.to_string(),
            object: "store",
            merchant_id: s.merchant_id.to_string(),
            name: s.name.clone(),
            codepay: StoreCodepay {
                store_no: Some(s.store_no.clone()),
            },
            address: s.address.clone(),
            timezone: s.timezone.clone(),
            enabled: s.enabled,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// Cursor of the store list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// 1 … 100 (default 10).
    #[param(minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<usize>,
    /// Cursor: a store id from the previous page.
    #[param(value_type = StoreIdText, inline, required = false)]
    pub starting_after: Option<String>,
}

pub(crate) fn nullable<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A display name: 1 to 100 characters, trimmed.
pub(crate) fn check_name(name: &str) -> Result<String> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 100 {
        return Err(Error::invalid(
            "parameter_invalid",
            "name must be 1 to 100 characters",
            Some("name"),
        ));
    }
    Ok(n.to_owned())
}

fn check_address(address: Option<String>) -> Result<Option<String>> {
    match address.map(|a| a.trim().to_owned()) {
        Some(a) if a.is_empty() || a.chars().count() > 200 => Err(Error::invalid(
            "parameter_invalid",
            "address must be 1 to 200 characters",
            Some("address"),
        )),
        other => Ok(other),
    }
}

fn check_timezone(tz: Option<String>) -> Result<Option<String>> {
    match tz {
        Some(t) if !locations::is_timezone_name(&t) => Err(Error::invalid(
            "parameter_invalid",
            "timezone must be an IANA time zone name such as `Asia/Hong_Kong` or `UTC`",
            Some("timezone"),
        )),
        other => Ok(other),
    }
}

/// The caller allowed to change stores and terminals with `scope`: an operator, or a merchant
/// credential holding it and bound to nothing (403 `credential_bound` otherwise).
pub(crate) fn manager(principal: &Principal) -> Result<Access> {
    let access = principal.access(WRITE)?;
    if let Access::Merchant(c) = &access {
        c.unbound("managing stores and terminals")?;
    }
    Ok(access)
}

/// Whether `access` may read store `s`: its merchant's, and a bound credential's own store.
pub(crate) fn sees_store(access: &Access, s: &StoreRecord) -> bool {
    match access {
        Access::Operator => true,
        Access::Merchant(c) => {
            c.id == s.merchant_id && c.binding.as_ref().is_none_or(|b| b.store_id == s.id)
        }
    }
}

/// The store `id` as `access` may see it (a 404 otherwise, whatever the reason).
pub(crate) async fn visible_store(
    state: &AppState,
    access: &Access,
    id: &str,
) -> Result<StoreRecord> {
    let missing = || Error::not_found("store", id);
    let sid = StoreId::parse(id).map_err(|_| missing())?;
    locations::locations(state)?
        .store(&sid)
        .await?
        .filter(|s| sees_store(access, s))
        .ok_or_else(missing)
}

/// The merchant `id` of the path as `access` may act on it: any for an operator, its own for a
/// merchant (another one is a 404, like a missing one).
async fn path_merchant(state: &AppState, access: &Access, id: &str) -> Result<MerchantRecord> {
    let missing = || Error::not_found("merchant", id);
    let mid = MerchantId::parse(id).map_err(|_| missing())?;
    if let Access::Merchant(c) = access
        && c.id != mid
    {
        return Err(missing());
    }
    state.accounts.merchant(&mid).await?.ok_or_else(missing)
}

/// The idempotency scope of a create by `principal`: an operator key's own, or the merchant's.
pub(crate) fn create_scope(principal: &Principal, access: &Access, what: &str) -> String {
    match access {
        Access::Operator => format!("operator:{}", principal.key_id()),
        Access::Merchant(c) => format!("merchant:{}:{what}", c.id),
    }
}

/// The checked cursor of a list of `what` ids.
pub(crate) fn cursor<T>(
    value: Option<&str>,
    what: &str,
    parse: impl Fn(&str) -> std::result::Result<T, domain::DomainError>,
) -> Result<Option<T>> {
    value.map(parse).transpose().map_err(|_| {
        Error::invalid(
            "parameter_invalid",
            format!("starting_after must be a {what} id"),
            Some("starting_after"),
        )
    })
}

/// Create a store for a merchant (operators: any merchant; merchants: their own, with
/// `stores:write`). In sandbox mode it is registered with the simulator, which assigns the
/// `store_no` when none is given.
#[utoipa::path(post, path = "/v1/merchants/{id}/stores", tag = "stores",
    request_body = CreateStoreRequest, params(MerchantStoresPath, IdempotencyKey),
    responses((status = 201, description = "The store.", body = StoreObject), Authenticated,
        Lookup, JsonBody, Idempotent, Conflict, Upstream),
    security(("bearer" = [])))]
pub async fn create_store(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let access = manager(&principal)?;
    let merchant = path_merchant(&state, &access, &path).await?;
    let b = json::parse::<CreateStoreRequest>(&body)?;
    let name = check_name(&b.name)?;
    let given = b.codepay.and_then(|c| c.store_no);
    if let Some(no) = &given {
        locations::check_codepay_identifier(no, "codepay.store_no")?;
    }
    let address = check_address(b.address)?;
    let timezone = check_timezone(b.timezone)?;
    let locations = locations::locations(&state)?;
    let scope = create_scope(&principal, &access, "stores");
    idempotency::run_resuming(state.idempotency.as_ref(), &req, &scope, &body, |_| async {
        let store_no = match (given, &state.sandbox) {
            (given, Some(sandbox)) => {
                sandbox
                    .register_store(&merchant.merchant_no, given.as_deref())
                    .await?
            }
            (Some(no), None) => no,
            (None, None) => {
                return Err(Error::invalid(
                    "parameter_missing",
                    "codepay.store_no is required outside sandbox mode",
                    Some("codepay.store_no"),
                ));
            }
        };
        let now = Utc::now();
        let store = StoreRecord {
            id: StoreId::generate(),
            merchant_id: merchant.id.clone(),
            name,
            store_no,
            address,
            timezone,
            enabled: b.enabled.unwrap_or(true),
            created_at: now,
            updated_at: now,
        };
        locations
            .insert_store(&store, &Audit::by(&principal, "store.create"))
            .await?;
        Ok((
            StatusCode::CREATED,
            json::value(&StoreObject::from(&store))?,
        ))
    })
    .await
}

/// List a merchant's stores, newest first (a store- or terminal-bound credential sees its own
/// store only).
#[utoipa::path(get, path = "/v1/merchants/{id}/stores", tag = "stores",
    params(MerchantStoresPath, PageQuery),
    responses((status = 200, description = "A page of stores.", body = List<StoreObject>),
        Authenticated, Lookup, BadQuery),
    security(("bearer" = [])))]
pub async fn list_stores(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse> {
    let access = principal.access(READ)?;
    let merchant = path_merchant(&state, &access, &path).await?;
    let limit = page_limit(query.limit)?;
    let after = cursor(query.starting_after.as_deref(), "store", StoreId::parse)?;
    let locations = locations::locations(&state)?;
    if let Access::Merchant(c) = &access
        && let Some(b) = &c.binding
    {
        // A bound credential's list is its one store.
        let own = locations
            .store(&b.store_id)
            .await?
            .filter(|s| after.as_ref().is_none_or(|a| s.id < *a));
        let data = own.iter().map(StoreObject::from).collect();
        return Ok(List::new(data, false).respond());
    }
    let (rows, has_more) = locations
        .list_stores(&merchant.id, after.as_ref(), limit)
        .await?;
    Ok(List::new(rows.iter().map(StoreObject::from).collect(), has_more).respond())
}

/// Read a store.
#[utoipa::path(get, path = "/v1/stores/{id}", tag = "stores",
    params(StorePath),
    responses((status = 200, description = "The store.", body = StoreObject), Authenticated,
        Lookup),
    security(("bearer" = [])))]
pub async fn get_store(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let access = principal.access(READ)?;
    let s = visible_store(&state, &access, &path).await?;
    Ok(HttpResponse::Ok().json(StoreObject::from(&s)))
}

/// Change a store's name, address, time zone or enabled flag (its `store_no` never changes).
#[utoipa::path(patch, path = "/v1/stores/{id}", tag = "stores",
    request_body = UpdateStoreRequest, params(StorePath),
    responses((status = 200, description = "The store as updated.", body = StoreObject),
        Authenticated, JsonBody, Lookup),
    security(("bearer" = [])))]
pub async fn update_store(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let access = manager(&principal)?;
    let s = visible_store(&state, &access, &path).await?;
    let b = json::parse::<UpdateStoreRequest>(&body)?;
    let patch = StorePatch {
        name: b.name.as_deref().map(check_name).transpose()?,
        address: b.address.map(check_address).transpose()?,
        timezone: b.timezone.map(check_timezone).transpose()?,
        enabled: b.enabled,
    };
    let s = locations::locations(&state)?
        .update_store(&s.id, &patch, &Audit::by(&principal, "store.update"))
        .await?;
    Ok(HttpResponse::Ok().json(StoreObject::from(&s)))
}

crate::routes::route_table! {
    /// Mounts the store and terminal routes inside the `/v1` scope.
    pub fn configure, ROUTES;
    post "/merchants/{id}/stores" => create_store,
    get "/merchants/{id}/stores" => list_stores,
    get "/stores/{id}" => get_store,
    patch "/stores/{id}" => update_store,
    post "/stores/{id}/terminals" => super::terminals::create_terminal,
    get "/stores/{id}/terminals" => super::terminals::list_terminals,
    get "/terminals/{id}" => super::terminals::get_terminal,
    patch "/terminals/{id}" => super::terminals::update_terminal,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::schemas::{
        CODEPAY_IDENTIFIER_PATTERN, TIMEZONE_MAX_LEN, TIMEZONE_PATTERN, trimmed_pattern,
    };
    use utoipa::PartialSchema;
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;

    fn matches(pattern: &str, text: &str) -> bool {
        regex::Regex::new(pattern)
            .expect("the pattern compiles")
            .is_match(text)
    }

    /// The `pattern` of `field` in `T`'s derived schema.
    fn field_pattern<T: PartialSchema>(field: &str) -> String {
        let RefOr::T(Schema::Object(object)) = T::schema() else {
            panic!("an object schema");
        };
        match object.properties.get(field) {
            Some(RefOr::T(Schema::Object(f))) => f.pattern.clone().expect("a pattern"),
            _ => panic!("{field} is a string schema"),
        }
    }

    #[test]
    fn the_documented_name_and_address_patterns_are_what_the_checks_accept() {
        let long = |n: usize| "x".repeat(n);
        let samples = [
            String::new(),
            " ".to_owned(),
            "\t\n\u{0B}\u{0C}\r".to_owned(),
            "a".to_owned(),
            " a ".to_owned(),
            "a b".to_owned(),
            "\u{3000}shop\u{85}".to_owned(),
            "\u{1C}".to_owned(),
            "a\u{0}b".to_owned(),
            long(99),
            long(100),
            format!("  {}\t", long(100)),
            long(101),
            format!(" {} ", long(101)),
            "é".repeat(100),
            "é".repeat(101),
            long(199),
            long(200),
            format!("\n{}\n", long(200)),
            long(201),
        ];
        for s in &samples {
            assert_eq!(
                matches(&trimmed_pattern(100), s),
                check_name(s).is_ok(),
                "name {s:?}"
            );
            assert_eq!(
                matches(&trimmed_pattern(200), s),
                check_address(Some(s.clone())).is_ok(),
                "address {s:?}"
            );
        }
    }

    #[test]
    fn the_documented_timezone_and_identifier_patterns_are_what_the_checks_accept() {
        for tz in [
            "UTC",
            "utc",
            "UTC/X",
            "Asia/Hong_Kong",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+8",
            "America/Port-au-Prince",
            "A/B/C/D",
            "Asia/",
            "/Asia",
            "asia/hong_kong",
            "Europe/../etc",
            "Hong Kong",
            &format!("A/B{}", "b".repeat(61)),
            &format!("A/B{}", "b".repeat(62)),
        ] {
            let documented =
                matches(TIMEZONE_PATTERN, tz) && tz.chars().count() <= TIMEZONE_MAX_LEN;
            assert_eq!(
                documented,
                check_timezone(Some(tz.to_owned())).is_ok(),
                "{tz:?}"
            );
        }
        for no in ["S-01_a", "", "a b", "ü", &"x".repeat(32), &"x".repeat(33)] {
            assert_eq!(
                matches(CODEPAY_IDENTIFIER_PATTERN, no),
                locations::check_codepay_identifier(no, "codepay.store_no").is_ok(),
                "{no:?}"
            );
        }
        assert_eq!(
            field_pattern::<StoreCodepay>("store_no"),
            CODEPAY_IDENTIFIER_PATTERN
        );
        assert_eq!(
            field_pattern::<super::super::terminals::TerminalCodepay>("terminal_sn"),
            CODEPAY_IDENTIFIER_PATTERN
        );
    }
}
