// 공감: support public requests, once per kiosk session (a random id kept until the idle reset).
import { csrfToken, goHome, kioskSessionId, startIdle } from './kiosk-common.js';

const root = document.getElementById('public-flow');
startIdle(() => goHome(root));

for (const button of root.querySelectorAll('[data-support]')) {
  button.addEventListener('click', async () => {
    const id = button.dataset.support;
    button.disabled = true;
    try {
      const response = await fetch(`/api/v1/kiosk/petitions/public/${id}/support`, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrfToken(), Accept: 'application/json' },
        body: JSON.stringify({ session_id: kioskSessionId() }),
      });
      const body = await response.json().catch(() => ({}));
      if (response.status === 201) {
        root.querySelector(`[data-count-for="${id}"]`).textContent = String(body.support_count);
        root.querySelector(`[data-done-for="${id}"]`).hidden = false;
      } else if (response.status === 409) {
        root.querySelector(`[data-again-for="${id}"]`).hidden = false;
      } else {
        button.disabled = false;
      }
    } catch (error) {
      button.disabled = false;
    }
  });
}
