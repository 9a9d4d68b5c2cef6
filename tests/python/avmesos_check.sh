#!/usr/bin/env bash
# Runs avmesos-cli 1.3.0 (.venv/avmesos, made by scripts/python-env) against a Mesos master:
#   mesos-cli agent list; mesos-cli framework list; mesos-cli task list
# printing each output, and exits non-zero if any of them fails (or prints an error, or
# lacks an expected row).
# avmesos-cli's entry point is the `mesos-cli` script, which runs `python -m avmesos.cli.mesos-cli`
# with whatever `python` is first on PATH: the venv's bin is put first here.
# The master comes from a temporary config.toml (`[master] address = "HOST:PORT"`) pointed at by
# MESOS_CLI_CONFIG.
#
# Usage: avmesos_check.sh --master HOST:PORT [--expect-framework NAME]... [--expect-task ID]...
#                         [--all]
#   --expect-framework NAME  `framework list` must show an active framework named NAME
#   --expect-task ID         `task list` must show task ID as TASK_RUNNING
#   --all                    also run `framework list --all` and `task list --all` (inactive
#                            frameworks and tasks in every state)
# Environment: AVMESOS_VENV (default: <repo>/.venv/avmesos).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VENV=${AVMESOS_VENV:-$ROOT/.venv/avmesos}

usage() { sed -n '11,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit "${1:-2}"; }
die() { printf 'avmesos_check: %s\n' "$*" >&2; exit 1; }

master=""
all=0
expect_frameworks=()
expect_tasks=()
while [ $# -gt 0 ]; do
    case "$1" in
        --master) [ $# -ge 2 ] || usage; master=$2; shift 2 ;;
        --master=*) master=${1#--master=}; shift ;;
        --expect-framework) [ $# -ge 2 ] || usage; expect_frameworks+=("$2"); shift 2 ;;
        --expect-task) [ $# -ge 2 ] || usage; expect_tasks+=("$2"); shift 2 ;;
        --all) all=1; shift ;;
        -h | --help) usage 0 ;;
        *) echo "avmesos_check: unknown argument '$1'" >&2; usage ;;
    esac
done
[ -n "$master" ] || usage
case "$master" in
    *:*) ;;
    *) die "--master must be HOST:PORT, got '$master'" ;;
esac
[ -x "$VENV/bin/mesos-cli" ] || die "$VENV/bin/mesos-cli is missing: run scripts/python-env"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '[master]\naddress = "%s"\n' "$master" >"$tmp/config.toml"
export MESOS_CLI_CONFIG=$tmp/config.toml
export PATH=$VENV/bin:$PATH
unset PYTHONPATH PYTHONHOME

failed=0
declare -A out

run() {
    local name="$*" rc=0
    printf '$ mesos-cli %s\n' "$name"
    out[$name]=$(timeout 60 mesos-cli "$@" 2>&1) || rc=$?
    printf '%s\n' "${out[$name]}"
    # The CLI exits 1 on its own errors ("Error: ..."), but a Python traceback or an error line
    # must fail the check even if some path exits 0.
    if [ "$rc" -ne 0 ] || grep -qE '^(Error: |Traceback )' <<<"${out[$name]}"; then
        printf 'avmesos_check: FAILED: mesos-cli %s (exit %d)\n\n' "$name" "$rc"
        failed=1
    else
        printf '\n'
    fi
}

run agent list
run framework list
run task list
if [ "$all" -eq 1 ]; then
    run framework list --all
    run task list --all
fi

# Tables are whitespace-separated columns, header first:
#   agent list:      Agent ID, Hostname, Active
#   framework list:  ID, Active, Hostname, Name       (active frameworks only, without --all)
#   task list:       ID, State, Framework ID, Executor ID   (TASK_RUNNING only, without --all)
if [ "${#expect_frameworks[@]}" -gt 0 ] || [ "${#expect_tasks[@]}" -gt 0 ]; then
    if ! awk 'NR > 1 && $3 == "True" { found = 1 } END { exit !found }' <<<"${out[agent list]}"; then
        echo "avmesos_check: FAILED: agent list shows no active agent"
        failed=1
    fi
fi
for name in ${expect_frameworks[@]+"${expect_frameworks[@]}"}; do
    if ! awk -v n="$name" 'NR > 1 && $2 == "True" && $NF == n { found = 1 } END { exit !found }' \
        <<<"${out[framework list]}"; then
        echo "avmesos_check: FAILED: framework list shows no active framework named '$name'"
        failed=1
    fi
done
for id in ${expect_tasks[@]+"${expect_tasks[@]}"}; do
    if ! awk -v t="$id" 'NR > 1 && $1 == t && $2 == "TASK_RUNNING" { found = 1 } END { exit !found }' \
        <<<"${out[task list]}"; then
        echo "avmesos_check: FAILED: task list shows no running task '$id'"
        failed=1
    fi
done

if [ "$failed" -ne 0 ]; then
    echo "avmesos_check: FAILED (master $master)"
    exit 1
fi
echo "avmesos_check: OK (master $master)"
