//! An in-memory source: the five tables, an outbox filled the way the PostgreSQL triggers fill it
//! (cascades included), versioned snapshots, a writer lease, a rebuild queue, and fault injection.

use crate::KeysetPage;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use super::MemoryQueue;
use crate::change::{Ack, Backlog, Change, ChangeId, ChangeRecord, DeadLetter, Table};
use crate::document::{
    Creator, CreatorLink, Hashtag, HashtagId, HashtagLink, ProjectDocument, ProjectId, ProjectRow,
    UserId, build_documents,
};
use crate::error::SourceError;
use crate::source::{ChangeSource, DocumentSource, Snapshot, SourceLookup, Version, WriterLease};

/// Counts down injected failures: each call that finds it positive fails and decrements it.
#[derive(Debug, Default)]
pub struct Fault(AtomicU64);

impl Fault {
    /// Makes the next `count` calls fail.
    pub fn arm(&self, count: u64) {
        self.0.store(count, Ordering::SeqCst);
    }

    /// Whether this call must fail (and consumes one failure).
    pub fn fire(&self) -> bool {
        self.0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok()
    }
}

/// Failures a [`MemorySource`] can be told to inject.
#[derive(Debug, Default)]
pub struct SourceFaults {
    /// Fails `poll` with `Unavailable`.
    pub poll: Fault,
    /// Fails `load` and `load_page` with `Unavailable`.
    pub load: Fault,
    /// Fails `ack` with `Unavailable`.
    pub ack: Fault,
}

/// Renames the row `id` of `rows` (users or hashtags) unless it has that name already; says
/// whether it did.
fn rename<K: Ord>(rows: &mut BTreeMap<K, (String, DateTime<Utc>)>, id: &K, name: &str) -> bool {
    match rows.get_mut(id) {
        Some(row) if row.0 != name => {
            row.0 = name.into();
            true
        }
        _ => false,
    }
}

/// Removes the links that `linked` picks from `links`, as a cascading delete does; returns them.
fn unlink<A: Ord + Copy, B: Ord + Copy>(
    links: &mut BTreeSet<(A, B)>,
    linked: impl Fn(&(A, B)) -> bool,
) -> Vec<(A, B)> {
    let gone: Vec<(A, B)> = links.iter().filter(|link| linked(link)).copied().collect();
    for link in &gone {
        links.remove(link);
    }
    gone
}

#[derive(Debug, Default)]
struct Tables {
    users: BTreeMap<UserId, (String, DateTime<Utc>)>,
    hashtags: BTreeMap<HashtagId, (String, DateTime<Utc>)>,
    projects: BTreeMap<ProjectId, ProjectRow>,
    project_hashtags: BTreeSet<(ProjectId, HashtagId)>,
    user_projects: BTreeSet<(ProjectId, UserId)>,
    outbox: BTreeMap<ChangeId, ChangeRecord>,
    dead_letters: Vec<DeadLetter>,
    last_ack_at: Option<DateTime<Utc>>,
    next_change: i64,
    next_row: i64,
    version: u64,
    lease_holder: Option<u64>,
}

impl Tables {
    fn record(&mut self, change: Change) {
        self.next_change += 1;
        let id = ChangeId(self.next_change);
        self.outbox.insert(
            id,
            ChangeRecord {
                id,
                change,
                recorded_at: Utc::now(),
            },
        );
    }

    fn next_row(&mut self) -> i64 {
        self.next_row += 1;
        self.next_row
    }

    fn documents(&self, ids: impl Iterator<Item = ProjectId>) -> Vec<ProjectDocument> {
        let wanted: BTreeSet<ProjectId> = ids.collect();
        let rows = wanted
            .iter()
            .filter_map(|id| self.projects.get(id).cloned())
            .collect();
        // Range reads of the link sets (sorted by project first), not scans of every link.
        let hashtags = wanted
            .iter()
            .flat_map(|project| {
                self.project_hashtags
                    .range((*project, HashtagId(i64::MIN))..=(*project, HashtagId(i64::MAX)))
            })
            .filter_map(|(project, hashtag)| {
                let (name, created_at) = self.hashtags.get(hashtag)?;
                Some(HashtagLink {
                    project: *project,
                    hashtag: Hashtag {
                        id: *hashtag,
                        name: name.clone(),
                        created_at: *created_at,
                    },
                })
            })
            .collect();
        let creators = wanted
            .iter()
            .flat_map(|project| {
                self.user_projects
                    .range((*project, UserId(i64::MIN))..=(*project, UserId(i64::MAX)))
            })
            .filter_map(|(project, user)| {
                let (name, created_at) = self.users.get(user)?;
                Some(CreatorLink {
                    project: *project,
                    creator: Creator {
                        id: *user,
                        name: name.clone(),
                        created_at: *created_at,
                    },
                })
            })
            .collect();
        build_documents(rows, hashtags, creators)
    }

