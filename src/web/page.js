// threadchat's page: a chat client over WebSocket, and a live view of the
// server's threads, queues and locks. Served as /page.js, compiled into the
// server binary with include_str! (src/web/request.rs); the page's
// Content-Security-Policy runs no inline script, so all of it is here.
//
// Every piece of text from the server is inserted with textContent, never as
// HTML: a line like <img src=x onerror=alert(1)> shows as those characters.
"use strict";
const $ = (id) => document.getElementById(id);
let socket = null, myName = null, wantName = null, retryMs = 500, quitting = false;
// Replies to the page's own /rooms and /who go to the side bar, not the log.
let pendingRooms = 0, pendingWho = 0;
// The side bar is asked for again at most once per REFRESH_MS, however many
// people come and go: a class arriving at once must not spend its pages'
// list budget (docs/PROTOCOL.md, "From a browser").
const REFRESH_MS = 2000;
let lastRefresh = -Infinity, refreshTimer = null;

function colourOf(name) {
  let h = 2166136261;
  for (const c of name) { h = Math.imul(h ^ c.charCodeAt(0), 16777619); }
  return `hsl(${(h >>> 0) % 360}, 60%, 35%)`;
}

// What the server's lines look like (docs/PROTOCOL.md). Names and rooms are
// ASCII letters, digits, - and _, so none of these can match another's
// line; whispers are tried first all the same, so "[dm from mallory]
// admin: ..." is always a whisper from mallory.
const NAME = "[A-Za-z0-9_-]{1,24}", ROOM = "[A-Za-z0-9_-]{1,32}";
const DM = new RegExp(`^\\[dm (from|to) (${NAME})\\] (.*)$`);
const CHAT = new RegExp(`^\\[(${ROOM})\\] (${NAME}): (.*)$`);
const ACTION = new RegExp(`^\\[(${ROOM})\\] \\* (${NAME}) (.*)$`);

function nameNode(name) {
  const who = document.createElement("b");
  who.textContent = name;
  who.style.color = colourOf(name);
  return who;
}

// One line of the log: what the page draws around it, then the line's own
// text in a <bdi class="text">, isolated (page.css says why).
function lineNode(text) {
  const div = document.createElement("div");
  const body = document.createElement("bdi");
  body.className = "text";
  let m;
  if ((m = DM.exec(text))) {
    div.className = "dm";
    div.append(`[dm ${m[1]} `, nameNode(m[2]), "] ");
    body.textContent = m[3];
  } else if ((m = CHAT.exec(text))) {
    div.className = "chat";
    div.append(`[${m[1]}] `, nameNode(m[2]), ": ");
    body.textContent = m[3];
  } else if ((m = ACTION.exec(text))) {
    div.className = "action";
    div.append(`[${m[1]}] * `, nameNode(m[2]), " ");
    body.textContent = m[3];
  } else {
    if (text.startsWith("! ")) div.className = "error";
    else if (text.startsWith("* ")) div.className = "notice";
    body.textContent = text;
  }
  div.append(body);
  return div;
}

function append(text) {
  const log = $("log");
  const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  log.append(lineNode(text));
  while (log.childElementCount > 2000) log.firstElementChild.remove();
  if (atBottom) log.scrollTop = log.scrollHeight;
}

function setStatus(text, down) {
  $("status").textContent = text;
  $("status").className = down ? "down" : "";
}

function list(ul, items, onClick) {
  ul.replaceChildren(...items.map((item) => {
    const li = document.createElement("li");
    if (onClick) {
      const b = document.createElement("button");
      b.textContent = item;
      b.onclick = () => onClick(item);
      li.append(b);
    } else {
      li.textContent = item;
    }
    return li;
  }));
}

function refreshSidebar() {
  if (!socket || socket.readyState !== WebSocket.OPEN || !myName) return;
  lastRefresh = performance.now();
  pendingRooms++; socket.send("/rooms");
  pendingWho++; socket.send("/who");
}

// Asks for the side bar now if it has not been asked for in REFRESH_MS,
// or else once that time is up: at most one refresh per REFRESH_MS, and the
// last comes after the last change, so the side bar ends up right.
function refreshSoon() {
  if (refreshTimer !== null) return;  // the one due will see this change too
  const wait = Math.max(0, lastRefresh + REFRESH_MS - performance.now());
  refreshTimer = setTimeout(() => { refreshTimer = null; refreshSidebar(); }, wait);
}

