// Review: the problems behind the numbers (GET /v1/review), grouped by kind with counts; a
// group's findings (GET /v1/review/{kind}, paged) each with its transaction and the actions
// that fix it. A fix runs the recompute job; when it ends the counts are read again.
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { reviewGroups, reviewItems } from "./api.js";
import { ActionBar } from "./actions.js";
import { ErrorLine, Loading, Pager, usePages } from "./components.js";
import { actionOf } from "./corrections.js";
import { amountText, countText, shortTimeText, timeText } from "./format.js";

/** The groups and their total, read again whenever `refresh` changes. */
export function useReview(refresh = 0) {
  const [review, setReview] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let stale = false;
    reviewGroups().then((r) => { if (!stale) { setReview(r); setError(null); } },
      (exc) => { if (!stale) setError(exc); });
    return () => { stale = true; };
  }, [refresh]);
  return { review, error };
}

/** "10,907 findings" in words a person reads. */
export const findingsText = (n) => `${countText(n)} ${n === 1 ? "finding" : "findings"}`;

/** The review's counts where figures are shown (the gains screen): each kind with its count,
 * linking to its list on the Review screen. */
export function ReviewCounts() {
  const { review, error } = useReview();
  if (error) {
    return html`<p class="review-counts muted">The review counts could not be read:
      ${" "}${error.message}</p>`;
  }
  if (!review) return null;
  if (!review.total) {
    return html`<p class="review-counts ok" data-total="0">Nothing to review: no figure rests
      on a finding.</p>`;
  }
  const open = review.groups.filter((g) => g.count > 0);
  return html`
    <div class="card review-counts warn" data-total=${review.total}>
      <p><strong>${findingsText(review.total)}</strong> behind these figures
        ${" "}(<a href="#/review">review and fix them</a>):</p>
      <ul class="review-count-list">${open.map((g) => html`
        <li data-kind=${g.kind}><a href=${`#/review/${g.kind}`}><span class="n">${
          countText(g.count)}</span> ${g.title}</a></li>`)}</ul>
    </div>`;
}

function Finding({ item, currency, choices, onDone }) {
  const actions = (item.actions || []).map(actionOf).filter((a) => a.kind);
  const tx = { ...item, sent_asset: null, received_asset: null };
  if (item.type === "withdrawal") Object.assign(tx, { sent_asset: item.asset, sent_amount: item.amount });
  else Object.assign(tx, { received_asset: item.asset, received_amount: item.amount });
  return html`
    <li class="card finding" data-tx=${item.tx_id}>
      <p class="finding-head">
        <span title=${timeText(item.timestamp)}>${shortTimeText(item.timestamp)}</span>
        ${" · "}<strong>${item.type || "?"}</strong>${" · "}${item.wallet || "no wallet"}
        ${item.amount ? html`${" · "}<span class="amount" title=${`${item.amount} ${item.asset}`}
          >${amountText(item.amount)} ${item.asset}</span>` : item.asset ? ` · ${item.asset}` : null}
      </p>
      <p class="finding-message">${item.message}</p>
      <p class="muted tx-id">transaction <code>${item.tx_id}</code></p>
      ${actions.length ? html`<${ActionBar} tx=${tx} actions=${actions} currency=${currency}
        choices=${choices} onDone=${onDone} label=${`Fix: ${item.message}`} />` : null}
    </li>`;
}

export function ReviewScreen({ kind, currency, choices }) {
  const [refresh, setRefresh] = useState(0);
  const [listKey, setListKey] = useState(0);
  const { review, error } = useReview(refresh);
  const [before, setBefore] = useState(null); // the total when the last fix started
  const groups = review?.groups || [];
  const chosen = kind || groups.find((g) => g.count > 0)?.kind || groups[0]?.kind;
  const group = groups.find((g) => g.kind === chosen);
  const pages = usePages((token) => (chosen ? reviewItems(chosen, token)
    : Promise.resolve({ items: [], next_page_token: null })), `${chosen}:${listKey}`);
  const { page } = pages;

  // A fix ended: read the counts again (the list stays until asked, so the finished job and
  // its Undo stay where the user looks).
  const onDone = () => { setBefore(review?.total ?? null); setRefresh((n) => n + 1); };

  if (error && !review) {
    return html`<section><h1>Review</h1><${ErrorLine} error=${error} /></section>`;
  }
  if (!review) return html`<section><h1>Review</h1><${Loading} what="Findings" /></section>`;
  return html`
    <section aria-labelledby="review-title" class="review">
      <h1 id="review-title">Review</h1>
      <p class="review-total" role="status">
        ${review.total
          ? html`<strong>${findingsText(review.total)}</strong> behind your numbers: each one is a
              figure resting on a guess (a zero cost basis, a transfer not matched, a balance below
              zero). Fix them here; each fix recomputes only what it touches.`
          : "Nothing to review: no finding rests behind your numbers."}
        ${before !== null && before !== review.total ? html`${" "}<span class="changed">
          (was ${countText(before)})</span>` : null}
      </p>
      <${ErrorLine} error=${error} />
      ${groups.length ? html`
        <nav class="review-groups" aria-label="Kinds of findings">
          <ul>${groups.map((g) => html`
            <li><a href=${`#/review/${g.kind}`} data-kind=${g.kind}
              aria-current=${g.kind === chosen ? "page" : undefined}>
              <span class="title">${g.title}</span>
              <span class="count" data-count=${g.count}>${countText(g.count)}</span></a></li>`)}
          </ul>
        </nav>` : null}
      ${group ? html`
        <div class="group" data-kind=${group.kind}>
          <h2 id="group-title">${group.title} <span class="muted">(${countText(group.count)})</span></h2>
          <${ErrorLine} error=${pages.error} />
          ${!page ? html`<${Loading} what="Findings" />` : page.items.length === 0 ? html`
            <p class="muted">${group.count ? "No findings on this page." : "None left."}</p>` : html`
            <ul class="findings" aria-labelledby="group-title">
              ${page.items.map((item) => html`<${Finding} key=${item.tx_id} item=${item}
                currency=${currency} choices=${choices} onDone=${onDone} />`)}
            </ul>`}
          <div class="row">
            <${Pager} pages=${pages} label="Findings" />
            <button type="button" onClick=${() => setListKey((n) => n + 1)}>
              Reload the list</button>
          </div>
        </div>` : null}
    </section>`;
}
