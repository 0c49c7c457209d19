//! AWS Signature Version 4 for Amazon OpenSearch Service (`es`) and OpenSearch Serverless (`aoss`).
//!
//! The `elasticsearch` client has no hook to sign a request once its body and query are final, so
//! the adapter hands it a signing forwarder instead of the engine's URL: a listener on a random
//! loopback port, inside this process, that takes each request exactly as the client would have
//! sent it, signs it (method, path, query, `host`, `content-type` and a SHA-256 of the exact body
//! bytes, compressed or not) with credentials from the standard AWS chain, and sends it on to the
//! engine over TLS. Every call site of the adapter stays as it is, and the signature covers the
//! bytes that travel. The listener accepts only requests carrying a random per-process token, so
//! another local user cannot borrow the task's identity through it.
//!
//! Credentials come from `aws-config`'s default chain (environment, web identity, ECS task role,
//! profile, instance metadata) and are kept until five minutes before they expire.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use athens_core::ErrorChain;
use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::identity::Identity;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tracing::{debug, warn};
use url::Url;

use crate::error::{EsError, setup_failed};

/// Header carrying the per-process token from the client to its forwarder.
pub(crate) const TOKEN_HEADER: &str = "x-athens-forwarder-token";

/// Credentials are renewed this long before they expire.
const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

/// Headers of the client's request that travel on to the engine. `content-type` is also signed;
/// the others may be rewritten by intermediaries and are not.
const FORWARDED: [&str; 4] = [
    "content-type",
    "content-encoding",
    "accept",
    "accept-encoding",
];

/// Which AWS service the requests are for: the signing name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AwsService {
    /// Amazon OpenSearch Service (managed domains).
    #[default]
    Es,
    /// Amazon OpenSearch Serverless collections.
    Aoss,
}

impl AwsService {
    fn signing_name(self) -> &'static str {
        match self {
            AwsService::Es => "es",
            AwsService::Aoss => "aoss",
        }
    }
}

/// Signs requests: region, service and renewable credentials.
struct Signer {
    region: String,
    service: AwsService,
    provider: SharedCredentialsProvider,
    current: Mutex<Option<Credentials>>,
}

impl Signer {
    /// Credentials from the standard chain; the region from `region` or else from the chain
    /// (`AWS_REGION`, the profile).
    async fn from_environment(
        region: Option<&str>,
        service: AwsService,
    ) -> Result<Signer, EsError> {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .load()
            .await;
        let region = match region {
            Some(region) => region.to_owned(),
            None => sdk.region().map(|r| r.to_string()).ok_or_else(|| {
                EsError::config(
                    "auth aws-sigv4 needs a region: set engine.auth.region or AWS_REGION",
                )
            })?,
        };
        let provider = sdk.credentials_provider().ok_or_else(|| {
            EsError::config("auth aws-sigv4: no AWS credentials provider is available")
        })?;
        Ok(Signer {
            region,
            service,
            provider,
            current: Mutex::new(None),
        })
    }

    /// Valid credentials: the cached ones, or fresh ones from the chain.
    async fn credentials(&self) -> Result<Credentials, String> {
        let mut current = self.current.lock().await;
        if let Some(credentials) = current.as_ref() {
            let fresh = credentials
                .expiry()
                .is_none_or(|expiry| expiry > SystemTime::now() + RENEW_BEFORE_EXPIRY);
            if fresh {
                return Ok(credentials.clone());
            }
        }
        let credentials = self
            .provider
            .provide_credentials()
            .await
            .map_err(|error| format!("no AWS credentials: {}", ErrorChain(&error)))?;
        *current = Some(credentials.clone());
        Ok(credentials)
    }

    /// The signature headers for a request to `url` with `headers` (the signed ones) and `body`.
    async fn sign(
        &self,
        method: &str,
        url: &Url,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Vec<(&'static str, String)>, String> {
        let identity: Identity = self.credentials().await?.into();
        let mut settings = SigningSettings::default();
        // OpenSearch Serverless requires the payload hash as a header; the managed service
        // accepts it, and it lets the receiver check the body against the signature at once.
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(self.service.signing_name())
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|error| format!("cannot sign: {}", ErrorChain(&error)))?
            .into();
        let signable = SignableRequest::new(
            method,
            url.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .map_err(|error| format!("cannot sign: {}", ErrorChain(&error)))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|error| format!("cannot sign: {}", ErrorChain(&error)))?
            .into_parts();
        let (signed, _query) = instructions.into_parts();
        Ok(signed
            .into_iter()
            .map(|header| (header.name(), header.value().to_owned()))
            .collect())
    }
}

