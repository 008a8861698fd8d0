// Gains per tax year (chart per year and per asset, Form 8949 download) and balances, with the
// wallets they are held in (each one renamed, or merged into another, from here).
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { RenameWalletForm } from "./actions.js";
import { getBlob, getJson } from "./api.js";
import { BarChart, ErrorLine, Loading, Money, Pager, ScrollBox, usePages } from "./components.js";
import { taxYearDays } from "./corrections.js";
import { amountText, countText, shortTimeText, timeText } from "./format.js";
import { ReviewCounts } from "./screens-review.js";

const num = (v) => (v === null || v === undefined ? 0 : Number(v));
/** The sum of a money field, in whole cents (exact for the rounded figures shown). */
const cents = (rows, key) => (rows.reduce((sum, r) => sum + Math.round(num(r[key]) * 100), 0)
  / 100).toFixed(2);

/** `onPick(asset)`: the per-asset table's rows offer their disposals (the explain path). */
function GainsTable({ rows, first, currency, caption, onPick, picked }) {
  return html`
    <${ScrollBox} label=${caption}>
    <table class="data gains-table stack">
      <caption class="visually-hidden">${caption}</caption>
      <thead><tr><th scope="col">${first}</th><th scope="col" class="num">Proceeds</th>
        <th scope="col" class="num">Cost basis</th><th scope="col" class="num">Short term</th>
        <th scope="col" class="num">Long term</th><th scope="col" class="num">Gain</th>
        <th scope="col" class="num">Income</th>
        ${onPick ? html`<th scope="col"><span class="visually-hidden">Disposals</span></th>`
          : null}</tr></thead>
      <tbody>${rows.map((r) => html`
        <tr data-key=${first === "Year" ? r.year : r.asset}>
          <th scope="row">${first === "Year" ? r.year : r.asset}</th>
          <td class="num" data-label="Proceeds"><${Money} value=${r.proceeds} currency=${currency} /></td>
          <td class="num" data-label="Cost basis"><${Money} value=${r.cost_basis} currency=${currency} /></td>
          <td class="num" data-label="Short term"><${Money} value=${r.short_term_gain} currency=${currency} /></td>
          <td class="num" data-label="Long term"><${Money} value=${r.long_term_gain} currency=${currency} /></td>
          <td class="num" data-label="Gain"><${Money} value=${r.gain} currency=${currency} /></td>
          <td class="num" data-label="Income"><${Money} value=${r.income} currency=${currency} /></td>
          ${onPick ? html`<td class="row-actions"><button type="button" class="disposals-button"
            aria-expanded=${picked === r.asset ? "true" : "false"}
            onClick=${() => onPick(picked === r.asset ? null : r.asset)}>
            ${picked === r.asset ? "Hide" : "Show"} ${r.asset} disposals</button></td>` : null}
        </tr>`)}</tbody>
    </table></${ScrollBox}>`;
}

// The report files of a tax year (GET /v1/reports/<path>?year=); SA108 is the UK return's.
// `lines`: the report is made of the year's disposal lines (so their zero cost basis count
// applies to it).
const REPORTS = [
  { path: "form8949.csv", file: "form8949", ext: "csv", label: "Form 8949 CSV", primary: true,
    lines: true },
  { path: "schedule-d.csv", file: "schedule-d", ext: "csv", label: "Schedule D CSV", lines: true },
  { path: "turbotax.txf", file: "turbotax", ext: "txf", label: "TurboTax TXF", lines: true },
  { path: "income.csv", file: "income", ext: "csv", label: "Income CSV" },
  { path: "sa108.csv", file: "sa108", ext: "csv", label: "SA108 (UK) CSV", uk: true, lines: true },
];

/** Beside a download made of disposal lines: how many of them rest on a zero cost basis. */
function LinesNote({ lines, id }) {
  if (!lines || !lines.disposal_lines) return null;
  const zero = lines.zero_cost_basis_lines;
  return html`<span id=${id} class=${`lines-note${zero ? " warn" : ""}`}>${zero
    ? html`<strong>${countText(zero)}</strong> ${zero === 1 ? "line uses" : "lines use"} zero
        cost basis <a href="#/review/missing_cost_basis">review</a>`
    : `all ${countText(lines.disposal_lines)} lines have a cost basis`}</span>`;
}

const PER_PAGE = 50;

/** The disposals of `asset` in tax year `year` (transactions that sent it with a gain), each
 * with its way down to the lots it consumed. */
