// Browser test of the m3s dashboard against a running `m3s up`: playwright-core
// driving Debian's chromium, headless. Run by crates/m3s/tests/dashboard.rs,
// which starts m3s and passes:
//   M3S_URL          the API's base URL (http://127.0.0.1:PORT)
//   M3S_TOKEN_FILE   the API token file
//   SCREENSHOT_DIR   where each page's screenshot goes (kept as test artifacts)
//   CHROMIUM         the browser (default /usr/bin/chromium)
// Exits non-zero with a message naming the failed check.
import { chromium } from "playwright-core";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const base = process.env.M3S_URL;
const token = readFileSync(process.env.M3S_TOKEN_FILE, "utf8").trim();
const shots = process.env.SCREENSHOT_DIR;
mkdirSync(shots, { recursive: true });

function check(condition, message) {
  if (!condition) throw new Error("check failed: " + message);
}

async function eventually(what, fn, timeoutMs = 60000) {
  const until = Date.now() + timeoutMs;
  let last;
  while (Date.now() < until) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error("timed out waiting for " + what + (last ? ": " + last.message : ""));
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
page.setDefaultTimeout(20000);

// Every console error, uncaught exception and failed request, per page visit.
let problems = [];
page.on("console", (m) => { if (m.type() === "error") problems.push("console: " + m.text()); });
page.on("pageerror", (e) => problems.push("page error: " + e.message));
page.on("requestfailed", (r) => {
  // A navigation away cancels the page's in-flight polls; that is not a failure.
  if (!/ERR_ABORTED/.test(r.failure()?.errorText || "")) problems.push("request failed: " + r.url() + " " + r.failure()?.errorText);
});
page.on("dialog", (d) => d.accept());

// Bytes of what the page itself needs (HTML, CSS, JS, uncompressed, cached or not),
// not the data its charts and tails fetch.
async function pageWeight() {
  return page.evaluate(() => {
    const nav = performance.getEntriesByType("navigation")[0];
    const own = performance.getEntriesByType("resource").filter((r) => !["fetch", "xmlhttprequest"].includes(r.initiatorType));
    return nav.decodedBodySize + own.reduce((sum, r) => sum + r.decodedBodySize, 0);
  });
}

const report = { pages: {} };

async function visit(name, path, heading) {
  problems = [];
  await page.goto(base + path, { waitUntil: "load" });
  await page.waitForLoadState("networkidle").catch(() => {});
  const h1 = await page.locator("main h1").textContent();
  check(h1.includes(heading), `${path}: heading ${JSON.stringify(h1)} lacks ${JSON.stringify(heading)}`);
  await accessible(path);
  const weight = await pageWeight();
  check(weight > 0 && weight < 200 * 1024, `${path}: page weight ${weight} B is not under 200 KB`);
  report.pages[name] = { path, weight_bytes: weight };
  return h1;
}

// Every visible control has a label; the first Tab lands on the skip link.
async function accessible(path) {
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll("input, select, textarea, button")]
      .filter((el) => el.type !== "hidden")
      .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label") && !(el.tagName === "BUTTON" && el.textContent.trim()))
      .map((el) => el.outerHTML.slice(0, 80)));
  check(unlabelled.length === 0, `${path}: controls without a label: ${unlabelled.join(" | ")}`);
  await page.keyboard.press("Tab");
  const focused = await page.evaluate(() => document.activeElement?.className || document.activeElement?.tagName);
  check(focused === "skip", `${path}: the first Tab focuses ${focused}, not the skip link`);
}

async function noProblems(what) {
  check(problems.length === 0, `${what}: ${problems.join("; ")}`);
}

async function shot(name) {
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.screenshot({ path: join(shots, name + ".png"), fullPage: true });
}

// Sign in: an unauthenticated page load goes to the sign-in form.
await page.goto(base + "/ui/nodes");
check(page.url().includes("/ui/login"), "an unauthenticated page load did not go to the sign-in page: " + page.url());
await page.getByLabel("API token").fill("wrong-" + token);
await page.getByRole("button", { name: "Sign in" }).click();
check(await page.getByRole("alert").textContent().then((t) => t.includes("Wrong token")), "a wrong token was not refused");
await shot("login");
problems = [];
await page.getByLabel("API token").fill(token);
await page.getByRole("button", { name: "Sign in" }).click();
await page.waitForURL(/\/ui\/nodes$/);

// Every page loads without console errors.
await visit("overview", "/ui/", "Overview");
check(await page.locator("#resources").isVisible(), "overview: no resources section");
check((await page.locator("#frameworks + table tbody").textContent()).includes("m3s"), "overview: the m3s framework is not listed");
await noProblems("overview");
await shot("overview");

await visit("stacks", "/ui/stacks", "Stacks");
check((await page.locator("#stacks").textContent()).includes("demo"), "stacks: the demo project is not listed");
await noProblems("stacks");

