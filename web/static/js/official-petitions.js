// Official request page: choosing a saved answer fills the answer box (the server also accepts the
// template id alone, so this is a convenience, not a requirement).
for (const select of document.querySelectorAll('select[data-fills]')) {
  select.addEventListener('change', () => {
    const target = document.getElementById(select.dataset.fills);
    const option = select.selectedOptions[0];
    if (target && option && option.dataset.body && !target.value.trim()) target.value = option.dataset.body;
  });
}
