//! Debian's package metadata as a real corpus nobody here wrote: `apt-cache dumpavail` parsed into
//! packages, mapped onto the five tables and loaded into PostgreSQL, deterministically.
//!
//! The mapping: a binary package is a project (`name` = `slug` = the package name, `description` =
//! its one-line `Description`); its `Section` (without an archive area such as `contrib/`) and its
//! debtags (`Tag`, such as `role::program`) are hashtags; the names in `Maintainer` and `Uploaders`
//! are users, its creators (Debian's binary package index has no `Uploaders`; a file that has them is
//! read too). Packages are sorted by name and numbered from 1, users and hashtags likewise, and every
//! `created_at` is derived from the name, so the same packages always give the same rows.
//!
//! A fixed sample of the corpus is committed as `data/debian-sample.txt.gz` (made by
//! [`sample_text`], see `docs/relevance.md`), so that tests do not depend on the machine's apt lists.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{Read, Write};

use anyhow::Context;
use chrono::{DateTime, Utc};
use sea_orm::sqlx::{self, Connection, PgConnection};

/// The committed sample, gzip-compressed `apt-cache dumpavail` text.
const SAMPLE: &[u8] = include_bytes!("../data/debian-sample.txt.gz");

/// One in this many source packages (by a hash of the source name) is in the sample, with all its
/// binary packages, so that near names (`libfoo1`, `libfoo-dev`, `libfoo-doc`) compete as they do in
/// the whole archive.
pub const SAMPLE_ONE_IN: u64 = 12;

/// A binary package, as far as the corpus uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// `Package`: the name, unique in the corpus.
    pub name: String,
    /// `Source` without its version, or the package name when absent.
    pub source: String,
    /// `Description`: the one-line synopsis.
    pub description: String,
    /// `Section` without its archive area (`contrib/games` → `games`).
    pub section: Option<String>,
    /// `Tag`: debtags such as `role::program`, in file order.
    pub tags: Vec<String>,
    /// Names (without e-mail addresses) of `Maintainer` then `Uploaders`, deduplicated.
    pub creators: Vec<String>,
}

impl Package {
    /// The package's hashtags: its section, then its debtags.
    pub fn hashtags(&self) -> impl Iterator<Item = &str> {
        self.section
            .as_deref()
            .into_iter()
            .chain(self.tags.iter().map(String::as_str))
    }
}

/// Parses `apt-cache dumpavail` (or a Debian `Packages` file): the first stanza of each package name
/// wins; packages come out sorted by name. Stanzas without a `Package` field are skipped.
pub fn parse_dumpavail(text: &str) -> Vec<Package> {
    let mut packages: BTreeMap<String, Package> = BTreeMap::new();
    for stanza in text.split("\n\n") {
        let fields = fields(stanza);
        let Some(name) = fields.get("Package").map(|name| name.trim().to_owned()) else {
            continue;
        };
        if name.is_empty() || packages.contains_key(&name) {
            continue;
        }
        let field = |key: &str| fields.get(key).map(|value| value.trim()).unwrap_or("");
        let source = field("Source")
            .split_whitespace()
            .next()
            .unwrap_or(&name)
            .to_owned();
        let description = field("Description").lines().next().unwrap_or("").trim();
        let section = Some(field("Section"))
            .filter(|section| !section.is_empty())
            .map(|section| section.rsplit('/').next().unwrap_or(section).to_owned());
        let tags = field("Tag")
            .split(',')
            .map(str::trim)
            .filter(|tag| !tag.is_empty())
            .map(str::to_owned)
            .collect();
        let mut creators: Vec<String> = Vec::new();
        for person in people(field("Maintainer")).chain(people(field("Uploaders"))) {
            if !creators.contains(&person) {
                creators.push(person);
            }
        }
        packages.insert(
            name.clone(),
            Package {
                name,
                source,
                description: description.to_owned(),
                section,
                tags,
                creators,
            },
        );
    }
    packages.into_values().collect()
}

/// The fields of a stanza; continuation lines (starting with a space) are joined to their field.
fn fields(stanza: &str) -> BTreeMap<&str, String> {
    let mut fields: BTreeMap<&str, String> = BTreeMap::new();
    let mut current: Option<&str> = None;
    for line in stanza.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(value) = current.and_then(|key| fields.get_mut(key)) {
                value.push('\n');
                value.push_str(line.trim());
            }
        } else if let Some((key, value)) = line.split_once(':') {
            current = Some(key);
            fields.insert(key, value.trim().to_owned());
        }
    }
    fields
}

