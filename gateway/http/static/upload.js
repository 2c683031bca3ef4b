// The upload page: a small tus 1.0 client over the public API, then a share link.
//
// Why hand-written: the page must run with no build step (`make serve`), and what it needs from tus is
// small: create (POST), send chunks (PATCH, with XMLHttpRequest for upload progress), and ask where to
// resume (HEAD). Each file's upload URL is remembered in localStorage under a fingerprint (endpoint,
// name, size, type, mtime), so a dropped network resumes by itself (retries with backoff) and a closed
// tab resumes when the same file is picked again. Everything user-supplied is shown with textContent.
"use strict";

(() => {
  const root = document.getElementById("uploader");
  if (!root) return;
  const cfg = { mode: root.dataset.mode, endpoint: root.dataset.endpoint,
                secured: root.dataset.secured === "true", maxSize: Number(root.dataset.maxSize) || 0 };
  const CHUNK = 8 * 1024 * 1024;
  const RETRY_DELAYS = [500, 1000, 2000, 4000, 8000, 10000];
  const KEY_STORE = "gateway-api-key";
  const $ = (id) => document.getElementById(id);
  const form = $("upload-form"), input = $("files"), list = $("file-list"), status = $("status");
  const drop = $("dropzone"), startButton = $("start");
  let picked = [];

  class NetworkError extends Error {}
  class ApiError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }

  function apiKey() {
    const field = $("api-key");
    const typed = field ? field.value.trim() : "";
    if (typed) sessionStorage.setItem(KEY_STORE, typed);
    return sessionStorage.getItem(KEY_STORE) || "";
  }

  function headers(extra) {
    const h = Object.assign({ "Tus-Resumable": "1.0.0" }, extra || {});
    const key = cfg.secured ? apiKey() : "";
    if (key) h.Authorization = "Bearer " + key;
    return h;
  }

  function request(method, url, hdrs, body, onProgress) {
    return new Promise((resolve, reject) => {
      const x = new XMLHttpRequest();
      x.open(method, url);
      for (const [k, v] of Object.entries(hdrs)) x.setRequestHeader(k, v);
      if (onProgress) x.upload.onprogress = (e) => onProgress(e.loaded);
      x.onload = () => resolve({ status: x.status, header: (n) => x.getResponseHeader(n), text: x.responseText });
      x.onerror = () => reject(new NetworkError("network error"));
      x.ontimeout = () => reject(new NetworkError("timed out"));
      x.onabort = () => reject(new NetworkError("aborted"));
      x.send(body === undefined ? null : body);
    });
  }

  function apiError(r) {
    let code = "http_" + r.status, message = "the server answered " + r.status;
    try {
      const body = JSON.parse(r.text);
      if (body && body.error) { code = body.error.code || code; message = body.error.message || message; }
    } catch (_) { /* not JSON: keep the status */ }
    if (r.status === 401) message = cfg.secured ? "the API key was refused" : message;
    return new ApiError(r.status, code, message);
  }

  function b64(text) {
    const bytes = new TextEncoder().encode(text);
    let bin = "";
    for (const b of bytes) bin += String.fromCharCode(b);
    return btoa(bin);
  }

  function metadata(pairs) {
    return Object.entries(pairs).filter(([, v]) => v !== undefined && v !== null && v !== "")
      .map(([k, v]) => k + " " + b64(String(v))).join(",");
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const fingerprint = (f) => ["tus", location.origin, cfg.endpoint, f.name, f.size, f.type, f.lastModified].join("|");

  function humanSize(n) {
    const units = ["B", "kB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
    return (i === 0 ? String(n) : n.toFixed(1)) + " " + units[i];
  }

  function render() {
    list.textContent = "";
    for (const item of picked) {
      const li = document.createElement("li");
      const name = document.createElement("span");
      name.className = "file-name"; name.textContent = item.file.name;
      const size = document.createElement("span");
      size.className = "muted"; size.textContent = humanSize(item.file.size);
      const bar = document.createElement("progress");
      bar.max = 100; bar.value = 0; bar.setAttribute("aria-label", "progress of " + item.file.name);
      const state = document.createElement("span");
      state.className = "file-state muted"; state.textContent = "ready";
      li.append(name, size, bar, state);
      item.bar = bar; item.state = state; item.li = li;
      list.appendChild(li);
    }
  }

  function choose(files) {
    picked = Array.from(files).map((file) => ({ file, sent: 0 }));
    render();
    status.textContent = picked.length ? picked.length + " file(s) ready" : "";
  }

  function updateTotal() {
    const total = picked.reduce((s, i) => s + i.file.size, 0);
    const sent = picked.reduce((s, i) => s + i.sent, 0);
    const pct = total ? Math.floor((sent / total) * 100) : 100;
    $("total-progress").value = pct;
    $("total-percent").textContent = pct + " %";
  }

  function progress(item, sent) {
    item.sent = Math.min(sent, item.file.size);
    item.bar.value = item.file.size ? Math.floor((item.sent / item.file.size) * 100) : 100;
    updateTotal();
  }

  function resumed(item, offset) {
    item.state.textContent = "resuming at " + humanSize(offset);
    item.li.dataset.resumedFrom = String(offset);  // where the server said to continue (tests read it)
  }

  async function finishedUpload(url) {
    // An upload finished in an earlier tab: its asset, from GET /files/{id} (no link secret there).
    const r = await request("GET", url, headers());
    if (r.status !== 200) throw apiError(r);
    return { assetId: JSON.parse(r.text).asset.id, token: null };
  }

  async function resumeOffset(url) {
    const r = await request("HEAD", url, headers());
    if (r.status === 200 || r.status === 204) return Number(r.header("Upload-Offset"));
    if (r.status === 404 || r.status === 410 || r.status === 403) return null;  // gone: start again
    throw apiError(r);
  }

  async function create(item, meta) {
    const f = item.file;
    const r = await request("POST", cfg.endpoint, headers({
      "Upload-Length": String(f.size), "Upload-Metadata": metadata(meta),
    }));
    if (r.status !== 201) throw apiError(r);
    const url = new URL(r.header("Location"), location.href).href;
    return { url, done: r.header("Asset-Id") ? { assetId: r.header("Asset-Id"), token: r.header("Asset-Token") } : null };
  }

  async function uploadOne(item, meta) {
    const f = item.file, key = fingerprint(f);
    let url = localStorage.getItem(key), offset = null;
    if (url) {
      try { offset = await resumeOffset(url); } catch (e) { if (!(e instanceof NetworkError)) throw e; }
      if (offset === null) { localStorage.removeItem(key); url = null; }
      else if (offset >= f.size) { localStorage.removeItem(key); progress(item, f.size); return finishedUpload(url); }
      else resumed(item, offset);
    }
    if (!url) {
      const made = await create(item, meta);
      if (made.done) { progress(item, f.size); return made.done; }
      url = made.url; offset = 0;
      localStorage.setItem(key, url);
    }
    progress(item, offset);
    let attempt = 0;
    for (;;) {
      const end = Math.min(offset + CHUNK, f.size);
      const start = offset;
      let recover = false;
      try {
        const r = await request("PATCH", url, headers({
          "Upload-Offset": String(start), "Content-Type": "application/offset+octet-stream",
        }), f.slice(start, end), (loaded) => progress(item, start + loaded));
        if (r.status === 204) {
          offset = Number(r.header("Upload-Offset"));
          attempt = 0;
          progress(item, offset);
          if (r.header("Asset-Id")) {
            localStorage.removeItem(key);
            return { assetId: r.header("Asset-Id"), token: r.header("Asset-Token") };
          }
          continue;
        }
        if (r.status === 409 || r.status === 423 || r.status === 408 || r.status >= 500) recover = true;
        else throw apiError(r);
      } catch (e) {
        if (!(e instanceof NetworkError)) throw e;
        recover = true;
      }
      if (recover) {
        if (attempt >= RETRY_DELAYS.length) {
          throw new Error("the connection keeps failing; pick the same file again later to resume");
        }
        item.state.textContent = "connection lost, retrying…";
        await sleep(RETRY_DELAYS[attempt]);
        attempt += 1;
        try {
          const at = await resumeOffset(url);
          if (at === null) { localStorage.removeItem(key); throw new Error("the upload expired; start again"); }
          offset = at;
          progress(item, offset);
          resumed(item, offset);
          if (offset >= f.size) { localStorage.removeItem(key); return finishedUpload(url); }
        } catch (e) { if (!(e instanceof NetworkError)) throw e; }
      }
    }
  }

  async function json(method, url, body) {
    const r = await request(method, url, headers({ "Content-Type": "application/json" }), JSON.stringify(body));
    if (r.status !== 201) throw apiError(r);
    return JSON.parse(r.text);
  }

  function options() {
    const opts = {};
    const expiry = $("expiry"), max = $("max-downloads"), password = $("password");
    if (expiry && expiry.value) opts.expiry = expiry.value;
    if (max && max.value) opts.max_downloads = Number(max.value);
    if (password && password.value) opts.password = password.value;
    return opts;
  }

  function showLink(label, pageUrl, token) {
    const box = document.createElement("div");
    box.className = "link";
    const title = document.createElement("p");
    title.className = "file-name"; title.textContent = label;
    const row = document.createElement("div");
    row.className = "row";
    const field = document.createElement("input");
    field.type = "text"; field.readOnly = true; field.value = pageUrl;
    field.id = "link-" + document.querySelectorAll("#links .link").length;
    field.className = "share-url"; field.setAttribute("aria-label", "share link for " + label);
    const copy = document.createElement("button");
    copy.type = "button"; copy.className = "copy"; copy.dataset.copy = field.id; copy.textContent = "Copy";
    const open = document.createElement("a");
    open.href = pageUrl; open.textContent = "Open"; open.target = "_blank"; open.rel = "noreferrer";
    row.append(field, copy, open);
    const qr = document.createElement("img");
    qr.className = "qr"; qr.alt = "QR code of the link"; qr.width = 180; qr.height = 180;
    qr.src = "/s/" + encodeURIComponent(token) + "/qr.svg";
    box.append(title, row, qr);
    $("links").appendChild(box);
    $("result").hidden = false;
  }

  function showNote(text) {
    const p = document.createElement("p");
    p.className = "ok"; p.textContent = text;
    $("links").appendChild(p);
    $("result").hidden = false;
  }

  async function run() {
    if (!picked.length) { status.textContent = "Choose one or more files first."; return; }
    if (cfg.secured && !apiKey()) { status.textContent = "Enter your API key first."; $("api-key").focus(); return; }
    const tooBig = picked.find((i) => cfg.maxSize && i.file.size > cfg.maxSize);
    if (tooBig) { status.textContent = tooBig.file.name + " is larger than " + humanSize(cfg.maxSize) + "."; return; }
    startButton.disabled = true;
    status.className = "status";
    status.textContent = "Uploading…";
    $("links").textContent = "";
    const done = [];
    try {
      for (const item of picked) {
        item.state.textContent = "uploading";
        const meta = { filename: item.file.name, filetype: item.file.type || "" };
        const result = await uploadOne(item, meta);
        item.state.textContent = "done";
        done.push({ item, result });
      }
      if (cfg.mode === "link") {
        for (const { item, result } of done) {
          if (result.token) showLink(item.file.name, location.origin + "/s/" + result.token, result.token);
        }
        if (!done.some((d) => d.result.token)) showNote("Uploaded. The owner of this link has your files.");
      } else {
        const opts = options();
        const ids = done.map((d) => d.result.assetId);
        const answer = ids.length === 1
          ? await json("POST", "/asset/" + encodeURIComponent(ids[0]) + "/tokens", opts)
          : await json("POST", "/bundle", Object.assign({ assets: ids, name: "files.zip" }, opts));
        const label = ids.length === 1 ? picked[0].file.name : ids.length + " files (zip)";
        showLink(label, answer.token.page_url, answer.token.token);
      }
      status.textContent = "Upload complete.";
      status.className = "status ok";
    } catch (e) {
      status.className = "status error";
      status.textContent = "Upload failed: " + e.message;
      for (const item of picked) if (item.state.textContent !== "done") item.state.textContent = "stopped";
    } finally {
      startButton.disabled = false;
    }
  }

  input.addEventListener("change", () => choose(input.files));
  form.addEventListener("submit", (e) => { e.preventDefault(); run(); });
  for (const ev of ["dragenter", "dragover"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const ev of ["dragleave", "drop"]) drop.addEventListener(ev, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); if (e.dataTransfer) choose(e.dataTransfer.files); });
  const keyField = $("api-key");
  if (keyField && sessionStorage.getItem(KEY_STORE)) keyField.placeholder = "API key remembered in this tab";
})();
