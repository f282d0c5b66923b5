// Shared kiosk helpers: screen switching, the idle timeout, on-screen keypads, CSRF.
// Plain ES module, no build step (CSP allows only same-origin scripts; no inline handlers).

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute('content') : '';
}

export function show(root, name) {
  for (const screen of root.querySelectorAll('[data-screen]')) {
    screen.hidden = screen.dataset.screen !== name;
  }
  const current = root.querySelector(`[data-screen="${name}"]`);
  const heading = current && current.querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus();
  }
  window.scrollTo(0, 0);
}

export function part(root, name) {
  return root.querySelector(`[data-part="${name}"]`);
}

// Idle timeout: after `idle` seconds without a touch, ask "still there?"; after `grace` more
// seconds go home, which drops everything (all state lives in this page only).
export function startIdle(onTimeout) {
  const dialog = document.getElementById('idle-dialog');
  const idleMs = Number(dialog.dataset.idleSeconds || 90) * 1000;
  const grace = Number(dialog.dataset.graceSeconds || 20);
  const counter = dialog.querySelector('[data-part="idle-count"]');
  let idleTimer = null;
  let tick = null;
  let paused = false;

  const reset = () => {
    clearTimeout(idleTimer);
    if (!paused) idleTimer = setTimeout(prompt, idleMs);
  };
  const prompt = () => {
    let left = grace;
    counter.textContent = String(left);
    if (typeof dialog.showModal === 'function') dialog.showModal(); else dialog.setAttribute('open', '');
    tick = setInterval(() => {
      left -= 1;
      counter.textContent = String(left);
      if (left <= 0) {
        clearInterval(tick);
        onTimeout();
      }
    }, 1000);
  };
  dialog.querySelector('[data-action="still-here"]').addEventListener('click', () => {
    clearInterval(tick);
    dialog.close ? dialog.close() : dialog.removeAttribute('open');
    reset();
  });
  for (const type of ['pointerdown', 'keydown', 'touchstart']) {
    document.addEventListener(type, () => { if (!dialog.open) reset(); }, { passive: true });
  }
  for (const link of document.querySelectorAll('.nav-home')) {
    link.addEventListener('click', () => sessionStorage.removeItem(SESSION_KEY));
  }
  reset();
  return {
    // While recording, the person is talking, not touching: do not interrupt them.
    pause() { paused = true; clearTimeout(idleTimer); },
    resume() { paused = false; reset(); },
  };
}

// A keypad of buttons with data-key = digit | clear | ok. `accept(digit)` returns false to refuse.
export function keypad(container, { onDigit, onClear, onOk }) {
  container.addEventListener('click', (event) => {
    const key = event.target.closest('[data-key]');
    if (!key) return;
    const value = key.dataset.key;
    if (value === 'clear') onClear();
    else if (value === 'ok') onOk();
    else onDigit(value);
  });
}

const SESSION_KEY = 'maeul-kiosk-session';

// The server-issued token of this resident's visit (공감 once per visit); forgotten when the kiosk
// goes home. Null when the server gives none (the kiosk's visits for this hour are used up).
export async function kioskVisit() {
  let token = sessionStorage.getItem(SESSION_KEY);
  if (!token) {
    const response = await fetch('/api/v1/kiosk/visits', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'X-CSRF-Token': csrfToken(), Accept: 'application/json' },
    });
    if (response.status !== 201) return null;
    token = (await response.json()).visit;
    sessionStorage.setItem(SESSION_KEY, token);
  }
  return token;
}

export function forgetVisit() {
  sessionStorage.removeItem(SESSION_KEY);
}

export function goHome(root) {
  sessionStorage.removeItem(SESSION_KEY);
  window.location.assign(root.dataset.home || '/kiosk');
}

export function formatPhone(digits) {
  if (digits.length <= 3) return digits;
  if (digits.length <= 7) return `${digits.slice(0, 3)}-${digits.slice(3)}`;
  return `${digits.slice(0, 3)}-${digits.slice(3, digits.length - 4)}-${digits.slice(-4)}`;
}

export function formatLocalDate(iso, locale) {
  const date = new Date(iso);
  return new Intl.DateTimeFormat(locale === 'en' ? 'en-GB' : 'ko-KR', {
    timeZone: 'Asia/Seoul', year: 'numeric', month: 'long', day: 'numeric', weekday: 'short', hour: 'numeric', minute: '2-digit',
  }).format(date);
}
