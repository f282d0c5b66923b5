// Kiosk home: the village's upcoming meetings in large text, refreshed every 30 s (every 3 s from a
// minute before a meeting's start time, so the hall is in within seconds when it opens). A meeting
// in session shows a one-touch "Join now" button; a meeting whose join mode is "auto" is entered by
// itself. When the page was rendered with the list already (server side), it is only refreshed.
const section = document.querySelector("[data-upcoming-meetings]");
const REFRESH_MS = 30000;
const NEAR_START_MS = 60000;
const NEAR_START_REFRESH_MS = 3000;

// How long until the next refresh: soon when a meeting is about to start (or due but not open yet).
function nextRefresh(meetings) {
  const now = Date.now();
  const near = meetings.some((m) => !m.live && Date.parse(m.starts_at) - now < NEAR_START_MS);
  return near ? NEAR_START_REFRESH_MS : REFRESH_MS;
}

function entry(meeting) {
  const li = document.createElement("li");
  li.className = "kiosk-meeting" + (meeting.live ? " is-live" : "");
  const when = document.createElement("span");
  when.className = "kiosk-meeting-when";
  when.textContent = meeting.live ? section.dataset.liveLabel : meeting.when;
  const title = document.createElement("span");
  title.className = "kiosk-meeting-title";
  title.textContent = meeting.title;
  li.append(when, title);
  if (meeting.live && meeting.join_url) {
    const join = document.createElement("a");
    join.className = "kiosk-button primary kiosk-meeting-join";
    join.href = meeting.join_url;
    join.textContent = section.dataset.joinLabel;
    li.append(join);
  }
  return li;
}

async function refresh() {
  let delay = REFRESH_MS;
  try {
    const response = await fetch("/api/v1/kiosk/meetings", { credentials: "same-origin" });
    if (!response.ok) return;
    const { meetings } = await response.json();
    delay = nextRefresh(meetings);
    const list = section.querySelector("[data-meeting-list]");
    list.replaceChildren(...meetings.map(entry));
    section.querySelector("[data-meeting-empty]").hidden = meetings.length > 0;
    const auto = meetings.find((m) => m.live && m.join_mode === "auto" && m.join_url);
    if (auto) window.location.assign(auto.join_url);
  } catch {
    // Offline for a moment: keep what is shown and try again later.
  } finally {
    setTimeout(refresh, delay);
  }
}

if (section) refresh();
