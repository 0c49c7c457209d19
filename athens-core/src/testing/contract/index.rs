//! The clauses of the [`SearchIndex`] contract, one function each: versioned writes with
//! per-operation outcomes, deletes that a late older write cannot undo, reads for verify, and atomic
//! publication; and the fencing of writers by claims.
//!
//! Each clause runs on an index whose alias does not exist yet and drops the physical indexes it
//! creates when it passes; [`search_index_contract`] runs them all, in order, on one alias.

use super::{ContractResult, broke, sample_document};
use crate::KeysetPage;
use crate::document::{ProjectDocument, ProjectId};
use crate::error::IndexError;
use crate::index::{IndexName, IndexOp, SearchIndex, WriteOutcome, WriterId};
use crate::source::Version;

fn upsert(document: &ProjectDocument, version: u64) -> IndexOp {
    IndexOp::Upsert {
        document: document.clone(),
        version: Version(version),
    }
}

/// A new physical index for a clause.
async fn fresh(index: &dyn SearchIndex) -> ContractResult<IndexName> {
    index.create_index().await.map_err(broke("create_index"))
}

/// Drops a physical index a clause created.
async fn drop_created(index: &dyn SearchIndex, name: &IndexName) -> ContractResult {
    index.drop_index(name).await.map_err(broke("drop_index"))
}

/// The two documents the writes of the versioning clauses start from.
fn pair() -> (ProjectDocument, ProjectDocument) {
    (
        sample_document(1, "elasticsearch-sync"),
        sample_document(2, "postgres-outbox"),
    )
}

/// Writes `pair()` at version 10; both are new, so both must be applied.
async fn write_new(index: &dyn SearchIndex, target: &IndexName) -> ContractResult {
    let (one, two) = pair();
    let outcomes = index
        .write(target, &[upsert(&one, 10), upsert(&two, 10)])
        .await
        .map_err(broke("write"))?;
    ensure!(
        outcomes == vec![WriteOutcome::Applied, WriteOutcome::Applied],
        "new documents must be applied, got {outcomes:?}"
    );
    Ok(())
}

/// Over [`write_new`]: older and equal versions of document 1 are superseded, a newer one applied.
/// Returns the newer document, the one the index must now hold.
async fn write_versions(
    index: &dyn SearchIndex,
    target: &IndexName,
) -> ContractResult<ProjectDocument> {
    let (one, _) = pair();
    let mut older = one.clone();
    older.name = "older".into();
    let mut newer = one;
    newer.name = "newer".into();
    let outcomes = index
        .write(
            target,
            &[upsert(&older, 5), upsert(&older, 10), upsert(&newer, 11)],
        )
        .await
        .map_err(broke("write"))?;
    ensure!(
        outcomes
            == vec![
                WriteOutcome::Superseded,
                WriteOutcome::Superseded,
                WriteOutcome::Applied
            ],
        "older and equal versions must be superseded, a newer one applied, got {outcomes:?}"
    );
    Ok(newer)
}

/// Over [`write_new`]: a delete of document 2, then a late upsert older than the delete, then a
/// delete of a document that never existed.
async fn write_deletes(index: &dyn SearchIndex, target: &IndexName) -> ContractResult {
    let (_, two) = pair();
    let outcomes = index
        .write(
            target,
            &[
                IndexOp::Delete {
                    id: two.id,
                    version: Version(12),
                },
                upsert(&two, 11),
                IndexOp::Delete {
                    id: ProjectId(3),
                    version: Version(12),
                },
            ],
        )
        .await
        .map_err(broke("write"))?;
    ensure!(
        outcomes[0] == WriteOutcome::Applied && outcomes[1] == WriteOutcome::Superseded,
        "a delete must win over a late older upsert, got {outcomes:?}"
    );
    ensure!(
        matches!(
            outcomes[2],
            WriteOutcome::Applied | WriteOutcome::Superseded
        ),
        "deleting a document that never existed is not an error, got {:?}",
        outcomes[2]
    );
    Ok(())
}

