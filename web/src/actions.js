// The correction forms shared by the Review, Transactions and Balances screens: one form per
// action (enter a cost basis, mark or unmark as transfer, ignore/un-ignore, edit, delete one
// added by hand, add one by hand, rename a wallet), each POSTing /v1/corrections; then the
// recompute job's progress (JobProgress) with an Undo, and `onDone` when the job has ended so
// the screen refreshes its figures.
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { getJson, postCorrection, undoCorrection } from "./api.js";
import { ErrorLine, JobProgress } from "./components.js";
import {
  ACTION_LABELS, changesNothing, correctionBody, dayShift, fieldErrors, isMatchedTransfer, movedOf,
} from "./corrections.js";
import { CURRENCIES, amountText, shortTimeText } from "./format.js";

const TRANSFER_DAYS = 14; // how far apart a transfer's two sides may be, for the candidates

/** A labelled input or select whose refused value shows its message under it. */
function Field({ id, label, error, hint, children }) {
  return html`
    <div class=${`field${error ? " invalid" : ""}`}>
      <label for=${id}>${label}</label>
      ${children}
      ${hint ? html`<span class="hint" id=${`${id}-hint`}>${hint}</span>` : null}
      ${error ? html`<span class="field-error" id=${`${id}-error`}>${error}</span>` : null}
    </div>`;
}

/** Props of an input bound to values[name], with its error described. */
function bind(values, setValues, errors, id, name) {
  return {
    id, name, value: values[name] ?? "",
    onInput: (e) => setValues({ ...values, [name]: e.target.value }),
    "aria-invalid": errors[name] ? "true" : undefined,
    "aria-describedby": errors[name] ? `${id}-error` : undefined,
  };
}

function CurrencySelect({ id, value, onChange, currency }) {
  return html`<select id=${id} value=${value} onChange=${(e) => onChange(e.target.value)}>
    ${[...new Set([currency, ...CURRENCIES])].filter(Boolean).map((c) =>
      html`<option value=${c}>${c}</option>`)}</select>`;
}

/** The other side of a transfer: same asset, the opposite direction, within TRANSFER_DAYS.
 * `matched`: only the legs of a matched transfer (the candidates to unmark). */
async function transferCandidates(tx, matched = false) {
  const { asset } = movedOf(tx);
  if (!asset || !tx.timestamp) return [];
  const day = tx.timestamp.slice(0, 10);
  const page = await getJson("/v1/transactions", {
    asset, type: tx.type === "deposit" ? "withdrawal" : "deposit", limit: 50,
    from: dayShift(day, -TRANSFER_DAYS), to: dayShift(day, TRANSFER_DAYS),
  });
  return page.items.filter((t) => t.tx_id !== tx.tx_id && (!matched || isMatchedTransfer(t)));
}

const candidateText = (t) => {
  const { asset, amount } = movedOf(t);
  return `${shortTimeText(t.timestamp)} · ${t.wallet || "?"} · ${amountText(amount)} ${asset}`;
};

