// Bedside page: no framework, no CDN. Results are rendered with textContent and SVG nodes only.
"use strict";

const SCORE_LEVELS = [
  ["none", "No mottling"],
  ["small", "A small, coin-sized area at the centre of the knee"],
  ["moderate", "Does not pass the upper edge of the kneecap"],
  ["mild", "Does not pass the middle of the thigh"],
  ["severe", "Does not pass the groin fold"],
  ["extremely severe", "Extends beyond the groin fold"],
];
const $ = (id) => document.getElementById(id);
const flags = { photo: null, video: null };  // hypoperfusion answers from the server, per upload

function apiHeaders() {
  const key = $("api-key").value.trim();
  return key ? { "X-API-Key": key } : {};
}

function show(el, on) { el.hidden = !on; }

// XMLHttpRequest rather than fetch: it reports upload progress, which matters for a 100 MB video
// on a ward's Wi-Fi. `busy` is the element that shows it.
function callApi(url, form, busy, verb) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    for (const [k, v] of Object.entries(apiHeaders())) xhr.setRequestHeader(k, v);
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) busy.textContent = `Uploading… ${Math.round((100 * e.loaded) / e.total)}%`;
    };
    xhr.upload.onload = () => { busy.textContent = verb; };
    xhr.onerror = () => reject(new Error("The server cannot be reached. Check the connection and try again."));
    xhr.onload = () => {
      const body = xhr.response;
      if (xhr.status >= 200 && xhr.status < 300 && body) { resolve(body); return; }
      if (xhr.status === 401 || xhr.status === 403) $("settings").open = true;
      const err = new Error(body && body.error ? body.error : `The server answered ${xhr.status}.`);
      err.requestId = body && body.request_id;
      reject(err);
    };
    xhr.send(form);
  });
}

function errorText(err) {
  return err.requestId ? `${err.message} (request ${err.requestId})` : err.message;
}

// ---- photo -------------------------------------------------------------------------------
async function onPhoto(file) {
  show($("photo-error"), false);
  show($("mottling-result"), false);
  $("photo-busy").textContent = "Uploading…";
  show($("photo-busy"), true);
  const form = new FormData();
  form.append("image", file, file.name || "photo.jpg");
  try {
    const body = await callApi("/v1/assess?overlay=true", form, $("photo-busy"), "Scoring the photo…");
    renderMottling(body.mottling);
    flags.photo = body.hypoperfusion;
    renderFlag();
  } catch (err) {
    $("photo-error").textContent = errorText(err);
    show($("photo-error"), true);
  } finally {
    show($("photo-busy"), false);
  }
}

function renderMottling(m) {
  const score = m.score;
  $("score-value").textContent = String(score);
  $("score-badge").className = "score-badge s" + score;
  $("score-name").textContent = `Score ${score}: ${SCORE_LEVELS[score][0]}`;
  $("score-extent").textContent = SCORE_LEVELS[score][1];
  $("score-meta").textContent =
    `Confidence ${(100 * m.confidence).toFixed(0)}% · expected score ${m.expected_score.toFixed(2)} · model ${m.model_version}`;
  const warnings = $("photo-warnings");
  warnings.replaceChildren();
  (m.quality_messages || m.quality || []).forEach((text) => {
    const li = document.createElement("li");
    li.textContent = text;
    warnings.appendChild(li);
  });
  if (m.overlay_png) $("overlay-img").src = "data:image/png;base64," + m.overlay_png;
  const probs = $("probs");
  probs.replaceChildren();
  m.probabilities.forEach((p, i) => {
    const bar = document.createElement("div");
    bar.style.height = Math.max(2, Math.round(100 * p)) + "%";
    if (i === score) bar.className = "top";
    bar.title = `score ${i}: ${(100 * p).toFixed(0)}%`;
    const label = document.createElement("span");
    label.textContent = String(i);
    bar.appendChild(label);
    probs.appendChild(bar);
  });
  show($("mottling-result"), true);
}

// ---- video -------------------------------------------------------------------------------
function currentSite() {
  return document.querySelector('input[name="site"]:checked').value;
}

