// The uploads started in this browser tab, kept across screens (module state: the Upload screen
// can be left and come back to) and across reloads (sessionStorage keeps each one's name, size,
// job id or error; the bytes of an upload cut by a reload are gone, and it says so).
import { useEffect, useState } from "preact/hooks";
import { uploadFile } from "./api.js";

export const UPLOADS_KEY = "ledgerflow.uploads";
const listeners = new Set();
let items = restore();
let nextId = items.reduce((n, it) => Math.max(n, it.id), 0) + 1;

function restore() {
  try {
    return (JSON.parse(sessionStorage.getItem(UPLOADS_KEY)) || []).map((it) => (it.jobId || it.error
      ? it : { ...it, error: { message: "the page was reloaded before the file was sent" } }));
  } catch (_) {
    return [];
  }
}

function publish(next) {
  items = next;
  sessionStorage.setItem(UPLOADS_KEY, JSON.stringify(items.map(
    ({ id, name, size, loaded, total, jobId, error }) =>
      ({ id, name, size, loaded, total, jobId, error: error && { message: error.message } }))));
  for (const listener of listeners) listener(items);
}

const update = (id, patch) => publish(items.map((it) => (it.id === id ? { ...it, ...patch } : it)));

/** Send each file; its item follows the bytes, then holds the job id (or the refusal). */
export function startUploads(files, params) {
  const started = files.map((file) => ({
    id: nextId++, name: file.name, size: file.size, loaded: 0, total: file.size,
  }));
  publish([...started, ...items]);
  started.forEach((item, i) => {
    uploadFile(files[i], params, (loaded, total) => update(item.id, { loaded, total }))
      .then((accepted) => update(item.id, { jobId: accepted.job_id }),
        (error) => update(item.id, { error }));
  });
}

/** Forget the uploads (signing out: they belong to the user who made them). */
export function forgetUploads() {
  publish([]);
  sessionStorage.removeItem(UPLOADS_KEY);
}

export function useUploads() {
  const [state, setState] = useState(items);
  useEffect(() => {
    listeners.add(setState);
    setState(items);
    return () => listeners.delete(setState);
  }, []);
  return state;
}
