// livernn's control page: draws the show the server describes and sends moves back.
// Messages (JSON) are documented in livernn/web/page.py. No build step, no framework.
"use strict";

const TOKEN = new URLSearchParams(location.search).get("token");
const WS_URL = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws" +
  (TOKEN ? "?token=" + encodeURIComponent(TOKEN) : "");
const COLORS = ["#f0a33a", "#4fbf8f", "#6aa7ff", "#e36fb4", "#c9d15a", "#9a7cff", "#5fd3d3", "#ff7a59"];
const ROLL_SECONDS = 8;     // seconds of history on the piano roll
const HOLD_MS = 400;        // a slider just moved here ignores the server's echo for this long
const SEND_EVERY_MS = 16;   // at most one message per slider per frame (first one at once)
const ROLL_FPS = 30;        // piano-roll redraws per second

const livernn = {
  ws: null, show: null, connected: false,
  widgets: new Map(),        // "voice.param" -> {input, output, spec}
  touched: new Map(),        // "voice.param" -> time of the last local move
  pending: new Map(), timer: null,
  notes: [],                 // {voice, pitch, vel, on, off} in performance.now() ms
  sent: 0, received: 0,

  connect() {
    const ws = new WebSocket(WS_URL);
    this.ws = ws;
    ws.onopen = () => { this.connected = true; setLink(true); };
    ws.onclose = () => {
      this.connected = false; setLink(false);
      setTimeout(() => this.connect(), 1000);
    };
    ws.onmessage = (event) => { this.received++; this.handle(JSON.parse(event.data)); };
  },

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) { this.ws.send(JSON.stringify(message)); this.sent++; }
  },

  // A slider's value, sent at once, then at most once a frame while it keeps moving.
  set(voice, param, value) {
    this.touched.set(voice + "." + param, performance.now());
    this.pending.set(voice + "." + param, {op: "set", voice, param, value});
    if (this.timer === null) {
      this.flush();
      this.timer = setTimeout(() => { this.timer = null; this.flush(); }, SEND_EVERY_MS);
    }
  },
  flush() { for (const message of this.pending.values()) this.send(message); this.pending.clear(); },

  action(action, args) { this.send({op: "action", action, args: args || {}}); },

  handle(message) {
    switch (message.type) {
      case "show": this.show = message; build(message); break;
      case "params": for (const [voice, param, value] of message.changes) update(voice, param, value); break;
      case "tempo": if (this.show) { this.show.bpm = message.bpm; setTempo(message.bpm); } break;
      case "scene": if (this.show) { this.show.scene = message.name; markScene(message.name); } break;
      case "status": status(message); break;
      case "notes": addNotes(message.notes); break;
      case "error": showError(message.message); break;
    }
  },
};
window.livernn = livernn;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function setLink(up) {
  const link = document.getElementById("link");
  link.textContent = up ? "connected" : "reconnecting…";
  link.className = up ? "" : "down";
}

let errorTimer = null;
function showError(text) {
  const box = document.getElementById("error");
  box.textContent = text;
  clearTimeout(errorTimer);
  errorTimer = setTimeout(() => { box.textContent = ""; }, 4000);
}

function format(value, spec) {
  if (spec.kind === "int") return String(Math.round(value));
  if (spec.kind === "float") return Number(value).toFixed(Math.abs(spec.max - spec.min) >= 20 ? 1 : 2);
  return String(value);
}

function voiceColor(name) {
  const names = livernn.show ? Object.keys(livernn.show.voices) : [];
  const index = Math.max(0, names.indexOf(name));
  return COLORS[index % COLORS.length];
}

// -- building the page from a "show" message -------------------------------------------------
function build(show) {
  livernn.widgets.clear();
  setTempo(show.bpm);
  const scenes = document.getElementById("scenes");
  scenes.replaceChildren(...show.scenes.map((name) =>
    el("button", {class: "scene", "data-scene": name, onclick: () => livernn.action("scene", {scene: name})}, name)));
  markScene(show.scene);
  const voices = document.getElementById("voices");
  voices.replaceChildren(...Object.entries(show.voices).map(([name, voice]) => buildVoice(name, voice, show)));
  const legend = document.getElementById("legend");
  legend.replaceChildren(...Object.keys(show.voices).map((name) =>
    el("span", {style: "color:" + voiceColor(name)}, "■ " + name)));
}

