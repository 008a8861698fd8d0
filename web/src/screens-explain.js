// Explain a gain: one disposal (GET /v1/gains/{tx_id}/lots) and the lots it consumed, each with
// when and where it was acquired, its quantity and cost, the transaction it came from and the
// rule that matched it; the lots' totals are shown against the disposal's line, so the figures
// add up as printed (or the page says they do not).
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { disposalLots } from "./api.js";
import { ErrorLine, Loading, Money, ScrollBox } from "./components.js";
import { RULE_NAMES, lotTotals } from "./corrections.js";
import { amountText, shortTimeText, timeText } from "./format.js";

const METHOD_NAMES = { fifo: "FIFO", lifo: "LIFO", hifo: "HIFO", acb: "average cost", uk: "UK" };

function DisposalFacts({ disposal: d, currency }) {
  return html`
    <dl class="facts">
      <div><dt>Sold</dt><dd title=${timeText(d.timestamp)}>${shortTimeText(d.timestamp)}</dd></div>
      <div><dt>Wallet</dt><dd>${d.wallet || "–"}</dd></div>
      <div><dt>Quantity</dt><dd class="quantity" title=${`${d.quantity} ${d.asset}`}>
        ${amountText(d.quantity)} ${d.asset}</dd></div>
      <div><dt>Proceeds</dt><dd><${Money} value=${d.proceeds} currency=${currency} /></dd></div>
      <div><dt>Cost basis</dt><dd class="cost-basis"><${Money} value=${d.cost_basis}
        currency=${currency} /></dd></div>
      <div><dt>Gain</dt><dd class="gain"><${Money} value=${d.gain} currency=${currency} /></dd></div>
      <div><dt>Term</dt><dd>${d.term || "–"}</dd></div>
      <div><dt>Method</dt><dd>${METHOD_NAMES[d.method] || d.method || "–"}</dd></div>
    </dl>`;
}

export function ExplainScreen({ txId, currency }) {
  const [found, setFound] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => { disposalLots(txId).then(setFound, setError); }, [txId]);

  const back = html`<p><a href="#/gains">← Gains</a></p>`;
  if (error) {
    return html`<section><h1>Explain a gain</h1>${back}<${ErrorLine} error=${error} /></section>`;
  }
  if (!found) {
    return html`<section><h1>Explain a gain</h1>${back}<${Loading} what="Lots" /></section>`;
  }
  const { disposal, lots } = found;
  const totals = lotTotals(disposal, lots);
  return html`
    <section aria-labelledby="explain-title" class="explain" data-tx=${disposal.tx_id}>
      <h1 id="explain-title">Gain on ${amountText(disposal.quantity)} ${disposal.asset}</h1>
      ${back}
      <div class="card"><${DisposalFacts} disposal=${disposal} currency=${currency} />
        <p class="muted tx-id">transaction <code>${disposal.tx_id}</code></p></div>
      <h2 id="lots-title">The lots it consumed (${lots.length})</h2>
      <${ScrollBox} label="Lots table">
      <table class="data lots-table stack" aria-labelledby="lots-title">
        <thead><tr><th scope="col">Acquired (UTC)</th><th scope="col">Wallet</th>
          <th scope="col" class="num">Quantity</th><th scope="col" class="num">Cost</th>
          <th scope="col">Rule</th><th scope="col">From transaction</th></tr></thead>
        <tbody>${lots.map((lot, i) => html`
          <tr key=${i} data-rule=${lot.rule}>
            <td data-label="Acquired" title=${timeText(lot.acquired_at)}>${lot.acquired_at
              ? shortTimeText(lot.acquired_at) : html`<span class="muted">unknown</span>`}</td>
            <td data-label="Wallet">${lot.wallet || "–"}</td>
            <td class="num" data-label="Quantity" title=${lot.quantity}>
              ${amountText(lot.quantity)}</td>
            <td class="num" data-label="Cost"><${Money} value=${lot.cost}
              currency=${lot.currency || currency} /></td>
            <td data-label="Rule">${RULE_NAMES[lot.rule] || lot.rule}</td>
            <td data-label="From">${lot.from_tx_id ? html`<code class="tx">${lot.from_tx_id}</code>`
              : html`<span class="warn-text">no acquisition known: zero cost basis</span>`}</td>
          </tr>`)}
        </tbody>
        <tfoot><tr class="totals">
          <th scope="row" colspan="2">Total of the lots</th>
          <td class="num lots-quantity" data-label="Quantity" title=${totals.quantity}>
            ${amountText(totals.quantity)}</td>
          <td class="num lots-cost" data-label="Cost"><${Money} value=${totals.cost}
            currency=${currency} /></td>
          <td class="empty" colspan="2"></td></tr></tfoot>
      </table></${ScrollBox}>
      <p class=${`adds-up${totals.quantityAddsUp && totals.costAddsUp ? "" : " error"}`}
        role="status">
        ${totals.quantityAddsUp && totals.costAddsUp
          ? html`The lots add up to the disposal: ${amountText(disposal.quantity)}
              ${" "}${disposal.asset} at a cost basis of <${Money} value=${disposal.cost_basis}
              currency=${currency} />.`
          : html`The lots do not add up to the disposal: ${amountText(totals.quantity)} of
              ${" "}${amountText(disposal.quantity)} ${disposal.asset}, cost
              ${" "}<${Money} value=${totals.cost} currency=${currency} /> against
              ${" "}<${Money} value=${disposal.cost_basis} currency=${currency} />.`}
      </p>
    </section>`;
}
