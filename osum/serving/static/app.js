// The osum web page: choose or record a clip, pick tasks, POST /v1/understand, show the parsed results.
// Server text is always inserted with textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { audio: null, name: "clip.wav", auth: false };

function headers() {
  const key = $("api-key").value.trim();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function errorMessage(resp) {
  try {
    const body = await resp.json();
    if (body && body.error && body.error.message) return `${resp.status}: ${body.error.message}`;
  } catch (_) { /* not JSON */ }
  return `${resp.status} ${resp.statusText}`;
}

function setAudio(blob, name) {
  state.audio = blob;
  state.name = name;
  const player = $("player");
  if (player.src) URL.revokeObjectURL(player.src);
  player.src = URL.createObjectURL(blob);
  player.hidden = false;
  $("run").disabled = false;
  showError("");
}

// ------------------------------------------------------------------------------------------ model and tasks

async function loadModel() {
  try {
    const health = await (await fetch("/healthz")).json();
    state.auth = health.auth_required;
    $("key-row").hidden = !state.auth;
    $("model").textContent = `model: ${health.model}`;
    const resp = await fetch("/v1/models", { headers: headers() });
    if (!resp.ok) {
      showError(state.auth ? `${await errorMessage(resp)} (enter the API key)` : await errorMessage(resp));
      return;
    }
    const card = (await resp.json()).data[0];
    const box = $("tasks");
    box.querySelectorAll("label").forEach((el) => el.remove());
    for (const task of card.osum.tasks) {
      const label = document.createElement("label");
      label.className = "task";
      label.title = task.title;
      const input = document.createElement("input");
      input.type = "checkbox";
      input.name = "task";
      input.value = task.name;
      input.id = `task-${task.name}`;
      input.checked = task.name === "asr";
      label.append(input, ` ${task.name}`);
      box.append(label);
    }
    showError("");
  } catch (err) {
    showError(`cannot reach the server: ${err}`);
  }
}

// ---------------------------------------------------------------------------------------------- recording

// MediaRecorder gives webm/opus, which the server's decoder cannot read: capture PCM and write a WAV instead.
let rec = null;

async function startRecording() {
  showError("");
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const ctx = new AudioContext();
    const source = ctx.createMediaStreamSource(stream);
    const node = ctx.createScriptProcessor(4096, 1, 1);
    const chunks = [];
    node.onaudioprocess = (e) => chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
    source.connect(node);
    node.connect(ctx.destination);
    rec = { stream, ctx, node, source, chunks };
    $("record-start").disabled = true;
    $("record-stop").disabled = false;
    $("record-state").textContent = "recording…";
  } catch (err) {
    showError(`cannot record: ${err.message || err}`);
  }
}

function stopRecording() {
  if (!rec) return;
  rec.source.disconnect();
  rec.node.disconnect();
  rec.stream.getTracks().forEach((t) => t.stop());
  const rate = rec.ctx.sampleRate;
  rec.ctx.close();
  const n = rec.chunks.reduce((sum, c) => sum + c.length, 0);
  const samples = new Float32Array(n);
  let offset = 0;
  for (const c of rec.chunks) { samples.set(c, offset); offset += c.length; }
  rec = null;
  $("record-start").disabled = false;
  $("record-stop").disabled = true;
  $("record-state").textContent = `${(n / rate).toFixed(1)} s recorded`;
  setAudio(wavBlob(samples, rate), "recording.wav");
}

function wavBlob(samples, rate) {
  // 16-bit PCM mono WAV: 44-byte header, then little-endian samples
  const buffer = new ArrayBuffer(44 + samples.length * 2);
  const v = new DataView(buffer);
  const text = (at, s) => { for (let i = 0; i < s.length; i++) v.setUint8(at + i, s.charCodeAt(i)); };
  text(0, "RIFF"); v.setUint32(4, 36 + samples.length * 2, true); text(8, "WAVE");
  text(12, "fmt "); v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true);
  v.setUint32(24, rate, true); v.setUint32(28, rate * 2, true); v.setUint16(32, 2, true); v.setUint16(34, 16, true);
  text(36, "data"); v.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    v.setInt16(44 + i * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
  }
  return new Blob([buffer], { type: "audio/wav" });
}

