// Pieces the screens share: money with its exact value on hover, the live job progress, a pager
// over the API's page tokens, a bar chart, error and loading lines.
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip }
  from "chart.js";
import { getJson } from "./api.js";
import { bytesText, countText, durationText, moneyText, percent, priceText, secondsBetween }
  from "./format.js";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

export const STAGES = ["parse", "store", "prices", "tax"];
export const FINISHED = new Set(["succeeded", "failed"]);
const POLL_MS = 1000;

export function Money({ value, currency, price = false }) {
  if (value === null || value === undefined) return html`<span class="muted">–</span>`;
  return html`<span class="money" title=${`${value} ${currency || ""}`.trim()}>${
    (price ? priceText : moneyText)(value, currency)}</span>`;
}

export function ErrorLine({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${error.message || String(error)}</p>`;
}

export function Loading({ what = "Loading" }) {
  return html`<p class="muted" role="status">${what}…</p>`;
}

// What each stage counts: parse the file's bytes, store the transactions written, prices the
// price windows (an asset's 88 days), tax the transaction rows it writes (a trade of two assets
// once per asset).
const STAGE_UNITS = {
  parse: ({ done, total }) => `${bytesText(done)} / ${bytesText(total)}`,
  store: ({ done, total }) => `${countText(done)} / ${countText(total)} rows`,
  prices: ({ done, total }) => `${countText(done)} / ${countText(total)} price windows`,
  tax: ({ done, total }) => `${countText(done)} / ${countText(total)} rows written`,
};
const QUEUE_PAGE = 100;

/** Where a job stands among the user's unfinished jobs, oldest first: {place, size, ahead}. */
async function queuePlace(jobId) {
  const page = await getJson("/v1/jobs", { limit: QUEUE_PAGE }).catch(() => null);
  if (!page) return null;
  const open = page.items.filter((j) => !FINISHED.has(j.status)).reverse();
  const index = open.findIndex((j) => j.job_id === jobId);
  return index < 0 ? null : { place: index + 1, size: open.length, ahead: index };
}

/** One job's status and per-stage bars, polled from GET /v1/jobs/{id} until it ends. */
export function JobProgress({ jobId, onFinished, label }) {
  const [job, setJob] = useState(null);
  const [error, setError] = useState(null);
  const [queue, setQueue] = useState(null);
  const shown = useRef({});
  const finishedRef = useRef(onFinished);
  finishedRef.current = onFinished;

  useEffect(() => {
    let stopped = false;
    let timer = null;
    const poll = async () => {
      try {
        const next = await getJson(`/v1/jobs/${jobId}`);
        if (stopped) return;
        setJob(next);
        setError(null);
        if (FINISHED.has(next.status)) {
          setQueue(null);
          if (finishedRef.current) finishedRef.current(next);
          return;
        }
        const place = await queuePlace(next.job_id);
        if (!stopped) setQueue(place);
      } catch (exc) {
        if (stopped) return;
        setError(exc);
        if (exc.status === 401 || exc.status === 404) return;
      }
      timer = setTimeout(poll, POLL_MS);
    };
    poll();
    return () => { stopped = true; clearTimeout(timer); };
  }, [jobId]);

  if (!job) return error ? html`<${ErrorLine} error=${error} />` : html`<${Loading} what="Job" />`;
  const completed = new Set(job.completed_stages || []);
  const succeeded = job.status === "succeeded";
  const took = secondsBetween(job.started_at, job.finished_at);
  return html`
    <div class="job" data-job-id=${job.job_id} data-status=${job.status}>
      <p class="job-head">
        <span class=${`status status-${job.status}`}>${job.status}</span>
        ${" "}${label || job.file_name || job.kind}
        <span class="muted"> · job <code>${job.job_id.slice(0, 8)}</code></span>
      </p>
      <div class="stages" aria-live="polite">
        ${STAGES.filter((stage) => job.kind === "upload" || stage === "tax"
          || (job.stages?.[stage]?.total || 0) > 0)
          .map((stage) => {
          const counts = (job.stages || {})[stage] || { done: 0, total: 0 };
          const done = succeeded || completed.has(stage);
          // A stage's total grows as its parts start (the tax shards): its bar holds the highest
          // share seen and stays below 100% until the stage is done, so it never goes back.
          const pct = done ? 100 : Math.max(shown.current[stage] || 0,
            Math.min(99, percent(counts.done, counts.total)));
          shown.current[stage] = pct;
          const id = `stage-${job.job_id}-${stage}`;
          return html`
            <div class="stage" data-stage=${stage}>
              <label for=${id}>${stage}</label>
              <progress id=${id} max="100" value=${pct}>${pct}%</progress>
              <span class="pct" data-pct=${pct}>${pct}%</span>
              <span class="muted counts">${STAGE_UNITS[stage](counts)}</span>
            </div>`;
        })}
      </div>
      <p class="job-result">
        ${FINISHED.has(job.status) && job.kind !== "upload"
          ? html`${job.status === "succeeded" ? "recomputed from" : "stopped, computing from"}
              ${" "}<strong class="history">${countText(job.history_transactions)}
              ${" "}transactions</strong>${" "}in <span class="took">${durationText(took)}</span>`
          : FINISHED.has(job.status)
          ? html`${job.status === "succeeded" ? "done" : "stopped"}
              ${" "}in <span class="took">${durationText(took)}</span>`
          : job.status === "queued"
          ? html`<span class="queued">queued${queue ? html`: ${queue.ahead
              ? `${countText(queue.ahead)} of your earlier jobs first` : "starting"}` : null}
              </span>`
          : html`running for ${durationText(took) || "0.0 s"}`}
        ${queue && !FINISHED.has(job.status) ? html`${" "}<span class="queue-place muted"
          >(${countText(queue.place)} of ${countText(queue.size)} in your queue; your jobs run
          one at a time)</span>` : null}
        ${(job.rejected > 0 || job.import_summary?.skipped > 0) && job.kind === "upload"
          ? html` · <a href=${`#/jobs/${job.job_id}`}>see the rejected and skipped rows</a>`
          : null}
      </p>
      <${ImportSummary} job=${job} />
      ${job.notes?.length
        ? html`<ul class="job-notes" aria-label="How the file was read">
            ${job.notes.map((note) => html`<li>${note}</li>`)}</ul>`
        : null}
      ${job.error ? html`<p class="error" role="alert">${job.error}</p>` : null}
      <${ErrorLine} error=${error} />
    </div>`;
}

/** A wide table in its own keyboard-focusable scroll region: on a narrow screen the table
 * scrolls inside its card instead of widening the page. */
export function ScrollBox({ label, children }) {
  return html`<div class="scroll" tabindex="0" role="region" aria-label=${label}>${children}</div>`;
}

const reasonList = (reasons) => Object.entries(reasons || {})
  .sort((a, b) => b[1] - a[1])
  .map(([reason, n]) => html`<li><span class="n">${countText(n)}</span> ${reason}</li>`);

/** What an upload's file gave, from the job's import_summary: every row of the file is read,
 * used, skipped or rejected, and the rows used made the transactions (new or already there). */
export function ImportSummary({ job }) {
  const s = job.import_summary;
  if (!s) return null;
  const combined = s.rows_used > s.transactions;
  const nothingNew = s.transactions > 0 && s.new_transactions === 0;
  return html`
    <div class="import-summary" data-new=${s.new_transactions}
      data-present=${s.already_present}>
      <p class="headline">
        ${nothingNew
          ? html`<strong class="nothing-new">Nothing new:</strong>${" "}all${" "}
              ${countText(s.transactions)} transactions of this file were already stored (uploaded
              before); nothing was added.`
          : s.transactions === 0
          ? html`<strong class="nothing-new">Nothing imported.</strong>`
          : html`<strong class="new">${countText(s.new_transactions)} new transactions</strong>
              ${s.already_present ? html`, ${countText(s.already_present)} already stored` : null}`}
      </p>
      <ul class="counts-list">
        <li class="rows-read"><span class="n">${countText(s.rows_read)}</span> rows read
          <span class="muted"> as <code>${s.format}</code>${s.wallets.length
            ? html`, ${s.wallets.length > 1 ? "wallets" : "wallet"} ${s.wallets.join(", ")}`
            : null}</span></li>
        <li class="rows-used"><span class="n">${countText(s.rows_used)}</span> rows used, making
          ${" "}<strong class="transactions">${countText(s.transactions)} transactions</strong>
          ${combined ? html`<span class="muted"> (the export lists one trade as two or more rows:
            buy, sell, fee; together they make one transaction)</span>` : null}</li>
        <li class="skipped"><span class="n">${countText(s.skipped)}</span> rows skipped
          ${s.skipped ? html`<span class="muted"> (no tax effect)</span>
            <ul class="reasons">${reasonList(s.skipped_reasons)}</ul>` : null}</li>
        <li class="rejected"><span class="n">${countText(s.rejected)}</span> rows rejected
          ${s.rejected ? html`<ul class="reasons">${reasonList(s.rejected_reasons)}</ul>` : null}
        </li>
      </ul>
    </div>`;
}

/**
 * Pages of an API list: `load(pageToken)` -> {items, next_page_token}. Keeps the tokens of the
 * pages seen so Previous works; `resetKey` starts over (new filters).
 */
export function usePages(load, resetKey) {
  const [tokens, setTokens] = useState([null]); // token of each page seen; [0] = first page
  const [index, setIndex] = useState(0);
  const [page, setPage] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  // New filters: back to the first page, and no rows of the old filters meanwhile.
  useEffect(() => { setTokens([null]); setIndex(0); setPage(null); }, [resetKey]);

  useEffect(() => {
    let stale = false;
    setBusy(true);
    load(tokens[index]).then((next) => {
      if (stale) return;
      setPage(next);
      setError(null);
      setBusy(false);
    }, (exc) => {
      if (stale) return;
      setError(exc);
      setBusy(false);
    });
    return () => { stale = true; };
  }, [resetKey, index, tokens]);

  const next = () => {
    if (!page || !page.next_page_token) return;
    setTokens([...tokens.slice(0, index + 1), page.next_page_token]);
    setIndex(index + 1);
  };
  const previous = () => index > 0 && setIndex(index - 1);
  return { page, error, busy, index, next, previous };
}

export function Pager({ pages, label }) {
  const { page, index, busy } = pages;
  return html`
    <nav class="pager" aria-label=${`${label} pages`}>
      <button type="button" onClick=${pages.previous} disabled=${busy || index === 0}>
        ← Previous</button>
      <span class="muted">page ${index + 1}</span>
      <button type="button" onClick=${pages.next}
        disabled=${busy || !page || !page.next_page_token}>Next →</button>
    </nav>`;
}

// Twelve distinguishable colours (Tableau's 10 and two more); past them, hues spread evenly.
const PALETTE = ["#1d4ed8", "#b45309", "#047857", "#7c3aed", "#be123c", "#0e7490",
  "#4d7c0f", "#a21caf", "#c2410c", "#334155", "#0f766e", "#854d0e"];
export const seriesColour = (i, n) => (n <= PALETTE.length ? PALETTE[i]
  : `hsl(${Math.round((360 * i) / n)} 70% 38%)`);

/** A bar chart: labels on x, one bar series per dataset {label, data}. */
export function BarChart({ labels, datasets, title, currency = "USD", stacked = false }) {
  const canvas = useRef(null);
  useEffect(() => {
    const chart = new Chart(canvas.current, {
      type: "bar",
      data: {
        labels,
        datasets: datasets.map((d, i) => ({
          ...d, backgroundColor: seriesColour(i, datasets.length), borderWidth: 0,
        })),
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: {
          legend: { position: "bottom" },
          tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${moneyText(c.raw, currency)}` } },
        },
        scales: {
          x: { stacked },
          y: { stacked, ticks: { callback: (v) => moneyText(v, currency).replace(/\.00$/, "") } },
        },
      },
    });
    return () => chart.destroy();
  }, [JSON.stringify(labels), JSON.stringify(datasets), currency, stacked]);
  return html`
    <figure class="chart">
      <figcaption>${title}</figcaption>
      <div class="chart-box"><canvas ref=${canvas} role="img" aria-label=${title}></canvas></div>
    </figure>`;
}
