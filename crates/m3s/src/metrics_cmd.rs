//! `m3s metrics serve` (M3trics alone: ingestion, store, queries, reports on
//! one port) and `m3s metrics report` (the reports, from a running m3s); and
//! the M3trics part of `m3s up` and `m3s serve`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use metrics::store::{Store, StoreConfig};

use crate::api_client::{ApiArgs, ApiClient};

/// Store and collector settings, shared by `m3s up`, `m3s serve` and `m3s metrics serve`.
#[derive(Debug, Clone, Args)]
pub struct MetricsStoreArgs {
    /// How long metrics are kept, e.g. 30d, 12h (0: forever).
    #[arg(long = "metrics-retention", env = "M3S_METRICS_RETENTION", default_value = "30d", value_parser = parse_duration)]
    pub retention: Duration,
    /// Sync metrics to disk before acknowledging each write (survives power loss; slower).
    /// Without it, acknowledged writes survive a crash of m3s (kill -9), not of the machine.
    #[arg(long = "metrics-fsync", env = "M3S_METRICS_FSYNC", default_value_t = false)]
    pub fsync: bool,
    /// Samples kept in memory before they are compressed to disk (16 bytes each).
    #[arg(long = "metrics-max-head-samples", env = "M3S_METRICS_MAX_HEAD_SAMPLES", default_value_t = 4 << 20)]
    pub head_max_samples: usize,
    /// Largest write request, in bytes after decompression.
    #[arg(long = "metrics-max-body", env = "M3S_METRICS_MAX_BODY", default_value_t = server::metrics::DEFAULT_MAX_BODY)]
    pub max_body: usize,
    /// Most series the store holds; writes that would add more are refused (400).
    #[arg(long = "metrics-max-series", env = "M3S_METRICS_MAX_SERIES", default_value_t = metrics::store::Limits::default().max_series)]
    pub max_series: usize,
    /// Most labels of one series, its name included.
    #[arg(long = "metrics-max-labels", env = "M3S_METRICS_MAX_LABELS", default_value_t = metrics::store::Limits::default().max_labels)]
    pub max_labels: usize,
    /// Longest label name, in bytes.
    #[arg(long = "metrics-max-label-name", env = "M3S_METRICS_MAX_LABEL_NAME", default_value_t = metrics::store::Limits::default().max_label_name)]
    pub max_label_name: usize,
    /// Longest label value, in bytes.
    #[arg(long = "metrics-max-label-value", env = "M3S_METRICS_MAX_LABEL_VALUE", default_value_t = metrics::store::Limits::default().max_label_value)]
    pub max_label_value: usize,
    /// Most samples one query may read (422 beyond).
    #[arg(long = "metrics-max-query-samples", env = "M3S_METRICS_MAX_QUERY_SAMPLES", default_value_t = metrics::store::Limits::default().max_query_samples)]
    pub max_query_samples: usize,
    /// Most points one range query may answer (422 beyond).
    #[arg(long = "metrics-max-query-points", env = "M3S_METRICS_MAX_QUERY_POINTS", default_value_t = metrics::promql::DEFAULT_MAX_ANSWER_POINTS)]
    pub max_query_points: usize,
    /// How far ahead of this machine's clock a sample may be, e.g. 1d, 1h.
    #[arg(long = "metrics-max-future", env = "M3S_METRICS_MAX_FUTURE", default_value = "1d", value_parser = parse_duration)]
    pub max_future: Duration,
    /// How often the built-in collectors read the node and the Mesos master and agents (0: never).
    #[arg(long = "collect-interval", env = "M3S_COLLECT_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub collect_interval: Duration,
    /// How often watched series are scored for anomalies (0: no anomaly detection).
    #[arg(long = "anomaly-interval", env = "M3S_ANOMALY_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub anomaly_interval: Duration,
    /// Which series are watched (YAML: `watch: [{metric, labels, kind, window, threshold}]`),
    /// reloaded when it changes. Default: the built-in node, network and task metrics.
    #[arg(long = "anomaly-rules", env = "M3S_ANOMALY_RULES")]
    pub anomaly_rules: Option<std::path::PathBuf>,
    /// Alerting rules in Prometheus's YAML (`groups: [{name, rules: [{alert, expr|anomaly, for, labels,
    /// annotations}]}]`), reloaded when the file changes. Unset: no alerting.
    #[arg(long = "alert-rules", env = "M3S_ALERT_RULES")]
    pub alert_rules: Option<std::path::PathBuf>,
    /// Where alert notifications go (Alertmanager's webhook format); repeatable, or comma-separated.
    #[arg(long = "alert-webhook", env = "M3S_ALERT_WEBHOOKS", value_delimiter = ',')]
    pub alert_webhooks: Vec<String>,
    /// How often the alerting rules are evaluated.
    #[arg(long = "alert-interval", env = "M3S_ALERT_INTERVAL", default_value = "15s", value_parser = parse_duration)]
    pub alert_interval: Duration,
}

