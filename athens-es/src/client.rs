//! The connection: transport (URL, timeout, TLS roots, credentials), the engine check, and the one
//! function every call's answer goes through, so no error status passes unnoticed.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use elasticsearch::Elasticsearch;
use elasticsearch::auth::Credentials;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::headers::{ACCEPT_ENCODING, HeaderName, HeaderValue};
use elasticsearch::http::response::Response;
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::indices::IndicesGetAliasParts;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tracing::{debug, info};

use crate::config::{EsAuth, EsConfig};
use crate::error::{EsError, Failure, setup_failed};
use crate::mapping;
use crate::signing::{Forwarder, TOKEN_HEADER};

/// Which search engine answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    /// Elasticsearch (or Amazon OpenSearch Service in its 7.10 compatibility mode).
    Elasticsearch,
    /// OpenSearch, self-managed or Amazon OpenSearch Service.
    OpenSearch,
}

impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Distribution::Elasticsearch => "elasticsearch",
            Distribution::OpenSearch => "opensearch",
        })
    }
}

/// The engine behind the URL, as it described itself when the adapter connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineInfo {
    /// Elasticsearch or OpenSearch.
    pub distribution: Distribution,
    /// The version number it reports, e.g. `7.10.2`.
    pub version: String,
}

impl fmt::Display for EngineInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.distribution, self.version)
    }
}

/// A connected client with the configuration it was made from; cheap to clone.
#[derive(Clone)]
pub(crate) struct Client {
    pub(crate) es: Elasticsearch,
    shared: Arc<Shared>,
}

struct Shared {
    config: EsConfig,
    engine: EngineInfo,
    /// The signing forwarder requests go through with `aws-sigv4`; it stops with the last clone.
    _forwarder: Option<Forwarder>,
}

impl Client {
    /// Builds the transport from `config`, asks the engine who it is and checks Athens supports it.
    pub(crate) async fn connect(config: &EsConfig) -> Result<Client, EsError> {
        let url = config.checked_url()?;
        let certificate = match &config.ca_certificate {
            Some(path) => Some(read_certificate(path)?),
            None => None,
        };
        // With SigV4 the client talks plain HTTP to its in-process forwarder, which signs each
        // request and makes the TLS connection to the engine.
        let forwarder = match &config.auth {
            Some(EsAuth::AwsSigV4 { region, service }) => {
                let upstream = upstream_client(config, certificate.as_ref())?;
                Some(Forwarder::start(url.clone(), region.as_deref(), *service, upstream).await?)
            }
            _ => None,
        };
        let target = forwarder
            .as_ref()
            .map_or(&url, Forwarder::local_url)
            .clone();
        let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(target))
            .timeout(Duration::from_secs(config.request_timeout_secs))
            // The client's metadata header names Elastic's client; other engines need not see it.
            .enable_meta_header(false)
            .request_body_compression(config.compression);
        if !config.compression {
            // The HTTP client asks for gzip by default; the engine would then compress every answer.
            builder = builder.header(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        }
        match &forwarder {
            Some(forwarder) => {
                let token = HeaderValue::from_str(forwarder.token())
                    .map_err(setup_failed("signing forwarder token"))?;
                builder = builder.header(HeaderName::from_static(TOKEN_HEADER), token);
            }
            None => {
                if let Some(pem) = &certificate {
                    let certificate = Certificate::from_pem(pem)
                        .map_err(setup_failed("ca_certificate is not a PEM certificate"))?;
                    builder = builder.cert_validation(CertificateValidation::Full(certificate));
                }
                if let Some(auth) = config.auth.as_ref().and_then(credentials) {
                    builder = builder.auth(auth);
                }
            }
        }
        let transport = builder
            .build()
            .map_err(setup_failed("cannot build the HTTP client"))?;
        let es = Elasticsearch::new(transport);
        let banner: Banner = read(es.info().send().await).await?;
        let engine = banner.engine()?;
        info!(
            distribution = %engine.distribution,
            version = %engine.version,
            host = url.host_str().unwrap_or_default(),
            port = url.port_or_known_default(),
            alias = %config.alias,
            "connected to the search engine"
        );
        Ok(Client {
            es,
            shared: Arc::new(Shared {
                config: config.clone(),
                engine,
                _forwarder: forwarder,
            }),
        })
    }