/** The fields of one action's form (the submit buttons are CorrectionForm's). */
function ActionFields({ kind, tx, idBase, values, setValues, errors, currency, choices }) {
  const b = (name) => bind(values, setValues, errors, `${idBase}-${name}`, name);
  const { asset, amount } = movedOf(tx);
  const [candidates, setCandidates] = useState(null);
  const unmark = kind === "unmark_transfer";
  useEffect(() => {
    if (kind !== "mark_transfer" && !unmark) return;
    transferCandidates(tx, unmark).then((found) => {
      setCandidates(found);
      // The API does not name a leg's match; when one matched leg is in reach, it is that one.
      if (unmark && found.length === 1) {
        setValues((v) => (v.counterpart ? v : { ...v, counterpart: found[0].tx_id }));
      }
    }, () => setCandidates([]));
  }, [kind, tx.tx_id]);

  if (kind === "cost_basis") {
    return html`<div class="row">
      <${Field} id=${`${idBase}-cost_basis`} error=${errors.cost_basis}
        label=${`What ${amountText(amount)} ${asset || ""} cost you`}>
        <input ...${b("cost_basis")} inputmode="decimal" autocomplete="off" size="12"
          placeholder="1250.00" /></${Field}>
      <${Field} id=${`${idBase}-currency`} label="Currency" error=${errors.currency}>
        <${CurrencySelect} id=${`${idBase}-currency`} value=${values.currency} currency=${currency}
          onChange=${(c) => setValues({ ...values, currency: c })} /></${Field}>
    </div>
    <p class="hint">Bought elsewhere, outside your uploaded wallets: the engine uses this cost
      instead of zero when the deposit is not a transfer from one of your own wallets.</p>`;
  }
  if (kind === "mark_transfer" || unmark) {
    const other = tx.type === "deposit" ? "withdrawal" : "deposit";
    const suggested = values.suggested;
    const which = unmark ? `matched ${other}` : other;
    return html`
      ${unmark ? html`<p>This ${tx.type} and the ${other} the engine matched it with are not
        one transfer between your wallets: each is then taken on its own (a deposit acquired, a
        withdrawal gone), and both show in Review until fixed otherwise.</p>` : null}
      <${Field} id=${`${idBase}-counterpart`} error=${errors.withdrawal_tx_id
        || errors.deposit_tx_id || errors.counterpart}
        label=${unmark ? `The ${other} this ${tx.type} is not one transfer with`
          : `The ${other} this ${tx.type || "transaction"} is one transfer with`}
        hint=${candidates === null ? "Looking for candidates…" : candidates.length
          ? `${candidates.length} ${which}${candidates.length === 1 ? "" : "s"} of ${asset} `
            + `within ${TRANSFER_DAYS} days; or paste a transaction id`
          : `no ${which} of ${asset} within ${TRANSFER_DAYS} days: paste a transaction id`}>
        <input ...${b("counterpart")} list=${`${idBase}-candidates`} autocomplete="off"
          size="40" placeholder="transaction id" /></${Field}>
      <datalist id=${`${idBase}-candidates`}>
        ${(candidates || []).map((t) => html`<option value=${t.tx_id}>${candidateText(t)}</option>`)}
      </datalist>
      ${candidates?.length ? html`<ul class="candidates" aria-label=${`Candidate ${which}s`}>
        ${candidates.slice(0, 6).map((t) => html`<li>
          <button type="button" class="link" aria-pressed=${values.counterpart === t.tx_id
            ? "true" : "false"} onClick=${() => setValues({ ...values, counterpart: t.tx_id })}>
            ${candidateText(t)}${t.tx_id === suggested ? " (suggested)" : ""}</button></li>`)}
      </ul>` : null}
      ${suggested ? html`<p class="hint suggested">Suggested: <code>${suggested}</code> (the
        engine saw a near match)</p>` : null}`;
  }
  if (kind === "edit") {
    return html`<div class="row">
      <${Field} id=${`${idBase}-type`} label="Type" error=${errors.type}>
        <select ...${b("type")} onChange=${(e) => setValues({ ...values, type: e.target.value })}>
          ${(choices?.tx_types || [tx.type]).map((t) => html`<option value=${t}>${t}</option>`)}
        </select></${Field}>
      <${Field} id=${`${idBase}-label`} label="Label" error=${errors.label}>
        <input ...${b("label")} size="14" placeholder="staking, gift, …" /></${Field}>
      <${Field} id=${`${idBase}-fiat_value`} label="Value" error=${errors.fiat_value}>
        <input ...${b("fiat_value")} inputmode="decimal" size="12" autocomplete="off"
          placeholder="unchanged" /></${Field}>
      <${Field} id=${`${idBase}-fiat_currency`} label="Value currency"
        error=${errors.fiat_currency}>
        <${CurrencySelect} id=${`${idBase}-fiat_currency`} value=${values.fiat_currency}
          currency=${currency}
          onChange=${(c) => setValues({ ...values, fiat_currency: c })} /></${Field}>
    </div>`;
  }
  if (kind === "ignore") {
    return html`<p>Ignore this transaction: it leaves your history and every figure is
      recomputed without it (a spam airdrop, a duplicate). Undo it from Corrections.</p>`;
  }
  if (kind === "unignore") {
    return html`<p>Take this transaction back into your history.</p>`;
  }
  if (kind === "delete_added") {
    return html`<p>Delete this transaction you added by hand.</p>`;
  }
  return null;
}

