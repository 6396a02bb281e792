//! Pagination of the `*/list` methods: opaque cursors, one page of a
//! catalog list, and [`Listing`], what the four list results
//! (`tools/list`, `resources/list`, `resources/templates/list`,
//! `prompts/list`) have in common, so that one handler serves them all
//! (`WardServer::list`).
//!
//! A cursor is an offset into the catalog snapshot the request reads, so
//! a page costs one slice copy and no state is kept between pages.

use base64::Engine as _;
use rmcp::model::{
    CacheScope, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, Prompt, Resource, ResourceTemplate, Tool,
};
use rmcp::ErrorData;

use crate::backend::Catalog;

/// One `*/list` result type: which catalog list it pages and how a page of
/// it is built.
pub(super) trait Listing: Sized {
    /// What the list holds.
    type Item: Clone;
    /// The method that asks for it, for the request's span.
    const METHOD: &'static str;
    /// The catalog's list this method pages.
    fn items(catalog: &Catalog) -> &[Self::Item];
    /// The result holding one page, its next cursor and its cache hints.
    fn page(
        items: Vec<Self::Item>,
        next_cursor: Option<String>,
        hints: (Option<u64>, Option<CacheScope>),
    ) -> Self;
}

macro_rules! listing {
    ($result:ty, $item:ty, $method:literal, $list:ident) => {
        impl Listing for $result {
            type Item = $item;
            const METHOD: &'static str = $method;

            fn items(catalog: &Catalog) -> &[$item] {
                &catalog.$list
            }

            fn page(
                items: Vec<$item>,
                next_cursor: Option<String>,
                (ttl_ms, cache_scope): (Option<u64>, Option<CacheScope>),
            ) -> Self {
                let mut result = Self::with_all_items(items);
                result.next_cursor = next_cursor;
                result.ttl_ms = ttl_ms;
                result.cache_scope = cache_scope;
                result
            }
        }
    };
}

listing!(ListToolsResult, Tool, "tools/list", tools);
listing!(ListResourcesResult, Resource, "resources/list", resources);
listing!(
    ListResourceTemplatesResult,
    ResourceTemplate,
    "resources/templates/list",
    resource_templates
);
listing!(ListPromptsResult, Prompt, "prompts/list", prompts);
/// Cursor encoding: an opaque token to clients, an offset to us. The prefix
/// lets a cursor from some other server (or a stale format) be rejected
/// instead of silently misread.
const CURSOR_PREFIX: &str = "ward:1:";

fn encode_cursor(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{offset}"))
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    std::str::from_utf8(&bytes)
        .ok()?
        .strip_prefix(CURSOR_PREFIX)?
        .parse()
        .ok()
}

/// One page of `items` starting at `cursor`, and the cursor of the next page.
///
/// A cursor that ward did not issue is -32602. A cursor past the end (the
/// catalog shrank between pages) is an empty last page, not an error: the
/// client did nothing wrong. Pages index the snapshot each request reads, so
/// a catalog swap between two pages can shift items by the number added or
/// removed; clients hear about that through `list_changed`.
pub(super) fn page<T: Clone>(
    items: &[T],
    params: Option<&PaginatedRequestParams>,
    page_size: usize,
) -> Result<(Vec<T>, Option<String>), ErrorData> {
    let start = match params.and_then(|params| params.cursor.as_deref()) {
        None => 0,
        Some(cursor) => decode_cursor(cursor).ok_or_else(|| {
            ErrorData::invalid_params(
                "invalid cursor: pass back a nextCursor from an earlier result",
                Some(serde_json::json!({ "cursor": cursor })),
            )
        })?,
    };
    let start = start.min(items.len());
    let end = start.saturating_add(page_size).min(items.len());
    let next = (end < items.len()).then(|| encode_cursor(end));
    Ok((items[start..end].to_vec(), next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let items: Vec<u32> = (0..5).collect();
        let (first, next) = page(&items, None, 2).unwrap();
        assert_eq!(first, [0, 1]);
        let params = PaginatedRequestParams::default().with_cursor(next);
        let (second, next) = page(&items, Some(&params), 2).unwrap();
        assert_eq!(second, [2, 3]);
        let params = PaginatedRequestParams::default().with_cursor(next);
        let (last, next) = page(&items, Some(&params), 2).unwrap();
        assert_eq!(last, [4]);
        assert!(next.is_none());

        for bad in ["", "!!!", "d2FyZDoxOng", &encode_cursor(1)[1..]] {
            let params = PaginatedRequestParams::default().with_cursor(Some(bad.to_owned()));
            let error = page(&items, Some(&params), 2).unwrap_err();
            assert_eq!(error.code, rmcp::model::ErrorCode::INVALID_PARAMS, "{bad}");
        }
        // Past the end (the catalog shrank): an empty last page.
        let params = PaginatedRequestParams::default().with_cursor(Some(encode_cursor(99)));
        assert_eq!(page(&items, Some(&params), 2).unwrap(), (vec![], None));
    }
}