    /// The configuration the client was made from.
    pub(crate) fn config(&self) -> &EsConfig {
        &self.shared.config
    }

    /// The engine that answered when connecting.
    pub(crate) fn engine(&self) -> &EngineInfo {
        &self.shared.engine
    }

    /// Formats a handle over this client, `name`, for `Debug`: the engine and the alias.
    pub(crate) fn debug_as(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("engine", self.engine())
            .field("alias", &self.alias())
            .finish()
    }

    /// The alias searches read.
    pub(crate) fn alias(&self) -> &str {
        &self.shared.config.alias
    }
}

/// The credentials the transport sends itself; none for SigV4, which the forwarder adds.
fn credentials(auth: &EsAuth) -> Option<Credentials> {
    match auth {
        EsAuth::Basic { username, password } => Some(Credentials::Basic(
            username.clone(),
            password.expose_secret().to_owned(),
        )),
        EsAuth::ApiKey { id: Some(id), key } => Some(Credentials::ApiKey(
            id.clone(),
            key.expose_secret().to_owned(),
        )),
        EsAuth::ApiKey { id: None, key } => {
            Some(Credentials::EncodedApiKey(key.expose_secret().to_owned()))
        }
        EsAuth::AwsSigV4 { .. } => None,
    }
}

fn read_certificate(path: &std::path::Path) -> Result<Vec<u8>, EsError> {
    std::fs::read(path).map_err(setup_failed(format_args!(
        "cannot read ca_certificate {}",
        path.display()
    )))
}

/// The HTTP client the signing forwarder reaches the engine with: TLS roots (the system's, and
/// `ca_certificate`), the request timeout, and no decompression of its own (the answer's bytes
/// are relayed as they come).
fn upstream_client(config: &EsConfig, pem: Option<&Vec<u8>>) -> Result<reqwest::Client, EsError> {
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(config.request_timeout_secs))
        .no_gzip()
        .no_proxy();
    if let Some(pem) = pem {
        let certificate = reqwest::Certificate::from_pem(pem)
            .map_err(setup_failed("ca_certificate is not a PEM certificate"))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build()
        .map_err(setup_failed("cannot build the HTTP client"))
}

/// Every answer goes through here: a transport error or an error status (which the `elasticsearch`
/// crate returns as `Ok`) becomes a [`Failure`]; a success is returned as is.
pub(crate) async fn checked(
    sent: Result<Response, elasticsearch::Error>,
) -> Result<Response, Failure> {
    let response = sent.map_err(Failure::from_client)?;
    for warning in response.warning_headers() {
        // Deprecation notices: none on Elasticsearch 7.10 or OpenSearch 2.19 today; they announce
        // what a later major version will refuse.
        debug!(
            path = response.url().path(),
            warning, "the search engine warned about a request"
        );
    }
    let status = response.status_code();
    if status.is_client_error() || status.is_server_error() {
        let body = response.bytes().await.map_err(Failure::from_client)?;
        return Err(Failure::from_body(status.as_u16(), &body));
    }
    Ok(response)
}

/// [`checked`], then the body read as `T`.
pub(crate) async fn read<T: DeserializeOwned>(
    sent: Result<Response, elasticsearch::Error>,
) -> Result<T, Failure> {
    let response = checked(sent).await?;
    let body = response.bytes().await.map_err(Failure::from_client)?;
    serde_json::from_slice(&body).map_err(|error| Failure::Decode(Box::new(error)))
}

/// The indexes the client's alias points to (normally one, none before the first publish), oldest
/// first (mapping version as a number, then creation stamp).
pub(crate) async fn alias_holders(client: &Client) -> Result<Vec<String>, Failure> {
    let sent = client
        .es
        .indices()
        .get_alias(IndicesGetAliasParts::Name(&[client.alias()]))
        .send()
        .await;
    match read::<BTreeMap<String, serde_json::Value>>(sent).await {
        Ok(holders) => {
            let mut holders: Vec<String> = holders.into_keys().collect();
            mapping::sort_oldest_first(client.alias(), &mut holders);
            Ok(holders)
        }
        Err(failure) if failure.status() == Some(404) => Ok(Vec::new()),
        Err(failure) => Err(failure),
    }
}

