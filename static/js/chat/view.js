/* The panel's DOM: messages (the markup of templates/cases/_chat.html), tabs,
 * presence and typing lines. User text only ever goes through textContent. */

import { fill, localTime, yuan } from "./format.js";

function el(tag, attrs = {}, text = null) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  if (text !== null && text !== undefined) node.textContent = String(text);
  return node;
}

function time(iso, ctx) {
  return el("time", { datetime: iso || "" }, localTime(iso, ctx.timeZone));
}

/** The line of a system message: the action, and the status it led to. */
export function systemText(message, ctx) {
  const data = message.data || {};
  let text = ctx.actions[data.action] || message.body || data.action || "";
  if (data.party) text = `${ctx.roles[data.party] || data.party} · ${text}`;
  if (data.status) text += ` · ${ctx.statuses[data.status] || data.status}`;
  if (data.reason) text += ` — ${data.reason}`;
  return text;
}

function meta(author, role, iso, ctx) {
  const box = el("div", { class: "chat-meta" });
  box.append(
    el("span", { class: "chat-author", "data-testid": "chat-author" }, author || ctx.strings.system),
    document.createTextNode(" "),
    el("span", { class: "chat-role" }, ctx.roles[role] || role || ""),
    document.createTextNode(" "),
    time(iso, ctx),
    document.createTextNode(" "),
    el("span", { class: "chat-state", "data-testid": "chat-state" }),
  );
  return box;
}

function proposalCard(message, ctx) {
  const data = message.data || {};
  const card = el("div", {
    class: "chat-card chat-proposal",
    "data-testid": "chat-proposal",
    "data-offer-id": data.offer_id ?? "",
  });
  card.append(el("div", { class: "chat-card-title" }, ctx.strings.proposal));
  const facts = el("dl", { class: "chat-card-facts" });
  facts.append(
    el("dt", {}, ctx.strings.type),
    el("dd", { "data-testid": "chat-proposal-type" }, ctx.remedies[data.type] || data.type || ""),
    el("dt", {}, ctx.strings.amount),
    el("dd", { "data-testid": "chat-proposal-amount" }, yuan(data.amount)),
    el("dt", {}, ctx.strings.deadline),
    el("dd", { "data-testid": "chat-proposal-deadline" }, data.deadline || ""),
  );
  card.append(
    facts,
    el("p", { class: "chat-body", "data-testid": "chat-body" }, data.text || message.body || ""),
    el("p", { class: "chat-proposal-state", "data-testid": "chat-proposal-state" }),
    el("div", { class: "chat-proposal-actions", "data-testid": "chat-proposal-actions" }),
  );
  return card;
}

function attachmentParts(message, ctx) {
  const data = message.data || {};
  const name = data.name || data.original_name || message.body || "";
  const card = el("div", { class: "chat-card chat-attachment", "data-testid": "chat-attachment" });
  card.append(
    el("span", { class: "chat-card-title" }, ctx.strings.attachment),
    document.createTextNode(" "),
    el(
      "a",
      { href: ctx.evidenceUrl + encodeURIComponent(data.evidence_id ?? data.id ?? ""), "data-testid": "chat-attachment-link" },
      name,
    ),
  );
  if (data.size) {
    card.append(document.createTextNode(" "), el("span", { class: "muted" }, `${(data.size / 1024).toFixed(1)} KB`));
  }
  const parts = [card];
  if (message.body && message.body !== name) {
    parts.push(el("div", { class: "chat-body", "data-testid": "chat-body" }, message.body));
  }
  return parts;
}

/** Who wrote a message: in the group room a consumer has no name, only the
 * reference of their complaint. */
function authorName(message, ctx) {
  const author = message.author || {};
  const data = message.data || {};
  if (author.id !== null && author.id !== undefined && !author.name && data.case_reference) {
    return fill(ctx.strings.group_consumer, { reference: data.case_reference });
  }
  return author.name;
}

/** A stored message (a `message_created` payload) as a list item. */
export function buildMessage(message, ctx) {
  const author = message.author || {};
  const kind = message.kind || "text";
  const mine = author.id !== null && author.id !== undefined && author.id === ctx.me;
  const li = el("li", {
    class: `chat-msg chat-kind-${kind} chat-role-${message.role || "system"}${mine ? " chat-mine" : ""}`,
    "data-testid": "chat-message",
    "data-seq": message.seq,
    "data-id": message.id,
    "data-kind": kind,
    "data-author-id": author.id ?? "",
    "data-client-id": message.client_id || null,
  });
  if (kind === "system") {
    const box = el("div", { class: "chat-system", "data-testid": "chat-system" });
    box.append(
      el("span", { class: "chat-body", "data-testid": "chat-body" }, systemText(message, ctx)),
      document.createTextNode(" "),
      time(message.sent_at, ctx),
    );
    li.append(box);
    return li;
  }
  li.append(meta(authorName(message, ctx), message.role, message.sent_at, ctx));
  if (kind === "proposal") li.append(proposalCard(message, ctx));
  else if (kind === "attachment") li.append(...attachmentParts(message, ctx));
  else li.append(el("div", { class: "chat-body", "data-testid": "chat-body" }, message.body || ""));
  return li;
}

