/* Formatting helpers of the chat panel: texts, times, money. No DOM here. */

/** Replace {name} placeholders of a translated pattern. */
export function fill(pattern, values) {
  return String(pattern).replace(/\{(\w+)\}/g, (all, name) =>
    Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : all,
  );
}

/** Length in characters as the server counts them (code points, not UTF-16 units). */
export function charCount(text) {
  return Array.from(text).length;
}

/** Integer fen as "¥1,234.50", like the server's `yuan` filter. */
export function yuan(fen) {
  const value = Number(fen) || 0;
  const sign = value < 0 ? "-" : "";
  const abs = Math.abs(Math.trunc(value));
  const whole = Math.floor(abs / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const cents = String(abs % 100).padStart(2, "0");
  return `${sign}¥${whole}.${cents}`;
}

const formatters = new Map();

/** An ISO time as "yyyy-MM-dd HH:mm" in the platform's time zone (as the server shows it). */
export function localTime(iso, timeZone) {
  if (!iso) return "";
  // A time without an offset is UTC (the database's convention).
  const text = /(Z|[+-]\d\d:?\d\d)$/.test(iso) ? iso : `${iso}Z`;
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) return "";
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-CA", {
      timeZone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    });
    formatters.set(timeZone, format);
  }
  const parts = {};
  for (const part of format.formatToParts(date)) parts[part.type] = part.value;
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}`;
}