/// Ids 10 to 259 in one batch, which the adapter may split into several requests.
async fn write_many(index: &dyn SearchIndex, target: &IndexName) -> ContractResult {
    let many: Vec<IndexOp> = (10..260)
        .map(|id| upsert(&sample_document(id, &format!("bulk-{id}")), 1))
        .collect();
    let outcomes = index.write(target, &many).await.map_err(broke("write"))?;
    ensure!(
        outcomes.len() == many.len() && outcomes.iter().all(|o| *o == WriteOutcome::Applied),
        "a large batch must be applied item by item"
    );
    Ok(())
}

/// A fresh alias points at no index.
pub async fn fresh_alias_has_no_live_index(index: &dyn SearchIndex) -> ContractResult {
    ensure!(
        index
            .live_index()
            .await
            .map_err(broke("live_index"))?
            .is_none(),
        "a fresh alias must not point at an index"
    );
    Ok(())
}

/// Versioned writes: documents the index does not hold are applied, each outcome in order.
pub async fn new_documents_are_applied(index: &dyn SearchIndex) -> ContractResult {
    let target = fresh(index).await?;
    write_new(index, &target).await?;
    drop_created(index, &target).await
}

/// Versioned writes: a version lower than or equal to the one held is superseded, a greater one
/// applied, within one call.
pub async fn older_and_equal_versions_are_superseded(index: &dyn SearchIndex) -> ContractResult {
    let target = fresh(index).await?;
    write_new(index, &target).await?;
    write_versions(index, &target).await?;
    drop_created(index, &target).await
}

/// Versioned writes: a delete keeps its version, so a late older upsert cannot bring the document
/// back; deleting a document that never existed is not an error.
pub async fn a_delete_wins_over_a_late_older_upsert(index: &dyn SearchIndex) -> ContractResult {
    let target = fresh(index).await?;
    write_new(index, &target).await?;
    write_deletes(index, &target).await?;
    drop_created(index, &target).await
}

/// Reads for verify: after the versioning clauses' writes, `get`, `count` and `ids_page` show
/// exactly the newest stored documents.
pub async fn reads_show_the_newest_stored_documents(index: &dyn SearchIndex) -> ContractResult {
    let target = fresh(index).await?;
    write_new(index, &target).await?;
    let newer = write_versions(index, &target).await?;
    write_deletes(index, &target).await?;
    index
        .finish_bulk_load(&target)
        .await
        .map_err(broke("finish_bulk_load"))?;
    index.refresh(&target).await.map_err(broke("refresh"))?;
    let stored = index
        .get(&target, &[ProjectId(1), ProjectId(2), ProjectId(3)])
        .await
        .map_err(broke("get"))?;
    ensure!(
        stored == vec![newer],
        "get must return exactly the newest stored documents, got {stored:?}"
    );
    let count = index.count(&target).await.map_err(broke("count"))?;
    ensure!(count == 1, "count must be 1 after the delete, got {count}");
    let ids = index
        .ids_page(&target, KeysetPage::first(10))
        .await
        .map_err(broke("ids_page"))?;
    ensure!(
        ids == vec![ProjectId(1)],
        "ids_page must list [1], got {ids:?}"
    );
    drop_created(index, &target).await
}

/// Per-operation outcomes: a batch larger than one request is applied item by item.
pub async fn a_large_batch_is_applied_item_by_item(index: &dyn SearchIndex) -> ContractResult {
    let target = fresh(index).await?;
    write_many(index, &target).await?;
    drop_created(index, &target).await
}

/// Reads for verify: `ids_page` pages in ascending id order after its cursor, up to its bound.
pub async fn ids_page_in_id_order_after_the_cursor(index: &dyn SearchIndex) -> ContractResult {
    let target = fresh(index).await?;
    write_many(index, &target).await?;
    index.refresh(&target).await.map_err(broke("refresh"))?;
    let page = index
        .ids_page(&target, KeysetPage::after(Some(ProjectId(100)), 50))
        .await
        .map_err(broke("ids_page"))?;
    let expected: Vec<ProjectId> = (101..151).map(ProjectId).collect();
    ensure!(
        page == expected,
        "ids_page must page in ascending id order after the cursor, got {page:?}"
    );
    let bounded = index
        .ids_page(
            &target,
            KeysetPage::after(Some(ProjectId(100)), 50).until(Some(ProjectId(110))),
        )
        .await
        .map_err(broke("ids_page"))?;
    let expected: Vec<ProjectId> = (101..=110).map(ProjectId).collect();
    ensure!(
        bounded == expected,
        "ids_page must stop at the page's upper bound, got {bounded:?}"
    );
    drop_created(index, &target).await
}

