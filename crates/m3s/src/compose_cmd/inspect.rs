//! The read-only verbs of `m3s compose`: ps, logs, top, images, port, events,
//! version; how they print what m3s's API answers, in docker compose's shapes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::PsFormat;
use crate::api_client::ApiClient;
use crate::project::Loaded;

pub fn version(short: bool, format: &str) {
    let v = env!("CARGO_PKG_VERSION");
    if short {
        println!("{v}");
    } else if format == "json" {
        println!("{}", json!({ "version": v }));
    } else {
        println!("m3s compose version {v}");
    }
}

pub struct PsOptions<'a> {
    pub services: &'a [String],
    pub all: bool,
    pub services_only: bool,
    pub quiet: bool,
}

/// docker's container state for a Mesos task state.
fn docker_state(mesos: &str) -> &'static str {
    match mesos {
        "TASK_RUNNING" => "running",
        "TASK_KILLING" => "removing",
        "TASK_STAGING" | "TASK_STARTING" => "created",
        _ => "exited",
    }
}

fn is_live(task: &Value) -> bool {
    matches!(task["state"].as_str(), Some("TASK_STAGING" | "TASK_STARTING" | "TASK_RUNNING" | "TASK_KILLING"))
}

/// The exit code a task's message gives (`Command exited with status N`), 0 for a finished task.
fn exit_code(task: &Value) -> i64 {
    let message = task["message"].as_str().unwrap_or("");
    if let Some(code) = message.strip_prefix("Command exited with status ").and_then(|c| c.trim().parse().ok()) {
        return code;
    }
    match task["state"].as_str() {
        Some("TASK_FINISHED") | Some("TASK_RUNNING") | Some("TASK_STAGING") | Some("TASK_STARTING") => 0,
        Some("TASK_KILLED") => 137,
        _ => 1,
    }
}

pub fn ps(projects: &[Value], format: PsFormat, o: &PsOptions) -> String {
    let wanted = |s: &Value| o.services.is_empty() || o.services.iter().any(|n| s["name"] == n.as_str());
    let mut out = String::new();
    if o.services_only {
        for s in projects.iter().flat_map(|p| p["services"].as_array().into_iter().flatten()).filter(|s| wanted(s)) {
            out.push_str(s["name"].as_str().unwrap_or("?"));
            out.push('\n');
        }
        return out;
    }
    let tasks = || {
        projects.iter().flat_map(move |p| {
            p["services"].as_array().into_iter().flatten().filter(move |s| wanted(s)).flat_map(move |s| {
                s["tasks"].as_array().into_iter().flatten().filter(move |t| o.all || is_live(t)).map(move |t| (p, s, t))
            })
        })
    };
    if o.quiet {
        for (_, _, t) in tasks() {
            out.push_str(t["id"].as_str().unwrap_or("?"));
            out.push('\n');
        }
        return out;
    }
    match format {
        PsFormat::Json => {
            for (p, s, t) in tasks() {
                let project = p["name"].as_str().unwrap_or("?");
                let service = s["name"].as_str().unwrap_or("?");
                let replica = t["replica"].as_u64().unwrap_or(0) + 1;
                let state = docker_state(t["state"].as_str().unwrap_or(""));
                let health = match t["healthy"].as_bool() {
                    Some(true) => "healthy",
                    Some(false) => "unhealthy",
                    None => "",
                };
                let host = t["host"].as_str().unwrap_or("");
                let publishers: Vec<Value> = t["ports"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|port| json!({ "URL": host, "PublishedPort": port, "Protocol": "tcp" }))
                    .collect();
                let launched = t["launched_at_ms"].as_i64().unwrap_or(0) / 1000;
                let status = match state {
                    "running" => format!("Up since {}", mesos::utc::format_seconds(launched)),
                    "exited" => format!("Exited ({})", exit_code(t)),
                    other => other.to_owned(),
                };
                let line = json!({
                    "ID": t["id"],
                    "Name": format!("{project}-{service}-{replica}"),
                    "Project": project,
                    "Service": service,
                    "State": state,
                    "Health": health,
                    "ExitCode": if state == "exited" { exit_code(t) } else { 0 },
                    "Status": status,
                    "CreatedAt": mesos::utc::format_seconds(launched),
                    "Publishers": publishers,
                    "MesosState": t["state"],
                });
                out.push_str(&line.to_string());
                out.push('\n');
            }
            out
        }
        PsFormat::Table => {
            let mut rows =
                vec![["PROJECT", "SERVICE", "REPLICAS", "STATE", "ENDPOINTS", "MESSAGE"].map(String::from).to_vec()];
            for p in projects {
                let project = p["name"].as_str().unwrap_or("?");
                for s in p["services"].as_array().into_iter().flatten().filter(|s| wanted(s)) {
                    let endpoints: Vec<&str> =
                        s["endpoints"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                    rows.push(vec![
                        project.to_owned(),
                        s["name"].as_str().unwrap_or("?").to_owned(),
                        format!("{}/{}", s["running"].as_u64().unwrap_or(0), s["replicas"].as_u64().unwrap_or(0)),
                        s["state"].as_str().unwrap_or("?").to_owned(),
                        endpoints.join(","),
                        s["message"].as_str().unwrap_or("").to_owned(),
                    ]);
                }
            }
            table(&rows)
        }
    }
}

fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns).map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

