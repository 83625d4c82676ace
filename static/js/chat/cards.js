/* Proposal cards (who accepted, the Accept and Decline buttons) and the calls
 * of the case's HTTP API that the panel makes: lifecycle actions and uploads. */

function csrfToken() {
  const meta = document.querySelector("meta[name=csrf-token]");
  return meta ? meta.getAttribute("content") : "";
}

async function apiError(response, fallback) {
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) return new Error(body.error.message);
  } catch (e) {
    // not JSON
  }
  return new Error(fallback);
}

/** POST one lifecycle action (`{"action": ..., fields}`) to the case's API. */
export async function postAction(url, body, fallback) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: {
      "Content-Type": "application/json",
      Accept: "application/json",
      "X-CSRFToken": csrfToken(),
    },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw await apiError(response, fallback);
  return response.json();
}

/** Upload one evidence file; return the stored evidence (id, name, ...). */
export async function uploadEvidence(url, file, fallback) {
  const form = new FormData();
  form.append("file", file, file.name);
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
    body: form,
  });
  if (!response.ok) throw await apiError(response, fallback);
  return response.json();
}

/** GET a room's messages after a sequence number (to fill a hole). */
export async function fetchMessages(url, room, after) {
  const params = new URLSearchParams({ room: room.room, after: String(after) });
  if (room.party) params.set("party", room.party);
  const response = await fetch(`${url}?${params}`, {
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  });
  if (!response.ok) throw new Error(String(response.status));
  return response.json();
}

/**
 * The state of each proposal, from the page's data and then from the messages
 * that arrive: a new proposal replaces the open one, the system messages of
 * accept_proposal / decline_proposal record each party's answer.
 */
export class Proposals {
  constructor(ctx, onAnswered) {
    this.ctx = ctx;
    this.onAnswered = onAnswered;
    this.states = new Map(Object.entries(ctx.proposals || {}));
  }

  latestOpen() {
    let best = null;
    for (const [id, state] of this.states) {
      if (state.status === "open" && (best === null || Number(id) > Number(best))) best = id;
    }
    return best;
  }

  /** Update the states from a message; return true when something changed. */
  note(message) {
    const data = message.data || {};
    if (message.kind === "proposal" && data.offer_id !== undefined) {
      const id = String(data.offer_id);
      if (this.states.has(id)) return false;
      for (const [other, state] of this.states) {
        if (state.status === "open" && Number(other) < Number(id)) state.status = "lapsed";
      }
      this.states.set(id, {
        status: data.status || "open",
        consumer_accepted: Boolean(data.consumer_accepted_at),
        merchant_accepted: Boolean(data.merchant_accepted_at),
      });
      return true;
    }
    if (message.kind !== "system") return false;
    const id = data.offer_id !== undefined ? String(data.offer_id) : this.latestOpen();
    const state = id ? this.states.get(id) : null;
    if (data.action === "accept_proposal" && state) {
      const party = data.party || (message.role === "consumer" ? "consumer" : "merchant");
      state[`${party}_accepted`] = true;
      if (state.consumer_accepted && state.merchant_accepted) state.status = "accepted";
      return true;
    }
    if (data.action === "decline_proposal" && state) {
      state.status = "rejected";
      return true;
    }
    if (data.status && data.status !== "in_mediation") {
      for (const other of this.states.values()) {
        if (other.status === "open") other.status = "lapsed";
      }
      return true;
    }
    return false;
  }

  /** Show a card's state, and the buttons if this user may answer it now. */
  render(card) {
    const { strings } = this.ctx;
    const state = this.states.get(String(card.dataset.offerId));
    const line = card.querySelector("[data-testid=chat-proposal-state]");
    const box = card.querySelector("[data-testid=chat-proposal-actions]");
    if (!state || !line || !box) return;
    card.dataset.offerStatus = state.status;
    const party = this.ctx.party;
    const parts = [];
    if (state.status === "open") {
      parts.push(strings.state_open);
      if (state.consumer_accepted) parts.push(party === "consumer" ? strings.you_accepted : strings.accepted_by_consumer);
      if (state.merchant_accepted) parts.push(party === "merchant" ? strings.you_accepted : strings.accepted_by_merchant);
    } else {
      parts.push(strings[`state_${state.status}`] || state.status);
    }
    line.textContent = parts.join(" ");
    const mayAnswer =
      party && this.ctx.caseStatus === "in_mediation" && state.status === "open" && !state[`${party}_accepted`];
    if (!mayAnswer) {
      box.replaceChildren();
      return;
    }
    if (box.childElementCount) return; // buttons (and a reason being typed) stay
    this.buildButtons(box);
  }

  renderAll(root) {
    for (const card of root.querySelectorAll("[data-testid=chat-proposal]")) this.render(card);
  }

  buildButtons(box) {
    const { strings } = this.ctx;
    const accept = document.createElement("button");
    accept.type = "button";
    accept.dataset.testid = "chat-accept";
    accept.textContent = strings.accept;
    const decline = document.createElement("button");
    decline.type = "button";
    decline.className = "secondary";
    decline.dataset.testid = "chat-decline";
    decline.textContent = strings.decline;
    decline.setAttribute("aria-expanded", "false");

    const form = document.createElement("form");
    form.className = "chat-decline-form";
    form.hidden = true;
    form.noValidate = true;
    const label = document.createElement("label");
    label.textContent = strings.decline_reason;
    const reason = document.createElement("textarea");
    reason.rows = 2;
    reason.dataset.testid = "chat-decline-reason";
    label.append(reason);
    const confirm = document.createElement("button");
    confirm.type = "submit";
    confirm.className = "secondary";
    confirm.dataset.testid = "chat-decline-confirm";
    confirm.textContent = strings.decline_confirm;
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "link";
    cancel.textContent = strings.cancel;
    form.append(label, confirm, document.createTextNode(" "), cancel);

    const error = document.createElement("p");
    error.className = "error";
    error.setAttribute("role", "alert");
    error.dataset.testid = "chat-action-error";
    error.hidden = true;

    const fail = (message) => {
      error.textContent = message;
      error.hidden = false;
      accept.disabled = false;
      confirm.disabled = false;
    };
    const act = (body) => {
      accept.disabled = true;
      confirm.disabled = true;
      error.hidden = true;
      postAction(this.ctx.urls.actions, body, strings.action_failed)
        .then((answer) => this.onAnswered(answer))
        .catch((exc) => fail(exc.message || strings.action_failed));
    };

    accept.addEventListener("click", () => act({ action: "accept_proposal" }));
    decline.addEventListener("click", () => {
      form.hidden = !form.hidden;
      decline.setAttribute("aria-expanded", form.hidden ? "false" : "true");
      if (!form.hidden) reason.focus();
    });
    const close = () => {
      form.hidden = true;
      decline.setAttribute("aria-expanded", "false");
      decline.focus();
    };
    cancel.addEventListener("click", close);
    form.addEventListener("keydown", (event) => {
      if (event.key === "Escape") close();
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = reason.value.trim();
      if (!text) {
        fail(strings.reason_required);
        reason.focus();
        return;
      }
      act({ action: "decline_proposal", reason: text });
    });
    box.append(accept, document.createTextNode(" "), decline, form, error);
  }
}
