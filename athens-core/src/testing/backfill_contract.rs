//! The clauses of the ports that a parallel, resumable backfill relies on: ranges of project ids
//! read apart ([`DocumentSource::load_page`] bounded by [`KeysetPage::until`](crate::KeysetPage::until), [`DocumentSource::id_bounds`]) and checkpoints kept
//! with their index ([`SearchIndex::save_checkpoint`], [`SearchIndex::unfinished_backfills`]). The
//! fakes and the real adapters run them like the other contract suites.

use super::contract::{ContractFailure, ContractResult, SourceFixture, broke};
use crate::KeysetPage;
use crate::checkpoint::{BackfillCheckpoint, RangeProgress};
use crate::document::ProjectId;
use crate::index::{IndexName, SearchIndex, WriterId};

fn failed(message: String) -> ContractFailure {
    ContractFailure(message)
}

fn check(condition: bool, message: impl FnOnce() -> String) -> ContractResult {
    if condition {
        Ok(())
    } else {
        Err(failed(message()))
    }
}

/// Checks, over a source holding no project, that `id_bounds` spans the projects there are and
/// that bounded `load_page` pages stay inside their range and together read every project once.
pub async fn range_contract(fx: &dyn SourceFixture) -> ContractResult {
    let documents = fx.documents();
    let mut added = Vec::new();
    for n in 0..7 {
        let project = fx
            .add_project(&format!("Ranged {n}"), &format!("ranged-{n}"))
            .await
            .map_err(broke("fixture add_project"))?;
        added.push(project);
    }
    added.sort();
    let bounds = documents.id_bounds().await.map_err(broke("id_bounds"))?;
    if let Some((lowest, highest)) = bounds {
        check(lowest <= added[0] && highest >= added[6], || {
            format!("id_bounds {bounds:?} must span every project, {added:?}")
        })?;
    }
    let until = added[3];
    let page = documents
        .load_page(KeysetPage::first(100).until(Some(until)))
        .await
        .map_err(broke("load_page"))?;
    let first: Vec<ProjectId> = page.documents.iter().map(|d| d.id).collect();
    check(first == added[..4], || {
        format!(
            "load_page(first, until {until}) must read the projects up to {until} in order: {first:?}"
        )
    })?;
    check(page.missing.is_empty(), || {
        "load_page reports nothing missing".into()
    })?;
    let mut rest = Vec::new();
    let mut after = Some(until);
    loop {
        let page = documents
            .load_page(KeysetPage::after(after, 2))
            .await
            .map_err(broke("load_page"))?;
        check(page.documents.len() <= 2, || {
            "load_page must return at most `limit` documents".into()
        })?;
        let Some(last) = page.documents.last().map(|d| d.id) else {
            break;
        };
        rest.extend(page.documents.iter().map(|d| d.id));
        after = Some(last);
    }
    check(rest == added[4..], || {
        format!("paging the open range after {until} must read the rest once: {rest:?}")
    })?;
    let empty = documents
        .load_page(KeysetPage::after(Some(added[1]), 10).until(Some(added[1])))
        .await
        .map_err(broke("load_page"))?;
    check(empty.documents.is_empty(), || {
        "an empty range reads nothing".into()
    })
}

/// The backfills `index` reports unfinished.
async fn unfinished(
    index: &dyn SearchIndex,
) -> ContractResult<Vec<(IndexName, BackfillCheckpoint)>> {
    index
        .unfinished_backfills()
        .await
        .map_err(broke("unfinished_backfills"))
}

/// Saves `checkpoint` with `target`.
async fn save(
    index: &dyn SearchIndex,
    target: &IndexName,
    checkpoint: &BackfillCheckpoint,
) -> ContractResult {
    index
        .save_checkpoint(target, checkpoint)
        .await
        .map_err(broke("save_checkpoint"))
}

/// Checks, on an alias with no index yet, that a checkpoint saved with an index is reported
/// (replaced by a later save) until it is finished, the index published or dropped.
pub async fn checkpoint_contract(index: &dyn SearchIndex) -> ContractResult {
    let found = unfinished(index).await?;
    check(found.is_empty(), || {
        "a fresh alias has no unfinished backfill".into()
    })?;
    let target = index.create_index().await.map_err(broke("create_index"))?;
    let mut checkpoint = BackfillCheckpoint::split(Some((ProjectId(1), ProjectId(1000))), 3);
    save(index, &target, &checkpoint).await?;
    checkpoint.ranges[0].done_through = Some(ProjectId(120));
    checkpoint.ranges[1].finished = true;
    save(index, &target, &checkpoint).await?;
    let found = unfinished(index).await?;
    check(found == vec![(target.clone(), checkpoint.clone())], || {
        format!("the last checkpoint saved must be reported with its index, got {found:?}")
    })?;

    let finished = BackfillCheckpoint {
        ranges: checkpoint
            .ranges
            .iter()
            .map(|range| RangeProgress {
                finished: true,
                ..*range
            })
            .collect(),
    };
    save(index, &target, &finished).await?;
    let found = unfinished(index).await?;
    check(found.is_empty(), || {
        format!("a finished checkpoint is not unfinished: {found:?}")
    })?;

    save(index, &target, &checkpoint).await?;
    let writer = WriterId::random();
    index.claim(&writer).await.map_err(broke("claim"))?;
    index
        .publish_as(&target, &writer)
        .await
        .map_err(broke("publish_as"))?;
    let found = unfinished(index).await?;
    check(found.is_empty(), || {
        format!("the index behind the alias is never unfinished: {found:?}")
    })?;

    let other = index.create_index().await.map_err(broke("create_index"))?;
    save(index, &other, &checkpoint).await?;
    index
        .drop_index(&other)
        .await
        .map_err(broke("drop_index"))?;
    let found = unfinished(index).await?;
    check(found.is_empty(), || {
        format!("a dropped index takes its checkpoint with it: {found:?}")
    })
}
