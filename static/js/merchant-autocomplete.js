/*
 * merchant-autocomplete.js: a search box over the merchant registry (no framework).
 *
 * It queries GET /api/v1/merchants?q=... (debounced), lists the matches under the
 * input (mouse, or keyboard: Up/Down to move, Enter to choose, Escape to close)
 * and, on a choice, writes the merchant's id into a hidden input and its name into
 * the visible one. Typing again clears the hidden id, so a form can fall back to
 * the typed text (e.g. the name of a shop that is not registered).
 *
 * Markup it expects (the wrapper is optional: it is added when missing):
 *
 *   <div class="autocomplete">
 *     <label for="merchant_name">Merchant</label>
 *     <input type="text" id="merchant_name" name="merchant_name" autocomplete="off"
 *            data-merchant-autocomplete
 *            data-target-id="merchant_id">
 *     <input type="hidden" id="merchant_id" name="merchant_id" value="">
 *   </div>
 *   <script src="/static/js/merchant-autocomplete.js" defer></script>
 *
 * Required:
 *   data-merchant-autocomplete   marks the visible text input (any number per page).
 *   data-target-id="ID"          the id attribute of the hidden input that receives
 *                                the chosen merchant's id ("" while none is chosen).
 * Optional:
 *   data-kind="goods|service|platform"  only merchants of this kind (e.g. platform).
 *   data-min-chars="1"           characters typed before searching (default 1).
 *   data-empty-text="..."        translated text shown when nothing matches
 *                                (nothing is shown when absent).
 *   data-endpoint="/api/v1/merchants"   the search URL (when the app has a prefix).
 *   data-href-template="/merchants/{id}"  without data-target-id: a choice opens
 *                                this page ({id} replaced) instead of filling a form.
 *
 * Server-rendered forms that come back with errors keep working: a hidden input
 * that already holds an id stays as it is until the user edits the visible text.
 *
 * Events (both bubble), for pages that want to react:
 *   "merchant:selected" on the visible input, detail = the API item
 *       ({id, name, uscc, kind, platform_id, grade, ...});
 *   "merchant:cleared" on the visible input when typing dropped a chosen id.
 * The hidden input also receives "input" and "change" events when its value changes.
 *
 * Inputs added to the page later: window.MerchantAutocomplete.attachAll(rootElement).
 * Loads as a classic script (defer) or as type="module"; it has no imports or exports.
 */
