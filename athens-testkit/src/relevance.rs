//! Relevance measurement on the Debian corpus: query sets generated with a fixed seed, the
//! judgement of a hit, and success@1, success@5 and MRR per query kind.
//!
//! Every query knows what counts as a right answer (its `target`, read per kind): the package itself
//! for names with a typo, any package whose name starts with the prefix typed so far, any package
//! whose name and description hold all the words, any package with the hashtags, any package the
//! maintainer created. Typos never touch the first character and never produce another package's
//! name (or, in a word, another word of the corpus): that would make another answer right.
//!
//! The recorded set for the committed sample is `data/debian-queries.tsv` (`kind`, `input`,
//! `target` per line), made by [`generate`] with [`SEED`].

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use athens_core::{HashtagMode, SearchRequest};
use futures::{StreamExt, TryStreamExt};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::debian::{Corpus, Package};

/// The seed of the recorded query set.
pub const SEED: u64 = 11;

/// Hits asked for per query: MRR counts the first right answer within them.
pub const HITS: usize = 10;

/// The recorded query set of the committed sample.
const RECORDED: &str = include_str!("../data/debian-queries.tsv");

/// What a query tries, and so what counts as its right answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// The exact package name.
    NameExact,
    /// The name with two neighbouring characters swapped.
    NameTransposition,
    /// The name with a character left out.
    NameDeletion,
    /// The name with a neighbouring key typed in addition.
    NameInsertion,
    /// The name with a character replaced by a neighbouring key.
    NameSubstitution,
    /// A hyphenated name with spaces for its hyphens.
    NameHyphenSpace,
    /// A hyphenated name with its hyphens left out.
    NameHyphenDropped,
    /// The start of a name, as typed so far: any package whose name starts so is right.
    NamePrefix,
    /// Two words of a description: any package holding both is right.
    DescriptionWords,
    /// The same with a typo in one word.
    DescriptionTypo,
    /// Three or four consecutive words of a description.
    MultiWord,
    /// Two hashtags, any of them.
    HashtagsAny,
    /// Two hashtags of one package, all of them.
    HashtagsAll,
    /// A maintainer's name with a typo: any of their packages is right.
    Maintainer,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 14] = [
        Kind::NameExact,
        Kind::NameTransposition,
        Kind::NameDeletion,
        Kind::NameInsertion,
        Kind::NameSubstitution,
        Kind::NameHyphenSpace,
        Kind::NameHyphenDropped,
        Kind::NamePrefix,
        Kind::DescriptionWords,
        Kind::DescriptionTypo,
        Kind::MultiWord,
        Kind::HashtagsAny,
        Kind::HashtagsAll,
        Kind::Maintainer,
    ];

    /// Its name in query files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::NameExact => "name-exact",
            Kind::NameTransposition => "name-transposition",
            Kind::NameDeletion => "name-deletion",
            Kind::NameInsertion => "name-insertion",
            Kind::NameSubstitution => "name-substitution",
            Kind::NameHyphenSpace => "name-hyphen-space",
            Kind::NameHyphenDropped => "name-hyphen-dropped",
            Kind::NamePrefix => "name-prefix",
            Kind::DescriptionWords => "description-words",
            Kind::DescriptionTypo => "description-typo",
            Kind::MultiWord => "multi-word",
            Kind::HashtagsAny => "hashtags-any",
            Kind::HashtagsAll => "hashtags-all",
            Kind::Maintainer => "maintainer-typo",
        }
    }

    /// Whether the query names one package with one typo (the kinds of the 0.95/0.99 target).
    pub fn is_name_typo(self) -> bool {
        matches!(
            self,
            Kind::NameTransposition
                | Kind::NameDeletion
                | Kind::NameInsertion
                | Kind::NameSubstitution
                | Kind::NameHyphenSpace
                | Kind::NameHyphenDropped
        )
    }
}

