// The kiosk's outbox: a resident's request (text, or the recorded message itself) is kept in
// IndexedDB from the moment they press Send until the server has answered with a receipt, and is
// sent again by itself, with backoff, after a 503/507, a timeout or a lost connection. A page
// reload or a browser relaunch by the kiosk agent loses nothing: the next kiosk page that opens
// the outbox (the request page or the home page) carries on sending.
//
// Every request carries an Idempotency-Key made here when Send is pressed, so a resend after a
// lost 201 gets the same receipt and PIN and never files twice. The record (phone number and
// message included) is deleted as soon as the receipt is in, or when the server refuses it for
// good (a 4xx validation error): personal data stays on the kiosk only while it must.

const DB_NAME = 'maeul-kiosk';
const STORE = 'outbox';
const FIRST_DELAY_MS = 2000;
const MAX_DELAY_MS = 60000;
// A send is given up (and tried again) when nothing has moved for this long: not a fixed timeout,
// which would either cut a recorded message on a slow village line or wait for ages on a dead one.
const STALL_MS = 20000;

function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: 'key' });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function withStore(mode, work) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const result = work(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(result && 'result' in result ? result.result : undefined);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

export function newKey() {
  return crypto.randomUUID();
}

// Keep a request before the first attempt: from here on it is never lost.
export function keep(record) {
  record.createdAt = record.createdAt || Date.now();
  record.attempts = record.attempts || 0;
  return withStore('readwrite', (store) => store.put(record));
}

export function forget(key) {
  return withStore('readwrite', (store) => store.delete(key));
}

export async function pending() {
  const all = await withStore('readonly', (store) => store.getAll());
  return (all || []).sort((a, b) => a.createdAt - b.createdAt);
}

function retryable(status) {
  return status === 0 || status === 408 || status === 429 || status >= 500;
}

function backoff(attempts, retryAfterSeconds) {
  const exponential = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** Math.max(0, attempts - 1));
  const jittered = exponential * (0.8 + Math.random() * 0.4);
  const asked = Number(retryAfterSeconds) * 1000;
  return Number.isFinite(asked) && asked > 0 ? Math.min(MAX_DELAY_MS, Math.max(asked, jittered)) : jittered;
}

function formOf(record) {
  const form = new FormData();
  form.append('petition', new Blob([JSON.stringify(record.petition)], { type: 'application/json' }), 'petition.json');
  if (record.blob) form.append('media', record.blob, record.filename || 'message.webm');
  return form;
}

// POST with a stall watchdog: upload and download progress both count as "moving" (XHR, because
// fetch reports no upload progress).
function post(api, form, headers) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    let watchdog = null;
    const moving = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => xhr.abort(), STALL_MS);
    };
    const failed = () => {
      clearTimeout(watchdog);
      reject(new Error('network'));
    };
    xhr.open('POST', api);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = moving;
    xhr.onprogress = moving;
    xhr.onload = () => {
      clearTimeout(watchdog);
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (error) { /* not JSON: keep {} */ }
      resolve({ status: xhr.status, body, retryAfter: xhr.getResponseHeader('Retry-After') });
    };
    xhr.onerror = failed;
    xhr.onabort = failed;
    moving();
    xhr.send(form);
  });
}

// One attempt: {outcome: 'filed', body} | {outcome: 'refused', status, body} | {outcome: 'retry', retryAfter, display}.
export async function attempt(record, { api, csrf }) {
  try {
    const headers = { 'X-CSRF-Token': csrf, 'Idempotency-Key': record.key, Accept: 'application/json' };
    const { status, body, retryAfter } = await post(api, formOf(record), headers);
    if (status === 201 || status === 200) return { outcome: 'filed', body };
    if (retryable(status)) {
      // The server's own words for the resident (a filing limit, a full disk), in the kiosk's language.
      const display = (body.error && body.error.display) || null;
      return { outcome: 'retry', retryAfter, display };
    }
    return { outcome: 'refused', status, body };
  } catch (error) {
    return { outcome: 'retry', retryAfter: null, display: null }; // offline, reset, or stalled
  }
}

// Send one kept request until it is filed or refused; `onWait(delayMs, display)` is told before each
// pause (`display`: what the server said to show, or null).
// Resolves like `attempt` with 'filed' or 'refused'; the record is gone from the outbox by then.
export async function deliver(record, { api, csrf, onWait = () => {} }) {
  let attempts = record.attempts || 0;
  for (;;) {
    const result = await attempt(record, { api, csrf });
    if (result.outcome !== 'retry') {
      await forget(record.key);
      return result;
    }
    attempts += 1;
    await withStore('readwrite', (store) => store.put({ ...record, attempts }));
    const delay = backoff(attempts, result.retryAfter);
    onWait(delay, result.display);
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}
