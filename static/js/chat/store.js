/* What the panel knows: each room's messages by sequence, and the outbox.
 *
 * A room remembers every seq and id it shows, so a message that arrives twice
 * (broadcast and replay, or two replays) is shown once. `contiguous` is the
 * highest seq up to which nothing is missing: it is the `after` of a re-join.
 *
 * The outbox holds the messages not yet acknowledged, in sessionStorage, so
 * that they survive a reload of the page; each keeps its client_id for good,
 * which makes the server store it once however often it is sent.
 */

export class RoomState {
  constructor(meta) {
    this.key = meta.key;
    this.room = meta.room;
    this.party = meta.party || null;
    this.mode = meta.mode;
    this.label = meta.label;
    this.contiguous = Number(meta.last_seq) || 0;
    this.maxSeq = this.contiguous;
    this.readSeq = Number(meta.read_seq) || 0;
    this.seqs = new Set();
    this.ids = new Set();
    this.joined = false;
    this.unread = 0;
  }

  /** The socket API's address of this room (`room`, and `party` for a caucus). */
  address(caseId) {
    const out = { case_id: caseId, room: this.room };
    if (this.party) out.party = this.party;
    return out;
  }

  has(message) {
    return this.seqs.has(Number(message.seq)) || this.ids.has(String(message.id));
  }

  /** Record a message; return false when it was known already. */
  add(message) {
    if (this.has(message)) return false;
    const seq = Number(message.seq);
    this.seqs.add(seq);
    this.ids.add(String(message.id));
    if (seq > this.maxSeq) this.maxSeq = seq;
    while (this.seqs.has(this.contiguous + 1)) this.contiguous += 1;
    return true;
  }

  /** Something was seen beyond a hole in the sequence. */
  hasGap() {
    return this.maxSeq > this.contiguous;
  }

  /** The server said there is nothing more up to maxSeq: accept the holes. */
  closeGap() {
    this.contiguous = this.maxSeq;
  }
}

/** Messages waiting for their acknowledgement, kept across reloads of the page. */
export class Outbox {
  constructor(storageKey) {
    this.storageKey = storageKey;
    this.items = new Map();
    let saved = [];
    try {
      saved = JSON.parse(window.sessionStorage.getItem(storageKey) || "[]");
    } catch (e) {
      saved = [];
    }
    for (const item of Array.isArray(saved) ? saved : []) {
      if (item && item.client_id && item.room) {
        this.items.set(item.client_id, { ...item, attempts: 0, inflight: false, timer: null });
      }
    }
  }

  add(fields) {
    const item = {
      client_id: newClientId(),
      state: "pending",
      error: null,
      attempts: 0,
      inflight: false,
      timer: null,
      ...fields,
    };
    this.items.set(item.client_id, item);
    this.save();
    return item;
  }

  get(clientId) {
    return clientId ? this.items.get(clientId) : undefined;
  }

  remove(clientId) {
    const item = this.items.get(clientId);
    if (item && item.timer) window.clearTimeout(item.timer);
    this.items.delete(clientId);
    this.save();
    return item;
  }

  forRoom(key) {
    return [...this.items.values()].filter((item) => item.room === key);
  }

  all() {
    return [...this.items.values()];
  }

  save() {
    const keep = this.all().map(({ client_id, room, body, evidence_id, state, error, created_at }) => ({
      client_id,
      room,
      body,
      evidence_id,
      state,
      error,
      created_at,
    }));
    try {
      if (keep.length) window.sessionStorage.setItem(this.storageKey, JSON.stringify(keep));
      else window.sessionStorage.removeItem(this.storageKey);
    } catch (e) {
      // Storage full or disabled: the outbox still lives for this page.
    }
  }
}

export function newClientId() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") {
    return window.crypto.randomUUID();
  }
  // Non-secure contexts (plain http on another host) have no randomUUID.
  const bytes = window.crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Drafts per room, so that a reload (e.g. when the case changes) keeps them. */
export class Drafts {
  constructor(prefix) {
    this.prefix = prefix;
  }

  get(key) {
    try {
      return window.sessionStorage.getItem(this.prefix + key) || "";
    } catch (e) {
      return "";
    }
  }

  set(key, text) {
    try {
      if (text) window.sessionStorage.setItem(this.prefix + key, text);
      else window.sessionStorage.removeItem(this.prefix + key);
    } catch (e) {
      // ignored: drafts are a convenience
    }
  }
}
