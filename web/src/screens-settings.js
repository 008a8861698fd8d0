// Settings: cost-basis method and pooling (only the combinations the API allows); saving starts
// the recompute job, whose progress shows here.
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { getJson, putJson } from "./api.js";
import { ErrorLine, JobProgress, Loading, Money, ScrollBox } from "./components.js";
import { CURRENCIES } from "./format.js";

const METHOD_NAMES = {
  fifo: "FIFO: first in, first out", lifo: "LIFO: last in, first out",
  hifo: "HIFO: highest cost first", acb: "ACB: average cost basis (Canada)",
  uk: "UK: same day, 30 days, section 104 pool",
};
const POOLING_NAMES = {
  "per-wallet": "Per wallet: each wallet keeps its own lots",
  universal: "Universal: one pool per asset across wallets",
};

/** The yearly totals (GET /v1/gains without a year), or [] when there are none yet. */
const yearTotals = () => getJson("/v1/gains", { limit: 100 }).then((p) => p.items, () => []);

/** Each tax year's gain and income before and after a recompute, side by side. */
function BeforeAfter({ before, after, was, now }) {
  const years = [...new Set([...before, ...after].map((r) => r.year))].sort();
  const of = (rows, year) => rows.find((r) => r.year === year) || {};
  return html`
    <${ScrollBox} label="Yearly totals before and after">
    <table class="data before-after">
      <caption>Yearly totals: before (${was.method} · ${was.pooling} · ${was.currency})
        and after (${now.method} · ${now.pooling} · ${now.currency})${(was.method === "uk")
          !== (now.method === "uk") ? html`<span class="hint"> · UK tax years run 6 April to 5
          April (2023/24), the others are calendar years: their rows differ</span>` : null}
      </caption>
      <thead><tr><th scope="col">Tax year</th>
        <th scope="col" class="num">Gain before</th><th scope="col" class="num">Gain after</th>
        <th scope="col" class="num">Income before</th>
        <th scope="col" class="num">Income after</th></tr></thead>
      <tbody>${years.map((y) => html`<tr data-year=${y}><th scope="row">${y}</th>
        <td class="num"><${Money} value=${of(before, y).gain} currency=${was.currency} /></td>
        <td class="num"><${Money} value=${of(after, y).gain} currency=${now.currency} /></td>
        <td class="num"><${Money} value=${of(before, y).income} currency=${was.currency} /></td>
        <td class="num"><${Money} value=${of(after, y).income} currency=${now.currency} /></td>
      </tr>`)}</tbody>
    </table></${ScrollBox}>`;
}

export function SettingsScreen({ choices, onSaved }) {
  const [current, setCurrent] = useState(null);
  const [method, setMethod] = useState("");
  const [pooling, setPooling] = useState("");
  const [currency, setCurrency] = useState("");
  const [poolingNote, setPoolingNote] = useState(null);
  const [jobId, setJobId] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [compare, setCompare] = useState(null); // {was, now, before, after}

  useEffect(() => {
    getJson("/v1/settings").then((s) => {
      setCurrent(s);
      setMethod(s.method);
      setPooling(s.pooling);
      setCurrency(s.currency);
    }, setError);
  }, []);
  if (!current || !choices) {
    return html`<section><h1>Settings</h1><${ErrorLine} error=${error} /><${Loading} /></section>`;
  }
  const allowed = choices.poolings[method] || [];
  // A method that does not allow the chosen pooling changes it, and says so: pooling never
  // changes without the user seeing it.
  const chooseMethod = (m) => {
    setMethod(m);
    const ok = choices.poolings[m] || [];
    if (!ok.includes(pooling)) {
      setPoolingNote(`${METHOD_NAMES[m] || m} allows only ${ok.join(" or ")} pooling: pooling `
        + `changes from ${pooling} to ${ok[0]}.`);
      setPooling(ok[0]);
    } else setPoolingNote(null);
  };
  const changes = [["method", current.method, method], ["pooling", current.pooling, pooling],
    ["currency", current.currency, currency]].filter(([, was, now]) => was !== now);
  const save = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const before = await yearTotals();
      const accepted = await putJson("/v1/settings", { method, pooling, currency });
      const now = { ...current, method, pooling, currency };
      setCompare({ was: current, now, before, after: null });
      setCurrent(now);
      setPoolingNote(null);
      setJobId(accepted.job_id);
      if (onSaved) onSaved(now);
    } catch (exc) {
      setError(exc);
    }
    setBusy(false);
  };
  const recomputed = async (job) => {
    if (job.status !== "succeeded") return;
    const after = await yearTotals();
    setCompare((c) => (c ? { ...c, after } : c));
  };
  return html`
    <section aria-labelledby="settings-title">
      <h1 id="settings-title">Settings</h1>
      <form class="card" onSubmit=${save}>
        <fieldset>
          <legend>Cost-basis method</legend>
          ${Object.keys(choices.poolings).map((m) => html`
            <div class="choice">
              <input type="radio" id=${`method-${m}`} name="method" value=${m}
                checked=${method === m} onChange=${() => chooseMethod(m)} />
              <label for=${`method-${m}`}>${METHOD_NAMES[m] || m}</label>
            </div>`)}
        </fieldset>
        <fieldset>
          <legend>Pooling</legend>
          ${allowed.map((p) => html`
            <div class="choice">
              <input type="radio" id=${`pooling-${p}`} name="pooling" value=${p}
                checked=${pooling === p} onChange=${() => { setPooling(p); setPoolingNote(null); }} />
              <label for=${`pooling-${p}`}>${POOLING_NAMES[p] || p}</label>
            </div>`)}
          ${allowed.length === 1 ? html`<p class="hint">${METHOD_NAMES[method] || method} allows
            only ${allowed[0]} pooling.</p>` : null}
          <p class="notice pooling-note" role="status">${poolingNote || ""}</p>
        </fieldset>
        <div class="field">
          <label for="currency">Reporting currency</label>
          <select id="currency" value=${currency} onChange=${(e) => setCurrency(e.target.value)}>
            ${[...new Set([current.currency, ...CURRENCIES])].map((c) =>
              html`<option value=${c}>${c}</option>`)}
          </select>
        </div>
        <p class="hint changes">${changes.length
          ? html`Saving changes ${changes.map(([what, was, now], i) =>
              html`${i ? "; " : ""}${what} <strong>${was}</strong> → <strong>${now}</strong>`)},
              and recomputes all your data.`
          : "Nothing changed."}</p>
        <button type="submit" class="primary" disabled=${busy || !changes.length}>
          ${busy ? "Saving…" : "Save and recompute"}</button>
        <${ErrorLine} error=${error} />
      </form>
      ${jobId ? html`<div class="card recompute">
        <h2>Recompute</h2><${JobProgress} key=${jobId} jobId=${jobId} label="recompute"
          onFinished=${recomputed} />
        ${compare?.after ? html`<${BeforeAfter} ...${compare} />` : null}
      </div>` : null}
    </section>`;
}
