/* Servicedesk: small progressive enhancements. Every page works without this file.
 *
 *   /        focus the filter box (or the first search field) on the page
 *   g d      go to the dashboard (agents: /agent/, everyone else: /portal/)
 *   g p      go to the portal (/portal/)
 *   c        report an issue (/portal/report/)
 *   Ctrl/Cmd+Enter in a reply box sends it
 *   Esc      leave the filter box
 *
 * The dashboard filter hides rows of the current page that do not match; typing a full incident
 * number and pressing Enter opens that incident.
 */
(function () {
  "use strict";

  var body = document.body;
  var home = body.getAttribute("data-home") || "/portal/";
  var pendingG = false;
  var pendingTimer = null;

  function typing(el) {
    if (!el) return false;
    var tag = el.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
  }

  function go(url) {
    window.location.assign(url);
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.altKey) return;

    // Ctrl/Cmd+Enter sends the form of the textarea being typed in.
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target.tagName === "TEXTAREA") {
      var form = event.target.form;
      if (form) {
        event.preventDefault();
        if (form.requestSubmit) form.requestSubmit(); else form.submit();
      }
      return;
    }
    if (event.key === "Escape" && event.target.matches && event.target.matches("[data-filter]")) {
      event.target.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || typing(event.target)) return;

    if (pendingG) {
      pendingG = false;
      clearTimeout(pendingTimer);
      if (event.key === "d") { event.preventDefault(); go(home); }
      else if (event.key === "p") { event.preventDefault(); go("/portal/"); }
      return;
    }
    if (event.key === "/") {
      var target = Array.prototype.slice.call(document.querySelectorAll("input[data-filter], input[type=search]"))
        .filter(function (el) { return el.offsetParent !== null; })[0];
      if (target) {
        event.preventDefault();
        target.focus();
        target.select();
      }
    } else if (event.key === "g") {
      pendingG = true;
      pendingTimer = setTimeout(function () { pendingG = false; }, 1200);
    } else if (event.key === "c" && body.hasAttribute("data-can-report")) {
      event.preventDefault();
      go("/portal/report/");
    }
  });

  // Hints about keyboard shortcuts only make sense when this file runs.
  document.querySelectorAll("[data-js-only]").forEach(function (el) { el.hidden = false; });

  // Dashboard: filter the rows of the current page.
  document.querySelectorAll("[data-filter-for]").forEach(function (wrap) {
    var input = wrap.querySelector("input");
    var table = document.getElementById(wrap.getAttribute("data-filter-for"));
    if (!input || !table) return;
    wrap.hidden = false;
    var rows = Array.prototype.slice.call(table.querySelectorAll("tbody tr"));
    var emptyRow = null;

    function apply() {
      var needle = input.value.trim().toLowerCase();
      var shown = 0;
      rows.forEach(function (row) {
        var match = !needle || row.textContent.toLowerCase().indexOf(needle) !== -1;
        row.hidden = !match;
        if (match) shown += 1;
      });
      if (!shown && needle) {
        if (!emptyRow) {
          emptyRow = document.createElement("tr");
          var cell = document.createElement("td");
          cell.colSpan = 99;
          cell.className = "none";
          emptyRow.appendChild(cell);
          table.querySelector("tbody").appendChild(emptyRow);
        }
        emptyRow.firstChild.textContent = "No incident on this page matches \u201c" + input.value.trim() + "\u201d.";
        emptyRow.hidden = false;
      } else if (emptyRow) {
        emptyRow.hidden = true;
      }
    }

    input.addEventListener("input", apply);
    input.addEventListener("keydown", function (event) {
      if (event.key !== "Enter") return;
      var value = input.value.trim().toUpperCase();
      if (/^[A-Z]{2,5}\d{4,}$/.test(value)) {
        event.preventDefault();
        go((wrap.getAttribute("data-incident-url") || "/agent/incidents/") + encodeURIComponent(value) + "/");
      }
    });
  });

  // Messages can be dismissed.
  document.querySelectorAll(".message").forEach(function (message) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "close";
    button.setAttribute("aria-label", "Dismiss");
    button.textContent = "\u00d7";
    button.addEventListener("click", function () { message.remove(); });
    message.appendChild(button);
  });

  // A form is sent once: disable its submit button while the page changes.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.hasAttribute("data-no-lock")) return;
    window.setTimeout(function () {
      form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
    }, 0);
  });
  // Coming back through the history cache: the buttons work again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("button[type=submit][disabled]").forEach(function (b) { b.disabled = false; });
  });
}());
