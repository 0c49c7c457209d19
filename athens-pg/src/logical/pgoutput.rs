//! A decoder for the messages of PostgreSQL's `pgoutput` plugin (protocol version 1, text tuples),
//! as returned by `pg_logical_slot_peek_binary_changes`: only what Athens needs to turn row changes
//! of the five source tables into [`Change`]s. Pure, no I/O.
//!
//! The format is documented in PostgreSQL's "Logical Replication Message Formats". Every call of
//! the SQL interface starts a fresh decoding session, so a `Relation` message precedes the first
//! change of each table in every call; the [`Decoder`] is therefore made anew for each call.

use std::collections::HashMap;

use athens_core::{Change, Table};
use chrono::{DateTime, Utc};

use crate::error::PgError;
use crate::tables::{self, SourceTable};

/// Prefix of the logical decoding messages Athens writes into its own stream.
pub(crate) const MESSAGE_PREFIX: &str = "athens";
/// Content of the message that asks the consumer for a full rebuild (written when a slot is
/// re-created: what happened while no slot existed is only known to a backfill).
pub(crate) const RESYNC: &[u8] = b"resync";

/// Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// What one decoded message means for Athens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// A transaction begins; its changes follow. `committed_at` is its commit time.
    Begin {
        /// When the transaction committed.
        committed_at: DateTime<Utc>,
    },
    /// Changes of one row (none when an update changed no key of a link table).
    Changes(Vec<Change>),
    /// The transaction ends; `end_lsn` is where the next one may start.
    Commit {
        /// End of the commit record: advancing the slot here acknowledges the transaction.
        end_lsn: u64,
    },
    /// Nothing Athens uses (relation and type descriptions, origins, other messages).
    Skip,
}

/// A table's columns as the `Relation` message described them.
struct Relation {
    /// The source table, `None` for a table Athens does not read.
    source: Option<&'static SourceTable>,
    columns: Vec<String>,
}

/// Decodes the messages of one call, remembering the relations described so far.
#[derive(Default)]
pub(crate) struct Decoder {
    relations: HashMap<u32, Relation>,
}

/// A value of a tuple: NULL, unchanged TOAST (not sent), or text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Null,
    Unchanged,
    Text(String),
}

impl Decoder {
    /// Decodes one message.
    pub(crate) fn decode(&mut self, data: &[u8]) -> Result<Event, PgError> {
        let mut reader = Reader { data, at: 0 };
        match reader.u8()? {
            b'B' => {
                let _final_lsn = reader.u64()?;
                let committed_at = timestamp(reader.i64()?);
                Ok(Event::Begin { committed_at })
            }
            b'C' => {
                let _flags = reader.u8()?;
                let _commit_lsn = reader.u64()?;
                let end_lsn = reader.u64()?;
                Ok(Event::Commit { end_lsn })
            }
            b'R' => {
                let id = reader.u32()?;
                let _namespace = reader.string()?;
                let name = reader.string()?;
                let _identity = reader.u8()?;
                let count = reader.u16()?;
                let mut columns = Vec::with_capacity(usize::from(count));
                for _ in 0..count {
                    let _flags = reader.u8()?;
                    columns.push(reader.string()?);
                    let _type = reader.u32()?;
                    let _modifier = reader.u32()?;
                }
                let source = Table::from_name(&name).map(tables::table);
                self.relations.insert(id, Relation { source, columns });
                Ok(Event::Skip)
            }
            b'I' => {
                let relation = self.relation(reader.u32()?)?;
                reader.expect(b'N')?;
                let new = reader.tuple()?;
                Ok(Event::Changes(relation.changes(&new)?))
            }
            b'U' => {
                let relation = self.relation(reader.u32()?)?;
                let old = match reader.u8()? {
                    b'K' | b'O' => {
                        let old = reader.tuple()?;
                        reader.expect(b'N')?;
                        Some(old)
                    }
                    b'N' => None,
                    other => return Err(malformed(format!("update tuple kind {other}"))),
                };
                let new = reader.tuple()?;
                let mut changes = relation.changes(&new)?;
                if let Some(old) = old {
                    let before = relation.changes(&old)?;
                    if relation.is_link() && before == changes {
                        // A link row rewritten with the same keys links the same pair.
                        changes.clear();
                    } else {
                        for change in before {
                            if !changes.contains(&change) {
                                changes.push(change);
                            }
                        }
                    }
                }
                Ok(Event::Changes(changes))
            }
            b'D' => {
                let relation = self.relation(reader.u32()?)?;
                match reader.u8()? {
                    b'K' | b'O' => {}
                    other => return Err(malformed(format!("delete tuple kind {other}"))),
                }
                let old = reader.tuple()?;
                Ok(Event::Changes(relation.changes(&old)?))
            }
            b'T' => {
                let count = reader.u32()?;
                let _options = reader.u8()?;
                let mut changes = Vec::new();
                for _ in 0..count {
                    if let Some(source) = self.relation(reader.u32()?)?.source {
                        changes.push(Change::Truncate {
                            table: source.table,
                        });
                    }
                }
                Ok(Event::Changes(changes))
            }
            b'M' => {
                let _flags = reader.u8()?;
                let _lsn = reader.u64()?;
                let prefix = reader.string()?;
                let length = reader.u32()?;
                let content = reader.bytes(length as usize)?;
                if prefix == MESSAGE_PREFIX && content == RESYNC {
                    Ok(Event::Changes(vec![Change::Truncate {
                        table: Table::Projects,
                    }]))
                } else {
                    Ok(Event::Skip)
                }
            }
            b'O' | b'Y' => Ok(Event::Skip),
            other => Err(malformed(format!("unknown message type {other}"))),
        }
    }

