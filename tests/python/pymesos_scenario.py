#!/usr/bin/env python3
"""A pymesos 0.3.15 scheduler that runs one scenario against a Mesos master.

Run it with the interpreter of .venv/pymesos (made by scripts/python-env); run with another
Python, it re-executes itself with that one when it exists.

Scenario (each step must happen, in this order, within --timeout seconds in all):
  subscribe      SUBSCRIBE as framework "pymesos-scenario" (user = current user, no role:
                 pymesos sends none, so the master uses "*"); SUBSCRIBED arrives.
  offers         an OFFERS event arrives.
  launch         one offer with cpus >= 0.2 and mem >= 64 is accepted with two command tasks
                 (shell form, cpus 0.1 and mem 32 each): task-ok `echo hello; sleep 1` and
                 task-long `sleep 300`. Offers not used are declined.
  task-ok        task-ok reaches TASK_RUNNING, then TASK_FINISHED.
  task-long      task-long reaches TASK_RUNNING.
  on-running     (only with --on-running CMD) CMD runs while task-long is RUNNING and must exit 0.
  kill           KILL task-long; TASK_KILLED arrives.
  acks           every update that carried a uuid was acknowledged (pymesos does this itself:
                 implicit_acknowledgements=True) and the master took each ACKNOWLEDGE (2xx).
  reconcile-explicit  RECONCILE for both task ids: one answer for each arrives.
  reconcile-implicit  RECONCILE with no tasks: answers arriving within --implicit-window are
                 recorded (a Mesos master sends none for tasks that are terminal and acknowledged).
  teardown       driver.stop(failover=False): pymesos sends TEARDOWN, the master takes it (2xx).

Prints ONE JSON object on stdout (what it observed: framework_id, every UPDATE as
task_id/state/source/reason, what was acknowledged, the reconciliation answers, every call with
its outcome) and exits 0 when every step happened, 1 otherwise (the JSON names the failing step,
and so does the last line on stderr). It ends within --timeout, plus at most 5 s to tear the
framework down after a failure; a master that never answers cannot hang it.
pymesos' own log goes to stderr (--quiet silences it).
"""

import argparse
import getpass
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time

FRAMEWORK_NAME = "pymesos-scenario"
TASK_OK = "task-ok"
TASK_LONG = "task-long"
TASKS = {
    TASK_OK: "echo hello; sleep 1",
    TASK_LONG: "sleep 300",
}
TASK_CPUS = 0.1
TASK_MEM = 32.0
TERMINAL = {
    "TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR", "TASK_DROPPED",
    "TASK_GONE", "TASK_GONE_BY_OPERATOR",
}
VENV_PYTHON = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    ".venv", "pymesos", "bin", "python")


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Run a pymesos 0.3.15 scheduler scenario (subscribe, launch, updates and "
        "acknowledgements, kill, reconcile, teardown) against a Mesos master; print one JSON "
        "object with what was observed; exit 0 only if every step happened.")
    parser.add_argument("--master", required=True, metavar="HOST:PORT",
                        help="the Mesos master, e.g. 127.0.0.1:5050")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                        help="bound on the whole scenario (default 60)")
    parser.add_argument("--connect-timeout", type=float, default=15.0, metavar="SECONDS",
                        help="bound on the subscribe step (default 15)")
    parser.add_argument("--implicit-window", type=float, default=2.0, metavar="SECONDS",
                        help="how long to collect answers to the implicit reconciliation "
                        "(default 2)")
    parser.add_argument("--on-running", metavar="CMD",
                        help="shell command to run while task-long is RUNNING, before it is "
                        "killed (its stdout and stderr go to stderr); a non-zero exit fails "
                        "the scenario. Its environment has SCENARIO_MASTER and "
                        "SCENARIO_FRAMEWORK_ID")
    parser.add_argument("--principal", metavar="NAME",
                        help="authenticate as this principal (HTTP Basic, with --secret)")
    parser.add_argument("--secret", metavar="SECRET", help="the principal's secret")
    parser.add_argument("--quiet", action="store_true", help="silence pymesos' log")
    args = parser.parse_args(argv)
    if ":" not in args.master:
        parser.error("--master must be HOST:PORT")
    return args


