//! Third-party Mesos clients, unchanged, against a real `m3s mini`: a pymesos
//! 0.3.15 scheduler (CPython 3.9) runs its whole scenario, and while its
//! long task runs, avmesos-cli 1.3.0 (CPython 3.12) lists the agent, the
//! framework and the task. The virtualenvs come from `scripts/python-env`,
//! which `scripts/test` runs first.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::{Mini, tempdir};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn venv_python(name: &str) -> PathBuf {
    let python = repo().join(".venv").join(name).join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run ./scripts/python-env (./scripts/test does) to create the Python client environments",
        python.display()
    );
    python
}

#[test]
fn pymesos_scheduler_and_avmesos_cli_work_against_m3s_mini() {
    let python = venv_python("pymesos");
    venv_python("avmesos");
    let dir = tempdir("python-clients");
    let mini = Mini::start(&dir);
    let (principal, secret) = mini.credential();
    let check = format!(
        "{} --master {} --expect-framework pymesos-scenario --expect-task task-long",
        repo().join("tests/python/avmesos_check.sh").display(),
        mini.authority()
    );
    let out = Command::new(python)
        .arg(repo().join("tests/python/pymesos_scenario.py"))
        .args(["--master", &mini.authority(), "--timeout", "90", "--on-running", &check])
        .args(["--principal", &principal, "--secret", &secret])
        .output()
        .expect("python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pymesos scenario failed ({}):\n{stdout}\n--- stderr ---\n{stderr}\n--- m3s mini log ---\n{}",
        out.status,
        mini.log_tail()
    );
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}"))
        .unwrap_or_else(|e| panic!("the scenario's last line is not JSON ({e}):\n{stdout}"));
    let updates = report["updates"].as_array().expect("updates");
    let states = |task: &str| -> Vec<String> {
        updates.iter().filter(|u| u["task_id"] == task).map(|u| u["state"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(states("task-ok")[..3], ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"], "{report}");
    assert!(states("task-long").contains(&"TASK_KILLED".to_owned()), "{report}");
    assert!(
        !states("task-long").contains(&"TASK_KILLING".to_owned()),
        "no TASK_KILLING for a framework without TASK_KILLING_STATE"
    );
    // avmesos-cli's output is part of the scenario's stderr: the rows it listed.
    assert!(stderr.contains("pymesos-scenario"), "avmesos framework list:\n{stderr}");
    assert!(stderr.contains("task-long"), "avmesos task list:\n{stderr}");
}