    fn next_version(&mut self) -> Version {
        self.version += 1;
        Version(self.version)
    }
}

/// The five tables and their outbox in memory. Mutations record changes like the capture triggers do.
#[derive(Debug, Default)]
pub struct MemorySource {
    tables: Mutex<Tables>,
    arrived: Notify,
    /// The rebuild queue kept beside the tables, as PostgreSQL keeps it in the `athens` schema.
    queue: MemoryQueue,
    /// Failures to inject.
    pub faults: SourceFaults,
}

fn unavailable() -> SourceError {
    SourceError::unavailable("injected failure").with_source(super::injected_cause())
}

impl MemorySource {
    /// An empty source.
    pub fn new() -> Arc<MemorySource> {
        Arc::new(MemorySource::default())
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        self.tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn commit<T>(&self, mutate: impl FnOnce(&mut Tables) -> T) -> T {
        let result = mutate(&mut self.tables());
        self.arrived.notify_waiters();
        result
    }

    /// The rebuild queue kept with this source: every handle shares it, so it outlives the
    /// engines that use it, like a table would.
    pub fn queue(&self) -> Arc<MemoryQueue> {
        Arc::new(self.queue.clone())
    }

    /// A lease handle for one process; handles of the same source exclude each other.
    pub fn lease(self: &Arc<Self>) -> MemoryLease {
        static OWNERS: AtomicU64 = AtomicU64::new(1);
        MemoryLease {
            source: Arc::clone(self),
            owner: OWNERS.fetch_add(1, Ordering::SeqCst),
        }
    }

    /// Inserts a user.
    pub fn add_user(&self, name: &str) -> UserId {
        self.commit(|t| {
            let id = UserId(t.next_row());
            t.users.insert(id, (name.into(), Utc::now()));
            t.record(Change::User { user: id });
            id
        })
    }

    /// Renames a user (no change recorded when the name is the same).
    pub fn rename_user(&self, id: UserId, name: &str) {
        self.commit(|t| {
            if rename(&mut t.users, &id, name) {
                t.record(Change::User { user: id });
            }
        });
    }

    /// Deletes a user; its `user_projects` rows go with it.
    pub fn delete_user(&self, id: UserId) {
        self.commit(|t| {
            for (project, user) in unlink(&mut t.user_projects, |(_, user)| *user == id) {
                t.record(Change::UserProject { project, user });
            }
            if t.users.remove(&id).is_some() {
                t.record(Change::User { user: id });
            }
        });
    }

    /// Inserts a hashtag.
    pub fn add_hashtag(&self, name: &str) -> HashtagId {
        self.commit(|t| {
            let id = HashtagId(t.next_row());
            t.hashtags.insert(id, (name.into(), Utc::now()));
            t.record(Change::Hashtag { hashtag: id });
            id
        })
    }

    /// Renames a hashtag.
    pub fn rename_hashtag(&self, id: HashtagId, name: &str) {
        self.commit(|t| {
            if rename(&mut t.hashtags, &id, name) {
                t.record(Change::Hashtag { hashtag: id });
            }
        });
    }

    /// Deletes a hashtag; its `project_hashtags` rows go with it.
    pub fn delete_hashtag(&self, id: HashtagId) {
        self.commit(|t| {
            for (project, hashtag) in unlink(&mut t.project_hashtags, |(_, hashtag)| *hashtag == id)
            {
                t.record(Change::ProjectHashtag { project, hashtag });
            }
            if t.hashtags.remove(&id).is_some() {
                t.record(Change::Hashtag { hashtag: id });
            }
        });
    }

    /// Inserts a project.
    pub fn add_project(&self, name: &str, slug: &str, description: &str) -> ProjectId {
        self.commit(|t| {
            let id = ProjectId(t.next_row());
            let now = Utc::now();
            t.projects.insert(
                id,
                ProjectRow {
                    id,
                    name: name.into(),
                    slug: slug.into(),
                    description: Some(description.into()),
                    created_at: now,
                    updated_at: now,
                },
            );
            t.record(Change::Project { project: id });
            id
        })
    }

    /// Changes a project's description.
    pub fn describe_project(&self, id: ProjectId, description: &str) {
        self.commit(|t| {
            if let Some(project) = t.projects.get_mut(&id) {
                project.description = Some(description.into());
                project.updated_at = Utc::now();
                t.record(Change::Project { project: id });
            }
        });
    }

    /// Deletes a project; its link rows go with it.
    pub fn delete_project(&self, id: ProjectId) {
        self.commit(|t| {
            for (project, hashtag) in unlink(&mut t.project_hashtags, |(project, _)| *project == id)
            {
                t.record(Change::ProjectHashtag { project, hashtag });
            }
            for (project, user) in unlink(&mut t.user_projects, |(project, _)| *project == id) {
                t.record(Change::UserProject { project, user });
            }
            if t.projects.remove(&id).is_some() {
                t.record(Change::Project { project: id });
            }
        });
    }

    /// Tags a project with a hashtag.
    pub fn tag(&self, project: ProjectId, hashtag: HashtagId) {
        self.commit(|t| {
            if t.project_hashtags.insert((project, hashtag)) {
                t.record(Change::ProjectHashtag { project, hashtag });
            }
        });
    }

    /// Removes a hashtag from a project.
    pub fn untag(&self, project: ProjectId, hashtag: HashtagId) {
        self.commit(|t| {
            if t.project_hashtags.remove(&(project, hashtag)) {
                t.record(Change::ProjectHashtag { project, hashtag });
            }
        });
    }

    /// Records a user as a creator of a project.
    pub fn credit(&self, project: ProjectId, user: UserId) {
        self.commit(|t| {
            if t.user_projects.insert((project, user)) {
                t.record(Change::UserProject { project, user });
            }
        });
    }

    /// Removes a creator from a project.
    pub fn uncredit(&self, project: ProjectId, user: UserId) {
        self.commit(|t| {
            if t.user_projects.remove(&(project, user)) {
                t.record(Change::UserProject { project, user });
            }
        });
    }

    /// Truncates a table, cascading to the link tables that reference it, like `TRUNCATE ... CASCADE`.
    pub fn truncate(&self, table: Table) {
        self.commit(|t| {
            let cascade: &[Table] = match table {
                Table::Users => &[Table::Users, Table::UserProjects],
                Table::Hashtags => &[Table::Hashtags, Table::ProjectHashtags],
                Table::Projects => &[Table::Projects, Table::ProjectHashtags, Table::UserProjects],
                Table::ProjectHashtags => &[Table::ProjectHashtags],
                Table::UserProjects => &[Table::UserProjects],
            };
            for table in cascade {
                match table {
                    Table::Users => t.users.clear(),
                    Table::Hashtags => t.hashtags.clear(),
                    Table::Projects => t.projects.clear(),
                    Table::ProjectHashtags => t.project_hashtags.clear(),
                    Table::UserProjects => t.user_projects.clear(),
                }
                t.record(Change::Truncate { table: *table });
            }
        });
    }

    /// Every project's document as the source says now, sorted by id.
    pub fn expected_documents(&self) -> Vec<ProjectDocument> {
        let tables = self.tables();
        tables.documents(tables.projects.keys().copied())
    }

    /// Dead letters recorded so far.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.tables().dead_letters.clone()
    }

