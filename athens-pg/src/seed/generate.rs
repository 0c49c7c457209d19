//! The deterministic row generator: one seeded ChaCha stream, consumed in a fixed order (users,
//! hashtags, then projects in id order), so the same options always give the same rows whatever the
//! batch size.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::SeedOptions;
use super::vocabulary::{
    ADJECTIVES, ENDINGS, FIRST_NAMES, LAST_NAMES, NOUNS, OBJECTS, TECH, VERBS,
};

/// Hand-written users, ids 1.. in this order.
pub(super) const HAND_USERS: &[&str] = &[
    "John Smith",
    "Jane Doe",
    "Ada Lovelace",
    "Grace Hopper",
    "Alan Turing",
];

/// Hand-written hashtags, ids 1.. in this order; also the most popular ones.
pub(super) const HAND_HASHTAGS: &[&str] = &[
    "rust",
    "search",
    "postgres",
    "elasticsearch",
    "golang",
    "terraform",
    "aws",
    "api",
    "devops",
    "opensearch",
];

/// A hand-written project: name, slug, description, creators and hashtags (1-based indexes into
/// [`HAND_USERS`] and [`HAND_HASHTAGS`]).
type HandProject = (
    &'static str,
    &'static str,
    &'static str,
    &'static [i32],
    &'static [i32],
);

/// Hand-written projects, ids 1.. in this order: recognisable rows for demos and relevance tests.
pub(super) const HAND_PROJECTS: &[HandProject] = &[
    (
        "Elasticsearch Sync",
        "elasticsearch-sync",
        "Keeps Elasticsearch in sync with PostgreSQL",
        &[1],
        &[1, 2, 3, 4],
    ),
    (
        "Postgres Outbox",
        "postgres-outbox",
        "A transactional outbox for PostgreSQL: triggers capture every change and LISTEN/NOTIFY \
         wakes the consumer",
        &[2],
        &[3, 1],
    ),
    (
        "Fuzzy Finder",
        "fuzzy-finder",
        "Typo-tolerant fuzzy search over project names, slugs and descriptions",
        &[1, 3],
        &[2, 5],
    ),
    (
        "Terraform AWS Search Stack",
        "terraform-aws-search-stack",
        "Provisions OpenSearch, RDS PostgreSQL and ECS Fargate on AWS with Terraform",
        &[2, 4],
        &[6, 7, 9, 10],
    ),
    (
        "Search API in Go",
        "search-api-go",
        "A REST API in Go that queries Elasticsearch for projects by creator, by hashtag and by \
         fuzzy text",
        &[4],
        &[5, 8, 2, 4],
    ),
    (
        "Analytical Engine",
        "analytical-engine",
        "Notes and simulations of the first general-purpose mechanical computer",
        &[3],
        &[],
    ),
    (
        "Compiler Toolkit",
        "compiler-toolkit",
        "Lexers, parsers and code generators for building small compilers",
        &[4, 5, 3],
        &[1],
    ),
];

/// A user or hashtag row to load: both tables hold an id, a name and a creation time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NamedRow {
    pub id: i32,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// A project row to load, with its links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ProjectRow {
    pub id: i32,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub creators: Vec<i32>,
    pub hashtags: Vec<i32>,
}

/// Draws ranks 0..n with probability proportional to 1 / (rank + 1)^s.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, exponent: f64) -> Zipf {
        let mut total = 0.0;
        let cumulative = (0..n)
            .map(|rank| {
                total += 1.0 / ((rank + 1) as f64).powf(exponent);
                total
            })
            .collect();
        Zipf { cumulative }
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let x = rng.random::<f64>() * total;
        self.cumulative
            .partition_point(|c| *c <= x)
            .min(self.cumulative.len().saturating_sub(1))
    }
}

/// Picks an index from relative weights.
fn weighted(rng: &mut ChaCha8Rng, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut x = rng.random_range(0..total.max(1));
    for (index, weight) in weights.iter().enumerate() {
        if x < *weight {
            return index;
        }
        x -= weight;
    }
    weights.len().saturating_sub(1)
}

fn pick<'a>(rng: &mut ChaCha8Rng, words: &[&'a str]) -> &'a str {
    words[rng.random_range(0..words.len())]
}

fn title(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "An"
    } else {
        "A"
    }
}

/// A time between `from` and `to` (Unix seconds).
fn time_between(rng: &mut ChaCha8Rng, from: i64, to: i64) -> DateTime<Utc> {
    let seconds = rng.random_range(from..to);
    Utc.timestamp_opt(seconds, 0).single().unwrap_or_default()
}

