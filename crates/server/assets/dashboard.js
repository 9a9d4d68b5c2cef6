// m3s dashboard: charts (uPlot over /api/v1/query_range), log tails (sandbox
// reads, polled only while the page is visible), and loading a compose file
// into the deploy form. Everything else is server-rendered HTML and htmx.
(function () {
  "use strict";

  const visible = () => document.visibilityState === "visible";

  function humanBytes(v) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i === 0 ? v.toFixed(0) : v.toFixed(1)) + " " + units[i];
  }
  const formats = {
    percent: (v) => v.toFixed(1) + "%",
    bytes: humanBytes,
    cores: (v) => v.toFixed(3),
    "": (v) => String(+v.toPrecision(4)),
  };
  const palette = ["#0b5cad", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#0a7ea4", "#bc4c00", "#57606a"];
  const MAX_SERIES = 24;

  // Legends name series by the labels that tell them apart (`task`, `host`, ...),
  // not by every label each one has.
  function seriesNamer(result) {
    const keys = new Set();
    result.forEach((s) => Object.keys(s.metric).forEach((k) => keys.add(k)));
    let varying = [...keys].filter((k) => new Set(result.map((s) => s.metric[k])).size > 1);
    for (const preferred of ["task", "host"]) {
      if (varying.includes(preferred)) varying = varying.filter((k) => k === preferred || k !== "executor_id");
    }
    if (varying.length === 0) varying = [...keys].filter((k) => k !== "__name__");
    return (metric) => {
      const parts = varying.sort().filter((k) => k in metric).map((k) => (varying.length === 1 ? metric[k] : k + "=" + metric[k]));
      return parts.length ? parts.join(", ") : metric.__name__ || "value";
    };
  }

  // Fetches [start, end] (Unix seconds) at about 600 points and draws it.
  async function loadChart(fig, start, end) {
    const status = fig.querySelector(".chart-status");
    const plot = fig.querySelector(".plot");
    end = Math.ceil(end);
    const step = Math.max(1, Math.ceil((end - start) / 600));
    // The last point is `end`, so the newest samples are always shown.
    start = end - Math.floor((end - start) / step) * step;
    // Beyond a minute per point, a selector's samples are averaged over each step
    // instead of sampled at it (which would skip what falls between points).
    const query = fig.dataset.selector && step > 60
      ? "avg_over_time(" + fig.dataset.query + "[" + step + "s])" : fig.dataset.query;
    const url = "/api/v1/query_range?query=" + encodeURIComponent(query) +
      "&start=" + start + "&end=" + end + "&step=" + step;
    let body;
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      body = await response.json();
    } catch (e) {
      status.textContent = "Could not load the data: " + e.message;
      return;
    }
    if (body.status !== "success") {
      status.textContent = "The query failed: " + (body.error || "unknown error");
      return;
    }
    const result = body.data.result.slice(0, MAX_SERIES);
    const n = Math.floor((end - start) / step) + 1;
    const xs = Array.from({ length: n }, (_, i) => start + i * step);
    let points = 0;
    const columns = result.map((s) => {
      const ys = new Array(n).fill(null);
      for (const [t, v] of s.values) {
        const i = Math.round((t - start) / step);
        const y = parseFloat(v);
        if (i >= 0 && i < n && Number.isFinite(y)) { ys[i] = y; points++; }
      }
      return ys;
    });
    fig.dataset.points = String(points);
    fig.dataset.series = String(result.length);
    const more = body.data.result.length > MAX_SERIES ? " (the first " + MAX_SERIES + " of " + body.data.result.length + ")" : "";
    status.textContent = points === 0 ? "No data in this range." : result.length + " series, " + points + " points" + more + ".";
    const fmt = formats[fig.dataset.unit || ""] || formats[""];
    const seriesName = seriesNamer(result);
    const opts = {
      width: Math.max(plot.clientWidth, 300),
      height: 260,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
      series: [{ label: "Time (UTC)" }].concat(result.map((s, i) => ({
        label: seriesName(s.metric),
        stroke: palette[i % palette.length],
        width: 1.5,
        spanGaps: false,
        value: (u, v) => (v == null ? "–" : fmt(v)),
      }))),
      axes: [{}, { size: 84, values: (u, vals) => vals.map((v) => (v == null ? "" : fmt(v))) }],
      // A flat series (all zero, say) gets a small span around its value, not 0 to 100.
      scales: { y: { range: (u, min, max) => (min === max ? [Math.min(0, min), Math.max(0, max) + (Math.abs(max) || 1) * 0.1] : uPlot.rangeNum(min, max, 0.1, true)) } },
      cursor: { drag: { x: true, y: false, setScale: false } },
      legend: { live: true },
      hooks: {
        setSelect: [(u) => {
          if (u.select.width < 5) return;
          const from = u.posToVal(u.select.left, "x");
          const to = u.posToVal(u.select.left + u.select.width, "x");
          u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
          zoom(fig, from, to);
        }],
      },
    };
    if (fig._plot) fig._plot.destroy();
    plot.textContent = "";
    fig._plot = new uPlot(opts, [xs].concat(columns), plot);
  }

  function initialRange(fig) {
    if (fig.dataset.relative) {
      const end = Date.now() / 1000;
      return [end - Number(fig.dataset.relative), end];
    }
    return [Number(fig.dataset.start), Number(fig.dataset.end)];
  }

  // A zoom asks for the selected span again at full resolution; on the Metrics
  // page the form and the address follow, so a reload or a shared link shows it.
  function zoom(fig, from, to) {
    fig._zoomed = true;
    loadChart(fig, from, to);
    const form = document.querySelector("form.controls");
    if (!form || !form.elements.range) return;
    const iso = (s) => new Date(s * 1000).toISOString().slice(0, 19);
    form.elements.range.value = "custom";
    form.elements.start.value = iso(from);
    form.elements.end.value = iso(to);
    const params = new URLSearchParams(new FormData(form));
    history.replaceState(null, "", location.pathname + "?" + params);
  }

  function unzoom(fig) {
    fig._zoomed = false;
    const [start, end] = initialRange(fig);
    loadChart(fig, start, end);
  }

  function initCharts(root) {
    if (typeof uPlot === "undefined") return;
    root.querySelectorAll("figure.chart[data-query]:not([data-started])").forEach((fig) => {
      fig.dataset.started = "1";
      const [start, end] = initialRange(fig);
      loadChart(fig, start, end);
      fig.querySelector(".plot").addEventListener("dblclick", () => unzoom(fig));
      if (fig.dataset.relative) {
        // A "last N" chart follows the clock, while it can be seen and is not zoomed.
        setInterval(() => {
          if (visible() && !fig._zoomed) {
            const [s, e] = initialRange(fig);
            loadChart(fig, s, e);
          }
        }, 30000);
      }
    });
    document.querySelectorAll("[data-zoom-reset]").forEach((b) => {
      b.onclick = () => document.querySelectorAll("figure.chart[data-started]").forEach(unzoom);
    });
  }

  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      document.querySelectorAll("figure.chart").forEach((fig) => {
        if (fig._plot) fig._plot.setSize({ width: Math.max(fig.querySelector(".plot").clientWidth, 300), height: 260 });
      });
    }, 200);
  });

  const TAIL_KEEP = 256 * 1024;

  function startTail(pre) {
    const section = pre.closest("section") || document;
    const stream = section.querySelector("[data-tail-stream]");
    const pause = section.querySelector("[data-tail-pause]");
    const status = section.querySelector(".tail-status");
    let offset = null;
    let paused = false;
    let generation = 0;
    let timer = null;

    const schedule = (ms) => { clearTimeout(timer); timer = setTimeout(poll, ms); };
    async function poll() {
      if (paused || !visible()) { schedule(2000); return; }
      const mine = generation;
      const url = pre.dataset.tail + "&path=" + encodeURIComponent(pre.dataset.path) +
        (offset === null ? "" : "&offset=" + offset);
      let more = false;
      try {
        const body = await (await fetch(url, { credentials: "same-origin" })).json();
        if (mine !== generation) return;
        if (body.error) {
          if (status) status.textContent = body.error;
        } else {
          if (status) status.textContent = "";
          if (body.data) {
            const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
            let text = pre.textContent + body.data;
            if (text.length > TAIL_KEEP) text = text.slice(text.length - TAIL_KEEP);
            pre.textContent = text;
            if (atBottom) pre.scrollTop = pre.scrollHeight;
            more = body.data.length >= 60000;
          }
          offset = body.offset;
        }
      } catch (e) {
        if (status) status.textContent = "Reading failed: " + e.message;
      }
      schedule(more ? 100 : 2000);
    }
    if (stream) stream.addEventListener("change", () => {
      generation++;
      pre.dataset.path = stream.value;
      pre.textContent = "";
      offset = null;
      schedule(0);
    });
    if (pause) pause.addEventListener("click", () => {
      paused = !paused;
      pause.setAttribute("aria-pressed", String(paused));
      pause.textContent = paused ? "Resume" : "Pause";
      if (!paused) schedule(0);
    });
    document.addEventListener("visibilitychange", () => { if (visible() && !paused) schedule(0); });
    poll();
  }

  function initTails(root) {
    root.querySelectorAll("pre[data-tail]:not([data-started])").forEach((pre) => {
      pre.dataset.started = "1";
      startTail(pre);
    });
  }

  function initFileInputs(root) {
    root.querySelectorAll("input[type=file][data-load-into]").forEach((input) => {
      input.addEventListener("change", async () => {
        const file = input.files && input.files[0];
        if (!file) return;
        document.getElementById(input.dataset.loadInto).value = await file.text();
        const project = document.getElementById("project");
        if (project && !project.value) {
          const dir = file.name.replace(/\.(ya?ml|json)$/i, "").replace(/^(docker-)?compose$/i, "");
          if (dir) project.value = dir.replace(/[^A-Za-z0-9_.-]/g, "-");
        }
      });
    });
  }

  function init(root) {
    initCharts(root);
    initTails(root);
    initFileInputs(root);
  }

  document.addEventListener("DOMContentLoaded", () => init(document));
  document.addEventListener("htmx:afterSwap", (e) => init(e.target));
  // The session's CSRF token goes with every form htmx sends (the server checks it on changes).
  document.addEventListener("htmx:configRequest", (e) => {
    e.detail.headers["X-CSRF-Token"] = document.body.dataset.csrf || "";
  });
})();
