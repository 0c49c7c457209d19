//! An open-loop load of writes on the five tables, and the trackers that see each write acknowledged
//! by Athens and searchable in the engine.
//!
//! **Open loop.** Operation `i` is due at `start + i / rate`, whatever happened to the ones before:
//! the scheduler spawns it at that time and it takes a connection from a pool of 48, so slow answers
//! never lower the offered load. Each record keeps the intended time, the time its statement was
//! sent (after waiting for a connection) and the time its commit returned.
//!
//! **Commit to acknowledgement.** Each operation is one implicit transaction (a multi-statement
//! simple query) that ends with `SELECT max(id) FROM athens.outbox`: a bound `X` at least as high as
//! every outbox id its own triggers wrote. Athens deletes outbox rows only once the index accepted
//! their documents, so once no row with an id ≤ `X` is left, the operation is acknowledged. One
//! tracker asks `SELECT min(id) FROM athens.outbox` every 5 ms (one index probe) and marks every
//! operation committed before the question with `X` below the answer (or every one, when the outbox
//! is empty) as acknowledged when the answer came. The bound is conservative by at most the time
//! Athens needs to acknowledge rows that other transactions interleaved.
//!
//! **Commit to searchable.** Project updates write a unique marker at the start of the
//! description. A tracker per index sends one `ids` search for every pending marker every 20 ms and
//! marks those whose `_source` shows the marker: what a search sees, so refresh included.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::sqlx::postgres::PgRow;
use sea_orm::sqlx::{self, AssertSqlSafe, PgPool, Row};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::stats::Samples;

/// What a tracker task reports: the probe it served (`None` for the acknowledgement tracker) and,
/// per operation, when it was seen.
type Tracked = (Option<usize>, HashMap<usize, Instant>);

/// A kind of write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Rewrite a project's description (carries a searchable marker).
    UpdateProject,
    /// A new project with a creator and a hashtag.
    InsertProject,
    /// Delete a project (its links cascade).
    DeleteProject,
    /// Rename a user (all of their projects change).
    UpdateUser,
    /// A new user.
    InsertUser,
    /// Rename a hashtag (all projects using it change).
    UpdateHashtag,
    /// A new hashtag.
    InsertHashtag,
    /// Add or remove a hashtag of a project.
    ToggleProjectHashtag,
    /// Add or remove a creator of a project.
    ToggleUserProject,
}

/// The mixed CRUD load: weights in percent, over all five tables.
pub const MIXED: &[(Kind, u32)] = &[
    (Kind::UpdateProject, 40),
    (Kind::InsertProject, 10),
    (Kind::DeleteProject, 5),
    (Kind::UpdateUser, 10),
    (Kind::InsertUser, 5),
    (Kind::UpdateHashtag, 2),
    (Kind::InsertHashtag, 3),
    (Kind::ToggleProjectHashtag, 15),
    (Kind::ToggleUserProject, 10),
];

/// Project description updates only (the pgsync comparison).
pub const UPDATES: &[(Kind, u32)] = &[(Kind::UpdateProject, 100)];

/// The mix in words, for the report.
pub fn describe(mix: &[(Kind, u32)]) -> String {
    let parts: Vec<String> = mix
        .iter()
        .map(|(kind, weight)| format!("{weight}% {kind:?}"))
        .collect();
    parts.join(", ")
}

/// What one operation did and when.
#[derive(Debug, Clone)]
pub struct Record {
    /// When it was due.
    pub intended: Instant,
    /// When its statement was sent.
    pub started: Option<Instant>,
    /// When its commit returned; `None` if it failed.
    pub committed: Option<Instant>,
    /// When Athens had acknowledged it.
    pub acked: Option<Instant>,
    /// When its marker was searchable, per tracked index.
    pub searchable: Vec<Option<Instant>>,
    /// The project and marker of a probed update.
    probe: Option<(i64, String)>,
    /// Why it failed.
    pub error: Option<String>,
}

/// Id ranges of the seeded data, read once.
#[derive(Debug, Clone, Copy)]
pub struct Ids {
    users: i64,
    hashtags: i64,
    /// Projects up to here are updated and linked; above it (the top tenth) they are deleted.
    stable_projects: i64,
}

/// The writer: ids of the seeded data and counters shared by every run.
pub struct Generator {
    pool: PgPool,
    /// In the logical capture mode, the slot whose confirmed position tells acknowledgements.
    slot: Option<String>,
    ids: Ids,
    tag: String,
    next_delete: AtomicI64,
    sequence: AtomicI64,
    rng: std::sync::Mutex<StdRng>,
}

