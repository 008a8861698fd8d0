// Pure helpers of the review-and-correct screens: the POST /v1/corrections bodies built from what
// a form holds, the actions a transaction offers, exact decimal sums (the lots of a disposal add
// up to its line), UK-or-calendar tax year bounds. No DOM, no fetch: each is a plain function.

/** What each correction kind is called on a button. */
export const ACTION_LABELS = {
  cost_basis: "Enter cost basis",
  mark_transfer: "Mark as transfer",
  unmark_transfer: "Unmark transfer",
  ignore: "Ignore",
  unignore: "Un-ignore",
  edit: "Edit",
  delete_added: "Delete (added by hand)",
  rename_wallet: "Rename wallet",
};

/** The kinds of the audit list, as a person reads them. */
export const KIND_NAMES = {
  edit: "edit", cost_basis: "cost basis", ignore: "ignore", mark_transfer: "mark transfer",
  unmark_transfer: "unmark transfer", add: "added by hand", delete_added: "delete added",
  delete_upload: "delete upload", rename_wallet: "rename wallet", undo: "undo",
};

/** A review action as the API sends it (a kind's name, or {kind, ...} that may carry the
 * suggested counterpart of a transfer) -> {kind, counterpart} (counterpart: a tx_id or null). */
export function actionOf(action) {
  if (typeof action === "string") return { kind: action, counterpart: null };
  const kind = action.kind || action.name || action.action;
  const counterpart = action.counterpart_tx_id || action.suggested_tx_id
    || action.counterpart || action.suggested || null;
  return { kind, counterpart: typeof counterpart === "string" ? counterpart : null };
}

const has = (flags, ...names) => names.some((n) => (flags || []).includes(n));

/**
 * The ids of the transactions added by hand: the audit list names each `add` correction's row
 * (change.tx_id); undone ones are gone from the history.
 */
export function handAdded(corrections) {
  return new Set((corrections || []).filter((c) => c.kind === "add" && !c.undone)
    .map((c) => c.change?.tx_id).filter(Boolean));
}

/** A transaction added by hand (only those can be deleted; uploaded ones are ignored). */
export const isAddedByHand = (tx, added = new Set()) => added.has(tx.tx_id);

export const isIgnored = (tx) => tx.ignored === true || has(tx.flags, "ignored");

/** One leg of a transfer the engine matched (or one the user marked): flagged `transfer`. */
export const isMatchedTransfer = (tx) => has(tx.flags, "transfer");

/** The asset and amount a transfer moves: a withdrawal sends, a deposit receives. */
export function movedOf(tx) {
  if (tx.type === "withdrawal") return { asset: tx.sent_asset, amount: tx.sent_amount };
  if (tx.type === "deposit") return { asset: tx.received_asset, amount: tx.received_amount };
  return { asset: tx.asset || tx.received_asset || tx.sent_asset,
    amount: tx.amount || tx.received_amount || tx.sent_amount };
}

/** The actions a row of the transactions table offers, in the order shown. */
export function transactionActions(tx, added) {
  const out = ["edit", isIgnored(tx) ? "unignore" : "ignore"];
  if (tx.type === "deposit") out.push("cost_basis");
  if (tx.type === "deposit" || tx.type === "withdrawal") {
    out.push(isMatchedTransfer(tx) ? "unmark_transfer" : "mark_transfer");
  }
  if (isAddedByHand(tx, added)) out.push("delete_added");
  return out;
}

const trimmed = (v) => (typeof v === "string" ? v.trim() : v);
const blank = (v) => v === undefined || v === null || trimmed(v) === "";

/** A decimal as the user typed it ("1,234.50" -> "1234.50"); the API checks the rest. */
export const decimalInput = (v) => (blank(v) ? null : trimmed(String(v)).replace(/[,\s]/g, ""));

/** "2024-03-01" and "14:05" (UTC) -> "2024-03-01T14:05:00Z" (null without a date). */
export function utcMoment(day, clock) {
  if (blank(day)) return null;
  const hm = blank(clock) ? "00:00" : trimmed(clock);
  return `${trimmed(day)}T${hm.length === 5 ? `${hm}:00` : hm}Z`;
}

/**
 * The POST /v1/corrections body of `kind` for transaction `tx` from a form's `values`.
 * edit sends only what changed (null keeps a field); mark_transfer and unmark_transfer put the
 * withdrawal and the deposit in their places whichever of the two the form started from;
 * rename_wallet renames `tx.wallet` (the wallet's form passes `{ wallet }`).
 */
