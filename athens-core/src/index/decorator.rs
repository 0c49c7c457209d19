//! [`search_index_decorator!`](crate::search_index_decorator): a [`SearchIndex`](crate::SearchIndex)
//! that wraps another states only the calls it changes, and names the ones it passes on.

/// Implements [`SearchIndex`](crate::SearchIndex) for a type that wraps another index in one of
/// its fields: the calls named after `pass to self.field:` go to that field's index unchanged, the
/// methods written below them are the type's own. The compiler still checks the whole: a call
/// neither named nor written is missing (unless the port has a default for it), one named and
/// written is defined twice.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// use athens_core::{IndexError, IndexName, IndexOp, SearchIndex, WriteOutcome};
///
/// /// Counts the operations written, and writes them.
/// struct Counting {
///     inner: Arc<dyn SearchIndex>,
///     written: AtomicU64,
/// }
///
/// athens_core::search_index_decorator! {
///     impl SearchIndex for Counting {
///         pass to self.inner: live_index, create_index, finish_bulk_load, publish, claim,
///             publish_as, mapping_is_current, drop_index, refresh, get, ids_page, count,
///             save_checkpoint, unfinished_backfills;
///
///         async fn write(
///             &self,
///             index: &IndexName,
///             ops: &[IndexOp],
///         ) -> Result<Vec<WriteOutcome>, IndexError> {
///             self.written.fetch_add(ops.len() as u64, Ordering::Relaxed);
///             self.inner.write(index, ops).await
///         }
///     }
/// }
/// ```
#[macro_export]
macro_rules! search_index_decorator {
    (
        impl SearchIndex for $decorator:ident {
            pass to self.$inner:ident: $($call:ident),+ $(,)?;
            $($own:tt)*
        }
    ) => {
        $crate::search_index_decorator!(@pass [$decorator $inner] [$($call)+] [$($own)*]);
    };
    // Every named call written: the impl.
    (@pass [$decorator:ident $inner:ident] [] [$($methods:tt)*]) => {
        #[$crate::__async_trait]
        impl $crate::SearchIndex for $decorator {
            $($methods)*
        }
    };
    // The next named call: its signature, then its method.
    (@pass $names:tt [$call:ident $($rest:ident)*] $methods:tt) => {
        $crate::search_index_decorator!(@signature $call $names [$($rest)*] $methods);
    };
    (@method $call:ident($($arg:ident: [$($type:tt)*]),*) -> [$($out:tt)*];
        [$decorator:ident $inner:ident] $rest:tt [$($methods:tt)*]) => {
        $crate::search_index_decorator!(@pass [$decorator $inner] $rest [$($methods)*
            async fn $call(
                &self,
                $($arg: $($type)*),*
            ) -> ::std::result::Result<$($out)*, $crate::IndexError> {
                self.$inner.$call($($arg),*).await
            }
        ]);
    };
    // The port's calls, as (arguments) -> what they answer.
    (@signature live_index $($then:tt)*) => {
        $crate::search_index_decorator!(@method live_index()
            -> [::std::option::Option<$crate::IndexName>]; $($then)*);
    };
    (@signature create_index $($then:tt)*) => {
        $crate::search_index_decorator!(@method create_index() -> [$crate::IndexName]; $($then)*);
    };
    (@signature finish_bulk_load $($then:tt)*) => {
        $crate::search_index_decorator!(@method finish_bulk_load(index: [&$crate::IndexName])
            -> [()]; $($then)*);
    };
    (@signature publish $($then:tt)*) => {
        $crate::search_index_decorator!(@method publish(index: [&$crate::IndexName])
            -> [::std::option::Option<$crate::IndexName>]; $($then)*);
    };
    (@signature claim $($then:tt)*) => {
        $crate::search_index_decorator!(@method claim(writer: [&$crate::WriterId])
            -> [::std::option::Option<$crate::IndexName>]; $($then)*);
    };
    (@signature publish_as $($then:tt)*) => {
        $crate::search_index_decorator!(@method publish_as(
            index: [&$crate::IndexName], writer: [&$crate::WriterId]
        ) -> [::std::option::Option<$crate::IndexName>]; $($then)*);
    };
    (@signature mapping_is_current $($then:tt)*) => {
        $crate::search_index_decorator!(@method mapping_is_current(index: [&$crate::IndexName])
            -> [bool]; $($then)*);
    };
    (@signature drop_index $($then:tt)*) => {
        $crate::search_index_decorator!(@method drop_index(index: [&$crate::IndexName])
            -> [()]; $($then)*);
    };
    (@signature write $($then:tt)*) => {
        $crate::search_index_decorator!(@method write(
            index: [&$crate::IndexName], ops: [&[$crate::IndexOp]]
        ) -> [::std::vec::Vec<$crate::WriteOutcome>]; $($then)*);
    };
    (@signature refresh $($then:tt)*) => {
        $crate::search_index_decorator!(@method refresh(index: [&$crate::IndexName])
            -> [()]; $($then)*);
    };
    (@signature get $($then:tt)*) => {
        $crate::search_index_decorator!(@method get(
            index: [&$crate::IndexName], ids: [&[$crate::ProjectId]]
        ) -> [::std::vec::Vec<$crate::ProjectDocument>]; $($then)*);
    };
    (@signature ids_page $($then:tt)*) => {
        $crate::search_index_decorator!(@method ids_page(
            index: [&$crate::IndexName], page: [$crate::KeysetPage]
        ) -> [::std::vec::Vec<$crate::ProjectId>]; $($then)*);
    };
    (@signature count $($then:tt)*) => {
        $crate::search_index_decorator!(@method count(index: [&$crate::IndexName])
            -> [u64]; $($then)*);
    };
    (@signature save_checkpoint $($then:tt)*) => {
        $crate::search_index_decorator!(@method save_checkpoint(
            index: [&$crate::IndexName], checkpoint: [&$crate::BackfillCheckpoint]
        ) -> [()]; $($then)*);
    };
    (@signature unfinished_backfills $($then:tt)*) => {
        $crate::search_index_decorator!(@method unfinished_backfills()
            -> [::std::vec::Vec<($crate::IndexName, $crate::BackfillCheckpoint)>]; $($then)*);
    };
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use crate::testing::MemoryIndex;
    use crate::{
        BackfillCheckpoint, IndexError, IndexName, IndexOp, KeysetPage, ProjectId, SearchIndex,
        Version,
    };

    /// Hides the alias, counting how often it was asked; passes everything else on.
    struct Unpublished {
        inner: MemoryIndex,
        asked: AtomicU64,
    }

    crate::search_index_decorator! {
        impl SearchIndex for Unpublished {
            pass to self.inner: create_index, finish_bulk_load, publish, claim, publish_as,
                mapping_is_current, drop_index, write, refresh, get, ids_page, count,
                save_checkpoint, unfinished_backfills;

            async fn live_index(&self) -> Result<Option<IndexName>, IndexError> {
                self.asked.fetch_add(1, Ordering::Relaxed);
                Ok(None)
            }
        }
    }

    #[tokio::test]
    async fn named_calls_reach_the_inner_index_and_written_ones_replace_them() {
        let index = Unpublished {
            inner: MemoryIndex::new(),
            asked: AtomicU64::new(0),
        };
        let created = index.create_index().await.unwrap();
        assert_eq!(index.publish(&created).await.unwrap(), None);
        assert_eq!(index.live_index().await.unwrap(), None);
        assert_eq!(index.asked.load(Ordering::Relaxed), 1);
        assert_eq!(
            index.inner.live_index().await.unwrap(),
            Some(created.clone())
        );
        let delete = IndexOp::Delete {
            id: ProjectId(1),
            version: Version(1),
        };
        index.write(&created, &[delete]).await.unwrap();
        assert_eq!(index.count(&created).await.unwrap(), 0);
        assert!(
            index
                .ids_page(&created, KeysetPage::first(10))
                .await
                .unwrap()
                .is_empty()
        );
        let other = index.create_index().await.unwrap();
        let checkpoint = BackfillCheckpoint::split(None, 1);
        index.save_checkpoint(&other, &checkpoint).await.unwrap();
        assert_eq!(
            index.inner.unfinished_backfills().await.unwrap(),
            vec![(other, checkpoint)],
            "checkpoints go to the inner index"
        );
    }
}