// A compose file with an error is shown at its line.
await page.getByLabel("Project name").fill("broken");
await page.getByLabel("compose.yaml").fill("services:\n  web:\n    command: [sleep, 1]\n    replicas: lots\n");
await page.getByRole("button", { name: "Deploy" }).click();
const diag = await eventually("the deploy errors", async () => {
  const t = await page.locator("#deploy-result .diagnostics").textContent({ timeout: 1000 });
  return t && t.length ? t : null;
});
check(/line 4/.test(diag), "the invalid file's error does not name line 4: " + diag);
check((await page.locator("#deploy-result .listing .marked").textContent()).includes("replicas: lots"), "the error is not shown at its line");
await shot("stacks-invalid");
await noProblems("deploying an invalid file");

// A valid file deployed through the page reaches running and shows in Stacks and Tasks.
const compose = [
  "services:",
  "  talker:",
  "    command: [\"sh\", \"-c\", \"echo hello-from-the-dashboard; while true; do echo tick; sleep 1; done\"]",
  "  failing:",
  "    command: [\"sh\", \"-c\", \"echo about to fail >&2; exit 3\"]",
  "    restart: \"no\"",
  "",
].join("\n");
await page.getByLabel("Project name").fill("pw");
await page.getByLabel("compose.yaml").fill(compose);
await page.getByRole("button", { name: "Deploy" }).click();
await eventually("the deploy result", async () => (await page.locator("#deploy-result").textContent()).includes("Project pw deployed"));
await eventually("talker running in Stacks", async () => {
  const row = page.locator("#stacks tr", { hasText: "talker" });
  return (await row.count()) === 1 && (await row.locator(".badge").textContent()) === "running";
});
await shot("stacks");
await noProblems("deploying through the page");

// Scale through the page.
await page.getByLabel("Replicas of talker").fill("2");
await page.locator("#stacks tr", { hasText: "talker" }).getByRole("button", { name: "Scale" }).click();
await eventually("the scale notice", async () => (await page.locator("#action-result").textContent()).includes("scaling to 2"));
await eventually("two talkers running", async () => {
  const cells = await page.locator("#stacks tr", { hasText: "talker" }).locator("td").allTextContents();
  return cells.some((c) => c.trim() === "2 / 2");
});
await noProblems("scaling");

await visit("tasks", "/ui/tasks", "Tasks");
await eventually("a running pw task in Tasks", async () => {
  await page.reload();
  const rows = page.locator("tbody tr", { hasText: "pw_talker" });
  return (await rows.count()) >= 1 && (await rows.first().locator(".badge").textContent()) === "RUNNING";
});
await noProblems("tasks");
await shot("tasks");

// The task's page: state history, sandbox files and the live tail of its output.
await page.locator("tbody tr", { hasText: "pw_talker" }).first().getByRole("link").first().click();
await page.waitForLoadState("load");
problems = [];
check((await page.locator("#history + table").textContent()).includes("RUNNING"), "task page: no RUNNING in the state history");
check((await page.locator("#files + table").textContent()).includes("stdout"), "task page: stdout is not among the sandbox files");
await eventually("the task's output in the tail", async () => (await page.locator("pre.log").textContent()).includes("hello-from-the-dashboard"));
const before = (await page.locator("pre.log").textContent()).split("tick").length;
await eventually("the tail to grow", async () => (await page.locator("pre.log").textContent()).split("tick").length > before + 1, 20000);
await noProblems("task page");
await shot("task");
await page.locator("#files + table").getByRole("link", { name: "stdout" }).click();
check((await page.locator("pre.log").textContent()).includes("hello-from-the-dashboard"), "the sandbox file view lacks the output");
await noProblems("sandbox file");

// The service page tails the newest task too.
await page.goto(base + "/ui/stacks/pw/talker");
await eventually("the service's log tail", async () => (await page.locator("pre.log").textContent()).includes("tick"));
await page.getByLabel("Stream").selectOption("stderr");
await noProblems("service page");
await shot("service");

await visit("nodes", "/ui/nodes", "Nodes");
// A chart renders data points (the collector runs every second in this test).
await eventually("points in the node CPU chart", async () => Number(await page.locator("#node-cpu").getAttribute("data-points")) > 0);
check(await page.locator("#node-cpu canvas").count() === 1, "nodes: the CPU chart has no canvas");
await eventually("task use on Nodes", async () => {
  await page.reload();
  await page.waitForLoadState("networkidle").catch(() => {});
  return (await page.locator("#task-usage + table").textContent()).includes("pw_talker");
});
await eventually("points in the task CPU chart", async () => Number(await page.locator("#task-cpu").getAttribute("data-points")) > 0);
await noProblems("nodes");
await shot("nodes");

