// Meeting record page: the Print button (inline handlers are not allowed by the page's CSP).
for (const button of document.querySelectorAll("[data-print]")) {
  button.addEventListener("click", () => window.print());
}
