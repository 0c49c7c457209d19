//! Words the seed generator draws from: people's names, technologies, and plain English for project
//! names and descriptions. Embedded so that a seed is the same on every machine.

/// Given names.
#[rustfmt::skip]
pub(super) const FIRST_NAMES: &[&str] = &[
    "James", "Mary", "Robert", "Patricia", "Michael", "Linda", "William", "Elizabeth", "David",
    "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
    "Christopher", "Nancy", "Daniel", "Lisa", "Matthew", "Betty", "Anthony", "Margaret", "Mark",
    "Sandra", "Donald", "Ashley", "Steven", "Kimberly", "Paul", "Emily", "Andrew", "Donna",
    "Joshua", "Michelle", "Kenneth", "Carol", "Kevin", "Amanda", "Brian", "Melissa", "George",
    "Deborah", "Timothy", "Stephanie", "Ronald", "Rebecca", "Jason", "Laura", "Edward", "Sharon",
    "Jeffrey", "Cynthia", "Ryan", "Kathleen", "Jacob", "Amy", "Gary", "Shirley", "Nicholas",
    "Angela", "Eric", "Helen", "Jonathan", "Anna", "Stephen", "Brenda", "Larry", "Pamela", "Justin",
    "Nicole", "Scott", "Samantha", "Brandon", "Katherine", "Benjamin", "Emma", "Samuel", "Ruth",
    "Aisha", "Wei", "Yuki", "Priya", "Arjun", "Mateo", "Sofia", "Lucas", "Chloe", "Omar", "Fatima",
    "Hiroshi", "Ingrid", "Lars", "Zoë", "Chiara", "Björn", "Amara", "Kwame", "Leila", "Dmitri",
];

/// Family names.
#[rustfmt::skip]
pub(super) const LAST_NAMES: &[&str] = &[
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore",
    "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark",
    "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres",
    "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell",
    "Mitchell", "Carter", "Roberts", "Kim", "Chen", "Wang", "Patel", "Singh", "Kumar", "Tanaka",
    "Sato", "Müller", "Schmidt", "Schneider", "Fischer", "Rossi", "Russo", "Dubois", "Moreau",
    "Novak", "Kowalski", "Ivanov", "Petrov", "Andersson", "Johansson", "Nielsen", "Hansen", "Silva",
    "Santos", "Oliveira", "Costa", "Okafor", "Mensah", "Haddad", "Cohen", "Levi", "O'Brien",
    "Murphy", "Kelly", "Walsh", "Fernández", "Yilmaz", "Demir", "Nakamura", "Suzuki", "Park",
    "Choi", "Zhang", "Liu", "Huang", "Gupta", "Shah",
];

/// Technologies and topics: hashtags, and the technical words of descriptions.
#[rustfmt::skip]
pub(super) const TECH: &[&str] = &[
    "javascript", "python", "typescript", "java", "go", "kotlin", "swift", "ruby", "php", "scala",
    "haskell", "elixir", "erlang", "clojure", "zig", "cpp", "csharp", "dotnet", "react", "vue",
    "angular", "svelte", "nextjs", "nodejs", "deno", "django", "flask", "fastapi", "rails",
    "spring", "laravel", "graphql", "grpc", "rest", "websocket", "kafka", "rabbitmq", "redis",
    "mysql", "sqlite", "mongodb", "cassandra", "clickhouse", "duckdb", "kubernetes", "docker",
    "helm", "ansible", "pulumi", "gcp", "azure", "linux", "wasm", "webassembly", "llvm", "compiler",
    "database", "analytics", "observability", "prometheus", "grafana", "opentelemetry", "logging",
    "security", "cryptography", "oauth", "blockchain", "ml", "ai", "llm", "nlp", "vision",
    "pytorch", "tensorflow", "numpy", "pandas", "spark", "airflow", "dbt", "etl", "streaming",
    "serverless", "lambda", "microservices", "frontend", "backend", "fullstack", "mobile",
    "android", "ios", "flutter", "gamedev", "unity", "embedded", "iot", "robotics", "arduino",
    "raspberrypi", "cli", "tui", "testing", "ci", "cd", "github", "gitlab", "opensource", "cloud",
    "networking", "dns", "http", "caching", "performance", "concurrency", "async", "distributed",
    "consensus", "raft", "geospatial", "maps", "fintech", "payments", "healthcare", "education",
    "ecommerce", "cms", "markdown", "documentation", "design", "accessibility", "i18n",
    "automation", "scraping", "chatbot", "audio", "video", "graphics", "shaders", "vr", "ar",
    "bioinformatics", "datascience", "visualization", "jupyter", "nix", "vim", "emacs", "vscode",
];