/// The names in a list of `Name <address>` entries separated by commas (commas inside quotes
/// belong to the name, as in `"Adam C. Powell, IV" <hazelsct@debian.org>`).
fn people(list: &str) -> impl Iterator<Item = String> + '_ {
    let mut entries = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (at, c) in list.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                entries.push(&list[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    entries.push(&list[start..]);
    entries.into_iter().filter_map(|entry| {
        let name = entry.split('<').next().unwrap_or("");
        let name: String = name.replace('"', "");
        let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
        Some(name).filter(|name| !name.is_empty())
    })
}

/// A dumpavail text reduced to the sample: the packages of one source in [`SAMPLE_ONE_IN`] (by the
/// source name's hash), with only the fields the corpus reads.
pub fn sample_text(dumpavail: &str) -> String {
    let packages = parse_dumpavail(dumpavail);
    dumpavail_text(
        packages
            .iter()
            .filter(|package| fnv1a(&package.source).is_multiple_of(SAMPLE_ONE_IN)),
    )
}

/// Packages written back as dumpavail stanzas holding only the fields the corpus reads.
fn dumpavail_text<'a>(packages: impl Iterator<Item = &'a Package>) -> String {
    let mut out = String::new();
    for package in packages {
        let _ = writeln!(out, "Package: {}", package.name);
        if package.source != package.name {
            let _ = writeln!(out, "Source: {}", package.source);
        }
        if let Some((maintainer, uploaders)) = package.creators.split_first() {
            let _ = writeln!(out, "Maintainer: {}", quote(maintainer));
            if !uploaders.is_empty() {
                let quoted: Vec<String> = uploaders.iter().map(|name| quote(name)).collect();
                let _ = writeln!(out, "Uploaders: {}", quoted.join(", "));
            }
        }
        if !package.description.is_empty() {
            let _ = writeln!(out, "Description: {}", package.description);
        }
        if !package.tags.is_empty() {
            let _ = writeln!(out, "Tag: {}", package.tags.join(", "));
        }
        if let Some(section) = &package.section {
            let _ = writeln!(out, "Section: {section}");
        }
        out.push('\n');
    }
    out
}

/// A name as it may appear in a list: quoted when it holds a comma.
fn quote(name: &str) -> String {
    if name.contains(',') {
        format!("\"{name}\"")
    } else {
        name.to_owned()
    }
}

/// Gzip-compresses `text` (for writing the sample).
pub fn gzip(text: &str) -> anyhow::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(text.as_bytes())?;
    Ok(encoder.finish()?)
}

/// The packages, users and hashtags of a corpus, each numbered from 1 in name order: the ids the
/// five tables get.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// Projects: project id `n` is `packages[n - 1]`.
    pub packages: Vec<Package>,
    /// Users: user id `n` is `users[n - 1]`.
    pub users: Vec<String>,
    /// Hashtags: hashtag id `n` is `hashtags[n - 1]`.
    pub hashtags: Vec<String>,
}

impl Corpus {
    /// The corpus of `packages` (sorted by name and unique, as [`parse_dumpavail`] gives them).
    pub fn new(packages: Vec<Package>) -> Corpus {
        let users: BTreeSet<&str> = packages
            .iter()
            .flat_map(|package| package.creators.iter().map(String::as_str))
            .collect();
        let hashtags: BTreeSet<&str> = packages.iter().flat_map(Package::hashtags).collect();
        let users = users.into_iter().map(str::to_owned).collect();
        let hashtags = hashtags.into_iter().map(str::to_owned).collect();
        Corpus {
            packages,
            users,
            hashtags,
        }
    }

    /// The committed sample (`data/debian-sample.txt.gz`).
    pub fn sample() -> anyhow::Result<Corpus> {
        let mut text = String::new();
        flate2::read::GzDecoder::new(SAMPLE)
            .read_to_string(&mut text)
            .context("the committed Debian sample is not gzip-compressed UTF-8")?;
        Ok(Corpus::new(parse_dumpavail(&text)))
    }

