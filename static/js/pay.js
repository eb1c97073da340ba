/* Card payment: Stripe.js tokenises the card in the browser (card numbers never reach our server), then the
   token id is posted to this page, which charges it and answers with where to go next.

   Works with Stripe.js and with localstripe's stand-in, which renders plain inputs and only implements
   createToken (not createPaymentMethod). */
(function () {
  "use strict";

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("pay-form");
    if (!form) { return; }
    var button = document.getElementById("pay-button");
    var errors = document.getElementById("card-errors");
    var field = document.getElementById("field-card");

    function showError(message) {
      errors.textContent = message || form.dataset.errorGeneric;
      field.classList.toggle("has-error", !!message);
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }

    if (typeof window.Stripe !== "function" || !form.dataset.stripeKey) {
      showError(form.dataset.errorStripe);
      button.disabled = true;
      return;
    }
    var stripe = window.Stripe(form.dataset.stripeKey);
    var card = stripe.elements().create("card", {hidePostalCode: false});
    card.mount("#card-element");
    card.on("change", function (event) {
      if (event && event.error) { showError(event.error.message); } else { errors.textContent = ""; field.classList.remove("has-error"); }
    });

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (button.disabled) { return; }
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      errors.textContent = "";

      stripe.createToken(card).then(function (result) {
        if (result.error || !result.token) {
          showError(result.error && result.error.message);
          return null;
        }
        var data = new FormData(form);
        data.set("card_token", result.token.id);
        return fetch(window.location.pathname, {
          method: "POST",
          body: data,
          credentials: "same-origin",
          headers: {"Accept": "application/json", "X-CSRFToken": data.get("csrfmiddlewaretoken")}
        }).then(function (response) {
          return response.json().catch(function () { return {}; });
        }).then(function (body) {
          if (body.confirm) {
            // The bank asks for 3-D Secure: Stripe.js shows it; the status page follows the outcome. A failed
            // authentication or a decline after it reads as every decline does (never the issuer's own words).
            return stripe.confirmCardPayment(body.confirm).then(function (result) {
              var intent = result && result.paymentIntent;
              if ((result && result.error) || (intent && intent.status === "requires_payment_method")) {
                showError(form.dataset.errorDeclined);
              } else {
                window.location.assign(body.redirect);
              }
            });
          } else if (body.redirect) {
            window.location.assign(body.redirect);
          } else {
            showError(body.errors && body.errors.length ? body.errors.join(" ") : null);
          }
        }, function () {
          showError(form.dataset.errorNetwork);
        });
      }, function () {
        showError(form.dataset.errorCard);  // e.g. the card inputs were left empty
      });
    });
  });
})();
