/*
 * warning-form.js: the merchant picker of the consumer-warning editor.
 *
 * The search box (merchant-autocomplete.js) fires "merchant:selected" with the
 * chosen registry entry; this adds it to the ticked list of merchants named
 * (a checkbox named merchant_ids, like the server renders) and clears the box.
 * Without JavaScript the "Find" button searches on the server instead.
 */
(function () {
  "use strict";

  function addMerchant(list, merchant) {
    var id = String(merchant.id);
    var existing = list.querySelector('input[name="merchant_ids"][value="' + id + '"]');
    if (existing) {
      existing.checked = true;
      return;
    }
    var li = document.createElement("li");
    var label = document.createElement("label");
    label.className = "check";
    var box = document.createElement("input");
    box.type = "checkbox";
    box.name = "merchant_ids";
    box.value = id;
    box.checked = true;
    box.setAttribute("data-testid", "chosen-merchant");
    var code = document.createElement("span");
    code.className = "muted";
    code.textContent = " · " + merchant.uscc;
    label.appendChild(box);
    label.appendChild(document.createTextNode(" " + merchant.name));
    label.appendChild(code);
    li.appendChild(label);
    list.appendChild(li);
  }

  function init() {
    var list = document.getElementById("warning-merchants");
    var input = document.querySelector("[data-testid=warning-form] input[data-merchant-autocomplete]");
    if (!list || !input) {
      return;
    }
    input.addEventListener("merchant:selected", function (event) {
      addMerchant(list, event.detail);
      var none = document.getElementById("warning-no-merchant");
      if (none) {
        none.hidden = true;
      }
      // The next merchant can be typed at once.
      window.setTimeout(function () {
        input.value = "";
        input.focus();
      }, 0);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
