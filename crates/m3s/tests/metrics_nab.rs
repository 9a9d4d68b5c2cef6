//! `m3s metrics nab DIR`: NAB's layout in, the per-folder scores and a last line
//! `NAB standard score: <score>` out; a directory that is not NAB's is named.

mod support;

use std::process::Command;

#[test]
fn nab_scores_a_directory_and_names_a_bad_one() {
    let dir = support::tempdir("nab");
    let data = dir.join("data/folder");
    std::fs::create_dir_all(&data).unwrap();
    let mut csv = String::from("timestamp,value\n");
    for i in 0..600 {
        let value = if (400..410).contains(&i) { 100.0 } else { 10.0 + (i % 7) as f64 };
        csv.push_str(&format!("2014-04-01 {:02}:{:02}:00,{value}\n", i / 60, i % 60));
    }
    std::fs::write(data.join("s.csv"), csv).unwrap();
    std::fs::write(
        dir.join("combined_windows.json"),
        r#"{"folder/s.csv": [["2014-04-01 06:35:00.000000", "2014-04-01 06:55:00.000000"]]}"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_m3s")).args(["metrics", "nab"]).arg(&*dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("folder"), "{text}");
    let last = text.lines().last().unwrap();
    let score: f64 = last.strip_prefix("NAB standard score: ").expect(last).parse().unwrap();
    assert!(score > 90.0, "a spike at the window's start is found early: {text}");

    std::fs::write(data.join("s.csv"), "timestamp,value\n2014-04-01 00:00:00,ten\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_m3s")).args(["metrics", "nab"]).arg(&*dir).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("s.csv") && err.contains("line 2") && err.contains("bad value"), "{err}");
}
