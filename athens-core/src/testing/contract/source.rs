//! The clauses of the [`ChangeSource`] and [`DocumentSource`] contracts, one function each: capture
//! of every kind of change (cascades and truncates included), at-least-once polling,
//! acknowledgement, wake-up on commit, versioned set-based loads, keyset pages, and resolution of
//! users and hashtags to projects.
//!
//! Each clause runs over a source that holds nothing yet, through a [`SourceFixture`] that writes to
//! it the way applications would.

use crate::KeysetPage;
use std::error::Error;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{ContractFailure, ContractResult, broke};
use crate::change::{Ack, Change, ChangeRecord, Table};
use crate::document::{HashtagId, ProjectId, UserId};
use crate::error::ErrorChain;
use crate::source::{ChangeSource, DocumentSource, Snapshot, SourceLookup};

/// Boxed error of a fixture step.
pub type FixtureError = Box<dyn Error + Send + Sync>;

/// Writes to a source the way applications would (SQL for PostgreSQL, methods for the fake), so the
/// source contract can check what the capture reports.
#[async_trait]
pub trait SourceFixture: Send + Sync {
    /// The change feed under test.
    fn changes(&self) -> &dyn ChangeSource;
    /// The document reader under test.
    fn documents(&self) -> &dyn DocumentSource;
    /// The lookups under test.
    fn lookup(&self) -> &dyn SourceLookup;
    /// Inserts a user.
    async fn add_user(&self, name: &str) -> Result<UserId, FixtureError>;
    /// Renames a user.
    async fn rename_user(&self, user: UserId, name: &str) -> Result<(), FixtureError>;
    /// Inserts a hashtag.
    async fn add_hashtag(&self, name: &str) -> Result<HashtagId, FixtureError>;
    /// Deletes a hashtag (its links cascade).
    async fn delete_hashtag(&self, hashtag: HashtagId) -> Result<(), FixtureError>;
    /// Inserts a project.
    async fn add_project(&self, name: &str, slug: &str) -> Result<ProjectId, FixtureError>;
    /// Deletes a project (its links cascade).
    async fn delete_project(&self, project: ProjectId) -> Result<(), FixtureError>;
    /// Links a hashtag to a project.
    async fn tag(&self, project: ProjectId, hashtag: HashtagId) -> Result<(), FixtureError>;
    /// Links a creator to a project.
    async fn credit(&self, project: ProjectId, user: UserId) -> Result<(), FixtureError>;
    /// Unlinks a creator from a project.
    async fn uncredit(&self, project: ProjectId, user: UserId) -> Result<(), FixtureError>;
    /// Truncates a table (cascading).
    async fn truncate(&self, table: Table) -> Result<(), FixtureError>;
    /// Whether the source reports an UPDATE that rewrites a row with the values it had (a source
    /// that does not see the old row cannot tell; the engine then rebuilds the same document under
    /// a new version, which is harmless). Sources that can tell must not report it.
    fn reports_unchanged_updates(&self) -> bool {
        false
    }
}

fn fixture(step: &'static str) -> impl FnOnce(FixtureError) -> ContractFailure {
    move |error| ContractFailure(format!("fixture {step}: {}", ErrorChain(error.as_ref())))
}

async fn take_all(source: &dyn ChangeSource) -> ContractResult<Vec<ChangeRecord>> {
    let records = source
        .poll(10_000, Duration::ZERO)
        .await
        .map_err(broke("poll"))?;
    let ack = Ack {
        changes: records.iter().map(|record| record.id).collect(),
        dead_letters: Vec::new(),
    };
    source.ack(&ack).await.map_err(broke("ack"))?;
    Ok(records)
}

/// What the source captured of `action` (a fixture step named `step`), acknowledged.
async fn captured(
    changes: &dyn ChangeSource,
    step: &'static str,
    action: impl Future<Output = Result<(), FixtureError>>,
) -> ContractResult<Vec<ChangeRecord>> {
    action.await.map_err(fixture(step))?;
    take_all(changes).await
}

fn has(records: &[ChangeRecord], change: Change) -> bool {
    records.iter().any(|record| record.change == change)
}

/// What most clauses start from: a user (Ada) who created a project tagged with a hashtag (rust),
/// written after any earlier change was acknowledged, and not acknowledged yet.
struct Linked {
    ada: UserId,
    rust: HashtagId,
    project: ProjectId,
}

async fn linked(fx: &dyn SourceFixture) -> ContractResult<Linked> {
    take_all(fx.changes()).await?;
    let ada = fx
        .add_user("Ada Lovelace")
        .await
        .map_err(fixture("add_user"))?;
    let rust = fx
        .add_hashtag("rust")
        .await
        .map_err(fixture("add_hashtag"))?;
    let project = fx
        .add_project("Athens", "athens-sync")
        .await
        .map_err(fixture("add_project"))?;
    fx.tag(project, rust).await.map_err(fixture("tag"))?;
    fx.credit(project, ada).await.map_err(fixture("credit"))?;
    Ok(Linked { ada, rust, project })
}