function Disposals({ asset, year, currency }) {
  const days = taxYearDays(year);
  const pages = usePages((token) => getJson("/v1/transactions",
    { asset, from: days.from, to: days.to, limit: PER_PAGE, page_token: token }),
  `${asset}:${year}`);
  const { page, error } = pages;
  const disposals = (page?.items || []).filter((t) => t.sent_asset === asset
    && t.gain !== null && t.gain !== undefined);
  return html`
    <div class="disposals" data-asset=${asset}>
      <h3 id="disposals-title">${asset} disposals, ${year}</h3>
      <${ErrorLine} error=${error} />
      ${!page ? html`<${Loading} what="Disposals" />` : !disposals.length ? html`
        <p class="muted">${page.next_page_token ? "None in this stretch; more may follow (Next)."
          : `No disposal of ${asset} in ${year}.`}</p>` : html`
        <${ScrollBox} label=${`${asset} disposals`}>
        <table class="data disposals-table stack" aria-labelledby="disposals-title">
          <thead><tr><th scope="col">Time (UTC)</th><th scope="col">Type</th>
            <th scope="col">Wallet</th><th scope="col" class="num">Quantity</th>
            <th scope="col" class="num">Proceeds</th><th scope="col" class="num">Cost basis</th>
            <th scope="col" class="num">Gain</th><th scope="col">Term</th>
            <th scope="col"><span class="visually-hidden">Explain</span></th></tr></thead>
          <tbody>${disposals.map((t) => html`
            <tr data-tx=${t.tx_id}>
              <td data-label="Time" title=${timeText(t.timestamp)}>${shortTimeText(t.timestamp)}</td>
              <td data-label="Type">${t.type}</td>
              <td data-label="Wallet">${t.wallet}</td>
              <td class="num" data-label="Quantity" title=${t.sent_amount}>
                ${amountText(t.sent_amount)}</td>
              <td class="num" data-label="Proceeds"><${Money} value=${t.value}
                currency=${currency} /></td>
              <td class="num" data-label="Cost basis"><${Money} value=${t.cost_basis}
                currency=${currency} /></td>
              <td class="num" data-label="Gain"><${Money} value=${t.gain} currency=${currency} /></td>
              <td data-label="Term">${t.term || ""}</td>
              <td class="row-actions"><a href=${`#/gains/${t.tx_id}`}>Explain<span
                class="visually-hidden"> the gain of ${shortTimeText(t.timestamp)}</span></a></td>
            </tr>`)}</tbody>
        </table></${ScrollBox}>`}
      <${Pager} pages=${pages} label=${`${asset} disposals`} />
    </div>`;
}
const reportsFor = (method) => REPORTS.filter((r) => !r.uk || method === "uk");

/** Fetch and save a CSV (the API needs the bearer header, so no plain link). */
async function download(path, params, fileName) {
  const blob = await getBlob(path, params);
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = fileName;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export function GainsScreen({ currency, method }) {
  const [years, setYears] = useState(null);
  const [year, setYear] = useState("");
  const [detail, setDetail] = useState(null);
  const [error, setError] = useState(null);
  const [downloadError, setDownloadError] = useState(null);
  const [lines, setLines] = useState(null); // the year's disposal lines and those at zero basis
  const [picked, setPicked] = useState(null); // the asset whose disposals are shown

  useEffect(() => {
    getJson("/v1/gains").then((page) => {
      setYears(page.items);
      if (page.items.length) setYear(page.items[page.items.length - 1].year);
    }, setError);
  }, []);
  useEffect(() => {
    if (!year) return;
    setDetail(null);
    setLines(null);
    setPicked(null);
    getJson("/v1/gains", { year, limit: 1000 }).then(setDetail, setError);
    getJson("/v1/reports/summary", { year }).then(setLines, () => setLines(null));
  }, [year]);

  if (error) return html`<section><h1>Gains</h1><${ErrorLine} error=${error} /></section>`;
  if (!years) return html`<section><h1>Gains</h1><${Loading} what="Gains" /></section>`;
  if (!years.length) {
    return html`<section><h1>Gains</h1>
      <p>No gains yet: they appear when an upload's tax stage has run.</p></section>`;
  }
  const fileYear = year.replace("/", "-");
  return html`
    <section aria-labelledby="gains-title">
      <h1 id="gains-title">Gains</h1>
      <${ReviewCounts} />
      <div class="card">
        <${BarChart} title="Per tax year" currency=${currency}
          labels=${years.map((y) => y.year)}
          datasets=${[
            { label: "Proceeds", data: years.map((y) => num(y.proceeds)) },
            { label: "Cost basis", data: years.map((y) => num(y.cost_basis)) },
            { label: "Gain", data: years.map((y) => num(y.gain)) },
            { label: "Income", data: years.map((y) => num(y.income)) },
          ]} />
        <${GainsTable} rows=${years} first="Year" currency=${currency}
          caption="Totals per tax year" />
      </div>
      <div class="card">
        <div class="row">
          <div class="field">
            <label for="year">Tax year</label>
            <select id="year" value=${year} onChange=${(e) => setYear(e.target.value)}>
              ${years.map((y) => html`<option value=${y.year}>${y.year}</option>`)}
            </select>
          </div>
        </div>
        <div class="reports" role="group" aria-label=${`Reports for ${year}`}>
          ${reportsFor(method).map((r) => html`
            <div class="report">
            <button type="button" class=${r.primary ? "primary" : ""} data-report=${r.path}
              aria-describedby=${r.lines && lines?.disposal_lines ? `note-${r.file}` : undefined}
              onClick=${() => {
                setDownloadError(null);
                download(`/v1/reports/${r.path}`, { year }, `${r.file}-${fileYear}.${r.ext}`)
                  .catch(setDownloadError);
              }}>Download ${r.label} (${year})</button>
            ${r.lines ? html`<${LinesNote} lines=${lines} id=${`note-${r.file}`} />` : null}
            </div>`)}
        </div>
        ${lines && lines.disposal_lines ? html`
          <p class=${`basis-note${lines.zero_cost_basis_lines ? " warn" : ""}`}>
            ${lines.zero_cost_basis_lines
              ? html`<strong>${countText(lines.zero_cost_basis_lines)}</strong> of
                  ${" "}${countText(lines.disposal_lines)} disposal lines of ${year} use a zero
                  cost basis: no acquisition of those units is known, so their whole proceeds
                  count as gain.`
              : `All ${countText(lines.disposal_lines)} disposal lines of ${year} have a known
                  cost basis.`}
          </p>` : null}
        <${ErrorLine} error=${downloadError} />
        ${!detail ? html`<${Loading} what="Year" />` : html`
          <${BarChart} title=${`Gain and income per asset, ${year}`} currency=${currency}
            labels=${detail.items.map((r) => r.asset)}
            datasets=${[
              { label: "Short term", data: detail.items.map((r) => num(r.short_term_gain)) },
              { label: "Long term", data: detail.items.map((r) => num(r.long_term_gain)) },
              { label: "Income", data: detail.items.map((r) => num(r.income)) },
            ]} stacked=${true} />
          <${GainsTable} rows=${detail.items} first="Asset" currency=${currency}
            caption=${`Per asset, ${year}`} onPick=${setPicked} picked=${picked} />
          ${picked ? html`<${Disposals} key=${`${picked}:${year}`} asset=${picked} year=${year}
            currency=${currency} />` : null}`}
      </div>
    </section>`;
}

