//! Stray indexes, on both engines: listed for `athens status`, and dropped by the next claim when
//! they are abandoned builds; never the live index, a previous one, the claiming writer's own
//! build or a build with a backfill checkpoint; a build running under a revoked claim is dropped
//! and cannot be published.

use anyhow::ensure;
use athens_core::testing::sample_document;
use athens_core::{
    BackfillCheckpoint, IndexError, IndexName, IndexOp, SearchIndex, Version, WriterId,
};
use athens_es::{EsIndex, StrayIndex, StrayKind};

use crate::support::{config, on_every_engine};

fn stray(name: &IndexName, kind: StrayKind) -> StrayIndex {
    StrayIndex {
        name: name.clone(),
        kind,
    }
}

#[tokio::test]
async fn claims_drop_abandoned_builds_only() -> anyhow::Result<()> {
    on_every_engine("strays", |index, engine| async move {
        let settings = config(&engine, index.alias());
        let previous = index.create_index().await?;
        index.publish(&previous).await?;
        let live = index.create_index().await?;
        index.publish(&live).await?;

        // Two builds of a process that is gone: one crashed before its first checkpoint, one
        // holds a checkpoint for the next backfill to resume.
        let gone = EsIndex::connect(&settings).await?;
        let crashed = gone.create_index().await?;
        let checkpointed = gone.create_index().await?;
        gone.save_checkpoint(&checkpointed, &BackfillCheckpoint::split(None, 1))
            .await?;
        drop(gone);

        ensure!(
            index.stray_indexes().await?
                == [
                    stray(&previous, StrayKind::Replaced),
                    stray(&crashed, StrayKind::Unpublished),
                    stray(&checkpointed, StrayKind::Unpublished),
                ],
            "listed: {:?}",
            index.stray_indexes().await?
        );

        // Writer A claims: the crashed build goes, everything else stays.
        let a = EsIndex::connect(&settings).await?;
        let writer_a = WriterId::random();
        ensure!(a.claim(&writer_a).await? == Some(live.clone()));
        ensure!(a.indexes().await? == [previous.clone(), live.clone(), checkpointed.clone()]);

        // A builds; claiming again leaves its own build alone.
        let building = a.create_index().await?;
        let upsert = IndexOp::Upsert {
            document: sample_document(1, "strays"),
            version: Version(1),
        };
        a.write(&building, std::slice::from_ref(&upsert)).await?;
        a.claim(&writer_a).await?;
        ensure!(a.indexes().await?.contains(&building), "A's own build kept");

        // B takes over (A lost its lease): A's build goes, and A can no longer publish it.
        let b = EsIndex::connect(&settings).await?;
        let writer_b = WriterId::random();
        ensure!(b.claim(&writer_b).await? == Some(live.clone()));
        ensure!(b.indexes().await? == [previous.clone(), live.clone(), checkpointed.clone()]);
        let fenced = a.publish_as(&building, &writer_a).await;
        ensure!(
            matches!(fenced, Err(IndexError::Fenced { .. })),
            "{fenced:?}"
        );
        ensure!(b.live_index().await? == Some(live.clone()));

        // B's own build survives its claims, publishes, and the replaced index stays.
        let rebuilt = b.create_index().await?;
        b.claim(&writer_b).await?;
        b.write(&rebuilt, &[upsert]).await?;
        b.finish_bulk_load(&rebuilt).await?;
        ensure!(b.publish_as(&rebuilt, &writer_b).await? == Some(live.clone()));
        b.claim(&writer_b).await?;
        ensure!(
            b.indexes().await?
                == [
                    previous.clone(),
                    live.clone(),
                    checkpointed.clone(),
                    rebuilt.clone()
                ],
            "{:?}",
            b.indexes().await?
        );
        ensure!(
            b.stray_indexes().await?
                == [
                    stray(&previous, StrayKind::Replaced),
                    stray(&live, StrayKind::Replaced),
                    stray(&checkpointed, StrayKind::Replaced),
                ]
        );
        Ok(())
    })
    .await
}
