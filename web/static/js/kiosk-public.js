// 공감: support public requests, once per visit (a token the server issues, kept until the idle reset).
import { csrfToken, forgetVisit, goHome, kioskVisit, startIdle } from './kiosk-common.js';

const root = document.getElementById('public-flow');
startIdle(() => goHome(root));

for (const button of root.querySelectorAll('[data-support]')) {
  button.addEventListener('click', async () => {
    const id = button.dataset.support;
    button.disabled = true;
    try {
      const visit = await kioskVisit();
      if (!visit) { button.disabled = false; return; }
      const response = await fetch(`/api/v1/kiosk/petitions/public/${id}/support`, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrfToken(), Accept: 'application/json' },
        body: JSON.stringify({ visit }),
      });
      const body = await response.json().catch(() => ({}));
      if (response.status === 201) {
        root.querySelector(`[data-count-for="${id}"]`).textContent = String(body.support_count);
        root.querySelector(`[data-done-for="${id}"]`).hidden = false;
      } else if (response.status === 409) {
        root.querySelector(`[data-again-for="${id}"]`).hidden = false;
      } else {
        if (response.status === 400) forgetVisit(); // the visit ran out: the next touch starts one
        button.disabled = false;
      }
    } catch (error) {
      button.disabled = false;
    }
  });
}