    /// Changes pending in the outbox.
    pub fn pending(&self) -> usize {
        self.tables().outbox.len()
    }
}

#[async_trait]
impl ChangeSource for MemorySource {
    async fn poll(&self, max: usize, wait: Duration) -> Result<Vec<ChangeRecord>, SourceError> {
        if self.faults.poll.fire() {
            return Err(unavailable());
        }
        let arrived = self.arrived.notified();
        let take = |tables: &Tables| -> Vec<ChangeRecord> {
            tables.outbox.values().take(max).cloned().collect()
        };
        let batch = take(&self.tables());
        if !batch.is_empty() || wait.is_zero() {
            return Ok(batch);
        }
        let _ = tokio::time::timeout(wait, arrived).await;
        Ok(take(&self.tables()))
    }

    async fn ack(&self, ack: &Ack) -> Result<(), SourceError> {
        if self.faults.ack.fire() {
            return Err(unavailable());
        }
        let mut tables = self.tables();
        for id in &ack.changes {
            tables.outbox.remove(id);
        }
        tables.dead_letters.extend(ack.dead_letters.iter().cloned());
        if !ack.changes.is_empty() {
            tables.last_ack_at = Some(Utc::now());
        }
        Ok(())
    }

    async fn backlog(&self) -> Result<Backlog, SourceError> {
        let tables = self.tables();
        Ok(Backlog {
            pending: tables.outbox.len() as u64,
            oldest_age: tables
                .outbox
                .values()
                .next()
                .and_then(|record| (Utc::now() - record.recorded_at).to_std().ok()),
            dead_letters: tables.dead_letters.len() as u64,
            last_ack_at: tables.last_ack_at,
            partition: None,
        })
    }
}

