// Settings: cost-basis method and pooling (only the combinations the API allows); saving starts
// the recompute job, whose progress shows here.
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { getJson, putJson } from "./api.js";
import { ErrorLine, JobProgress, Loading } from "./components.js";

const METHOD_NAMES = {
  fifo: "FIFO: first in, first out", lifo: "LIFO: last in, first out",
  hifo: "HIFO: highest cost first", acb: "ACB: average cost basis (Canada)",
  uk: "UK: same day, 30 days, section 104 pool",
};
const POOLING_NAMES = {
  "per-wallet": "Per wallet: each wallet keeps its own lots",
  universal: "Universal: one pool per asset across wallets",
};

export function SettingsScreen({ choices, onSaved }) {
  const [current, setCurrent] = useState(null);
  const [method, setMethod] = useState("");
  const [pooling, setPooling] = useState("");
  const [jobId, setJobId] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    getJson("/v1/settings").then((s) => {
      setCurrent(s);
      setMethod(s.method);
      setPooling(s.pooling);
    }, setError);
  }, []);
  if (!current || !choices) {
    return html`<section><h1>Settings</h1><${ErrorLine} error=${error} /><${Loading} /></section>`;
  }
  const allowed = choices.poolings[method] || [];
  const chooseMethod = (m) => {
    setMethod(m);
    const ok = choices.poolings[m] || [];
    if (!ok.includes(pooling)) setPooling(ok[0]);
  };
  const save = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const accepted = await putJson("/v1/settings", { method, pooling });
      setCurrent({ ...current, method, pooling });
      setJobId(accepted.job_id);
      if (onSaved) onSaved({ ...current, method, pooling });
    } catch (exc) {
      setError(exc);
    }
    setBusy(false);
  };
  const unchanged = method === current.method && pooling === current.pooling;
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
                checked=${pooling === p} onChange=${() => setPooling(p)} />
              <label for=${`pooling-${p}`}>${POOLING_NAMES[p] || p}</label>
            </div>`)}
          ${allowed.length === 1 ? html`<p class="hint">${METHOD_NAMES[method] || method} allows
            only ${allowed[0]} pooling.</p>` : null}
        </fieldset>
        <p class="hint">Saving recomputes all your data with the new settings
          (currency: ${current.currency}).</p>
        <button type="submit" class="primary" disabled=${busy || unchanged}>
          ${busy ? "Saving…" : "Save and recompute"}</button>
        <${ErrorLine} error=${error} />
      </form>
      ${jobId ? html`<div class="card recompute">
        <h2>Recompute</h2><${JobProgress} key=${jobId} jobId=${jobId} label="recompute" />
      </div>` : null}
    </section>`;
}
