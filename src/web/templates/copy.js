document.querySelectorAll("input[data-select]").forEach(function (field) {
  var all = function () { field.select(); };
  field.addEventListener("focus", all);
  field.addEventListener("click", all);
});
document.querySelectorAll("button[data-copy]").forEach(function (button) {
  var field = document.getElementById(button.dataset.copy);
  var status = document.getElementById(button.dataset.copy + "-copied");
  var said = function (text) { if (status) { status.textContent = text; } };
  button.hidden = false;
  button.addEventListener("click", function () {
    field.focus();
    field.select();
    var fallback = function () {
      said(document.execCommand("copy") ? "Copied." : "Selected: press Ctrl+C (or Command+C) to copy.");
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(field.value).then(function () { said("Copied."); }, fallback);
    } else {
      fallback();
    }
  });
});
