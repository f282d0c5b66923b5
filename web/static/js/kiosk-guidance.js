// Spoken guidance and volume for the kiosk (any kiosk page includes this from kiosk/base.html).
// A Korean browser voice is used where one exists; otherwise the pre-recorded clips shipped in
// /static/audio/guidance/ (made with scripts/make_guidance_audio.py) are played.
const VOLUME_KEY = "maeul.kiosk.volume";
const STEPS = [0.2, 0.4, 0.6, 0.8, 1.0];
const lang = document.documentElement.lang === "en" ? "en" : "ko";
const player = document.createElement("audio");
player.dataset.guidancePlayer = "";
document.body.append(player);

export function volume() {
  const stored = Number(localStorage.getItem(VOLUME_KEY));
  return STEPS.includes(stored) ? stored : 0.8;
}

function applyVolume() {
  const level = volume();
  for (const media of document.querySelectorAll("audio, video")) media.volume = level;
  const label = document.querySelector("[data-volume-level]");
  const text = `${Math.round(level * 100)}%`;
  if (label && label.textContent !== text) label.textContent = text;
}

export function changeVolume(direction) {
  const index = STEPS.indexOf(volume());
  const next = STEPS[Math.min(STEPS.length - 1, Math.max(0, index + direction))];
  localStorage.setItem(VOLUME_KEY, String(next));
  applyVolume();
}

function koreanVoice() {
  if (!("speechSynthesis" in window)) return null;
  return speechSynthesis.getVoices().find((voice) => voice.lang.toLowerCase().startsWith(lang)) ?? null;
}

let manifest = null;
async function clip(key) {
  manifest ??= await fetch("/static/audio/guidance/manifest.json").then((r) => r.json());
  return manifest[key]?.[lang] ?? null;
}

export async function speak(key) {
  const entry = await clip(key);
  if (!entry) return;
  const voice = koreanVoice();
  if (voice) {
    const utterance = new SpeechSynthesisUtterance(entry.text);
    utterance.voice = voice;
    utterance.rate = 0.85;
    utterance.volume = volume();
    speechSynthesis.cancel();
    speechSynthesis.speak(utterance);
    return;
  }
  player.src = `/static/audio/guidance/${entry.file}`;
  player.volume = volume();
  await player.play().catch(() => {});
}

document.querySelector("[data-volume-down]")?.addEventListener("click", () => changeVolume(-1));
document.querySelector("[data-volume-up]")?.addEventListener("click", () => changeVolume(1));
document.querySelector("[data-guidance-button]")?.addEventListener("click", () => {
  speak(document.body.dataset.guidance || "home");
});
// New media (meeting audio, notice videos) follow the chosen volume too.
new MutationObserver((records) => {
  const addedMedia = records.some((record) =>
    [...record.addedNodes].some((node) => node instanceof HTMLMediaElement || node.querySelector?.("audio, video")),
  );
  if (addedMedia) applyVolume();
}).observe(document.body, { childList: true, subtree: true });
applyVolume();
if (document.body.dataset.guidanceAutoplay === "true") speak(document.body.dataset.guidance);
