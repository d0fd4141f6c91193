// The cart, for browsers with JavaScript: the summary follows the call
// credit chosen. Without this script each choice says what is due with it.
"use strict";

function followCreditChoice() {
  const credit = document.querySelector("[data-testid=cart-credit]");
  const total = document.querySelector("[data-testid=cart-total]");
  if (!credit || !total) {
    return;
  }
  for (const choice of document.querySelectorAll("input[name=starting_credit]")) {
    choice.addEventListener("change", () => {
      if (choice.checked) {
        credit.textContent = choice.dataset.credit;
        total.textContent = choice.dataset.due;
      }
    });
  }
}

document.addEventListener("DOMContentLoaded", followCreditChoice);
