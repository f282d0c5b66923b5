// The chair's recording buttons on the official meeting page: they call the meetings API; which one
// shows follows the room's state (the root's data-recording, kept by room.js from the join ack and
// the 'recording' event), so every open page of the chair agrees.
export function recordingControls(root) {
  const box = root.querySelector('[data-record-controls]');
  if (!box) return;
  const start = box.querySelector('[data-action="record-start"]');
  const stop = box.querySelector('[data-action="record-stop"]');
  const csrf = document.querySelector('meta[name="csrf-token"]');
  const api = `/api/v1/meetings/${box.dataset.meetingId}/recording/`;
  const show = () => {
    const on = root.dataset.recording === 'on';
    start.hidden = on;
    stop.hidden = !on;
  };
  new MutationObserver(show).observe(root, { attributes: true, attributeFilter: ['data-recording'] });
  show();
  const send = async (action, button) => {
    button.disabled = true;
    try {
      const response = await fetch(api + action, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf ? csrf.content : '' },
        body: '{}',
        credentials: 'same-origin',
      });
      if (!response.ok) console.warn('recording', action, response.status, await response.text());
    } finally {
      button.disabled = false;
    }
  };
  start.addEventListener('click', () => send('start', start));
  stop.addEventListener('click', () => send('stop', stop));
}
