// Kiosk home: report each county notice as shown (the county's delivery report) and read
// notices aloud with the browser's Korean voice where one exists.
const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? "";

async function reportShown(id) {
  try {
    await fetch(`/api/v1/kiosk/notices/${id}/shown`, {
      method: "POST",
      headers: { "X-CSRF-Token": csrf },
      credentials: "same-origin",
    });
  } catch {
    // A weak link may drop this; the next visit to the home screen reports again.
  }
}

function readAloud(article) {
  if (!("speechSynthesis" in window)) return;
  const text = [article.querySelector(".kiosk-notice-title"), article.querySelector(".kiosk-notice-body")]
    .map((node) => node?.textContent ?? "")
    .join(". ");
  const utterance = new SpeechSynthesisUtterance(text);
  utterance.lang = document.documentElement.lang === "en" ? "en-US" : "ko-KR";
  utterance.rate = 0.85; // slower for older listeners
  const voice = speechSynthesis.getVoices().find((v) => v.lang.startsWith(utterance.lang.slice(0, 2)));
  if (voice) utterance.voice = voice;
  speechSynthesis.cancel();
  speechSynthesis.speak(utterance);
}

for (const article of document.querySelectorAll("[data-notice-id]")) {
  reportShown(article.dataset.noticeId);
  article.querySelector("[data-read-aloud]")?.addEventListener("click", () => readAloud(article));
}