def import_pymesos():
    try:
        import pymesos  # noqa: F401
    except ImportError:
        if os.path.exists(VENV_PYTHON) and os.path.realpath(sys.executable) != \
                os.path.realpath(VENV_PYTHON):
            os.execv(VENV_PYTHON, [VENV_PYTHON] + sys.argv)
        sys.exit("pymesos_scenario: pymesos is not importable; run scripts/python-env and use "
                 + VENV_PYTHON)
    return pymesos


class StepFailed(Exception):
    def __init__(self, step, message):
        super().__init__("%s: %s" % (step, message))
        self.step = step
        self.message = message


class Recorder:
    """What the scenario observed; shared by the driver's IO thread and the main thread."""

    def __init__(self):
        self.cond = threading.Condition()
        self.framework_id = None
        self.master_info = None
        self.registered = 0
        self.reregistered = 0
        self.disconnected = 0
        self.heartbeats = 0
        self.offers_received = 0
        self.offers_declined = 0
        self.launched_offer = None
        self.updates = []          # every UPDATE event, in arrival order
        self.acknowledged = []     # the updates pymesos acknowledged (ACKNOWLEDGE took 2xx)
        self.calls = []            # every call pymesos posted to /api/v1/scheduler
        self.in_flight = {}        # calls posted and not answered yet: (type, since)
        self.reconcile_phase = None
        self.reconcile = {"explicit": [], "implicit": []}
        self.errors = []           # ERROR events, failed calls made from callbacks
        self.log = []              # pymesos' warnings and errors

    def notify(self):
        self.cond.notify_all()


class LogTap(logging.Handler):
    def __init__(self, rec):
        super().__init__(level=logging.WARNING)
        self.rec = rec

    def emit(self, record):
        msg = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            msg += " (%s: %s)" % (type(record.exc_info[1]).__name__, record.exc_info[1])
        with self.rec.cond:
            self.rec.log.append(msg)
            del self.rec.log[:-20]


def first_line(exc):
    """pymesos' call errors end with the whole request body: keep the first line."""
    return str(exc).split("\n")[0]


def scalar(resources, name):
    return sum(r.get("scalar", {}).get("value", 0.0)
               for r in resources if r.get("name") == name and r.get("type") == "SCALAR")


