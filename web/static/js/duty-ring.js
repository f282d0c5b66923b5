// Officials' pages: the on-duty switch, and the ring when a village-hall kiosk calls.
const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? "";
const banner = document.querySelector("[data-duty-ring]");
const toggle = document.querySelector("[data-duty-toggle]");
const chime = new Audio("/static/audio/guidance/ring.ogg");
chime.loop = true;

async function setAvailable(available) {
  const response = await fetch("/api/v1/duty/availability", {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify({ available }),
    credentials: "same-origin",
  });
  if (response.ok && toggle) {
    toggle.setAttribute("aria-pressed", String(available));
    toggle.textContent = available ? toggle.dataset.labelOn : toggle.dataset.labelOff;
  }
}

toggle?.addEventListener("click", () => setAvailable(toggle.getAttribute("aria-pressed") !== "true"));

function render(calls) {
  const list = banner.querySelector("[data-calls]");
  list.replaceChildren(
    ...calls.map((call) => {
      const item = document.createElement("li");
      const text = document.createElement("span");
      text.textContent = banner.dataset.template.replace("{village}", call.village);
      const answer = document.createElement("button");
      answer.type = "button";
      answer.className = "button primary";
      answer.textContent = banner.dataset.answerLabel;
      answer.addEventListener("click", async () => {
        const response = await fetch(`/api/v1/duty/calls/${call.id}/answer`, {
          method: "POST",
          headers: { "X-CSRF-Token": csrf },
          credentials: "same-origin",
        });
        const body = await response.json();
        if (response.ok) window.location.assign(body.call.room_url);
        else text.textContent = banner.dataset.takenLabel;
      });
      item.append(text, answer);
      return item;
    }),
  );
  banner.hidden = calls.length === 0;
  if (calls.length) chime.play().catch(() => {});
  else chime.pause();
}

async function poll() {
  try {
    const response = await fetch("/api/v1/duty/ringing", { credentials: "same-origin" });
    if (response.ok) render((await response.json()).calls);
  } catch {
    // Try again on the next tick.
  }
  setTimeout(poll, 2000);
}
if (banner) poll();