    fn relation(&self, id: u32) -> Result<&Relation, PgError> {
        self.relations
            .get(&id)
            .ok_or_else(|| malformed(format!("change of relation {id} before its description")))
    }
}

impl Relation {
    fn is_link(&self) -> bool {
        self.source.is_some_and(SourceTable::is_link)
    }

    /// The key column named `name` of `tuple`: `None` when NULL or not sent.
    fn key(&self, tuple: &[Value], name: &str) -> Result<Option<i64>, PgError> {
        let Some(position) = self.columns.iter().position(|column| column == name) else {
            return Err(malformed(format!("table without column {name}")));
        };
        match tuple.get(position) {
            Some(Value::Text(text)) => text
                .parse()
                .map(Some)
                .map_err(|_| malformed(format!("{name} is not an integer: {text:?}"))),
            _ => Ok(None),
        }
    }

    /// What a row (a new tuple, an old one, or an old key) names: the change its key columns, as
    /// the table specification lists them, name (see [`SourceTable::change`]).
    fn changes(&self, tuple: &[Value]) -> Result<Vec<Change>, PgError> {
        let Some(source) = self.source else {
            return Ok(Vec::new());
        };
        let keys = source
            .keys
            .iter()
            .map(|key| self.key(tuple, key.column))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(source.change(&keys).into_iter().collect())
    }
}

fn timestamp(pg_micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(pg_micros.saturating_add(PG_EPOCH_MICROS)).unwrap_or_default()
}

fn malformed(what: String) -> PgError {
    PgError::Invalid(format!("malformed pgoutput message: {what}"))
}

