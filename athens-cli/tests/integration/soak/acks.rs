//! Every acknowledged change checked against the index, not only the final state.
//!
//! The load records each transaction in a [`Ledger`] before it commits: the projects it wrote
//! (directly, or through a link row: the change names them) and the projects of the users and
//! hashtags it renamed (the engine resolves those when it processes the change), and a version
//! bound, the last value of `athens.version` read inside the transaction. A document snapshot that
//! saw the transaction draws its version after the commit, so it is greater than the bound.
//!
//! The [`checker`] watches acknowledgements (outbox rows deleted, or the replication slot moved
//! past the commit) and, as soon as it sees one, reads the projects' documents from the engine
//! (realtime `_mget` through the alias): each must hold a version greater than the bound, or be
//! absent while its project no longer exists. The one allowed exception is a project reached
//! through a rename whose link (or project) was changed again since, by a change still pending:
//! that change will rebuild it. A document written into an index the alias no longer serves, a
//! change acknowledged before its write landed, a lost write: each is reported with the change,
//! the project, the bound and what the index held.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, Statement};
use serde_json::{Value, json};

/// How a transaction's acknowledgement shows in the source.
#[derive(Debug, Clone)]
pub enum Marker {
    /// The outbox rows it wrote (outbox capture): acknowledged once all are deleted.
    Outbox(Vec<i64>),
    /// The WAL position after its commit (logical capture): acknowledged once the slot's
    /// confirmed position reaches it.
    Lsn(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Recorded, not (yet) known to be committed.
    InFlight,
    Committed,
    Aborted,
    /// Acknowledged, and the index checked.
    Checked,
}

#[derive(Debug, Clone)]
struct Entry {
    n: u64,
    bound: i64,
    direct: Vec<i64>,
    indirect: Vec<i64>,
    marker: Option<Marker>,
    state: State,
}

/// An acknowledged change the index does not hold.
#[derive(Debug, Clone)]
pub struct Violation {
    pub operation: u64,
    pub project: i64,
    pub bound: i64,
    /// The version the index held, `None` when it held no document.
    pub found: Option<i64>,
}

/// The load's transactions and what the checker found.
#[derive(Default)]
pub struct Ledger {
    entries: Mutex<Vec<Entry>>,
    violations: Mutex<Vec<Violation>>,
    stats: Mutex<Stats>,
}

/// Counts of the check.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Acknowledged transactions whose projects were checked.
    pub acknowledgements: u64,
    /// Documents checked (a project per acknowledged transaction).
    pub documents: u64,
    /// Projects reached through a rename, skipped because a later change of theirs was pending.
    pub deferred: u64,
    /// Checks that could not read the engine (retried at the next round).
    pub unreadable: u64,
}

/// The projects a transaction touched, as its statements returned them.
#[derive(Debug, Default)]
pub struct Touched {
    pub direct: Vec<i64>,
    pub indirect: Vec<i64>,
}

impl Ledger {
    /// Reads the bound and the marker inside `txn` (just before its commit) and records it.
    /// Returns the entry's position, for [`committed`](Self::committed).
    pub async fn record(
        &self,
        txn: &DatabaseTransaction,
        n: u64,
        touched: Touched,
        logical: bool,
    ) -> Result<usize, sea_orm::DbErr> {
        let bound = ints(
            txn,
            "SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM athens.version",
        )
        .await?[0];
        let marker = if logical {
            None
        } else {
            Some(Marker::Outbox(
                ints(
                    txn,
                    "SELECT id FROM athens.outbox \
                     WHERE xmin::text = (pg_current_xact_id()::text::bigint % 4294967296)::text",
                )
                .await?,
            ))
        };
        let mut entries = self.entries.lock().unwrap();
        entries.push(Entry {
            n,
            bound,
            direct: touched.direct,
            indirect: touched.indirect,
            marker,
            state: State::InFlight,
        });
        Ok(entries.len() - 1)
    }

    /// Marks entry `at` committed (with its WAL position after the commit in the logical mode) or
    /// aborted.
    pub fn committed(&self, at: usize, outcome: Option<Option<i64>>) {
        let mut entries = self.entries.lock().unwrap();
        let entry = &mut entries[at];
        match outcome {
            None => entry.state = State::Aborted,
            Some(lsn) => {
                if let Some(lsn) = lsn {
                    entry.marker = Some(Marker::Lsn(lsn));
                }
                entry.state = State::Committed;
            }
        }
    }

