//! Stray indexes: physical indexes of the alias that the alias does not serve.
//!
//! A reindex that crashed, or was fenced by a writer that took its lease, leaves the index it was
//! building behind: created after the live one, never published. A claim
//! ([`SearchIndex::claim`](athens_core::SearchIndex::claim)) drops those, because once it took
//! effect no other writer can publish: every index the alias does not serve and that was created
//! after the live one is then an abandoned build, but for the ones this writer is building itself
//! (claiming again is harmless). The claim is made by the lease holder before it builds anything,
//! so a running reindex never loses its index to it; a fenced one loses an index it could not
//! publish anyway. An unfinished backfill with a checkpoint (see the `checkpoint` module) is left
//! to the next backfill, which resumes or discards it.
//!
//! Indexes created before the live one are previous indexes, kept on purpose
//! (`keep_previous_index`) or not dropped after a swap: they are listed, never dropped here.

use athens_core::{ErrorChain, IndexError, IndexName};
use tracing::{info, warn};

use crate::checkpoint;
use crate::client::alias_holders;
use crate::index::EsIndex;
use crate::mapping;

/// A physical index of the alias that the alias does not serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrayIndex {
    /// Its name.
    pub name: IndexName,
    /// Whether it was created before or after the live index.
    pub kind: StrayKind,
}

/// Why an index the alias does not serve is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrayKind {
    /// Created after the live index (or before any was published) and never published: a build
    /// that is running, or that crashed or was fenced. The next claim (`athens sync`, `athens
    /// reindex`, `athens run` starting) drops it unless its writer still holds the claim.
    Unpublished,
    /// Created before the live index: a previous index, kept (`keep_previous_index`) or not
    /// dropped after a swap. Never dropped automatically.
    Replaced,
}

impl StrayKind {
    /// A one-word name: `unpublished` or `replaced`.
    pub fn as_str(self) -> &'static str {
        match self {
            StrayKind::Unpublished => "unpublished",
            StrayKind::Replaced => "replaced",
        }
    }

    /// What it is and what becomes of it, for an operator.
    pub fn explanation(self) -> &'static str {
        match self {
            StrayKind::Unpublished => {
                "never published: a reindex building it now, or one that crashed or was fenced \
                 (the next sync or reindex resumes or drops it)"
            }
            StrayKind::Replaced => {
                "replaced by the live index: a previous index kept or not dropped (delete it when \
                 it is no longer needed)"
            }
        }
    }
}

/// The indexes among `names` (every physical index of `alias`, oldest first) that `holders` (the
/// indexes the alias serves) do not hold, classified against the newest holder.
fn classify(alias: &str, names: Vec<IndexName>, holders: &[String]) -> Vec<StrayIndex> {
    // The order of `mapping::sort_oldest_first`.
    let age = |name: &str| (mapping::mapping_version(alias, name), name.to_owned());
    let newest = holders.iter().map(|holder| age(holder)).max();
    names
        .into_iter()
        .filter(|name| !holders.contains(&name.0))
        .map(|name| {
            let kind = match &newest {
                Some(newest) if age(&name.0) < *newest => StrayKind::Replaced,
                _ => StrayKind::Unpublished,
            };
            StrayIndex { name, kind }
        })
        .collect()
}

impl EsIndex {
    /// Every physical index of the alias that the alias does not serve, oldest first: for
    /// `athens status` and `athens doctor`. Listing is harmless; see [`StrayKind`] for what drops
    /// them.
    pub async fn stray_indexes(&self) -> Result<Vec<StrayIndex>, IndexError> {
        let names = self.indexes().await?;
        // Listed after the indexes: an index published in between is not taken for a stray.
        let holders = alias_holders(self.client()).await?;
        Ok(classify(self.alias(), names, &holders))
    }

    /// Drops the builds that no writer can publish any more: called once a claim took effect.
    /// Failures are logged, never returned: the claim stands, and the next one tries again.
    pub(crate) async fn drop_abandoned_builds(&self) {
        let listed = match self.stray_indexes().await {
            Ok(strays) if strays.is_empty() => return,
            Ok(strays) => checkpoint::unfinished(self.client())
                .await
                .map(|unfinished| (strays, unfinished)),
            Err(error) => Err(error),
        };
        let (strays, unfinished) = match listed {
            Ok(listed) => listed,
            Err(error) => {
                warn!(alias = self.alias(), error = %ErrorChain(&error), "could not list stray indexes");
                return;
            }
        };
        for stray in strays {
            if stray.kind != StrayKind::Unpublished
                || self.is_building(&stray.name)
                || unfinished.iter().any(|(index, _)| *index == stray.name)
            {
                continue;
            }
            match athens_core::SearchIndex::drop_index(self, &stray.name).await {
                Ok(()) => {
                    info!(alias = self.alias(), index = %stray.name, "abandoned build dropped")
                }
                Err(error) => {
                    warn!(alias = self.alias(), index = %stray.name, error = %ErrorChain(&error), "could not drop an abandoned build")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(names: &[&str]) -> Vec<IndexName> {
        names.iter().map(|name| IndexName((*name).into())).collect()
    }

    #[test]
    fn strays_are_what_the_alias_does_not_serve_classified_against_the_live_index() {
        let alias = "a";
        let all = names(&[
            "a-v3-20260101-000000-000000-1",
            "a-v3-20260102-000000-000000-1",
            "a-v3-20260103-000000-000000-1",
            "a-v10-20250101-000000-000000-1",
        ]);
        let strays = classify(
            alias,
            all.clone(),
            &["a-v3-20260102-000000-000000-1".into()],
        );
        assert_eq!(
            strays,
            [
                StrayIndex {
                    name: all[0].clone(),
                    kind: StrayKind::Replaced
                },
                StrayIndex {
                    name: all[2].clone(),
                    kind: StrayKind::Unpublished
                },
                StrayIndex {
                    name: all[3].clone(),
                    kind: StrayKind::Unpublished
                },
            ]
        );
        let before_any = classify(alias, all.clone(), &[]);
        assert!(before_any.iter().all(|s| s.kind == StrayKind::Unpublished));
        assert_eq!(before_any.len(), 4);
        let newest_live = classify(alias, all, &["a-v10-20250101-000000-000000-1".into()]);
        assert!(newest_live.iter().all(|s| s.kind == StrayKind::Replaced));
    }
}