impl Kind {
    /// Whether the query is free text (`q=`), not hashtags or a user name.
    pub fn is_free_text(self) -> bool {
        !matches!(
            self,
            Kind::HashtagsAny | Kind::HashtagsAll | Kind::Maintainer
        )
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kind {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<Kind> {
        Kind::ALL
            .into_iter()
            .find(|kind| kind.name() == text)
            .with_context(|| format!("unknown query kind {text:?}"))
    }
}

/// One query: what is typed and what counts as right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Its kind.
    pub kind: Kind,
    /// What the user types: text, hashtags separated by commas, or a user name.
    pub input: String,
    /// The right answer, read per kind: a package name, a name prefix, words, hashtags separated
    /// by commas, or a user name.
    pub target: String,
}

impl Query {
    /// Whether `package` is a right answer.
    pub fn is_right(&self, package: &Package) -> bool {
        match self.kind {
            Kind::NamePrefix => package.name.starts_with(&self.target),
            Kind::DescriptionWords | Kind::DescriptionTypo | Kind::MultiWord => {
                let words = words(&format!("{} {}", package.name, package.description));
                self.target
                    .split(' ')
                    .all(|word| STOPWORDS.contains(&word) || words.contains(word))
            }
            Kind::HashtagsAny => self
                .target
                .split(',')
                .any(|tag| package.hashtags().any(|has| has == tag)),
            Kind::HashtagsAll => self
                .target
                .split(',')
                .all(|tag| package.hashtags().any(|has| has == tag)),
            Kind::Maintainer => package.creators.contains(&self.target),
            _ => package.name == self.target,
        }
    }

    /// The request the API makes of this query: free text, hashtags or a user name.
    pub fn request(&self) -> SearchRequest {
        let mut request = SearchRequest {
            size: HITS,
            ..SearchRequest::default()
        };
        match self.kind {
            Kind::HashtagsAny | Kind::HashtagsAll => {
                request.hashtags = self.input.split(',').map(str::to_owned).collect();
                request.hashtag_mode = if self.kind == Kind::HashtagsAll {
                    HashtagMode::All
                } else {
                    HashtagMode::Any
                };
            }
            Kind::Maintainer => request.user_name = Some(self.input.clone()),
            _ => request.text = Some(self.input.clone()),
        }
        request
    }

    /// The baseline: a plain `multi_match` of the input over `slug` and `description` with
    /// `fuzziness: AUTO` (hashtags typed as words).
    pub fn baseline_body(&self) -> Value {
        json!({
            "size": HITS,
            "query": { "multi_match": {
                "query": self.input.replace(',', " "),
                "fields": ["slug", "description"],
                "fuzziness": "AUTO",
            } },
        })
    }
}

/// Lowercase runs of letters and digits.
fn words(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Words too common to choose as description words (and not required of a right answer).
const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "into", "is", "it", "of",
    "on", "or", "that", "the", "this", "to", "with", "without", "your", "which", "based", "using",
    "other", "some", "more", "very", "also",
];

/// The committed sample's recorded query set.
pub fn recorded() -> anyhow::Result<Vec<Query>> {
    read_queries(RECORDED)
}

/// Parses a query file: `kind<TAB>input<TAB>target` per line.
pub fn read_queries(text: &str) -> anyhow::Result<Vec<Query>> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(number, line)| {
            let mut parts = line.split('\t');
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(kind), Some(input), Some(target), None) => Ok(Query {
                    kind: kind.parse()?,
                    input: input.to_owned(),
                    target: target.to_owned(),
                }),
                _ => bail!("line {}: expected kind, input and target", number + 1),
            }
        })
        .collect()
}

/// Writes queries in the format [`read_queries`] reads.
pub fn write_queries(queries: &[Query]) -> String {
    queries
        .iter()
        .map(|query| format!("{}\t{}\t{}\n", query.kind, query.input, query.target))
        .collect()
}