/** A message of the outbox: pending, or failed with Retry and Delete. */
export function buildPending(item, ctx) {
  const li = el("li", {
    class: "chat-msg chat-kind-text chat-mine chat-pending",
    "data-testid": "chat-message",
    "data-client-id": item.client_id,
    "data-author-id": ctx.me,
  });
  li.append(meta(ctx.userName, ctx.relation, item.created_at, ctx));
  li.append(el("div", { class: "chat-body", "data-testid": "chat-body" }, item.body || ""));
  updatePending(li, item, ctx);
  return li;
}

export function updatePending(li, item, ctx) {
  li.dataset.state = item.state;
  li.classList.toggle("chat-failed", item.state === "failed");
  const label = li.querySelector(".chat-state");
  label.textContent = item.state === "failed" ? ctx.strings.failed : ctx.strings.pending;
  let tools = li.querySelector(".chat-retry-box");
  if (item.state !== "failed") {
    if (tools) tools.remove();
    return;
  }
  if (!tools) {
    tools = el("div", { class: "chat-retry-box" });
    tools.append(
      el("span", { class: "error", "data-testid": "chat-failure", role: "alert" }),
      document.createTextNode(" "),
      el("button", { type: "button", class: "secondary", "data-chat-retry": item.client_id, "data-testid": "chat-retry" }, ctx.strings.retry),
      document.createTextNode(" "),
      el("button", { type: "button", class: "link", "data-chat-discard": item.client_id, "data-testid": "chat-discard" }, ctx.strings.discard),
    );
    li.append(tools);
  }
  tools.querySelector("[data-testid=chat-failure]").textContent = item.error || ctx.strings.not_delivered;
}

/** Put a stored message in sequence order (pending ones stay at the end). */
export function placeMessage(log, li) {
  const seq = Number(li.dataset.seq);
  for (const other of log.children) {
    if (other.classList.contains("chat-pending") || Number(other.dataset.seq) > seq) {
      log.insertBefore(li, other);
      return;
    }
  }
  log.append(li);
}

/** Keep the log scrolled to the end if it was there (or for one's own message). */
export function withScroll(log, force, change) {
  const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  change();
  if (atEnd || force) log.scrollTop = log.scrollHeight;
}

export function renderPresence(node, online, ctx) {
  if (!online.length) {
    node.textContent = ctx.strings.nobody_online;
    return;
  }
  const names = online
    .map((p) => {
      const name = p.name || fill(ctx.strings.group_consumer, { reference: p.case_reference || "?" });
      return `${name} (${ctx.roles[p.role] || p.role})`;
    })
    .join(", ");
  node.textContent = fill(ctx.strings.online, { names });
}

export function renderTyping(node, names, ctx) {
  if (!names.length) node.textContent = "";
  else if (names.length === 1) node.textContent = fill(ctx.strings.typing_one, { name: names[0] });
  else node.textContent = fill(ctx.strings.typing_many, { names: names.join(", ") });
}

/** Tabs per the WAI-ARIA pattern: arrows, Home and End move and activate. */
export function setupTabs(root, onSelect) {
  const tabs = [...root.querySelectorAll("[role=tab]")];
  function select(tab, focus) {
    for (const other of tabs) {
      const on = other === tab;
      other.setAttribute("aria-selected", on ? "true" : "false");
      other.tabIndex = on ? 0 : -1;
      document.getElementById(other.getAttribute("aria-controls")).hidden = !on;
    }
    if (focus) tab.focus();
    onSelect(tab.dataset.room);
  }
  for (const tab of tabs) {
    tab.addEventListener("click", () => select(tab, false));
    tab.addEventListener("keydown", (event) => {
      const i = tabs.indexOf(tab);
      let next = null;
      if (event.key === "ArrowRight" || event.key === "ArrowDown") next = tabs[(i + 1) % tabs.length];
      else if (event.key === "ArrowLeft" || event.key === "ArrowUp") next = tabs[(i - 1 + tabs.length) % tabs.length];
      else if (event.key === "Home") next = tabs[0];
      else if (event.key === "End") next = tabs[tabs.length - 1];
      if (next) {
        event.preventDefault();
        select(next, true);
      }
    });
  }
  return (key) => {
    const tab = tabs.find((t) => t.dataset.room === key);
    if (tab) select(tab, false);
  };
}