const MAX_BALANCE_PAGES = 10;

/** A balance below zero: the API flags it (`negative`), and a negative quantity is one. */
const isNegative = (r) => r.negative === true || num(r.quantity) < 0;

/** The wallets of the balances, each with a Rename; the open form stays (with its job's progress
 * and Undo) while the list is read again under the new name. */
function WalletsCard({ wallets, onDone }) {
  const [renaming, setRenaming] = useState(null); // {wallet, at}: the form open, one at a time
  const panelId = "rename-wallet-panel";
  return html`
    <section class="card wallets-card" aria-labelledby="wallets-title">
      <h2 id="wallets-title">Wallets</h2>
      <ul class="wallet-list">${wallets.map((w) => html`
        <li data-wallet=${w}><span class="wallet-name">${w}</span>
          <button type="button" aria-controls=${panelId}
            aria-expanded=${renaming?.wallet === w ? "true" : "false"}
            onClick=${() => setRenaming(renaming?.wallet === w ? null
              : { wallet: w, at: Date.now() })}>Rename<span class="visually-hidden">
              ${" "}${w}</span></button></li>`)}
      </ul>
      <div id=${panelId} class="action-panel">${renaming ? html`<${RenameWalletForm}
        key=${renaming.at} wallet=${renaming.wallet} wallets=${wallets} onDone=${onDone}
        onCancel=${() => setRenaming(null)} />` : null}</div>
    </section>`;
}

