//! Malformed calls get Mesos's status codes and messages; impossible tasks
//! get TASK_ERROR or TASK_FAILED with a reason and message; a framework
//! flooding the master with calls does not starve another.

mod support;

use mesos::recordio::Decoder;
use mesos::scheduler::{Scheduler, SchedulerEvent};
use mesos::v1::scheduler::{Accept, CallKind, Event};
use mesos::v1::{
    CommandInfo, FrameworkInfo, Operation, Resource, TaskId, TaskInfo, TaskState, TaskStatus, TaskStatusReason,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use support::{BOUND, Mini, tempdir};

async fn post(
    http: &reqwest::Client,
    url: &str,
    content_type: Option<&str>,
    stream_id: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut req = http.post(url).body(body.to_owned());
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    if let Some(id) = stream_id {
        req = req.header("Mesos-Stream-Id", id);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Subscribes over raw HTTP; returns the stream id, the framework id and the open response.
async fn subscribe_raw(mini: &Mini, framework_info: Value) -> (String, String, reqwest::Response) {
    let mut res = mini
        .http()
        .post(format!("{}/api/v1/scheduler", mini.url()))
        .header("Content-Type", "application/json")
        .json(&json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": framework_info}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let stream_id = res.headers()["mesos-stream-id"].to_str().unwrap().to_owned();
    let first = next_record(&mut res, &mut Decoder::default()).await;
    let framework_id = first["subscribed"]["framework_id"]["value"].as_str().unwrap_or_default().to_owned();
    (stream_id, framework_id, res)
}

async fn next_record(res: &mut reqwest::Response, decoder: &mut Decoder) -> Value {
    loop {
        if let Some(record) = decoder.next_record().unwrap() {
            return serde_json::from_slice(&record).unwrap();
        }
        let chunk = tokio::time::timeout(BOUND, res.chunk()).await.expect("no event in time").unwrap();
        match chunk {
            Some(bytes) => decoder.feed(&bytes),
            None => return Value::Null,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_calls_get_mesos_status_codes_and_messages() {
    support::init_tls();
    let dir = tempdir("mini-bad-calls");
    let mini = Mini::start(&dir);
    let http = mini.http();
    let url = format!("{}/api/v1/scheduler", mini.url());
    let json_ct = Some("application/json");
    let revive = r#"{"type": "REVIVE", "framework_id": {"value": "nope"}}"#;

    assert_eq!(post(&http, &url, None, None, revive).await, (400, "Expecting 'Content-Type' to be present".into()));
    assert_eq!(
        post(&http, &url, Some("text/plain"), None, revive).await,
        (415, "Expecting 'Content-Type' of application/json or application/x-protobuf".into())
    );
    let get = http.get(&url).send().await.unwrap();
    assert_eq!(get.status(), 405);
    assert_eq!(get.headers()["allow"], "POST");
    assert_eq!(get.text().await.unwrap(), "405 Method Not Allowed. Expecting one of { 'POST' }, but received 'GET'.");
    let (status, body) = post(&http, &url, json_ct, None, "{not json").await;
    assert_eq!(status, 400);
    assert!(body.starts_with("Failed to parse body into JSON"), "{body}");
    assert_eq!(
        post(&http, &url, json_ct, None, r#"{"framework_id": {"value": "x"}}"#).await,
        (400, "Failed to validate scheduler::Call: Expecting 'type' to be present".into())
    );
    assert_eq!(post(&http, &url, json_ct, Some("s"), revive).await, (400, "Framework cannot be found".into()));

    let info = json!({"user": "root", "name": "bad-input", "roles": ["r"], "capabilities": [{"type": "MULTI_ROLE"}]});
    let (stream_id, fid, _stream) = subscribe_raw(&mini, info).await;
    let fw = json!({"value": fid});
    let call = |kind: &str, body: Value| {
        let mut c = json!({"type": kind, "framework_id": fw});
        if !body.is_null() {
            c[kind.to_ascii_lowercase()] = body;
        }
        c.to_string()
    };
    assert_eq!(
        post(&http, &url, json_ct, None, &call("REVIVE", Value::Null)).await,
        (400, "All non-subscribe calls should include the 'Mesos-Stream-Id' header".into())
    );
    let (status, body) = post(&http, &url, json_ct, Some("wrong"), &call("REVIVE", Value::Null)).await;
    assert_eq!(status, 400);
    assert!(body.starts_with("The stream ID 'wrong' included in this request didn't match"), "{body}");
    assert_eq!(post(&http, &url, json_ct, Some(&stream_id), &call("REVIVE", Value::Null)).await.0, 202);
    assert_eq!(
        post(&http, &url, json_ct, Some(&stream_id), &call("ACCEPT", Value::Null)).await,
        (400, "Failed to validate scheduler::Call: Expecting 'accept' to be present".into())
    );
    let ack = json!({"agent_id": {"value": "a"}, "task_id": {"value": "t"}, "uuid": "AAAA"});
    assert_eq!(
        post(&http, &url, json_ct, Some(&stream_id), &call("ACKNOWLEDGE", ack)).await,
        (400, "Failed to validate scheduler::Call: Not a valid UUID".into())
    );
    assert_eq!(post(&http, &url, json_ct, Some(&stream_id), &call("NO_SUCH_CALL", json!({}))).await.0, 501);
    let resubscribe_with_stream_id =
        json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", "name": "n"}}});
    assert_eq!(
        post(&http, &url, json_ct, Some(&stream_id), &resubscribe_with_stream_id.to_string()).await,
        (400, "Subscribe calls should not include the 'Mesos-Stream-Id' header".into())
    );

    // An invalid FrameworkInfo: 200, one ERROR record, then the stream ends.
    let res = http
        .post(&url)
        .header("Content-Type", "application/json")
        .json(&json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "root", "name": "bad", "roles": ["a"]}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = tokio::time::timeout(BOUND, res.bytes()).await.expect("the refused stream must end").unwrap();
    let mut d = Decoder::default();
    d.feed(&body);
    let error: Value = serde_json::from_slice(&d.next_record().unwrap().unwrap()).unwrap();
    assert_eq!(
        error,
        json!({"type": "ERROR", "error": {"message": "'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable"}})
    );

    // The operator API checks the same way.
    let op = format!("{}/api/v1", mini.url());
    assert_eq!(reqwest::get(&op).await.unwrap().status(), 405);
    assert_eq!(post(&http, &op, json_ct, None, "[").await.0, 400);
    assert_eq!(
        post(&http, &op, json_ct, None, r#"{"type":"GET_HEALTH"}"#).await,
        (200, r#"{"type":"GET_HEALTH","get_health":{"healthy":true}}"#.into())
    );
}

fn framework(name: &str) -> FrameworkInfo {
    FrameworkInfo {
        user: std::env::var("USER").unwrap_or_else(|_| "root".into()),
        name: name.into(),
        ..Default::default()
    }
}

async fn updates_until(s: &mut Scheduler, seen: &mut HashMap<String, TaskStatus>, want: &[&str]) {
    let deadline = tokio::time::Instant::now() + BOUND;
    while !want
        .iter()
        .all(|t| seen.get(*t).is_some_and(|st| st.state != TaskState::Starting && st.state != TaskState::Running))
    {
        let event = tokio::time::timeout_at(deadline, s.next()).await.expect("updates in time").unwrap().unwrap();
        if let SchedulerEvent::Event(Event::Update(u)) = event {
            if u.status.uuid.is_some() {
                s.handle().acknowledge(&u.status).unwrap();
            }
            seen.insert(u.status.task_id.value.clone(), u.status);
        }
    }
}

async fn first_offer(s: &mut Scheduler) -> mesos::v1::Offer {
    loop {
        let event = tokio::time::timeout(BOUND, s.next()).await.expect("an offer in time").unwrap().unwrap();
        if let SchedulerEvent::Event(Event::Offers(o)) = event {
            return o.offers.into_iter().next().unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_tasks_fail_with_reason_and_message() {
    support::init_tls();
    let dir = tempdir("mini-bad-tasks");
    // The unknown user is allowed, so that its launch fails where the user is looked up.
    let allowed = format!("{},no-such-user-m3s", framework("").user);
    let mini = Mini::start_with(&dir, &["--allowed-users", &allowed]);
    let mut s = Scheduler::start(mini.scheduler_config(framework("impossible"))).unwrap();
    let offer = first_offer(&mut s).await;
    let base = |id: &str| TaskInfo {
        name: id.into(),
        task_id: TaskId::new(id),
        agent_id: offer.agent_id.clone(),
        resources: vec![Resource::scalar("cpus", 0.1), Resource::scalar("mem", 32.0)],
        command: Some(CommandInfo::shell("true")),
        ..Default::default()
    };
    let mut no_command = base("no-command");
    no_command.command = None;
    let mut too_big = base("too-big");
    too_big.resources = vec![Resource::scalar("cpus", 64.0), Resource::scalar("mem", 32.0)];
    let mut bad_port = base("bad-port");
    bad_port.resources.push(Resource::ranges("ports", [(80, 80)]));
    let mut bad_user = base("bad-user");
    bad_user.command.as_mut().unwrap().user = Some("no-such-user-m3s".into());
    let mut other_user = base("other-user");
    other_user.command.as_mut().unwrap().user = Some("nobody".into());
    let tasks = vec![no_command, too_big, bad_port, bad_user, other_user];
    let accept = Accept { offer_ids: vec![offer.id], operations: vec![Operation::launch(tasks)], filters: None };
    s.handle().call(CallKind::Accept(accept)).await.unwrap();
    let mut seen = HashMap::new();
    updates_until(&mut s, &mut seen, &["no-command", "too-big", "bad-port", "bad-user", "other-user"]).await;
    for id in ["no-command", "too-big", "bad-port"] {
        assert_eq!(seen[id].state, TaskState::Error, "{id}: {:?}", seen[id]);
        assert_eq!(seen[id].reason, Some(TaskStatusReason::TaskInvalid));
    }
    assert!(seen["too-big"].message.as_deref().unwrap().contains("cpus:64"), "{:?}", seen["too-big"].message);
    assert!(seen["bad-port"].message.as_deref().unwrap().contains("ports:[80-80]"), "{:?}", seen["bad-port"].message);
    let user = &seen["bad-user"];
    assert_eq!(user.state, TaskState::Failed);
    assert_eq!(user.reason, Some(TaskStatusReason::ContainerLaunchFailed));
    assert!(user.message.as_deref().unwrap().contains("no-such-user-m3s"), "{user:?}");
    // A user the operator did not allow never gets that far.
    let other = &seen["other-user"];
    assert_eq!(
        (other.state.clone(), other.reason.clone()),
        (TaskState::Error, Some(TaskStatusReason::TaskUnauthorized))
    );
    assert!(other.message.as_deref().unwrap().contains("--allowed-users"), "{other:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_framework_does_not_starve_another() {
    support::init_tls();
    let dir = tempdir("mini-flood");
    let mini = Mini::start(&dir);
    let http = mini.http();
    let url = format!("{}/api/v1/scheduler", mini.url());
    let (stream_id, fid, mut stream) = subscribe_raw(&mini, json!({"user": "root", "name": "flooder"})).await;
    // The flooder holds the first offer (everything) ...
    let mut decoder = Decoder::default();
    let offer_id = loop {
        let event = next_record(&mut stream, &mut decoder).await;
        if event["type"] == "OFFERS" {
            break event["offers"]["offers"][0]["id"].clone();
        }
    };
    // ... while another framework subscribes and waits.
    let mut s = Scheduler::start(mini.scheduler_config(framework("patient"))).unwrap();
    let mut subscribed = false;
    while !subscribed {
        let event = tokio::time::timeout(BOUND, s.next()).await.expect("subscribed in time").unwrap().unwrap();
        subscribed = matches!(event, SchedulerEvent::Subscribed { .. });
    }
    // The flooder declines without a filter and revives in tight loops.
    let decline = json!({"type": "DECLINE", "framework_id": {"value": fid}, "decline": {"offer_ids": [offer_id], "filters": {"refuse_seconds": 0}}});
    assert_eq!(post(&http, &url, Some("application/json"), Some(&stream_id), &decline.to_string()).await.0, 202);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut flooders = Vec::new();
    for _ in 0..4 {
        let (url, stream_id, fid, stop) = (url.clone(), stream_id.clone(), fid.clone(), stop.clone());
        let client = http.clone();
        flooders.push(tokio::spawn(async move {
            let mut sent = 0u32;
            let body = json!({"type": "REVIVE", "framework_id": {"value": fid}}).to_string();
            // Bounded: at most 5,000 calls per flooder.
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && sent < 5000 {
                let res = client
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .header("Mesos-Stream-Id", &stream_id)
                    .body(body.clone())
                    .send()
                    .await;
                assert!(res.is_ok_and(|r| r.status() == 202));
                sent += 1;
            }
            sent
        }));
    }
    // Meanwhile the other framework gets an offer and runs a task to completion.
    let offer = first_offer(&mut s).await;
    let task = TaskInfo {
        name: "patient".into(),
        task_id: TaskId::new("patient-1"),
        agent_id: offer.agent_id.clone(),
        resources: vec![Resource::scalar("cpus", 0.1), Resource::scalar("mem", 32.0)],
        command: Some(CommandInfo::shell("true")),
        ..Default::default()
    };
    let accept = Accept { offer_ids: vec![offer.id], operations: vec![Operation::launch(vec![task])], filters: None };
    s.handle().call(CallKind::Accept(accept)).await.unwrap();
    let mut seen = HashMap::new();
    updates_until(&mut s, &mut seen, &["patient-1"]).await;
    assert_eq!(seen["patient-1"].state, TaskState::Finished);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for f in flooders {
        total += f.await.unwrap();
    }
    assert!(total > 0, "the flood ran");
}