#[async_trait]
impl DocumentSource for MemorySource {
    async fn load(&self, ids: &[ProjectId]) -> Result<Snapshot, SourceError> {
        if self.faults.load.fire() {
            return Err(unavailable());
        }
        let mut tables = self.tables();
        let version = tables.next_version();
        let documents = tables.documents(ids.iter().copied());
        let mut missing: Vec<ProjectId> = ids
            .iter()
            .filter(|id| !tables.projects.contains_key(id))
            .copied()
            .collect();
        missing.sort();
        missing.dedup();
        Ok(Snapshot {
            version,
            documents,
            missing,
        })
    }

    async fn load_page(&self, page: KeysetPage) -> Result<Snapshot, SourceError> {
        if self.faults.load.fire() {
            return Err(unavailable());
        }
        let mut tables = self.tables();
        let version = tables.next_version();
        let ids: Vec<ProjectId> = tables
            .projects
            .keys()
            .skip_while(|id| !page.holds(**id))
            .take_while(|id| page.holds(**id))
            .take(page.limit)
            .copied()
            .collect();
        Ok(Snapshot {
            version,
            documents: tables.documents(ids.into_iter()),
            missing: Vec::new(),
        })
    }

    async fn id_bounds(&self) -> Result<Option<(ProjectId, ProjectId)>, SourceError> {
        let tables = self.tables();
        Ok(tables
            .projects
            .keys()
            .next()
            .zip(tables.projects.keys().next_back())
            .map(|(lowest, highest)| (*lowest, *highest)))
    }

    async fn projects_touched(
        &self,
        users: &[UserId],
        hashtags: &[HashtagId],
    ) -> Result<Vec<ProjectId>, SourceError> {
        let tables = self.tables();
        let mut touched: BTreeSet<ProjectId> = tables
            .user_projects
            .iter()
            .filter(|(_, user)| users.contains(user))
            .map(|(project, _)| *project)
            .collect();
        touched.extend(
            tables
                .project_hashtags
                .iter()
                .filter(|(_, hashtag)| hashtags.contains(hashtag))
                .map(|(project, _)| *project),
        );
        Ok(touched.into_iter().collect())
    }
}

#[async_trait]
impl SourceLookup for MemorySource {
    async fn ping(&self) -> Result<(), SourceError> {
        Ok(())
    }

    async fn user_exists(&self, user: UserId) -> Result<bool, SourceError> {
        Ok(self.tables().users.contains_key(&user))
    }

    async fn count(&self) -> Result<u64, SourceError> {
        Ok(self.tables().projects.len() as u64)
    }
}

/// One process's handle on a [`MemorySource`]'s writer lease.
#[derive(Debug)]
pub struct MemoryLease {
    source: Arc<MemorySource>,
    owner: u64,
}

impl MemoryLease {
    /// Takes the lease away from whoever holds it, as a crashed holder's lost connection would.
    pub fn expire(&self) {
        self.source.tables().lease_holder = None;
    }
}

#[async_trait]
impl WriterLease for MemoryLease {
    async fn try_acquire(&self) -> Result<bool, SourceError> {
        let mut tables = self.source.tables();
        match tables.lease_holder {
            Some(holder) => Ok(holder == self.owner),
            None => {
                tables.lease_holder = Some(self.owner);
                Ok(true)
            }
        }
    }

    async fn is_held(&self) -> Result<bool, SourceError> {
        Ok(self.source.tables().lease_holder == Some(self.owner))
    }

    async fn release(&self) -> Result<(), SourceError> {
        let mut tables = self.source.tables();
        if tables.lease_holder == Some(self.owner) {
            tables.lease_holder = None;
        }
        Ok(())
    }

    async fn lost(&self) -> SourceError {
        SourceError::lease_lost(match self.source.tables().lease_holder {
            Some(holder) => format!("the memory lease is held by handle {holder} now"),
            None => "the memory lease lapsed or was released, and no handle holds it now".into(),
        })
    }
}