const firstValues = (kind, tx, currency, suggested) => ({
  cost_basis: "", currency: currency || "USD", counterpart: suggested || "",
  suggested: suggested || "", type: tx.type || "", label: tx.label || "", fiat_value: "",
  fiat_currency: currency || "USD",
});

/** A correction sent and its undo: `busy` while the API answers, `error` (a refusal names its
 * fields), `recorded` ({correction_id, job_id, undone}) once the API took it. */
function useCorrection() {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [recorded, setRecorded] = useState(null);
  const call = async (send, undone) => {
    setBusy(true);
    setError(null);
    try {
      setRecorded({ ...(await send()), undone });
    } catch (exc) {
      setError(exc);
    }
    setBusy(false);
  };
  return {
    error, setError, busy, recorded,
    record: (body) => call(() => postCorrection(body), false),
    undo: () => call(() => undoCorrection(recorded.correction_id), true),
  };
}

/** A recorded correction (`state` from useCorrection): what it does, its recompute job's
 * progress, an Undo until undone; `onDone(job)` when a job has ended. */
function CorrectionDone({ kind, state, what, done = "Recorded", onDone, onClose, card = false }) {
  const { recorded, busy, error, undo } = state;
  return html`<div class=${`correction-done${card ? " card" : ""}`} data-kind=${kind}
      data-correction-id=${recorded.correction_id}>
      <p role="status"><strong>${recorded.undone ? "Undone" : done}:</strong>
        ${" "}${what}; recomputing what it touches.</p>
      <${JobProgress} key=${recorded.job_id} jobId=${recorded.job_id}
        label=${recorded.undone ? "undo" : "recompute"} onFinished=${onDone} />
      <div class="buttons">
        ${recorded.undone ? null : html`<button type="button" class="undo" onClick=${undo}
          disabled=${busy}>Undo</button>`}
        ${onClose ? html`<button type="button" onClick=${onClose}>Close</button>` : null}
      </div>
      <${ErrorLine} error=${error} />
    </div>`;
}

/**
 * One action's form for transaction `tx`; after the API took it, the recompute job's progress
 * and an Undo. `onDone(job)` when a job (the correction's or its undo's) has ended.
 */
export function CorrectionForm({ kind, tx, currency, choices, suggested, onDone, onCancel }) {
  const [values, setValues] = useState(() => firstValues(kind, tx, currency, suggested));
  const state = useCorrection();
  const idBase = `fix-${kind}-${tx.tx_id.slice(0, 12)}`;
  const errors = fieldErrors(state.error);
  const label = ACTION_LABELS[kind] || kind;

  const submit = (e) => {
    e.preventDefault();
    const body = correctionBody(kind, tx, values);
    if (changesNothing(body)) {
      state.setError({ message: "Nothing changed: change the type, the label or the value first." });
      return;
    }
    state.record(body);
  };

  if (state.recorded) {
    return html`<${CorrectionDone} kind=${kind} state=${state} onDone=${onDone}
      what=${label.toLowerCase()} />`;
  }
  return html`
    <form class="correction-form" data-kind=${kind} onSubmit=${submit}
      aria-label=${`${label}: ${tx.type || ""} ${shortTimeText(tx.timestamp)}`}>
      <${ActionFields} kind=${kind} tx=${tx} idBase=${idBase} values=${values}
        setValues=${setValues} errors=${errors} currency=${currency} choices=${choices} />
      <${ErrorLine} error=${state.error} />
      <div class="buttons">
        <button type="submit" class="primary" disabled=${state.busy}>${state.busy ? "Saving…"
          : label}</button>
        ${onCancel ? html`<button type="button" onClick=${onCancel}>Cancel</button>` : null}
      </div>
    </form>`;
}

