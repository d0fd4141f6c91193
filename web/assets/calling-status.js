// Keeps the calling status page current: every thirty seconds, while the
// "Update by itself" box is ticked, it fetches the page again and swaps in
// the board (the count of calls and the table). Unticking it stops the
// updates, as a page that changes by itself must allow. Without this script
// the box stays hidden and the page offers a link to refresh it by hand.
(function () {
  "use strict";
  var board = document.getElementById("calling-board");
  var toggle = document.getElementById("auto-refresh");
  if (!board || !toggle) return;
  var every = (Number(board.getAttribute("data-refresh-every")) || 30) * 1000;
  toggle.closest("[hidden]") && toggle.closest("[hidden]").removeAttribute("hidden");
  function look() {
    if (!toggle.checked) {
      window.setTimeout(look, every);
      return;
    }
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) throw new Error("status " + response.status);
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("calling-board");
        if (!fresh) throw new Error("no board on the page");
        board.innerHTML = fresh.innerHTML;
        window.setTimeout(look, every);
      })
      .catch(function () {
        // The server may be restarting: look again, less often.
        window.setTimeout(look, every * 3);
      });
  }
  window.setTimeout(look, every);
})();
