//! The envelope every collection `GET` answers with, and the `limit` rule those lists share.

use crate::error::{Error, Result};
use actix_web::HttpResponse;
use serde::Serialize;
use utoipa::ToSchema;

/// A page of objects.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T> {
    /// Always `list`.
    pub object: &'static str,
    /// The page, newest first.
    pub data: Vec<T>,
    /// More after the last one.
    pub has_more: bool,
}

impl<T: Serialize> List<T> {
    /// A page of `data`; `has_more` says whether more follow it.
    pub fn new(data: Vec<T>, has_more: bool) -> Self {
        Self {
            object: "list",
            data,
            has_more,
        }
    }

    /// A whole collection in one page.
    pub fn all(data: Vec<T>) -> Self {
        Self::new(data, false)
    }

    /// The 200 response carrying this page.
    pub fn respond(self) -> HttpResponse {
        HttpResponse::Ok().json(self)
    }
}

/// The `limit` query parameter of paged lists: 1 … 100, 10 when absent.
pub fn page_limit(limit: Option<usize>) -> Result<usize> {
    let limit = limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(Error::invalid(
            "parameter_invalid",
            "limit must be between 1 and 100",
            Some("limit"),
        ));
    }
    Ok(limit)
}

/// Rows read with one more than `limit` (the extra one only tells that more follow): the page
/// and whether more follow it.
pub fn split_page<R>(mut rows: Vec<R>, limit: usize) -> (Vec<R>, bool) {
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    (rows, has_more)
}
