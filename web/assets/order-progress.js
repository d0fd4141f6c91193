// Keeps an order's page current while it waits for payment or for its PBX:
// every few seconds it fetches the page again and swaps in the order's card
// when it has changed. The card is a polite live region, so a screen reader
// hears the news without losing its place. Without this script the page
// offers a link to refresh it by hand.
(function () {
  "use strict";
  var card = document.getElementById("order");
  if (!card || !card.hasAttribute("data-refresh-every")) return;
  var every = (Number(card.getAttribute("data-refresh-every")) || 3) * 1000;
  function look() {
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) throw new Error("status " + response.status);
        return response.text();
      })
      .then(function (html) {
        var page = new DOMParser().parseFromString(html, "text/html");
        var fresh = page.getElementById("order");
        if (!fresh) throw new Error("no order on the page");
        if (fresh.innerHTML !== card.innerHTML) {
          card.innerHTML = fresh.innerHTML;
          document.title = page.title;
        }
        if (fresh.hasAttribute("data-refresh-every")) {
          window.setTimeout(look, every);
        } else {
          card.removeAttribute("data-refresh-every");
        }
      })
      .catch(function () {
        // The server may be restarting: look again, less often.
        window.setTimeout(look, every * 3);
      });
  }
  window.setTimeout(look, every);
})();
