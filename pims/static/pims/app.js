// The little JavaScript the pages need: open dialogs htmx loads, copy buttons, and the
// department switcher submitting on change. Everything else is htmx attributes.
(function () {
  "use strict";

  function openDialogs(root) {
    (root || document).querySelectorAll("dialog[data-modal]:not([open])").forEach(function (d) {
      if (!d.isConnected) return;
      d.showModal();
      d.addEventListener("close", function () { d.remove(); }, { once: true });
      var first = d.querySelector("[autofocus]");
      if (first) first.focus();
    });
  }

  function copyText(text, button) {
    var done = function () {
      var status = button.parentElement.querySelector("[data-copy-status]");
      button.textContent = "Copied";
      if (status) status.textContent = "Copied to the clipboard.";
      setTimeout(function () { button.textContent = button.dataset.label || "Copy"; }, 2500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done);
      return;
    }
    // Plain http on a clinic network: no Clipboard API there, fall back to selecting.
    var area = document.createElement("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); done(); } finally { area.remove(); }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.dataset.copy);
    if (!source) return;
    button.dataset.label = button.dataset.label || button.textContent;
    copyText(source.value !== undefined ? source.value : source.textContent.trim(), button);
  });

  document.addEventListener("change", function (event) {
    var form = event.target.closest("form[data-autosubmit]");
    if (form && event.target.tagName === "SELECT") form.requestSubmit();
  });

  document.addEventListener("htmx:afterSettle", function (event) { openDialogs(event.target); });
  document.addEventListener("DOMContentLoaded", function () { openDialogs(document); });
})();
