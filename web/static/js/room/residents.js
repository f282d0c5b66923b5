// The kiosk's head count: how many residents sit in front of the hall's kiosk, set with two big
// buttons (no typing) and saved in the meeting's attendance record a moment after the last touch.
const SAVE_AFTER_MS = 1500;
const MAX = 500;

export function residentsCounter(meeting) {
  const box = meeting.root.querySelector('[data-residents]');
  if (!box) return { joined() {} };
  const output = box.querySelector('[data-residents-count]');
  const csrf = document.querySelector('meta[name="csrf-token"]');
  let count = 0;
  let meetingId = null;
  let timer = null;

  const save = async () => {
    if (!meetingId) return;
    try {
      const response = await fetch(`/api/v1/meetings/${meetingId}/residents`, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf ? csrf.content : '' },
        body: JSON.stringify({ count }),
        credentials: 'same-origin',
      });
      if (!response.ok) console.warn('residents', response.status, await response.text());
    } catch (error) {
      console.warn('residents', error);
    }
  };
  const change = (delta) => {
    count = Math.min(MAX, Math.max(0, count + delta));
    output.textContent = String(count);
    clearTimeout(timer);
    timer = setTimeout(save, SAVE_AFTER_MS);
  };
  box.querySelector('[data-action="residents-less"]').addEventListener('click', () => change(-1));
  box.querySelector('[data-action="residents-more"]').addEventListener('click', () => change(1));

  return {
    // Only scheduled meetings keep an attendance record with a head count.
    joined(ack) {
      meetingId = ack.meeting_id || null;
      box.hidden = !meetingId;
    },
  };
}