    /// The project id of `package` (by name), if it is in the corpus.
    pub fn project_id(&self, package: &str) -> Option<i64> {
        self.packages
            .binary_search_by(|candidate| candidate.name.as_str().cmp(package))
            .ok()
            .map(|index| index as i64 + 1)
    }

    /// The package of project `id`.
    pub fn package(&self, id: i64) -> Option<&Package> {
        usize::try_from(id - 1)
            .ok()
            .and_then(|index| self.packages.get(index))
    }

    /// The user id of a creator name.
    pub fn user_id(&self, name: &str) -> Option<i64> {
        self.users
            .binary_search_by(|candidate| candidate.as_str().cmp(name))
            .ok()
            .map(|index| index as i64 + 1)
    }

    /// The hashtag id of a hashtag name.
    pub fn hashtag_id(&self, name: &str) -> Option<i64> {
        self.hashtags
            .binary_search_by(|candidate| candidate.as_str().cmp(name))
            .ok()
            .map(|index| index as i64 + 1)
    }
}

/// A creation time derived from `name`: within ten years from 2015-01-01, the same for the same
/// name whatever else the corpus holds.
pub fn created_at(name: &str) -> DateTime<Utc> {
    const START: i64 = 1_420_070_400; // 2015-01-01T00:00:00Z
    const SPAN: u64 = 10 * 365 * 86_400;
    let offset = i64::try_from(fnv1a(name) % SPAN).unwrap_or_default();
    DateTime::from_timestamp(START + offset, 0).unwrap_or_default()
}

/// 64-bit FNV-1a: a stable hash (std's hashers may change between releases).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Rows loaded per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// `users` rows.
    pub users: u64,
    /// `hashtags` rows.
    pub hashtags: u64,
    /// `projects` rows.
    pub projects: u64,
    /// `user_projects` rows.
    pub user_projects: u64,
    /// `project_hashtags` rows.
    pub project_hashtags: u64,
}

/// Fills the five tables of the database at `database_url` with `corpus`, in one transaction with
/// `COPY`, ids as numbered by the corpus; moves the identity sequences past them. The tables must
/// exist (`athens migrate`) and be empty.
pub async fn load(database_url: &str, corpus: &Corpus) -> anyhow::Result<LoadReport> {
    let mut conn = PgConnection::connect(database_url)
        .await
        .with_context(|| format!("cannot connect to {database_url}"))?;
    let mut users = String::new();
    for (index, name) in corpus.users.iter().enumerate() {
        let _ = writeln!(users, "{}\t{}\t{}", index + 1, escape(name), at(name));
    }
    let mut hashtags = String::new();
    for (index, name) in corpus.hashtags.iter().enumerate() {
        let _ = writeln!(hashtags, "{}\t{}\t{}", index + 1, escape(name), at(name));
    }
    let (mut projects, mut creators, mut tags) = (String::new(), String::new(), String::new());
    for (index, package) in corpus.packages.iter().enumerate() {
        let id = index + 1;
        let name = escape(&package.name);
        let _ = writeln!(
            projects,
            "{id}\t{name}\t{name}\t{}\t{}",
            escape(&package.description),
            at(&package.name)
        );
        for creator in &package.creators {
            let user = corpus.user_id(creator).context("creator not in corpus")?;
            let _ = writeln!(creators, "{id}\t{user}");
        }
        let mut seen = BTreeSet::new();
        for hashtag in package.hashtags() {
            let hashtag = corpus
                .hashtag_id(hashtag)
                .context("hashtag not in corpus")?;
            if seen.insert(hashtag) {
                let _ = writeln!(tags, "{id}\t{hashtag}");
            }
        }
    }
    let mut tx = conn.begin().await?;
    let report = LoadReport {
        users: copy(&mut tx, "users (id, name, created_at)", &users).await?,
        hashtags: copy(&mut tx, "hashtags (id, name, created_at)", &hashtags).await?,
        projects: copy(
            &mut tx,
            "projects (id, name, slug, description, created_at)",
            &projects,
        )
        .await?,
        user_projects: copy(&mut tx, "user_projects (project_id, user_id)", &creators).await?,
        project_hashtags: copy(&mut tx, "project_hashtags (project_id, hashtag_id)", &tags).await?,
    };
    for table in ["users", "hashtags", "projects"] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'), greatest(max(id), 1)) FROM {table}"
        )))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    sqlx::raw_sql("ANALYZE users, hashtags, projects, user_projects, project_hashtags")
        .execute(&mut conn)
        .await?;
    conn.close().await.ok();
    Ok(report)
}