/// `30d`, `12h`, `90s`, `500ms`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    metrics::promql::parse_duration(s)
        .filter(|ms| *ms >= 0)
        .map(|ms| Duration::from_millis(ms as u64))
        .ok_or_else(|| format!("{s:?} is not a duration (e.g. 30d, 12h, 10s, 500ms)"))
}

#[derive(Debug, Args)]
pub struct MetricsArgs {
    #[command(subcommand)]
    pub command: MetricsCommand,
}

#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    /// Run M3trics alone: line protocol, remote_write, Prometheus queries, reports, on one port.
    Serve(MetricsServeArgs),
    /// Print a report from a running m3s: nodes by average memory use, or top tasks.
    Report(ReportArgs),
    /// Anomalies found in the watched series (newest first), from a running m3s.
    Anomalies(AnomaliesArgs),
    /// Score the anomaly detector on a directory in NAB's layout (`data/<folder>/*.csv`,
    /// `combined_windows.json`) with NAB's method; the last line is the standard score.
    Nab(NabArgs),
}

#[derive(Debug, Args)]
pub struct AnomaliesArgs {
    /// How far back (e.g. 1d, 6h).
    #[arg(long, default_value = "1d", value_parser = parse_duration)]
    pub last: Duration,
    /// Only anomalies still open.
    #[arg(long)]
    pub open: bool,
    /// Print the JSON answer.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct NabArgs {
    /// The benchmark's directory.
    pub dir: PathBuf,
    /// Points in the detector's sliding window.
    #[arg(long = "window", default_value_t = metrics::anomaly::watch::DEFAULT_WINDOW)]
    pub window: usize,
}