def make_scheduler_class(Scheduler):
    class ScenarioScheduler(Scheduler):
        """Launches the two tasks on the first offer big enough, declines every other offer."""

        def __init__(self, rec):
            self.rec = rec

        def registered(self, driver, framework_id, master_info):
            with self.rec.cond:
                self.rec.framework_id = framework_id["value"]
                self.rec.master_info = dict(master_info)
                self.rec.registered += 1
                self.rec.notify()

        def reregistered(self, driver, master_info):
            with self.rec.cond:
                self.rec.reregistered += 1
                self.rec.notify()

        def disconnected(self, driver):
            with self.rec.cond:
                self.rec.disconnected += 1
                self.rec.notify()

        def processHeartBeat(self, driver):
            with self.rec.cond:
                self.rec.heartbeats += 1

        def resourceOffers(self, driver, offers):
            for offer in offers:
                with self.rec.cond:
                    self.rec.offers_received += 1
                    self.rec.notify()
                    use = self.rec.launched_offer is None and \
                        scalar(offer["resources"], "cpus") >= 2 * TASK_CPUS - 1e-9 and \
                        scalar(offer["resources"], "mem") >= 2 * TASK_MEM
                if use:
                    self.launch(driver, offer)
                else:
                    self.decline(driver, offer)

        def launch(self, driver, offer):
            tasks = []
            for task_id, command in TASKS.items():
                tasks.append({
                    "name": task_id,
                    "task_id": {"value": task_id},
                    "agent_id": {"value": offer["agent_id"]["value"]},
                    "resources": [
                        {"name": "cpus", "type": "SCALAR", "scalar": {"value": TASK_CPUS}},
                        {"name": "mem", "type": "SCALAR", "scalar": {"value": TASK_MEM}},
                    ],
                    # shell form: CommandInfo.shell defaults to true (`/bin/sh -c value`)
                    "command": {"value": command},
                })
            try:
                driver.launchTasks(offer["id"], tasks, filters={"refuse_seconds": 3600})
            except Exception as e:
                with self.rec.cond:
                    self.rec.errors.append("launch: ACCEPT failed: %s" % first_line(e))
                    self.rec.notify()
                return
            with self.rec.cond:
                self.rec.launched_offer = {
                    "id": offer["id"]["value"],
                    "agent_id": offer["agent_id"]["value"],
                    "hostname": offer.get("hostname"),
                    "cpus": scalar(offer["resources"], "cpus"),
                    "mem": scalar(offer["resources"], "mem"),
                }
                self.rec.notify()

        def decline(self, driver, offer):
            # Before the launch, a short filter so that a bigger offer can come back soon.
            with self.rec.cond:
                refuse = 3600 if self.rec.launched_offer else 1
            try:
                driver.declineOffer(offer["id"], filters={"refuse_seconds": refuse})
            except Exception as e:
                with self.rec.cond:
                    self.rec.errors.append("offers: DECLINE failed: %s" % first_line(e))
                    self.rec.notify()
                return
            with self.rec.cond:
                self.rec.offers_declined += 1

        def offerRescinded(self, driver, offer_id):
            pass

        def statusUpdate(self, driver, status):
            entry = {
                "task_id": status["task_id"]["value"],
                "state": status["state"],
                "source": status.get("source"),
                "reason": status.get("reason"),
                "message": status.get("message"),
                "has_uuid": "uuid" in status,
                "agent_id": (status.get("agent_id") or {}).get("value"),
            }
            with self.rec.cond:
                self.rec.updates.append(entry)
                if entry["reason"] == "REASON_RECONCILIATION" and self.rec.reconcile_phase:
                    self.rec.reconcile[self.rec.reconcile_phase].append(
                        {"task_id": entry["task_id"], "state": entry["state"]})
                self.rec.notify()

        def error(self, driver, message):
            with self.rec.cond:
                self.rec.errors.append("ERROR event: %s" % message)
                self.rec.notify()

    return ScenarioScheduler


def observe_driver(driver, rec):
    """Wraps two driver methods to record what pymesos sends, without changing what it does."""
    send = driver._send
    ack = driver.acknowledgeStatusUpdate

    def recording_send(body, *args, **kwargs):
        call = {"type": body.get("type") if isinstance(body, dict) else None}
        with rec.cond:
            rec.in_flight[id(call)] = (call["type"], time.monotonic())
        error = None
        try:
            result = send(body, *args, **kwargs)
            call["ok"] = True
        except Exception as e:
            error = e
            call["error"] = first_line(e)
        with rec.cond:
            del rec.in_flight[id(call)]
            rec.calls.append(call)
            rec.notify()
        if error is not None:
            raise error
        return result

    def recording_ack(status):
        ack(status)
        if "uuid" in status and driver.connected:
            with rec.cond:
                rec.acknowledged.append(
                    {"task_id": status["task_id"]["value"], "state": status["state"]})
                rec.notify()

    driver._send = recording_send
    driver.acknowledgeStatusUpdate = recording_ack


