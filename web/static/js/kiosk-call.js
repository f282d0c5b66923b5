// The kiosk's call to the official on duty: ring, wait, then join the call or offer a recorded request.
const box = document.querySelector("[data-duty-call]");
const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? "";
const headers = { "X-CSRF-Token": csrf };
let callId = null;
let finished = false;

function show(state) {
  box.dataset.state = state;
  for (const part of box.querySelectorAll("[data-show]")) part.hidden = part.dataset.show !== state;
}

function handle(call) {
  if (call.status === "answered" && call.room_url) {
    finished = true;
    show("answered");
    window.location.assign(call.room_url);
  } else if (call.status === "missed") {
    finished = true;
    show("missed");
  } else if (call.status === "cancelled") {
    finished = true;
    window.location.assign("/kiosk");
  } else {
    const left = Math.max(0, Math.round((Date.parse(call.ring_until) - Date.now()) / 1000));
    box.querySelector("[data-seconds]").textContent = String(left);
  }
}

async function poll() {
  if (finished) return;
  try {
    const response = await fetch(`/api/v1/kiosk/duty-calls/${callId}`, { credentials: "same-origin" });
    if (response.ok) handle((await response.json()).call);
  } catch {
    // A weak link: keep ringing and ask again.
  }
  if (!finished) setTimeout(poll, 1500);
}

async function start() {
  const response = await fetch("/api/v1/kiosk/duty-calls", { method: "POST", headers, credentials: "same-origin" });
  if (!response.ok) {
    show("error");
    return;
  }
  const { call } = await response.json();
  callId = call.id;
  handle(call);
  setTimeout(poll, 1500);
}

box.querySelector("[data-cancel]").addEventListener("click", async () => {
  if (callId !== null) {
    await fetch(`/api/v1/kiosk/duty-calls/${callId}/cancel`, { method: "POST", headers, credentials: "same-origin" });
  }
  window.location.assign("/kiosk");
});
start();
