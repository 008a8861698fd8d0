// Transactions: the read-optimized table, newest first, filtered, paged by the API's tokens.
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { getJson } from "./api.js";
import { ErrorLine, Loading, Money, Pager, ScrollBox, usePages } from "./components.js";
import { amountText, shortTimeText, timeText } from "./format.js";

const PER_PAGE = 50;
const EMPTY = { asset: "", wallet: "", type: "", from: "", to: "" };

function Amount({ amount, asset }) {
  if (!amount) return html`<span class="muted">–</span>`;
  return html`<span title=${`${amount} ${asset || ""}`}>${amountText(amount)} ${asset}</span>`;
}

export function TransactionsScreen({ choices, currency }) {
  const [draft, setDraft] = useState(EMPTY);
  const [filters, setFilters] = useState(EMPTY);
  const pages = usePages((token) => getJson("/v1/transactions",
    { ...filters, limit: PER_PAGE, page_token: token }), JSON.stringify(filters));
  const { page, error } = pages;
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
      <${ErrorLine} error=${error} />
      ${!page ? html`<${Loading} what="Transactions" />` : page.items.length === 0 ? html`
        <p class="muted">${page.next_page_token
          ? "No matching rows in this stretch; more may follow (Next)."
          : "No transactions match."}</p>` : html`
        <${ScrollBox} label="Transactions table">
        <table class="data tx-table">
          <caption class="visually-hidden">Transactions, newest first</caption>
          <thead><tr>
            <th scope="col">Time (UTC)</th><th scope="col">Type</th><th scope="col">Wallet</th>
            <th scope="col">Sent</th><th scope="col">Received</th><th scope="col">Fee</th>
            <th scope="col" class="num">Price</th><th scope="col" class="num">Value</th><th scope="col" class="num">Cost basis</th>
            <th scope="col" class="num">Gain</th><th scope="col">Term</th>
            <th scope="col">Flags</th></tr></thead>
          <tbody>
            ${page.items.map((t) => html`
              <tr data-tx=${t.tx_id}>
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
                <td class="num"><${Money} value=${t.gain} currency=${currency} /></td>
                <td>${t.term || ""}</td>
                <td>${(t.flags || []).join(", ")}</td>
              </tr>`)}
          </tbody>
        </table></${ScrollBox}>`}
      <${Pager} pages=${pages} label="Transactions" />
    </section>`;
}
