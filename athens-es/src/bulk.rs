//! Bulk requests: the NDJSON body of a batch of versioned operations, and the classification of the
//! engine's answer into one [`WriteOutcome`] per operation.
//!
//! Every action carries `version` and `version_type: external` (both engines, since 7.0): the engine
//! applies an operation only if its version is greater than the one it holds for the document, a
//! deletion's version included (kept for `index.gc_deletes`).

use std::io::Write;

use athens_core::{IndexError, IndexOp, WriteOutcome};
use serde::Deserialize;
use serde_json::Value;

use crate::wire::IndexedProject;

/// The longest reason kept for a refused or retryable operation.
const MAX_REASON_CHARS: usize = 500;

/// Error types that refuse a document for good: a retry sends the same bytes and meets the same
/// refusal, so the document is dead-lettered. Every other refusal (429, 5xx, a closed index during
/// maintenance, a 403 from a security plugin, a read-only block after a full disk, a type this list
/// does not know) is retried with backoff, because dead-lettering acknowledges the change: a
/// transient refusal taken for a permanent one would lose the document for good.
const PERMANENT_KINDS: &[&str] = &[
    // The document does not fit the mapping: a field of the wrong type, an unknown field under
    // `dynamic: strict`, a date out of range.
    "mapper_parsing_exception",
    "strict_dynamic_mapping_exception",
    "document_parsing_exception",
    "mapper_exception",
    // A term beyond Lucene's limit ("immense term"), too many fields, a value the engine refuses.
    "illegal_argument_exception",
    // The document's JSON itself cannot be read.
    "x_content_parse_exception",
    "json_parse_exception",
    "not_x_content_exception",
];

/// Status of an operation refused because the document alone is larger than the engine accepts.
const TOO_LARGE: u16 = 413;

/// The NDJSON body of a `_bulk` request for `ops`, byte for byte what [`crate::EsIndex`] sends: to
/// send the same documents to the engine without Athens, for example to measure its raw ceiling.
pub fn bulk_body(ops: &[IndexOp]) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::new();
    encode(ops, &mut out)?;
    Ok(out)
}

/// Appends the NDJSON of `ops` to `out`, for a request to `POST /<index>/_bulk` (the index is in the
/// path, not repeated on every action). Documents are serialised straight into `out`.
pub(crate) fn encode(ops: &[IndexOp], out: &mut Vec<u8>) -> serde_json::Result<()> {
    for op in ops {
        match op {
            IndexOp::Upsert { document, version } => {
                writeln!(
                    out,
                    r#"{{"index":{{"_id":"{}","version":{},"version_type":"external"}}}}"#,
                    document.id, version.0
                )
                .map_err(serde_json::Error::io)?;
                serde_json::to_writer(&mut *out, &IndexedProject::from(document))?;
                out.push(b'\n');
            }
            IndexOp::Delete { id, version } => {
                writeln!(
                    out,
                    r#"{{"delete":{{"_id":"{id}","version":{},"version_type":"external"}}}}"#,
                    version.0
                )
                .map_err(serde_json::Error::io)?;
            }
        }
    }
    Ok(())
}

