//! Repositories: thin, typed functions over one table each, taking `&mut DbConnection`.
//!
//! Every tenant-owned lookup takes the `MerchantId`, so another merchant's id is "not found".

pub mod api_keys;
pub mod gateway_accounts;
pub mod merchants;
