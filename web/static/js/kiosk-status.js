// "내 요청 확인": receipt number and PIN on keypads, then the status and answer in large text.
import { csrfToken, formatLocalDate, goHome, keypad, part, show, startIdle } from './kiosk-common.js';

const root = document.getElementById('status-flow');
const locale = document.documentElement.lang;
const state = { receipt: '', pin: '' };
let current = 'receipt';
startIdle(() => goHome(root));

function go(name) {
  current = name;
  show(root, name);
  root.querySelector('[data-action="back"]').hidden = name === 'receipt';
  root.querySelector('.flow-nav').hidden = name === 'result';
}
root.querySelector('[data-action="back"]').hidden = true;
root.querySelector('[data-action="back"]').addEventListener('click', () => {
  if (current === 'pin') { state.pin = ''; renderPin(); go('receipt'); } else if (current === 'result') { goHome(root); }
});

// Receipt: 4-digit year + up to 5-digit number, shown as 강진-2026-00123.
const receiptDisplay = part(root, 'receipt-display');
function renderReceipt() {
  const year = state.receipt.slice(0, 4).padEnd(4, '_');
  const seq = state.receipt.slice(4).padEnd(5, '_');
  receiptDisplay.textContent = `강진-${year}-${seq}`;
}
keypad(root.querySelector('[data-keypad="receipt"]'), {
  onDigit(d) { if (state.receipt.length < 11) state.receipt += d; renderReceipt(); }, // year + 5 to 7 digits
  onClear() { state.receipt = state.receipt.slice(0, -1); renderReceipt(); },
  onOk() { if (state.receipt.length >= 5) go('pin'); },
});

const pinDisplay = part(root, 'pin-display');
function renderPin() { pinDisplay.textContent = '●'.repeat(state.pin.length).padEnd(4, '_'); }
function hideErrors() { for (const name of ['pin-wrong', 'pin-locked', 'net-error']) part(root, name).hidden = true; }
keypad(root.querySelector('[data-keypad="pin"]'), {
  onDigit(d) { hideErrors(); if (state.pin.length < 4) state.pin += d; renderPin(); },
  onClear() { state.pin = state.pin.slice(0, -1); renderPin(); },
  onOk() { if (state.pin.length === 4) check(); },
});

function statusLabel(status) {
  const node = part(root, 'status-labels').content.querySelector(`[data-status="${status}"]`);
  return node ? node.textContent.trim() : status;
}

function receiptNo() {
  return `${state.receipt.slice(0, 4)}-${state.receipt.slice(4)}`;
}

// Receipt number + PIN to one of the kiosk's petition endpoints (status check, withdrawal).
function postWithPin(url) {
  return fetch(url, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrfToken(), Accept: 'application/json' },
    body: JSON.stringify({ receipt_no: receiptNo(), pin: state.pin }),
  });
}

async function check() {
  hideErrors();
  try {
    const response = await postWithPin(root.dataset.api);
    const body = await response.json().catch(() => ({}));
    if (response.ok) { showResult(body.petition); return; }
    state.pin = '';
    renderPin();
    part(root, response.status === 429 ? 'pin-locked' : response.status === 403 || response.status === 400 ? 'pin-wrong' : 'net-error').hidden = false;
  } catch (error) {
    part(root, 'net-error').hidden = false;
  }
}

function showResult(petition) {
  part(root, 'result-title').textContent = petition.title;
  part(root, 'result-status').textContent = statusLabel(petition.status);
  part(root, 'result-status').dataset.status = petition.status;
  const answered = Boolean(petition.answer) && (petition.status === 'answered' || petition.status === 'closed');
  part(root, 'answer-box').hidden = !answered;
  part(root, 'answer-text').textContent = answered ? petition.answer : '';
  part(root, 'info-box').hidden = !petition.info_request;
  part(root, 'info-text').textContent = petition.info_request || '';
  part(root, 'waiting').hidden = answered || petition.status === 'closed';
  part(root, 'due').textContent = formatLocalDate(petition.due_at, locale);
  // Withdrawal (취하) is the resident's own act, for a request not yet answered.
  part(root, 'withdraw-box').hidden = !WITHDRAWABLE.has(petition.status);
  part(root, 'withdraw-confirm').hidden = true;
  part(root, 'withdraw-error').hidden = true;
  part(root, 'withdrawn').hidden = true;
  go('result');
}

const WITHDRAWABLE = new Set(['received', 'in_progress', 'info_requested', 'transferred']);

root.querySelector('[data-action="withdraw"]').addEventListener('click', () => {
  part(root, 'withdraw-confirm').hidden = false;
});
root.querySelector('[data-action="withdraw-no"]').addEventListener('click', () => {
  part(root, 'withdraw-confirm').hidden = true;
});
root.querySelector('[data-action="withdraw-yes"]').addEventListener('click', async (event) => {
  event.target.disabled = true;
  try {
    const response = await postWithPin(root.dataset.withdrawApi);
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(String(response.status));
    showResult(body.petition);
    part(root, 'withdrawn').hidden = false;
  } catch (error) {
    part(root, 'withdraw-error').hidden = false;
  } finally {
    event.target.disabled = false;
  }
});

root.querySelector('[data-action="home"]').addEventListener('click', () => goHome(root));
