/* The chat panel of the case page (templates/cases/_chat.html).
 *
 * Delivery: every message typed goes to the outbox with a client_id, shows as
 * pending, and is sent one at a time (so a user's messages keep their order)
 * until the server acknowledges it; a timeout is retried with backoff (up to
 * MAX_ATTEMPTS while connected), a drop waits for the reconnection, a refusal
 * marks it failed with Retry. On every (re)connection each room is joined
 * again with `after` = the last seq seen without a hole, and the missed
 * messages are put in seq order; seq and id make sure none shows twice.
 */

import { fill, charCount, localTime } from "./format.js";
import { Connection, Disconnected } from "./connection.js";
import { RoomState, Outbox, Drafts } from "./store.js";
import {
  buildMessage,
  buildPending,
  updatePending,
  placeMessage,
  withScroll,
  renderPresence,
  renderTyping,
  setupTabs,
} from "./view.js";
import { Proposals, uploadEvidence, fetchMessages } from "./cards.js";

const MAX_ATTEMPTS = 3;
const TYPING_EVERY_MS = 3000;
const TYPING_SHOWN_MS = 6000;
const READ_DELAY_MS = 400;
const GAP_DELAY_MS = 500;
const RATE_PAUSE_MS = 5000;

function backoff(attempts) {
  return Math.min(8000, 500 * 2 ** attempts) * (0.8 + Math.random() * 0.4);
}