    /// Committed transactions whose acknowledgement was not seen yet, and the number of checked.
    pub fn counts(&self) -> (usize, usize) {
        let entries = self.entries.lock().unwrap();
        let unchecked = entries
            .iter()
            .filter(|entry| entry.state == State::Committed)
            .count();
        let checked = entries
            .iter()
            .filter(|entry| entry.state == State::Checked)
            .count();
        (unchecked, checked)
    }

    /// Committed transactions that wrote project rows yet left no outbox row: changes capture lost.
    pub fn uncaptured(&self) -> Vec<u64> {
        self.entries
            .lock()
            .unwrap()
            .iter()
            .filter(|entry| {
                entry.state != State::Aborted
                    && !entry.direct.is_empty()
                    && matches!(&entry.marker, Some(Marker::Outbox(ids)) if ids.is_empty())
            })
            .map(|entry| entry.n)
            .collect()
    }

    pub fn violations(&self) -> Vec<Violation> {
        self.violations.lock().unwrap().clone()
    }

    pub fn stats(&self) -> Stats {
        self.stats.lock().unwrap().clone()
    }
}

/// The first column of every row of `sql`, as integers.
async fn ints(db: &impl ConnectionTrait, sql: &str) -> Result<Vec<i64>, sea_orm::DbErr> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            sql.to_string(),
        ))
        .await?;
    // Project, user and hashtag ids are `integer`; versions, outbox ids and positions `bigint`.
    rows.iter()
        .map(|row| {
            row.try_get_by_index::<i64>(0)
                .or_else(|_| row.try_get_by_index::<i32>(0).map(i64::from))
        })
        .collect()
}

fn list(ids: impl IntoIterator<Item = i64>) -> String {
    let ids: Vec<String> = ids.into_iter().map(|id| id.to_string()).collect();
    if ids.is_empty() {
        "NULL".into()
    } else {
        ids.join(",")
    }
}

/// Where the checker reads the index: the real engine (not through the proxies) and the alias.
pub struct Target {
    pub engine_url: String,
    pub alias: String,
}

/// Checks acknowledgements every `every` until `stop`, then once more.
pub async fn checker(
    sql: DatabaseConnection,
    ledger: Arc<Ledger>,
    target: Target,
    every: Duration,
    stop: Arc<AtomicBool>,
) {
    let http = reqwest::Client::new();
    loop {
        let last = stop.load(Ordering::Relaxed);
        if let Err(error) = round(&sql, &http, &ledger, &target).await {
            eprintln!("soak: acknowledgement check round failed (retried): {error:#}");
            ledger.stats.lock().unwrap().unreadable += 1;
        }
        if last {
            return;
        }
        tokio::time::sleep(every).await;
    }
}