#[derive(Debug, Args)]
pub struct MetricsServeArgs {
    /// Port for every endpoint.
    #[arg(long = "port", env = "M3S_METRICS_PORT", default_value_t = 8428)]
    pub port: u16,
    /// Address to listen on. Anything but loopback needs credentials (always required unless --insecure-open-api).
    #[arg(long = "listen", env = "M3S_METRICS_LISTEN", default_value = "127.0.0.1")]
    pub listen: IpAddr,
    /// Where the store lives (`<work-dir>/metrics`) and the generated API token (`<work-dir>/api-token`).
    #[arg(long = "work-dir", env = "M3S_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// Mesos master to collect from and record errors of (e.g. http://127.0.0.1:5050); none by default.
    #[arg(long = "master", env = "MESOS_MASTER")]
    pub master: Option<String>,
    /// Collect this node's own metrics from /proc.
    #[arg(long = "collect-node", default_value_t = true, action = clap::ArgAction::Set)]
    pub collect_node: bool,
    #[command(flatten)]
    pub auth: crate::config::AuthArgs,
    #[command(flatten)]
    pub store: MetricsStoreArgs,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub report: Report,
    /// Range start: RFC 3339 or Unix seconds (default: --last before the end).
    #[arg(long, global = true)]
    pub start: Option<String>,
    /// Range end (default: now).
    #[arg(long, global = true)]
    pub end: Option<String>,
    /// Range length when --start is not given.
    #[arg(long, global = true, default_value = "3d", value_parser = parse_duration)]
    pub last: Duration,
    /// Rows to show.
    #[arg(long, global = true, default_value_t = 10)]
    pub limit: usize,
    /// Print the JSON answer instead of a table.
    #[arg(long, global = true, default_value_t = false)]
    pub json: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Report {
    /// Nodes by average memory use (least first, or --most).
    Nodes {
        #[arg(long, default_value_t = false)]
        most: bool,
    },
    /// Tasks by CPU or memory use, highest first.
    Tasks {
        #[arg(long, default_value = "cpu", value_parser = ["cpu", "memory"])]
        by: String,
    },
}

/// M3trics running inside a process: its router to serve, and the store to close at exit.
pub struct RunningMetrics {
    pub router: axum::Router,
    /// For the dashboard's views of the store and the error log.
    pub state: server::metrics::MetricsState,
    pub store: Arc<Store>,
}

impl RunningMetrics {
    /// Flushes the head to disk, so the next start needs no WAL replay.
    pub async fn close(self) {
        let store = self.store;
        match tokio::task::spawn_blocking(move || store.close()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("metrics store: {e}"),
            Err(e) => tracing::error!("metrics store: {e}"),
        }
    }
}

/// Whether this machine's own metrics are collected, and under which `host` tag.
pub enum NodeMetrics {
    Skip,
    /// `host`: the name to tag them with (default: the machine's name).
    Collect {
        host: Option<String>,
    },
}

/// Opens the store under `<work_dir>/metrics`, starts its flusher, the
/// collectors (node; and the master's and agents' metrics when `master` is
/// given) and the error log of the master's events.
pub fn start(
    args: &MetricsStoreArgs,
    work_dir: &Path,
    auth: server::Auth,
    master: Option<(String, mesos::transport::TransportConfig)>,
    node: NodeMetrics,
) -> anyhow::Result<RunningMetrics> {
    let dir = work_dir.join("metrics");
    let mut config = StoreConfig::new(&dir);
    config.retention = (!args.retention.is_zero()).then_some(args.retention);
    config.fsync = args.fsync;
    config.head_max_samples = args.head_max_samples.max(1024);
    config.limits = metrics::store::Limits {
        max_series: args.max_series,
        max_labels: args.max_labels,
        max_label_name: args.max_label_name,
        max_label_value: args.max_label_value,
        max_query_samples: args.max_query_samples,
        max_future_ms: i64::try_from(args.max_future.as_millis()).unwrap_or(i64::MAX),
    };
    let store = Store::open(config).with_context(|| format!("opening the metrics store in {}", dir.display()))?;
    store.start_flusher();
    let mut state = server::metrics::MetricsState::new(store.clone(), auth)
        .with_max_body(args.max_body)
        .with_max_answer_points(args.max_query_points);
    if let Some((url, transport)) = &master {
        let log = metrics::errors::ErrorLog::open(&dir.join("errors"))
            .with_context(|| format!("opening the error log in {}", dir.display()))?;
        let log = Arc::new(log);
        let client = mesos::operator::OperatorClient::new(url, false, transport.clone())?;
        metrics::errors::spawn_error_log(client, log.clone());
        state = state.with_error_log(log);
    }
    if !args.anomaly_interval.is_zero() {
        let watch = metrics::anomaly::runner::Anomalies::new(
            store.clone(),
            metrics::anomaly::watch::default_rules(),
            Some(dir.join("anomalies.jsonl")),
        );
        let watch = match &args.anomaly_rules {
            Some(path) => watch.with_rules_file(path.clone()).map_err(|e| anyhow::anyhow!("--anomaly-rules: {e}"))?,
            None => watch,
        };
        watch.spawn(args.anomaly_interval);
        state = state.with_anomalies(watch);
    }
    if let Some(rules) = &args.alert_rules {
        for url in &args.alert_webhooks {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                anyhow::bail!("--alert-webhook {url:?}: expected an http:// or https:// URL");
            }
        }
        let alerting = metrics::alert::runner::Alerting::new(
            store.clone(),
            Some(rules.clone()),
            args.alert_webhooks.clone(),
            Some(dir.join("alerts.json")),
            state.error_log().cloned(),
            String::new(),
        )
        .map_err(|e| anyhow::anyhow!("--alert-rules: {e}"))?;
        alerting.spawn(args.alert_interval);
        state = state.with_alerting(alerting);
    }
    if !args.collect_interval.is_zero() {
        let sink_store = store.clone();
        let sink: metrics::collect::Sink = Arc::new(move |points: Vec<metrics::model::Point>| {
            if let Err(e) = sink_store.write_points(&points, metrics::store::now_ms()) {
                tracing::warn!("metrics collector: cannot store: {e}");
            }
        });
        let config = metrics::collect::CollectorConfig {
            interval: args.collect_interval,
            master: master.clone(),
            node: matches!(node, NodeMetrics::Collect { .. }),
            node_host: match node {
                NodeMetrics::Collect { host } => host,
                NodeMetrics::Skip => None,
            },
            disk_paths: vec![work_dir.to_owned()],
        };
        metrics::collect::spawn_collectors(config, sink);
    }
    Ok(RunningMetrics { router: server::metrics::router(state.clone()), state, store })
}