pub struct LogOptions {
    pub follow: bool,
    /// Lines from the end of each task's output; `None`: all.
    pub tail: Option<usize>,
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
    pub timestamps: bool,
    pub prefix: bool,
}

pub fn parse_tail(s: &str) -> anyhow::Result<Option<usize>> {
    match s {
        "all" | "-1" => Ok(None),
        n => Ok(Some(n.parse().with_context(|| format!("--tail {n:?}: expected a number of lines or `all`"))?)),
    }
}

/// A time as docker compose takes it: RFC 3339 (`2026-12-05T19:00:00Z`, an
/// offset, fractions), Unix seconds, or a duration (`10m`, `1h30m`) meaning that long ago.
pub fn parse_time(s: &str, now_ms: u64) -> anyhow::Result<u64> {
    if let Ok(secs) = s.parse::<f64>() {
        return Ok((secs * 1000.0) as u64);
    }
    if let Ok(d) = crate::metrics_cmd::parse_duration(s) {
        return Ok(now_ms.saturating_sub(d.as_millis() as u64));
    }
    parse_rfc3339(s)
        .with_context(|| format!("{s:?}: expected RFC 3339 (2026-12-05T19:00:00Z), Unix seconds or a duration (10m)"))
}

fn parse_rfc3339(s: &str) -> Option<u64> {
    let (date, rest) = s.split_once(['T', ' '])?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, mo, day) = (d.next()??, d.next()??, d.next()??);
    let (clock, offset_s) = match rest.find(['Z', 'z', '+', '-']) {
        Some(i) => {
            let zone = &rest[i..];
            let offset = match zone {
                "Z" | "z" => 0,
                _ => {
                    let sign = if zone.starts_with('-') { -1 } else { 1 };
                    let (h, m) = zone[1..].split_once(':')?;
                    sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60)
                }
            };
            (&rest[..i], offset)
        }
        None => (rest, 0),
    };
    let mut c = clock.splitn(3, ':');
    let (h, mi) = (c.next()?.parse::<i64>().ok()?, c.next()?.parse::<i64>().ok()?);
    let sec: f64 = c.next().unwrap_or("0").parse().ok()?;
    let days = mesos::utc::days_from_civil(y, mo, day);
    let secs = days * 86400 + h * 3600 + mi * 60 - offset_s;
    Some((secs as f64 * 1000.0 + sec * 1000.0).max(0.0) as u64)
}