/**
 * A transaction's action buttons; the chosen one opens its form below them (one at a time).
 * `actions`: kinds, or {kind, counterpart} with a suggested transfer counterpart.
 */
export function ActionBar({ tx, actions, currency, choices, onDone, label }) {
  const [open, setOpen] = useState(null);
  const list = actions.map((a) => (typeof a === "string" ? { kind: a, counterpart: null } : a));
  const chosen = list.find((a) => a.kind === open);
  const panelId = `actions-${tx.tx_id.slice(0, 12)}`;
  return html`
    <div class="action-bar" data-tx=${tx.tx_id}>
      <div class="buttons" role="group" aria-label=${label || "Fix it"}>
        ${list.map((a) => html`
          <button type="button" data-action=${a.kind} aria-expanded=${open === a.kind
            ? "true" : "false"} aria-controls=${panelId}
            onClick=${() => setOpen(open === a.kind ? null : a.kind)}>
            ${ACTION_LABELS[a.kind] || a.kind}${a.counterpart ? " (suggested)" : ""}</button>`)}
      </div>
      <div id=${panelId} class="action-panel">
        ${chosen ? html`<${CorrectionForm} key=${chosen.kind} kind=${chosen.kind} tx=${tx}
          currency=${currency} choices=${choices} suggested=${chosen.counterpart}
          onDone=${onDone} onCancel=${() => setOpen(null)} />` : null}
      </div>
    </div>`;
}

const ADD_FIRST = {
  wallet: "", day: "", clock: "", type: "buy", label: "", description: "", sent_amount: "",
  sent_asset: "", received_amount: "", received_asset: "", fee_amount: "", fee_asset: "",
  fiat_value: "", fiat_currency: "",
};

/** Add a transaction the exchange never exported (an `add` correction); its recompute job's
 * progress and an Undo follow, as for any correction. */
export function AddTransactionForm({ currency, choices, onDone, onCancel }) {
  const [values, setValues] = useState({ ...ADD_FIRST, fiat_currency: currency || "USD" });
  const state = useCorrection();
  const errors = fieldErrors(state.error);
  const b = (name) => bind(values, setValues, errors, `add-${name}`, name);
  const text = (name, label, extra = {}) => html`
    <${Field} id=${`add-${name}`} label=${label} error=${errors[name]}>
      <input ...${b(name)} autocomplete="off" ...${extra} /></${Field}>`;

  const submit = (e) => {
    e.preventDefault();
    state.record(correctionBody("add", {}, values));
  };
  if (state.recorded) {
    return html`<${CorrectionDone} kind="add" state=${state} done="Added" card=${true}
      what=${`${values.type} in ${values.wallet} on ${values.day}`} onDone=${onDone}
      onClose=${onCancel} />`;
  }
  // A date or time error is the API's `timestamp`; show it under the date.
  const dayError = errors.timestamp;
  return html`
    <form class="card correction-form add-form" data-kind="add" onSubmit=${submit}
      aria-labelledby="add-title">
      <h2 id="add-title">Add a transaction by hand</h2>
      <p class="hint">One the exchange never exported. Amounts are positive; a buy, sell or
        trade has both sides, a deposit or income only what was received, a withdrawal or spend
        only what was sent. Time is UTC.</p>
      <div class="row">
        ${text("wallet", "Wallet", { size: 14, required: true })}
        <${Field} id="add-day" label="Date" error=${dayError}>
          <input ...${b("day")} type="date" required=${true}
            aria-invalid=${dayError ? "true" : undefined}
            aria-describedby=${dayError ? "add-day-error" : undefined} /></${Field}>
        ${text("clock", "Time (UTC)", { type: "time" })}
        <${Field} id="add-type" label="Type" error=${errors.type}>
          <select ...${b("type")} onChange=${(e) => setValues({ ...values, type: e.target.value })}>
            ${(choices?.tx_types || ["buy", "sell", "trade", "deposit", "withdrawal", "income",
              "spend", "fee"]).map((t) => html`<option value=${t}>${t}</option>`)}
          </select></${Field}>
      </div>
      <div class="row">
        ${text("sent_amount", "Sent amount", { inputmode: "decimal", size: 12 })}
        ${text("sent_asset", "Sent asset", { size: 8, placeholder: "USD" })}
        ${text("received_amount", "Received amount", { inputmode: "decimal", size: 12 })}
        ${text("received_asset", "Received asset", { size: 8, placeholder: "BTC" })}
      </div>
      <div class="row">
        ${text("fee_amount", "Fee amount", { inputmode: "decimal", size: 10 })}
        ${text("fee_asset", "Fee asset", { size: 8 })}
        ${text("fiat_value", "Value (optional)", { inputmode: "decimal", size: 12 })}
        <${Field} id="add-fiat_currency" label="Value currency" error=${errors.fiat_currency}>
          <${CurrencySelect} id="add-fiat_currency" value=${values.fiat_currency}
            currency=${currency}
            onChange=${(c) => setValues({ ...values, fiat_currency: c })} /></${Field}>
      </div>
      <div class="row">
        ${text("label", "Label (optional)", { size: 14 })}
        ${text("description", "Description (optional)", { size: 30 })}
      </div>
      <${ErrorLine} error=${state.error} />
      <div class="buttons">
        <button type="submit" class="primary" disabled=${state.busy}>${state.busy ? "Saving…"
          : "Add transaction"}</button>
        <button type="button" onClick=${onCancel}>Cancel</button>
      </div>
    </form>`;
}

