//! Contract suites: plain async functions that every implementation of a port must pass. The in-memory
//! fakes run them in unit tests; the PostgreSQL and Elasticsearch/OpenSearch adapters run the same
//! functions against the real services.

use std::error::Error;
use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::change::{Ack, Change, ChangeRecord, Table};
use crate::document::{Creator, Hashtag, HashtagId, ProjectDocument, ProjectId, UserId};
use crate::error::IndexError;
use crate::index::{IndexOp, SearchIndex, WriteOutcome, WriterId};
use crate::source::{ChangeSource, DocumentSource, Version};

/// A broken promise of a port, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractFailure(pub String);

impl fmt::Display for ContractFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "contract broken: {}", self.0)
    }
}

impl Error for ContractFailure {}

/// The result of a contract step.
pub type ContractResult<T = ()> = Result<T, ContractFailure>;

macro_rules! ensure {
    ($cond:expr, $($message:tt)+) => {
        if !$cond {
            return Err(ContractFailure(format!($($message)+)));
        }
    };
}

fn broke<E: fmt::Display>(step: &'static str) -> impl FnOnce(E) -> ContractFailure {
    move |error| ContractFailure(format!("{step}: {error}"))
}

/// A sample document with every field set, unicode included, for index round trips.
pub fn sample_document(id: i64, slug: &str) -> ProjectDocument {
    let at = |micros: i64| DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default();
    ProjectDocument {
        id: ProjectId(id),
        name: format!("Project {id} — “naïve” ✓"),
        slug: slug.into(),
        description: format!("Keeps {slug} in sync, fuzzy and relational"),
        created_at: at(1_700_000_000_123_456 + id),
        hashtags: vec![
            Hashtag {
                id: HashtagId(1),
                name: "Rust".into(),
                created_at: at(1_600_000_000_000_001),
            },
            Hashtag {
                id: HashtagId(2),
                name: "search".into(),
                created_at: at(1_600_000_000_000_002),
            },
        ],
        creators: vec![Creator {
            id: UserId(7),
            name: "Zoë Example".into(),
            created_at: at(1_500_000_000_000_000),
        }],
    }
}

fn upsert(document: &ProjectDocument, version: u64) -> IndexOp {
    IndexOp::Upsert {
        document: document.clone(),
        version: Version(version),
    }
}

