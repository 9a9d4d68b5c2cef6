//! The normalized document loads back to the same project: every docker/compose
//! fixture that loads, and a file that uses every typed key.

mod support;

use compose::{Env, SourceFile, load, normalize};

/// Normalizes, loads the result, normalizes again: both documents are equal.
/// Returns false when the original does not load.
fn round_trip(name: &str, text: &str) -> bool {
    let env = Env::new([("HOME".to_owned(), "/home/u".to_owned())].into_iter().collect());
    let Ok(project) = load(&[SourceFile::new(name, text)], &env) else { return false };
    let first = normalize(&project);
    let again =
        load(&[SourceFile::new("normalized.json", serde_json::to_string_pretty(&first).unwrap())], &Env::default())
            .unwrap_or_else(|e| panic!("{name}: the normalized document does not load:\n{e}\n{first:#}"));
    assert_eq!(normalize(&again), first, "{name}: loading the normalized document changes the project");
    true
}

#[test]
fn docker_compose_fixtures_survive_normalization() {
    let dir = support::fixtures_dir();
    let files = support::yaml_files(&dir);
    assert!(files.len() > 50, "fixtures missing under {}", dir.display());
    let loaded =
        files.iter().filter(|f| round_trip(&f.display().to_string(), &std::fs::read_to_string(f).unwrap())).count();
    assert!(loaded > 30, "only {loaded} fixtures loaded");
}

#[test]
fn every_typed_key_survives_normalization() {
    let loaded = round_trip(
        "all.yaml",
        r#"
name: everything
services:
  web:
    image: nginx:1.27
    command: ["nginx", "-g", "daemon off;"]
    entrypoint: /docker-entrypoint.sh
    environment:
      A: "1"
      PRICE: "$$5"
      PASS:
    ports: ["8080:80", "9000-9001:9000-9001/udp", {target: 443, published: "8443", protocol: tcp, name: https}]
    volumes: ["data:/data:ro", "./conf:/etc/conf", {type: tmpfs, target: /tmp, tmpfs: {size: 1048576}}]
    depends_on:
      db: {condition: service_healthy, restart: true}
    deploy:
      replicas: 2
      resources:
        limits: {cpus: "0.5", memory: 256M}
        reservations: {cpus: "0.25", memory: 128M}
      restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3, window: 2m}
      placement:
        constraints: ["node.hostname==a", "node.labels.rack!=r2", unique]
        attributes: ["zone: eu"]
        max_replicas_per_node: 1
    cpus: 0.5
    restart: on-failure:3
    healthcheck: {test: ["CMD", "curl", "-f", "http://localhost"], interval: 1m30s, timeout: 10s, retries: 3, start_period: 40s}
    working_dir: /srv
    user: "1000:1000"
    hostname: web1
    labels: {tier: front}
    stop_signal: SIGQUIT
    stop_grace_period: 1m
    container_type: mesos
    cap_add: [NET_ADMIN]
    cap_drop: [MKNOD]
    privileged: true
    networks:
      front: {aliases: [www]}
    ulimits: {nofile: {soft: 1024, hard: 2048}, nproc: 512}
    pull_policy: always
    mesos:
      task_name: webtask
      fetch: [{value: "http://example.invalid/a.tgz", extract: true}]
  db:
    command: sleep 1000
    healthcheck: {test: "pg_isready", interval: 5s}
    mem_limit: 1g
networks:
  front: {driver: bridge}
volumes:
  data: {}
"#,
    );
    assert!(loaded, "the file with every key must load");
}
