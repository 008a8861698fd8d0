// Pure display helpers. Decimals arrive as exact strings; the page rounds money to cents and
// keeps the exact string for the hover title.

/** The reporting currencies offered first (the API takes any ISO 4217 fiat code). */
export const CURRENCIES = ["USD", "EUR", "GBP", "CAD", "AUD", "CHF", "JPY", "SEK", "NOK", "DKK",
  "NZD", "SGD"];

const moneyFormats = new Map();

export function moneyText(value, currency = "USD") {
  if (value === null || value === undefined || value === "") return "";
  if (!moneyFormats.has(currency)) {
    moneyFormats.set(currency, new Intl.NumberFormat("en-US", {
      style: "currency", currency, minimumFractionDigits: 2, maximumFractionDigits: 2,
    }));
  }
  const cents = Math.round(Number(value) * 100) / 100;
  return moneyFormats.get(currency).format(cents === 0 ? 0 : cents); // no "-$0.00"
}

const priceFormats = new Map();

/** A unit price: cents from 1 up, six significant digits below (a SHIB price is not $0.00). */
export function priceText(value, currency = "USD") {
  if (value === null || value === undefined || value === "") return "";
  const n = Number(value);
  if (Math.abs(n) >= 1) return moneyText(value, currency);
  if (!priceFormats.has(currency)) {
    priceFormats.set(currency, new Intl.NumberFormat("en-US", {
      style: "currency", currency, maximumSignificantDigits: 6,
    }));
  }
  return priceFormats.get(currency).format(n);
}

/** Quantities: rounded (half up, on the exact decimal string) to at most 8 decimals, trailing
 * zeros dropped; the exact value goes in a title. */
export function amountText(value, places = 8) {
  if (value === null || value === undefined || value === "") return "";
  const text = String(value);
  if (!/^[-+]?\d+(\.\d+)?$/.test(text)) return text; // the API's decimals are plain notation
  const negative = text.startsWith("-");
  const [whole, frac = ""] = text.replace(/^[-+]/, "").split(".");
  let digits = BigInt(whole + frac.padEnd(places, "0").slice(0, places));
  if (frac.length > places && frac[places] >= "5") digits += 1n;
  const padded = digits.toString().padStart(places + 1, "0");
  const int = padded.slice(0, padded.length - places);
  const dec = padded.slice(padded.length - places).replace(/0+$/, "");
  const out = dec ? `${int}.${dec}` : int;
  return negative && /[1-9]/.test(out) ? `-${out}` : out;
}

export function countText(n) {
  return new Intl.NumberFormat("en-US").format(n || 0);
}

export function bytesText(n) {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} kB`;
  return `${n} B`;
}

export function percent(done, total, complete = false) {
  if (complete) return 100;
  if (!total || total <= 0) return 0;
  return Math.floor(Math.min(Math.max(done / total, 0), 1) * 100);
}

export function durationText(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "";
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  return `${m} min ${s} s`;
}

/** Seconds between two ISO timestamps (end: now when missing). */
export function secondsBetween(startIso, endIso) {
  if (!startIso) return null;
  const end = endIso ? Date.parse(endIso) : Date.now();
  return Math.max(0, (end - Date.parse(startIso)) / 1000);
}

/** "2024-03-01 12:00" (UTC), for dense tables; the full time goes in a title. */
export function shortTimeText(iso) {
  return iso ? iso.replace("T", " ").slice(0, 16) : "";
}

export function timeText(iso) {
  if (!iso) return "";
  return iso.replace("T", " ").replace(/(\.\d+)?Z$/, " UTC");
}