function start(root) {
  const config = JSON.parse(document.getElementById("chat-config").textContent);
  const caseId = config.case_id;
  const strings = config.strings;
  const ctx = {
    me: config.user.id,
    userName: config.user.name,
    relation: config.relation,
    party: config.party,
    caseStatus: config.status,
    strings,
    roles: config.roles,
    actions: config.actions,
    statuses: config.statuses,
    remedies: config.remedies,
    timeZone: config.time_zone,
    evidenceUrl: config.urls.evidence,
    urls: config.urls,
    proposals: config.proposals,
    // A case group's room lives on the group's first case: its payloads carry
    // that case's id.
    groupCaseId: config.group ? config.group.room_case_id : null,
  };
  const conn = new Connection();
  // A form of this page was sent: the browser is about to show its answer (and
  // its flash message); reloading now would replace that navigation.
  let leaving = false;
  document.addEventListener("submit", (event) => {
    if (!event.defaultPrevented) leaving = true;
  });
  function reloadPage() {
    if (!leaving) window.location.reload();
  }
  const outbox = new Outbox(`chat-outbox:${caseId}:${ctx.me}`);
  const drafts = new Drafts(`chat-draft:${caseId}:${ctx.me}:`);
  const proposals = new Proposals(ctx, () => window.location.reload());
  const statusLine = root.querySelector("[data-testid=chat-connection]");
  const rooms = new Map();
  let activeKey = null;

  // Rooms, and the transcript the server rendered --------------------------

  for (const meta of config.rooms) {
    const panel = root.querySelector(`.chat-room[data-room="${meta.key}"]`);
    if (!panel) continue;
    const room = {
      state: new RoomState(meta),
      panel,
      log: panel.querySelector("[data-testid=chat-log]"),
      tab: root.querySelector(`[role=tab][data-room="${meta.key}"]`),
      presence: panel.querySelector("[data-testid=chat-presence]"),
      typingLine: panel.querySelector("[data-testid=chat-typing]"),
      typers: new Map(),
      visible: new Set(),
      readTimer: null,
      gapTimer: null,
      filling: false,
    };
    for (const li of room.log.querySelectorAll("[data-seq]")) {
      room.state.add({ seq: li.dataset.seq, id: li.dataset.id });
    }
    rooms.set(meta.key, room);
    if (!panel.hidden) activeKey = meta.key;
  }
  if (!rooms.size) return;

  // Which messages are on screen (for the read position).
  const readObserver = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      const li = entry.target;
      const room = rooms.get(li.closest(".chat-room").dataset.room);
      if (!room || !li.dataset.seq) continue;
      if (entry.isIntersecting) room.visible.add(li);
      else room.visible.delete(li);
      if (entry.isIntersecting) markRead(room);
    }
  });
  proposals.renderAll(root);

  function keyOf(payload) {
    if (payload.room_key) return payload.room_key;
    const name = payload.room;
    if (name === "caucus") return `caucus:${payload.party || ctx.party}`;
    return name;
  }

  function roomOf(payload) {
    if (!payload) return null;
    const key = keyOf(payload);
    const home = key === "group" ? ctx.groupCaseId : caseId;
    if (home === null || Number(payload.case_id) !== Number(home)) return null;
    return rooms.get(key) || null;
  }

  function pendingNode(room, clientId) {
    for (const li of room.log.querySelectorAll(".chat-pending")) {
      if (li.dataset.clientId === clientId) return li;
    }
    return null;
  }

  // Showing messages ----------------------------------------------------------

  function addMessage(room, message) {
    const authorId = message.author ? message.author.id : null;
    const mine = authorId !== null && authorId !== undefined && Number(authorId) === Number(ctx.me);
    const pending = mine && message.client_id ? pendingNode(room, message.client_id) : null;
    if (room.state.has(message)) {
      // Already shown (acknowledged first, or replayed): only the outbox to tidy.
      if (mine && message.client_id) outbox.remove(message.client_id);
      if (pending) pending.remove();
      return false;
    }
    room.state.add(message);
    const li = buildMessage(message, ctx);
    withScroll(room.log, mine, () => {
      if (pending) pending.remove();
      placeMessage(room.log, li);
    });
    if (mine && message.client_id) outbox.remove(message.client_id);
    if (proposals.note(message)) proposals.renderAll(root);
    if (message.kind === "system") caseMoved(message.data || {});
    if (authorId !== null && authorId !== undefined && room.typers.delete(Number(authorId))) {
      showTyping(room);
    }
    emptyNotice(room);
    readObserver.observe(li);
    countUnread(room);
    return true;
  }

  function emptyNotice(room) {
    const empty = room.panel.querySelector("[data-testid=chat-empty]");
    if (empty) empty.hidden = room.log.childElementCount > 0;
  }

  function addAll(room, messages) {
    const sorted = [...(messages || [])].sort((a, b) => Number(a.seq) - Number(b.seq));
    for (const message of sorted) addMessage(room, message);
  }

  // Holes in the sequence (a broadcast lost between processes, say) are filled
  // from the HTTP transcript.
  function watchGap(room) {
    if (!room.state.joined || !room.state.hasGap() || room.gapTimer) return;
    room.gapTimer = window.setTimeout(() => {
      room.gapTimer = null;
      if (room.state.hasGap()) fillGap(room);
    }, GAP_DELAY_MS);
  }

  async function fillGap(room) {
    if (room.filling) return;
    room.filling = true;
    try {
      let after = room.state.contiguous;
      for (let page = 0; page < 50; page += 1) {
        const body = await fetchMessages(ctx.urls.messages, room.state, after);
        addAll(room, body.items);
        if (body.next === null || body.next === undefined || !(body.items || []).length) break;
        after = body.next;
      }
      room.state.closeGap();
    } catch (exc) {
      // Next (re)join asks again with the same `after`.
    } finally {
      room.filling = false;
    }
  }

  // Connection ------------------------------------------------------------------

  function showConnection(state) {
    root.dataset.state = state;
    statusLine.textContent =
      state === "online" ? strings.connected : state === "offline" ? strings.offline : strings.connecting;
  }

  async function join(room) {
    room.state.joined = false;
    let ack;
    try {
      ack = await conn.request("join_case", { ...room.state.address(caseId), after: room.state.contiguous });
    } catch (exc) {
      if (!(exc instanceof Disconnected)) window.setTimeout(() => conn.connected && join(room), 2000);
      return;
    }
    if (!ack.ok) {
      room.presence.textContent = errorText(ack.error);
      return;
    }
    addAll(room, ack.messages);
    if (ack.more && (ack.messages || []).length) {
      join(room); // more was missed than one answer holds
      return;
    }
    room.state.joined = true;
    if (room.state.hasGap()) fillGap(room);
    if (room.state.key === activeKey) markRead(room);
  }

  conn.on("connect", () => {
    showConnection("online");
    for (const item of outbox.all()) {
      if (item.timer) window.clearTimeout(item.timer);
      item.timer = null;
    }
    for (const room of rooms.values()) join(room);
    pump();
  });
  conn.on("disconnect", () => {
    showConnection(window.navigator.onLine === false ? "offline" : "connecting");
    for (const room of rooms.values()) {
      room.state.joined = false;
      room.typers.clear();
      showTyping(room);
    }
  });
  conn.on("connect_error", () => showConnection("offline"));
  window.addEventListener("offline", () => showConnection("offline"));

  conn.on("message_created", (payload) => {
    const room = roomOf(payload);
    if (!room) return;
    addMessage(room, payload);
    watchGap(room);
  });

  conn.on("presence", (payload) => {
    const room = roomOf(payload);
    if (room) renderPresence(room.presence, payload.online || [], ctx);
  });

  conn.on("typing", (payload) => {
    const room = roomOf(payload);
    const user = payload && payload.user;
    if (!room || !user || Number(user.id) === Number(ctx.me)) return;
    const name = user.name || fill(strings.group_consumer, { reference: payload.case_reference || "?" });
    room.typers.set(Number(user.id), { name, until: Date.now() + TYPING_SHOWN_MS });
    showTyping(room);
    window.setTimeout(() => showTyping(room), TYPING_SHOWN_MS + 50);
  });

  conn.on("case_updated", (payload) => {
    if (!payload || Number(payload.case_id) !== Number(caseId)) return;
    if (payload.status !== ctx.caseStatus) {
      // New status, new buttons: the page is rebuilt; drafts and the outbox
      // are in sessionStorage and come back.
      reloadPage();
      return;
    }
    const due = document.querySelector("[data-testid=case-deadline]");
    if (due && payload.due_at) {
      due.setAttribute("datetime", payload.due_at);
      due.textContent = localTime(payload.due_at, ctx.timeZone);
    }
    const countdown = document.querySelector("[data-testid=countdown]");
    if (countdown && payload.due_at) countdown.dataset.due = payload.due_at;
  });

  // A case event that changes who may write where (a mediator took the case)
  // or the status: the page is rebuilt (drafts and the outbox are kept).
  function caseMoved(data) {
    const membership = ["take", "auto_assign", "reassign"].includes(data.action);
    if (membership || (data.status && data.status !== ctx.caseStatus)) reloadPage();
  }

  function showTyping(room) {
    const now = Date.now();
    for (const [id, typer] of room.typers) if (typer.until <= now) room.typers.delete(id);
    renderTyping(room.typingLine, [...room.typers.values()].map((t) => t.name), ctx);
  }

  // Sending -----------------------------------------------------------------------

  function errorText(error) {
    const code = error && error.code;
    // A field's own message says more than the general one ("invalid input").
    const fields = error && error.fields && typeof error.fields === "object" ? error.fields : {};
    const detail = Object.values(fields).flat().filter((m) => typeof m === "string");
    if (code === "validation" && detail.length) return detail.join(" ");
    if (error && error.message) return error.message;
    if (code === "too_long") return fill(strings.too_long, { max: config.max_length });
    return strings[code] || strings.not_delivered;
  }

  function showPending(item) {
    const room = rooms.get(item.room);
    if (!room) return;
    let li = pendingNode(room, item.client_id);
    if (li) {
      updatePending(li, item, ctx);
      return;
    }
    li = buildPending(item, ctx);
    withScroll(room.log, true, () => room.log.append(li));
    emptyNotice(room);
  }

  function fail(item, text) {
    item.state = "failed";
    item.error = text;
    outbox.save();
    showPending(item);
  }

  function acknowledged(item, ack) {
    const room = rooms.get(item.room);
    outbox.remove(item.client_id);
    if (!room) return;
    const li = pendingNode(room, item.client_id);
    const message = { seq: ack.seq, id: ack.id };
    if (room.state.has(message)) {
      if (li) li.remove(); // the broadcast was first
      return;
    }
    if (ack.message) {
      addMessage(room, ack.message);
      return;
    }
    room.state.add(message);
    if (li) {
      li.classList.remove("chat-pending");
      li.dataset.seq = ack.seq;
      li.dataset.id = ack.id;
      delete li.dataset.state;
      li.querySelector(".chat-state").textContent = "";
      li.remove();
      placeMessage(room.log, li);
      readObserver.observe(li);
    }
    watchGap(room);
  }

  let sending = false;
  let pausedUntil = 0;

  /** Send the oldest pending message; the next one once it is acknowledged. */
  async function pump() {
    if (sending || !conn.connected || Date.now() < pausedUntil) return;
    // The oldest pending message goes first, also when it waits for a retry.
    const item = outbox.all().find((i) => i.state === "pending");
    if (!item || item.timer) return;
    const room = rooms.get(item.room);
    if (!room) {
      fail(item, strings.forbidden);
      pump();
      return;
    }
    sending = true;
    item.attempts += 1;
    const payload = { ...room.state.address(caseId), body: item.body, client_id: item.client_id };
    if (item.evidence_id) payload.evidence_id = item.evidence_id;
    let ack = null;
    try {
      ack = await conn.request("send_message", payload);
    } catch (exc) {
      sending = false;
      if (exc instanceof Disconnected) {
        item.attempts -= 1; // not an attempt: sent again after the reconnection
        return;
      }
      if (item.attempts >= MAX_ATTEMPTS) fail(item, strings.not_delivered);
      else {
        item.timer = window.setTimeout(() => {
          item.timer = null;
          pump();
        }, backoff(item.attempts));
      }
      pump(); // the next one, if this one failed for good
      return;
    }
    sending = false;
    if (ack.ok) acknowledged(item, ack);
    else fail(item, errorText(ack.error));
    if (!ack.ok && ack.error && ack.error.code === "rate_limited") {
      // The next ones would be refused too: give the limit time to pass.
      pausedUntil = Date.now() + RATE_PAUSE_MS;
      window.setTimeout(pump, RATE_PAUSE_MS);
      return;
    }
    pump();
  }

  function queue(roomKey, body, evidenceId) {
    const item = outbox.add({
      room: roomKey,
      body,
      evidence_id: evidenceId || null,
      created_at: new Date().toISOString(),
    });
    showPending(item);
    pump();
  }

  root.addEventListener("click", (event) => {
    const retry = event.target.closest("[data-chat-retry]");
    const discard = event.target.closest("[data-chat-discard]");
    if (retry) {
      const item = outbox.get(retry.dataset.chatRetry);
      if (item) {
        item.state = "pending";
        item.error = null;
        item.attempts = 0;
        outbox.save();
        showPending(item);
        pump();
      }
    } else if (discard) {
      const li = discard.closest("li");
      outbox.remove(discard.dataset.chatDiscard);
      if (li) li.remove();
    }
  });

  // Outbox left by an earlier page: what the transcript shows was delivered.
  for (const item of outbox.all()) {
    const room = rooms.get(item.room);
    const shown = room && room.log.querySelector(`[data-client-id="${CSS.escape(item.client_id)}"][data-seq]`);
    if (shown) outbox.remove(item.client_id);
    else showPending(item);
  }

  // Composers -----------------------------------------------------------------------

  for (const [key, room] of rooms) {
    const form = room.panel.querySelector("[data-testid=chat-composer]");
    if (!form) continue;
    const input = form.querySelector("[data-testid=chat-input]");
    const send = form.querySelector("[data-testid=chat-send]");
    const count = form.querySelector("[data-testid=chat-count]");
    const error = form.querySelector("[data-testid=chat-error]");
    const file = form.querySelector("[data-testid=chat-file]");
    let lastTyping = 0;

    const showError = (text) => {
      error.textContent = text || "";
      error.hidden = !text;
    };
    const refresh = () => {
      const n = charCount(input.value);
      const over = n > config.max_length;
      count.textContent = fill(strings.counter, { count: n, max: config.max_length });
      count.classList.toggle("chat-over", over);
      input.setAttribute("aria-invalid", over ? "true" : "false");
      send.disabled = over || !input.value.trim();
      if (over) showError(fill(strings.too_long, { max: config.max_length }));
      else if (error.dataset.kind === "length") showError("");
      error.dataset.kind = over ? "length" : "";
    };

    input.disabled = false;
    input.value = drafts.get(key);
    refresh();
    input.addEventListener("input", () => {
      drafts.set(key, input.value);
      refresh();
      const now = Date.now();
      if (input.value && now - lastTyping > TYPING_EVERY_MS) {
        lastTyping = now;
        conn.notify("typing", room.state.address(caseId));
      }
    });
    input.addEventListener("keydown", (event) => {
      // Enter sends; Shift+Enter is a new line; Enter that ends an IME
      // composition (Chinese input) only picks the characters.
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const body = input.value;
      if (!body.trim()) {
        showError(strings.empty);
        return;
      }
      if (charCount(body) > config.max_length) {
        showError(fill(strings.too_long, { max: config.max_length }));
        return;
      }
      showError("");
      input.value = "";
      drafts.set(key, "");
      lastTyping = 0;
      refresh();
      queue(key, body, null);
      input.focus();
    });
    if (file) {
      file.addEventListener("change", async () => {
        const chosen = file.files && file.files[0];
        if (!chosen) return;
        showError("");
        const status = fill(strings.uploading, { name: chosen.name });
        room.typingLine.textContent = status;
        try {
          const evidence = await uploadEvidence(ctx.urls.upload, chosen, strings.upload_failed);
          const note = input.value.trim() ? input.value : evidence.name || chosen.name;
          if (input.value.trim()) {
            input.value = "";
            drafts.set(key, "");
            refresh();
          }
          queue(key, note, evidence.id);
        } catch (exc) {
          showError(exc.message || strings.upload_failed);
        } finally {
          if (room.typingLine.textContent === status) room.typingLine.textContent = "";
          file.value = "";
        }
      });
    }
  }

  // Read positions and unread counts ----------------------------------------------

  function countUnread(room) {
    let n = 0;
    for (const li of room.log.querySelectorAll("[data-seq]")) {
      if (Number(li.dataset.seq) > room.state.readSeq && Number(li.dataset.authorId) !== Number(ctx.me)) n += 1;
    }
    const badge = room.tab && room.tab.querySelector("[data-testid=chat-unread]");
    if (!badge) return;
    badge.hidden = n === 0;
    badge.textContent = n ? String(n) : "";
    badge.setAttribute("aria-label", fill(strings.unread, { count: n }));
  }

  function markRead(room) {
    if (room.readTimer) return;
    room.readTimer = window.setTimeout(() => {
      room.readTimer = null;
      if (document.visibilityState !== "visible" || room.state.key !== activeKey) return;
      let seq = 0;
      for (const li of room.visible) seq = Math.max(seq, Number(li.dataset.seq) || 0);
      if (seq <= room.state.readSeq || !conn.connected) return;
      conn
        .request("read", { ...room.state.address(caseId), seq })
        .then((ack) => {
          if (!ack.ok) return;
          room.state.readSeq = Math.max(room.state.readSeq, Number(ack.last_read) || seq);
          countUnread(room);
        })
        .catch(() => {}); // read again when the messages are next on screen
    }, READ_DELAY_MS);
  }

  for (const room of rooms.values()) {
    for (const li of room.log.querySelectorAll("[data-seq]")) readObserver.observe(li);
    countUnread(room);
    room.log.scrollTop = room.log.scrollHeight;
  }
  document.addEventListener("visibilitychange", () => {
    const room = rooms.get(activeKey);
    if (room && document.visibilityState === "visible") markRead(room);
  });

  setupTabs(root, (key) => {
    activeKey = key;
    const room = rooms.get(key);
    if (room) {
      room.log.scrollTop = room.log.scrollHeight;
      markRead(room);
    }
  });

  showConnection("connecting");
  conn.start();
  if (window.navigator.onLine === false) showConnection("offline");
}

const root = document.querySelector("[data-testid=chat]");
if (root && typeof window.io === "function") start(root);