async fn poll(changes: &dyn ChangeSource) -> ContractResult<Vec<ChangeRecord>> {
    changes
        .poll(100, Duration::ZERO)
        .await
        .map_err(broke("poll"))
}

/// Only committed changes, nothing skipped: every insert, links included, is captured, and a poll
/// returns the oldest changes first.
pub async fn every_insert_is_captured_oldest_first(fx: &dyn SourceFixture) -> ContractResult {
    let Linked { ada, rust, project } = linked(fx).await?;
    let first = poll(fx.changes()).await?;
    ensure!(
        has(&first, Change::User { user: ada })
            && has(&first, Change::Hashtag { hashtag: rust })
            && has(&first, Change::Project { project })
            && has(
                &first,
                Change::ProjectHashtag {
                    project,
                    hashtag: rust
                }
            )
            && has(&first, Change::UserProject { project, user: ada }),
        "every insert must be captured, got {first:?}"
    );
    ensure!(
        first.windows(2).all(|pair| pair[0].id < pair[1].id),
        "a poll must return the oldest changes first"
    );
    Ok(())
}

/// At least once: a change is returned by every poll until it is acknowledged.
pub async fn unacknowledged_changes_come_again(fx: &dyn SourceFixture) -> ContractResult {
    linked(fx).await?;
    let first = poll(fx.changes()).await?;
    let again = poll(fx.changes()).await?;
    ensure!(
        first == again,
        "unacknowledged changes must be returned again"
    );
    Ok(())
}

/// Acknowledgement: acknowledged changes leave the source, and acknowledging them again is not an
/// error.
pub async fn acknowledged_changes_do_not_come_back(fx: &dyn SourceFixture) -> ContractResult {
    let changes = fx.changes();
    linked(fx).await?;
    let first = poll(changes).await?;
    take_all(changes).await?;
    let empty = poll(changes).await?;
    ensure!(empty.is_empty(), "acknowledged changes must not come back");
    changes
        .ack(&Ack {
            changes: first.iter().map(|record| record.id).collect(),
            dead_letters: Vec::new(),
        })
        .await
        .map_err(broke("ack of acknowledged changes"))?;
    Ok(())
}

/// Versioned reads: each load carries a newer version and the whole document, its hashtags and
/// creators included.
pub async fn loads_are_versioned_and_whole(fx: &dyn SourceFixture) -> ContractResult {
    let documents = fx.documents();
    let Linked { ada, rust, project } = linked(fx).await?;
    let a = load(documents, project).await?;
    let b = load(documents, project).await?;
    ensure!(
        b.version > a.version,
        "each load must carry a newer version"
    );
    let [document] = a.documents.as_slice() else {
        return Err(ContractFailure(format!(
            "load must return the project, got {:?}",
            a.documents
        )));
    };
    ensure!(
        document.slug == "athens-sync"
            && document.hashtags.iter().map(|h| h.id).eq([rust])
            && document.creators.iter().map(|c| c.id).eq([ada]),
        "the document must hold its hashtag and creator, got {document:?}"
    );
    Ok(())
}

/// A rename is captured, and the renamed user's (and a hashtag's) projects resolve.
pub async fn a_rename_is_captured_and_resolves_to_projects(
    fx: &dyn SourceFixture,
) -> ContractResult {
    let changes = fx.changes();
    let Linked { ada, rust, project } = linked(fx).await?;
    take_all(changes).await?;
    let renamed = captured(changes, "rename_user", fx.rename_user(ada, "Ada King")).await?;
    ensure!(
        has(&renamed, Change::User { user: ada }),
        "a rename must be captured, got {renamed:?}"
    );
    let touched = fx
        .documents()
        .projects_touched(&[ada], &[rust])
        .await
        .map_err(broke("projects_touched"))?;
    ensure!(
        touched == vec![project],
        "the user's and hashtag's projects must resolve, got {touched:?}"
    );
    Ok(())
}

/// An update that rewrites a row with the values it had is not captured (or, by a source that
/// cannot tell, only as that row's change).
pub async fn an_update_that_changes_nothing_is_not_captured(
    fx: &dyn SourceFixture,
) -> ContractResult {
    let changes = fx.changes();
    let Linked { ada, .. } = linked(fx).await?;
    fx.rename_user(ada, "Ada King")
        .await
        .map_err(fixture("rename_user"))?;
    take_all(changes).await?;
    let unchanged = captured(changes, "rename_user", fx.rename_user(ada, "Ada King")).await?;
    let only_the_row = unchanged
        .iter()
        .all(|record| record.change == Change::User { user: ada });
    ensure!(
        unchanged.is_empty() || (fx.reports_unchanged_updates() && only_the_row),
        "an update that changes nothing must not be captured, got {unchanged:?}"
    );
    Ok(())
}