export function BalancesScreen({ currency }) {
  const [rows, setRows] = useState(null);
  const [error, setError] = useState(null);
  const [reload, setReload] = useState(0); // read again when a rename's (or its undo's) job ends
  useEffect(() => {
    (async () => {
      const all = [];
      let token = null;
      for (let i = 0; i < MAX_BALANCE_PAGES; i++) {
        const page = await getJson("/v1/balances", { limit: 1000, page_token: token });
        all.push(...page.items);
        token = page.next_page_token;
        if (!token) break;
      }
      setRows(all);
    })().catch(setError);
  }, [reload]);
  if (error) return html`<section><h1>Balances</h1><${ErrorLine} error=${error} /></section>`;
  if (!rows) return html`<section><h1>Balances</h1><${Loading} what="Balances" /></section>`;
  const held = rows.filter((r) => num(r.quantity) !== 0);
  const assets = [...new Set(held.map((r) => r.asset))].sort();
  const wallets = [...new Set(held.map((r) => r.wallet))].sort();
  const priced = held.filter((r) => r.market_value !== null && r.market_value !== undefined);
  const unpriced = held.filter((r) => !priced.includes(r));
  const basis = (wallet, asset) => held.filter((r) => r.wallet === wallet && r.asset === asset)
    .reduce((sum, r) => sum + num(r.cost_basis), 0);
  const negative = held.filter(isNegative);
  const allWallets = [...new Set(rows.map((r) => r.wallet).filter(Boolean))]
    .sort((a, b) => a.localeCompare(b));
  return html`
    <section aria-labelledby="balances-title">
      <h1 id="balances-title">Balances</h1>
      ${negative.length ? html`<p class="negative-note" role="note">
        <strong>${countText(negative.length)}</strong> ${negative.length === 1
          ? "balance is" : "balances are"} below zero (marked): more went out than the uploaded
        history brought in, so an acquisition is missing. <a href="#/review/negative_balance">Review
        them</a>.</p>` : null}
      ${!held.length ? html`<p>Nothing held.</p>` : html`
        <div class="card">
          <${BarChart} title="Holdings value at cost basis, per asset and wallet"
            currency=${currency} stacked=${true} labels=${assets}
            datasets=${wallets.map((w) => ({ label: w, data: assets.map((a) => basis(w, a)) }))} />
        </div>
        <${WalletsCard} wallets=${allWallets} onDone=${() => setReload((n) => n + 1)} />
        <${ScrollBox} label="Balances table">
        <table class="data balances-table stack">
          <caption class="visually-hidden">Balances per wallet and asset</caption>
          <thead><tr><th scope="col">Wallet</th><th scope="col">Asset</th>
            <th scope="col" class="num">Quantity</th><th scope="col" class="num">Cost basis</th>
            <th scope="col" class="num">Price</th><th scope="col" class="num">Market value</th>
            <th scope="col" class="num">Unrealized gain</th>
          </tr></thead>
          <tbody>${held.map((r) => html`
            <tr data-asset=${r.asset} data-wallet=${r.wallet}
              data-negative=${isNegative(r) ? "true" : "false"}
              class=${isNegative(r) ? "negative" : ""}>
              <td data-label="Wallet">${r.wallet}</td>
              <td data-label="Asset">${r.asset}</td>
              <td class="num" data-label="Quantity" title=${r.quantity}>${isNegative(r)
                ? html`<span class="tag tag-bad">below zero</span> ` : null}${
                amountText(r.quantity)}</td>
              <td class="num" data-label="Cost basis"><${Money} value=${r.cost_basis}
                currency=${currency} /></td>
              <td class="num" data-label="Price"
                title=${r.price_at ? `quoted ${timeText(r.price_at)}` : "no price cached"}>
                <${Money} value=${r.price} currency=${currency} price=${true} /></td>
              <td class="num" data-label="Market value"><${Money} value=${r.market_value}
                currency=${currency} /></td>
              <td class="num" data-label="Unrealized gain"><${Money} value=${r.unrealized_gain}
                currency=${currency} /></td>
            </tr>`)}
          </tbody>
          <tfoot><tr class="totals"><th scope="row" colspan="3">Total${unpriced.length
            ? html` <span class="muted">(market value and gain: the ${priced.length} holdings with a
              price; ${unpriced.length} without)</span>` : null}</th>
            <td class="num" data-label="Cost basis"><${Money} value=${cents(held, "cost_basis")}
              currency=${currency} /></td>
            <td class="empty"></td>
            <td class="num" data-label="Market value"><${Money}
              value=${cents(priced, "market_value")} currency=${currency} /></td>
            <td class="num" data-label="Unrealized gain"><${Money}
              value=${cents(priced, "unrealized_gain")} currency=${currency} /></td></tr></tfoot>
        </table></${ScrollBox}>`}
    </section>`;
}
