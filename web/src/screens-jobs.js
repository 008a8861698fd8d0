// Jobs: the list with status, and one job with its rejected rows (paged).
import { html } from "htm/preact";
import { getJson } from "./api.js";
import { ErrorLine, JobProgress, Loading, Pager, ScrollBox, usePages } from "./components.js";
import { countText, shortTimeText } from "./format.js";

const JOBS_PER_PAGE = 20;
const ROWS_PER_PAGE = 50;

// GET /v1/jobs lists ids and status; each row's details come from GET /v1/jobs/{id}.
async function jobsPage(pageToken) {
  const page = await getJson("/v1/jobs", { limit: JOBS_PER_PAGE, page_token: pageToken });
  const items = await Promise.all(page.items.map((j) =>
    getJson(`/v1/jobs/${j.job_id}`).catch(() => ({ ...j, stages: {} }))));
  return { ...page, items };
}

export function JobsScreen() {
  const pages = usePages(jobsPage, "jobs");
  const { page, error } = pages;
  return html`
    <section aria-labelledby="jobs-title">
      <h1 id="jobs-title">Jobs</h1>
      <${ErrorLine} error=${error} />
      ${!page ? html`<${Loading} what="Jobs" />` : page.items.length === 0
        ? html`<p>No jobs yet: <a href="#/upload">upload a file</a>.</p>` : html`
        <${ScrollBox} label="Jobs table">
        <table class="data jobs-table stack">
          <caption class="visually-hidden">Your jobs, newest first</caption>
          <thead><tr><th scope="col">Created</th><th scope="col">File</th>
            <th scope="col">Read as</th><th scope="col">Status</th>
            <th scope="col" class="num">Rows read</th>
            <th scope="col" class="num">Transactions</th>
            <th scope="col" class="num">New</th>
            <th scope="col" class="num">Skipped</th><th scope="col" class="num">Rejected</th>
            <th scope="col"><span class="visually-hidden">Details</span></th></tr></thead>
          <tbody>
            ${page.items.map((job) => {
              const s = job.import_summary;
              const cell = (n, label) => html`<td class="num" data-label=${label}>${s
                ? countText(n) : "–"}</td>`;
              return html`
              <tr data-job-id=${job.job_id} data-status=${job.status}>
                <td class="nowrap" data-label="Created">${shortTimeText(job.created_at)}</td>
                <td data-label="File">${job.kind === "upload" ? job.file_name : html`<em>${job.kind}</em>`}</td>
                <td data-label="Read as">${s ? html`<code>${s.format}</code>${s.wallets.length
                  ? html` · ${s.wallets.join(", ")}` : null}` : job.wallet || "–"}</td>
                <td data-label="Status"><span class=${`status status-${job.status}`}>${job.status}</span>
                  ${job.status === "failed" && job.error ? html`<div class="job-error">${
                    job.error.split(";")[0]}</div>` : null}</td>
                ${cell(s?.rows_read, "Rows read")}${cell(s?.transactions, "Transactions")}
                ${cell(s?.new_transactions, "New")}${cell(s?.skipped, "Skipped")}
                ${cell(s?.rejected, "Rejected")}
                <td><a href=${`#/jobs/${job.job_id}`}>details<span class="visually-hidden">
                  of job ${job.job_id}</span></a></td>
              </tr>`;
            })}
          </tbody>
        </table></${ScrollBox}>`}
      <${Pager} pages=${pages} label="Jobs" />
    </section>`;
}

export function JobScreen({ jobId }) {
  const pages = usePages((token) => getJson(`/v1/jobs/${jobId}/errors`,
    { limit: ROWS_PER_PAGE, page_token: token }), jobId);
  const { page, error } = pages;
  return html`
    <section aria-labelledby="job-title">
      <p><a href="#/jobs">← All jobs</a></p>
      <h1 id="job-title">Job <code>${jobId}</code></h1>
      <div class="card"><${JobProgress} jobId=${jobId} /></div>
      <h2>Rejected and skipped rows</h2>
      <${ErrorLine} error=${error} />
      ${!page ? html`<${Loading} what="Rows" />` : page.items.length === 0 && pages.index === 0
        ? html`<p class="muted">No rejected or skipped rows.</p>` : html`
        <${ScrollBox} label="Rejected and skipped rows table">
        <table class="data rejected-table">
          <caption class="visually-hidden">Rows of the file that were not taken, by line</caption>
          <thead><tr><th scope="col" class="num">Line</th><th scope="col">Reason</th>
            <th scope="col">Row as in the file</th></tr></thead>
          <tbody>
            ${page.items.map((row) => html`
              <tr data-line=${row.line}>
                <td class="num">${row.line}</td>
                <td>${row.reason}</td>
                <td><code class="raw">${row.raw}</code></td>
              </tr>`)}
          </tbody>
        </table></${ScrollBox}>`}
      <${Pager} pages=${pages} label="Rejected rows" />
    </section>`;
}
