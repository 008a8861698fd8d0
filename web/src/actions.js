// The correction forms shared by the Review and Transactions screens: one form per action
// (enter a cost basis, mark as transfer, ignore/un-ignore, edit, delete one added by hand, add
// one by hand), each POSTing /v1/corrections; then the recompute job's progress (JobProgress)
// with an Undo, and `onDone` when the job has ended so the screen refreshes its figures.
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { getJson, postCorrection, undoCorrection } from "./api.js";
import { ErrorLine, JobProgress } from "./components.js";
import {
  ACTION_LABELS, changesNothing, correctionBody, dayShift, fieldErrors, movedOf,
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

/** The other side of a transfer: same asset, the opposite direction, within TRANSFER_DAYS. */
async function transferCandidates(tx) {
  const { asset } = movedOf(tx);
  if (!asset || !tx.timestamp) return [];
  const day = tx.timestamp.slice(0, 10);
  const page = await getJson("/v1/transactions", {
    asset, type: tx.type === "deposit" ? "withdrawal" : "deposit", limit: 50,
    from: dayShift(day, -TRANSFER_DAYS), to: dayShift(day, TRANSFER_DAYS),
  });
  return page.items.filter((t) => t.tx_id !== tx.tx_id);
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
  useEffect(() => {
    if (kind !== "mark_transfer") return;
    transferCandidates(tx).then(setCandidates, () => setCandidates([]));
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
  if (kind === "mark_transfer") {
    const other = tx.type === "deposit" ? "withdrawal" : "deposit";
    const suggested = values.suggested;
    return html`
      <${Field} id=${`${idBase}-counterpart`} error=${errors.withdrawal_tx_id
        || errors.deposit_tx_id || errors.counterpart}
        label=${`The ${other} this ${tx.type || "transaction"} is one transfer with`}
        hint=${candidates === null ? "Looking for candidates…" : candidates.length
          ? `${candidates.length} ${other}s of ${asset} within ${TRANSFER_DAYS} days; or paste `
            + "a transaction id" : `no ${other} of ${asset} within ${TRANSFER_DAYS} days: paste `
            + "a transaction id"}>
        <input ...${b("counterpart")} list=${`${idBase}-candidates`} autocomplete="off"
          size="40" placeholder="transaction id" /></${Field}>
      <datalist id=${`${idBase}-candidates`}>
        ${(candidates || []).map((t) => html`<option value=${t.tx_id}>${candidateText(t)}</option>`)}
      </datalist>
      ${candidates?.length ? html`<ul class="candidates" aria-label=${`Candidate ${other}s`}>
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

/**
 * One action's form for transaction `tx`; after the API took it, the recompute job's progress
 * and an Undo. `onDone(job)` when a job (the correction's or its undo's) has ended.
 */
export function CorrectionForm({ kind, tx, currency, choices, suggested, onDone, onCancel }) {
  const [values, setValues] = useState(() => firstValues(kind, tx, currency, suggested));
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [recorded, setRecorded] = useState(null); // {correction_id, job_id, undone}
  const idBase = `fix-${kind}-${tx.tx_id.slice(0, 12)}`;
  const errors = fieldErrors(error);
  const label = ACTION_LABELS[kind] || kind;

  const submit = async (e) => {
    e.preventDefault();
    const body = correctionBody(kind, tx, values);
    if (changesNothing(body)) {
      setError({ message: "Nothing changed: change the type, the label or the value first." });
      return;
    }
    setBusy(true);
    setError(null);
    try {
      setRecorded(await postCorrection(body));
    } catch (exc) {
      setError(exc);
    }
    setBusy(false);
  };
  const undo = async () => {
    setBusy(true);
    setError(null);
    try {
      const accepted = await undoCorrection(recorded.correction_id);
      setRecorded({ ...accepted, undone: true });
    } catch (exc) {
      setError(exc);
    }
    setBusy(false);
  };

  if (recorded) {
    return html`<div class="correction-done" data-kind=${kind}
      data-correction-id=${recorded.correction_id}>
      <p role="status"><strong>${recorded.undone ? "Undone" : "Recorded"}:</strong>
        ${" "}${label.toLowerCase()}; recomputing what it touches.</p>
      <${JobProgress} key=${recorded.job_id} jobId=${recorded.job_id}
        label=${recorded.undone ? "undo" : "recompute"} onFinished=${onDone} />
      ${recorded.undone ? null : html`<button type="button" class="undo" onClick=${undo}
        disabled=${busy}>Undo</button>`}
      <${ErrorLine} error=${error} />
    </div>`;
  }
  return html`
    <form class="correction-form" data-kind=${kind} onSubmit=${submit}
      aria-label=${`${label}: ${tx.type || ""} ${shortTimeText(tx.timestamp)}`}>
      <${ActionFields} kind=${kind} tx=${tx} idBase=${idBase} values=${values}
        setValues=${setValues} errors=${errors} currency=${currency} choices=${choices} />
      <${ErrorLine} error=${error} />
      <div class="buttons">
        <button type="submit" class="primary" disabled=${busy}>${busy ? "Saving…" : label}</button>
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
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [recorded, setRecorded] = useState(null);
  const errors = fieldErrors(error);
  const b = (name) => bind(values, setValues, errors, `add-${name}`, name);
  const text = (name, label, extra = {}) => html`
    <${Field} id=${`add-${name}`} label=${label} error=${errors[name]}>
      <input ...${b(name)} autocomplete="off" ...${extra} /></${Field}>`;

  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      setRecorded(await postCorrection(correctionBody("add", {}, values)));
    } catch (exc) {
      setError(exc);
    }
    setBusy(false);
  };
  const undo = async () => {
    setBusy(true);
    try {
      setRecorded({ ...(await undoCorrection(recorded.correction_id)), undone: true });
    } catch (exc) {
      setError(exc);
    }
    setBusy(false);
  };
  if (recorded) {
    return html`<div class="correction-done card" data-kind="add"
      data-correction-id=${recorded.correction_id}>
      <p role="status"><strong>${recorded.undone ? "Undone" : "Added"}:</strong>
        ${" "}${values.type} in ${values.wallet} on ${values.day}; recomputing what it touches.</p>
      <${JobProgress} key=${recorded.job_id} jobId=${recorded.job_id}
        label=${recorded.undone ? "undo" : "recompute"} onFinished=${onDone} />
      <div class="buttons">
        ${recorded.undone ? null : html`<button type="button" class="undo" onClick=${undo}
          disabled=${busy}>Undo</button>`}
        <button type="button" onClick=${onCancel}>Close</button>
      </div>
      <${ErrorLine} error=${error} />
    </div>`;
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
      <${ErrorLine} error=${error} />
      <div class="buttons">
        <button type="submit" class="primary" disabled=${busy}>${busy ? "Saving…"
          : "Add transaction"}</button>
        <button type="button" onClick=${onCancel}>Cancel</button>
      </div>
    </form>`;
}
