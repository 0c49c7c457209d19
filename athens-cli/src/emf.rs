//! The sync's figures for CloudWatch, as embedded-metric-format (EMF) lines on stdout: every
//! `metrics.emf_interval_secs`, one JSON line with the lag, the backlog, and the dead letters and
//! failed index writes since the previous line. CloudWatch Logs turns such lines into metrics by
//! itself, so a sync task on ECS (which serves no HTTP) is seen from CloudWatch without an agent or a
//! scraper; deploy/aws's alarms read them.
//!
//! The figures are those the Prometheus recorder already holds (the same as `/metrics` of
//! `athens run`), read from its rendering.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use athens_core::engine::metrics::{BACKLOG, DEAD_LETTERS, LAG_SECONDS, WRITE_FAILURES};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Embedded-metric-format output (`[metrics]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Print EMF lines on stdout while syncing.
    pub emf: bool,
    /// CloudWatch namespace of the metrics.
    pub emf_namespace: String,
    /// Value of the `Stack` dimension (which deployment the figures are of).
    pub emf_stack: String,
    /// Seconds between two lines.
    pub emf_interval_secs: u64,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            emf: false,
            emf_namespace: "Athens".into(),
            emf_stack: "athens".into(),
            emf_interval_secs: 60,
        }
    }
}

impl MetricsSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.emf_interval_secs == 0 {
            return Err("metrics.emf_interval_secs must be at least 1".into());
        }
        if self.emf_namespace.is_empty() || self.emf_stack.is_empty() {
            return Err("metrics.emf_namespace and metrics.emf_stack must not be empty".into());
        }
        Ok(())
    }
}

/// Gauges reported as they are, by their CloudWatch name and unit, and how their label sets (one
/// per partition a process writes) make one figure: the lag of the oldest pending change, the
/// backlog of them all.
const GAUGES: [(&str, &str, &str, Fold); 2] = [
    (LAG_SECONDS, "SyncLagSeconds", "Seconds", Fold::Max),
    (BACKLOG, "SyncBacklogChanges", "Count", Fold::Sum),
];

/// How the label sets of one metric make one figure.
#[derive(Debug, Clone, Copy)]
enum Fold {
    Sum,
    Max,
}

/// One metric of a Prometheus rendering over its label sets.
#[derive(Debug, Clone, Copy, Default)]
struct Total {
    sum: f64,
    max: f64,
}

impl Total {
    fn folded(self, fold: Fold) -> f64 {
        match fold {
            Fold::Sum => self.sum,
            Fold::Max => self.max,
        }
    }
}

/// Counters reported as their increase since the previous line.
const COUNTERS: [(&str, &str); 2] = [
    (DEAD_LETTERS, "SyncDeadLetters"),
    (WRITE_FAILURES, "SyncWriteFailures"),
];

/// Prints a line every interval until `shutdown`, and a last one then.
pub async fn report(
    handle: PrometheusHandle,
    settings: MetricsSettings,
    shutdown: CancellationToken,
) {
    let mut previous = HashMap::new();
    let mut ticks = tokio::time::interval(Duration::from_secs(settings.emf_interval_secs));
    ticks.tick().await;
    loop {
        let stopping = tokio::select! {
            _ = ticks.tick() => false,
            () = shutdown.cancelled() => true,
        };
        let values = totals(&handle.render());
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as i64);
        let line = emf_line(&settings, &values, &mut previous, now_ms);
        let mut stdout = std::io::stdout().lock();
        if writeln!(stdout, "{line}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            tracing::warn!("cannot write metrics to stdout");
        }
        if stopping {
            return;
        }
    }
}

/// Every metric of a Prometheus text rendering, summed and maximized over its label sets.
fn totals(rendered: &str) -> HashMap<String, Total> {
    let mut totals: HashMap<String, Total> = HashMap::new();
    for line in rendered.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let value = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
        if let Some(value) = value {
            let total = totals.entry(line[..name_end].to_owned()).or_insert(Total {
                sum: 0.0,
                max: value,
            });
            total.sum += value;
            total.max = total.max.max(value);
        }
    }
    totals
}