/**
 * Rename wallet `wallet` (a rename_wallet correction). A name already in `wallets` merges the
 * two into one account (per-wallet pooling then pools their lots): the form says so first.
 */
export function RenameWalletForm({ wallet, wallets, onDone, onCancel }) {
  const [values, setValues] = useState({ new: "" });
  const state = useCorrection();
  const errors = fieldErrors(state.error);
  const id = "rename-wallet-new";
  const wanted = values.new.trim();
  const merges = wanted !== wallet && (wallets || []).includes(wanted);
  // The API names `new` (empty, unchanged) or `old` (no such wallet): both are about this input.
  const error = [errors.new, errors.old].filter(Boolean).join("; ");

  // What was sent, as it was then (the wallets are read again under the new name after).
  const [sent, setSent] = useState(null);
  const submit = (e) => {
    e.preventDefault();
    setSent(merges ? `merge wallet ${wallet} into ${wanted}` : `rename wallet ${wallet} to ${wanted}`);
    state.record(correctionBody("rename_wallet", { wallet }, values));
  };
  if (state.recorded) {
    return html`<${CorrectionDone} kind="rename_wallet" state=${state} onDone=${onDone}
      what=${sent}
      onClose=${onCancel} />`;
  }
  return html`
    <form class="correction-form rename-form" data-kind="rename_wallet" data-wallet=${wallet}
      onSubmit=${submit} aria-label=${`Rename wallet ${wallet}`}>
      <${Field} id=${id} label=${`New name for ${wallet}`} error=${error}
        hint=${merges ? `${wanted} already exists: the two merge into one wallet, their lots
          pooled together (undo splits them again).` : "Every transaction of this wallet, "
          + "uploaded or added by hand, moves to the new name; a name in use merges the two."}>
        <input id=${id} name="new" value=${values.new} autocomplete="off" size="24"
          placeholder=${wallet} onInput=${(e) => setValues({ new: e.target.value })}
          aria-invalid=${error ? "true" : undefined}
          aria-describedby=${error ? `${id}-error` : `${id}-hint`} /></${Field}>
      <${ErrorLine} error=${state.error} />
      <div class="buttons">
        <button type="submit" class="primary" disabled=${state.busy}>${state.busy ? "Saving…"
          : merges ? "Merge wallets" : "Rename wallet"}</button>
        <button type="button" onClick=${onCancel}>Cancel</button>
      </div>
    </form>`;
}
