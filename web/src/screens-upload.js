// Upload: pick or drop files, options, the bytes going up, then the job's live stages.
import { html } from "htm/preact";
import { useRef, useState } from "preact/hooks";
import { JobProgress } from "./components.js";
import { bytesText, percent } from "./format.js";
import { MappingCard } from "./mapping.js";
import { startUploads, useUploads } from "./uploads.js";

const ZONES = ["UTC", "Europe/London", "Europe/Berlin", "America/New_York", "America/Chicago",
  "America/Los_Angeles", "Asia/Tokyo", "Asia/Singapore", "Australia/Sydney"];

function UploadItem({ item }) {
  const pct = percent(item.loaded, item.total);
  return html`
    <li class="card upload-item" data-file=${item.name}>
      <p class="job-head"><strong>${item.name}</strong>
        <span class="muted"> · ${bytesText(item.size)}</span></p>
      ${item.jobId ? html`<${JobProgress} jobId=${item.jobId} label=${item.name} />` : html`
        <div class="stage">
          <label for=${`bytes-${item.id}`}>upload</label>
          <progress id=${`bytes-${item.id}`} max="100" value=${pct}>${pct}%</progress>
          <span class="pct">${pct}%</span>
          <span class="muted counts">${bytesText(item.loaded)} / ${bytesText(item.total)}</span>
        </div>`}
      ${item.error ? html`<p class="error upload-error" role="alert">
        ${item.name}: ${item.error.message}</p>` : null}
    </li>`;
}

export function UploadScreen({ choices }) {
  const [files, setFiles] = useState([]);
  const [format, setFormat] = useState("");
  const [wallet, setWallet] = useState("");
  const [tz, setTz] = useState("");
  const items = useUploads();
  const [dragging, setDragging] = useState(false);
  const [mappingReady, setMappingReady] = useState(false);
  const mapped = format === "mapped";
  const picker = useRef(null);

  const start = (e) => {
    e.preventDefault();
    if (!files.length) return;
    startUploads(files, { format, wallet: wallet.trim(), tz: tz.trim() });
    setFiles([]);
    if (picker.current) picker.current.value = "";
  };

  const onDrop = (e) => {
    e.preventDefault();
    setDragging(false);
    setFiles([...e.dataTransfer.files]);
  };
  const openPicker = (e) => {
    if (e.type === "click" || e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      picker.current.click();
    }
  };

  return html`
    <section aria-labelledby="upload-title">
      <h1 id="upload-title">Upload exports</h1>
      <form class="card" onSubmit=${start}>
        <div class=${`dropzone${dragging ? " dragging" : ""}`} tabindex="0" role="button"
          aria-describedby="drop-hint"
          onClick=${openPicker} onKeyDown=${openPicker}
          onDragOver=${(e) => { e.preventDefault(); setDragging(true); }}
          onDragLeave=${() => setDragging(false)} onDrop=${onDrop}>
          <p><strong>Drop CSV files here</strong> or press to choose</p>
          <p id="drop-hint" class="muted">${files.length
            ? files.map((f) => `${f.name} (${bytesText(f.size)})`).join(", ")
            : "Exports of Koinly, Coinbase, Binance, Kraken, Bybit, OKX, KuCoin, Gemini, Bitstamp, "
              + "Crypto.com or Bitvavo, or any CSV through a column mapping; several at once are fine"}</p>
        </div>
        <label for="files" class="visually-hidden">CSV files</label>
        <input id="files" ref=${picker} type="file" multiple tabindex="-1"
          accept=".csv,text/csv,text/plain"
          class="visually-hidden" onChange=${(e) => setFiles([...e.target.files])} />
        <div class="row">
          <div class="field">
            <label for="format">Format</label>
            <select id="format" value=${format} onChange=${(e) => setFormat(e.target.value)}>
              <option value="">Detect from the header row</option>
              ${(choices?.formats || []).map((f) => html`<option value=${f}>${f === "mapped"
                ? "mapped: any CSV, by your column mapping" : f}</option>`)}
            </select>
          </div>
          <div class="field">
            <label for="wallet">Wallet</label>
            <input id="wallet" value=${wallet} placeholder="the exchange's name"
              onInput=${(e) => setWallet(e.target.value)} />
          </div>
          <div class="field">
            <label for="tz">Time zone of times without offset</label>
            <input id="tz" list="zones" value=${tz} placeholder="UTC"
              onInput=${(e) => setTz(e.target.value)} />
            <datalist id="zones">${ZONES.map((z) => html`<option value=${z} />`)}</datalist>
          </div>
        </div>
        ${mapped ? html`<${MappingCard} file=${files[0]} onReady=${setMappingReady} />` : null}
        <button type="submit" class="primary" disabled=${!files.length
          || (mapped && !mappingReady)}>
          Upload ${files.length > 1 ? `${files.length} files` : "file"}</button>
      </form>
      ${items.length ? html`<h2 id="uploads-title">Uploads of this session</h2>` : null}
      <ul class="uploads" aria-label="Uploads of this session">
        ${items.map((item) => html`<${UploadItem} key=${item.id} item=${item} />`)}
      </ul>
    </section>`;
}
