// The page: sign-in, then hash routes (#/upload, #/jobs, #/jobs/<id>, #/review, #/review/<kind>,
// #/transactions, #/gains, #/gains/<tx_id> (the lots of one disposal), #/balances, #/files,
// #/corrections, #/settings) over the same-origin API.
import { html } from "htm/preact";
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import "./style.css";
import { UNAUTHORIZED_EVENT, clearToken, getJson, getToken } from "./api.js";
import { SignIn } from "./screens-auth.js";
import { CorrectionsScreen, UploadsScreen } from "./screens-corrections.js";
import { ExplainScreen } from "./screens-explain.js";
import { BalancesScreen, GainsScreen } from "./screens-gains.js";
import { JobScreen, JobsScreen } from "./screens-jobs.js";
import { ReviewScreen } from "./screens-review.js";
import { SettingsScreen } from "./screens-settings.js";
import { TransactionsScreen } from "./screens-transactions.js";
import { UploadScreen } from "./screens-upload.js";
import { forgetUploads } from "./uploads.js";

const NAV = [["upload", "Upload"], ["jobs", "Jobs"], ["files", "Files"], ["review", "Review"],
  ["transactions", "Transactions"], ["gains", "Gains"], ["balances", "Balances"],
  ["corrections", "Corrections"], ["settings", "Settings"]];

const routeOf = () => (location.hash.replace(/^#\/?/, "") || "upload").split("/");

function useRoute() {
  const [route, setRoute] = useState(routeOf());
  useEffect(() => {
    const on = () => setRoute(routeOf());
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  return route;
}

function App() {
  const [signedIn, setSignedIn] = useState(Boolean(getToken()));
  const [refused, setRefused] = useState(null);
  const [settings, setSettings] = useState(null);
  const [choices, setChoices] = useState(null);
  const route = useRoute();

  useEffect(() => {
    const on = (e) => { clearToken(); forgetUploads(); setRefused(e.detail); setSignedIn(false); };
    window.addEventListener(UNAUTHORIZED_EVENT, on);
    return () => window.removeEventListener(UNAUTHORIZED_EVENT, on);
  }, []);
  useEffect(() => {
    if (!signedIn) return;
    getJson("/v1/settings").then(setSettings, () => {});
    getJson("/v1/choices").then(setChoices, () => {});
  }, [signedIn]);
  useEffect(() => {
    const title = NAV.find(([r]) => r === route[0]);
    document.title = `${title ? title[1] : "ledgerflow"} · ledgerflow`;
  }, [route[0]]);

  if (!signedIn) {
    return html`<main id="main" class="signin-page">
      <${SignIn} refused=${refused}
        onSignedIn=${(s) => { setRefused(null); setSettings(s); setSignedIn(true); }} /></main>`;
  }
  const currency = settings?.currency || "USD";
  const [name, arg] = route;
  let screen;
  if (name === "jobs" && arg) screen = html`<${JobScreen} key=${arg} jobId=${arg} />`;
  else if (name === "jobs") screen = html`<${JobsScreen} />`;
  else if (name === "review") {
    screen = html`<${ReviewScreen} key=${arg || ""} kind=${arg} currency=${currency}
      choices=${choices} />`;
  } else if (name === "files") screen = html`<${UploadsScreen} />`;
  else if (name === "corrections") screen = html`<${CorrectionsScreen} />`;
  else if (name === "gains" && arg) {
    screen = html`<${ExplainScreen} key=${arg} txId=${arg} currency=${currency} />`;
  } else if (name === "transactions") {
    screen = html`<${TransactionsScreen} choices=${choices} currency=${currency} />`;
  } else if (name === "gains") {
    screen = html`<${GainsScreen} currency=${currency} method=${settings?.method} />`;
  } else if (name === "balances") screen = html`<${BalancesScreen} currency=${currency} />`;
  else if (name === "settings") {
    screen = html`<${SettingsScreen} choices=${choices} onSaved=${setSettings} />`;
  } else screen = html`<${UploadScreen} choices=${choices} />`;

  return html`
    <a class="skip" href="#main" onClick=${(e) => {
      e.preventDefault(); document.getElementById("main").focus(); }}>Skip to content</a>
    <header class="top">
      <span class="brand">ledgerflow</span>
      <nav aria-label="Screens">
        ${NAV.map(([r, label]) => html`
          <a href=${`#/${r}`} aria-current=${name === r ? "page" : undefined}>${label}</a>`)}
      </nav>
      <span class="who muted">${settings ? `${settings.method} · ${settings.pooling}` : ""}</span>
      <button type="button" onClick=${() => { clearToken(); forgetUploads(); setRefused(null);
        setSignedIn(false); }}>Sign out</button>
    </header>
    <main id="main" tabindex="-1">${screen}</main>`;
}

render(html`<${App} />`, document.getElementById("root"));