const Y2015: i64 = 1_420_070_400;
const Y2018: i64 = 1_514_764_800;
const Y2019: i64 = 1_546_300_800;
const Y2025: i64 = 1_748_736_000;

/// What the tables already hold when seeding adds to them.
#[derive(Debug, Default)]
pub(super) struct Existing {
    /// Highest `users.id` (0 when empty).
    pub user_base: i32,
    /// Highest `hashtags.id`.
    pub hashtag_base: i32,
    /// Highest `projects.id`.
    pub project_base: i32,
    /// Hashtags by name: reused rather than inserted again.
    pub hashtags: HashMap<String, i32>,
    /// Slugs taken.
    pub slugs: HashSet<String>,
}

impl Existing {
    /// Whether the tables are empty, so the hand-written rows go in with ids from 1.
    pub fn is_empty(&self) -> bool {
        self.user_base == 0 && self.hashtag_base == 0 && self.project_base == 0
    }
}

/// Produces the rows of a seed, in order.
pub(super) struct Generator {
    rng: ChaCha8Rng,
    /// Whether the hand-written rows are part of this seed (only into empty tables).
    hand: bool,
    user_base: i32,
    users: usize,
    hand_users: usize,
    /// Hashtag names and ids by popularity rank.
    hashtag_names: Vec<String>,
    hashtag_ids: Vec<i32>,
    popular_creator: Zipf,
    popular_hashtag: Zipf,
    taken_slugs: HashSet<String>,
    next_suffix: HashMap<String, u32>,
    project_base: i32,
    next_project: usize,
}

impl Generator {
    pub(super) fn new(options: &SeedOptions, existing: Existing) -> Generator {
        let hand = existing.is_empty();
        let hand_users = if hand { HAND_USERS.len() } else { 0 };
        let users = options.total_users().max(hand_users).max(1);
        let mut generator = Generator {
            rng: ChaCha8Rng::seed_from_u64(options.seed),
            hand,
            user_base: existing.user_base,
            users,
            hand_users,
            hashtag_names: Vec::new(),
            hashtag_ids: Vec::new(),
            popular_creator: Zipf::new((users - hand_users).max(1), 1.1),
            popular_hashtag: Zipf::new(options.total_hashtags(), 1.0),
            taken_slugs: existing.slugs,
            next_suffix: HashMap::new(),
            project_base: existing.project_base,
            next_project: 0,
        };
        generator.name_hashtags(
            options.total_hashtags(),
            &existing.hashtags,
            existing.hashtag_base,
        );
        generator
    }

    /// The users to insert: the hand-written ones (into empty tables), then "First Last" names.
    pub(super) fn users(&mut self) -> Vec<NamedRow> {
        (0..self.users)
            .map(|index| {
                let name = match HAND_USERS.get(index).filter(|_| self.hand) {
                    Some(name) => (*name).to_string(),
                    None => format!(
                        "{} {}",
                        pick(&mut self.rng, FIRST_NAMES),
                        pick(&mut self.rng, LAST_NAMES)
                    ),
                };
                NamedRow {
                    id: self.user_base + index as i32 + 1,
                    name,
                    created_at: time_between(&mut self.rng, Y2015, Y2019),
                }
            })
            .collect()
    }

    /// Names every hashtag by rank: the hand-written ones, technologies, then unique `tech-noun`
    /// pairs. Names that exist keep their id; new ones get ids after `base`.
    fn name_hashtags(&mut self, count: usize, existing: &HashMap<String, i32>, base: i32) {
        let mut seen: HashSet<String> = HashSet::new();
        for word in HAND_HASHTAGS.iter().chain(TECH) {
            if self.hashtag_names.len() < count && seen.insert((*word).to_string()) {
                self.hashtag_names.push((*word).to_string());
            }
        }
        while self.hashtag_names.len() < count {
            let mut name = format!(
                "{}-{}",
                pick(&mut self.rng, TECH),
                pick(&mut self.rng, NOUNS)
            );
            if seen.contains(&name) {
                name = format!("{name}-{}", self.hashtag_names.len());
            }
            if seen.insert(name.clone()) {
                self.hashtag_names.push(name);
            }
        }
        let mut next = base;
        self.hashtag_ids = self
            .hashtag_names
            .iter()
            .map(|name| match existing.get(name) {
                Some(id) => *id,
                None => {
                    next += 1;
                    next
                }
            })
            .collect();
    }