/// A running forwarder: where the client sends its requests, and the token they must carry. It
/// stops when dropped.
pub(crate) struct Forwarder {
    local: Url,
    token: String,
    accept: JoinHandle<()>,
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Forwarder {
    /// Starts a forwarder to `upstream` that signs for `service` in `region` (or the chain's).
    pub(crate) async fn start(
        upstream: Url,
        region: Option<&str>,
        service: AwsService,
        upstream_client: reqwest::Client,
    ) -> Result<Forwarder, EsError> {
        let signer = Signer::from_environment(region, service).await?;
        // Fail at startup, not on the first request, when no credentials are to be had.
        signer.credentials().await.map_err(EsError::config)?;
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(setup_failed("cannot open the signing forwarder"))?;
        let address = listener
            .local_addr()
            .map_err(setup_failed("cannot open the signing forwarder"))?;
        let local = Url::parse(&format!("http://{address}/"))
            .map_err(setup_failed("signing forwarder address"))?;
        let token = uuid::Uuid::new_v4().simple().to_string();
        debug!(%address, region = %signer.region, service = signer.service.signing_name(), "signing forwarder started");
        let route = Arc::new(Route {
            upstream,
            token: token.clone(),
            signer,
            client: upstream_client,
        });
        let accept = tokio::spawn(accept_loop(listener, route));
        Ok(Forwarder {
            local,
            token,
            accept,
        })
    }

    /// The URL the client must use instead of the engine's.
    pub(crate) fn local_url(&self) -> &Url {
        &self.local
    }

    /// The value of [`TOKEN_HEADER`] every request must carry.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }
}

/// Everything a connection needs to forward a request.
struct Route {
    upstream: Url,
    token: String,
    signer: Signer,
    client: reqwest::Client,
}

async fn accept_loop(listener: TcpListener, route: Arc<Route>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(error = %ErrorChain(&error), "signing forwarder: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let route = route.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let route = route.clone();
                async move { Ok::<_, Infallible>(forward(&route, request).await) }
            });
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                debug!(error = %ErrorChain(&error), "signing forwarder: connection ended");
            }
        });
    }
}

/// Checks the token, signs the request and sends it on; answers with the engine's answer, or a
/// `502` naming what went wrong (the adapter treats it as the engine being unavailable).
async fn forward(route: &Route, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let token_ok = request
        .headers()
        .get(TOKEN_HEADER)
        .is_some_and(|token| token.as_bytes() == route.token.as_bytes());
    if !token_ok {
        return problem(StatusCode::FORBIDDEN, "missing or wrong forwarder token");
    }
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            return problem(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the request: {}", ErrorChain(&error)),
            );
        }
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .trim_start_matches('/');
    let url = match route.upstream.join(path_and_query) {
        Ok(url) => url,
        Err(error) => return problem(StatusCode::BAD_REQUEST, &format!("bad path: {error}")),
    };
    let content_type = parts
        .headers
        .get("content-type")
        .and_then(|value| value.to_str().ok());
    let signed_headers: Vec<(&str, &str)> = content_type
        .map(|value| ("content-type", value))
        .into_iter()
        .collect();
    let signature = match route
        .signer
        .sign(parts.method.as_str(), &url, &signed_headers, &body)
        .await
    {
        Ok(signature) => signature,
        Err(reason) => return problem(StatusCode::BAD_GATEWAY, &reason),
    };
    let mut headers = HeaderMap::new();
    for name in FORWARDED {
        if let Some(value) = parts.headers.get(name) {
            headers.insert(HeaderName::from_static(name), value.clone());
        }
    }
    for (name, value) in signature {
        match HeaderValue::from_str(&value) {
            Ok(mut value) => {
                value.set_sensitive(name.eq_ignore_ascii_case("authorization"));
                headers.insert(HeaderName::from_static(name), value);
            }
            Err(_) => return problem(StatusCode::BAD_GATEWAY, "unprintable signature header"),
        }
    }
    let sent = route
        .client
        .request(parts.method, url)
        .headers(headers)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(response) => relay(response).await,
        Err(error) => problem(
            StatusCode::BAD_GATEWAY,
            &format!("the search engine did not answer: {}", ErrorChain(&error)),
        ),
    }
}

