/* The Socket.IO connection of the panel (namespace /chat, the vendored client).
 *
 * The connection rides on the session cookie. Socket.IO reconnects by itself
 * after a drop; the browser's offline/online events close and reopen it at once
 * (a dead network is otherwise noticed only by the heartbeat). Requests never
 * go into Socket.IO's send buffer: while disconnected they fail at once, and the
 * caller retries after the next `connect`.
 */

export const ACK_TIMEOUT_MS = 6000;

export class Disconnected extends Error {}

export class Connection {
  constructor() {
    this.socket = window.io("/chat", {
      autoConnect: false,
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
      randomizationFactor: 0.3,
    });
    this.onlineListeners = [];
    window.addEventListener("offline", () => {
      if (this.socket.connected || this.socket.active) this.socket.disconnect();
    });
    window.addEventListener("online", () => {
      if (!this.socket.connected) this.socket.connect();
    });
  }

  start() {
    if (window.navigator.onLine !== false) this.socket.connect();
  }

  get connected() {
    return this.socket.connected;
  }

  on(event, handler) {
    this.socket.on(event, handler);
  }

  /** Emit with an acknowledgement; resolve with the ack, reject on timeout or drop. */
  request(event, payload, timeoutMs = ACK_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      if (!this.socket.connected) {
        reject(new Disconnected(event));
        return;
      }
      this.socket.timeout(timeoutMs).emit(event, payload, (err, ack) => {
        if (err) {
          reject(this.socket.connected ? err : new Disconnected(event));
          return;
        }
        resolve(ack || { ok: false, error: { code: "no_answer", message: "" } });
      });
    });
  }

  /** Emit without waiting (typing, read): dropped while disconnected. */
  notify(event, payload) {
    if (this.socket.connected) this.socket.emit(event, payload);
  }
}