fn at(name: &str) -> String {
    created_at(name).to_rfc3339()
}

/// A value in COPY's text format.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// Streams COPY text into `target`; returns the rows copied.
async fn copy(conn: &mut PgConnection, target: &str, data: &str) -> anyhow::Result<u64> {
    if data.is_empty() {
        return Ok(0);
    }
    let mut sink = conn
        .copy_in_raw(&format!("COPY {target} FROM STDIN"))
        .await?;
    if let Err(error) = sink.send(data.as_bytes()).await {
        sink.abort("load aborted").await.ok();
        return Err(error).with_context(|| format!("COPY {target}"));
    }
    sink.finish()
        .await
        .with_context(|| format!("COPY {target}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "Package: 0ad\nVersion: 1\nMaintainer: Debian Games Team <pkg-games@lists>\n\
Description: Real-time strategy game of ancient warfare\nTag: game::strategy, interface::graphical,\n \
role::program,\n x11::application\nSection: contrib/games\n\n\
Package: 0ad-data\nSource: 0ad (0.1)\nMaintainer: \"Adam C. Powell, IV\" <h@debian.org>\n\
Uploaders: Jane Doe <j@d>, Debian Games Team <g@l>\nDescription: data files\n long text\n\n\
Package: 0ad\nDescription: a later duplicate\n";

    #[test]
    fn parses_stanzas_continuations_people_and_sections() {
        let packages = parse_dumpavail(DUMP);
        assert_eq!(packages.len(), 2, "the first stanza of a name wins");
        let game = &packages[0];
        assert_eq!(game.name, "0ad");
        assert_eq!(game.source, "0ad");
        assert_eq!(
            game.description,
            "Real-time strategy game of ancient warfare"
        );
        assert_eq!(game.section.as_deref(), Some("games"));
        assert_eq!(
            game.tags,
            [
                "game::strategy",
                "interface::graphical",
                "role::program",
                "x11::application"
            ]
        );
        assert_eq!(game.creators, ["Debian Games Team"]);
        let data = &packages[1];
        assert_eq!(data.source, "0ad");
        assert_eq!(data.description, "data files");
        assert_eq!(
            data.creators,
            ["Adam C. Powell, IV", "Jane Doe", "Debian Games Team"]
        );
        assert_eq!(data.section, None);
    }

    #[test]
    fn corpus_numbers_everything_by_name() {
        let corpus = Corpus::new(parse_dumpavail(DUMP));
        assert_eq!(
            corpus.users,
            ["Adam C. Powell, IV", "Debian Games Team", "Jane Doe"]
        );
        assert_eq!(corpus.user_id("Jane Doe"), Some(3));
        assert_eq!(corpus.project_id("0ad-data"), Some(2));
        assert_eq!(corpus.package(1).map(|p| p.name.as_str()), Some("0ad"));
        assert_eq!(corpus.hashtag_id("game::strategy"), Some(1));
        assert_eq!(corpus.hashtag_id("games"), Some(2));
        assert_eq!(created_at("0ad"), created_at("0ad"));
        assert_ne!(created_at("0ad"), created_at("0ad-data"));
    }

    #[test]
    fn written_stanzas_read_back_as_the_same_packages() {
        let packages = parse_dumpavail(DUMP);
        assert_eq!(parse_dumpavail(&dumpavail_text(packages.iter())), packages);
        let sampled = parse_dumpavail(&sample_text(DUMP));
        let expected: Vec<Package> = packages
            .into_iter()
            .filter(|package| fnv1a(&package.source).is_multiple_of(SAMPLE_ONE_IN))
            .collect();
        assert_eq!(sampled, expected);
    }

    #[test]
    fn the_committed_sample_is_a_few_thousand_packages() {
        let corpus = Corpus::sample().unwrap();
        assert!(
            (2_000..10_000).contains(&corpus.packages.len()),
            "{} packages",
            corpus.packages.len()
        );
        assert!(corpus.users.len() > 200 && corpus.hashtags.len() > 200);
    }
}