/// Checks a [`SearchIndex`] whose alias does not exist yet: versioned writes, per-operation outcomes,
/// deletes that a late older write cannot undo, reads for verify, and atomic publication. Cleans up
/// the indexes it creates.
pub async fn search_index_contract(index: &dyn SearchIndex) -> ContractResult {
    ensure!(
        index
            .live_index()
            .await
            .map_err(broke("live_index"))?
            .is_none(),
        "a fresh alias must not point at an index"
    );
    let first = index.create_index().await.map_err(broke("create_index"))?;
    let one = sample_document(1, "elasticsearch-sync");
    let two = sample_document(2, "postgres-outbox");
    let outcomes = index
        .write(&first, &[upsert(&one, 10), upsert(&two, 10)])
        .await
        .map_err(broke("write"))?;
    ensure!(
        outcomes == vec![WriteOutcome::Applied, WriteOutcome::Applied],
        "new documents must be applied, got {outcomes:?}"
    );

    let mut older = one.clone();
    older.name = "older".into();
    let mut newer = one.clone();
    newer.name = "newer".into();
    let outcomes = index
        .write(
            &first,
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

    let outcomes = index
        .write(
            &first,
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

    index
        .finish_bulk_load(&first)
        .await
        .map_err(broke("finish_bulk_load"))?;
    index.refresh(&first).await.map_err(broke("refresh"))?;
    let stored = index
        .get(&first, &[ProjectId(1), ProjectId(2), ProjectId(3)])
        .await
        .map_err(broke("get"))?;
    ensure!(
        stored == vec![newer.clone()],
        "get must return exactly the newest stored documents, got {stored:?}"
    );
    let count = index.count(&first).await.map_err(broke("count"))?;
    ensure!(count == 1, "count must be 1 after the delete, got {count}");
    let ids = index
        .ids_page(&first, None, 10)
        .await
        .map_err(broke("ids_page"))?;
    ensure!(
        ids == vec![ProjectId(1)],
        "ids_page must list [1], got {ids:?}"
    );

    let many: Vec<IndexOp> = (10..260)
        .map(|id| upsert(&sample_document(id, &format!("bulk-{id}")), 1))
        .collect();
    let outcomes = index.write(&first, &many).await.map_err(broke("write"))?;
    ensure!(
        outcomes.len() == many.len() && outcomes.iter().all(|o| *o == WriteOutcome::Applied),
        "a large batch must be applied item by item"
    );
    index.refresh(&first).await.map_err(broke("refresh"))?;
    let page = index
        .ids_page(&first, Some(ProjectId(100)), 50)
        .await
        .map_err(broke("ids_page"))?;
    let expected: Vec<ProjectId> = (101..151).map(ProjectId).collect();
    ensure!(
        page == expected,
        "ids_page must page in ascending id order after the cursor, got {page:?}"
    );

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

    let second = index.create_index().await.map_err(broke("create_index"))?;
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
    index
        .drop_index(&first)
        .await
        .map_err(broke("drop_index"))?;
    index
        .drop_index(&first)
        .await
        .map_err(broke("drop_index twice"))?;
    let live = index.live_index().await.map_err(broke("live_index"))?;
    ensure!(
        live.as_ref() == Some(&second),
        "dropping the old index must leave the alias on the new one"
    );
    index
        .drop_index(&second)
        .await
        .map_err(broke("drop_index"))?;
    Ok(())
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
    let first = index.create_index().await.map_err(broke("create_index"))?;
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
    let second = index.create_index().await.map_err(broke("create_index"))?;
    let fenced = index.publish_as(&second, &old).await;
    ensure!(
        matches!(fenced, Err(IndexError::Fenced(_))),
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
    let third = index.create_index().await.map_err(broke("create_index"))?;
    index
        .publish_as(&third, &new)
        .await
        .map_err(broke("publish_as after claiming again"))?;
    index
        .drop_index(&first)
        .await
        .map_err(broke("drop_index"))?;
    index
        .drop_index(&second)
        .await
        .map_err(broke("drop_index"))?;
    Ok(())
}

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
    move |error| ContractFailure(format!("fixture {step}: {error}"))
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

fn has(records: &[ChangeRecord], change: Change) -> bool {
    records.iter().any(|record| record.change == change)
}

/// Checks a [`ChangeSource`] and [`DocumentSource`] pair over an empty source: capture of every kind of
/// change (cascades included), at-least-once polling, acknowledgement, versioned set-based loads,
/// resolution of users and hashtags to projects, wake-up on commit, and truncates.
pub async fn source_contract(fx: &dyn SourceFixture) -> ContractResult {
    let changes = fx.changes();
    let documents = fx.documents();
    take_all(changes).await?;

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

    let first = changes
        .poll(100, Duration::ZERO)
        .await
        .map_err(broke("poll"))?;
    let again = changes
        .poll(100, Duration::ZERO)
        .await
        .map_err(broke("poll"))?;
    ensure!(
        first == again,
        "unacknowledged changes must be returned again"
    );
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
    take_all(changes).await?;
    let empty = changes
        .poll(100, Duration::ZERO)
        .await
        .map_err(broke("poll"))?;
    ensure!(empty.is_empty(), "acknowledged changes must not come back");
    changes
        .ack(&Ack {
            changes: first.iter().map(|record| record.id).collect(),
            dead_letters: Vec::new(),
        })
        .await
        .map_err(broke("ack of acknowledged changes"))?;

    let a = documents.load(&[project]).await.map_err(broke("load"))?;
    let b = documents.load(&[project]).await.map_err(broke("load"))?;
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

    fx.rename_user(ada, "Ada King")
        .await
        .map_err(fixture("rename_user"))?;
    let renamed = take_all(changes).await?;
    ensure!(
        has(&renamed, Change::User { user: ada }),
        "a rename must be captured, got {renamed:?}"
    );
    let touched = documents
        .projects_touched(&[ada], &[rust])
        .await
        .map_err(broke("projects_touched"))?;
    ensure!(
        touched == vec![project],
        "the user's and hashtag's projects must resolve, got {touched:?}"
    );
    fx.rename_user(ada, "Ada King")
        .await
        .map_err(fixture("rename_user"))?;
    let unchanged = take_all(changes).await?;
    let only_the_row = unchanged
        .iter()
        .all(|record| record.change == Change::User { user: ada });
    ensure!(
        unchanged.is_empty() || (fx.reports_unchanged_updates() && only_the_row),
        "an update that changes nothing must not be captured, got {unchanged:?}"
    );

    fx.delete_hashtag(rust)
        .await
        .map_err(fixture("delete_hashtag"))?;
    let deleted = take_all(changes).await?;
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
    fx.uncredit(project, ada)
        .await
        .map_err(fixture("uncredit"))?;
    let uncredited = take_all(changes).await?;
    ensure!(
        has(&uncredited, Change::UserProject { project, user: ada }),
        "unlinking a creator must be captured, got {uncredited:?}"
    );
    let now = documents.load(&[project]).await.map_err(broke("load"))?;
    ensure!(
        now.documents
            .first()
            .is_some_and(|d| d.hashtags.is_empty() && d.creators.is_empty()),
        "the document must lose its deleted hashtag and creator, got {:?}",
        now.documents
    );
    ensure!(
        documents
            .user_exists(ada)
            .await
            .map_err(broke("user_exists"))?
            && !documents
                .user_exists(UserId(i64::from(i32::MAX)))
                .await
                .map_err(broke("user_exists"))?,
        "user_exists must tell existing users from unknown ones"
    );

    let mut created = vec![project];
    for n in 0..5 {
        created.push(
            fx.add_project(&format!("Page {n}"), &format!("page-{n}"))
                .await
                .map_err(fixture("add_project"))?,
        );
    }
    take_all(changes).await?;
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = documents
            .load_page(after, 2)
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
    let count = documents.count().await.map_err(broke("count"))?;
    ensure!(
        count == created.len() as u64,
        "count must be {}",
        created.len()
    );

    fx.delete_project(project)
        .await
        .map_err(fixture("delete_project"))?;
    let gone = documents.load(&[project]).await.map_err(broke("load"))?;
    ensure!(
        gone.documents.is_empty() && gone.missing == vec![project],
        "a deleted project must be reported missing, got {gone:?}"
    );
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
    take_all(changes).await?;

    fx.truncate(Table::Users)
        .await
        .map_err(fixture("truncate"))?;
    let truncated = take_all(changes).await?;
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