async function onVideo(file) {
  show($("video-error"), false);
  show($("crt-result"), false);
  $("video-busy").textContent = "Uploading…";
  show($("video-busy"), true);
  const form = new FormData();
  form.append("video", file, file.name || "refill.mp4");
  form.append("site", currentSite());
  try {
    const body = await callApi("/v1/assess?curve=true", form, $("video-busy"), "Measuring the refill…");
    renderCrt(body.crt);
    flags.video = body.hypoperfusion;
    renderFlag();
  } catch (err) {
    $("video-error").textContent = errorText(err);
    show($("video-error"), true);
  } finally {
    show($("video-busy"), false);
  }
}

function renderCrt(c) {
  const verdict = $("crt-verdict");
  if (c.status === "ok") {
    $("crt-value").textContent = `CRT ${c.crt_s.toFixed(1)} s`;
    // An interval across the threshold: the yes/no answer is shown, marked as uncertain.
    const spans = c.crt_ci95 && c.crt_ci95[0] < c.threshold_s && c.crt_ci95[1] > c.threshold_s;
    verdict.textContent = (c.prolonged ? "prolonged" : "normal") + (spans ? " (uncertain)" : "");
    verdict.className = "crt-verdict " + (c.prolonged ? "prolonged" : "normal");
    const ci = c.crt_ci95
      ? `95% interval ${c.crt_ci95[0].toFixed(1)}–${c.crt_ci95[1].toFixed(1)} s${spans ? ", across the threshold" : ""} · `
      : "";
    $("crt-meta").textContent =
      `${ci}${c.site} threshold ${c.threshold_s} s · released at ${c.release_s.toFixed(1)} s · ${c.frames} frames`;
  } else {
    $("crt-value").textContent = "No CRT";
    verdict.textContent = "rejected";
    verdict.className = "crt-verdict rejected";
    $("crt-meta").textContent = `The video could not be measured reliably: ${c.reason || "unknown reason"}. Film it again.`;
  }
  drawCurve($("crt-plot"), c);
  show($("crt-result"), true);
}

function svgEl(name, attrs, text) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function drawCurve(box, c) {
  box.replaceChildren();
  const curve = c.curve;
  if (!curve || !curve.t_s || curve.t_s.length < 2) return;
  const W = 360, H = 200, L = 34, R = 10, T = 12, B = 28;
  const t = curve.t_s, s = curve.signal;
  const t0 = t[0], t1 = t[t.length - 1];
  const finite = s.filter((v) => v !== null && isFinite(v));
  const lo = Math.min(-0.1, ...finite), hi = Math.max(1.1, ...finite);
  const x = (v) => L + ((v - t0) / (t1 - t0 || 1)) * (W - L - R);
  const y = (v) => T + (1 - (v - lo) / (hi - lo || 1)) * (H - T - B);
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Recovery curve" });
  svg.appendChild(svgEl("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "#f6f9fb" }));
  // axes and ticks
  for (const v of [0, 0.5, 1]) {
    svg.appendChild(svgEl("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#dde5ec" }));
    svg.appendChild(svgEl("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end", "font-size": 10, fill: "#5b6b78" }, v.toFixed(1)));
  }
  const step = Math.max(1, Math.round((t1 - t0) / 6));
  for (let v = Math.ceil(t0); v <= t1; v += step) {
    svg.appendChild(svgEl("text", { x: x(v), y: H - B + 14, "text-anchor": "middle", "font-size": 10, fill: "#5b6b78" }, String(v)));
  }
  svg.appendChild(svgEl("text", { x: W - R, y: H - 3, "text-anchor": "end", "font-size": 10, fill: "#5b6b78" }, "time (s)"));
  // 90% recovery level (signal: baseline 0, blanched 1)
  svg.appendChild(svgEl("line", { x1: L, x2: W - R, y1: y(0.1), y2: y(0.1), stroke: "#1d7a3e", "stroke-dasharray": "4 3" }));
  svg.appendChild(svgEl("text", { x: W - R - 2, y: y(0.1) - 3, "text-anchor": "end", "font-size": 9, fill: "#1d7a3e" }, "90% recovered"));
  // measured signal
  const pts = t.map((v, i) => (s[i] === null || !isFinite(s[i]) ? null : `${x(v).toFixed(1)},${y(s[i]).toFixed(1)}`)).filter(Boolean);
  svg.appendChild(svgEl("polyline", { points: pts.join(" "), fill: "none", stroke: "#7a8a99", "stroke-width": 1.2, class: "signal" }));
  // fitted recovery
  if (curve.fit_t_s && curve.fit_t_s.length > 1) {
    const fpts = curve.fit_t_s.map((v, i) => `${x(v).toFixed(1)},${y(curve.fit[i]).toFixed(1)}`);
    svg.appendChild(svgEl("polyline", { points: fpts.join(" "), fill: "none", stroke: "#0b6bcb", "stroke-width": 2.4, class: "fit" }));
  }
  // release and CRT markers
  if (c.release_s !== null && c.release_s !== undefined) {
    const xr = x(c.release_s);
    svg.appendChild(svgEl("line", { x1: xr, x2: xr, y1: T, y2: H - B, stroke: "#b3261e", "stroke-width": 1.5, class: "release-marker" }));
    svg.appendChild(svgEl("text", { x: xr + 3, y: T + 10, "font-size": 10, fill: "#b3261e" }, "release"));
    if (c.status === "ok" && c.crt_s !== null) {
      const xc = x(c.release_s + c.crt_s);
      svg.appendChild(svgEl("line", { x1: xc, x2: xc, y1: T, y2: H - B, stroke: "#1d7a3e", "stroke-width": 1.5, "stroke-dasharray": "2 2", class: "crt-marker" }));
      svg.appendChild(svgEl("text", { x: xc + 3, y: T + 22, "font-size": 10, fill: "#1d7a3e" }, `+${c.crt_s.toFixed(1)} s`));
    }
  }
  box.appendChild(svg);
}