    /// The hashtags to insert: those whose names did not exist.
    pub(super) fn hashtags(&mut self, existing: &HashMap<String, i32>) -> Vec<NamedRow> {
        let names = self.hashtag_names.clone();
        names
            .into_iter()
            .zip(self.hashtag_ids.clone())
            .map(|(name, id)| {
                let created_at = time_between(&mut self.rng, Y2015, Y2018);
                (name, id, created_at)
            })
            .filter(|(name, _, _)| !existing.contains_key(name))
            .map(|(name, id, created_at)| NamedRow {
                id,
                name,
                created_at,
            })
            .collect()
    }

    /// The next `count` projects (hand-written ones first, into empty tables).
    pub(super) fn projects(&mut self, count: usize) -> Vec<ProjectRow> {
        (0..count).map(|_| self.project()).collect()
    }

    fn project(&mut self) -> ProjectRow {
        let index = self.next_project;
        self.next_project += 1;
        let id = self.project_base + index as i32 + 1;
        if let Some((name, slug, description, creators, hashtags)) =
            HAND_PROJECTS.get(index).filter(|_| self.hand)
        {
            self.taken_slugs.insert((*slug).to_string());
            return ProjectRow {
                id,
                name: (*name).to_string(),
                slug: (*slug).to_string(),
                description: Some((*description).to_string()),
                created_at: time_between(&mut self.rng, Y2019, Y2025),
                creators: creators.iter().map(|user| self.user_base + user).collect(),
                hashtags: hashtags
                    .iter()
                    .filter_map(|rank| self.hashtag_ids.get(*rank as usize - 1).copied())
                    .collect(),
            };
        }
        let words = self.name_words();
        let name = words
            .iter()
            .map(|word| title(word))
            .collect::<Vec<_>>()
            .join(" ");
        let slug = self.unique_slug(&words.join("-"));
        let ranks = self.pick_hashtags();
        let description = self.description(&name, &ranks);
        let creators = self.pick_creators();
        ProjectRow {
            id,
            name,
            slug,
            description,
            created_at: time_between(&mut self.rng, Y2019, Y2025),
            creators,
            hashtags: ranks.iter().map(|rank| self.hashtag_ids[*rank]).collect(),
        }
    }