/// Prints the output of the services' tasks: the newest task of each replica,
/// or every task in the --since/--until window.
pub async fn logs(api: &ApiClient, project: &str, services: &[String], o: &LogOptions) -> anyhow::Result<()> {
    let view = api.get(&format!("/api/v1/projects/{project}")).await?;
    let known: Vec<String> = view["services"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .map(str::to_owned)
        .collect();
    if let Some(unknown) = services.iter().find(|s| !known.contains(s)) {
        bail!("no such service: {unknown}");
    }
    let windowed = o.since_ms.is_some() || o.until_ms.is_some();
    // (service, replica, started) to task id.
    let mut chosen: BTreeMap<(String, u64, u64), String> = BTreeMap::new();
    for s in view["services"].as_array().into_iter().flatten() {
        let service = s["name"].as_str().unwrap_or("?");
        if !services.is_empty() && !services.iter().any(|n| n == service) {
            continue;
        }
        let mut newest: BTreeMap<u64, (u64, String)> = BTreeMap::new();
        for t in s["tasks"].as_array().into_iter().flatten() {
            let (Some(replica), Some(id)) = (t["replica"].as_u64(), t["id"].as_str()) else { continue };
            let started = t["launched_at_ms"].as_u64().unwrap_or(0);
            let ended = t["ended_at_ms"].as_u64();
            if windowed {
                let after_since = o.since_ms.is_none_or(|since| ended.is_none_or(|e| e >= since));
                let before_until = o.until_ms.is_none_or(|until| started < until);
                if after_since && before_until {
                    chosen.insert((service.to_owned(), replica, started), id.to_owned());
                }
            } else if newest.get(&replica).is_none_or(|(s, _)| started >= *s) {
                newest.insert(replica, (started, id.to_owned()));
            }
        }
        for (replica, (started, id)) in newest {
            chosen.insert((service.to_owned(), replica, started), id);
        }
    }
    let mut offsets: BTreeMap<(String, &str), i64> = BTreeMap::new();
    let mut first = true;
    loop {
        let mut progressed = false;
        for ((service, replica, started), id) in &chosen {
            let prefix = if o.prefix { format!("{service}-{} | ", replica + 1) } else { String::new() };
            if first && o.timestamps {
                println!("{prefix}[task {id} started {}]", mesos::utc::format_seconds((*started / 1000) as i64));
            }
            for stream in ["stdout", "stderr"] {
                let mut offset = *offsets.get(&(id.clone(), stream)).unwrap_or(&0);
                let mut text = String::new();
                // Everything written so far, chunk by chunk (the API bounds each).
                loop {
                    let chunk = api.get(&format!("/api/v1/tasks/{id}/logs?stream={stream}&offset={offset}")).await?;
                    let data = chunk["data"].as_str().unwrap_or("");
                    offset = chunk["offset"].as_i64().unwrap_or(offset);
                    if data.is_empty() {
                        break;
                    }
                    text.push_str(data);
                }
                offsets.insert((id.clone(), stream), offset);
                if text.is_empty() {
                    continue;
                }
                progressed = true;
                let lines: Vec<&str> = text.lines().collect();
                let skip = match o.tail {
                    Some(n) if first => lines.len().saturating_sub(n),
                    _ => 0,
                };
                for line in &lines[skip..] {
                    println!("{prefix}{line}");
                }
            }
        }
        first = false;
        if !o.follow {
            return Ok(());
        }
        if !progressed {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// The processes of each running container of the services, as `docker compose top` lists them.
pub async fn top(api: &ApiClient, work_dir: &Path, project: &str, services: &[String]) -> anyhow::Result<()> {
    for service in services {
        let view = api.get(&format!("/api/v1/projects/{project}/services/{service}")).await?;
        for t in view["tasks"].as_array().into_iter().flatten().filter(|t| t["state"] == "TASK_RUNNING") {
            let (Some(id), Some(replica)) = (t["id"].as_str(), t["replica"].as_u64()) else { continue };
            let (argv, _) = super::container_exec(work_dir, id, service)?;
            let init =
                container_pid(&argv).with_context(|| format!("{service}-{}: finding its processes", replica + 1))?;
            println!("{project}-{service}-{}", replica + 1);
            let mut rows = vec![["UID", "PID", "PPID", "CMD"].map(String::from).to_vec()];
            for pid in descendants(init) {
                let (uid, ppid, cmd) = process_info(pid);
                rows.push(vec![uid, pid.to_string(), ppid, cmd]);
            }
            println!("{}", table(&rows));
        }
    }
    Ok(())
}

/// The container's first process, from the runtime's `state` (the exec
/// command's prefix, up to `exec`, with `state ID` in its place).
fn container_pid(exec: &[String]) -> anyhow::Result<u32> {
    let at = exec.iter().position(|a| a == "exec").context("an exec command without `exec`")?;
    let id = exec.last().context("an empty exec command")?;
    let out = std::process::Command::new(&exec[0])
        .args(&exec[1..at])
        .args(["state", id])
        .output()
        .with_context(|| format!("running {} state", exec[0]))?;
    if !out.status.success() {
        bail!("{} state {id}: {}", exec[0], String::from_utf8_lossy(&out.stderr).trim());
    }
    let state: Value = serde_json::from_slice(&out.stdout).context("the runtime's state is not JSON")?;
    state["pid"].as_u64().map(|p| p as u32).context("the runtime's state has no pid")
}

/// `pid` and every process below it.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(p) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat"))
            && let Some(ppid) = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok())
        {
            parents.push((p, ppid));
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(parents.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    out
}

fn process_info(pid: u32) -> (String, String, String) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .unwrap_or("?")
            .to_owned()
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmd =
        cmdline.split(|b| *b == 0).filter(|a| !a.is_empty()).map(String::from_utf8_lossy).collect::<Vec<_>>().join(" ");
    (field("Uid:"), field("PPid:"), cmd)
}

/// The services' images as this machine's store has them.
pub fn images(
    loaded: &Loaded,
    services: &[String],
    store: &image::Store,
    format: PsFormat,
    quiet: bool,
) -> anyhow::Result<String> {
    let mut rows = vec![["SERVICE", "IMAGE", "TAG", "IMAGE ID", "SIZE"].map(String::from).to_vec()];
    let mut json_rows = Vec::new();
    let mut ids = BTreeSet::new();
    for (name, s) in &loaded.project.services {
        if !super::chosen(services, name) || (s.image.is_none() && s.build.is_none()) {
            continue;
        }
        let image = crate::build_cmd::image_name(&loaded.name, name, s);
        let reference: image::Reference = image.parse().with_context(|| format!("services.{name}.image"))?;
        let found = store.get(&reference);
        let id = found.as_ref().map(|i| i.manifest.to_string()).unwrap_or_default();
        let size = found.as_ref().map(|i| i.size).unwrap_or(0);
        let repository = format!("{}/{}", reference.registry, reference.repository);
        let tag = reference.tag.clone().unwrap_or_else(|| "latest".into());
        if found.is_some() {
            ids.insert(id.clone());
        }
        json_rows.push(json!({
            "ContainerName": format!("{}-{name}-1", loaded.name),
            "Service": name,
            "Repository": repository,
            "Tag": tag,
            "ID": id,
            "Size": size,
            "Present": found.is_some(),
        }));
        let short_id = if id.len() > 19 { id[7..19].to_owned() } else { "(not here)".to_owned() };
        rows.push(vec![
            name.clone(),
            repository,
            tag,
            short_id,
            if found.is_some() { server::dashboard::format_bytes(size as f64) } else { String::new() },
        ]);
    }
    if quiet {
        return Ok(ids.into_iter().map(|i| format!("{i}\n")).collect());
    }
    Ok(match format {
        PsFormat::Json => format!("{}\n", Value::Array(json_rows)),
        PsFormat::Table => table(&rows),
    })
}

/// `host:port` where the service's `private_port` is published, for its `index`th replica.
pub async fn port(
    api: &ApiClient,
    loaded: &Loaded,
    service: &str,
    private_port: u16,
    protocol: &str,
    index: u32,
) -> anyhow::Result<String> {
    let s = loaded.project.services.get(service).with_context(|| format!("no such service: {service}"))?;
    let published = s
        .ports
        .iter()
        .position(|p| p.target == private_port && p.protocol == protocol)
        .with_context(|| format!("{service} does not publish {private_port}/{protocol}"))?;
    let task = super::running_task(api, &loaded.name, service, index).await?;
    // The task's host ports are in the order of the service's `ports`.
    let host_port = task["ports"]
        .get(published)
        .and_then(Value::as_u64)
        .with_context(|| format!("{service}-{index} has no host port for {private_port}/{protocol}"))?;
    let host_ip = s.ports[published].host_ip.clone().unwrap_or_else(|| "0.0.0.0".to_owned());
    Ok(format!("{host_ip}:{host_port}"))
}

/// Follows the project's tasks, printing a line for each change of state or
/// health, as `docker compose events` does for containers.
pub async fn events(api: &ApiClient, project: &str, services: &[String], as_json: bool) -> anyhow::Result<()> {
    let mut seen: BTreeMap<String, (String, Option<bool>)> = BTreeMap::new();
    let mut first = true;
    loop {
        let view = api.get(&format!("/api/v1/projects/{project}")).await?;
        for s in view["services"].as_array().into_iter().flatten() {
            let service = s["name"].as_str().unwrap_or("?");
            if !services.is_empty() && !services.iter().any(|n| n == service) {
                continue;
            }
            for t in s["tasks"].as_array().into_iter().flatten() {
                let id = t["id"].as_str().unwrap_or("?").to_owned();
                let state = t["state"].as_str().unwrap_or("").to_owned();
                let healthy = t["healthy"].as_bool();
                let before = seen.insert(id.clone(), (state.clone(), healthy));
                // What is there at start is the past: only changes from then on.
                if first {
                    continue;
                }
                let mut actions = Vec::new();
                if before.as_ref().is_none_or(|(s, _)| *s != state) {
                    actions.push(match docker_state(&state) {
                        "created" => "create".to_owned(),
                        "running" => "start".to_owned(),
                        "removing" => "kill".to_owned(),
                        _ => "die".to_owned(),
                    });
                }
                if healthy.is_some() && before.as_ref().is_none_or(|(_, h)| *h != healthy) {
                    let h = if healthy == Some(true) { "healthy" } else { "unhealthy" };
                    actions.push(format!("health_status: {h}"));
                }
                for action in actions {
                    let time = mesos::utc::format_seconds((super::now_ms() / 1000) as i64);
                    let name = format!("{project}-{service}-{}", t["replica"].as_u64().unwrap_or(0) + 1);
                    if as_json {
                        let line = json!({
                            "time": time, "type": "container", "action": action, "id": id, "service": service,
                            "attributes": { "name": name, "mesos_state": state },
                        });
                        println!("{line}");
                    } else {
                        println!(
                            "{time} container {action} {id} (name={name}, service={service}, mesos_state={state})"
                        );
                    }
                }
            }
        }
        first = false;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_docker_takes_them() {
        let now = 1_800_000_000_000;
        assert_eq!(parse_time("10m", now).unwrap(), now - 600_000);
        assert_eq!(parse_time("1700000000", now).unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("2026-12-05T19:00:00Z", now).unwrap(), 1_796_497_200_000);
        assert_eq!(parse_time("2026-12-05T20:00:00+01:00", now).unwrap(), 1_796_497_200_000);
        assert_eq!(parse_time("2026-12-05T19:00:00.5Z", now).unwrap(), 1_796_497_200_500);
        let e = parse_time("yesterday", now).unwrap_err().to_string();
        assert!(e.contains("RFC 3339"), "{e}");
        assert_eq!(parse_tail("all").unwrap(), None);
        assert_eq!(parse_tail("5").unwrap(), Some(5));
        assert!(parse_tail("x").is_err());
    }

    #[test]
    fn ps_json_has_docker_composes_fields_and_a_keeps_ended_tasks() {
        let projects = vec![json!({
            "name": "p",
            "services": [{
                "name": "web", "replicas": 1, "running": 1, "state": "running", "endpoints": [],
                "tasks": [
                    {"id": "t1", "replica": 0, "state": "TASK_FAILED", "message": "Command exited with status 3", "launched_at_ms": 1000, "host": "h", "ports": []},
                    {"id": "t2", "replica": 0, "state": "TASK_RUNNING", "healthy": true, "launched_at_ms": 2000, "host": "h", "ports": [8080]}
                ]
            }]
        })];
        let o = PsOptions { services: &[], all: false, services_only: false, quiet: false };
        let out = ps(&projects, PsFormat::Json, &o);
        let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 1, "{out}");
        assert_eq!(lines[0]["Name"], "p-web-1");
        assert_eq!(lines[0]["State"], "running");
        assert_eq!(lines[0]["Health"], "healthy");
        assert_eq!(lines[0]["Publishers"][0]["PublishedPort"], 8080);
        let o = PsOptions { services: &[], all: true, services_only: false, quiet: false };
        let out = ps(&projects, PsFormat::Json, &o);
        let ended: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
        assert_eq!((ended["State"].as_str(), ended["ExitCode"].as_i64()), (Some("exited"), Some(3)));
        let o = PsOptions { services: &[], all: true, services_only: false, quiet: true };
        assert_eq!(ps(&projects, PsFormat::Json, &o), "t1\nt2\n");
        let o = PsOptions { services: &["db".to_owned()], all: true, services_only: true, quiet: false };
        assert_eq!(ps(&projects, PsFormat::Table, &o), "");
    }
}