function buildVoice(name, voice, show) {
  const models = el("select", {"data-voice": name, "data-role": "swap", title: "swap the model at the next bar",
    onchange: (event) => livernn.action("swap", {voice: name, model: event.target.value, at: "bar"})},
    ...show.models.map((model) => el("option", {value: model}, model)));
  models.value = voice.model;
  const mute = el("button", {"data-voice": name, "data-role": "mute",
    onclick: () => livernn.action(voice_muted(name) ? "unmute" : "mute", {voice: name})}, "mute");
  const solo = el("button", {"data-voice": name, "data-role": "solo",
    onclick: () => livernn.action("solo", {voice: name})}, "solo");
  const head = el("div", {class: "row head"},
    el("h2", {style: "color:" + voiceColor(name)}, name), models, mute, solo,
    el("span", {style: "color:var(--dim);font-size:12px"}, "ch " + voice.channel));
  const card = el("div", {class: "panel voice", "data-voice": name}, head);
  livernn.widgets.set(name + ".mute", {input: mute, spec: show.specs.mute});
  for (const [param, spec] of Object.entries(show.specs)) {
    if (param === "mute") continue;
    card.append(buildParam(name, param, spec, voice.params[param]));
  }
  update(name, "mute", voice.params.mute);
  return card;
}

function buildParam(voice, param, spec, value) {
  const key = voice + "." + param;
  const output = el("output", {}, format(value, spec));
  let input;
  if (spec.kind === "choice") {
    input = el("select", {onchange: (event) => livernn.set(voice, param, event.target.value)},
      ...spec.choices.map((choice) => el("option", {value: choice}, choice)));
  } else {
    const step = spec.kind === "int" ? 1 : (spec.max - spec.min) / 1000;
    input = el("input", {type: "range", min: spec.min, max: spec.max, step,
      oninput: (event) => {
        const number = Number(event.target.value);
        output.textContent = format(number, spec);
        livernn.set(voice, param, spec.kind === "int" ? Math.round(number) : number);
      }});
  }
  input.dataset.voice = voice;
  input.dataset.param = param;
  input.title = spec.doc + " (" + (spec.kind === "choice" ? spec.choices.join(", ") : spec.min + "…" + spec.max) + ")";
  input.value = value;
  livernn.widgets.set(key, {input, output, spec});
  return el("div", {class: "param"}, el("label", {title: input.title}, param), input, output);
}

function voice_muted(name) {
  return Boolean(livernn.show && livernn.show.voices[name] && livernn.show.voices[name].params.mute);
}

// -- moves from anywhere ------------------------------------------------------------------------
function update(voice, param, value) {
  if (livernn.show && livernn.show.voices[voice]) livernn.show.voices[voice].params[param] = value;
  const widget = livernn.widgets.get(voice + "." + param);
  if (!widget) return;
  if (param === "mute") {
    widget.input.classList.toggle("on", Boolean(value));
    widget.input.textContent = value ? "muted" : "mute";
    markSolo();
    return;
  }
  const touched = livernn.touched.get(voice + "." + param) || -Infinity;
  if (performance.now() - touched < HOLD_MS) return;  // the performer's finger is on it
  widget.input.value = value;
  widget.output.textContent = format(value, widget.spec);
}

function markSolo() {
  if (!livernn.show) return;
  const names = Object.keys(livernn.show.voices);
  for (const name of names) {
    const button = document.querySelector(`button[data-role=solo][data-voice="${name}"]`);
    if (!button) continue;
    const alone = names.length > 1 && !voice_muted(name) && names.every((other) => other === name || voice_muted(other));
    button.classList.toggle("on", alone);
  }
}

function setTempo(bpm) {
  const input = document.getElementById("tempo");
  if (document.activeElement !== input) input.value = Math.round(bpm * 10) / 10;
}

function markScene(name) {
  for (const button of document.querySelectorAll("button.scene")) button.classList.toggle("on", button.dataset.scene === name);
}

function status(s) {
  const clock = s.clock.source + (s.clock.peers === null || s.clock.peers === undefined ? "" : `, ${s.clock.peers} peer(s)`);
  const parts = [["", `${Math.round(s.bpm * 10) / 10} BPM`], ["bar", `${s.bar}:${s.beat}`],
    ["", `${s.notes_per_s.toFixed(1)} notes/s`], ["late", s.late], ["open notes", s.open_notes], ["clock", clock]];
  const strip = document.getElementById("status");
  strip.replaceChildren(...parts.map(([label, value]) => el("span", {}, label ? label + " " : "", el("b", {}, String(value)))));
  if (s.not_delivering.length) strip.append(el("span", {style: "color:var(--bad)"}, "NOT DELIVERING: " + s.not_delivering.join(", ")));
  strip.dataset.notesPerS = s.notes_per_s;
  learning(s.learning);
}