await visit("metrics", "/ui/metrics?metric=mesos_task_cpus_used&range=1h", "Metrics");
await eventually("points in the metrics chart", async () => Number(await page.locator("#metrics-chart").getAttribute("data-points")) > 0);
const seriesCount = Number(await page.locator("#metrics-chart").getAttribute("data-series"));
check(seriesCount >= 2, "metrics: expected a series per running task, got " + seriesCount);
// Zoom: drag across the last tenth of the hour (where this fresh m3s has data); the range
// becomes custom and the data is fetched again at full resolution.
const box = await page.locator("#metrics-chart .u-over").boundingBox();
await page.mouse.move(box.x + box.width * 0.9, box.y + box.height / 2);
await page.mouse.down();
await page.mouse.move(box.x + box.width - 1, box.y + box.height / 2, { steps: 8 });
await page.mouse.up();
await eventually("the zoomed range in the address", async () => page.url().includes("range=custom"));
await eventually("points after zooming", async () => Number(await page.locator("#metrics-chart").getAttribute("data-points")) > 0);
check(await page.getByLabel("Range").inputValue() === "custom", "metrics: the picker does not show the zoomed range");
await noProblems("metrics");
await shot("metrics");
// Each preset of the range picker loads.
for (const preset of ["24h", "3d", "7d"]) {
  await page.getByLabel("Range").selectOption(preset);
  await page.getByRole("button", { name: "Show" }).click();
  await page.waitForLoadState("load");
  await eventually(`the chart for ${preset}`, async () => (await page.locator("#metrics-chart .chart-status").textContent()).includes("series"));
}
// A bad query names the field.
await page.goto(base + "/ui/metrics?query=" + encodeURIComponent("rate(x[5m]"));
check((await page.getByRole("alert").first().textContent()).startsWith("query:"), "metrics: a bad query is not reported by field");
await noProblems("metrics presets and errors");

await visit("report", "/ui/report?range=1h", "Report");
check((await page.locator("#node-memory + table").textContent()).includes("%"), "report: no node in the memory report");
await eventually("top tasks in the report", async () => {
  await page.reload();
  return (await page.locator("#top-cpu + table").textContent()).includes("pw_talker");
});
await noProblems("report");
await shot("report");

await visit("anomalies", "/ui/anomalies", "Anomalies");
check((await page.locator("main").textContent()).includes("series watched"), "anomalies: the watch's status is not shown");
await noProblems("anomalies");
await shot("anomalies");

await visit("errors", "/ui/errors", "Error log");
await eventually("the failed task in the error log", async () => {
  await page.reload();
  return (await page.locator("main table").textContent().catch(() => "")).includes("task_failed");
});
check((await page.locator("main table").textContent()).includes("pw_failing"), "error log: the failing task is not named");
await noProblems("errors");
await shot("errors");

// Remove the project through the page (the confirmation dialog is accepted).
await page.goto(base + "/ui/stacks");
await page.getByRole("button", { name: "Remove pw" }).click();
await eventually("the removal notice", async () => (await page.locator("#action-result").textContent()).includes("pw: removing"));
await eventually("pw gone from Stacks", async () => !(await page.locator("#stacks").textContent()).includes("pw"), 60000);
await noProblems("removing");

// The audit log names who removed it, from the dashboard.
await visit("audit", "/ui/audit?contains=pw", "Audit log");
check((await page.locator("main table").textContent()).includes("POST /ui/stacks/pw/remove"), "audit: the removal is not logged");
await noProblems("audit");
await shot("audit");

// Signing out ends the session.
await page.getByRole("button", { name: "Sign out" }).click();
await page.waitForURL(/\/ui\/login/);
await page.goto(base + "/ui/");
check(page.url().includes("/ui/login"), "signed out, the dashboard still opened");

// A viewer signs in with a credential an admin made: pages open, changes are refused on the page.
const made = await (await fetch(base + "/api/v1/credentials", {
  method: "POST",
  headers: { authorization: "Bearer " + token, "content-type": "application/json" },
  body: JSON.stringify({ name: "pw-viewer", role: "viewer" }),
})).json();
await page.getByLabel("API token").fill(made.token);
await page.getByRole("button", { name: "Sign in" }).click();
await page.waitForURL(/\/ui\/$/);
await visit("stacks as a viewer", "/ui/stacks", "Stacks");
await page.getByRole("button", { name: "Remove demo" }).click();
await eventually("the viewer's refusal", async () => (await page.locator("#action-result").textContent()).includes("needs the operator role"));
check((await page.locator("#stacks").textContent()).includes("demo"), "a viewer removed a project");
await noProblems("viewer");
await page.getByRole("button", { name: "Sign out" }).click();
await page.waitForURL(/\/ui\/login/);

writeFileSync(join(shots, "report.json"), JSON.stringify(report, null, 2));
console.log(JSON.stringify(report));
await browser.close();