/// One round: which committed transactions are acknowledged now, and does the index hold them.
async fn round(
    sql: &DatabaseConnection,
    http: &reqwest::Client,
    ledger: &Ledger,
    target: &Target,
) -> anyhow::Result<()> {
    let candidates: Vec<(usize, Marker)> = {
        let entries = ledger.entries.lock().unwrap();
        entries
            .iter()
            .enumerate()
            .filter(|(_, entry)| entry.state == State::Committed)
            .filter_map(|(at, entry)| entry.marker.clone().map(|marker| (at, marker)))
            .collect()
    };
    if candidates.is_empty() {
        return Ok(());
    }
    let outbox_ids = candidates.iter().flat_map(|(_, marker)| match marker {
        Marker::Outbox(ids) => ids.clone(),
        Marker::Lsn(_) => Vec::new(),
    });
    let remaining: BTreeSet<i64> = ints(
        sql,
        &format!(
            "SELECT id FROM athens.outbox WHERE id IN ({})",
            list(outbox_ids)
        ),
    )
    .await?
    .into_iter()
    .collect();
    let confirmed = if candidates
        .iter()
        .any(|(_, marker)| matches!(marker, Marker::Lsn(_)))
    {
        ints(
            sql,
            "SELECT coalesce((confirmed_flush_lsn - '0/0'::pg_lsn)::bigint, 0) \
             FROM pg_replication_slots WHERE database = current_database()",
        )
        .await?
        .into_iter()
        .max()
        .unwrap_or(0)
    } else {
        0
    };
    let acknowledged: Vec<usize> = candidates
        .iter()
        .filter(|(_, marker)| match marker {
            Marker::Outbox(ids) => ids.iter().all(|id| !remaining.contains(id)),
            Marker::Lsn(lsn) => *lsn <= confirmed,
        })
        .map(|(at, _)| *at)
        .collect();
    if acknowledged.is_empty() {
        return Ok(());
    }
    // Read after the acknowledgements: a change that committed before one of them was recorded
    // before its commit, so it is here.
    let (checks, pending_direct) = {
        let entries = ledger.entries.lock().unwrap();
        let pending: BTreeSet<i64> = entries
            .iter()
            .enumerate()
            .filter(|(at, entry)| {
                matches!(entry.state, State::InFlight | State::Committed)
                    && !acknowledged.contains(at)
            })
            .flat_map(|(_, entry)| entry.direct.iter().copied())
            .collect();
        let checks: Vec<Entry> = acknowledged.iter().map(|at| entries[*at].clone()).collect();
        (checks, pending)
    };
    let projects: BTreeSet<i64> = checks
        .iter()
        .flat_map(|entry| entry.direct.iter().chain(&entry.indirect).copied())
        .collect();
    let versions = indexed_versions(http, target, &projects).await?;
    let existing: BTreeSet<i64> = ints(
        sql,
        &format!(
            "SELECT id FROM projects WHERE id IN ({})",
            list(projects.iter().copied())
        ),
    )
    .await?
    .into_iter()
    .collect();
    let mut violations = Vec::new();
    let mut stats = Stats::default();
    for entry in &checks {
        stats.acknowledgements += 1;
        let touched = entry
            .direct
            .iter()
            .map(|p| (*p, true))
            .chain(entry.indirect.iter().map(|p| (*p, false)));
        for (project, direct) in touched {
            stats.documents += 1;
            let found = versions.get(&project).copied();
            let holds = match found {
                Some(version) => version > entry.bound,
                None => !existing.contains(&project),
            };
            if holds {
                continue;
            }
            if !direct && pending_direct.contains(&project) {
                stats.deferred += 1;
                continue;
            }
            violations.push(Violation {
                operation: entry.n,
                project,
                bound: entry.bound,
                found,
            });
        }
    }
    {
        let mut entries = ledger.entries.lock().unwrap();
        for at in &acknowledged {
            entries[*at].state = State::Checked;
        }
    }
    let mut total = ledger.stats.lock().unwrap();
    total.acknowledgements += stats.acknowledgements;
    total.documents += stats.documents;
    total.deferred += stats.deferred;
    drop(total);
    ledger.violations.lock().unwrap().extend(violations);
    Ok(())
}

/// The version the index holds for each of `projects` that has a document (realtime reads through
/// the alias, so nothing waits for a refresh).
async fn indexed_versions(
    http: &reqwest::Client,
    target: &Target,
    projects: &BTreeSet<i64>,
) -> anyhow::Result<BTreeMap<i64, i64>> {
    let mut versions = BTreeMap::new();
    let ids: Vec<String> = projects.iter().map(ToString::to_string).collect();
    for chunk in ids.chunks(500) {
        let response: Value = http
            .post(format!(
                "{}/{}/_mget?_source=false",
                target.engine_url, target.alias
            ))
            .json(&json!({ "ids": chunk }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let docs = response["docs"]
            .as_array()
            .ok_or_else(|| anyhow::anyhow!("unexpected _mget answer: {response}"))?;
        for doc in docs {
            if let Some(error) = doc.get("error") {
                anyhow::bail!("_mget could not read a document: {error}");
            }
            if doc["found"] == true {
                let id: i64 = doc["_id"].as_str().unwrap_or_default().parse()?;
                let version = doc["_version"]
                    .as_i64()
                    .ok_or_else(|| anyhow::anyhow!("no _version in {doc}"))?;
                versions.insert(id, version);
            }
        }
    }
    Ok(versions)
}

/// The projects a transaction's statements returned, by role.
pub async fn run_statements(
    txn: &DatabaseTransaction,
    statements: &[(String, Role)],
) -> Result<Touched, sea_orm::DbErr> {
    let mut touched = Touched::default();
    for (sql, role) in statements {
        let ids = match role {
            Role::Write => {
                txn.execute_unprepared(sql).await?;
                continue;
            }
            Role::Direct | Role::Indirect => ints(txn, sql).await?,
        };
        match role {
            Role::Direct => touched.direct.extend(ids),
            _ => touched.indirect.extend(ids),
        }
    }
    touched.direct.sort_unstable();
    touched.direct.dedup();
    touched.indirect.sort_unstable();
    touched.indirect.dedup();
    Ok(touched)
}

/// What a statement of the load returns.
#[derive(Debug, Clone, Copy)]
pub enum Role {
    /// Nothing of interest.
    Write,
    /// Project ids its change names (rows or link rows of those projects).
    Direct,
    /// Project ids of a renamed user or hashtag.
    Indirect,
}
