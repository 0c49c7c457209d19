//! [`PartitionDocuments`]: a [`DocumentSource`] whose users and hashtags resolve to one partition's
//! projects, so a partition's writer plans, reads and writes only its own projects.

use crate::KeysetPage;
use std::sync::Arc;

use async_trait::async_trait;

use super::Partition;
use crate::document::{HashtagId, ProjectId, UserId};
use crate::error::SourceError;
use crate::source::{DocumentSource, Snapshot};

/// The documents of one partition: [`projects_touched`](DocumentSource::projects_touched) keeps
/// the partition's projects; every other call goes to the source unchanged (a partition's changes
/// name its own projects already: the capture routed them).
pub struct PartitionDocuments {
    source: Arc<dyn DocumentSource>,
    partition: Partition,
}

impl PartitionDocuments {
    /// `source` seen from `partition`.
    pub fn new(source: Arc<dyn DocumentSource>, partition: Partition) -> PartitionDocuments {
        PartitionDocuments { source, partition }
    }
}

#[async_trait]
impl DocumentSource for PartitionDocuments {
    async fn load(&self, ids: &[ProjectId]) -> Result<Snapshot, SourceError> {
        self.source.load(ids).await
    }

    async fn load_page(&self, page: KeysetPage) -> Result<Snapshot, SourceError> {
        self.source.load_page(page).await
    }

    async fn id_bounds(&self) -> Result<Option<(ProjectId, ProjectId)>, SourceError> {
        self.source.id_bounds().await
    }

    async fn projects_touched(
        &self,
        users: &[UserId],
        hashtags: &[HashtagId],
    ) -> Result<Vec<ProjectId>, SourceError> {
        let mut touched = self.source.projects_touched(users, hashtags).await?;
        touched.retain(|project| self.partition.holds(*project));
        Ok(touched)
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;
    use crate::testing::MemorySource;

    #[tokio::test]
    async fn users_and_hashtags_resolve_to_the_partitions_own_projects() {
        let source = MemorySource::new();
        let user = source.add_user("ada");
        let tag = source.add_hashtag("rust");
        let projects: Vec<ProjectId> = (0..40)
            .map(|n| {
                let project = source.add_project(&format!("P{n}"), &format!("p-{n}"), "text");
                source.credit(project, user);
                source.tag(project, tag);
                project
            })
            .collect();
        let count = NonZeroU32::new(4).unwrap();
        let mut seen = Vec::new();
        for partition in Partition::all(count) {
            let documents = PartitionDocuments::new(source.clone(), partition);
            let by_user = documents.projects_touched(&[user], &[]).await.unwrap();
            let by_tag = documents.projects_touched(&[], &[tag]).await.unwrap();
            assert_eq!(by_user, by_tag);
            assert!(by_user.iter().all(|project| partition.holds(*project)));
            assert!(
                !by_user.is_empty(),
                "40 projects leave none of 4 partitions empty"
            );
            seen.extend(by_user);
        }
        seen.sort();
        assert_eq!(
            seen, projects,
            "the partitions share out every project once"
        );
    }
}