/// One run's settings.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Operations per second.
    pub rate: f64,
    /// Seconds of load.
    pub seconds: f64,
    /// The mix.
    pub mix: &'static [(Kind, u32)],
    /// Indexes (or aliases) whose search visibility of markers is tracked.
    pub searchable_in: Vec<String>,
    /// Whether to track acknowledgements through the outbox.
    pub track_acks: bool,
    /// How long after the load the trackers wait for stragglers.
    pub drain: Duration,
}

/// Everything a run recorded.
pub struct Outcome {
    /// Every operation, in order.
    pub records: Vec<Record>,
    /// The offered rate.
    pub rate: f64,
    /// Seconds of load.
    pub seconds: f64,
}

impl Outcome {
    /// Committed operations.
    pub fn committed(&self) -> usize {
        self.records
            .iter()
            .filter(|r| r.committed.is_some())
            .count()
    }

    /// Failed operations.
    pub fn failed(&self) -> usize {
        self.records.len() - self.committed()
    }

    /// The first failure, if any.
    pub fn first_error(&self) -> Option<&str> {
        self.records.iter().find_map(|r| r.error.as_deref())
    }

    /// Commits per second over the load's span.
    pub fn achieved_rate(&self) -> f64 {
        let first = self.records.first().map(|r| r.intended);
        let last = self.records.iter().filter_map(|r| r.committed).max();
        match (first, last) {
            (Some(first), Some(last)) if last > first => {
                self.committed() as f64 / (last - first).as_secs_f64().max(self.seconds)
            }
            _ => 0.0,
        }
    }

    /// Commit-to-acknowledgement latencies of operations in `range` (fractions of the run).
    pub fn ack_latency(&self, from: f64, to: f64) -> Samples {
        let n = self.records.len() as f64;
        let mut samples = Samples::default();
        for record in &self.records[(from * n) as usize..(to * n) as usize] {
            if let (Some(committed), Some(acked)) = (record.committed, record.acked) {
                samples.push(acked.saturating_duration_since(committed));
            }
        }
        samples
    }

    /// Committed operations never seen acknowledged.
    pub fn unacked(&self) -> usize {
        self.records
            .iter()
            .filter(|r| r.committed.is_some() && r.acked.is_none())
            .count()
    }

    /// Commit-to-searchable latencies in tracked index `which`, and the probes never seen.
    pub fn searchable_latency(&self, which: usize) -> (Samples, usize) {
        let mut samples = Samples::default();
        let mut lost = 0;
        for record in &self.records {
            let (Some(committed), Some(_)) = (record.committed, &record.probe) else {
                continue;
            };
            match record.searchable.get(which).copied().flatten() {
                Some(seen) => samples.push(seen.saturating_duration_since(committed)),
                None => {
                    lost += 1;
                    if let Some((project, marker)) = &record.probe
                        && lost <= 3
                    {
                        println!(
                            "  probe never seen in index {which}: project {project}, marker {marker}"
                        );
                    }
                }
            }
        }
        (samples, lost)
    }

    /// Commit-to-searchable latencies in tracked index `which` of the probed updates whose commit
    /// instant `keep` accepts, and how many of those were never seen.
    pub fn searchable_latency_where(
        &self,
        which: usize,
        keep: impl Fn(Instant) -> bool,
    ) -> (Samples, usize) {
        let mut samples = Samples::default();
        let mut unseen = 0;
        for record in &self.records {
            let (Some(committed), Some(_)) = (record.committed, &record.probe) else {
                continue;
            };
            if !keep(committed) {
                continue;
            }
            match record.searchable.get(which).copied().flatten() {
                Some(seen) => samples.push(seen.saturating_duration_since(committed)),
                None => unseen += 1,
            }
        }
        (samples, unseen)
    }

    /// The probes (project, marker) of committed updates never seen searchable in tracked index
    /// `which` while the run's trackers watched.
    pub fn unseen_probes(&self, which: usize) -> Vec<(i64, String)> {
        self.records
            .iter()
            .filter(|r| r.committed.is_some())
            .filter(|r| r.searchable.get(which).copied().flatten().is_none())
            .filter_map(|r| r.probe.clone())
            .collect()
    }

