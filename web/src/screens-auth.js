// Sign-in with an API token, and the screen a refused token leads to.
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { checkToken, setToken } from "./api.js";

export function SignIn({ refused, onSignedIn }) {
  const [token, setTokenText] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(refused || null);

  const submit = async (e) => {
    e.preventDefault();
    const value = token.trim();
    if (!value) return;
    setBusy(true);
    try {
      const settings = await checkToken(value);
      setToken(value);
      onSignedIn(settings);
    } catch (exc) {
      setError(exc);
      setBusy(false);
    }
  };

  if (error && error.status === 401) {
    return html`
      <section class="card narrow wrong-token" aria-labelledby="wrong-token-title">
        <h1 id="wrong-token-title">Token not accepted</h1>
        <p role="alert">The server refused this token: <strong>${error.message}</strong>.</p>
        <p>Check that you pasted the whole token (it starts with <code>lf_</code>), or create a
          new one with <code>ledgerflow token create YOUR_NAME</code> (the last word it prints).</p>
        <button type="button" class="primary" onClick=${() => { setError(null); setTokenText(""); }}>
          Try another token</button>
      </section>`;
  }
  return html`
    <section class="card narrow" aria-labelledby="signin-title">
      <h1 id="signin-title">Sign in to ledgerflow</h1>
      <form onSubmit=${submit}>
        <label for="token">API token</label>
        <input id="token" name="token" type="password" autocomplete="off" required
          value=${token} onInput=${(e) => setTokenText(e.target.value)} />
        <p class="hint">Print one with <code>ledgerflow token create YOUR_NAME</code>. It is kept
          in this browser tab only, until you close it or sign out.</p>
        <button type="submit" class="primary" disabled=${busy}>
          ${busy ? "Checking…" : "Sign in"}</button>
      </form>
      ${error ? html`<p class="error" role="alert">${error.message}</p>` : null}
    </section>`;
}
