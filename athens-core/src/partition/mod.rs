//! Partitioned writers (docs/architecture.md, "Partitioned writers"): the projects split into `P`
//! partitions by a fixed mixer of their id, one writer lease per partition, and the decorators that
//! run the unchanged [`SyncEngine`](crate::SyncEngine) as the writer of one partition:
//! [`PartitionDocuments`] (users and hashtags resolve to the partition's own projects),
//! [`PartitionIndex`] (a partition never rebuilds the index alone) and [`LeaseBudget`] (at most so
//! many partitions held by one process).
//!
//! The mixer is computed by the capture too (PostgreSQL's trigger writes each change's partition),
//! so it uses only what both sides compute identically: 32-bit halves, shifts, xors and
//! multiplications modulo 2^32 (which PostgreSQL's `bigint` does without overflowing when split in
//! 16-bit halves, see athens-pg's `athens.partition_of`).

mod documents;
mod index;
mod lease;

use std::fmt;
use std::num::NonZeroU32;

pub use documents::PartitionDocuments;
pub use index::PartitionIndex;
pub use lease::LeaseBudget;

use crate::document::ProjectId;

/// One partition of the projects: `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Partition {
    index: u32,
    count: NonZeroU32,
}

impl Partition {
    /// Partition `index` of `count`; `None` unless `index < count`.
    pub fn new(index: u32, count: NonZeroU32) -> Option<Partition> {
        (index < count.get()).then_some(Partition { index, count })
    }

    /// Every partition of `count`, in ascending order.
    pub fn all(count: NonZeroU32) -> impl Iterator<Item = Partition> {
        (0..count.get()).map(move |index| Partition { index, count })
    }

    /// Its number, from 0.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// How many partitions there are.
    pub fn count(&self) -> NonZeroU32 {
        self.count
    }

    /// Whether `project` belongs to this partition.
    pub fn holds(&self, project: ProjectId) -> bool {
        partition_of(project, self.count) == self.index
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The partition (`0..count`) of `project`: [`mix`] of its id modulo `count`.
pub fn partition_of(project: ProjectId, count: NonZeroU32) -> u32 {
    mix(project.0) % count.get()
}

/// Mixes an id into 32 well-spread bits: its two 32-bit halves xor'ed, then MurmurHash3's
/// finalizer (`fmix32`), a bijection on 32 bits whose every input bit flips each output bit with
/// probability about 1/2, so sequential ids spread evenly over any number of partitions.
pub fn mix(id: i64) -> u32 {
    let bits = id as u64;
    let mut h = (bits as u32) ^ ((bits >> 32) as u32);
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    #[test]
    fn the_mixer_is_murmur3_fmix32_on_the_folded_halves() {
        // Known fmix32 values (MurmurHash3's finalizer).
        assert_eq!(mix(0), 0);
        assert_eq!(mix(1), 0x514e_28b7);
        assert_eq!(mix(1 << 32), mix(1), "the high half folds onto the low one");
        assert_eq!(mix(-1), 0, "all ones fold to zero");
    }

    #[test]
    fn sequential_ids_spread_evenly() {
        for partitions in [2u32, 3, 4, 8, 16] {
            let mut sizes = vec![0u32; partitions as usize];
            for id in 1..=100_000 {
                sizes[partition_of(ProjectId(id), count(partitions)) as usize] += 1;
            }
            let expected = 100_000 / partitions;
            for size in sizes {
                assert!(
                    size.abs_diff(expected) < expected / 50,
                    "{partitions} partitions: {size} projects in one, about {expected} expected"
                );
            }
        }
    }

    #[test]
    fn a_partition_holds_exactly_its_projects() {
        let partitions: Vec<Partition> = Partition::all(count(4)).collect();
        assert_eq!(partitions.len(), 4);
        for id in 1..1000 {
            let holders = partitions.iter().filter(|p| p.holds(ProjectId(id))).count();
            assert_eq!(holders, 1, "project {id}");
        }
        assert!(Partition::new(4, count(4)).is_none());
        assert_eq!(Partition::new(3, count(4)).unwrap().to_string(), "3/4");
    }
}