    /// How late operations were sent after their due time (waiting for a connection included).
    pub fn lateness(&self) -> Samples {
        let mut samples = Samples::default();
        for record in &self.records {
            if let Some(started) = record.started {
                samples.push(started.saturating_duration_since(record.intended));
            }
        }
        samples
    }
}

impl Generator {
    /// Reads the id ranges of the seeded tables.
    pub async fn new(pool: PgPool, tag: &str) -> anyhow::Result<Generator> {
        let (projects, users, hashtags): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT max(id)::bigint FROM projects), (SELECT max(id)::bigint FROM users), \
             (SELECT max(id)::bigint FROM hashtags)",
        )
        .fetch_one(&pool)
        .await
        .context("cannot read the seeded ids")?;
        let stable_projects = projects * 9 / 10;
        Ok(Generator {
            pool,
            slot: None,
            ids: Ids {
                users,
                hashtags,
                stable_projects,
            },
            tag: tag.to_owned(),
            next_delete: AtomicI64::new(projects),
            sequence: AtomicI64::new(0),
            rng: std::sync::Mutex::new(StdRng::seed_from_u64(7)),
        })
    }

    /// Tracks acknowledgements through the replication slot `slot` (the logical capture mode)
    /// instead of the outbox: each operation ends with `SELECT pg_current_wal_insert_lsn()` in its
    /// own transaction, a position `X` below its commit record, and it counts as acknowledged once
    /// the slot's confirmed position (which Athens moves only past acknowledged transactions, or
    /// to where it found nothing pending) is past `X`. Like the outbox's bound, `X` can be passed
    /// by a position between it and the commit only within the microseconds between the two.
    pub fn track_slot(&mut self, slot: Option<String>) {
        self.slot = slot;
    }

    /// The statement of one operation of `kind`, and its probe if it writes a marker.
    fn statement(&self, kind: Kind) -> (String, Option<(i64, String)>) {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        let tag = &self.tag;
        let (project, user, hashtag) = {
            let mut rng = self
                .rng
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (
                rng.random_range(1..=self.ids.stable_projects.max(1)),
                // The hand-written users and hashtags (the first 5 and 10) stay as they are.
                rng.random_range(6.min(self.ids.users)..=self.ids.users),
                rng.random_range(11.min(self.ids.hashtags)..=self.ids.hashtags),
            )
        };
        let marker = format!("mk{tag}x{n}");
        let mut probe = None;
        let sql = match kind {
            Kind::UpdateProject => {
                probe = Some((project, marker.clone()));
                // The first project at or above the drawn id: an earlier run's deletes leave gaps,
                // and a probe of a deleted project (no row updated) could never be seen. The
                // project updated is the one the statement returns.
                format!(
                    "UPDATE projects SET description = '{marker} ' || \
                     regexp_replace(coalesce(description, ''), '^mk[0-9a-z]+ ', '') \
                     WHERE id = (SELECT min(id) FROM projects WHERE id >= {project}) RETURNING id::bigint"
                )
            }
            Kind::InsertProject => format!(
                "WITH p AS (INSERT INTO projects (name, slug, description) VALUES \
                 ('bench project {n}', 'bench-{tag}-{n}', '{marker} a project the benchmark wrote') RETURNING id), \
                 c AS (INSERT INTO user_projects (project_id, user_id) SELECT id, {user} FROM p), \
                 h AS (INSERT INTO project_hashtags (project_id, hashtag_id) SELECT id, {hashtag} FROM p) \
                 SELECT 1"
            ),
            Kind::DeleteProject => {
                let victim = self.next_delete.fetch_sub(1, Ordering::Relaxed);
                format!("DELETE FROM projects WHERE id = {victim}")
            }
            Kind::UpdateUser => {
                format!("UPDATE users SET name = 'Bench User {marker}' WHERE id = {user}")
            }
            Kind::InsertUser => format!("INSERT INTO users (name) VALUES ('Bench User {n}')"),
            Kind::UpdateHashtag => {
                format!("UPDATE hashtags SET name = 'bench-{tag}-{n}' WHERE id = {hashtag}")
            }
            Kind::InsertHashtag => {
                format!("INSERT INTO hashtags (name) VALUES ('benchnew-{tag}-{n}')")
            }
            Kind::ToggleProjectHashtag => {
                toggle("project_hashtags", "hashtag_id", project, hashtag)
            }
            Kind::ToggleUserProject => toggle("user_projects", "user_id", project, user),
        };
        (sql, probe)
    }

    fn pick(&self, mix: &[(Kind, u32)]) -> Kind {
        let total: u32 = mix.iter().map(|(_, weight)| weight).sum();
        let mut draw = {
            let mut rng = self
                .rng
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            rng.random_range(0..total.max(1))
        };
        for (kind, weight) in mix {
            if draw < *weight {
                return *kind;
            }
            draw -= weight;
        }
        Kind::UpdateProject
    }

    /// Runs `plan` against the database, tracking acknowledgements and visibility.
    pub async fn run(&self, plan: &Plan, engine: &Engine) -> anyhow::Result<Outcome> {
        let total = (plan.rate * plan.seconds).round().max(1.0) as usize;
        let (ack_tx, ack_rx) = mpsc::unbounded_channel::<(usize, Instant, i64)>();
        let mut probe_txs = Vec::new();
        let mut trackers: JoinSet<anyhow::Result<Tracked>> = JoinSet::new();
        if plan.track_acks {
            let pool = self.pool.clone();
            let drain = plan.drain;
            let slot = self.slot.clone();
            trackers.spawn(async move { Ok((None, track_acks(pool, slot, ack_rx, drain).await?)) });
        } else {
            drop(ack_rx);
        }
        for (which, index) in plan.searchable_in.iter().enumerate() {
            let (tx, rx) = mpsc::unbounded_channel::<(usize, i64, String)>();
            probe_txs.push(tx);
            let engine = engine.clone();
            let index = index.clone();
            let drain = plan.drain;
            trackers.spawn(async move {
                Ok((
                    Some(which),
                    track_searchable(engine, index, rx, drain).await?,
                ))
            });
        }

        let start = Instant::now() + Duration::from_millis(50);
        let mut ops: JoinSet<(usize, Record)> = JoinSet::new();
        for i in 0..total {
            let intended = start + Duration::from_secs_f64(i as f64 / plan.rate);
            tokio::time::sleep_until(tokio::time::Instant::from_std(intended)).await;
            let kind = self.pick(plan.mix);
            let (sql, probe) = self.statement(kind);
            let pool = self.pool.clone();
            let ack_tx = ack_tx.clone();
            let probe_txs = probe_txs.clone();
            let track_acks = plan.track_acks;
            let bound_sql = if self.slot.is_some() {
                "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint"
            } else {
                "SELECT coalesce(max(id), 0)::bigint FROM athens.outbox"
            };
            let indexes = plan.searchable_in.len();
            ops.spawn(async move {
                let mut record = Record {
                    intended,
                    started: None,
                    committed: None,
                    acked: None,
                    searchable: vec![None; indexes],
                    probe: probe.clone(),
                    error: None,
                };
                let Ok(mut conn) = pool.acquire().await else {
                    return (i, record);
                };
                record.started = Some(Instant::now());
                let sql = if track_acks {
                    format!("{sql}; {bound_sql}")
                } else {
                    format!("{sql}; SELECT 0::bigint")
                };
                let rows: Result<Vec<PgRow>, _> = sqlx::raw_sql(AssertSqlSafe(sql))
                    .fetch_all(&mut *conn)
                    .await;
                let rows = match rows {
                    Ok(rows) => rows,
                    Err(error) => {
                        record.error = Some(error.to_string());
                        return (i, record);
                    }
                };
                let committed = Instant::now();
                record.committed = Some(committed);
                let bound: i64 = rows.last().and_then(|row| row.try_get(0).ok()).unwrap_or(0);
                // A probed update returns the project it updated before the bound's row; none
                // when no project is at or above the drawn id.
                let probe = probe.and_then(|(_, marker)| {
                    let updated = (rows.len() > 1).then(|| rows[0].try_get::<i64, _>(0).ok());
                    updated.flatten().map(|project| (project, marker))
                });
                record.probe = probe.clone();
                if track_acks {
                    let _ = ack_tx.send((i, committed, bound));
                }
                if let Some((project, marker)) = probe {
                    for tx in &probe_txs {
                        let _ = tx.send((i, project, marker.clone()));
                    }
                }
                (i, record)
            });
        }
        drop(ack_tx);
        drop(probe_txs);
        let mut records: Vec<Option<Record>> = vec![None; total];
        while let Some(done) = ops.join_next().await {
            let (i, record) = done?;
            records[i] = Some(record);
        }
        let mut records: Vec<Record> = records.into_iter().flatten().collect();
        while let Some(done) = trackers.join_next().await {
            let (which, seen) = done??;
            for (i, at) in seen {
                if let Some(record) = records.get_mut(i) {
                    match which {
                        None => record.acked = Some(at),
                        Some(which) => record.searchable[which] = Some(at),
                    }
                }
            }
        }
        Ok(Outcome {
            records,
            rate: plan.rate,
            seconds: plan.seconds,
        })
    }
}

