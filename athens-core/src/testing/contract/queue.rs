//! The clauses of the [`RebuildQueue`] contract, one function each, over a queue that holds
//! nothing yet: a set of projects taken in id order without removal, removed only for the entry
//! taken (the clause that keeps a change arriving mid-read), cleared whole, counted.

use super::{ContractResult, broke};
use crate::document::ProjectId;
use crate::keyset::KeysetPage;
use crate::rebuild_queue::{QueuedProject, RebuildQueue};

fn ids(values: &[i64]) -> Vec<ProjectId> {
    values.iter().copied().map(ProjectId).collect()
}

fn projects(taken: &[QueuedProject]) -> Vec<i64> {
    taken.iter().map(|queued| queued.project.0).collect()
}

async fn take_all(queue: &dyn RebuildQueue) -> ContractResult<Vec<QueuedProject>> {
    queue
        .take(KeysetPage::first(usize::MAX >> 1))
        .await
        .map_err(broke("take"))
}

/// Enqueued projects are taken in ascending order, stay queued when taken, and leave once done.
pub async fn enqueued_projects_are_taken_in_order_until_done(
    queue: &dyn RebuildQueue,
) -> ContractResult {
    queue
        .enqueue(&ids(&[30, 10, 20]))
        .await
        .map_err(broke("enqueue"))?;
    let taken = take_all(queue).await?;
    ensure!(
        projects(&taken) == [10, 20, 30],
        "take returned {:?}, expected [10, 20, 30] in that order",
        projects(&taken)
    );
    let again = take_all(queue).await?;
    ensure!(again == taken, "a take removed projects: then {again:?}");
    queue.done(&taken[..2]).await.map_err(broke("done"))?;
    let left = take_all(queue).await?;
    ensure!(
        projects(&left) == [30],
        "after done(10, 20) the queue holds {:?}",
        projects(&left)
    );
    Ok(())
}

/// A project enqueued twice, in one call or in two, is one entry.
pub async fn a_project_queued_twice_is_one_entry(queue: &dyn RebuildQueue) -> ContractResult {
    queue
        .enqueue(&ids(&[5, 5, 6]))
        .await
        .map_err(broke("enqueue"))?;
    queue.enqueue(&ids(&[5])).await.map_err(broke("enqueue"))?;
    let taken = take_all(queue).await?;
    ensure!(
        projects(&taken) == [5, 6],
        "queued twice, taken as {:?}",
        projects(&taken)
    );
    let queued = queue.queued().await.map_err(broke("queued"))?;
    ensure!(queued == 2, "queued() says {queued}, expected 2");
    Ok(())
}

/// A project queued again after it was taken (a second rename while the first one's rebuild
/// reads it) stays queued when the first entry is marked done, with a new stamp; done with that
/// stamp removes it.
pub async fn a_project_queued_again_while_taken_stays_queued(
    queue: &dyn RebuildQueue,
) -> ContractResult {
    queue
        .enqueue(&ids(&[1, 2]))
        .await
        .map_err(broke("enqueue"))?;
    let first = take_all(queue).await?;
    queue.enqueue(&ids(&[2])).await.map_err(broke("enqueue"))?;
    queue.done(&first).await.map_err(broke("done"))?;
    let left = take_all(queue).await?;
    ensure!(
        projects(&left) == [2],
        "project 2 was queued again while taken; after done of the first take the queue holds {:?}",
        projects(&left)
    );
    ensure!(
        left[0].stamp != first[1].stamp,
        "queued again, project 2 kept its stamp {:?}",
        left[0].stamp
    );
    queue.done(&left).await.map_err(broke("done"))?;
    let empty = take_all(queue).await?;
    ensure!(empty.is_empty(), "done left {:?}", projects(&empty));
    Ok(())
}

/// A take honours its page: ids after the cursor, up to the bound, at most the limit.
pub async fn a_take_honours_its_page(queue: &dyn RebuildQueue) -> ContractResult {
    queue
        .enqueue(&ids(&[1, 2, 3, 4, 5, 6, 7]))
        .await
        .map_err(broke("enqueue"))?;
    let page = KeysetPage::after(Some(ProjectId(2)), 3);
    let taken = queue.take(page).await.map_err(broke("take"))?;
    ensure!(
        projects(&taken) == [3, 4, 5],
        "take after 2, limit 3: {:?}",
        projects(&taken)
    );
    let bounded = page.until(Some(ProjectId(4)));
    let taken = queue.take(bounded).await.map_err(broke("take"))?;
    ensure!(
        projects(&taken) == [3, 4],
        "take after 2 until 4: {:?}",
        projects(&taken)
    );
    Ok(())
}

/// Clearing removes every queued project; done of projects not queued (any more) is harmless.
pub async fn clear_empties_the_queue_and_late_dones_are_harmless(
    queue: &dyn RebuildQueue,
) -> ContractResult {
    queue
        .enqueue(&ids(&[8, 9]))
        .await
        .map_err(broke("enqueue"))?;
    let taken = take_all(queue).await?;
    queue.clear().await.map_err(broke("clear"))?;
    let queued = queue.queued().await.map_err(broke("queued"))?;
    ensure!(queued == 0, "cleared, queued() says {queued}");
    queue
        .done(&taken)
        .await
        .map_err(broke("done after clear"))?;
    queue.done(&[]).await.map_err(broke("done of nothing"))?;
    queue
        .enqueue(&[])
        .await
        .map_err(broke("enqueue of nothing"))?;
    ensure!(
        take_all(queue).await?.is_empty(),
        "the queue is not empty after clear"
    );
    Ok(())
}