// -------------------------------------------------------------------------------------------------- run

async function run() {
  const tasks = [...document.querySelectorAll("input[name=task]:checked")].map((el) => el.value);
  if (!state.audio) return showError("choose or record a clip first");
  if (!tasks.length) return showError("tick at least one task");
  const form = new FormData();
  form.append("file", state.audio, state.name);
  form.append("tasks", tasks.join(","));
  const prompt = $("prompt").value.trim();
  if (prompt) form.append("prompt", prompt);
  showError("");
  $("run").disabled = true;
  $("status").textContent = "working…";
  document.body.classList.add("busy");
  try {
    const resp = await fetch("/v1/understand", { method: "POST", body: form, headers: headers() });
    if (!resp.ok) {
      $("results").hidden = true;
      showError(await errorMessage(resp));
      $("status").textContent = "";
      return;
    }
    const body = await resp.json();
    render(body);
    $("status").textContent = `${body.duration.toFixed(1)} s of audio, answered in ${(body.processing_ms / 1000).toFixed(2)} s`;
  } catch (err) {
    showError(`request failed: ${err}`);
    $("status").textContent = "";
  } finally {
    $("run").disabled = false;
    document.body.classList.remove("busy");
  }
}

function render(body) {
  const results = Object.values(body.results);
  const main = body.results.asr || results.find((r) => r.transcript !== null);
  $("transcript").textContent = main && main.transcript ? main.transcript : "(no transcript)";

  const chat = results.find((r) => r.answer !== null);
  $("answer-box").hidden = !chat;
  $("answer").textContent = chat ? chat.answer : "";

  const labels = $("labels");
  labels.replaceChildren();
  for (const r of results) {
    for (const [field, value] of Object.entries(r.labels)) {
      const li = document.createElement("li");
      li.textContent = `${r.task}: ${field} = ${value === null ? "(none)" : value}`;
      labels.append(li);
    }
  }
  if (!labels.children.length) {
    const li = document.createElement("li");
    li.textContent = "(no label tasks asked)";
    labels.append(li);
  }

  const timed = results.find((r) => r.words && r.words.length);
  const tbody = $("words").querySelector("tbody");
  tbody.replaceChildren();
  $("words-box").hidden = !timed;
  if (timed) {
    for (const w of timed.words) {
      const tr = document.createElement("tr");
      for (const cell of [w.word, w.start.toFixed(2), w.end.toFixed(2)]) {
        const td = document.createElement("td");
        td.textContent = cell;
        tr.append(td);
      }
      tbody.append(tr);
    }
  }

  const raw = $("raw");
  raw.replaceChildren();
  for (const r of results) {
    const dt = document.createElement("dt");
    dt.textContent = r.task;
    const dd = document.createElement("dd");
    dd.textContent = r.raw;
    raw.append(dt, dd);
  }
  $("results").hidden = false;
}

// ---------------------------------------------------------------------------------------------------- wiring

$("audio-file").addEventListener("change", (e) => {
  const file = e.target.files[0];
  if (file) setAudio(file, file.name);
});
$("record-start").addEventListener("click", startRecording);
$("record-stop").addEventListener("click", stopRecording);
$("run").addEventListener("click", run);
$("api-key").value = localStorage.getItem("osum-api-key") || "";
$("api-key").addEventListener("change", () => {
  localStorage.setItem("osum-api-key", $("api-key").value.trim());
  loadModel();
});
if (!navigator.mediaDevices || !window.AudioContext) {
  $("record-start").disabled = true;
  $("record-state").textContent = "recording needs a secure context (https or localhost)";
}
loadModel();