/// The names of the indexes matching `pattern` (a name or a wildcard pattern), sorted.
pub(crate) async fn indexes_matching(
    client: &Client,
    pattern: &str,
) -> Result<Vec<String>, Failure> {
    let sent = client
        .es
        .indices()
        .get_alias(IndicesGetAliasParts::Index(&[pattern]))
        .send()
        .await;
    let found: BTreeMap<String, serde_json::Value> = read(sent).await?;
    Ok(found.into_keys().collect())
}

/// Applies alias `actions` in one atomic `POST /_aliases` request.
pub(crate) async fn update_aliases(
    client: &Client,
    actions: &[serde_json::Value],
) -> Result<Response, Failure> {
    let sent = client
        .es
        .indices()
        .update_aliases()
        .body(serde_json::json!({ "actions": actions }))
        .send()
        .await;
    checked(sent).await
}

/// The engine's answer to `GET /`.
#[derive(Debug, Deserialize)]
struct Banner {
    version: BannerVersion,
}

#[derive(Debug, Deserialize)]
struct BannerVersion {
    number: String,
    #[serde(default)]
    distribution: Option<String>,
}

impl Banner {
    fn engine(self) -> Result<EngineInfo, EsError> {
        let distribution = match self.version.distribution.as_deref() {
            None | Some("elasticsearch") => Distribution::Elasticsearch,
            Some("opensearch") => Distribution::OpenSearch,
            Some(other) => {
                return Err(EsError::Unsupported {
                    distribution: other.into(),
                    version: self.version.number,
                });
            }
        };
        let mut parts = self
            .version
            .number
            .split(['.', '-'])
            .map(|part| part.parse::<u32>().ok());
        let major = parts.next().flatten();
        let minor = parts.next().flatten().unwrap_or(0);
        // Bulk `version`/`version_type` without underscores and typeless APIs arrived in 7.0; the
        // mapping and queries are tested from 7.10 on.
        let supported = match (distribution, major) {
            (Distribution::OpenSearch, Some(_)) => true,
            (Distribution::Elasticsearch, Some(major)) => major > 7 || (major == 7 && minor >= 10),
            (_, None) => false,
        };
        if !supported {
            return Err(EsError::Unsupported {
                distribution: distribution.to_string(),
                version: self.version.number,
            });
        }
        Ok(EngineInfo {
            distribution,
            version: self.version.number,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn banner(number: &str, distribution: Option<&str>) -> Result<EngineInfo, EsError> {
        Banner {
            version: BannerVersion {
                number: number.into(),
                distribution: distribution.map(str::to_owned),
            },
        }
        .engine()
    }

    #[test]
    fn recognises_supported_engines() {
        let es = banner("7.10.2", None).unwrap();
        assert_eq!(es.distribution, Distribution::Elasticsearch);
        assert_eq!(es.to_string(), "elasticsearch 7.10.2");
        assert!(banner("9.1.0", Some("elasticsearch")).is_ok());
        assert!(banner("8.0.0-SNAPSHOT", None).is_ok());
        assert_eq!(
            banner("2.19.1", Some("opensearch")).unwrap().distribution,
            Distribution::OpenSearch
        );
        assert!(banner("3.0.0", Some("opensearch")).is_ok());
    }

    #[test]
    fn refuses_old_or_unknown_engines() {
        assert!(matches!(
            banner("7.9.3", None),
            Err(EsError::Unsupported { .. })
        ));
        assert!(matches!(
            banner("6.8.0", None),
            Err(EsError::Unsupported { .. })
        ));
        assert!(matches!(
            banner("1.0", Some("other")),
            Err(EsError::Unsupported { .. })
        ));
        assert!(matches!(
            banner("x", None),
            Err(EsError::Unsupported { .. })
        ));
    }
}
