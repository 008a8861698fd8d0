// The uploaded files (GET /v1/uploads) with delete (a confirm step first) and undo, and the
// audit list of every correction (GET /v1/corrections) with undo. Each change runs the
// recompute job: its progress shows on top, and the list is read again when it ends.
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { correctionsPage, deleteUpload, undoCorrection, uploadsPage } from "./api.js";
import { ErrorLine, JobProgress, Loading, Pager, ScrollBox, usePages } from "./components.js";
import { KIND_NAMES } from "./corrections.js";
import { countText, shortTimeText, timeText } from "./format.js";

/** The changes started on this screen (newest first), each with its job's progress. */
function useChanges() {
  const [changes, setChanges] = useState([]);
  const add = (change) => setChanges((all) => [{ ...change, at: Date.now() }, ...all]);
  return [changes, add];
}

function Changes({ changes, onFinished, title }) {
  if (!changes.length) return null;
  return html`
    <section class="card changes-card" aria-labelledby="changes-title">
      <h2 id="changes-title">${title}</h2>
      ${changes.map((c) => html`
        <div class="change" key=${c.job_id} data-correction-id=${c.correction_id}>
          <p class="change-head">${c.what}</p>
          <${JobProgress} jobId=${c.job_id} label=${c.label} onFinished=${onFinished} />
        </div>`)}
    </section>`;
}

/** The newest corrections (up to `pages` pages): which delete_upload undoes an upload. */
async function uploadDeletions(pages = 4) {
  const out = new Map();
  let token = null;
  for (let i = 0; i < pages; i++) {
    const page = await correctionsPage(token, 200);
    for (const c of page.items) {
      const id = c.change?.upload_id;
      if (c.kind === "delete_upload" && id && !c.undone && !out.has(String(id))) {
        out.set(String(id), c.correction_id);
      }
    }
    token = page.next_page_token;
    if (!token) break;
  }
  return out;
}

async function uploadsWithDeletions(token) {
  const [page, deletions] = await Promise.all([uploadsPage(token),
    uploadDeletions().catch(() => new Map())]);
  return { ...page, deletions };
}

