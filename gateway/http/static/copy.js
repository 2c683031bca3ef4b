// Copy buttons (share and upload pages): any <button class="copy" data-copy="field-id">. Pages work
// without this script: the link is in a selectable text field.
"use strict";
document.addEventListener("click", (event) => {
  const button = event.target.closest("button.copy");
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  if (!field) return;
  copyText(field, button);
});

function copyText(field, button) {
  const done = () => { button.textContent = "Copied"; setTimeout(() => { button.textContent = "Copy"; }, 2000); };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(done, () => { field.select(); });
  } else {
    field.select();
    try { if (document.execCommand("copy")) done(); } catch (_) { /* selected: the user copies */ }
  }
}
