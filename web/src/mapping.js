// The column mapping of a CSV no format knows (`?format=mapped`): the file's first rows shown,
// a column picked for each field, saved with PUT /v1/formats/mapping; the upload then reads it.
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { getJson, putJson } from "./api.js";
import { ErrorLine, ScrollBox } from "./components.js";

const PREVIEW_BYTES = 64 * 1024;
const PREVIEW_ROWS = 5;
// field -> what it is; timestamp and one side (amount + asset) are required
const FIELDS = [
  ["timestamp", "Date and time (required)"],
  ["sent_amount", "Sent amount"], ["sent_asset", "Sent asset"],
  ["received_amount", "Received amount"], ["received_asset", "Received asset"],
  ["fee_amount", "Fee amount"], ["fee_asset", "Fee asset"],
  ["type", "Type or label (staking, reward... make income)"],
  ["value", "Fiat value"], ["value_currency", "Fiat value currency"],
  ["wallet", "Wallet column"], ["tx_hash", "Transaction hash"], ["description", "Description"],
];

/** Rows of CSV text (quotes, doubled quotes, the delimiter its header line uses most). */
export function csvRows(text, maxRows) {
  const firstLine = text.split(/\r?\n/, 1)[0] || "";
  const delimiter = [",", ";", "\t"].reduce((best, d) =>
    (firstLine.split(d).length > firstLine.split(best).length ? d : best), ",");
  const rows = [];
  let row = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length && rows.length < maxRows; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === delimiter) { row.push(cell); cell = ""; } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(cell); rows.push(row); row = []; cell = "";
    } else cell += c;
  }
  if ((cell || row.length) && rows.length < maxRows) rows.push([...row, cell]);
  return rows.map((r, i) => (i === 0 ? r.map((h) => h.replace(/^\uFEFF/, "").trim()) : r));
}

/** A guess for each field from the header's names (a saved mapping wins over it). */
function guess(header) {
  const find = (...words) => header.find((h) => words.some((w) => h.toLowerCase().includes(w)));
  return {
    timestamp: find("date", "time") || "",
    sent_amount: find("sent amount", "sent qty") || "",
    sent_asset: find("sent currency", "sent asset") || "",
    received_amount: find("received amount", "received qty") || "",
    received_asset: find("received currency", "received asset") || "",
  };
}

export function MappingCard({ file, onReady }) {
  const [rows, setRows] = useState(null);
  const [mapping, setMapping] = useState({});
  const [saved, setSaved] = useState(false);
  const [error, setError] = useState(null);

  useEffect(() => {
    if (!file) return;
    let stale = false;
    setSaved(false);
    onReady(false);
    (async () => {
      const rowsRead = csvRows(await file.slice(0, PREVIEW_BYTES).text(), PREVIEW_ROWS + 1);
      const stored = await getJson("/v1/formats/mapping").catch(() => null);
      if (stale) return;
      const header = rowsRead[0] || [];
      const fromStored = Object.fromEntries(Object.entries(stored || {})
        .filter(([k, v]) => v && (k === "timestamp_format" || header.includes(v))));
      setRows(rowsRead);
      setMapping({ ...guess(header), ...fromStored });
    })().catch(setError);
    return () => { stale = true; };
  }, [file]);

  if (!file) {
    return html`<div class="card mapping"><h2>Column mapping</h2>
      <p class="muted">Choose the file first: its first rows are shown here to pick the columns
        from.</p></div>`;
  }
  if (!rows) return html`<div class="card mapping"><${ErrorLine} error=${error} /></div>`;
  const [header, ...sample] = rows;
  const pick = (field, value) => { setSaved(false); onReady(false);
    setMapping({ ...mapping, [field]: value }); };
  const save = async () => {
    setError(null);
    const body = Object.fromEntries(Object.entries(mapping).filter(([, v]) => v));
    try {
      await putJson("/v1/formats/mapping", body);
      setSaved(true);
      onReady(true);
    } catch (exc) {
      setError(exc);
    }
  };
  return html`
    <section class="card mapping" aria-labelledby="mapping-title">
      <h2 id="mapping-title">Column mapping of ${file.name}</h2>
      <p class="hint">The first ${sample.length} rows of the file. Pick the column holding each
        field; a row with both sides is a trade, one with a type such as staking is income.</p>
      <${ScrollBox} label="First rows of the file">
        <table class="data preview-table">
          <caption class="visually-hidden">First rows of ${file.name}</caption>
          <thead><tr>${header.map((h) => html`<th scope="col">${h}</th>`)}</tr></thead>
          <tbody>${sample.map((r) => html`<tr>${header.map((_, i) =>
            html`<td>${r[i] ?? ""}</td>`)}</tr>`)}</tbody>
        </table>
      </${ScrollBox}>
      <div class="mapping-fields">
        ${FIELDS.map(([field, label]) => html`
          <div class="field">
            <label for=${`map-${field}`}>${label}</label>
            <select id=${`map-${field}`} value=${mapping[field] || ""}
              onChange=${(e) => pick(field, e.target.value)}>
              <option value="">— none —</option>
              ${header.map((h) => html`<option value=${h}>${h}</option>`)}
            </select>
          </div>`)}
        <div class="field">
          <label for="map-timestamp_format">Date format (strptime; empty: ISO 8601)</label>
          <input id="map-timestamp_format" value=${mapping.timestamp_format || ""}
            placeholder="%d/%m/%Y %H:%M" onInput=${(e) => pick("timestamp_format", e.target.value)} />
        </div>
      </div>
      <button type="button" onClick=${save}>Save mapping</button>
      ${saved ? html` <span class="saved" role="status">Saved: uploads as "mapped" read it.</span>`
        : null}
      <${ErrorLine} error=${error} />
    </section>`;
}
