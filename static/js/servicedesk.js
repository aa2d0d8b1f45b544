/* Servicedesk: small progressive enhancements. Every page works without this file.
 *
 *   /        focus the search box (agents: the top bar; elsewhere the first search field)
 *   g d      go to the dashboard (agents: /agent/, everyone else: /portal/)
 *   g m      my queue            g u   the unassigned queue      (agents)
 *   g p      go to the portal (/portal/)
 *   c        report an issue (/portal/report/)
 *   j / k    next / previous row of a queue; Enter or o opens it; x selects it
 *   ?        the keyboard shortcut help
 *   Ctrl/Cmd+Enter in a text box sends its form
 *   Esc      leave a search box, cancel an in-place edit, close an open menu
 *
 * Also: bulk selection in queues, filters that apply on change, canned responses filled into the reply
 * box, <details> menus that close each other, and htmx hooks (focus, messages) for swapped content.
 */
(function () {
  "use strict";

  var root = document.documentElement;
  var body = document.body;
  var home = body.getAttribute("data-home") || "/portal/";
  var isAgent = home === "/agent/";
  var pendingG = false;
  var pendingTimer = null;

  root.classList.add("js");

  function typing(el) {
    if (!el) return false;
    var tag = el.tagName;
    if (tag === "INPUT") {
      var type = (el.getAttribute("type") || "text").toLowerCase();
      return ["checkbox", "radio", "button", "submit", "reset"].indexOf(type) === -1;
    }
    return tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
  }

  function go(url) {
    window.location.assign(url);
  }

  function visible(el) {
    return el && el.offsetParent !== null;
  }

  function submit(form) {
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  }

  // --- queue rows: j/k/Enter/o/x -------------------------------------------------------------------

  function rows() {
    var table = document.querySelector("table[data-keynav]");
    return table ? Array.prototype.slice.call(table.querySelectorAll("tbody tr[data-href]")) : [];
  }

  function focusedRow() {
    return document.querySelector("table[data-keynav] tbody tr.is-focused");
  }

  function focusRow(row) {
    if (!row) return;
    var current = focusedRow();
    if (current) current.classList.remove("is-focused");
    row.classList.add("is-focused");
    row.setAttribute("tabindex", "-1");
    row.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  }

  function moveRow(step) {
    var list = rows();
    if (!list.length) return false;
    var index = list.indexOf(focusedRow());
    var next = index === -1 ? (step > 0 ? 0 : list.length - 1) : Math.min(list.length - 1, Math.max(0, index + step));
    focusRow(list[next]);
    return true;
  }

  document.addEventListener("click", function (event) {
    var row = event.target.closest && event.target.closest("table[data-keynav] tbody tr[data-href]");
    if (row) {
      var current = focusedRow();
      if (current && current !== row) current.classList.remove("is-focused");
      row.classList.add("is-focused");
    }
  });

  // --- keyboard ------------------------------------------------------------------------------------

  function openHelp() {
    var dialog = document.getElementById("shortcuts-help");
    if (dialog && dialog.showModal && !dialog.open) dialog.showModal();
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.altKey) return;
    var target = event.target;

    // Ctrl/Cmd+Enter sends the form of the textarea being typed in.
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && target.tagName === "TEXTAREA") {
      if (target.form) {
        event.preventDefault();
        submit(target.form);
      }
      return;
    }
    if (event.key === "Escape") {
      var editing = target.closest && target.closest(".inline-edit");
      var cancel = editing && editing.querySelector("[data-cancel]");
      if (cancel) {
        event.preventDefault();
        cancel.click();
        return;
      }
      var menu = target.closest && target.closest("details.menu[open]");
      menu = menu || document.querySelector("details.menu[open]");
      if (menu) {
        menu.open = false;
        var summary = menu.querySelector("summary");
        if (summary) summary.focus();
        return;
      }
      if (target.matches && target.matches("input[type=search]")) target.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || typing(target)) return;

    if (pendingG) {
      pendingG = false;
      clearTimeout(pendingTimer);
      var where = { d: home, p: "/portal/" };
      if (isAgent) {
        where.m = "/agent/queue/mine/";
        where.u = "/agent/queue/unassigned/";
      }
      if (where[event.key]) {
        event.preventDefault();
        go(where[event.key]);
      }
      return;
    }
    var key = event.key;
    if (key === "/") {
      var search = document.getElementById("global-search");
      if (!visible(search)) {
        search = Array.prototype.slice.call(document.querySelectorAll("input[type=search]")).filter(visible)[0];
      }
      if (search) {
        event.preventDefault();
        search.focus();
        search.select();
      }
    } else if (key === "?") {
      if (document.getElementById("shortcuts-help")) {
        event.preventDefault();
        openHelp();
      }
    } else if (key === "g") {
      pendingG = true;
      pendingTimer = setTimeout(function () { pendingG = false; }, 1200);
    } else if (key === "j" || key === "k") {
      if (moveRow(key === "j" ? 1 : -1)) event.preventDefault();
    } else if ((key === "Enter" || key === "o") && focusedRow()) {
      // Enter on a link or button keeps its own meaning.
      if (key === "Enter" && target.closest && target.closest("a, button, summary")) return;
      event.preventDefault();
      go(focusedRow().getAttribute("data-href"));
    } else if (key === "x" && focusedRow()) {
      var box = focusedRow().querySelector("input[type=checkbox]");
      if (box) {
        event.preventDefault();
        box.checked = !box.checked;
        box.dispatchEvent(new Event("change", { bubbles: true }));
      }
    } else if (key === "c" && body.hasAttribute("data-can-report") && !isAgent) {
      event.preventDefault();
      go("/portal/report/");
    }
  });

  document.querySelectorAll("[data-shortcuts-open]").forEach(function (button) {
    button.addEventListener("click", openHelp);
  });

  // Hints about keyboard shortcuts only make sense when this file runs.
  document.querySelectorAll("[data-js-only]").forEach(function (el) { el.hidden = false; });

  // --- bulk actions in a queue ---------------------------------------------------------------------

  document.querySelectorAll("form[data-bulk]").forEach(function (form) {
    var boxes = Array.prototype.slice.call(document.querySelectorAll('input[data-row-check][form="' + form.id + '"]'));
    var all = document.querySelector("input[data-select-all]");
    var count = form.querySelector("[data-bulk-count]");
    var total = count ? count.textContent : "";
    var action = form.querySelector("select[name=action]");
    var apply = form.querySelector("button[type=submit]");

    function refresh() {
      var n = boxes.filter(function (b) { return b.checked; }).length;
      form.classList.toggle("has-selection", n > 0);
      if (count) count.textContent = n ? n + " selected" : total;
      if (apply) apply.disabled = n === 0;
      if (all) {
        all.checked = n > 0 && n === boxes.length;
        all.indeterminate = n > 0 && n < boxes.length;
      }
    }

    function showFields() {
      var chosen = action ? action.value : "";
      form.querySelectorAll("[data-bulk-for]").forEach(function (el) {
        var wanted = el.getAttribute("data-bulk-for").split(" ").indexOf(chosen) !== -1;
        el.hidden = !wanted;
        el.disabled = !wanted;
      });
    }

    boxes.forEach(function (b) { b.addEventListener("change", refresh); });
    if (all) {
      all.addEventListener("change", function () {
        boxes.forEach(function (b) { b.checked = all.checked; });
        refresh();
      });
    }
    if (action) action.addEventListener("change", showFields);
    showFields();
    refresh();
  });

  // Filters apply as soon as a choice changes (the Apply button stays for the search words), and leave
  // the "any" choices out of the address: ?status=new rather than ?q=&status=new&priority=&...
  document.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
    form.addEventListener("change", function (event) {
      if (event.target.tagName === "SELECT") submit(form);
    });
    form.addEventListener("submit", function () {
      Array.prototype.forEach.call(form.elements, function (el) {
        if (el.name && !el.disabled && el.value === "") el.disabled = true;
      });
    });
  });

  // --- canned responses ----------------------------------------------------------------------------

  document.querySelectorAll("select[data-canned-url]").forEach(function (select) {
    select.addEventListener("change", function () {
      var id = select.value;
      var textarea = document.getElementById(select.getAttribute("data-target"));
      if (!id || !textarea) return;
      select.disabled = true;
      fetch(select.getAttribute("data-canned-url") + encodeURIComponent(id) + "/", {
        credentials: "same-origin",
        headers: { Accept: "text/plain" }
      })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.text();
        })
        .then(function (text) {
          var current = textarea.value.replace(/\s+$/, "");
          textarea.value = current ? current + "\n\n" + text : text;
          textarea.dispatchEvent(new Event("input", { bubbles: true }));
          textarea.focus();
          textarea.setSelectionRange(textarea.value.length, textarea.value.length);
        })
        .catch(function () {
          // Fall back to the page reload that works without JavaScript.
          submit(select.form);
        })
        .then(function () {
          select.disabled = false;
          select.value = "";
        });
    });
  });

  // --- menus made of <details> ---------------------------------------------------------------------

  document.addEventListener("toggle", function (event) {
    var menu = event.target;
    if (!(menu instanceof HTMLDetailsElement) || !menu.classList.contains("menu") || !menu.open) return;
    document.querySelectorAll("details.menu[open]").forEach(function (other) {
      if (other !== menu) other.open = false;
    });
    var first = menu.querySelector(".menu-panel select, .menu-panel textarea, .menu-panel input:not([type=hidden])");
    if (first) first.focus();
  }, true);

  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.open = false;
    });
  });

  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  });

  // --- messages, swapped content ------------------------------------------------------------------

  function enhance(scope) {
    scope.querySelectorAll(".message").forEach(function (message) {
      if (message.querySelector(".close")) return;
      var button = document.createElement("button");
      button.type = "button";
      button.className = "close";
      button.setAttribute("aria-label", "Dismiss");
      button.textContent = "\u00d7";
      button.addEventListener("click", function () { message.remove(); });
      message.appendChild(button);
    });
  }
  enhance(document);

  // An in-place edit form arrives by htmx: put the cursor in it.
  body.addEventListener("htmx:afterSwap", function (event) {
    var field = event.detail.target && event.detail.target.querySelector
      ? event.detail.target.querySelector("[data-autofocus]") : null;
    if (!field) {
      var id = event.detail.target && event.detail.target.id;
      field = id ? document.querySelector("#" + id + " [data-autofocus]") : null;
    }
    if (field) {
      field.focus();
      if (field.select && field.tagName === "INPUT") field.select();
    }
  });
  body.addEventListener("htmx:oobAfterSwap", function (event) {
    if (event.detail.target) enhance(event.detail.target);
  });
  body.addEventListener("htmx:load", function (event) {
    if (event.detail.elt && event.detail.elt.querySelectorAll) enhance(event.detail.elt);
  });

  // A form is sent once: disable its submit button while the page changes. htmx forms stay on the page,
  // so they keep their buttons (htmx itself ignores a second request while one is running).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || form.hasAttribute("data-no-lock") || form.hasAttribute("hx-post")) return;
    if ((form.getAttribute("method") || "get").toLowerCase() === "get") return;
    window.setTimeout(function () {
      form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
    }, 0);
  });
  // Coming back through the history cache: the buttons work again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("button[type=submit][disabled], form[data-autosubmit] [disabled]")
      .forEach(function (el) { el.disabled = false; });
  });
}());
