// The API from the page's own origin. The token lives in sessionStorage only (this tab, until it
// closes). A 401 anywhere signs the page out with the server's reason (main.js shows it).
const TOKEN_KEY = "ledgerflow.token";

export const getToken = () => sessionStorage.getItem(TOKEN_KEY);
export const setToken = (token) => sessionStorage.setItem(TOKEN_KEY, token);
export const clearToken = () => sessionStorage.removeItem(TOKEN_KEY);

export class ApiError extends Error {
  /** `fields`: a refused correction's [{field, message}], one per bad field (else []). */
  constructor(status, code, message, fields = []) {
    super(message);
    this.status = status;
    this.code = code;
    this.fields = fields;
  }
}

export const UNAUTHORIZED_EVENT = "ledgerflow:unauthorized";

function unauthorized(error) {
  window.dispatchEvent(new CustomEvent(UNAUTHORIZED_EVENT, { detail: error }));
}

/** "?a=1&b=2" of the params that have a value ("" when none). */
export function query(params = {}) {
  const pairs = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "");
  return pairs.length ? "?" + new URLSearchParams(pairs).toString() : "";
}

/** The API's {"error": {code, message}} body as an ApiError (any other body: its status). */
export function errorFrom(status, text) {
  try {
    const { error, fields } = JSON.parse(text);
    if (error && error.message) {
      return new ApiError(status, error.code, error.message,
        Array.isArray(fields) ? fields : Array.isArray(error.fields) ? error.fields : []);
    }
  } catch (_) {
    /* not JSON: fall through */
  }
  return new ApiError(status, `http_${status}`, `the server answered ${status}`);
}

async function request(path, { method = "GET", params, body, token = getToken() } = {}) {
  const headers = { Authorization: `Bearer ${token || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(path + query(params), {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (exc) {
    throw new ApiError(0, "network", "the server cannot be reached (is the stack up?)");
  }
  if (!resp.ok) {
    const error = errorFrom(resp.status, await resp.text());
    if (resp.status === 401) unauthorized(error);
    throw error;
  }
  return resp;
}

export const getJson = async (path, params, options) =>
  (await request(path, { ...options, params })).json();

export const putJson = async (path, body) => (await request(path, { method: "PUT", body })).json();

export const postJson = async (path, body) =>
  (await request(path, { method: "POST", body })).json();

export const deleteJson = async (path) => (await request(path, { method: "DELETE" })).json();

export const getBlob = async (path, params) => (await request(path, { params })).blob();

/** Check a token before keeping it: resolves, or rejects with the API's reason. */
export const checkToken = (token) => getJson("/v1/settings", undefined, { token });

/**
 * POST one file as a raw text/csv body with XHR (fetch has no upload progress).
 * onBytes(loaded, total) while it goes up; resolves with the 202 body, rejects with ApiError.
 */
export function uploadFile(file, params, onBytes) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/uploads" + query({ ...params, name: file.name }));
    xhr.setRequestHeader("Authorization", `Bearer ${getToken() || ""}`);
    xhr.setRequestHeader("Content-Type", "text/csv");
    xhr.upload.onprogress = (e) => onBytes(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onload = () => {
      if (xhr.status === 202) {
        onBytes(file.size, file.size);
        resolve(JSON.parse(xhr.responseText));
        return;
      }
      const error = errorFrom(xhr.status, xhr.responseText);
      if (xhr.status === 401) unauthorized(error);
      reject(error);
    };
    xhr.onerror = () => reject(new ApiError(0, "network", "the upload was cut off (network " +
      "error, or the server refused the file before it was sent)"));
    xhr.send(file);
  });
}

// --- Review and correct (issue 21): each answers what the API does, errors as ApiError ---------

/** Record a correction ({kind, ...the fields of that kind}) -> {correction_id, job_id}. */
export const postCorrection = (change) => postJson("/v1/corrections", change);

/** Cancel a correction (an undo of an undo restores it) -> {correction_id, job_id}. */
export const undoCorrection = (correctionId) =>
  postJson(`/v1/corrections/${encodeURIComponent(correctionId)}/undo`, {});

/** The audit list, newest first: a Page of corrections. */
export const correctionsPage = (pageToken, limit = 50) =>
  getJson("/v1/corrections", { limit, page_token: pageToken });

/** The uploads, newest first: a Page of {job_id, filename, ..., deleted}. */
export const uploadsPage = (pageToken, limit = 50) =>
  getJson("/v1/uploads", { limit, page_token: pageToken });

/** Delete an upload (a delete_upload correction) -> {correction_id, job_id}. */
export const deleteUpload = (jobId) => deleteJson(`/v1/uploads/${encodeURIComponent(jobId)}`);

/** The findings grouped by kind: {groups: [{kind, title, count, actions}], total}. */
export const reviewGroups = () => getJson("/v1/review");

/** One kind's findings: a Page of {tx_id, timestamp, type, wallet, asset, amount, message,
 * actions}. */
export const reviewItems = (kind, pageToken, limit = 50) =>
  getJson(`/v1/review/${encodeURIComponent(kind)}`, { limit, page_token: pageToken });

/** The lots a disposal consumed: {disposal: {...}, lots: [...]}. */
export const disposalLots = (txId) => getJson(`/v1/gains/${encodeURIComponent(txId)}/lots`);
