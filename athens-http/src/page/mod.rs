//! The search page for people at `/`: one HTML page, a script and a style sheet, embedded in the
//! binary (no build step, nothing fetched from elsewhere), that call the API of the same origin.
//!
//! The page searches as one types (with highlights), lists hashtag and creator facets to click,
//! pages with the cursor, offers the API's "did you mean", and says so when nothing matches or the
//! API fails. Its Content-Security-Policy allows nothing but this origin.

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response, handler};

/// Path of the page's script.
pub(crate) const SCRIPT_PATH: &str = "/ui/search.js";
/// Path of the page's style sheet.
pub(crate) const STYLE_PATH: &str = "/ui/search.css";

const PAGE: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("search.js");
const STYLE: &str = include_str!("search.css");

/// Only this origin: the page's own script and styles, the API, nothing inline, no frames.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .content_type(content_type)
        .body(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Small, and they change with the binary: revalidate rather than serve a stale page.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Serves the page at exactly `/` (`GET` and `HEAD`), and everything else from the endpoint it
/// wraps: the API, nested at `/`, whose root poem's router would not let another route share.
pub(crate) struct WithPage<E>(pub(crate) E);

impl<E: Endpoint> Endpoint for WithPage<E> {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        if request.uri().path() == "/" && matches!(*request.method(), Method::GET | Method::HEAD) {
            return Ok(asset(PAGE, "text/html; charset=utf-8"));
        }
        self.0.call(request).await.map(IntoResponse::into_response)
    }
}

/// `GET /ui/search.js`.
#[handler]
pub(crate) fn script() -> impl IntoResponse {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

/// `GET /ui/search.css`.
#[handler]
pub(crate) fn style() -> impl IntoResponse {
    asset(STYLE, "text/css; charset=utf-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_its_assets_from_this_origin_only() {
        assert!(PAGE.contains(&format!(r#"src="{SCRIPT_PATH}""#)));
        assert!(PAGE.contains(&format!(r#"href="{STYLE_PATH}""#)));
        for text in [PAGE, SCRIPT, STYLE] {
            assert!(!text.contains("http://") && !text.contains("https://"));
        }
        assert!(
            !PAGE.contains("<script>"),
            "no inline script: the policy forbids it"
        );
        assert!(
            !PAGE.contains("style="),
            "no inline style: the policy forbids it"
        );
    }

    #[test]
    fn the_script_never_renders_data_as_html() {
        assert!(!SCRIPT.contains("innerHTML"));
        assert!(!SCRIPT.contains("insertAdjacentHTML"));
        assert!(!SCRIPT.contains("document.write"));
    }
}
