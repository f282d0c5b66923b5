// "요청하기": kind → office → speak (voice/video) or write → phone → public? → confirm → receipt.
// Everything stays in this page's memory until Send; going home (or the idle timeout) forgets it.
// From Send on, the request is kept in the kiosk's outbox (IndexedDB) until the receipt is in, and
// sent again by itself while the line is down (kiosk-outbox.js).
import { csrfToken, formatLocalDate, formatPhone, goHome, keypad, part, show, startIdle } from './kiosk-common.js';
import { deliver, keep, newKey, pending } from './kiosk-outbox.js';

const MAX_SECONDS = 180;
const root = document.getElementById('request-flow');
const locale = document.documentElement.lang;
const state = { kind: null, kindLabel: '', department: '', departmentLabel: '', mode: null, blob: null, text: '', phone: '', isPublic: false };
const history = [];
let current = 'kind';
let recorder = null;
let stream = null;
let timer = null;
let playbackUrl = null;
let keepRecording = true;
const idle = startIdle(() => goHome(root));

// While a request waits to be sent, the idle prompt ("it will forget what you entered") would be
// wrong: the request is kept. The resident has been told they may leave; after a while without a
// touch the kiosk goes home (which shows the request waiting and keeps sending it). Longer than
// the idle prompt: a recorded message on a thin line can take minutes once the line is back.
const WALK_AWAY_MS = 180000;
let walkAway = null;
function armWalkAway() {
  clearTimeout(walkAway);
  walkAway = setTimeout(() => goHome(root), WALK_AWAY_MS);
}
document.addEventListener('pointerdown', () => { if (current === 'waiting') armWalkAway(); }, { passive: true });

function go(name) {
  if (name !== current) history.push(current);
  if (name === 'waiting' && current !== 'waiting') { idle.pause(); armWalkAway(); }
  if (name !== 'waiting' && current === 'waiting') { clearTimeout(walkAway); idle.resume(); }
  current = name;
  show(root, name);
  // Once sent (or being sent) there is no going back to edit: that would be a second request.
  root.querySelector('[data-action="back"]').hidden = ['kind', 'waiting', 'receipt'].includes(name);
  root.querySelector('.flow-nav').hidden = name === 'receipt' || name === 'waiting';
}

function label(name) {
  const node = part(root, 'labels').content.querySelector(`[data-label="${name}"]`);
  return node ? node.textContent.trim() : name;
}

root.querySelector('[data-action="back"]').hidden = true;
root.querySelector('[data-action="back"]').addEventListener('click', () => {
  stopRecording(false);
  const previous = history.pop();
  if (previous) { current = previous; show(root, previous); }
  root.querySelector('[data-action="back"]').hidden = current === 'kind';
});

// 1. kind
for (const button of root.querySelectorAll('[data-kind]')) {
  button.addEventListener('click', () => {
    state.kind = button.dataset.kind;
    state.kindLabel = button.querySelector('.choice-label').textContent.trim();
    go('department');
  });
}

// 2. department ("" = not sure)
for (const button of root.querySelectorAll('[data-department]')) {
  button.addEventListener('click', () => {
    state.department = button.dataset.department;
    state.departmentLabel = button.querySelector('.choice-label').textContent.trim();
    resetSpeak();
    go('speak');
  });
}

// 3. speak or write
function resetSpeak() {
  part(root, 'modes').hidden = false;
  part(root, 'recorder').hidden = true;
  part(root, 'review').hidden = true;
  part(root, 'typing').hidden = true;
  part(root, 'mic-error').hidden = true;
}

function pickMime(kind) {
  const candidates = kind === 'video'
    ? ['video/webm;codecs=vp8,opus', 'video/webm', 'video/mp4']
    : ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/webm', 'audio/mp4'];
  return candidates.find((type) => window.MediaRecorder && MediaRecorder.isTypeSupported(type)) || '';
}