class Scenario:
    def __init__(self, args, pymesos):
        self.args = args
        self.pymesos = pymesos
        self.rec = Recorder()
        self.start = time.monotonic()
        self.deadline = self.start + args.timeout
        self.steps = []
        self.driver = None
        self.on_running = None

    # -- waiting ------------------------------------------------------------------------------

    def wait_for(self, step, predicate, what, timeout=None):
        """Waits until predicate() (called with the recorder's lock held) is truthy."""
        end = self.deadline if timeout is None else min(self.deadline, time.monotonic() + timeout)
        with self.rec.cond:
            while True:
                value = predicate()
                if value:
                    return value
                if self.rec.errors:
                    raise StepFailed(step, "; ".join(self.rec.errors))
                now = time.monotonic()
                if now >= end:
                    why = "total timeout (%gs)" % self.args.timeout if end == self.deadline \
                        else "step timeout (%gs)" % timeout
                    raise StepFailed(step, "%s not seen within the %s%s"
                                     % (what, why, self.diagnosis()))
                self.rec.cond.wait(min(0.25, end - now))

    def diagnosis(self):
        """Failed calls and pymesos' last complaint, to explain a timeout (lock held)."""
        detail = ""
        failed = ["%s: %s" % (c["type"], c["error"]) for c in self.rec.calls if "error" in c]
        if failed:
            detail += "; failed calls: %s" % ", ".join(failed)
        now = time.monotonic()
        waiting = ["%s (%.0fs)" % (t, now - since) for t, since in self.rec.in_flight.values()]
        if waiting:
            detail += "; calls still waiting for a complete answer: %s" % ", ".join(waiting)
        if self.rec.registered and self.rec.disconnected:
            # (pymesos calls disconnected() for every failed connection attempt too)
            detail += "; disconnected %d time(s) after subscribing, %d resubscription(s)" % (
                self.rec.disconnected, self.rec.reregistered)
        if self.rec.log:
            detail += "; last pymesos log: %s" % self.rec.log[-1]
        return detail

    def bounded(self, step, what, fn, timeout=15.0):
        """Runs a driver call off the main thread, bounded in time.

        pymesos posts calls while holding the driver's lock, from its IO thread too, with an
        HTTP timeout of a day (MesosSchedulerDriver(timeout=DAY) also sets the HTTP timeout):
        a master that never answers a call would otherwise block the main thread for good."""
        result = {}

        def target():
            try:
                result["value"] = fn()
            except Exception as e:
                result["error"] = e

        thread = threading.Thread(target=target, name="driver call", daemon=True)
        thread.start()
        thread.join(max(0.5, min(timeout, self.deadline + 5 - time.monotonic())))
        if thread.is_alive():
            with self.rec.cond:
                detail = self.diagnosis()
            raise StepFailed(step, "%s did not return in time (pymesos blocked on a call to the "
                             "master that got no complete answer?)%s" % (what, detail))
        if "error" in result:
            raise StepFailed(step, "%s failed: %s" % (what, first_line(result["error"])))
        return result.get("value")

    def states(self, task_id):
        return [u["state"] for u in self.rec.updates
                if u["task_id"] == task_id and u["reason"] != "REASON_RECONCILIATION"]

    def task_reached(self, step, task_id, state):
        """Predicate: task_id reached state; fails the step if it ended in another state."""
        def check():
            seen = self.states(task_id)
            if state in seen:
                return True
            ended = [s for s in seen if s in TERMINAL]
            if ended:
                last = [u for u in self.rec.updates if u["task_id"] == task_id][-1]
                raise StepFailed(step, "%s ended %s (reason %s, message %r) instead of reaching %s"
                                 % (task_id, ended[0], last["reason"], last["message"], state))
            return False
        return check

    def run_step(self, name, fn):
        t0 = time.monotonic()
        sys.stderr.write("pymesos_scenario: step %s ...\n" % name)
        fn()
        self.steps.append({"step": name, "ok": True, "seconds": round(time.monotonic() - t0, 3)})
        sys.stderr.write("pymesos_scenario: step %s ok (%.2fs)\n" % (name, time.monotonic() - t0))

    # -- steps --------------------------------------------------------------------------------

    def step_subscribe(self):
        framework = {
            "user": getpass.getuser(),
            "name": FRAMEWORK_NAME,
            "hostname": socket.gethostname(),
        }
        Scheduler = make_scheduler_class(self.pymesos.Scheduler)
        self.driver = self.pymesos.MesosSchedulerDriver(
            Scheduler(self.rec), framework, self.args.master,
            principal=self.args.principal, secret=self.args.secret)
        observe_driver(self.driver, self.rec)
        # start() GETs /version synchronously (HTTP timeout: a day) before the IO thread connects
        self.bounded("subscribe", "driver.start() (GET /version)", self.driver.start,
                     timeout=self.args.connect_timeout)
        self.wait_for("subscribe", lambda: self.rec.framework_id, "SUBSCRIBED",
                      timeout=self.args.connect_timeout)

    def step_offers(self):
        self.wait_for("offers", lambda: self.rec.offers_received, "an OFFERS event")

    def step_launch(self):
        self.wait_for("launch", lambda: self.rec.launched_offer,
                      "an offer with cpus >= %g and mem >= %g (ACCEPT sent)"
                      % (2 * TASK_CPUS, 2 * TASK_MEM))

    def step_task_ok(self):
        self.wait_for("task-ok", self.task_reached("task-ok", TASK_OK, "TASK_RUNNING"),
                      "TASK_RUNNING for task-ok")
        self.wait_for("task-ok", self.task_reached("task-ok", TASK_OK, "TASK_FINISHED"),
                      "TASK_FINISHED for task-ok")

    def step_task_long(self):
        self.wait_for("task-long", self.task_reached("task-long", TASK_LONG, "TASK_RUNNING"),
                      "TASK_RUNNING for task-long")

    def step_on_running(self):
        env = dict(os.environ, SCENARIO_MASTER=self.args.master,
                   SCENARIO_FRAMEWORK_ID=self.rec.framework_id)
        remaining = max(1.0, self.deadline - time.monotonic())
        t0 = time.monotonic()
        try:
            proc = subprocess.run(self.args.on_running, shell=True, env=env,
                                  stdout=sys.stderr, stderr=sys.stderr, timeout=remaining)
        except subprocess.TimeoutExpired:
            self.on_running = {"command": self.args.on_running, "exit_code": None}
            raise StepFailed("on-running", "%r did not finish within the total timeout"
                             % self.args.on_running)
        self.on_running = {"command": self.args.on_running, "exit_code": proc.returncode,
                           "seconds": round(time.monotonic() - t0, 3)}
        if proc.returncode != 0:
            raise StepFailed("on-running", "%r exited %d" % (self.args.on_running,
                                                              proc.returncode))

    def step_kill(self):
        self.bounded("kill", "KILL", lambda: self.driver.killTask({"value": TASK_LONG}))
        self.wait_for("kill", self.task_reached("kill", TASK_LONG, "TASK_KILLED"),
                      "TASK_KILLED for task-long")

    def step_acks(self):
        def all_acked():
            want = [(u["task_id"], u["state"]) for u in self.rec.updates if u["has_uuid"]]
            got = [(a["task_id"], a["state"]) for a in self.rec.acknowledged]
            return all(w in got for w in want)
        missing = [u for u in self.rec.updates if u["reason"] != "REASON_RECONCILIATION"
                   and not u["has_uuid"]]
        if missing:
            raise StepFailed("acks", "updates from the agent without a uuid (cannot be "
                             "acknowledged): %s" % [(u["task_id"], u["state"]) for u in missing])
        self.wait_for("acks", all_acked, "an acknowledgement of every update with a uuid",
                      timeout=10)

    def step_reconcile_explicit(self):
        with self.rec.cond:
            self.rec.reconcile_phase = "explicit"
        self.bounded("reconcile-explicit", "RECONCILE",
                     lambda: self.driver.reconcileTasks([{"task_id": {"value": t}}
                                                         for t in TASKS]))
        self.wait_for("reconcile-explicit",
                      lambda: all(any(a["task_id"] == t for a in self.rec.reconcile["explicit"])
                                  for t in TASKS),
                      "an answer for each of %s" % ", ".join(TASKS), timeout=10)

    def step_reconcile_implicit(self):
        with self.rec.cond:
            self.rec.reconcile_phase = "implicit"
        self.bounded("reconcile-implicit", "RECONCILE",
                     lambda: self.driver.reconcileTasks([]))
        end = min(self.deadline, time.monotonic() + self.args.implicit_window)
        with self.rec.cond:
            while time.monotonic() < end and not self.rec.errors:
                self.rec.cond.wait(end - time.monotonic())
            if self.rec.errors:
                raise StepFailed("reconcile-implicit", "; ".join(self.rec.errors))

    def step_teardown(self):
        self.bounded("teardown", "driver.stop(failover=False)",
                     lambda: self.stop_driver(failover=False))
        with self.rec.cond:
            teardowns = [c for c in self.rec.calls if c["type"] == "TEARDOWN"]
        if not teardowns:
            raise StepFailed("teardown", "pymesos sent no TEARDOWN (was it still subscribed?)")
        if not teardowns[-1].get("ok"):
            raise StepFailed("teardown", "TEARDOWN failed: %s" % teardowns[-1].get("error"))

    def stop_driver(self, failover):
        """driver.stop() then join: pymesos' IO thread sends TEARDOWN on its way out.

        Call it through bounded(): both can block on the driver's lock."""
        if self.driver is None:
            return
        subscribed = self.driver.connected
        self.driver.stop(failover=failover)
        if subscribed:
            self.driver.join()
        # Not subscribed: nothing to tear down, and the IO thread may sleep in a connect
        # backoff (up to 15 s): do not wait for it.

    # -- main ---------------------------------------------------------------------------------

    def run(self):
        steps = [
            ("subscribe", self.step_subscribe),
            ("offers", self.step_offers),
            ("launch", self.step_launch),
            ("task-ok", self.step_task_ok),
            ("task-long", self.step_task_long),
        ]
        if self.args.on_running:
            steps.append(("on-running", self.step_on_running))
        steps += [
            ("kill", self.step_kill),
            ("acks", self.step_acks),
            ("reconcile-explicit", self.step_reconcile_explicit),
            ("reconcile-implicit", self.step_reconcile_implicit),
            ("teardown", self.step_teardown),
        ]
        failed_step, error = None, None
        current = None
        try:
            for name, fn in steps:
                current = name
                self.run_step(name, fn)
        except StepFailed as e:
            failed_step, error = e.step, e.message
        except BaseException as e:  # pymesos' IO thread died: it interrupts the main thread
            failed_step = current
            if isinstance(e, KeyboardInterrupt):
                error = "interrupted"
            else:
                error = "pymesos driver aborted: %s: %s" % (type(e).__name__, e)
            with self.rec.cond:
                if self.rec.log:
                    error += "; last pymesos log: %s" % self.rec.log[-1]
        if failed_step is not None and failed_step != "teardown":
            try:  # leave no framework behind on the master
                self.bounded("cleanup", "driver.stop", lambda: self.stop_driver(False), 10.0)
            except BaseException:
                pass
        return self.report(failed_step, error)

    def report(self, failed_step, error):
        rec = self.rec
        with rec.cond:
            out = {
                "ok": failed_step is None,
                "failed_step": failed_step,
                "error": error,
                "master": self.args.master,
                "master_version": getattr(self.driver, "version", None),
                "framework_id": rec.framework_id,
                "master_info": rec.master_info,
                "steps": self.steps,
                "offers_received": rec.offers_received,
                "offers_declined": rec.offers_declined,
                "launched_offer": rec.launched_offer,
                "updates": [dict(u) for u in rec.updates],
                "acknowledged": list(rec.acknowledged),
                "reconcile": {k: list(v) for k, v in rec.reconcile.items()},
                "calls": list(rec.calls),
                "heartbeats": rec.heartbeats,
                "registered": rec.registered,
                "reregistered": rec.reregistered,
                "disconnected": rec.disconnected,
                "on_running": self.on_running,
                "errors": list(rec.errors),
                "pymesos_log": list(rec.log[-5:]),
                "elapsed_seconds": round(time.monotonic() - self.start, 3),
            }
        return out


def main(argv):
    args = parse_args(argv)
    pymesos = import_pymesos()
    if args.quiet:
        for handler in logging.getLogger("pymesos").handlers:
            handler.setLevel(logging.CRITICAL)
    scenario = Scenario(args, pymesos)
    logging.getLogger("pymesos").addHandler(LogTap(scenario.rec))
    out = scenario.run()
    sys.stdout.write(json.dumps(out, sort_keys=True) + "\n")
    sys.stdout.flush()
    if out["ok"]:
        sys.stderr.write("pymesos_scenario: OK, every step happened (%.1fs)\n"
                         % out["elapsed_seconds"])
        return 0
    sys.stderr.write("pymesos_scenario: FAILED at step %s: %s\n" % (out["failed_step"],
                                                                     out["error"]))
    return 1


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stderr.flush()
    os._exit(code)  # pymesos' IO thread may still sleep in a connect backoff