(function () {
  "use strict";

  var DEFAULT_ENDPOINT = "/api/v1/merchants";
  var DEBOUNCE_MS = 250;
  // The API refuses longer queries (422); a longer text cannot be a name fragment anyway.
  var MAX_QUERY = 100;
  var BLUR_CLOSE_MS = 150;
  var counter = 0;

  function fire(element, type) {
    element.dispatchEvent(new Event(type, { bubbles: true }));
  }

  function searchUrl(endpoint, query, kind) {
    var url = endpoint + (endpoint.indexOf("?") < 0 ? "?" : "&") + "q=" + encodeURIComponent(query);
    if (kind) {
      url += "&kind=" + encodeURIComponent(kind);
    }
    return url;
  }

  function attach(input) {
    if (!input || input.dataset.merchantAutocompleteReady) {
      return;
    }
    input.dataset.merchantAutocompleteReady = "1";

    var targetId = input.dataset.targetId || "";
    var hidden = targetId ? document.getElementById(targetId) : null;
    if (targetId && !hidden) {
      // A missing target is a template bug: say so instead of failing silently.
      console.warn("merchant-autocomplete: no element with id", targetId);
    }
    var hrefTemplate = input.dataset.hrefTemplate || "";
    var endpoint = input.dataset.endpoint || DEFAULT_ENDPOINT;
    var kind = input.dataset.kind || "";
    var minChars = Math.max(parseInt(input.dataset.minChars || "1", 10) || 1, 1);
    var emptyText = input.dataset.emptyText || "";

    var wrapper = input.closest(".autocomplete");
    if (!wrapper) {
      wrapper = document.createElement("div");
      wrapper.className = "autocomplete";
      input.parentNode.insertBefore(wrapper, input);
      wrapper.appendChild(input);
    }
    counter += 1;
    var listId = (input.id || "merchant-autocomplete-" + counter) + "-listbox";
    var list = document.createElement("ul");
    list.id = listId;
    list.setAttribute("role", "listbox");
    list.hidden = true;
    input.insertAdjacentElement("afterend", list);

    input.setAttribute("autocomplete", "off");
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", listId);

    var items = [];
    var active = -1;
    var timer = null;
    var controller = null;
    var requestSeq = 0;
    var blurTimer = null;

    function close() {
      list.hidden = true;
      list.textContent = "";
      items = [];
      active = -1;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
    }

    function cancelPending() {
      clearTimeout(timer);
      requestSeq += 1; // any answer still on its way is now stale
      if (controller) {
        controller.abort();
        controller = null;
      }
    }

    function setActive(index) {
      var options = list.querySelectorAll("li[data-index]");
      if (!options.length) {
        return;
      }
      active = (index + options.length) % options.length;
      options.forEach(function (li, i) {
        li.setAttribute("aria-selected", i === active ? "true" : "false");
      });
      var current = options[active];
      input.setAttribute("aria-activedescendant", current.id);
      if (current.scrollIntoView) {
        current.scrollIntoView({ block: "nearest" });
      }
    }

    function render(found) {
      list.textContent = "";
      items = found;
      active = -1;
      input.removeAttribute("aria-activedescendant");
      if (!found.length && !emptyText) {
        close();
        return;
      }
      if (!found.length) {
        var empty = document.createElement("li");
        empty.className = "muted";
        empty.setAttribute("aria-disabled", "true");
        empty.textContent = emptyText;
        list.appendChild(empty);
      }
      found.forEach(function (merchant, i) {
        var li = document.createElement("li");
        li.id = listId + "-" + i;
        li.dataset.index = String(i);
        li.dataset.merchantId = String(merchant.id);
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", "false");
        var name = document.createElement("span");
        name.textContent = merchant.name;
        var code = document.createElement("small");
        code.className = "muted";
        code.textContent = " " + merchant.uscc;
        li.appendChild(name);
        li.appendChild(code);
        list.appendChild(li);
      });
      place();
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
    }

    // The list hangs right under the input. Its static position is not enough:
    // inside a flex column (.field) an absolute box goes to the column's top.
    function place() {
      list.style.top = input.offsetTop + input.offsetHeight + "px";
      list.style.left = input.offsetLeft + "px";
      list.style.width = input.offsetWidth + "px";
      list.style.right = "auto";
    }

    function search(query) {
      cancelPending();
      var mine = requestSeq;
      controller = typeof AbortController === "function" ? new AbortController() : null;
      fetch(searchUrl(endpoint, query, kind), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
        signal: controller ? controller.signal : undefined,
      })
        .then(function (response) {
          return response.ok ? response.json() : null;
        })
        .then(function (data) {
          if (mine !== requestSeq) {
            return;
          }
          if (!data || !Array.isArray(data.items)) {
            close();
            return;
          }
          render(data.items);
        })
        .catch(function (error) {
          if (error && error.name === "AbortError") {
            return;
          }
          if (mine === requestSeq) {
            close();
          }
        });
    }

    function currentQuery() {
      return input.value.trim().slice(0, MAX_QUERY);
    }

    function choose(index) {
      var merchant = items[index];
      if (!merchant) {
        return;
      }
      cancelPending();
      close();
      input.value = merchant.name;
      if (hidden) {
        hidden.value = String(merchant.id);
        fire(hidden, "input");
        fire(hidden, "change");
      }
      input.dispatchEvent(new CustomEvent("merchant:selected", { bubbles: true, detail: merchant }));
      if (!hidden && hrefTemplate) {
        window.location.assign(hrefTemplate.replace("{id}", encodeURIComponent(merchant.id)));
      }
    }

    input.addEventListener("input", function () {
      if (hidden && hidden.value) {
        hidden.value = "";
        fire(hidden, "input");
        fire(hidden, "change");
        input.dispatchEvent(new CustomEvent("merchant:cleared", { bubbles: true }));
      }
      cancelPending();
      var query = currentQuery();
      if (query.length < minChars) {
        close();
        return;
      }
      timer = setTimeout(function () {
        search(query);
      }, DEBOUNCE_MS);
    });

    input.addEventListener("keydown", function (event) {
      var open = !list.hidden && items.length > 0;
      switch (event.key) {
        case "ArrowDown":
          event.preventDefault();
          if (open) {
            setActive(active + 1);
          } else if (currentQuery().length >= minChars) {
            search(currentQuery());
          }
          break;
        case "ArrowUp":
          if (open) {
            event.preventDefault();
            setActive(active < 0 ? items.length - 1 : active - 1);
          }
          break;
        case "Enter":
          // Without a highlighted match, Enter submits the form as usual.
          if (open && active >= 0) {
            event.preventDefault();
            choose(active);
          }
          break;
        case "Escape":
          if (!list.hidden) {
            event.preventDefault();
            cancelPending();
            close();
          }
          break;
        case "Tab":
          cancelPending();
          close();
          break;
        default:
          break;
      }
    });

    input.addEventListener("blur", function () {
      clearTimeout(blurTimer);
      blurTimer = setTimeout(function () {
        cancelPending();
        close();
      }, BLUR_CLOSE_MS);
    });
    input.addEventListener("focus", function () {
      clearTimeout(blurTimer);
    });

    // mousedown would move the focus away (and close the list) before the click.
    list.addEventListener("mousedown", function (event) {
      event.preventDefault();
    });
    list.addEventListener("click", function (event) {
      var li = event.target.closest("li[data-index]");
      if (li) {
        choose(parseInt(li.dataset.index, 10));
      }
    });
    list.addEventListener("mousemove", function (event) {
      var li = event.target.closest("li[data-index]");
      if (li && parseInt(li.dataset.index, 10) !== active) {
        setActive(parseInt(li.dataset.index, 10));
      }
    });
  }

  function attachAll(root) {
    (root || document).querySelectorAll("input[data-merchant-autocomplete]").forEach(attach);
  }

  window.MerchantAutocomplete = { attach: attach, attachAll: attachAll };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      attachAll(document);
    });
  } else {
    attachAll(document);
  }
})();
