/* The rollout console's behaviour, kept out of the pages so that their Content-Security-Policy
 * needs no 'unsafe-inline' for scripts:
 * - a form with data-confirm asks before it is sent (with data-confirm-action, the checked
 *   action's name is put in front of the question);
 * - #matrix with data-refresh-s re-fetches itself in place, except while focus is inside it. */
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (!question) return;
    if (form.hasAttribute("data-confirm-action")) {
      var checked = form.querySelector("input[name=action]:checked");
      question = (checked ? checked.value : "Change") + " " + question;
    }
    if (!window.confirm(question)) event.preventDefault();
  });

  function refreshMatrix(matrix, seconds) {
    var status = document.getElementById("refreshed");
    setInterval(function () {
      if (matrix.contains(document.activeElement)) return;
      var url = new URL(window.location.href);
      url.searchParams.set("partial", "1");
      fetch(url, { credentials: "same-origin" }).then(function (r) {
        if (!r.ok) throw new Error(r.status);
        return r.text();
      }).then(function (html) {
        matrix.innerHTML = html;
        if (status) status.textContent = "Updated " + new Date().toLocaleTimeString() + ".";
      }).catch(function () {
        if (status) status.textContent = "Could not refresh; retrying.";
      });
    }, seconds * 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var matrix = document.getElementById("matrix");
    var seconds = matrix && Number(matrix.getAttribute("data-refresh-s"));
    if (seconds > 0) refreshMatrix(matrix, seconds);
  });
})();
