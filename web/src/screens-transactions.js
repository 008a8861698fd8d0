// Transactions: the read-optimized table, newest first, filtered, paged by the API's tokens;
// each row's actions (edit, ignore, cost basis, mark as transfer, delete one added by hand) open
// under it, and a transaction can be added by hand. A correction runs the recompute job; when it
// ends the page offers the recomputed rows.
import { html } from "htm/preact";
import { Fragment } from "preact";
import { useEffect, useState } from "preact/hooks";
import { correctionsPage, getJson } from "./api.js";
import { ActionBar, AddTransactionForm } from "./actions.js";
import { ErrorLine, Loading, Money, Pager, ScrollBox, usePages } from "./components.js";
import { handAdded, transactionActions } from "./corrections.js";
import { amountText, shortTimeText, timeText } from "./format.js";

const COLUMNS = 13;
const FLAG_NAMES = {
  missing_price: "no price", missing_cost_basis: "zero cost basis",
  negative_balance: "balance below zero", unmatched_withdrawal: "unmatched withdrawal",
  unmatched_deposit: "unmatched deposit", transfer: "transfer", transfer_fee: "transfer fee",
  unsupported: "unsupported",
};
const WARNING_FLAGS = new Set(["missing_price", "missing_cost_basis", "negative_balance",
  "unmatched_withdrawal", "unmatched_deposit", "unsupported"]);

function Flags({ flags }) {
  return (flags || []).map((f) => html`<span class=${`tag ${WARNING_FLAGS.has(f)
    ? (f === "negative_balance" ? "tag-bad" : "tag-warn") : ""}`} data-flag=${f}>${
    FLAG_NAMES[f] || f}</span> `);
}

/** The hand-added transactions (from the audit list), read again when `refresh` changes. */
function useHandAdded(refresh) {
  const [added, setAdded] = useState(undefined);
  useEffect(() => {
    correctionsPage(null, 200).then((p) => setAdded(handAdded(p.items)), () => setAdded(undefined));
  }, [refresh]);
  return added;
}

const PER_PAGE = 50;
const EMPTY = { asset: "", wallet: "", type: "", from: "", to: "" };

function Amount({ amount, asset }) {
  if (!amount) return html`<span class="muted">–</span>`;
  return html`<span title=${`${amount} ${asset || ""}`}>${amountText(amount)} ${asset}</span>`;
}