/// Up to `per_kind` queries of every kind from `corpus`, drawn with `seed`: the same corpus and
/// seed always give the same queries.
pub fn generate(corpus: &Corpus, per_kind: usize, seed: u64) -> Vec<Query> {
    let names: HashSet<&str> = corpus.packages.iter().map(|p| p.name.as_str()).collect();
    let vocabulary: HashSet<String> = corpus
        .packages
        .iter()
        .flat_map(|p| words(&format!("{} {}", p.name, p.description)))
        .collect();
    let users: HashSet<&str> = corpus.users.iter().map(String::as_str).collect();
    let mut queries = Vec::new();
    for kind in Kind::ALL {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (kind as u64).wrapping_mul(0x9e37_79b9));
        let mut seen = BTreeSet::new();
        for _ in 0..per_kind * 50 {
            if seen.len() == per_kind {
                break;
            }
            let Some(package) = corpus.packages.choose(&mut rng) else {
                break;
            };
            let drawn = match kind {
                Kind::NameExact => Some((package.name.clone(), package.name.clone())),
                Kind::NamePrefix => prefix(&package.name, &mut rng),
                Kind::DescriptionWords | Kind::DescriptionTypo => {
                    description_words(package, kind, &vocabulary, &mut rng)
                }
                Kind::MultiWord => phrase(package, &mut rng),
                Kind::HashtagsAny => {
                    let first = package.hashtags().collect::<Vec<_>>();
                    let other = corpus.packages.choose(&mut rng);
                    let second = other.map(|p| p.hashtags().collect::<Vec<_>>());
                    match (
                        first.choose(&mut rng),
                        second.as_deref().and_then(|s| s.choose(&mut rng)),
                    ) {
                        (Some(a), Some(b)) if a != b => {
                            let tags = format!("{a},{b}");
                            Some((tags.clone(), tags))
                        }
                        _ => None,
                    }
                }
                Kind::HashtagsAll => {
                    let tags: Vec<&str> = package.hashtags().collect();
                    let pair: Vec<&&str> = tags.choose_multiple(&mut rng, 2).collect();
                    match pair.as_slice() {
                        [a, b] => {
                            let tags = format!("{a},{b}");
                            Some((tags.clone(), tags))
                        }
                        _ => None,
                    }
                }
                Kind::Maintainer => package.creators.choose(&mut rng).and_then(|name| {
                    let typed = typo_in_a_word(name, &mut rng)?;
                    (!users.contains(typed.as_str())).then(|| (typed, name.clone()))
                }),
                _ => name_typo(&package.name, kind, &mut rng)
                    .filter(|typed| !names.contains(typed.as_str()))
                    .map(|typed| (typed, package.name.clone())),
            };
            if let Some((input, target)) = drawn
                && !input.trim().is_empty()
                && seen.insert(input.clone())
            {
                queries.push(Query {
                    kind,
                    input,
                    target,
                });
            }
        }
    }
    queries
}

/// The name with one typo of `kind`, never in its first character; `None` when the name has no
/// place for one (too short, no hyphen).
fn name_typo(name: &str, kind: Kind, rng: &mut ChaCha8Rng) -> Option<String> {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() < 4 {
        return None;
    }
    match kind {
        Kind::NameHyphenSpace => name.contains('-').then(|| name.replace('-', " ")),
        Kind::NameHyphenDropped => name.contains('-').then(|| name.replace('-', "")),
        _ => typo(&chars, kind, rng),
    }
}

/// One typo of a letter-and-digit kind in `chars`, after the first character.
fn typo(chars: &[char], kind: Kind, rng: &mut ChaCha8Rng) -> Option<String> {
    let mut chars = chars.to_vec();
    let spots: Vec<usize> = (1..chars.len())
        .filter(|&at| match kind {
            Kind::NameTransposition => {
                at + 1 < chars.len()
                    && chars[at].is_ascii_alphanumeric()
                    && chars[at + 1].is_ascii_alphanumeric()
                    && chars[at] != chars[at + 1]
            }
            Kind::NameInsertion => neighbours(chars[at - 1]).is_some(),
            _ => chars[at].is_ascii_alphanumeric() && neighbours(chars[at]).is_some(),
        })
        .collect();
    let &at = spots.choose(rng)?;
    match kind {
        Kind::NameTransposition => chars.swap(at, at + 1),
        Kind::NameDeletion => {
            chars.remove(at);
        }
        Kind::NameInsertion => {
            let keys = neighbours(chars[at - 1])?;
            chars.insert(at, *keys.choose(rng)?);
        }
        _ => {
            let keys = neighbours(chars[at])?;
            chars[at] = *keys.choose(rng)?;
        }
    }
    Some(chars.into_iter().collect())
}

