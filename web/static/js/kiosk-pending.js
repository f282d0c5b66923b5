// The kiosk home: requests still in the outbox (their resident walked away, or the browser was
// relaunched while sending) are shown as waiting and sent from here. Nothing personal is shown:
// the next person at the kiosk sees only that a request is waiting, then that it was sent.
import { csrfToken, part } from './kiosk-common.js';
import { deliver, pending } from './kiosk-outbox.js';

const box = document.querySelector('[data-outbox]');

async function sendWaiting() {
  const kept = await pending();
  if (!kept.length) return;
  box.hidden = false;
  part(box, 'outbox-sent').hidden = true;
  part(box, 'outbox-waiting').hidden = false;
  let filed = 0;
  for (const record of kept) {
    const result = await deliver(record, { api: box.dataset.api, csrf: csrfToken() });
    if (result.outcome === 'filed') filed += 1;
  }
  part(box, 'outbox-waiting').hidden = true;
  part(box, 'outbox-sent').hidden = filed === 0;
  box.hidden = filed === 0;
}

if (box && window.indexedDB) sendWaiting().catch(() => {});
