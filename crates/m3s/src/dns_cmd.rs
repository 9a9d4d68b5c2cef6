//! `m3s dns`: Mesos-DNS's names for a Mesos master's tasks (any master: the
//! embedded one or Apache Mesos), served over DNS and Mesos-DNS's REST lookups,
//! in place of Mesos-DNS beside a cluster. The names come from
//! `mini::dns::mesos` (a pure function of `/master/state`), read again every
//! `--refresh` seconds, as Mesos-DNS polls the master.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use clap::Args;
use mesos::legacy::MasterState;
use mesos::operator::OperatorClient;
use mini::dns::mesos::MesosNames;
use mini::dns::{Answer, Resolve};
use serde_json::{Value, json};

use crate::config::MesosArgs;

#[derive(Debug, Args)]
pub struct DnsArgs {
    /// Address and UDP port the DNS server listens on (Mesos-DNS uses port 53).
    #[arg(long, env = "M3S_DNS_BIND", default_value = "127.0.0.1:8053")]
    pub bind: SocketAddr,
    /// Address of Mesos-DNS's REST lookups (`/v1/hosts/{host}`, `/v1/services/{service}`,
    /// `/v1/version`); none unless given (Mesos-DNS uses port 8123).
    #[arg(long = "http-bind", env = "M3S_DNS_HTTP_BIND")]
    pub http_bind: Option<SocketAddr>,
    /// The domain of the names (`<task>.<framework>.<domain>`).
    #[arg(long, env = "M3S_DNS_DOMAIN", default_value = "mesos")]
    pub domain: String,
    /// Seconds between reads of the master's state.
    #[arg(long, env = "M3S_DNS_REFRESH", default_value_t = 5.0)]
    pub refresh: f64,
    /// Resolvers for names outside the domain, ip:port, comma-separated (default: the
    /// host's /etc/resolv.conf).
    #[arg(long = "dns-forward", env = "M3S_DNS_FORWARD", value_delimiter = ',')]
    pub forward: Vec<SocketAddr>,
}

/// The current names, replaced whole at each refresh.
#[derive(Default)]
struct Current(RwLock<Arc<MesosNames>>);

impl Current {
    fn get(&self) -> Arc<MesosNames> {
        self.0.read().expect("names lock").clone()
    }
}

impl Resolve for Current {
    fn resolve(&self, name: &str, qtype: u16, peer: std::net::IpAddr) -> Answer {
        self.get().resolve(name, qtype, peer)
    }
}

pub async fn run(mesos: MesosArgs, args: DnsArgs) -> anyhow::Result<()> {
    if !args.refresh.is_finite() || args.refresh < 0.1 {
        anyhow::bail!("--refresh must be at least 0.1 seconds");
    }
    let client = OperatorClient::new(&mesos.master, mesos.ssl, mesos.transport()?)?;
    let current = Arc::new(Current::default());
    let upstreams = if args.forward.is_empty() {
        mini::dns::nameservers(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
    } else {
        args.forward.clone()
    };
    let socket = tokio::net::UdpSocket::bind(args.bind).await.with_context(|| format!("--bind {}", args.bind))?;
    let _server = mini::dns::serve(socket, current.clone(), Arc::new(upstreams))?;
    eprintln!("m3s dns: names of {}'s tasks under .{} on udp {}", mesos.master, args.domain, args.bind);
    if let Some(addr) = args.http_bind {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("--http-bind {addr}"))?;
        let app = Router::new()
            .route(
                "/v1/version",
                get(|| async {
                    Json(json!({"Service": "Mesos-DNS", "Version": env!("CARGO_PKG_VERSION"), "URL": "m3s"}))
                }),
            )
            .route("/v1/hosts/{host}", get(hosts))
            .route("/v1/services/{service}", get(services))
            .with_state(current.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        eprintln!("m3s dns: REST lookups on http://{addr}/v1/");
    }
    let domain = args.domain.clone();
    let mut warned = false;
    loop {
        match client.get_json::<MasterState>("/master/state").await {
            Ok(state) => {
                *current.0.write().expect("names lock") = Arc::new(MesosNames::from_state(&state, &domain));
                warned = false;
            }
            Err(e) if !warned => {
                tracing::warn!(error = %e, "reading the master's state; the last names are kept");
                warned = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(args.refresh)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// Mesos-DNS's `/v1/hosts/{host}`: `[{"host": "web.demo.mesos.", "ip": "10.0.0.5"}]`.
async fn hosts(State(current): State<Arc<Current>>, Path(host): Path<String>) -> Json<Value> {
    let names = current.get();
    let key = host.trim_end_matches('.').to_ascii_lowercase();
    let found: Vec<Value> = names
        .hosts
        .get(&key)
        .into_iter()
        .flatten()
        .map(|ip| json!({"host": format!("{key}."), "ip": ip.to_string()}))
        .collect();
    Json(if found.is_empty() { json!([{"host": "", "ip": ""}]) } else { Value::Array(found) })
}

/// Mesos-DNS's `/v1/services/{service}`: host, ip and port of each SRV record.
async fn services(State(current): State<Arc<Current>>, Path(service): Path<String>) -> Json<Value> {
    let names = current.get();
    let key = service.trim_end_matches('.').to_ascii_lowercase();
    let mut found = Vec::new();
    for (port, target) in names.services.get(&key).into_iter().flatten() {
        for ip in names.hosts.get(target).into_iter().flatten() {
            found.push(json!({"service": format!("{key}."), "host": format!("{target}."), "ip": ip.to_string(), "port": port.to_string()}));
        }
    }
    Json(if found.is_empty() {
        json!([{"service": "", "host": "", "ip": "", "port": ""}])
    } else {
        Value::Array(found)
    })
}