// learn(v): a running fine-tune in the strip ("learning lead 12 s", as the prompt's status
// line says it), and how each voice's latest one ended, one line each, until it learns again.
function learning(jobs) {
  const strip = document.getElementById("status");
  for (const job of jobs.filter((j) => j.running)) {
    strip.append(el("span", {class: "learning", title: `${job.voice} -> ${job.model}: ${job.state}, ` +
      `${Math.round(job.seconds)} s of ${Math.round(job.budget)}, step ${job.step}`},
      "learning ", el("b", {}, `${job.voice} ${Math.round(job.seconds)} s`)));
  }
  const ended = jobs.filter((j) => !j.running);
  const box = document.getElementById("learned"), key = JSON.stringify(ended.map((j) => j.message));
  if (box.dataset.key === key) return;  // 4 times a second: the lines change only when a job ends
  box.dataset.key = key;
  box.replaceChildren(...ended.map((j) => el("div", {class: j.state, "data-voice": j.voice}, j.message)));
}

// -- the piano roll ------------------------------------------------------------------------------
function addNotes(notes) {
  const now = performance.now();
  for (const [voice, pitch, vel, onset, length] of notes) {
    const on = now + onset * 1000;
    livernn.notes.push({voice, pitch, vel, on, off: on + length * 1000});
  }
  const cutoff = now - ROLL_SECONDS * 1000;
  if (livernn.notes.length > 2000 || (livernn.notes.length && livernn.notes[0].off < cutoff)) {
    livernn.notes = livernn.notes.filter((note) => note.off >= cutoff).slice(-2000);
  }
}

let lastDraw = 0;
function drawRoll(frameTime) {
  requestAnimationFrame(drawRoll);
  if (frameTime - lastDraw < 1000 / ROLL_FPS) return;  // a phone's battery and the show's CPU come first
  lastDraw = frameTime;
  const canvas = document.getElementById("roll");
  const width = canvas.clientWidth, height = canvas.clientHeight, ratio = window.devicePixelRatio || 1;
  if (canvas.width !== width * ratio || canvas.height !== height * ratio) {
    canvas.width = width * ratio; canvas.height = height * ratio;
  }
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  const now = performance.now(), nowX = width * 0.85, perMs = nowX / (ROLL_SECONDS * 1000);
  let lo = 127, hi = 0;
  for (const note of livernn.notes) { lo = Math.min(lo, note.pitch); hi = Math.max(hi, note.pitch); }
  if (lo > hi) { lo = 48; hi = 84; }
  lo -= 2; hi += 2;
  const rowHeight = height / (hi - lo + 1);
  g.fillStyle = "#1a1d22";
  for (let pitch = lo; pitch <= hi; pitch++) {
    if ([1, 3, 6, 8, 10].includes(((pitch % 12) + 12) % 12)) g.fillRect(0, height - (pitch - lo + 1) * rowHeight, width, rowHeight);
  }
  for (const note of livernn.notes) {
    const x0 = nowX + (note.on - now) * perMs, x1 = nowX + (note.off - now) * perMs;
    if (x1 < 0 || x0 > width) continue;
    g.globalAlpha = 0.35 + 0.65 * (note.vel / 127);
    g.fillStyle = voiceColor(note.voice);
    g.fillRect(x0, height - (note.pitch - lo + 1) * rowHeight, Math.max(2, x1 - x0), Math.max(2, rowHeight - 1));
  }
  g.globalAlpha = 1;
  g.fillStyle = "#e3e6eb";
  g.fillRect(nowX, 0, 1, height);
}

// -- the transport row ---------------------------------------------------------------------------
document.getElementById("panic").addEventListener("click", () => livernn.action("panic"));
document.getElementById("tempo").addEventListener("change", (event) => {
  const bpm = Number(event.target.value);
  if (bpm >= 1 && bpm <= 999) livernn.action("tempo", {bpm});
});
livernn.connect();
requestAnimationFrame(drawRoll);