/// Keys next to `key` on a QWERTY keyboard (digits: the digits beside it).
fn neighbours(key: char) -> Option<Vec<char>> {
    const ROWS: [&str; 4] = ["1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm"];
    let key = key.to_ascii_lowercase();
    let (row, col) = ROWS
        .iter()
        .enumerate()
        .find_map(|(row, keys)| keys.find(key).map(|col| (row, col)))?;
    let at = |row: usize, col: isize| -> Option<char> {
        let keys = ROWS.get(row)?.as_bytes();
        usize::try_from(col)
            .ok()
            .and_then(|col| keys.get(col))
            .map(|&b| char::from(b))
    };
    let col = col as isize;
    let mut keys = vec![at(row, col - 1), at(row, col + 1)];
    if row >= 2 {
        keys.extend([at(row - 1, col), at(row - 1, col + 1)]);
    }
    if (1..3).contains(&row) {
        keys.extend([at(row + 1, col - 1), at(row + 1, col)]);
    }
    let keys: Vec<char> = keys.into_iter().flatten().collect();
    (!keys.is_empty()).then_some(keys)
}

/// The first 3 or more characters of a name, as typed so far, ending in a letter or digit.
fn prefix(name: &str, rng: &mut ChaCha8Rng) -> Option<(String, String)> {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() < 5 {
        return None;
    }
    let end = rng.random_range(3..chars.len());
    let typed: String = chars[..end].iter().collect();
    typed
        .ends_with(|c: char| c.is_ascii_alphanumeric())
        .then(|| (typed.clone(), typed))
}

/// Words of a description worth searching for: letters only, 4 or more, no stopwords.
fn content_words(description: &str) -> Vec<String> {
    let mut chosen: Vec<String> = Vec::new();
    for word in description.split_whitespace() {
        let word = word
            .trim_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase();
        if word.len() >= 4
            && word.chars().all(|c| c.is_ascii_alphabetic())
            && !STOPWORDS.contains(&word.as_str())
            && !chosen.contains(&word)
        {
            chosen.push(word);
        }
    }
    chosen
}

/// Two words of the description (one with a typo for [`Kind::DescriptionTypo`]).
fn description_words(
    package: &Package,
    kind: Kind,
    vocabulary: &HashSet<String>,
    rng: &mut ChaCha8Rng,
) -> Option<(String, String)> {
    let words = content_words(&package.description);
    let pair: Vec<&String> = words.choose_multiple(rng, 2).collect();
    let [first, second] = pair.as_slice() else {
        return None;
    };
    let target = format!("{first} {second}");
    if kind == Kind::DescriptionWords {
        return Some((target.clone(), target));
    }
    let (typed, kept) = if first.len() >= second.len() {
        (first, second)
    } else {
        (second, first)
    };
    if typed.len() < 5 {
        return None;
    }
    let wrong = word_typo(typed, rng)?;
    if vocabulary.contains(&wrong) {
        return None;
    }
    let input = if typed == first {
        format!("{wrong} {kept}")
    } else {
        format!("{kept} {wrong}")
    };
    Some((input, target))
}

/// One typo of a random letter kind in `word`, after its first letter.
fn word_typo(word: &str, rng: &mut ChaCha8Rng) -> Option<String> {
    let kinds = [
        Kind::NameTransposition,
        Kind::NameDeletion,
        Kind::NameInsertion,
        Kind::NameSubstitution,
    ];
    let kind = *kinds.choose(rng)?;
    let chars: Vec<char> = word.chars().collect();
    typo(&chars, kind, rng)
}

