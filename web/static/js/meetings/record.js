// Meeting record page: the Print button (inline handlers are not allowed by the page's CSP).
for (const button of document.querySelectorAll("[data-print]")) {
  button.addEventListener("click", () => window.print());
}

// Agenda chapters under each recording: jump the player to where that item started.
for (const button of document.querySelectorAll("[data-seek]")) {
  button.addEventListener("click", () => {
    const player = button.closest(".record-recording").querySelector("[data-player]");
    player.currentTime = Number(button.dataset.seek) || 0;
    player.play().catch(() => {});
  });
}