pub async fn run(args: MetricsArgs) -> anyhow::Result<()> {
    match args.command {
        MetricsCommand::Serve(args) => serve(args).await,
        MetricsCommand::Report(args) => report(args).await,
        MetricsCommand::Nab(args) => nab(args),
        MetricsCommand::Anomalies(args) => anomalies(args).await,
    }
}

async fn serve(args: MetricsServeArgs) -> anyhow::Result<()> {
    let work_dir = args.work_dir.clone().unwrap_or_else(crate::paths::default_work_dir);
    crate::paths::prepare_work_dir(&work_dir)
        .with_context(|| format!("preparing the work directory {}", work_dir.display()))?;
    let (auth, note) = crate::config::resolve_auth(&args.auth, &work_dir)?;
    if !args.listen.is_loopback() && auth.is_open() {
        bail!("refusing an open API on {}: drop --insecure-open-api or listen on 127.0.0.1", args.listen);
    }
    let addr = SocketAddr::new(args.listen, args.port);
    let listener =
        tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr} (pass --port)"))?;
    let master = args.master.clone().map(|m| (m, mesos::transport::TransportConfig::default()));
    let node = if args.collect_node { NodeMetrics::Collect { host: None } } else { NodeMetrics::Skip };
    let running = start(&args.store, &work_dir, auth, master, node)?;
    eprintln!("m3s metrics: listening on http://{addr} ({note}); store in {}", work_dir.join("metrics").display());
    let app = running.router.clone();
    axum::serve(listener, app).with_graceful_shutdown(crate::mini_cmd::shutdown_signal()).await?;
    running.close().await;
    eprintln!("m3s metrics: stopped");
    Ok(())
}