/// The engine's answer, passed back without its hop-by-hop headers.
async fn relay(response: reqwest::Response) -> Response<Full<Bytes>> {
    let status = response.status();
    let mut headers = response.headers().clone();
    for hop in [
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
    ] {
        headers.remove(hop);
    }
    match response.bytes().await {
        Ok(body) => {
            let mut relayed = Response::new(Full::new(body));
            *relayed.status_mut() = status;
            *relayed.headers_mut() = headers;
            relayed
        }
        Err(error) => problem(
            StatusCode::BAD_GATEWAY,
            &format!(
                "the search engine's answer broke off: {}",
                ErrorChain(&error)
            ),
        ),
    }
}

/// An answer of the forwarder itself, shaped like an engine error.
fn problem(status: StatusCode, reason: &str) -> Response<Full<Bytes>> {
    if status != StatusCode::FORBIDDEN {
        warn!(
            status = status.as_u16(),
            reason, "signing forwarder could not forward a request"
        );
    }
    let body = serde_json::json!({
        "error": { "type": "athens_signing_forwarder", "reason": reason },
        "status": status.as_u16(),
    });
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(region: &str, service: AwsService) -> Signer {
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        Signer {
            region: region.into(),
            service,
            provider: SharedCredentialsProvider::new(credentials),
            current: Mutex::new(None),
        }
    }

    fn header<'a>(signed: &'a [(&'static str, String)], name: &str) -> &'a str {
        signed
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} header in {signed:?}"))
    }

    #[tokio::test]
    async fn signs_for_the_configured_region_and_service_with_the_body_hash() {
        let url = Url::parse("https://search.example.com/athens/_search?size=1").unwrap();
        let signed = signer("eu-west-3", AwsService::Aoss)
            .sign("POST", &url, &[("content-type", "application/json")], b"{}")
            .await
            .unwrap();
        let authorization = header(&signed, "authorization");
        assert!(authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"));
        assert!(authorization.contains("/eu-west-3/aoss/aws4_request"));
        assert!(
            authorization
                .contains("SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date")
        );
        // SHA-256 of "{}".
        assert_eq!(
            header(&signed, "x-amz-content-sha256"),
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }

    #[tokio::test]
    async fn a_different_body_gets_a_different_signature() {
        let url = Url::parse("https://search.example.com/_bulk").unwrap();
        let signer = signer("us-east-1", AwsService::Es);
        let one = signer.sign("POST", &url, &[], b"a").await.unwrap();
        let two = signer.sign("POST", &url, &[], b"b").await.unwrap();
        assert_ne!(
            header(&one, "x-amz-content-sha256"),
            header(&two, "x-amz-content-sha256")
        );
        assert!(header(&one, "authorization").contains("/us-east-1/es/aws4_request"));
    }

    #[tokio::test]
    async fn expiring_credentials_are_renewed_and_lasting_ones_kept() {
        let signer = signer("us-east-1", AwsService::Es);
        let first = signer.credentials().await.unwrap();
        *signer.current.lock().await = Some(Credentials::new(
            "OLD",
            "old",
            None,
            Some(SystemTime::now() + Duration::from_secs(60)),
            "test",
        ));
        let renewed = signer.credentials().await.unwrap();
        assert_eq!(renewed.access_key_id(), first.access_key_id());
        *signer.current.lock().await = Some(Credentials::new(
            "LASTING",
            "lasting",
            None,
            Some(SystemTime::now() + Duration::from_secs(3600)),
            "test",
        ));
        assert_eq!(
            signer.credentials().await.unwrap().access_key_id(),
            "LASTING"
        );
    }
}