/// A typo in one word of five or more letters of a person's or team's name.
fn typo_in_a_word(name: &str, rng: &mut ChaCha8Rng) -> Option<String> {
    let parts: Vec<&str> = name.split(' ').collect();
    let long: Vec<usize> = (0..parts.len())
        .filter(|&at| {
            parts[at].chars().count() >= 5 && parts[at].chars().all(|c| c.is_ascii_alphabetic())
        })
        .collect();
    let &at = long.choose(rng)?;
    let wrong = word_typo(parts[at], rng)?;
    let mut typed: Vec<String> = parts.iter().map(|part| (*part).to_owned()).collect();
    typed[at] = wrong;
    Some(typed.join(" "))
}

/// Three or four consecutive words of the description.
fn phrase(package: &Package, rng: &mut ChaCha8Rng) -> Option<(String, String)> {
    let words: Vec<String> = package
        .description
        .split_whitespace()
        .map(|word| {
            word.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|word| !word.is_empty() && word.chars().all(char::is_alphanumeric))
        .collect();
    let length = rng.random_range(3..=4).min(words.len());
    if length < 3 {
        return None;
    }
    let start = rng.random_range(0..=words.len() - length);
    let chosen = &words[start..start + length];
    if chosen
        .iter()
        .filter(|word| !STOPWORDS.contains(&word.as_str()))
        .count()
        < 2
    {
        return None;
    }
    let text = chosen.join(" ");
    Some((text.clone(), text))
}

/// Scores of one query kind for one system.
#[derive(Debug, Clone, Default)]
pub struct KindScore {
    /// Queries run.
    pub queries: usize,
    /// Queries whose first hit is right.
    pub first: usize,
    /// Queries with a right hit in the first five.
    pub five: usize,
    /// Sum of 1/rank of the first right hit (within [`HITS`]).
    pub reciprocal_ranks: f64,
    /// Latency of each search.
    pub latencies: Vec<Duration>,
}

impl KindScore {
    /// success@1.
    pub fn success_at_1(&self) -> f64 {
        ratio(self.first as f64, self.queries)
    }

    /// success@5.
    pub fn success_at_5(&self) -> f64 {
        ratio(self.five as f64, self.queries)
    }

    /// Mean reciprocal rank.
    pub fn mrr(&self) -> f64 {
        ratio(self.reciprocal_ranks, self.queries)
    }

    /// The latency at quantile `q` (0 to 1), nearest rank.
    pub fn latency(&self, q: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }
}

fn ratio(sum: f64, count: usize) -> f64 {
    if count == 0 { 0.0 } else { sum / count as f64 }
}

/// Scores per kind of one system.
pub type Scores = BTreeMap<Kind, KindScore>;

/// Runs every query through `search` (which returns the project ids of the hits, best first), at
/// most `concurrency` at a time, and scores the answers against `corpus`.
pub async fn evaluate<F, Fut>(
    corpus: &Corpus,
    queries: &[Query],
    concurrency: usize,
    search: F,
) -> anyhow::Result<Scores>
where
    F: Fn(&Query) -> Fut,
    Fut: Future<Output = anyhow::Result<Vec<i64>>>,
{
    let answers: Vec<(usize, Vec<i64>, Duration)> =
        futures::stream::iter(queries.iter().enumerate())
            .map(|(at, query)| {
                let search = &search;
                async move {
                    let started = Instant::now();
                    let hits = search(query)
                        .await
                        .with_context(|| format!("{} query {:?}", query.kind, query.input))?;
                    anyhow::Ok((at, hits, started.elapsed()))
                }
            })
            .buffer_unordered(concurrency.max(1))
            .try_collect()
            .await?;
    let mut scores = Scores::new();
    for (at, hits, took) in answers {
        let query = &queries[at];
        let score = scores.entry(query.kind).or_default();
        score.queries += 1;
        score.latencies.push(took);
        let rank = hits
            .iter()
            .take(HITS)
            .position(|&id| corpus.package(id).is_some_and(|p| query.is_right(p)));
        if let Some(rank) = rank {
            score.first += usize::from(rank == 0);
            score.five += usize::from(rank < 5);
            score.reciprocal_ranks += 1.0 / (rank + 1) as f64;
        }
    }
    Ok(scores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorded_queries_are_what_the_seed_generates_from_the_sample() {
        let corpus = Corpus::sample().unwrap();
        let generated = generate(&corpus, 60, SEED);
        assert_eq!(write_queries(&generated), RECORDED);
        let recorded = recorded().unwrap();
        for kind in Kind::ALL {
            let count = recorded.iter().filter(|q| q.kind == kind).count();
            assert!(count >= 40, "{kind}: only {count} queries");
        }
    }

    #[test]
    fn typos_keep_the_first_character_and_change_one_thing() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for kind in [
            Kind::NameTransposition,
            Kind::NameDeletion,
            Kind::NameInsertion,
            Kind::NameSubstitution,
        ] {
            for _ in 0..50 {
                let typed = name_typo("python3-requests", kind, &mut rng).unwrap();
                assert!(typed.starts_with('p'), "{kind}: {typed}");
                assert_ne!(typed, "python3-requests");
                let delta = typed.len() as isize - 16;
                let expected = match kind {
                    Kind::NameDeletion => -1,
                    Kind::NameInsertion => 1,
                    _ => 0,
                };
                assert_eq!(delta, expected, "{kind}: {typed}");
            }
        }
        assert_eq!(
            name_typo("python3-requests", Kind::NameHyphenSpace, &mut rng).as_deref(),
            Some("python3 requests")
        );
        assert_eq!(
            name_typo("python3-requests", Kind::NameHyphenDropped, &mut rng).as_deref(),
            Some("python3requests")
        );
        assert_eq!(name_typo("vim", Kind::NameDeletion, &mut rng), None);
        assert_eq!(neighbours('s'), Some(vec!['a', 'd', 'w', 'e', 'z', 'x']));
    }

    #[test]
    fn right_answers_follow_the_kind() {
        let package = Package {
            name: "0ad-data".into(),
            source: "0ad".into(),
            description: "Real-time strategy game (data files)".into(),
            section: Some("games".into()),
            tags: vec!["role::app-data".into()],
            creators: vec!["Debian Games Team".into()],
        };
        let query = |kind, target: &str| Query {
            kind,
            input: String::new(),
            target: target.into(),
        };
        assert!(query(Kind::NameDeletion, "0ad-data").is_right(&package));
        assert!(!query(Kind::NameDeletion, "0ad").is_right(&package));
        assert!(query(Kind::NamePrefix, "0ad-d").is_right(&package));
        assert!(query(Kind::DescriptionTypo, "strategy data").is_right(&package));
        assert!(query(Kind::MultiWord, "game of data").is_right(&package));
        assert!(!query(Kind::DescriptionWords, "strategy music").is_right(&package));
        assert!(query(Kind::HashtagsAny, "games,x11::application").is_right(&package));
        assert!(!query(Kind::HashtagsAll, "games,x11::application").is_right(&package));
        assert!(query(Kind::HashtagsAll, "games,role::app-data").is_right(&package));
        assert!(query(Kind::Maintainer, "Debian Games Team").is_right(&package));
    }

    #[test]
    fn queries_become_api_requests() {
        let tags = Query {
            kind: Kind::HashtagsAll,
            input: "games,role::program".into(),
            target: String::new(),
        };
        let request = tags.request();
        assert_eq!(request.hashtags, ["games", "role::program"]);
        assert_eq!(request.hashtag_mode, HashtagMode::All);
        assert_eq!(
            tags.baseline_body()["query"]["multi_match"]["query"],
            "games role::program"
        );
        let lines = write_queries(std::slice::from_ref(&tags));
        assert_eq!(read_queries(&lines).unwrap(), [tags]);
        assert!(read_queries("nonsense\tx\ty").is_err());
    }
}