async function startRecording(kind) {
  part(root, 'mic-error').hidden = true;
  try {
    stream = await navigator.mediaDevices.getUserMedia(
      kind === 'video' ? { audio: true, video: { width: 640, height: 480 } } : { audio: true },
    );
  } catch (error) {
    part(root, 'mic-error').hidden = false;
    return;
  }
  const mimeType = pickMime(kind);
  recorder = new MediaRecorder(stream, mimeType ? { mimeType } : undefined);
  const chunks = [];
  recorder.addEventListener('dataavailable', (event) => { if (event.data.size) chunks.push(event.data); });
  keepRecording = true;
  recorder.addEventListener('stop', () => {
    if (!keepRecording) return;
    const type = (recorder && recorder.mimeType) || mimeType || (kind === 'video' ? 'video/webm' : 'audio/webm');
    if (chunks.length) {
      state.blob = new Blob(chunks, { type });
      state.mode = kind;
      showReview(kind);
    }
  });
  const preview = part(root, 'preview');
  preview.hidden = kind !== 'video';
  if (kind === 'video') { preview.srcObject = stream; preview.play().catch(() => {}); }
  part(root, 'modes').hidden = true;
  part(root, 'recorder').hidden = false;
  idle.pause();
  const started = Date.now();
  const elapsed = part(root, 'elapsed');
  elapsed.textContent = '0:00';
  timer = setInterval(() => {
    const seconds = Math.min(MAX_SECONDS, Math.floor((Date.now() - started) / 1000));
    elapsed.textContent = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
    if (seconds >= MAX_SECONDS) stopRecording(true);
  }, 250);
  recorder.start(1000);
}

function stopRecording(keep) {
  clearInterval(timer);
  idle.resume();
  if (recorder && recorder.state !== 'inactive') {
    keepRecording = keep;
    recorder.stop();
  }
  if (stream) stream.getTracks().forEach((track) => track.stop());
  const preview = part(root, 'preview');
  preview.srcObject = null;
  stream = null;
  if (!keep) recorder = null;
}

function showReview(kind) {
  part(root, 'recorder').hidden = true;
  part(root, 'review').hidden = false;
  if (playbackUrl) URL.revokeObjectURL(playbackUrl);
  playbackUrl = URL.createObjectURL(state.blob);
  const audio = part(root, 'playback-audio');
  const video = part(root, 'playback-video');
  audio.hidden = kind === 'video';
  video.hidden = kind !== 'video';
  (kind === 'video' ? video : audio).src = playbackUrl;
}

for (const button of root.querySelectorAll('[data-record]')) {
  button.addEventListener('click', () => startRecording(button.dataset.record));
}
root.querySelector('[data-action="stop"]').addEventListener('click', () => stopRecording(true));
root.querySelector('[data-action="rerecord"]').addEventListener('click', () => {
  state.blob = null;
  state.mode = null;
  resetSpeak();
});
root.querySelector('[data-action="next"]').addEventListener('click', () => { state.text = ''; go('phone'); });
root.querySelector('[data-action="type"]').addEventListener('click', () => {
  part(root, 'modes').hidden = true;
  part(root, 'typing').hidden = false;
  document.getElementById('request-text').focus();
});
root.querySelector('[data-action="back-to-modes"]').addEventListener('click', resetSpeak);
root.querySelector('[data-action="text-done"]').addEventListener('click', () => {
  const text = document.getElementById('request-text').value.trim();
  if (!text) return;
  state.text = text;
  state.blob = null;
  state.mode = 'text';
  go('phone');
});

// 4. phone on the keypad
const phoneDisplay = part(root, 'phone-display');
function renderPhone() { phoneDisplay.textContent = state.phone ? formatPhone(state.phone) : '010-'; }
function validPhone(digits) { return /^01[016789]\d{7,8}$/.test(digits) || /^0[2-6]\d{7,9}$/.test(digits); }
keypad(root.querySelector('[data-keypad="phone"]'), {
  onDigit(d) {
    part(root, 'phone-error').hidden = true;
    if (state.phone === '' && d !== '0') state.phone = '010';
    if (state.phone.length < 11) state.phone += d;
    renderPhone();
  },
  onClear() { state.phone = state.phone.slice(0, -1); renderPhone(); },
  onOk() {
    if (!validPhone(state.phone)) { part(root, 'phone-error').hidden = false; return; }
    go('visibility');
  },
});