/// The engine's answer to a bulk request that was accepted as a whole (2xx).
#[derive(Debug, Deserialize)]
pub(crate) struct BulkResponse {
    /// Milliseconds the engine spent.
    #[serde(default)]
    pub took: u64,
    /// Whether any item failed; the items are classified one by one whatever it says.
    #[serde(default)]
    pub errors: bool,
    items: Vec<BulkItem>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum BulkItem {
    Index(ItemResult),
    Create(ItemResult),
    Update(ItemResult),
    Delete(ItemResult),
}

#[derive(Debug, Deserialize)]
struct ItemResult {
    status: u16,
    #[serde(default)]
    error: Option<Value>,
}

/// Takes the answer to the trailing update of [`crate::fence`] off `response`: fails with `NotFound`
/// when the engine refused it for want of the write alias (the index is gone).
pub(crate) fn without_fence(mut response: BulkResponse) -> Result<BulkResponse, IndexError> {
    match response.items.pop() {
        Some(BulkItem::Update(item)) if error_kind(&item) == "index_not_found_exception" => {
            Err(IndexError::not_found(describe(&item)))
        }
        Some(BulkItem::Update(_)) => Ok(response),
        _ => Err(IndexError::invalid(
            "bulk answer lacks the answer to its trailing update",
        )),
    }
}

/// Turns a bulk answer into one outcome per operation, in order.
///
/// - 2xx → `Applied`; a delete of an absent document (404 without error) → `Applied`, since the engine
///   still records the deletion's version;
/// - 409 `version_conflict_engine_exception` → `Superseded`;
/// - the [`PERMANENT_KINDS`] (mapping and parsing errors, immense terms) and 413 → `Rejected`;
/// - anything else (429, 5xx, closed index, security refusal, blocks, unknown types) → `Retryable`,
///   marked as unrecognised when it is not a known transient status, so the logs say why it waits;
/// - `index_not_found_exception` fails the whole call with `NotFound`: the target index is gone.
pub(crate) fn outcomes(
    ops: &[IndexOp],
    response: BulkResponse,
) -> Result<Vec<WriteOutcome>, IndexError> {
    if response.items.len() != ops.len() {
        return Err(IndexError::invalid(format!(
            "bulk answer has {} items for {} operations",
            response.items.len(),
            ops.len()
        )));
    }
    ops.iter()
        .zip(response.items)
        .map(|(op, item)| {
            let (is_delete, item) = match item {
                BulkItem::Delete(item) => (true, item),
                BulkItem::Index(item) | BulkItem::Create(item) | BulkItem::Update(item) => {
                    (false, item)
                }
            };
            if is_delete != matches!(op, IndexOp::Delete { .. }) {
                return Err(IndexError::invalid(format!(
                    "bulk answer for project {} is for another kind of operation",
                    op.project()
                )));
            }
            classify(is_delete, &item)
        })
        .collect()
}

fn classify(is_delete: bool, item: &ItemResult) -> Result<WriteOutcome, IndexError> {
    let status = item.status;
    let kind = error_kind(item);
    if (200..300).contains(&status) || (is_delete && status == 404 && item.error.is_none()) {
        return Ok(WriteOutcome::Applied);
    }
    if kind == "index_not_found_exception" {
        return Err(IndexError::not_found(describe(item)));
    }
    if status == 409 && kind == "version_conflict_engine_exception" {
        return Ok(WriteOutcome::Superseded);
    }
    if PERMANENT_KINDS.contains(&kind) || (status == TOO_LARGE && item.error.is_none()) {
        return Ok(WriteOutcome::Rejected(describe(item)));
    }
    if status == 429 || status >= 500 {
        return Ok(WriteOutcome::Retryable(describe(item)));
    }
    Ok(WriteOutcome::Retryable(format!(
        "refusal not known to be permanent, retrying: {}",
        describe(item)
    )))
}

/// The error type of an item, empty when it has none.
fn error_kind(item: &ItemResult) -> &str {
    item.error
        .as_ref()
        .and_then(|error| error.get("type"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `type: reason (caused by: type: reason)`, bounded.
fn describe(item: &ItemResult) -> String {
    let mut text = match &item.error {
        None => format!("status {}", item.status),
        Some(error) => {
            let mut text = cause(error);
            if let Some(caused_by) = error.get("caused_by") {
                text.push_str(" (caused by: ");
                text.push_str(&cause(caused_by));
                text.push(')');
            }
            text
        }
    };
    if let Some((cut, _)) = text.char_indices().nth(MAX_REASON_CHARS) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

fn cause(error: &Value) -> String {
    let field = |name| error.get(name).and_then(Value::as_str).unwrap_or_default();
    match error {
        Value::String(reason) => reason.clone(),
        _ => format!("{}: {}", field("type"), field("reason")),
    }
}

#[cfg(test)]
mod tests {
    use athens_core::testing::sample_document;
    use athens_core::{ProjectId, Version};

    use super::*;

    fn upsert(id: i64) -> IndexOp {
        IndexOp::Upsert {
            document: sample_document(id, "slug"),
            version: Version(7),
        }
    }

    fn delete(id: i64) -> IndexOp {
        IndexOp::Delete {
            id: ProjectId(id),
            version: Version(8),
        }
    }

    fn classify_all(ops: &[IndexOp], answer: Value) -> Result<Vec<WriteOutcome>, IndexError> {
        outcomes(ops, serde_json::from_value(answer).unwrap())
    }

    fn error(kind: &str, reason: &str) -> Value {
        serde_json::json!({"type": kind, "reason": reason})
    }

    #[test]
    fn encodes_one_action_line_and_one_source_line_per_upsert() {
        let mut out = Vec::new();
        encode(&[upsert(1), delete(2)], &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(text.ends_with('\n'));
        let action: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(
            action,
            serde_json::json!({"index": {"_id": "1", "version": 7, "version_type": "external"}})
        );
        let source: Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(source["slug"], "slug");
        let action: Value = serde_json::from_str(lines[2]).unwrap();
        assert_eq!(action["delete"]["_id"], "2");
        assert_eq!(action["delete"]["version"], 8);
    }

    #[test]
    fn classifies_every_item_of_an_answer_with_errors() {
        let ops = [
            upsert(1),
            upsert(2),
            upsert(3),
            upsert(4),
            upsert(5),
            upsert(6),
            delete(7),
            delete(8),
            upsert(9),
        ];
        let answer = serde_json::json!({
            "took": 3,
            "errors": true,
            "items": [
                {"index": {"_id": "1", "status": 201, "result": "created"}},
                {"index": {"_id": "2", "status": 200, "result": "updated"}},
                {"index": {"_id": "3", "status": 409, "error": error("version_conflict_engine_exception", "[3]: version conflict, current version [10] is higher or equal to the one provided [7]")}},
                {"index": {"_id": "4", "status": 429, "error": error("es_rejected_execution_exception", "rejected execution of coordinating operation")}},
                {"index": {"_id": "5", "status": 503, "error": error("unavailable_shards_exception", "primary shard is not active")}},
                {"index": {"_id": "6", "status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [created_at] of type [date]", "caused_by": error("illegal_argument_exception", "failed to parse date field [+10000-01-01T00:00:00Z]")}}},
                {"delete": {"_id": "7", "status": 200, "result": "deleted"}},
                {"delete": {"_id": "8", "status": 404, "result": "not_found"}},
                {"index": {"_id": "9", "status": 403, "error": error("cluster_block_exception", "index [x] blocked by: [FORBIDDEN/12/index read-only / allow delete (api)];")}}
            ]
        });
        let outcomes = classify_all(&ops, answer).unwrap();
        assert_eq!(outcomes[0], WriteOutcome::Applied);
        assert_eq!(outcomes[1], WriteOutcome::Applied);
        assert_eq!(outcomes[2], WriteOutcome::Superseded);
        assert!(
            matches!(&outcomes[3], WriteOutcome::Retryable(r) if r.starts_with("es_rejected_execution_exception"))
        );
        assert!(matches!(&outcomes[4], WriteOutcome::Retryable(r) if r.contains("primary shard")));
        assert!(
            matches!(&outcomes[5], WriteOutcome::Rejected(r) if r.starts_with("mapper_parsing_exception") && r.contains("caused by: illegal_argument_exception"))
        );
        assert_eq!(outcomes[6], WriteOutcome::Applied);
        assert_eq!(outcomes[7], WriteOutcome::Applied);
        assert!(matches!(&outcomes[8], WriteOutcome::Retryable(_)));
    }

    #[test]
    fn refusals_not_known_to_be_permanent_are_retried_not_dead_lettered() {
        let ops = [upsert(1), upsert(2), upsert(3), delete(4)];
        let answer = serde_json::json!({
            "errors": true,
            "items": [
                {"index": {"_id": "1", "status": 400, "error": error("index_closed_exception", "closed")}},
                {"index": {"_id": "2", "status": 403, "error": error("security_exception", "action [indices:data/write/bulk[s]] is unauthorized for user [athens]")}},
                {"index": {"_id": "3", "status": 400, "error": error("some_future_exception", "never seen before")}},
                {"delete": {"_id": "4", "status": 403, "error": error("cluster_block_exception", "index [x] blocked by: [FORBIDDEN/8/index write (api)];")}}
            ]
        });
        let outcomes = classify_all(&ops, answer).unwrap();
        for (outcome, kind) in outcomes.iter().zip([
            "index_closed_exception",
            "security_exception",
            "some_future_exception",
            "cluster_block_exception",
        ]) {
            assert!(
                matches!(outcome, WriteOutcome::Retryable(reason) if reason.starts_with("refusal not known to be permanent") && reason.contains(kind)),
                "{outcome:?}"
            );
        }
    }

    #[test]
    fn every_permanent_kind_is_dead_lettered() {
        for kind in PERMANENT_KINDS {
            let answer = serde_json::json!({
                "errors": true,
                "items": [{"index": {"_id": "1", "status": 400, "error": error(kind, "refused")}}]
            });
            let outcomes = classify_all(&[upsert(1)], answer).unwrap();
            assert!(
                matches!(&outcomes[0], WriteOutcome::Rejected(reason) if reason.starts_with(kind)),
                "{kind}: {outcomes:?}"
            );
        }
    }

    #[test]
    fn classifies_by_status_when_the_answer_claims_no_errors() {
        let answer = serde_json::json!({
            "errors": false,
            "items": [{"index": {"_id": "1", "status": 500}}, {"index": {"_id": "2", "status": 413}}]
        });
        let outcomes = classify_all(&[upsert(1), upsert(2)], answer).unwrap();
        assert!(matches!(&outcomes[0], WriteOutcome::Retryable(r) if r == "status 500"));
        assert!(matches!(&outcomes[1], WriteOutcome::Rejected(_)));
    }

    #[test]
    fn a_missing_index_fails_the_whole_call() {
        let answer = serde_json::json!({
            "errors": true,
            "items": [{"delete": {"_id": "1", "status": 404, "error": error("index_not_found_exception", "no such index [x]")}}]
        });
        assert!(matches!(
            classify_all(&[delete(1)], answer),
            Err(IndexError::NotFound { .. })
        ));
    }

    #[test]
    fn the_trailing_update_is_taken_off_and_fails_the_call_without_its_alias() {
        let missing = serde_json::json!({"update": {"_id": "athens-fence", "status": 404, "error": error("document_missing_exception", "document missing")}});
        let answer = serde_json::json!({"errors": true, "items": [
            {"delete": {"_id": "1", "status": 200, "result": "deleted"}}, missing]});
        let response = without_fence(serde_json::from_value(answer).unwrap()).unwrap();
        assert_eq!(
            outcomes(&[delete(1)], response).unwrap(),
            vec![WriteOutcome::Applied]
        );
        let gone = serde_json::json!({"update": {"_id": "athens-fence", "status": 404, "error": error("index_not_found_exception", "no such index [x-writes-v1] and [require_alias] request flag is [true] and [x-writes-v1] is not an alias")}});
        let answer = serde_json::json!({"errors": true, "items": [
            {"delete": {"_id": "1", "status": 404, "error": error("index_not_found_exception", "no such index [x-writes-v1]")}}, gone]});
        assert!(matches!(
            without_fence(serde_json::from_value(answer).unwrap()),
            Err(IndexError::NotFound { message: reason, .. }) if reason.contains("require_alias")
        ));
        let short = serde_json::json!({"errors": false, "items": [{"delete": {"status": 200}}]});
        assert!(matches!(
            without_fence(serde_json::from_value(short).unwrap()),
            Err(IndexError::Invalid { .. })
        ));
    }

    #[test]
    fn an_answer_that_does_not_match_the_request_is_invalid() {
        let short = serde_json::json!({"errors": false, "items": []});
        assert!(matches!(
            classify_all(&[upsert(1)], short),
            Err(IndexError::Invalid { .. })
        ));
        let swapped = serde_json::json!({"errors": false, "items": [{"delete": {"status": 200}}]});
        assert!(matches!(
            classify_all(&[upsert(1)], swapped),
            Err(IndexError::Invalid { .. })
        ));
    }

    #[test]
    fn long_reasons_are_bounded() {
        let answer = serde_json::json!({
            "errors": true,
            "items": [{"index": {"status": 400, "error": error("illegal_argument_exception", &"é".repeat(2000))}}]
        });
        let outcomes = classify_all(&[upsert(1)], answer).unwrap();
        let WriteOutcome::Rejected(reason) = &outcomes[0] else {
            panic!("expected a rejection, got {outcomes:?}");
        };
        assert_eq!(reason.chars().count(), MAX_REASON_CHARS + 1);
    }
}