async fn anomalies(args: AnomaliesArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(&args.api)?;
    let start = metrics::store::now_ms() as f64 / 1000.0 - args.last.as_secs_f64();
    let answer = client.get(&format!("/api/m3trics/v1/anomalies?start={start:.3}&open={}", args.open)).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    if let Some(problem) = answer["problem"].as_str() {
        eprintln!("m3s: the anomaly watch: {problem}");
    }
    let events = answer["anomalies"].as_array().cloned().unwrap_or_default();
    if events.is_empty() {
        println!("no anomaly in {} watched series", answer["watched_series"]);
        return Ok(());
    }
    println!("{:<20} {:<20} {:<26} {:>5}  {:<30} REASON", "START (UTC)", "END", "METRIC", "SCORE", "SERIES");
    for e in &events {
        let time = |v: &serde_json::Value| v.as_i64().map(mesos::utc::format_ms);
        println!(
            "{:<20} {:<20} {:<26} {:>5.2}  {:<30} {}",
            time(&e["start_ms"]).unwrap_or_default(),
            time(&e["end_ms"]).unwrap_or_else(|| "open".into()),
            e["metric"].as_str().unwrap_or(""),
            e["peak_score"].as_f64().unwrap_or(0.0),
            crate::api_client::pairs(&e["labels"], ","),
            e["reason"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

async fn report(args: ReportArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(&args.api)?;
    let end = match &args.end {
        Some(e) => e.clone(),
        None => format!("{:.3}", metrics::store::now_ms() as f64 / 1000.0),
    };
    let start = match &args.start {
        Some(s) => s.clone(),
        None => {
            let end_s: f64 =
                end.parse().map_err(|_| anyhow::anyhow!("--last needs --end in Unix seconds, or give --start"))?;
            format!("{:.3}", end_s - args.last.as_secs_f64())
        }
    };
    let range = format!("start={}&end={}&limit={}", enc(&start), enc(&end), args.limit);
    let (path, key) = match &args.report {
        Report::Nodes { most } => {
            (format!("/api/m3trics/v1/reports/nodes?order={}&{range}", if *most { "most" } else { "least" }), "nodes")
        }
        Report::Tasks { by } => (format!("/api/m3trics/v1/reports/tasks?by={by}&{range}"), "tasks"),
    };
    let answer = client.get(&path).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    let rows = answer[key].as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        println!("no data between {start} and {end}");
        return Ok(());
    }
    let num = |v: &serde_json::Value, decimals: usize| v.as_f64().map_or("-".to_owned(), |f| format!("{f:.decimals$}"));
    let bytes = |v: &serde_json::Value| v.as_f64().map_or("-".to_owned(), server::dashboard::format_bytes);
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_owned();
    // The host first, then what was measured, with its unit.
    let (header, cells): (Vec<&str>, Vec<Vec<String>>) = match &args.report {
        Report::Nodes { .. } => (
            vec!["HOST", "AVG USED %", "AVG USED", "TOTAL", "SAMPLES"],
            rows.iter()
                .map(|r| {
                    vec![
                        text(&r["host"]),
                        num(&r["avg_used_percent"], 1),
                        bytes(&r["avg_used_bytes"]),
                        bytes(&r["total_bytes"]),
                        num(&r["samples"], 0),
                    ]
                })
                .collect(),
        ),
        Report::Tasks { .. } => (
            vec!["HOST", "TASK", "CPUS AVG", "CPUS MAX", "RSS AVG", "RSS MAX"],
            rows.iter()
                .map(|r| {
                    vec![
                        text(&r["host"]),
                        text(&r["task"]),
                        num(&r["avg_cpus_used"], 3),
                        num(&r["max_cpus_used"], 3),
                        bytes(&r["avg_mem_rss_bytes"]),
                        bytes(&r["max_mem_rss_bytes"]),
                    ]
                })
                .collect(),
        ),
    };
    let widths: Vec<usize> = header
        .iter()
        .enumerate()
        .map(|(i, c)| cells.iter().map(|r| r[i].len()).chain([c.len()]).max().unwrap_or(0))
        .collect();
    let line = |vals: &[String]| {
        vals.iter().zip(&widths).map(|(v, w)| format!("{v:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_string()
    };
    println!("{}", line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>()));
    for r in &cells {
        println!("{}", line(r));
    }
    Ok(())
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `m3s metrics nab DIR`: every series through the online detector, point by point, then NAB's scoring.
fn nab(args: NabArgs) -> anyhow::Result<()> {
    use metrics::anomaly::{RobustDetector, nab};
    let series = nab::load(&args.dir)?;
    if series.is_empty() {
        anyhow::bail!(
            "{}: no series (expected data/<folder>/*.csv named in combined_windows.json)",
            args.dir.display()
        );
    }
    let window = args.window;
    let started = cpu_time();
    let report = nab::evaluate(series, || {
        let mut d = RobustDetector::new(window);
        Box::new(move |t, v| d.score_at(t, v))
    });
    let cpu = cpu_time().saturating_sub(started);
    println!(
        "NAB over {}: {} series, {} points; detector robust (median/MAD: points and level shifts over {window} points, the daily pattern); {:.1} µs of CPU per point (scoring included)",
        args.dir.display(),
        report.series,
        report.points,
        cpu.as_secs_f64() * 1e6 / report.points.max(1) as f64
    );
    for (folder, score, raw) in &report.folders {
        match score {
            Some(s) => println!("  {folder:<28} {s:>7.1}"),
            None => println!("  {folder:<28} {:>7} (no windows; false positives cost {:.2})", "-", -raw),
        }
    }
    for (profile, threshold, score) in &report.profiles {
        println!("  profile {:<20} {score:>7.1} (threshold {threshold:.4})", profile.name);
    }
    println!("NAB standard score: {:.1}", report.standard());
    Ok(())
}

/// CPU time of this process so far.
fn cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}