function onLine(text) {
  let m;
  if (text.startsWith("* trace: ")) showTrace(text.slice("* trace: ".length));
  if (pendingRooms > 0 && (m = /^\* rooms \(\d+\): (.*)$/.exec(text))) {
    pendingRooms--;
    list($("rooms"), m[1].split(", "), (entry) => send("/join " + entry.replace(/ \(\d+\)$/, "")));
    return;
  }
  if (pendingWho > 0 && (m = /^\* in #(\S+) \(\d+\): (.*)$/.exec(text))) {
    pendingWho--;
    $("room").textContent = "#" + m[1];
    list($("who"), m[2] ? m[2].split(", ") : []);
    return;
  }
  if (text.startsWith("* choose a name")) {
    if (wantName) { socket.send(wantName); } else { $("naming").classList.add("open"); $("name").focus(); }
    return;
  }
  if ((m = /^\* welcome (\S+)! you are in (\S+);/.exec(text))) {
    myName = m[1];
    $("naming").classList.remove("open");
    setStatus("connected as " + myName, false);
    $("room").textContent = "#" + m[2];
    refreshSoon();
  }
  if (!myName && text.startsWith("! ")) {
    // A refused name: ask again, with the reason.
    wantName = null;
    $("name-error").textContent = text.slice(2);
    $("naming").classList.add("open");
  }
  if ((m = /^\* you are now (\S+)$/.exec(text))) { myName = m[1]; wantName = m[1]; setStatus("connected as " + myName, false); }
  // The room header at once, so that what is said next is shown in it.
  if ((m = /^\* you joined #(\S+);/.exec(text))) $("room").textContent = "#" + m[1];
  if (/^\* (you joined #|you are now |\S+ joined$|\S+ left$|\S+ is now known as )/.test(text)) refreshSoon();
  append(text);
}

function send(text) {
  if (!socket || socket.readyState !== WebSocket.OPEN) { append("! not connected"); return; }
  if (text === "/quit") quitting = true;
  socket.send(text);
  // The server does not echo a line to its sender; show it as others see it.
  const room = $("room").textContent.replace(/^#/, "") || "lobby";
  if (myName && !text.startsWith("/")) append(`[${room}] ${myName}: ${text}`);
  else if (myName && text.startsWith("//")) append(`[${room}] ${myName}: ${text.slice(1)}`);
}

function connect() {
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
  socket = new WebSocket(url);
  socket.onopen = () => { retryMs = 500; pendingRooms = pendingWho = 0; setStatus("connected", false); };
  socket.onmessage = (event) => onLine(event.data);
  socket.onclose = (event) => {
    myName = null;
    if (quitting) { setStatus("you left; reload to come back", true); return; }
    setStatus(`disconnected (${event.code}); trying again in ${(retryMs / 1000).toFixed(1)} s`, true);
    append(`* disconnected from the server (close ${event.code}); reconnecting…`);
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 15000);
  };
}

$("name-form").onsubmit = (event) => {
  event.preventDefault();
  wantName = $("name").value.trim();
  $("name-error").textContent = "";
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(wantName);
};
$("say").onsubmit = (event) => {
  event.preventDefault();
  const text = $("line").value;
  if (text.trim() === "") return;
  send(text);
  $("line").value = "";
};

// ---- One line's journey (/trace), as the server tells it. ----
// After "your next line will be timed", the next trace line names the
// line; then come "STEP: +N µs" lines, and the total.
let traceTitleDue = false;
function showTrace(text) {
  const journey = $("journey"), title = $("journey-title");
  if (text.startsWith("your next line")) {
    journey.replaceChildren();
    title.textContent = "say something: your next line is traced";
    traceTitleDue = true;
    return;
  }
  if (traceTitleDue) {
    traceTitleDue = false;
    title.textContent = text;
    return;
  }
  const li = document.createElement("li");
  li.textContent = text;
  if (/ µs in all/.test(text)) li.className = "total";
  journey.append(li);
}
$("trace").onclick = () => send("/trace");

// ---- The live view: /stats.json every second, drawn by hand. ----

// The board: each long-lived thread by name, then each client role's
// threads one cell each (up to cells_max), then how many in each state.
function cell(state, title, text) {
  const span = document.createElement("span");
  span.className = `cell s-${state}` + (text ? " named" : "");
  span.title = title;
  if (text) span.textContent = text;
  return span;
}

function drawBoard(board) {
  const describe = (state) => board.states[state] || state;
  const named = document.createElement("div");
  named.className = "role";
  for (const t of board.threads) {
    const holds = t.holds.length ? `; holds ${t.holds.map((l) => board.locks[l]).join(" and ")}` : "";
    named.append(cell(t.state, `${t.name}: ${describe(t.state)}${holds}`, t.name));
  }
  const rowsOf = Object.entries(board.roles).map(([role, r]) => {
    const row = document.createElement("div");
    row.className = "role";
    row.dataset.role = role;
    const label = document.createElement("span");
    label.className = "label";
    const counts = Object.entries(r.by_state).filter(([, n]) => n > 0).map(([s, n]) => `${n} ${s}`);
    const more = r.count > r.cells.length ? `, ${r.count - r.cells.length} not drawn` : "";
    label.textContent = `${role}: ${r.count}${counts.length ? " (" + counts.join(", ") + ")" : ""}${more}`;
    row.append(label, ...r.cells.map((state) => cell(state, `${role}: ${describe(state)}`)));
    return row;
  });
  $("board").replaceChildren(named, ...rowsOf);
  if (!$("board-legend").childElementCount) {
    $("board-legend").append(...Object.entries(board.states).flatMap(([state, text]) =>
      [cell(state, text), document.createTextNode(text)]));
  }
}

function rows(table, entries) {
  table.replaceChildren(...entries.map(([label, value]) => {
    const tr = document.createElement("tr");
    const a = document.createElement("td"); a.textContent = label;
    const b = document.createElement("td"); b.textContent = String(value); b.className = "n";
    tr.append(a, b);
    return tr;
  }));
}

// The chart: the server keeps the last minutes, a sample a second
// (stats.history), so a page opened after a flood still shows it.
function draw(history) {
  const canvas = $("chart"), g = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  g.clearRect(0, 0, w, h);
  const samples = history.samples.map(([, i, o, d, r]) => ({ in: i, out: o, dropped: d, refused: r }));
  const max = Math.max(1, ...samples.map((p) => Math.max(p.in, p.out, p.dropped, p.refused)));
  const series = [["in", "#222"], ["out", "#1565c0"], ["dropped", "#c62828"], ["refused", "#ef6c00"]];
  // The newest sample at the right edge.
  const from = history.kept - samples.length;
  for (const [key, colour] of series) {
    g.strokeStyle = colour; g.beginPath();
    samples.forEach((p, i) => {
      const x = ((from + i) / (history.kept - 1)) * (w - 2) + 1, y = h - 2 - (p[key] / max) * (h - 14);
      if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke();
  }
  g.fillStyle = "#777"; g.font = "10px sans-serif"; g.fillText(`max ${max.toFixed(0)}/s`, 4, 10);
}

async function poll() {
  try {
    const stats = await (await fetch("/stats.json", { cache: "no-store" })).json();
    rows($("threads"), Object.entries(stats.threads).map(([role, n]) => [role, n]));
    rows($("locks"), Object.entries(stats.locks).flatMap(([lock, u]) => [
      [`${lock}: taken`, u.acquisitions], [`${lock}: waited`, u.contended], [`${lock}: wait µs`, u.wait_us]]));
    rows($("queues"), [["events waiting", stats.events_depth], ["online", stats.online],
      ["connections", stats.connections], ["rooms", stats.rooms],
      ["connections refused", stats.refused], ["lines refused", stats.lines_refused],
      ...stats.deepest_backlogs.map((b) => [`backlog of ${b.name}`, `${b.bytes} B`])]);
    drawBoard(stats.board);
    draw(stats.history);
  } catch (e) { /* the server is away; the chat says so */ }
}

connect();
setInterval(poll, 1000);
setInterval(refreshSoon, 5000);  // counts in other rooms change unannounced
poll();