/// One EMF document: gauges that exist, and counters' increase since `previous` (updated).
fn emf_line(
    settings: &MetricsSettings,
    values: &HashMap<String, Total>,
    previous: &mut HashMap<&'static str, f64>,
    timestamp_ms: i64,
) -> Value {
    let mut definitions = Vec::new();
    let mut document = serde_json::Map::new();
    document.insert("Stack".into(), json!(settings.emf_stack));
    for (metric, name, unit, fold) in GAUGES {
        if let Some(total) = values.get(metric) {
            definitions.push(json!({ "Name": name, "Unit": unit }));
            document.insert(name.into(), json!(total.folded(fold)));
        }
    }
    for (metric, name) in COUNTERS {
        let total = values.get(metric).map_or(0.0, |total| total.sum);
        let before = previous.insert(metric, total).unwrap_or(0.0);
        definitions.push(json!({ "Name": name, "Unit": "Count" }));
        document.insert(name.into(), json!((total - before).max(0.0)));
    }
    document.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": settings.emf_namespace,
                "Dimensions": [["Stack"]],
                "Metrics": definitions,
            }],
        }),
    );
    Value::Object(document)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RENDERED: &str = "\
# TYPE athens_sync_lag_seconds gauge
athens_sync_lag_seconds 4.5
athens_sync_backlog_changes 12
athens_sync_dead_letters_total 3
athens_sync_write_failures_total{kind=\"bulk\"} 2
athens_sync_write_failures_total{kind=\"item\"} 5
athens_http_requests_total{route=\"/readyz\"} 9
";

    #[test]
    fn gauges_as_they_are_counters_as_increases() {
        let settings = MetricsSettings {
            emf_stack: "prod".into(),
            ..MetricsSettings::default()
        };
        let mut previous = HashMap::new();
        let first = emf_line(
            &settings,
            &totals(RENDERED),
            &mut previous,
            1_700_000_000_000,
        );
        assert_eq!(first["Stack"], "prod");
        assert_eq!(first["SyncLagSeconds"], 4.5);
        assert_eq!(first["SyncBacklogChanges"], 12.0);
        assert_eq!(first["SyncDeadLetters"], 3.0);
        assert_eq!(first["SyncWriteFailures"], 7.0);
        let aws = &first["_aws"];
        assert_eq!(aws["Timestamp"], 1_700_000_000_000_i64);
        assert_eq!(aws["CloudWatchMetrics"][0]["Namespace"], "Athens");
        assert_eq!(
            aws["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Stack"]])
        );
        let names: Vec<&str> = aws["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "SyncLagSeconds",
                "SyncBacklogChanges",
                "SyncDeadLetters",
                "SyncWriteFailures"
            ]
        );

        let later = RENDERED
            .replace("dead_letters_total 3", "dead_letters_total 4")
            .replace("lag_seconds 4.5", "lag_seconds 0");
        let second = emf_line(&settings, &totals(&later), &mut previous, 1_700_000_060_000);
        assert_eq!(second["SyncDeadLetters"], 1.0);
        assert_eq!(second["SyncWriteFailures"], 0.0);
        assert_eq!(second["SyncLagSeconds"], 0.0);
    }

    /// The writers of two partitions in one process: each partition's backlog is a series of its
    /// own, and the line says the backlog of both and the lag of the older.
    #[test]
    fn each_partition_has_its_backlog_and_the_line_folds_them() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let two = std::num::NonZeroU32::new(2).unwrap();
        metrics::with_local_recorder(&recorder, || {
            for (index, pending, lag) in [(0, 3, 1.5), (1, 4, 6.0)] {
                athens_core::engine::metrics::backlog(&athens_core::Backlog {
                    pending,
                    oldest_age: Some(Duration::from_secs_f64(lag)),
                    partition: athens_core::partition::Partition::new(index, two),
                    ..athens_core::Backlog::default()
                });
            }
        });
        let rendered = handle.render();
        for series in [
            "athens_sync_backlog_changes{partition=\"0\"} 3",
            "athens_sync_backlog_changes{partition=\"1\"} 4",
            "athens_sync_lag_seconds{partition=\"1\"} 6",
        ] {
            assert!(rendered.contains(series), "{series} in:\n{rendered}");
        }
        let line = emf_line(
            &MetricsSettings::default(),
            &totals(&rendered),
            &mut HashMap::new(),
            0,
        );
        assert_eq!(line["SyncBacklogChanges"], 7.0);
        assert_eq!(line["SyncLagSeconds"], 6.0);
    }

    #[test]
    fn a_gauge_not_yet_recorded_is_left_out() {
        let mut previous = HashMap::new();
        let line = emf_line(
            &MetricsSettings::default(),
            &HashMap::new(),
            &mut previous,
            0,
        );
        assert!(line.get("SyncLagSeconds").is_none());
        assert_eq!(line["SyncDeadLetters"], 0.0);
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }
}
