// Pieces the screens share: money with its exact value on hover, the live job progress, a pager
// over the API's page tokens, a bar chart, error and loading lines.
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip }
  from "chart.js";
import { getJson } from "./api.js";
import { countText, durationText, moneyText, percent, secondsBetween } from "./format.js";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

export const STAGES = ["parse", "store", "prices", "tax"];
export const FINISHED = new Set(["succeeded", "failed"]);
const POLL_MS = 1000;

export function Money({ value, currency }) {
  if (value === null || value === undefined) return html`<span class="muted">–</span>`;
  return html`<span class="money" title=${`${value} ${currency || ""}`.trim()}>${
    moneyText(value, currency)}</span>`;
}

export function ErrorLine({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${error.message || String(error)}</p>`;
}

export function Loading({ what = "Loading" }) {
  return html`<p class="muted" role="status">${what}…</p>`;
}

/** One job's status and per-stage bars, polled from GET /v1/jobs/{id} until it ends. */
export function JobProgress({ jobId, onFinished, label }) {
  const [job, setJob] = useState(null);
  const [error, setError] = useState(null);
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
          if (finishedRef.current) finishedRef.current(next);
          return;
        }
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
  const took = secondsBetween(job.started_at || job.created_at, job.finished_at);
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
          const pct = percent(counts.done, counts.total, succeeded || completed.has(stage));
          const id = `stage-${job.job_id}-${stage}`;
          return html`
            <div class="stage" data-stage=${stage}>
              <label for=${id}>${stage}</label>
              <progress id=${id} max="100" value=${pct}>${pct}%</progress>
              <span class="pct" data-pct=${pct}>${pct}%</span>
              <span class="muted counts">${countText(counts.done)} / ${countText(counts.total)}</span>
            </div>`;
        })}
      </div>
      <p class="job-result">
        ${FINISHED.has(job.status) && job.kind !== "upload"
          ? html`${job.status === "succeeded" ? "recomputed" : "stopped"}${" "}
              <strong>${countText(job.stages?.tax?.total)} transactions</strong>
              ${" "}in <span class="took">${durationText(took)}</span>`
          : FINISHED.has(job.status)
          ? html`<strong class="accepted">${countText(job.accepted)} accepted</strong>,${" "}
              <strong class="rejected">${countText(job.rejected)} rejected</strong>
              ${" "}in <span class="took">${durationText(took)}</span>`
          : html`running for ${durationText(took) || "0.0 s"}`}
        ${job.rejected > 0 && job.kind === "upload"
          ? html` · <a href=${`#/jobs/${job.job_id}`}>see the rejected rows</a>` : null}
      </p>
      ${job.error ? html`<p class="error" role="alert">${job.error}</p>` : null}
      <${ErrorLine} error=${error} />
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

const PALETTE = ["#1d4ed8", "#b45309", "#047857", "#7c3aed", "#be123c", "#0e7490"];

/** A bar chart: labels on x, one bar series per dataset {label, data}. */
export function BarChart({ labels, datasets, title, currency = "USD", stacked = false }) {
  const canvas = useRef(null);
  useEffect(() => {
    const chart = new Chart(canvas.current, {
      type: "bar",
      data: {
        labels,
        datasets: datasets.map((d, i) => ({
          ...d, backgroundColor: PALETTE[i % PALETTE.length], borderWidth: 0,
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