export function TransactionsScreen({ choices, currency }) {
  const [draft, setDraft] = useState(EMPTY);
  const [filters, setFilters] = useState(EMPTY);
  const [reload, setReload] = useState(0);
  const [open, setOpen] = useState(null); // the tx_id whose actions are open
  const [adding, setAdding] = useState(false);
  const [recomputed, setRecomputed] = useState(false); // a correction's job ended
  const added = useHandAdded(reload);
  const pages = usePages((token) => getJson("/v1/transactions",
    { ...filters, limit: PER_PAGE, page_token: token }), `${JSON.stringify(filters)}:${reload}`);
  const { page, error } = pages;
  const onDone = (job) => { if (job.status === "succeeded") setRecomputed(true); };
  const showRecomputed = () => { setRecomputed(false); setOpen(null); setAdding(false);
    setReload((n) => n + 1); };
  const field = (name) => ({
    id: `f-${name}`, value: draft[name],
    onInput: (e) => setDraft({ ...draft, [name]: e.target.value }),
  });
  const apply = (e) => { e.preventDefault(); setFilters({ ...draft, asset: draft.asset.trim() }); };
  const clear = () => { setDraft(EMPTY); setFilters(EMPTY); };

  return html`
    <section aria-labelledby="tx-title" aria-busy=${pages.busy ? "true" : "false"}
      data-filters=${JSON.stringify(filters)}>
      <h1 id="tx-title">Transactions</h1>
      <form class="card row filters" onSubmit=${apply} aria-label="Filters">
        <div class="field"><label for="f-asset">Asset</label>
          <input ...${field("asset")} placeholder="BTC" size="8" /></div>
        <div class="field"><label for="f-wallet">Wallet</label>
          <input ...${field("wallet")} size="12" /></div>
        <div class="field"><label for="f-type">Type</label>
          <select ...${field("type")} onChange=${(e) => setDraft({ ...draft, type: e.target.value })}>
            <option value="">any</option>
            ${(choices?.tx_types || []).map((t) => html`<option value=${t}>${t}</option>`)}
          </select></div>
        <div class="field"><label for="f-from">From</label>
          <input ...${field("from")} type="date" /></div>
        <div class="field"><label for="f-to">To</label>
          <input ...${field("to")} type="date" /></div>
        <div class="field buttons">
          <button type="submit" class="primary">Apply</button>
          <button type="button" onClick=${clear}>Clear</button>
        </div>
      </form>
      <div class="row tx-tools">
        <button type="button" aria-expanded=${adding ? "true" : "false"}
          onClick=${() => setAdding(!adding)}>Add a transaction by hand</button>
        ${recomputed ? html`<p class="recomputed" role="status">Recomputed.
          ${" "}<button type="button" class="primary" onClick=${showRecomputed}>Show the
          recomputed transactions</button></p>` : null}
      </div>
      ${adding ? html`<${AddTransactionForm} currency=${currency} choices=${choices}
        onDone=${onDone} onCancel=${() => setAdding(false)} />` : null}
      <${ErrorLine} error=${error} />
      ${!page ? html`<${Loading} what="Transactions" />` : page.items.length === 0 ? html`
        <p class="muted">${page.next_page_token
          ? "No matching rows in this stretch; more may follow (Next)."
          : "No transactions match."}</p>` : html`
        <${ScrollBox} label="Transactions table">
        <table class="data tx-table">
          <caption class="visually-hidden">Transactions, newest first</caption>
          <thead><tr><th scope="col"><span class="visually-hidden">Actions</span></th>
            <th scope="col">Time (UTC)</th><th scope="col">Type</th><th scope="col">Wallet</th>
            <th scope="col">Sent</th><th scope="col">Received</th><th scope="col">Fee</th>
            <th scope="col" class="num">Price</th><th scope="col" class="num">Value</th><th scope="col" class="num">Cost basis</th>
            <th scope="col" class="num">Gain</th><th scope="col">Term</th>
            <th scope="col">Flags</th></tr></thead>
          <tbody>
            ${page.items.map((t) => html`<${Fragment} key=${t.tx_id}>
              <tr data-tx=${t.tx_id} class=${open === t.tx_id ? "open" : ""}>
                <td><button type="button" class="fix-button"
                  aria-expanded=${open === t.tx_id ? "true" : "false"}
                  aria-controls=${`fix-row-${t.tx_id}`}
                  onClick=${() => setOpen(open === t.tx_id ? null : t.tx_id)}>Change<span
                  class="visually-hidden"> the ${t.type} of ${shortTimeText(t.timestamp)}</span>
                  </button></td>
                <td title=${timeText(t.timestamp)}>${shortTimeText(t.timestamp)}</td>
                <td>${t.type}${t.label ? html` <span class="muted">(${t.label})</span>` : null}</td>
                <td>${t.wallet}</td>
                <td class="sent"><${Amount} amount=${t.sent_amount} asset=${t.sent_asset} /></td>
                <td class="received"><${Amount} amount=${t.received_amount}
                  asset=${t.received_asset} /></td>
                <td><${Amount} amount=${t.fee_amount} asset=${t.fee_asset} /></td>
                <td class="num"><${Money} value=${t.price} currency=${currency} /></td>
                <td class="num"><${Money} value=${t.value} currency=${currency} /></td>
                <td class="num"><${Money} value=${t.cost_basis} currency=${currency} /></td>
                <td class="num">${t.gain !== null && t.gain !== undefined && t.sent_asset
                  ? html`<a href=${`#/gains/${t.tx_id}`} class="explain-link"><${Money}
                      value=${t.gain} currency=${currency} /><span class="visually-hidden">:
                      explain the gain of ${shortTimeText(t.timestamp)}</span></a>`
                  : html`<${Money} value=${t.gain} currency=${currency} />`}</td>
                <td>${t.term || ""}</td>
                <td class="flags"><${Flags} flags=${t.flags} /></td>
              </tr>
              ${open === t.tx_id ? html`<tr class="fix-row" id=${`fix-row-${t.tx_id}`}>
                <td colspan=${COLUMNS}><${ActionBar} tx=${t} actions=${transactionActions(t, added)}
                  currency=${currency} choices=${choices} onDone=${onDone}
                  label=${`Change the ${t.type} of ${shortTimeText(t.timestamp)}`} /></td>
              </tr>` : null}</${Fragment}>`)}
          </tbody>
        </table></${ScrollBox}>`}
      <${Pager} pages=${pages} label="Transactions" />
    </section>`;
}