    fn name_words(&mut self) -> Vec<&'static str> {
        match weighted(&mut self.rng, &[3, 3, 4]) {
            0 => vec![pick(&mut self.rng, ADJECTIVES), pick(&mut self.rng, NOUNS)],
            1 => vec![pick(&mut self.rng, TECH), pick(&mut self.rng, NOUNS)],
            _ => vec![
                pick(&mut self.rng, ADJECTIVES),
                pick(&mut self.rng, TECH),
                pick(&mut self.rng, NOUNS),
            ],
        }
    }

    /// `base`, or `base-2`, `base-3`... the first one not taken.
    fn unique_slug(&mut self, base: &str) -> String {
        let suffix = self.next_suffix.entry(base.to_string()).or_insert(1);
        loop {
            let candidate = if *suffix == 1 {
                base.to_string()
            } else {
                format!("{base}-{suffix}")
            };
            *suffix += 1;
            if self.taken_slugs.insert(candidate.clone()) {
                return candidate;
            }
        }
    }

    /// 0 to 6 distinct hashtag ranks, popular ones more often.
    fn pick_hashtags(&mut self) -> Vec<usize> {
        let wanted =
            weighted(&mut self.rng, &[8, 17, 24, 22, 15, 9, 5]).min(self.hashtag_names.len());
        let mut chosen: Vec<usize> = Vec::with_capacity(wanted);
        while chosen.len() < wanted {
            let rank = self.popular_hashtag.sample(&mut self.rng);
            if !chosen.contains(&rank) {
                chosen.push(rank);
            }
        }
        chosen
    }

    /// 1 to 3 distinct creators: most picks uniform, some from a Zipf head so that a few users
    /// create thousands of projects at scale.
    fn pick_creators(&mut self) -> Vec<i32> {
        let wanted = (weighted(&mut self.rng, &[60, 28, 12]) + 1).min(self.users);
        let generated = self.users - self.hand_users;
        let mut chosen: Vec<i32> = Vec::with_capacity(wanted);
        while chosen.len() < wanted {
            let index = if generated > 0 && self.rng.random_bool(0.3) {
                self.hand_users + self.popular_creator.sample(&mut self.rng)
            } else {
                self.rng.random_range(0..self.users)
            };
            let id = self.user_base + index as i32 + 1;
            if !chosen.contains(&id) {
                chosen.push(id);
            }
        }
        chosen
    }

    /// NULL, a phrase, or one to six sentences; mentions the project's hashtags now and then.
    fn description(&mut self, name: &str, ranks: &[usize]) -> Option<String> {
        let shape = weighted(&mut self.rng, &[5, 10, 45, 30, 10]);
        let sentences = match shape {
            0 => return None,
            1 => {
                let adjective = pick(&mut self.rng, ADJECTIVES);
                return Some(format!(
                    "{} {adjective} {}",
                    article(adjective),
                    pick(&mut self.rng, NOUNS)
                ));
            }
            2 => 1,
            3 => self.rng.random_range(2..=3),
            _ => self.rng.random_range(4..=6),
        };
        let tags: Vec<String> = ranks
            .iter()
            .filter_map(|rank| self.hashtag_names.get(*rank).cloned())
            .collect();
        let mut text: Vec<String> = Vec::with_capacity(sentences);
        for _ in 0..sentences {
            let tech = if !tags.is_empty() && self.rng.random_bool(0.6) {
                tags[self.rng.random_range(0..tags.len())].clone()
            } else {
                pick(&mut self.rng, TECH).to_string()
            };
            let verb = pick(&mut self.rng, VERBS);
            let object = pick(&mut self.rng, OBJECTS);
            let ending = pick(&mut self.rng, ENDINGS);
            let sentence = match self.rng.random_range(0..5) {
                0 => {
                    let adjective = pick(&mut self.rng, ADJECTIVES);
                    let noun = pick(&mut self.rng, NOUNS);
                    format!(
                        "{} {adjective} {noun} that {verb} {object} {ending}.",
                        article(adjective)
                    )
                }
                1 => format!("{} {object} with {tech} {ending}.", title(verb)),
                2 => format!("Built with {tech}, it {verb} {object} {ending}."),
                3 => format!("{name} {verb} {object} for {tech} projects."),
                _ => {
                    let other = pick(&mut self.rng, TECH);
                    format!("Works with {tech} and {other}, and {verb} {object} {ending}.")
                }
            };
            text.push(sentence);
        }
        Some(text.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(projects: u64, seed: u64) -> SeedOptions {
        SeedOptions {
            projects,
            users: 60,
            hashtags: 40,
            seed,
        }
    }

    fn generate(options: &SeedOptions) -> (Vec<NamedRow>, Vec<NamedRow>, Vec<ProjectRow>) {
        let mut generator = Generator::new(options, Existing::default());
        let users = generator.users();
        let hashtags = generator.hashtags(&HashMap::new());
        let projects = generator.projects(options.total_projects());
        (users, hashtags, projects)
    }

    #[test]
    fn same_seed_same_rows_other_seed_other_rows() {
        assert_eq!(generate(&options(300, 7)), generate(&options(300, 7)));
        assert_ne!(generate(&options(300, 7)).2, generate(&options(300, 8)).2);
    }

    #[test]
    fn rows_respect_the_schema_and_the_distribution() {
        let (users, hashtags, projects) = generate(&options(3000, 1));
        assert_eq!(users.len(), 60);
        assert_eq!(hashtags.len(), 40);
        assert_eq!(projects[0].slug, "elasticsearch-sync");
        assert_eq!(users[0].name, "John Smith");
        let slugs: HashSet<&str> = projects.iter().map(|p| p.slug.as_str()).collect();
        assert_eq!(slugs.len(), projects.len(), "slugs are unique");
        let names: HashSet<&str> = hashtags.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names.len(), hashtags.len(), "hashtag names are unique");
        for project in &projects {
            assert!((1..=3).contains(&project.creators.len()));
            assert!(project.hashtags.len() <= 6);
            assert!(
                project
                    .slug
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '-' || c.is_ascii_digit())
            );
        }
        assert!(projects.iter().any(|p| p.hashtags.is_empty()));
        assert!(projects.iter().any(|p| p.hashtags.len() == 6));
        assert!(projects.iter().any(|p| p.description.is_none()));
        let mut per_user: HashMap<i32, usize> = HashMap::new();
        for creator in projects.iter().flat_map(|p| &p.creators) {
            *per_user.entry(*creator).or_default() += 1;
        }
        let busiest = per_user.values().max().copied().unwrap_or_default();
        assert!(
            busiest > 3 * projects.len() / 60,
            "some users create far more: {busiest}"
        );
    }
}
