// Rater page: blinded photo scores and frame-accurate refill marks. Keyboard first, touch works.
// Every answer goes to an outbox in localStorage before it is sent, so a closed tab or a server
// that is down loses nothing; each answer carries a UUID, so a resend is never stored twice.
"use strict";
const $ = (id) => document.getElementById(id);
const T = { timings: [], shownPrefetched: 0, shownCold: 0, firstPhotoMs: null, sent: 0, videoOpenMs: [] };
window.__rate = T;   // read by the browser tests: paging delays and prefetch hits

const S = { rater: null, cfg: null, photos: [], videos: [], mode: "photo", pi: 0, vi: 0,
  photoCache: new Map(), video: null, outbox: [], flushing: false, shownAt: 0,
  key: sessionStorage.getItem("mottling-api-key") || "" };   // shared with the bedside page

function uuid() {
  const b = crypto.getRandomValues(new Uint8Array(16));   // randomUUID needs a secure context
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
const q = () => (S.cfg.fixed_rater ? "" : `?rater=${encodeURIComponent(S.rater)}`);
const api = (path) => `/rate/api/${path}${q()}`;
const outboxKey = () => `mottling-rate-outbox:${S.rater}`;
function showError(msg) { $("error").textContent = msg || ""; $("error").hidden = !msg; }

// In `mottling serve` with MOTTLING_API_KEY set, every /rate/api request carries the key as a
// header. An <img> cannot send one, so images are then fetched and shown from a blob: URL.
const keyHeaders = () => (S.key ? { "X-API-Key": S.key } : {});
const needsKey = (status) => status === 401 || status === 403;
async function getJSON(url) {
  const r = await fetch(url, { headers: keyHeaders() });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw Object.assign(new Error(body.error || `HTTP ${r.status}`), { status: r.status });
  return body;
}
function setImageSrc(img, url) {
  if (!S.key) { img.src = url; return; }
  fetch(url, { headers: keyHeaders() })
    .then((r) => { if (!r.ok) throw new Error(`HTTP ${r.status}`); return r.blob(); })
    .then((blob) => {
      const u = URL.createObjectURL(blob);
      img.addEventListener("load", () => URL.revokeObjectURL(u), { once: true });
      img.src = u;
    })
    .catch(() => { if (img.onerror) img.onerror(); });
}

// ---- saving ---------------------------------------------------------------------------------
function saveOutbox() { localStorage.setItem(outboxKey(), JSON.stringify(S.outbox)); }
function renderSaveStatus(problem) {
  const n = S.outbox.length, el = $("save-status");
  el.dataset.unsaved = String(n);
  el.textContent = n === 0 ? "All answers saved"
    : problem ? `${n} answer(s) not saved yet (${problem}); kept in this browser, retrying`
    : `Saving ${n}…`;
}
function submit(kind, entry, fields) {
  const payload = { answer_id: uuid(), id: entry.id, rating_ms: Math.round(performance.now() - S.shownAt), ...fields };
  S.outbox.push(payload);
  saveOutbox();                      // durable in the browser before anything else happens
  entry.answer = { ...fields };      // shown at once; the server's version replaces it when saved
  renderSaveStatus();
  flush();
}
async function flush(delay = 500) {
  if (S.flushing) return;
  S.flushing = true;
  try {
    while (S.outbox.length) {
      const p = S.outbox[0];
      let r;
      try {
        r = await fetch(api("answer"), { method: "POST", headers: { "Content-Type": "application/json", ...keyHeaders() }, body: JSON.stringify(p) });
      } catch (e) { r = null; }
      if (r && r.ok) {
        const body = await r.json();
        const entry = [...S.photos, ...S.videos].find((e) => e.id === p.id);
        if (entry && body.answer) entry.answer = body.answer;
        S.outbox.shift(); saveOutbox(); T.sent++; delay = 500;
        renderProgress();
        continue;
      }
      if (r && r.status >= 400 && r.status < 500 && r.status !== 408 && r.status !== 429 && !needsKey(r.status)) {
        const body = await r.json().catch(() => ({}));
        S.outbox.shift(); saveOutbox();
        showError(`Not saved: ${body.error || r.status}. Please answer that item again.`);
        continue;
      }
      renderSaveStatus(r ? `server answered ${r.status}` : "the server cannot be reached");
      await new Promise((res) => setTimeout(res, delay));
      delay = Math.min(delay * 2, 4000);
    }
  } finally { S.flushing = false; renderSaveStatus(); }
}

// ---- progress and tabs ------------------------------------------------------------------------
const answered = (list) => list.filter((e) => e.answer).length;
function renderProgress() {
  const np = answered(S.photos), nv = answered(S.videos);
  $("photo-progress").textContent = `${np}/${S.photos.length}`;
  $("video-progress").textContent = `${nv}/${S.videos.length}`;
  $("photo-bar").max = Math.max(1, S.photos.length); $("photo-bar").value = np;
  $("video-bar").max = Math.max(1, S.videos.length); $("video-bar").value = nv;
}
function setMode(mode) {
  S.mode = mode;
  $("photo-view").hidden = mode !== "photo"; $("video-view").hidden = mode !== "video";
  $("tab-photos").setAttribute("aria-selected", String(mode === "photo"));
  $("tab-videos").setAttribute("aria-selected", String(mode === "video"));
  if (mode === "photo") showPhoto(S.pi); else openVideo(S.vi);
}

// ---- photos -------------------------------------------------------------------------------------
function photoEntry(i) {
  const e = S.photos[i];
  if (!e) return null;
  let c = S.photoCache.get(e.id);
  if (!c) {
    const img = new Image();
    img.alt = "Photo to score"; img.draggable = false;
    c = { img, ready: false };
    c.promise = new Promise((res) => { img.onload = () => { img.decode().catch(() => {}).then(() => { c.ready = true; res(); }); }; img.onerror = () => { c.failed = true; S.photoCache.delete(e.id); res(); }; });
    setImageSrc(img, api(`photo/${e.id}`));
    S.photoCache.set(e.id, c);
  }
  return c;
}
function prefetchPhotos(i) {
  for (const k of [i + 1, i + 2, i + 3, i - 1]) photoEntry(k);
  const keep = new Set([i - 1, i, i + 1, i + 2, i + 3].map((k) => S.photos[k]?.id));
  if (S.photoCache.size > 12) for (const id of S.photoCache.keys()) if (!keep.has(id)) S.photoCache.delete(id);
}
const view = { s: 1, x: 0, y: 0 };
function applyView() {
  const img = $("photo-stage").firstElementChild;
  if (img) img.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.s})`;
}
function zoomAt(factor, cx, cy) {
  const s = Math.min(12, Math.max(1, view.s * factor));
  const f = s / view.s;
  view.x = cx - (cx - view.x) * f; view.y = cy - (cy - view.y) * f; view.s = s;
  if (s === 1) { view.x = 0; view.y = 0; }
  applyView();
}
function showPhoto(i, t0) {
  if (!S.photos.length) { $("photo-pos").textContent = "No photos in this archive"; return; }
  S.pi = Math.max(0, Math.min(i, S.photos.length - 1));
  const e = S.photos[S.pi], c = photoEntry(S.pi);
  const wasReady = c.ready;
  S.photoShown = null;   // no answer counts until the rater has seen the photo
  const put = () => {
    if (S.photos[S.pi] !== e) return;
    Object.assign(view, { s: 1, x: 0, y: 0 });
    if (c.failed) {
      const msg = document.createElement("p");
      msg.className = "stage-msg"; msg.textContent = "This photo cannot be shown: mark it unreadable (U), or go back and forth to retry if the server was unreachable.";
      $("photo-stage").replaceChildren(msg);
    } else { $("photo-stage").replaceChildren(c.img); applyView(); }
    S.photoShown = { id: e.id, failed: !!c.failed };
    S.shownAt = performance.now();
    requestAnimationFrame(() => {
      if (t0 !== undefined) { T.timings.push(performance.now() - t0); wasReady ? T.shownPrefetched++ : T.shownCold++; }
      if (T.firstPhotoMs === null) T.firstPhotoMs = performance.now();
    });
  };
  if (c.ready) put(); else { $("photo-stage").replaceChildren(); c.promise.then(put); }
  const n = answered(S.photos);
  $("photo-pos").textContent = `Photo ${S.pi + 1} of ${S.photos.length} · ${n} scored`;
  const a = e.answer;
  for (const b of $("score-table").children) b.setAttribute("aria-pressed", String(!!a && a.score === Number(b.dataset.score)));
  $("btn-unreadable").setAttribute("aria-pressed", String(!!a && !!a.unreadable));
  $("photo-current").textContent = !a ? "" : a.unreadable ? "Your answer: unreadable" : `Your answer: ${a.score}`;
  renderProgress(); prefetchPhotos(S.pi);
}
function answerPhoto(fields) {
  const shown = S.photoShown;
  if (!shown || shown.id !== S.photos[S.pi].id) return;            // still loading: not seen yet
  if (shown.failed && !fields.unreadable) return showError("This photo cannot be shown; it can only be marked unreadable.");
  showError("");
  const t0 = performance.now();
  submit("photo", S.photos[S.pi], fields);
  if (S.pi + 1 < S.photos.length) showPhoto(S.pi + 1, t0);
  else { showPhoto(S.pi); $("photo-current").textContent += " · that was the last photo"; }
}

// ---- videos -------------------------------------------------------------------------------------
const fmt = (t) => (t === null || t === undefined ? "–" : `${t.toFixed(3)} s`);
function metaFor(e) {
  if (!e.meta) e.meta = getJSON(api(`video/${e.id}`));
  return e.meta;
}
async function openVideo(i) {
  if (!S.videos.length) { $("video-pos").textContent = "No videos in this archive"; return; }
  S.vi = Math.max(0, Math.min(i, S.videos.length - 1));
  const e = S.videos[S.vi], t0 = performance.now();
  $("video-pos").textContent = `Video ${S.vi + 1} of ${S.videos.length} · ${answered(S.videos)} marked`;
  $("frame-info").textContent = "Preparing frames…";
  $("video-stage").replaceChildren();
  let meta;
  try { meta = await metaFor(e); } catch (err) { e.meta = null; showError(`This video cannot be shown: ${err.message}. Mark it unusable.`); meta = { frames: 0, t_s: [] }; }
  if (S.videos[S.vi] !== e || S.mode !== "video") return;
  showError("");
  if (S.videos[S.vi + 1]) metaFor(S.videos[S.vi + 1]).catch(() => {});  // server decodes it ahead
  const a = e.answer || {};
  S.video = { e, meta, k: 0, openedAt: t0, frames: new Map(), marks: { press: a.press_frame ?? null, release: a.release_frame ?? null, refill: a.refill_frame ?? null } };
  const site = a.site || localStorage.getItem("mottling-rate-site");
  for (const r of document.querySelectorAll("input[name=site]")) r.checked = r.value === site;
  $("scrubber").max = String(Math.max(0, meta.frames - 1));
  $("video-current").textContent = !e.answer ? "" : a.unusable ? `Saved as unusable: ${a.reason}` : `Saved: CRT ${fmt(a.crt_s)}`;
  S.shownAt = performance.now();
  renderMarks(); showFrame(S.video.marks.release ?? 0); backgroundFrames(S.video);
}
function frameImg(v, k) {
  let f = v.frames.get(k);
  if (!f) {
    const img = new Image(); img.alt = `Frame ${k + 1}`; img.draggable = false;
    f = { img, promise: new Promise((res) => { img.onload = res; img.onerror = res; }) };
    setImageSrc(img, api(`video/${v.e.id}/frame/${k}`));
    v.frames.set(k, f);
  }
  return f;
}
async function backgroundFrames(v) {   // fill the rest so scrubbing is instant, two at a time
  for (let k = 0; k < v.meta.frames; k += 2) {
    if (S.video !== v) return;
    await Promise.all([frameImg(v, k).promise, k + 1 < v.meta.frames ? frameImg(v, k + 1).promise : null]);
  }
}
function showFrame(k) {
  const v = S.video;
  if (!v || !v.meta.frames) return;
  v.k = Math.max(0, Math.min(k, v.meta.frames - 1));
  const f = frameImg(v, v.k), want = v.k;
  for (let j = want + 1; j < want + 6 && j < v.meta.frames; j++) frameImg(v, j);
  const put = () => {
    if (S.video !== v || v.k !== want) return;
    $("video-stage").replaceChildren(f.img);
    // The video's opening is timed when its first frame, whichever the rater has stepped to,
    // is put in the page (a step before frame 0 arrived used to lose the timing; and not at the
    // next animation frame, which headless Chromium can withhold for seconds).
    if (v.openedAt !== undefined) { T.videoOpenMs.push(performance.now() - v.openedAt); v.openedAt = undefined; }
  };
  if (f.img.complete && f.img.naturalWidth) put(); else f.promise.then(put);
  $("scrubber").value = String(v.k);
  $("frame-info").textContent = `frame ${v.k + 1} / ${v.meta.frames} · ${fmt(v.meta.t_s[v.k])}`;
}
function renderMarks() {
  const v = S.video, t = (k) => (k === null ? null : v.meta.t_s[k]);
  $("press-t").textContent = fmt(t(v.marks.press));
  $("release-t").textContent = fmt(t(v.marks.release));
  $("refill-t").textContent = fmt(t(v.marks.refill));
  const ok = v.marks.release !== null && v.marks.refill !== null && v.marks.refill > v.marks.release;
  $("crt-out").textContent = ok ? `CRT ${(t(v.marks.refill) - t(v.marks.release)).toFixed(3)} s` : "CRT –";
  const ticks = [];
  for (const [name, k] of Object.entries(v.marks)) {
    if (k === null || v.meta.frames < 2) continue;
    const s = document.createElement("span");
    s.dataset.mark = name; s.style.left = `${(100 * k) / (v.meta.frames - 1)}%`; s.title = name;
    ticks.push(s);
  }
  $("mark-ticks").replaceChildren(...ticks);
}
function mark(name) { if (S.video && S.video.meta.frames) { S.video.marks[name] = S.video.k; renderMarks(); } }
function chosenSite() { return document.querySelector("input[name=site]:checked")?.value || null; }
function saveVideo() {
  const v = S.video;
  if (!v) return;
  const m = v.marks, site = chosenSite();
  if (!site) return showError("Choose the site (F finger, K knee) before saving.");
  if (m.release === null || m.refill === null) return showError("Mark the release (R) and the frame where the colour is back (C).");
  if (m.refill <= m.release || (m.press !== null && m.press >= m.release)) return showError("The marks are out of order: press, then release, then colour back.");
  showError(""); localStorage.setItem("mottling-rate-site", site);
  submit("video", v.e, { site, press_frame: m.press, release_frame: m.release, refill_frame: m.refill,
    crt_s: v.meta.t_s[m.refill] - v.meta.t_s[m.release] });
  openVideo(S.vi + 1 < S.videos.length ? S.vi + 1 : S.vi);
}
function unusable() {
  const v = S.video;
  if (!v) return;
  const sel = $("unusable-reason").value;
  const reason = sel === "other" ? $("unusable-other").value.trim() || "other" : sel;
  showError("");
  submit("video", v.e, { unusable: true, reason, site: chosenSite(), press_frame: v.marks.press,
    release_frame: v.marks.release, refill_frame: v.marks.refill });
  openVideo(S.vi + 1 < S.videos.length ? S.vi + 1 : S.vi);
}

// ---- input ----------------------------------------------------------------------------------------
function onKey(ev) {
  const tag = ev.target.tagName;
  if (tag === "INPUT" && ev.target.type !== "range" && ev.target.type !== "radio" || tag === "SELECT" || tag === "TEXTAREA") return;
  if (ev.ctrlKey || ev.metaKey || ev.altKey || !S.cfg || $("login").hidden === false) return;
  const key = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
  if (key === "t") { setMode(S.mode === "photo" ? "video" : "photo"); ev.preventDefault(); return; }
  if (S.mode === "photo") {
    if (/^[0-5]$/.test(key)) answerPhoto({ score: Number(key) });
    else if (key === "u") answerPhoto({ unreadable: true });
    else if (key === "ArrowLeft" || key === "Backspace" || key === "b") showPhoto(S.pi - 1);
    else if (key === "ArrowRight" || key === "n") showPhoto(S.pi + 1);
    else if (key === "+" || key === "=") zoomAt(1.25, $("photo-stage").clientWidth / 2, $("photo-stage").clientHeight / 2);
    else if (key === "-") zoomAt(0.8, $("photo-stage").clientWidth / 2, $("photo-stage").clientHeight / 2);
    else if (key === "z") { Object.assign(view, { s: 1, x: 0, y: 0 }); applyView(); }
    else return;
  } else {
    const v = S.video;
    if (key === "ArrowRight" || key === "ArrowLeft") { if (v) showFrame(v.k + (key === "ArrowRight" ? 1 : -1) * (ev.shiftKey ? 10 : 1)); }
    else if (key === "Home") { if (v) showFrame(0); }
    else if (key === "End") { if (v) showFrame(v.meta.frames - 1); }
    else if (key === "p") mark("press");
    else if (key === "r") mark("release");
    else if (key === "c") mark("refill");
    else if (key === "f" || key === "k") { document.querySelector(`input[name=site][value=${key === "f" ? "finger" : "knee"}]`).checked = true; }
    else if (key === "Enter") saveVideo();
    else if (key === "x") unusable();
    else if (key === "b") openVideo(S.vi - 1);
    else if (key === "n") openVideo(S.vi + 1);
    else return;
  }
  ev.preventDefault();
}
function wirePointer() {   // drag to pan, wheel or two fingers to zoom
  const stage = $("photo-stage"), pts = new Map();
  let pinch = null;
  stage.addEventListener("wheel", (ev) => { ev.preventDefault(); const r = stage.getBoundingClientRect(); zoomAt(ev.deltaY < 0 ? 1.15 : 1 / 1.15, ev.clientX - r.left, ev.clientY - r.top); }, { passive: false });
  stage.addEventListener("pointerdown", (ev) => { try { stage.setPointerCapture(ev.pointerId); } catch (e) { /* synthetic or ended pointer */ } pts.set(ev.pointerId, [ev.clientX, ev.clientY]); });
  stage.addEventListener("pointermove", (ev) => {
    const last = pts.get(ev.pointerId);
    if (!last) return;
    pts.set(ev.pointerId, [ev.clientX, ev.clientY]);
    if (pts.size === 2) {
      const [a, b] = [...pts.values()], d = Math.hypot(a[0] - b[0], a[1] - b[1]);
      const r = stage.getBoundingClientRect();
      if (pinch) zoomAt(d / pinch, (a[0] + b[0]) / 2 - r.left, (a[1] + b[1]) / 2 - r.top);
      pinch = d;
    } else if (view.s > 1) { view.x += ev.clientX - last[0]; view.y += ev.clientY - last[1]; applyView(); }
  });
  const up = (ev) => { pts.delete(ev.pointerId); if (pts.size < 2) pinch = null; };
  stage.addEventListener("pointerup", up); stage.addEventListener("pointercancel", up);
}
function wire() {
  const table = $("score-table");
  for (const row of S.cfg.score_table) {
    const b = document.createElement("button");
    b.type = "button"; b.dataset.score = row.score;
    b.innerHTML = `<b><kbd>${row.score}</kbd></b> ${row.name}<small>${row.extent}</small>`;
    b.addEventListener("click", () => answerPhoto({ score: row.score }));
    table.append(b);
  }
  for (const r of [...S.cfg.unusable_reasons]) $("unusable-reason").append(new Option(r, r));
  $("unusable-reason").addEventListener("change", () => { $("unusable-other").hidden = $("unusable-reason").value !== "other"; });
  $("btn-unreadable").addEventListener("click", () => answerPhoto({ unreadable: true }));
  $("photo-prev").addEventListener("click", () => showPhoto(S.pi - 1));
  $("photo-next").addEventListener("click", () => showPhoto(S.pi + 1));
  $("video-prev").addEventListener("click", () => openVideo(S.vi - 1));
  $("video-next").addEventListener("click", () => openVideo(S.vi + 1));
  $("video-save").addEventListener("click", saveVideo);
  $("btn-unusable").addEventListener("click", unusable);
  $("tab-photos").addEventListener("click", () => setMode("photo"));
  $("tab-videos").addEventListener("click", () => setMode("video"));
  $("scrubber").addEventListener("input", () => showFrame(Number($("scrubber").value)));
  for (const b of document.querySelectorAll("[data-step]")) b.addEventListener("click", () => S.video && showFrame(S.video.k + Number(b.dataset.step)));
  for (const b of document.querySelectorAll("[data-mark]")) b.addEventListener("click", () => mark(b.dataset.mark));
  $("switch-rater").addEventListener("click", () => {   // a shared ward machine: next rater
    if (S.outbox.length && !confirm("Some answers are not saved yet; they stay in this browser. Change rater?")) return;
    localStorage.removeItem("mottling-rater"); location.reload();
  });
  document.addEventListener("keydown", onKey);
  wirePointer();
}

async function start() {
  $("rater-name").textContent = `· ${S.rater}`;
  $("switch-rater").hidden = !!S.cfg.fixed_rater;
  S.outbox = JSON.parse(localStorage.getItem(outboxKey()) || "[]");
  const sess = await getJSON(api("session"));
  S.photos = sess.photos; S.videos = sess.videos;
  for (const p of S.outbox) {   // answers given while the server was away count as given
    const e = [...S.photos, ...S.videos].find((x) => x.id === p.id);
    if (e) { const { answer_id, id, rating_ms, ...fields } = p; e.answer = fields; }
  }
  const first = (list) => { const k = list.findIndex((e) => !e.answer); return k < 0 ? Math.max(0, list.length - 1) : k; };
  S.pi = first(S.photos); S.vi = first(S.videos);
  renderSaveStatus(); renderProgress();
  setMode(S.photos.length || !S.videos.length ? "photo" : "video");
  flush();
}
function askForKey(problem) {   // asked once per tab; kept in sessionStorage, never in the URL
  $("key-form").hidden = false; $("key-problem").textContent = problem;
  $("key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem("mottling-api-key", $("key-input").value.trim());
    location.reload();
  }, { once: true });
}
async function boot() {
  try {
    try { S.cfg = await getJSON("/rate/api/config"); } catch (err) {
      if (needsKey(err.status)) return askForKey(S.key ? "That key was not accepted." : "");
      throw err;
    }
    wire();
    S.rater = S.cfg.fixed_rater || localStorage.getItem("mottling-rater");
    if (S.rater) return await start();
    $("login").hidden = false;
    $("login").addEventListener("submit", (ev) => {
      ev.preventDefault();
      S.rater = $("rater-input").value.trim();
      localStorage.setItem("mottling-rater", S.rater);
      $("login").hidden = true;
      start().catch((err) => showError(err.message));
    });
  } catch (err) { showError(`Cannot start: ${err.message}`); }
}
window.addEventListener("online", () => flush());
boot();