// 5. public or private
for (const button of root.querySelectorAll('[data-public]')) {
  button.addEventListener('click', () => {
    state.isPublic = button.dataset.public === 'true';
    fillSummary();
    go('confirm');
  });
}

// 6. confirm and send
function fillSummary() {
  part(root, 'sum-kind').textContent = state.kindLabel;
  part(root, 'sum-department').textContent = state.department ? state.departmentLabel : label('unsure');
  part(root, 'sum-message').textContent = state.mode === 'text' ? state.text : label(state.mode === 'video' ? 'video' : 'voice');
  part(root, 'sum-phone').textContent = formatPhone(state.phone);
  part(root, 'sum-public').textContent = label(state.isPublic ? 'yes' : 'no');
}

root.querySelector('[data-action="restart"]').addEventListener('click', () => goHome(root));
const sendButton = root.querySelector('[data-action="send"]');

function showReceipt(body) {
  part(root, 'receipt-no').textContent = body.petition.receipt_no;
  part(root, 'receipt-pin').textContent = body.pin;
  part(root, 'receipt-due').textContent = formatLocalDate(body.petition.due_at, locale);
  history.length = 0;
  go('receipt');
}

// Deliver a kept request, showing the waiting screen while the line is down.
async function deliverKept(record) {
  part(root, 'retrying').hidden = true;
  part(root, 'walk-away').hidden = true;
  part(root, 'waiting-sending').hidden = false;
  root.querySelector('[data-action="leave-pending"]').hidden = true;
  go('waiting');
  const result = await deliver(record, {
    api: root.dataset.api,
    csrf: csrfToken(),
    onWait(delay, display) {
      part(root, 'waiting-sending').hidden = true;
      // The server's words when it gave some (a filing limit), else "we will send it again".
      const retrying = part(root, 'retrying');
      if (!retrying.dataset.text) retrying.dataset.text = retrying.textContent;
      retrying.textContent = display || retrying.dataset.text;
      part(root, 'retrying').hidden = false;
      part(root, 'walk-away').hidden = false;
      root.querySelector('[data-action="leave-pending"]').hidden = false;
    },
  });
  if (result.outcome === 'filed') {
    showReceipt(result.body);
    return;
  }
  const details = (result.body.error && result.body.error.details) || [];
  if (Array.isArray(details) && details.some((d) => d.field === 'phone')) {
    part(root, 'phone-error').hidden = false;
    go('phone');
    return;
  }
  part(root, 'send-error').hidden = false;
  go('confirm');
}

sendButton.addEventListener('click', async () => {
  sendButton.disabled = true;
  part(root, 'send-error').hidden = true;
  const petition = {
    petition_type: state.kind,
    department_id: state.department ? Number(state.department) : null,
    body: state.mode === 'text' ? state.text : '',
    phone: state.phone,
    is_public: state.isPublic,
  };
  const extension = state.blob && (state.blob.type.includes('mp4') ? 'mp4' : state.blob.type.includes('ogg') ? 'ogg' : 'webm');
  const record = { key: newKey(), petition, blob: state.blob, filename: state.blob ? `message.${extension}` : null };
  try {
    await keep(record); // before the first attempt: a reload from here on loses nothing
  } catch (error) {
    // No IndexedDB (private mode, quota): still send, only without the safety net.
  }
  try {
    await deliverKept(record);
  } finally {
    sendButton.disabled = false;
  }
});

root.querySelector('[data-action="leave-pending"]').addEventListener('click', () => goHome(root));

// A request kept by an earlier page (reloaded, or the browser relaunched) that was still being sent:
// carry on. One started long ago is left to the home page (its resident has gone by now).
const RESUME_WINDOW_MS = 15 * 60 * 1000;
pending().then((kept) => {
  const recent = kept.find((record) => Date.now() - record.createdAt < RESUME_WINDOW_MS);
  if (recent && current === 'kind') deliverKept(recent);
}).catch(() => {});

root.querySelector('[data-action="home"]').addEventListener('click', () => goHome(root));