function UploadRow({ upload, deletion, onChange }) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const name = upload.filename || upload.job_id;
  const run = async (call, what, label) => {
    setBusy(true);
    setError(null);
    try {
      const accepted = await call();
      onChange({ ...accepted, what, label });
      setConfirming(false);
    } catch (exc) {
      setError(exc);
    }
    setBusy(false);
  };
  const remove = () => run(() => deleteUpload(upload.job_id), `Deleting ${name}`,
    `delete ${name}`);
  const undo = () => run(() => undoCorrection(deletion), `Restoring ${name}`, `undo delete`);
  return html`
    <tr data-job-id=${upload.job_id} data-deleted=${upload.deleted ? "true" : "false"}
      class=${upload.deleted ? "deleted" : ""}>
      <td data-label="Uploaded" class="nowrap" title=${timeText(upload.uploaded_at)}>
        ${shortTimeText(upload.uploaded_at)}</td>
      <td data-label="File"><a href=${`#/jobs/${upload.job_id}`}>${name}</a>
        ${upload.deleted ? html` <span class="tag tag-deleted">deleted</span>` : null}</td>
      <td data-label="Format"><code>${upload.source_format || "–"}</code></td>
      <td data-label="Rows used" class="num">${countText(upload.rows_accepted)}</td>
      <td data-label="Rows rejected" class="num">${countText(upload.rows_rejected)}</td>
      <td data-label="Status"><span class=${`status status-${upload.status}`}>${upload.status}</span>
      </td>
      <td data-label="Change" class="row-actions">
        ${upload.deleted
          ? (deletion ? html`<button type="button" onClick=${undo} disabled=${busy}>
              Undo delete<span class="visually-hidden"> of ${name}</span></button>`
            : html`<span class="muted">deleted</span>`)
          : confirming ? html`
            <div class="confirm" role="group" aria-label=${`Confirm deleting ${name}`}>
              <p>Delete <strong>${name}</strong>? Its transactions leave your history (those
                another upload also holds stay); you can undo it.</p>
              <button type="button" class="danger" onClick=${remove} disabled=${busy}>
                Delete upload</button>
              ${" "}<button type="button" onClick=${() => setConfirming(false)}>Keep it</button>
            </div>`
          : html`<button type="button" onClick=${() => setConfirming(true)}
              disabled=${upload.status !== "succeeded" && upload.status !== "failed"}>
              Delete…<span class="visually-hidden"> ${name}</span></button>`}
        <${ErrorLine} error=${error} />
      </td>
    </tr>`;
}

export function UploadsScreen() {
  const [reload, setReload] = useState(0);
  const [changes, addChange] = useChanges();
  const pages = usePages(uploadsWithDeletions, `uploads:${reload}`);
  const { page, error } = pages;
  return html`
    <section aria-labelledby="files-title">
      <h1 id="files-title">Uploaded files</h1>
      <p class="hint">Every file you uploaded. Deleting one takes its transactions out of your
        history and recomputes what they touched; the file's rows stay stored, so an undo brings
        them back.</p>
      <${Changes} changes=${changes} title="Changes" onFinished=${() => setReload((n) => n + 1)} />
      <${ErrorLine} error=${error} />
      ${!page ? html`<${Loading} what="Uploads" />` : page.items.length === 0 && pages.index === 0
        ? html`<p>No uploads yet: <a href="#/upload">upload a file</a>.</p>` : html`
        <${ScrollBox} label="Uploads table">
        <table class="data uploads-table stack">
          <caption class="visually-hidden">Your uploads, newest first</caption>
          <thead><tr><th scope="col">Uploaded</th><th scope="col">File</th>
            <th scope="col">Format</th><th scope="col" class="num">Rows used</th>
            <th scope="col" class="num">Rows rejected</th><th scope="col">Status</th>
            <th scope="col">Change</th></tr></thead>
          <tbody>${page.items.map((u) => html`<${UploadRow} key=${`${u.job_id}:${u.deleted}`}
            upload=${u} deletion=${page.deletions.get(String(u.job_id))}
            onChange=${addChange} />`)}</tbody>
        </table></${ScrollBox}>`}
      <${Pager} pages=${pages} label="Uploads" />
    </section>`;
}

function CorrectionRow({ item, onChange }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const undo = async () => {
    setBusy(true);
    setError(null);
    try {
      const accepted = await undoCorrection(item.correction_id);
      onChange({ ...accepted, what: `Undoing: ${item.summary}`, label: "undo" });
    } catch (exc) {
      setError(exc);
    }
    setBusy(false);
  };
  const state = item.undone ? "undone" : item.unapplied ? "not applied" : "applied";
  return html`
    <tr data-correction-id=${item.correction_id} data-kind=${item.kind} data-state=${state}
      class=${item.undone ? "undone" : ""}>
      <td data-label="Recorded" class="nowrap" title=${timeText(item.recorded_at)}>
        ${shortTimeText(item.recorded_at)}</td>
      <td data-label="Kind">${KIND_NAMES[item.kind] || item.kind}</td>
      <td data-label="What" class="summary">${item.summary}</td>
      <td data-label="By">${item.recorded_by}</td>
      <td data-label="State">${item.undone ? html`<span class="tag tag-undone">undone</span>`
        : item.unapplied ? html`<span class="tag tag-warn" title=${item.unapplied}>not applied</span>
            <div class="unapplied">${item.unapplied}</div>`
        : html`<span class="tag tag-ok">applied</span>`}</td>
      <td data-label="Undo" class="row-actions">${item.undone ? null : html`
        <button type="button" onClick=${undo} disabled=${busy}>Undo<span
          class="visually-hidden">: ${item.summary}</span></button>`}
        <${ErrorLine} error=${error} /></td>
    </tr>`;
}

export function CorrectionsScreen() {
  const [reload, setReload] = useState(0);
  const [changes, addChange] = useChanges();
  const pages = usePages((token) => correctionsPage(token), `corrections:${reload}`);
  const { page, error } = pages;
  return html`
    <section aria-labelledby="corrections-title">
      <h1 id="corrections-title">Corrections</h1>
      <p class="hint">Every change you made to your history, newest first: who, when, what.
        An undo is itself a correction (undo it to restore the change).</p>
      <${Changes} changes=${changes} title="Undo" onFinished=${() => setReload((n) => n + 1)} />
      <${ErrorLine} error=${error} />
      ${!page ? html`<${Loading} what="Corrections" />` : page.items.length === 0
        && pages.index === 0 ? html`<p>No corrections yet: <a href="#/review">review</a> what
          rests behind your numbers.</p>` : html`
        <${ScrollBox} label="Corrections table">
        <table class="data corrections-table stack">
          <caption class="visually-hidden">Your corrections, newest first</caption>
          <thead><tr><th scope="col">Recorded</th><th scope="col">Kind</th>
            <th scope="col">What</th><th scope="col">By</th><th scope="col">State</th>
            <th scope="col"><span class="visually-hidden">Undo</span></th></tr></thead>
          <tbody>${page.items.map((c) => html`<${CorrectionRow}
            key=${`${c.correction_id}:${c.undone}`} item=${c} onChange=${addChange} />`)}</tbody>
        </table></${ScrollBox}>`}
      <${Pager} pages=${pages} label="Corrections" />
    </section>`;
}