/// Cascades: deleting a hashtag captures its cascaded links, unlinking a creator is captured, and
/// the document loses both.
pub async fn cascaded_deletes_and_unlinks_are_captured(fx: &dyn SourceFixture) -> ContractResult {
    let changes = fx.changes();
    let Linked { ada, rust, project } = linked(fx).await?;
    take_all(changes).await?;
    let deleted = captured(changes, "delete_hashtag", fx.delete_hashtag(rust)).await?;
    ensure!(
        has(
            &deleted,
            Change::ProjectHashtag {
                project,
                hashtag: rust
            }
        ),
        "deleting a hashtag must capture its cascaded links, got {deleted:?}"
    );
    let uncredited = captured(changes, "uncredit", fx.uncredit(project, ada)).await?;
    ensure!(
        has(&uncredited, Change::UserProject { project, user: ada }),
        "unlinking a creator must be captured, got {uncredited:?}"
    );
    let now = load(fx.documents(), project).await?;
    ensure!(
        now.documents
            .first()
            .is_some_and(|d| d.hashtags.is_empty() && d.creators.is_empty()),
        "the document must lose its deleted hashtag and creator, got {:?}",
        now.documents
    );
    Ok(())
}

/// `user_exists` tells existing users from unknown ones.
pub async fn user_exists_tells_known_from_unknown(fx: &dyn SourceFixture) -> ContractResult {
    let lookup = fx.lookup();
    let Linked { ada, .. } = linked(fx).await?;
    ensure!(
        lookup
            .user_exists(ada)
            .await
            .map_err(broke("user_exists"))?
            && !lookup
                .user_exists(UserId(i64::from(i32::MAX)))
                .await
                .map_err(broke("user_exists"))?,
        "user_exists must tell existing users from unknown ones"
    );
    Ok(())
}

/// Keyset pages list every project once in id order, and `count` counts them.
pub async fn pages_list_every_project_once(fx: &dyn SourceFixture) -> ContractResult {
    let documents = fx.documents();
    let Linked { project, .. } = linked(fx).await?;
    let mut created = vec![project];
    for n in 0..5 {
        created.push(
            fx.add_project(&format!("Page {n}"), &format!("page-{n}"))
                .await
                .map_err(fixture("add_project"))?,
        );
    }
    take_all(fx.changes()).await?;
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = documents
            .load_page(KeysetPage::after(after, 2))
            .await
            .map_err(broke("load_page"))?;
        ensure!(page.missing.is_empty(), "load_page must not report missing");
        let Some(last) = page.documents.last() else {
            break;
        };
        after = Some(last.id);
        paged.extend(page.documents.iter().map(|d| d.id));
    }
    created.sort();
    ensure!(
        paged == created,
        "keyset pages must list every project once in id order, got {paged:?}"
    );
    let count = fx.lookup().count().await.map_err(broke("count"))?;
    ensure!(
        count == created.len() as u64,
        "count must be {}",
        created.len()
    );
    Ok(())
}

/// What `documents` loads for `project`.
async fn load(documents: &dyn DocumentSource, project: ProjectId) -> ContractResult<Snapshot> {
    documents.load(&[project]).await.map_err(broke("load"))
}

/// A deleted project is reported missing by a load.
pub async fn a_deleted_project_is_reported_missing(fx: &dyn SourceFixture) -> ContractResult {
    let Linked { project, .. } = linked(fx).await?;
    fx.delete_project(project)
        .await
        .map_err(fixture("delete_project"))?;
    let gone = load(fx.documents(), project).await?;
    ensure!(
        gone.documents.is_empty() && gone.missing == vec![project],
        "a deleted project must be reported missing, got {gone:?}"
    );
    Ok(())
}

/// A poll that waits wakes up soon after a commit, not at the end of its wait.
pub async fn a_waiting_poll_wakes_up_on_commit(fx: &dyn SourceFixture) -> ContractResult {
    let changes = fx.changes();
    take_all(changes).await?;
    let started = Instant::now();
    let (polled, added) = tokio::join!(changes.poll(100, Duration::from_secs(10)), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        fx.add_user("Grace Hopper").await
    });
    let polled = polled.map_err(broke("poll"))?;
    let grace = added.map_err(fixture("add_user"))?;
    ensure!(
        has(&polled, Change::User { user: grace }) && started.elapsed() < Duration::from_secs(5),
        "a waiting poll must wake up soon after a commit, got {polled:?} after {:?}",
        started.elapsed()
    );
    Ok(())
}

/// A truncate is captured, and once it is acknowledged the backlog says nothing is pending.
pub async fn a_truncate_is_captured(fx: &dyn SourceFixture) -> ContractResult {
    let changes = fx.changes();
    linked(fx).await?;
    take_all(changes).await?;
    let truncated = captured(changes, "truncate", fx.truncate(Table::Users)).await?;
    ensure!(
        has(
            &truncated,
            Change::Truncate {
                table: Table::Users
            }
        ),
        "a truncate must be captured, got {truncated:?}"
    );
    let backlog = changes.backlog().await.map_err(broke("backlog"))?;
    ensure!(
        backlog.pending == 0 && backlog.oldest_age.is_none(),
        "an empty backlog must say so, got {backlog:?}"
    );
    Ok(())
}
