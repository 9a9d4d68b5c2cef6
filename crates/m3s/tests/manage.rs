//! The management role against a real git server (`git daemon` on loopback,
//! pushed to by the test): a commit's projects applied, changes planned and
//! applied, a rollback, drift, an invalid commit refused with its file and line
//! while the last state keeps running, a dropped project removed and one
//! deployed by hand left alone; pushes by webhook, roles and the audit log.

mod support;

use std::process::Command;

use serde_json::Value;
use support::eventually;
use support::git::{commit, served_repository};
use support::tempdir;
use support::up::{TOKEN, Up, http, live_tasks, service};

fn manage(up: &Up, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_m3s"))
        .arg("manage")
        .args(["--api", &up.api(), "--api-token", TOKEN])
        .args(args)
        .output()
        .unwrap()
}

fn status(up: &Up) -> Value {
    up.get("/api/manage/v1/status").expect("the management API")
}

fn site(replicas: u32) -> String {
    format!(
        "services:\n  app:\n    command: [\"sleep\", \"3600\"]\n    deploy:\n      replicas: {replicas}\n      resources: {{limits: {{cpus: '0.01', memory: 16M}}}}\n"
    )
}

#[test]
fn a_repository_drives_what_runs() {
    let dir = tempdir("manage");
    let (_daemon, url, work) = served_repository(&dir);
    let c1 = commit(&work, &url, "site, one replica", &[("projects/site/compose.yaml", Some(&site(1)))]);

    let up = Up::start(&dir.join("m3s"), &["--manage-repo", &url, "--manage-interval", "1s"]);
    eventually("commit 1 applied", || status(&up)["applied"] == c1.as_str());
    let view = up.wait_project("site", "site running", |v| live_tasks(v, "app").len() == 1);
    assert_eq!(service(&view, "app")["replicas"], 1);

    // A role that is not running says which flag starts it.
    let (code, body) = http("GET", up.api_port, "/api/k3s/v1/clusters", None);
    assert!(code == 404 && body.contains("--k3s"), "{code} {body}");

    // A project deployed by hand is not git's to remove.
    let (code, body) = http(
        "PUT",
        up.api_port,
        "/api/v1/projects/byhand",
        Some("services:\n  s:\n    command: [\"sleep\", \"3600\"]\n"),
    );
    assert!(code == 200 || code == 201, "{body}");

    let c2 = commit(&work, &url, "site, two replicas", &[("projects/site/compose.yaml", Some(&site(2)))]);
    eventually("commit 2 applied", || status(&up)["applied"] == c2.as_str());
    up.wait_project("site", "two replicas", |v| live_tasks(v, "app").len() == 2);

    // The plan of going back, then the rollback itself.
    let out = manage(&up, &["plan", "--commit", &c1]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("~ project site") && text.contains("replicas: 2 -> 1"), "{text}");
    assert!(text.contains("Plan: 0 to add, 1 to change, 0 to remove"), "{text}");
    let out = manage(&up, &["apply", "--commit", &c1[..10]]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    up.wait_project("site", "back to one replica", |v| live_tasks(v, "app").len() == 1);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(status(&up)["applied"], c1.as_str(), "a rollback is not undone by the next fetch");

    // Drift: changed by hand through the API.
    let (code, body) = http("PUT", up.api_port, "/api/v1/projects/site/services/app/scale", Some("{\"replicas\": 3}"));
    assert_eq!(code, 200, "{body}");
    let out = manage(&up, &["drift"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("~ project site"), "{text}");

    // An invalid commit is refused, naming commit, file and line; the last state keeps running.
    let bad = commit(
        &work,
        &url,
        "broken",
        &[(
            "projects/site/compose.yaml",
            Some("services:\n  app:\n    command: [\"sleep\"]\n    deploy:\n      replicas: many\n"),
        )],
    );
    eventually("the broken commit to be refused", || {
        let s = status(&up);
        s["head"] == bad.as_str() && s["error"].as_str().is_some_and(|e| e.contains("projects/site/compose.yaml"))
    });
    let s = status(&up);
    assert!(s["error"].as_str().unwrap().contains(&bad[..12]), "{s}");
    assert!(s["diagnostics"][0]["line"].as_u64() == Some(5), "{s}");
    assert_eq!(s["applied"], c1.as_str());
    assert!(up.get("/api/v1/projects/site").is_some(), "site keeps running");

    // A commit without the project removes it; the hand-deployed one stays.
    let c4 = commit(&work, &url, "no site", &[("projects/site/compose.yaml", None), ("README", Some("empty\n"))]);
    eventually("commit 4 applied", || status(&up)["applied"] == c4.as_str());
    eventually("site removed", || up.get("/api/v1/projects/site").is_none());
    assert!(up.get("/api/v1/projects/byhand").is_some());
    let history = status(&up)["history"].to_string();
    assert!(history.contains("not applied") && history.contains("no site"), "{history}");
}

fn cli(up: &Up, token: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_m3s"))
        .args(&args[..1])
        .args(["--api", &up.api(), "--api-token", token])
        .args(&args[1..])
        .output()
        .unwrap()
}

fn push_payload(after: &str, branch: &str) -> String {
    format!(
        r#"{{"ref":"refs/heads/{branch}","before":"0000000000000000000000000000000000000000","after":"{after}","commits":[]}}"#
    )
}

/// Pushes reach m3s by webhook (polling is an hour apart here): a bad signature
/// changes nothing, GitHub's and GitLab's verified pushes are applied; named
/// credentials keep a viewer from applying; the audit log says who did what.
#[test]
fn webhooks_apply_pushes_and_the_audit_log_says_who() {
    let dir = tempdir("manage-webhook");
    let (_daemon, url, work) = served_repository(&dir);
    let c1 = commit(&work, &url, "site, one replica", &[("projects/site/compose.yaml", Some(&site(1)))]);
    let secret = "hook-s3cret";
    let up = Up::start(
        &dir.join("m3s"),
        &["--manage-repo", &url, "--manage-interval", "1h", "--manage-webhook-secret", secret],
    );
    eventually("commit 1 applied at start", || status(&up)["applied"] == c1.as_str());

    let c2 = commit(&work, &url, "site, two replicas", &[("projects/site/compose.yaml", Some(&site(2)))]);
    let body = push_payload(&c2, "main");
    let webhook = |headers: &[(&str, &str)], body: &str| {
        support::metrics::request(up.api_port, "POST", "/api/manage/v1/webhook", headers, body.as_bytes())
    };
    let forged = manage::webhook::github_signature("not-the-secret", body.as_bytes());
    let (code, answer) = webhook(&[("X-GitHub-Event", "push"), ("X-Hub-Signature-256", &forged)], &body);
    assert_eq!(code, 401, "{answer}");
    let (code, _) = webhook(&[("X-GitHub-Event", "push")], &body);
    assert_eq!(code, 401, "unsigned");
    // Nothing was fetched: the head is still the first commit.
    assert_eq!(status(&up)["head"], c1.as_str());

    // Another branch is acknowledged and ignored.
    let other = push_payload(&c2, "feature");
    let signed = manage::webhook::github_signature(secret, other.as_bytes());
    let (code, answer) = webhook(&[("X-GitHub-Event", "push"), ("X-Hub-Signature-256", &signed)], &other);
    assert!(code == 202 && answer.contains("ignored"), "{code} {answer}");

    let pushed = std::time::Instant::now();
    let signed = manage::webhook::github_signature(secret, body.as_bytes());
    let (code, answer) = webhook(&[("X-GitHub-Event", "push"), ("X-Hub-Signature-256", &signed)], &body);
    assert_eq!(code, 202, "{answer}");
    eventually("commit 2 applied by the webhook", || status(&up)["applied"] == c2.as_str());
    eprintln!("webhook to applied: {} ms", pushed.elapsed().as_millis());
    up.wait_project("site", "two replicas", |v| live_tasks(v, "app").len() == 2);

    let c3 = commit(&work, &url, "site, three replicas", &[("projects/site/compose.yaml", Some(&site(3)))]);
    let body = push_payload(&c3, "main");
    let (code, answer) = webhook(&[("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", secret)], &body);
    assert_eq!(code, 202, "{answer}");
    eventually("commit 3 applied by GitLab's webhook", || status(&up)["applied"] == c3.as_str());

    // A viewer made by the admin may read the plan but not apply a rollback.
    let out = cli(&up, TOKEN, &["credentials", "add", "ro", "--role", "viewer"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let viewer = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(viewer.starts_with("m3s_"), "{viewer}");
    let out = cli(&up, &viewer, &["manage", "plan", "--commit", &c1]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli(&up, &viewer, &["manage", "apply", "--commit", &c1]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("needs the operator role"), "{err}");
    assert_eq!(status(&up)["applied"], c3.as_str());
    let out = cli(&up, &viewer, &["credentials", "list"]);
    assert!(!out.status.success(), "a viewer lists no credentials");
    let credentials = std::fs::read_to_string(dir.join("m3s/credentials")).unwrap();
    assert!(credentials.contains("ro viewer") && !credentials.contains(&viewer), "{credentials}");

    // The audit log: the refused apply with who tried, what git applied and why.
    let out = cli(&up, TOKEN, &["audit", "--limit", "100"]);
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(log.contains(&format!("ro               api       POST /api/manage/v1/apply?commit={c1} -> 403")), "{log}");
    let applied = format!("git              webhook   apply {c2} {} site, two replicas (Ops) -> applied", &c2[..7]);
    assert!(log.contains(&applied), "{log}");
    assert!(log.contains(&format!("webhook:gitlab   webhook   Push Hook refs/heads/main {c3} -> 202")), "{log}");
    assert!(log.contains("api-token        api       POST /api/v1/credentials -> 201"), "{log}");
    assert!(!log.contains(secret) && !log.contains(&viewer), "no secret in the log");
    // The dashboard's pages: the applied commit and history, the log filtered by who.
    let (code, page) = http("GET", up.api_port, "/ui/manage", None);
    assert_eq!(code, 200, "{page}");
    assert!(page.contains(&c3[..12]) && page.contains("site, two replicas") && page.contains("No drift"), "{page}");
    let (code, page) = http("GET", up.api_port, "/ui/audit?who=ro", None);
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("/api/manage/v1/apply?commit=") && !page.contains("webhook:gitlab"), "{page}");
    let file = std::fs::read_to_string(dir.join("m3s/audit.jsonl")).unwrap();
    assert!(!file.contains(secret) && !file.contains(&viewer) && file.contains("apply"), "{file}");
}

const HELLO: &str = r#"x-runbook:
  description: Say hello
  target: every
  timeout: 60s
  params:
    name: {type: string, required: true}
    times: {type: integer, min: 1, max: 3, default: 1}
services:
  run:
    command: ["sh", "-c", "for i in $$(seq $$M3S_PARAM_TIMES); do echo \"hello $$1\"; done; echo done >&2", "hello", "{{name}}"]
    deploy: {resources: {limits: {cpus: '0.01', memory: 16M}}}
"#;

const FAILING: &str = "x-runbook: {}\nservices:\n  run:\n    command: [\"sh\", \"-c\", \"echo failing; exit 3\"]\n";
const SLOW: &str = "x-runbook: {timeout: 1s}\nservices:\n  run:\n    command: [\"sleep\", \"300\"]\n";

fn runbook_projects(up: &Up) -> usize {
    let projects = up.get("/api/v1/projects").unwrap();
    projects.as_array().unwrap().iter().filter(|p| p["name"].as_str().unwrap_or("").starts_with("rb-")).count()
}

/// Runbooks from the repository: parameters checked before anything starts,
/// reaching the command as a variable and a whole argument (never as shell
/// text), output followed by the CLI, failures and timeouts reported, the
/// seed's `executor/runit`, and the history with who ran what.
#[test]
fn runbooks_run_with_checked_parameters() {
    let dir = tempdir("manage-runbooks");
    let (_daemon, url, work) = served_repository(&dir);
    let c1 = commit(
        &work,
        &url,
        "runbooks",
        &[
            ("runbooks/hello/compose.yaml", Some(HELLO)),
            ("runbooks/failing/compose.yaml", Some(FAILING)),
            ("runbooks/slow/compose.yaml", Some(SLOW)),
        ],
    );
    let up = Up::start(&dir.join("m3s"), &["--manage-repo", &url, "--manage-interval", "1h"]);
    eventually("the commit applied", || status(&up)["applied"] == c1.as_str());

    let out = manage(&up, &["runbooks"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("hello (target \"every\"") || text.contains("hello (target every"), "{text}");
    assert!(text.contains("-p times=<integer>, default 1") && text.contains("-p name=<string>, required"), "{text}");

    // A value outside its declaration starts nothing.
    let out = manage(&up, &["run", "hello", "-p", "name=x", "-p", "times=9"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("parameter times: 9 is outside 1..=3"), "{err}");
    let out = manage(&up, &["run", "hello"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("parameter name: required"));
    assert_eq!(runbook_projects(&up), 0);

    // Shell text in a value stays text.
    let marker = dir.join("pwned");
    let name = format!("$(touch {}); world", marker.display());
    let out = manage(&up, &["run", "hello", "-p", &format!("name={name}"), "-p", "times=2"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(text.matches(&format!("hello {name}")).count(), 2, "{text}");
    assert!(text.contains("TASK_FINISHED") && text.contains("succeeded"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("] done"), "stderr is followed too");
    assert!(!marker.exists(), "a parameter ran as shell code");
    eventually("the run's project removed", || runbook_projects(&up) == 0);

    // A failing command and a timeout are reported as such, and cleaned up.
    let out = manage(&up, &["run", "failing"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && text.contains("TASK_FAILED") && text.contains("failed"), "{text}");
    assert!(text.contains("failing"), "its output: {text}");
    let out = manage(&up, &["run", "slow"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stdout).contains("timed_out"));
    eventually("the runs' projects removed", || runbook_projects(&up) == 0);

    // The seed's endpoint: query parameters, behind the operator role.
    let (code, body) = http("GET", up.api_port, "/executor/runit/hello?name=seed", None);
    assert_eq!(code, 201, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"].as_str().unwrap().to_owned();
    eventually("the seed's run to succeed", || {
        up.get(&format!("/api/manage/v1/runs/{id}")).is_some_and(|r| r["state"] == "succeeded")
    });
    let run = up.get(&format!("/api/manage/v1/runs/{id}")).unwrap();
    assert!(run["tasks"][0]["stdout"].as_str().unwrap().contains("hello seed"), "{run}");
    let (code, page) = http("GET", up.api_port, &format!("/ui/manage/runs/{id}"), None);
    assert!(code == 200 && page.contains("hello seed") && page.contains("badge ok\">FINISHED"), "{page}");
    let (code, page) = http("GET", up.api_port, "/ui/manage", None);
    assert!(code == 200 && page.contains("Say hello") && page.contains("every agent"), "{page}");

    // The seed's stack endpoints deploy and remove a compose project; the inventory lists the agent.
    let (code, body) = http(
        "POST",
        up.api_port,
        "/docker/swarm/stk",
        Some(
            "services:\n  s:\n    command: [\"sleep\", \"3600\"]\n    deploy: {resources: {limits: {cpus: '0.01', memory: 16M}}}\n",
        ),
    );
    assert!(code == 200 && body.contains("\"created\":[\"s\"]"), "{code} {body}");
    up.wait_project("stk", "the stack running", |v| live_tasks(v, "s").len() == 1);
    // The engine counts a task live once its launch is sent; the master lists it once accepted.
    eventually("the stack's task in the inventory", || {
        let nodes = up.get("/api/v1/nodes").unwrap();
        nodes["nodes"][0]["tasks"].as_array().is_some_and(|t| t.iter().any(|t| t["name"] == "stk_s"))
    });
    let (code, _) = http("DELETE", up.api_port, "/docker/swarm/stk", None);
    assert_eq!(code, 202);
    eventually("the stack removed", || up.get("/api/v1/projects/stk").is_none());

    // History: who ran what with which parameters; the audit log has each run's end.
    let out = manage(&up, &["runs"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("of hello (name=seed times=1) by api-token on 1 agent(s): succeeded"), "{text}");
    assert!(text.contains("of slow () by api-token on 1 agent(s): timed_out"), "{text}");
    let audit = up.get("/api/v1/audit?contains=run%20hello").unwrap();
    assert!(audit.as_array().unwrap().iter().any(|e| e["result"] == "succeeded"), "{audit}");
}

/// A repository over https-style smart HTTP that needs a token: refused
/// without it (the error shown, nothing applied), applied with the token from
/// `--manage-token-file`, which appears in no answer, log or file of m3s.
#[test]
fn a_token_opens_a_private_repository() {
    let dir = tempdir("manage-token");
    let (_daemon, url, work) = served_repository(&dir);
    let c1 = commit(&work, &url, "site", &[("projects/site/compose.yaml", Some(&site(1)))]);
    let token = "tok-9f8e7d6c5b4a";
    let (_server, port) = support::git::http_server(&dir.join("served"), token);
    let private = format!("http://127.0.0.1:{port}/config.git");

    let without = Up::start(&dir.join("without"), &["--manage-repo", &private, "--manage-interval", "1h"]);
    eventually("the refusal shown", || status(&without)["error"].as_str().is_some_and(|e| e.contains("fetching")));
    let error = status(&without)["error"].as_str().unwrap().to_owned();
    assert!(error.contains(&private) && error.contains("needs credentials: --manage-token-file"), "{error}");
    assert!(status(&without)["applied"].is_null());
    drop(without);

    let token_file = dir.join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let with = Up::start(
        &dir.join("with"),
        &["--manage-repo", &private, "--manage-interval", "1h", "--manage-token-file", token_file.to_str().unwrap()],
    );
    eventually("the commit applied with the token", || status(&with)["applied"] == c1.as_str());
    with.wait_project("site", "site running", |v| live_tasks(v, "app").len() == 1);
    assert!(!status(&with).to_string().contains(token));
    assert!(!with.log_tail().contains(token), "the token is not logged");
    let mut leaked = Vec::new();
    for entry in walk(&dir.join("with")) {
        if std::fs::read(&entry).is_ok_and(|b| b.windows(token.len()).any(|w| w == token.as_bytes())) {
            leaked.push(entry);
        }
    }
    assert!(leaked.is_empty(), "the token is stored in {leaked:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() && !path.is_symlink() {
            out.extend(walk(&path));
        } else if path.is_file() {
            out.push(path);
        }
    }
    out
}

/// An ssh repository (Debian's sshd on loopback): a server whose key is not
/// the one in the known_hosts given is refused; with the deploy key and the
/// right known_hosts the commit is applied.
#[test]
fn an_ssh_key_opens_a_repository_over_ssh() {
    let dir = tempdir("manage-ssh");
    let Some((_sshd, port, key, known_hosts)) = support::git::sshd(&dir) else { return };
    let (_daemon, url, work) = served_repository(&dir);
    let c1 = commit(&work, &url, "site", &[("projects/site/compose.yaml", Some(&site(1)))]);
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    let repo = format!("ssh://{}@127.0.0.1:{port}{}", user.trim(), dir.join("served/config.git").display());

    // Another server's key in known_hosts: the host key check refuses.
    let other = dir.join("ssh/other_known_hosts");
    let other_key = std::fs::read_to_string(dir.join("ssh/other_host_key.pub")).unwrap();
    let fields: Vec<&str> = other_key.split_whitespace().collect();
    std::fs::write(&other, format!("[127.0.0.1]:{port} {} {}\n", fields[0], fields[1])).unwrap();
    let args = |known: &std::path::Path| -> Vec<String> {
        ["--manage-repo", &repo, "--manage-interval", "1h", "--manage-ssh-key", key.to_str().unwrap()]
            .into_iter()
            .map(str::to_owned)
            .chain(["--manage-known-hosts".to_owned(), known.display().to_string()])
            .collect()
    };
    let refused_args = args(&other);
    let refused = Up::start(&dir.join("refused"), &refused_args.iter().map(String::as_str).collect::<Vec<_>>());
    eventually("the host key refusal shown", || {
        status(&refused)["error"].as_str().is_some_and(|e| e.contains("fetching"))
    });
    let error = status(&refused)["error"].as_str().unwrap().to_owned();
    assert!(error.contains("Host key verification failed"), "{error}");
    assert!(!error.contains(&user.trim().to_string()) || error.contains("***@"), "the URL's user is redacted: {error}");
    drop(refused);

    let ok_args = args(&known_hosts);
    let up = Up::start(&dir.join("ok"), &ok_args.iter().map(String::as_str).collect::<Vec<_>>());
    eventually("the commit applied over ssh", || status(&up)["applied"] == c1.as_str());
    assert!(status(&up)["repository"].as_str().unwrap().starts_with("ssh://***@127.0.0.1:"), "{}", status(&up));
}

/// `--manage-self-heal`: a scale by hand is put back to the commit at the next sync,
/// and the audit log says so.
#[test]
fn self_heal_puts_back_what_was_changed_by_hand() {
    let dir = tempdir("manage-heal");
    let (_daemon, url, work) = served_repository(&dir);
    let c1 = commit(&work, &url, "site", &[("projects/site/compose.yaml", Some(&site(1)))]);
    let up =
        Up::start(&dir.join("m3s"), &["--manage-repo", &url, "--manage-interval", "1s", "--manage-self-heal", "true"]);
    eventually("the commit applied", || status(&up)["applied"] == c1.as_str());
    up.wait_project("site", "one replica", |v| live_tasks(v, "app").len() == 1);
    let (code, body) = http("PUT", up.api_port, "/api/v1/projects/site/services/app/scale", Some("{\"replicas\": 3}"));
    assert_eq!(code, 200, "{body}");
    eventually("the scale put back", || {
        up.get("/api/v1/projects/site").is_some_and(|v| service(&v, "app")["replicas"] == 1)
    });
    let audit = up.get("/api/v1/audit?who=git").unwrap();
    assert!(audit.as_array().unwrap().iter().any(|e| e["via"] == "self-heal" && e["result"] == "applied"), "{audit}");
}