/// Atomic publication: the first publish creates the alias, the next one moves it and returns the
/// index it replaced; dropping the replaced index (twice: harmless) leaves the alias where it is.
/// Needs an alias that does not exist yet.
pub async fn publish_moves_the_alias_atomically(index: &dyn SearchIndex) -> ContractResult {
    let first = fresh(index).await?;
    index
        .finish_bulk_load(&first)
        .await
        .map_err(broke("finish_bulk_load"))?;
    let previous = index.publish(&first).await.map_err(broke("publish"))?;
    ensure!(
        previous.is_none(),
        "the first publish has no previous index"
    );
    let live = index.live_index().await.map_err(broke("live_index"))?;
    ensure!(
        live.as_ref() == Some(&first),
        "the alias must point at the published index"
    );

    let second = fresh(index).await?;
    ensure!(second != first, "each new index must have its own name");
    index
        .finish_bulk_load(&second)
        .await
        .map_err(broke("finish_bulk_load"))?;
    let previous = index.publish(&second).await.map_err(broke("publish"))?;
    ensure!(
        previous.as_ref() == Some(&first),
        "publish must return the index it replaced"
    );
    drop_created(index, &first).await?;
    index
        .drop_index(&first)
        .await
        .map_err(broke("drop_index twice"))?;
    let live = index.live_index().await.map_err(broke("live_index"))?;
    ensure!(
        live.as_ref() == Some(&second),
        "dropping the old index must leave the alias on the new one"
    );
    drop_created(index, &second).await
}

/// Checks a [`SearchIndex`] whose alias does not exist yet: every clause of this module, in order,
/// on that one alias. Cleans up the indexes it creates.
pub async fn search_index_contract(index: &dyn SearchIndex) -> ContractResult {
    crate::search_index_clauses!(@suite index)
}

/// Checks, on a [`SearchIndex`] whose alias does not exist yet, that claims fence publication: a
/// writer whose claim another writer revoked cannot move the alias, while the claiming writer can.
/// Leaves the indexes it created for the caller to drop.
pub async fn writer_fence_contract(index: &dyn SearchIndex) -> ContractResult {
    let (old, new) = (WriterId::random(), WriterId::random());
    let none = index.claim(&old).await.map_err(broke("claim"))?;
    ensure!(
        none.is_none(),
        "a claim before any publish finds no live index"
    );
    let first = fresh(index).await?;
    let previous = index
        .publish_as(&first, &old)
        .await
        .map_err(broke("publish_as"))?;
    ensure!(
        previous.is_none(),
        "the first publish has no previous index"
    );
    let live = index.claim(&new).await.map_err(broke("claim"))?;
    ensure!(
        live.as_ref() == Some(&first),
        "a claim returns the live index, got {live:?}"
    );
    let second = fresh(index).await?;
    let fenced = index.publish_as(&second, &old).await;
    ensure!(
        matches!(fenced, Err(IndexError::Fenced { .. })),
        "a writer whose claim was revoked must not publish, got {fenced:?}"
    );
    let live = index.live_index().await.map_err(broke("live_index"))?;
    ensure!(
        live.as_ref() == Some(&first),
        "a fenced publish must leave the alias where it was, got {live:?}"
    );
    let previous = index
        .publish_as(&second, &new)
        .await
        .map_err(broke("publish_as"))?;
    ensure!(
        previous.as_ref() == Some(&first),
        "the claiming writer publishes and gets the replaced index, got {previous:?}"
    );
    let again = index.claim(&new).await.map_err(broke("claim again"))?;
    ensure!(
        again.as_ref() == Some(&second),
        "claiming again is harmless and returns the live index"
    );
    let third = fresh(index).await?;
    index
        .publish_as(&third, &new)
        .await
        .map_err(broke("publish_as after claiming again"))?;
    drop_created(index, &first).await?;
    drop_created(index, &second).await?;
    Ok(())
}
