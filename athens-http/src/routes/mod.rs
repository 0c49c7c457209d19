//! The API's operations, grouped by tag: each operation has its own response enum, whose doc
//! comments become the spec's descriptions.

/// Declares the responses of a search operation: `200` with its payload, `400` naming the
/// parameter, `503` with `Retry-After`, then the operation's own problem statuses if any (they
/// come before `500` and `503` in the spec).
/// The doc comments given become the spec's descriptions; `500` and the header are described here,
/// once.
macro_rules! search_responses {
    (
        $(#[doc = $doc:tt])*
        #[oai(bad_request_handler = $handler:tt)]
        $name:ident {
            $(#[doc = $ok_doc:tt])* Ok($ok:ty),
            $(#[doc = $bad_doc:tt])* BadRequest,
            $(#[doc = $unavailable_doc:tt])* Unavailable,
            $($(#[doc = $extra_doc:tt])* $extra:ident($kind:ident) = $status:tt,)*
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(poem_openapi::ApiResponse)]
        #[oai(bad_request_handler = $handler)]
        pub(crate) enum $name {
            $(#[doc = $ok_doc])*
            #[oai(status = 200)]
            Ok(poem_openapi::payload::Json<$ok>),
            $(#[doc = $bad_doc])*
            #[oai(status = 400)]
            BadRequest($crate::problem::ProblemJson<$crate::error::kinds::BadRequest>),
            $(
                $(#[doc = $extra_doc])*
                #[oai(status = $status)]
                $extra($crate::problem::ProblemJson<$crate::error::kinds::$kind>),
            )*
            /// An unexpected error; quote `request_id` when reporting it.
            #[oai(status = 500)]
            Internal($crate::problem::ProblemJson<$crate::error::kinds::Internal>),
            $(#[doc = $unavailable_doc])*
            #[oai(status = 503)]
            Unavailable(
                $crate::problem::ProblemJson<$crate::error::kinds::Unavailable>,
                /// Seconds to wait before retrying.
                #[oai(header = "Retry-After")]
                u32,
            ),
        }
    };
}

mod health;
mod search;
mod suggest;

use poem_openapi::Tags;

pub(crate) use health::HealthApi;
pub(crate) use search::ProjectsApi;
pub(crate) use suggest::SuggestApi;

/// The spec's tags.
#[derive(Debug, Tags)]
pub(crate) enum ApiTag {
    /// Searching projects: by creator, by hashtags, by full text, or all of these at once.
    Projects,
    /// Completing names as they are typed: projects, hashtags, users.
    Suggestions,
    /// Liveness and readiness probes.
    Health,
}