/// Big-endian reads over one message.
struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, count: usize) -> Result<&'a [u8], PgError> {
        let end = self
            .at
            .checked_add(count)
            .filter(|end| *end <= self.data.len())
            .ok_or_else(|| malformed(format!("truncated at byte {}", self.at)))?;
        let bytes = &self.data[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], PgError> {
        let mut out = [0; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, PgError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, PgError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, PgError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, PgError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, PgError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    fn expect(&mut self, kind: u8) -> Result<(), PgError> {
        match self.u8()? {
            found if found == kind => Ok(()),
            found => Err(malformed(format!(
                "expected {:?}, found {:?}",
                char::from(kind),
                char::from(found)
            ))),
        }
    }

    /// A NUL-terminated string.
    fn string(&mut self) -> Result<String, PgError> {
        let rest = &self.data[self.at..];
        let length = rest
            .iter()
            .position(|byte| *byte == 0)
            .ok_or_else(|| malformed("unterminated string".into()))?;
        let text = String::from_utf8_lossy(&rest[..length]).into_owned();
        self.at += length + 1;
        Ok(text)
    }

    fn tuple(&mut self) -> Result<Vec<Value>, PgError> {
        let count = self.u16()?;
        let mut values = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            values.push(match self.u8()? {
                b'n' => Value::Null,
                b'u' => Value::Unchanged,
                b't' | b'b' => {
                    let length = self.u32()? as usize;
                    Value::Text(String::from_utf8_lossy(self.bytes(length)?).into_owned())
                }
                other => return Err(malformed(format!("tuple value kind {other}"))),
            });
        }
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use athens_core::{HashtagId, ProjectId, UserId};

    use super::*;

    /// Builds messages byte by byte, as pgoutput writes them.
    #[derive(Default)]
    struct Message(Vec<u8>);

    impl Message {
        fn kind(kind: u8) -> Message {
            Message(vec![kind])
        }
        fn u8(mut self, value: u8) -> Self {
            self.0.push(value);
            self
        }
        fn u16(mut self, value: u16) -> Self {
            self.0.extend(value.to_be_bytes());
            self
        }
        fn u32(mut self, value: u32) -> Self {
            self.0.extend(value.to_be_bytes());
            self
        }
        fn u64(mut self, value: u64) -> Self {
            self.0.extend(value.to_be_bytes());
            self
        }
        fn string(mut self, value: &str) -> Self {
            self.0.extend(value.as_bytes());
            self.0.push(0);
            self
        }
        fn tuple(mut self, values: &[Option<&str>]) -> Self {
            self = self.u16(values.len() as u16);
            for value in values {
                self = match value {
                    None => self.u8(b'n'),
                    Some(text) => {
                        let mut next = self.u8(b't').u32(text.len() as u32);
                        next.0.extend(text.as_bytes());
                        next
                    }
                };
            }
            self
        }
    }

    fn relation(id: u32, name: &str, columns: &[&str]) -> Vec<u8> {
        let mut message = Message::kind(b'R')
            .u32(id)
            .string("public")
            .string(name)
            .u8(b'd')
            .u16(columns.len() as u16);
        for column in columns {
            message = message.u8(1).string(column).u32(23).u32(u32::MAX);
        }
        message.0
    }

    fn decoder() -> Decoder {
        let mut decoder = Decoder::default();
        for (id, name, columns) in [
            (1, "users", &["id", "name", "created_at"][..]),
            (2, "project_hashtags", &["project_id", "hashtag_id"][..]),
            (
                3,
                "projects",
                &["id", "name", "slug", "description", "created_at"][..],
            ),
            (4, "orders", &["id"][..]),
        ] {
            assert_eq!(
                decoder.decode(&relation(id, name, columns)).unwrap(),
                Event::Skip
            );
        }
        decoder
    }

    fn changes(decoder: &mut Decoder, message: Message) -> Vec<Change> {
        match decoder.decode(&message.0).unwrap() {
            Event::Changes(changes) => changes,
            other => panic!("expected changes, got {other:?}"),
        }
    }

    #[test]
    fn begin_and_commit_carry_the_commit_time_and_end() {
        let mut decoder = Decoder::default();
        let begin = Message::kind(b'B').u64(0x10).u64(1_000_000).u32(7);
        assert_eq!(
            decoder.decode(&begin.0).unwrap(),
            Event::Begin {
                committed_at: DateTime::parse_from_rfc3339("2000-01-01T00:00:01Z")
                    .unwrap()
                    .to_utc()
            }
        );
        let commit = Message::kind(b'C').u8(0).u64(0x10).u64(0x48).u64(1);
        assert_eq!(
            decoder.decode(&commit.0).unwrap(),
            Event::Commit { end_lsn: 0x48 }
        );
    }

    #[test]
    fn row_changes_name_their_keys() {
        let mut decoder = decoder();
        let insert = Message::kind(b'I')
            .u32(1)
            .u8(b'N')
            .tuple(&[Some("7"), Some("Ada"), None]);
        assert_eq!(
            changes(&mut decoder, insert),
            vec![Change::User { user: UserId(7) }]
        );
        let delete = Message::kind(b'D')
            .u32(2)
            .u8(b'O')
            .tuple(&[Some("3"), Some("4")]);
        assert_eq!(
            changes(&mut decoder, delete),
            vec![Change::ProjectHashtag {
                project: ProjectId(3),
                hashtag: HashtagId(4)
            }]
        );
        let other_table = Message::kind(b'I').u32(4).u8(b'N').tuple(&[Some("1")]);
        assert_eq!(changes(&mut decoder, other_table), vec![]);
    }

    #[test]
    fn a_key_change_names_the_old_and_the_new_row() {
        let mut decoder = decoder();
        let update = Message::kind(b'U')
            .u32(3)
            .u8(b'K')
            .tuple(&[Some("5"), None, None, None, None])
            .u8(b'N')
            .tuple(&[Some("6"), Some("A"), Some("a"), None, Some("2020-01-01")]);
        assert_eq!(
            changes(&mut decoder, update),
            vec![
                Change::Project {
                    project: ProjectId(6)
                },
                Change::Project {
                    project: ProjectId(5)
                }
            ]
        );
        let plain = Message::kind(b'U').u32(3).u8(b'N').tuple(&[
            Some("6"),
            Some("B"),
            Some("a"),
            None,
            Some("2020-01-01"),
        ]);
        assert_eq!(
            changes(&mut decoder, plain),
            vec![Change::Project {
                project: ProjectId(6)
            }]
        );
    }

    #[test]
    fn a_link_rewritten_with_the_same_keys_changes_nothing() {
        let mut decoder = decoder();
        let same = Message::kind(b'U')
            .u32(2)
            .u8(b'O')
            .tuple(&[Some("1"), Some("2")])
            .u8(b'N')
            .tuple(&[Some("1"), Some("2")]);
        assert_eq!(changes(&mut decoder, same), vec![]);
        let moved = Message::kind(b'U')
            .u32(2)
            .u8(b'O')
            .tuple(&[Some("1"), Some("2")])
            .u8(b'N')
            .tuple(&[Some("1"), None]);
        assert_eq!(
            changes(&mut decoder, moved),
            vec![
                Change::Project {
                    project: ProjectId(1)
                },
                Change::ProjectHashtag {
                    project: ProjectId(1),
                    hashtag: HashtagId(2)
                }
            ]
        );
    }

    #[test]
    fn truncates_and_resync_messages_ask_for_a_rebuild() {
        let mut decoder = decoder();
        let truncate = Message::kind(b'T').u32(2).u8(1).u32(1).u32(4);
        assert_eq!(
            changes(&mut decoder, truncate),
            vec![Change::Truncate {
                table: Table::Users
            }]
        );
        let resync = Message::kind(b'M')
            .u8(1)
            .u64(9)
            .string(MESSAGE_PREFIX)
            .u32(RESYNC.len() as u32);
        let mut resync = resync;
        resync.0.extend(RESYNC);
        assert_eq!(
            changes(&mut decoder, resync),
            vec![Change::Truncate {
                table: Table::Projects
            }]
        );
        let foreign = Message::kind(b'M').u8(1).u64(9).string("other").u32(0);
        assert_eq!(decoder.decode(&foreign.0).unwrap(), Event::Skip);
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        let mut decoder = decoder();
        for bytes in [
            &b""[..],
            b"I",
            b"Z",
            &Message::kind(b'I').u32(99).u8(b'N').tuple(&[]).0,
            &Message::kind(b'I')
                .u32(1)
                .u8(b'N')
                .u16(3)
                .u8(b't')
                .u32(100)
                .0,
            &Message::kind(b'I')
                .u32(1)
                .u8(b'N')
                .tuple(&[Some("x"), None, None])
                .0,
            &Message::kind(b'R').u32(1).0,
        ] {
            assert!(decoder.decode(bytes).is_err(), "{bytes:?}");
        }
    }
}