// ---- hypoperfusion ------------------------------------------------------------------------
function criterionWords(name) {  // "finger_crt>3s" -> "finger CRT > 3 s", "mottling_score>=1" -> "mottling score ≥ 1"
  return name.replace(/^(\w+)_crt>([\d.]+)s$/, "$1 CRT > $2 s").replace(/^mottling_score>=(\d+)$/, "mottling score ≥ $1");
}

function renderFlag() {
  const parts = [flags.photo, flags.video].filter(Boolean);
  if (!parts.length) return;
  const criteria = parts.flatMap((f) => f.criteria);
  const evaluated = parts.flatMap((f) => f.evaluated);
  const el = $("flag-value");
  if (!evaluated.length) {
    el.textContent = "Not evaluated: no usable measurement yet";
    el.className = "flag-value";
  } else if (criteria.length) {
    el.textContent = "Yes: signs of peripheral hypoperfusion";
    el.className = "flag-value yes";
  } else {
    el.textContent = "No criterion met";
    el.className = "flag-value no";
  }
  const list = $("flag-criteria");
  list.replaceChildren();
  evaluated.forEach((name) => {
    const li = document.createElement("li");
    li.textContent = `${criteria.includes(name) ? "Met" : "Not met"}: ${criterionWords(name)}`;
    li.className = criteria.includes(name) ? "met" : "not-met";
    list.appendChild(li);
  });
  show($("flag-card"), true);
}

// ---- wiring ---------------------------------------------------------------------------------
async function checkServer() {
  try {
    const resp = await fetch("/readyz");
    const body = await resp.json();
    $("server-status").textContent = resp.ok
      ? `Ready · model ${body.model_version}`
      : `Photo scoring unavailable: ${body.error}`;
    $("model-info").textContent = `Server model: ${body.model_version || "none"}`;
  } catch (e) {
    $("server-status").textContent = "The server cannot be reached.";
  }
}

let lastVideo = null;
$("photo-input").addEventListener("change", (e) => { if (e.target.files[0]) onPhoto(e.target.files[0]); });
$("video-input").addEventListener("change", (e) => {
  if (e.target.files[0]) { lastVideo = e.target.files[0]; onVideo(lastVideo); }
});
document.querySelectorAll('input[name="site"]').forEach((r) =>
  r.addEventListener("change", () => { if (lastVideo) onVideo(lastVideo); }));
$("api-key").value = sessionStorage.getItem("mottling-api-key") || "";
$("api-key").addEventListener("change", (e) => sessionStorage.setItem("mottling-api-key", e.target.value.trim()));
checkServer();