export function correctionBody(kind, tx, values = {}) {
  switch (kind) {
    case "cost_basis":
      return { kind, tx_id: tx.tx_id, cost_basis: decimalInput(values.cost_basis),
        currency: trimmed(values.currency) || null };
    case "ignore":
      return { kind, tx_id: tx.tx_id, ignored: true };
    case "unignore":
      return { kind: "ignore", tx_id: tx.tx_id, ignored: false };
    case "delete_added":
      return { kind, tx_id: tx.tx_id };
    case "mark_transfer":
    case "unmark_transfer": {
      const other = trimmed(values.counterpart) || null;
      return tx.type === "deposit"
        ? { kind, withdrawal_tx_id: other, deposit_tx_id: tx.tx_id }
        : { kind, withdrawal_tx_id: tx.tx_id, deposit_tx_id: other };
    }
    case "rename_wallet":
      return { kind, old: tx.wallet, new: trimmed(values.new) || null };
    case "edit": {
      const body = { kind, tx_id: tx.tx_id };
      if (!blank(values.type) && values.type !== tx.type) body.type = values.type;
      if (values.label !== undefined && trimmed(values.label) !== (tx.label || "")) {
        body.label = trimmed(values.label);
      }
      if (!blank(values.fiat_value)) {
        body.fiat_value = decimalInput(values.fiat_value);
        body.fiat_currency = trimmed(values.fiat_currency) || null;
      }
      return body;
    }
    case "add": {
      const body = { kind, wallet: trimmed(values.wallet) || null,
        timestamp: utcMoment(values.day, values.clock), type: values.type || null };
      for (const key of ["label", "description", "sent_asset", "received_asset", "fee_asset"]) {
        if (!blank(values[key])) body[key] = trimmed(values[key]);
      }
      for (const key of ["sent_amount", "received_amount", "fee_amount", "fiat_value"]) {
        if (!blank(values[key])) body[key] = decimalInput(values[key]);
      }
      // the currency list always holds a choice: it counts only with a value
      if (body.fiat_value !== undefined) body.fiat_currency = trimmed(values.fiat_currency) || null;
      for (const key of ["sent_asset", "received_asset", "fee_asset"]) {
        if (body[key]) body[key] = body[key].toUpperCase();
      }
      return body;
    }
    default:
      throw new Error(`no form for the correction kind ${kind}`);
  }
}

/** An edit that changes nothing (the page does not send it). */
export const changesNothing = (body) => body.kind === "edit" && Object.keys(body).length === 2;

/** A refused correction's messages by field ({} for any other error); the error's own message
 * under "" when no field names it. */
export function fieldErrors(error) {
  const out = {};
  for (const f of error?.fields || []) {
    const key = String(f.field || "");
    out[key] = out[key] ? `${out[key]}; ${f.message}` : f.message;
  }
  return out;
}

// --- exact decimals (the API's amounts are plain decimal strings) ----------------------------

const PLACES = 18;
const SCALE = 10n ** BigInt(PLACES);

function toUnits(value) {
  const text = String(value ?? "0").trim() || "0";
  const m = /^([-+]?)(\d*)(?:\.(\d*))?$/.exec(text);
  if (!m) throw new Error(`not a plain decimal: ${text}`);
  const units = BigInt((m[2] || "0") + (m[3] || "").padEnd(PLACES, "0").slice(0, PLACES));
  return m[1] === "-" ? -units : units;
}

function fromUnits(units) {
  const negative = units < 0n;
  const abs = negative ? -units : units;
  const int = abs / SCALE;
  const frac = (abs % SCALE).toString().padStart(PLACES, "0").replace(/0+$/, "");
  return `${negative ? "-" : ""}${int}${frac ? `.${frac}` : ""}`;
}

/** The exact sum of decimal strings, as a plain decimal string ("0" for none). */
export const decimalSum = (values) => fromUnits(values.reduce((s, v) => s + toUnits(v), 0n));

/** a == b as decimals ("1.50" equals "1.5"). */
export const sameDecimal = (a, b) => toUnits(a) === toUnits(b);

/** Do a disposal's lots add up to its line? {quantity, cost, quantityAddsUp, costAddsUp}. */
export function lotTotals(disposal, lots) {
  const quantity = decimalSum(lots.map((l) => l.quantity));
  const cost = decimalSum(lots.map((l) => l.cost));
  return {
    quantity, cost,
    quantityAddsUp: sameDecimal(quantity, disposal.quantity),
    costAddsUp: sameDecimal(cost, disposal.cost_basis ?? "0"),
  };
}

/** How each matching rule is named to a person. */
export const RULE_NAMES = {
  fifo: "FIFO (first in, first out)",
  lifo: "LIFO (last in, first out)",
  hifo: "HIFO (highest cost first)",
  same_day: "same day (UK)",
  bed_and_breakfast: "30 days (UK bed and breakfast)",
  pool: "section 104 pool (UK)",
  acb: "average cost basis",
};

/** The first and last day of a tax year as the gains screen names it: "2023" a calendar
 * year, "2023/24" a UK year (6 April to 5 April). */
export function taxYearDays(year) {
  const uk = /^(\d{4})\/\d{2}$/.exec(year);
  if (uk) {
    const start = Number(uk[1]);
    return { from: `${start}-04-06`, to: `${start + 1}-04-05` };
  }
  return { from: `${year}-01-01`, to: `${year}-12-31` };
}

/** "2024-03-01" plus `days` (may be negative), as a date string. */
export function dayShift(isoDay, days) {
  const d = new Date(`${isoDay.slice(0, 10)}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}