/// Adjectives for project names and descriptions.
#[rustfmt::skip]
pub(super) const ADJECTIVES: &[&str] = &[
    "fast", "tiny", "simple", "modern", "lightweight", "scalable", "reliable", "secure", "minimal",
    "elegant", "robust", "blazing", "friendly", "open", "smart", "quick", "clean", "portable",
    "flexible", "modular", "reactive", "typed", "declarative", "incremental", "parallel", "lazy",
    "durable", "resilient", "efficient", "pragmatic", "small", "tidy", "bright", "silent", "swift",
    "steady", "gentle", "bold", "clever", "humble", "curious", "quiet", "lucid", "crisp", "nimble",
    "sturdy", "solid", "agile", "compact", "distributed", "embedded", "hybrid", "realtime",
    "offline", "local", "global", "shared", "private", "public", "automatic", "visual",
    "interactive", "experimental", "stable", "production", "zero", "universal", "native",
];

/// Nouns for project names and descriptions.
#[rustfmt::skip]
pub(super) const NOUNS: &[&str] = &[
    "engine", "toolkit", "framework", "library", "server", "client", "proxy", "gateway", "router",
    "scheduler", "queue", "broker", "pipeline", "crawler", "parser", "compiler", "interpreter",
    "runtime", "editor", "dashboard", "monitor", "tracker", "planner", "notebook", "journal",
    "ledger", "wallet", "vault", "cache", "index", "store", "registry", "catalog", "inventory",
    "bridge", "adapter", "connector", "exporter", "importer", "converter", "generator", "builder",
    "bundler", "linter", "formatter", "debugger", "profiler", "benchmark", "simulator", "emulator",
    "assistant", "bot", "agent", "daemon", "service", "platform", "portal", "hub", "studio",
    "workbench", "playground", "sandbox", "starter", "template", "kit", "suite", "stack", "layer",
    "mesh", "grid", "cluster", "node", "beacon", "compass", "lantern", "harbor", "anchor", "falcon",
    "otter", "badger", "heron", "fox", "owl", "raven", "lynx", "panda", "koala", "orca", "comet",
    "nova", "orbit", "quasar", "nebula", "pulse", "spark", "ember", "river", "delta", "canyon",
    "summit", "meadow", "forest", "garden", "atlas", "prism", "mosaic", "lens", "signal",
];

/// Verbs (third person) for descriptions.
#[rustfmt::skip]
pub(super) const VERBS: &[&str] = &[
    "syncs", "indexes", "tracks", "monitors", "builds", "deploys", "tests", "renders", "parses",
    "schedules", "streams", "caches", "stores", "searches", "visualizes", "analyzes", "automates",
    "generates", "validates", "transforms", "compresses", "encrypts", "routes", "balances",
    "measures", "collects", "exports", "imports", "migrates", "replicates", "backs up", "restores",
    "secures", "scales", "translates", "summarizes", "classifies", "recommends", "organizes",
    "manages", "simplifies", "accelerates", "connects", "orchestrates", "profiles", "documents",
];

/// Objects of descriptions' sentences.
#[rustfmt::skip]
pub(super) const OBJECTS: &[&str] = &[
    "logs", "metrics", "events", "documents", "images", "videos", "invoices", "orders", "users",
    "projects", "tasks", "notes", "recipes", "books", "photos", "messages", "emails", "files",
    "datasets", "models", "queries", "requests", "sessions", "transactions", "payments",
    "playlists", "podcasts", "articles", "issues", "pull requests", "releases", "containers",
    "configs", "secrets", "schemas", "tables", "graphs", "maps", "sensors", "devices", "builds",
    "dependencies", "packages", "snippets", "bookmarks", "feeds", "calendars", "contacts",
];

/// Qualifiers closing descriptions' sentences.
#[rustfmt::skip]
pub(super) const ENDINGS: &[&str] = &[
    "in real time", "at scale", "without a server", "from the command line", "for small teams",
    "with zero configuration", "across clusters", "on the edge", "in the browser", "offline",
    "with a friendly API", "for hobbyists", "in production", "with full-text search",
    "using plain SQL", "with fuzzy matching", "on a Raspberry Pi", "for open source maintainers",
    "with strong typing", "in under a millisecond", "for data teams", "with minimal memory",
];