/// A statement that removes the link if it exists and adds it otherwise.
fn toggle(table: &str, column: &str, project: i64, other: i64) -> String {
    format!(
        "WITH d AS (DELETE FROM {table} WHERE project_id = {project} AND {column} = {other} RETURNING 1) \
         INSERT INTO {table} (project_id, {column}) SELECT {project}, {other} \
         WHERE NOT EXISTS (SELECT 1 FROM d) ON CONFLICT DO NOTHING"
    )
}

/// Marks operations acknowledged (see the module docs); returns when the load is over and every
/// operation is acknowledged, or `drain` after the load ended.
async fn track_acks(
    pool: PgPool,
    slot: Option<String>,
    mut committed: mpsc::UnboundedReceiver<(usize, Instant, i64)>,
    drain: Duration,
) -> anyhow::Result<HashMap<usize, Instant>> {
    let mut conn = pool.acquire().await?;
    let mut pending: Vec<(usize, i64)> = Vec::new();
    let mut acked = HashMap::new();
    let mut closed_at: Option<Instant> = None;
    loop {
        loop {
            match committed.try_recv() {
                Ok((i, _, bound)) => pending.push((i, bound)),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    closed_at.get_or_insert_with(Instant::now);
                    break;
                }
            }
        }
        if !pending.is_empty() {
            let oldest: Option<i64> = match &slot {
                // Below the slot's confirmed position: acknowledged (never `None`).
                Some(slot) => Some(
                    sqlx::query_scalar(
                        "SELECT (confirmed_flush_lsn - '0/0'::pg_lsn)::bigint \
                         FROM pg_replication_slots WHERE slot_name = $1",
                    )
                    .bind(slot)
                    .fetch_one(&mut *conn)
                    .await?,
                ),
                None => {
                    sqlx::query_scalar("SELECT min(id) FROM athens.outbox")
                        .fetch_one(&mut *conn)
                        .await?
                }
            };
            let now = Instant::now();
            pending.retain(|(i, bound)| {
                let done = oldest.is_none_or(|oldest| *bound < oldest);
                if done {
                    acked.insert(*i, now);
                }
                !done
            });
        }
        if let Some(closed) = closed_at
            && (pending.is_empty() || closed.elapsed() > drain)
        {
            return Ok(acked);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// How to search the engine.
#[derive(Clone)]
pub struct Engine {
    /// Client.
    pub http: reqwest::Client,
    /// Base URL.
    pub url: String,
}

impl Engine {
    /// `POST /<index>/_search` with `body`.
    pub async fn search(&self, index: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}/{index}/_search", self.url))
            .json(body)
            .send()
            .await?;
        let status = response.status();
        let value: Value = response.json().await?;
        anyhow::ensure!(status.is_success(), "search answered {status}: {value}");
        Ok(value)
    }

    /// The descriptions of projects `ids` that a search of `index` sees now.
    pub async fn descriptions(
        &self,
        index: &str,
        ids: &[i64],
    ) -> anyhow::Result<HashMap<i64, String>> {
        let values: Vec<String> = ids.iter().map(i64::to_string).collect();
        let body = json!({
            "size": values.len(),
            "_source": ["description"],
            "query": { "ids": { "values": values } },
        });
        let found = self.search(index, &body).await?;
        let mut descriptions = HashMap::new();
        for hit in found["hits"]["hits"].as_array().into_iter().flatten() {
            if let (Some(id), Some(description)) = (
                hit["_id"].as_str().and_then(|id| id.parse().ok()),
                hit["_source"]["description"].as_str(),
            ) {
                descriptions.insert(id, description.to_owned());
            }
        }
        Ok(descriptions)
    }

    /// Documents matching `query` in `index`, as a search counts them.
    pub async fn count(&self, index: &str, query: Value) -> anyhow::Result<u64> {
        let response = self
            .http
            .post(format!("{}/{index}/_count", self.url))
            .json(&json!({ "query": query }))
            .send()
            .await?;
        let value: Value = response.json().await?;
        value["count"].as_u64().context("no count in answer")
    }
}

/// Marks probes searchable (see the module docs); gives up on a probe after 60 s.
async fn track_searchable(
    engine: Engine,
    index: String,
    mut probes: mpsc::UnboundedReceiver<(usize, i64, String)>,
    drain: Duration,
) -> anyhow::Result<HashMap<usize, Instant>> {
    let mut pending: Vec<(usize, i64, String, Instant)> = Vec::new();
    let mut seen = HashMap::new();
    let mut closed_at: Option<Instant> = None;
    loop {
        loop {
            match probes.try_recv() {
                Ok((i, project, marker)) => pending.push((i, project, marker, Instant::now())),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    closed_at.get_or_insert_with(Instant::now);
                    break;
                }
            }
        }
        if !pending.is_empty() {
            let ids: Vec<i64> = pending.iter().map(|(_, p, _, _)| *p).collect();
            if let Ok(descriptions) = engine.descriptions(&index, &ids).await {
                let now = Instant::now();
                pending.retain(|(i, project, marker, since)| {
                    let shown = descriptions.get(project).is_some_and(|d| shows(d, marker));
                    if shown {
                        seen.insert(*i, now);
                    }
                    !shown && since.elapsed() < Duration::from_secs(60)
                });
            }
        }
        if let Some(closed) = closed_at
            && (pending.is_empty() || closed.elapsed() > drain)
        {
            return Ok(seen);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What became of the probes the trackers never saw, looked at once after the outbox drained.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recheck {
    /// Searchable now: seen only after the trackers' window (late, not lost).
    pub late: usize,
    /// The database shows the marker and a search does not: an update lost on the way.
    pub lost: usize,
    /// The database no longer shows the marker (the project was deleted or rewritten since).
    pub gone: usize,
}

/// Looks at `probes` once more, in `index` and in the database: call it once nothing is pending,
/// so that every probe whose update reached the index is searchable (refresh included).
pub async fn recheck(
    engine: &Engine,
    index: &str,
    pool: &PgPool,
    probes: &[(i64, String)],
) -> anyhow::Result<Recheck> {
    let mut recheck = Recheck::default();
    if probes.is_empty() {
        return Ok(recheck);
    }
    let ids: Vec<i64> = probes.iter().map(|(project, _)| *project).collect();
    let indexed = engine.descriptions(index, &ids).await?;
    let stored: HashMap<i64, String> = sqlx::query_as::<_, (i64, Option<String>)>(
        "SELECT id::bigint, description FROM projects WHERE id = ANY($1::bigint[])",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|(id, description)| (id, description.unwrap_or_default()))
    .collect();
    for (project, marker) in probes {
        if indexed.get(project).is_some_and(|d| shows(d, marker)) {
            recheck.late += 1;
        } else if stored.get(project).is_some_and(|d| shows(d, marker)) {
            recheck.lost += 1;
            if recheck.lost <= 3 {
                println!(
                    "  update lost: project {project}, marker {marker}; the index has {:?}",
                    indexed.get(project).map(|d| crate::truncate(d, 40))
                );
            }
        } else {
            recheck.gone += 1;
        }
    }
    Ok(recheck)
}

/// Whether a description shows `marker`'s write: it starts with that marker, or with a later marker
/// of the same run (`mk<tag>x<n>`, a higher `n`), which overwrote the project after it.
fn shows(description: &str, marker: &str) -> bool {
    let first = description.split(' ').next().unwrap_or_default();
    if first == marker {
        return true;
    }
    let split = |m: &str| {
        m.rfind('x')
            .map(|at| (m[..at].to_owned(), m[at + 1..].parse::<u64>().ok()))
    };
    match (split(first), split(marker)) {
        (Some((run, Some(later))), Some((wanted_run, Some(wanted)))) => {
            run == wanted_run && later > wanted
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_marker_of_the_same_run_shows_an_earlier_write() {
        assert!(shows("mk1fx7 rest", "mk1fx7"));
        assert!(shows("mk1fx12 rest", "mk1fx7"));
        assert!(!shows("mk1fx6 rest", "mk1fx7"));
        assert!(!shows("mk2ax12 rest", "mk1fx7"));
        assert!(!shows("d631a9eb mk1fx12 rest", "mk1fx7"));
        assert!(!shows("", "mk1fx7"));
    }
}
