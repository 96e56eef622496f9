// Live updates for the helpdesk pages. The pages work without this script; with it, the ticket
// list, the ticket page and the dashboard refresh their data when tickets change, and a notice
// appears when a ticket is assigned to you. On a ticket page it shows who else has the ticket
// open and who is writing a reply. Keyboard shortcuts are at the end.
// Times without a zone chosen on /account (`data-local`) are shown in the browser's zone.
(function () {
  "use strict";
  function two(n) { return (n < 10 ? "0" : "") + n; }
  function localize() {
    var times = document.querySelectorAll("time[data-local]");
    for (var i = 0; i < times.length; i++) {
      var at = new Date(times[i].getAttribute("datetime"));
      if (isNaN(at.getTime())) continue;
      times[i].textContent = at.getFullYear() + "-" + two(at.getMonth() + 1) + "-" +
        two(at.getDate()) + " " + two(at.getHours()) + ":" + two(at.getMinutes());
      times[i].removeAttribute("data-local");
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", localize);
  } else {
    localize();
  }
  document.addEventListener("helpdesk:refreshed", localize);
})();

(function () {
  "use strict";
  var main = document.querySelector("main[data-live]");
  if (!main || !window.EventSource || !window.fetch || !window.DOMParser) return;

  var list = document.querySelector("[data-live-list]");
  var ticket = document.querySelector("[data-ticket]");
  var dashboard = document.querySelector("[data-live-dashboard]");
  var dashboardParts = ["dashboard-figures", "my-tickets", "dashboard-groups"];
  var notice = document.getElementById("live-notice");
  var timer = null;
  var wanted = [];

  // Fetches this page again and swaps in the parts that show data (never the forms, where
  // someone may be typing). Several changes in a burst cause one fetch.
  function refresh(ids) {
    ids.forEach(function (id) { if (wanted.indexOf(id) < 0) wanted.push(id); });
    if (timer) return;
    timer = setTimeout(function () {
      var parts = wanted;
      wanted = [];
      timer = null;
      fetch(location.href, { credentials: "same-origin", headers: { "X-Requested-With": "live" } })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (!html) return;
          var fresh = new DOMParser().parseFromString(html, "text/html");
          parts.forEach(function (id) {
            var next = fresh.getElementById(id);
            var current = document.getElementById(id);
            if (next && current) current.replaceWith(document.importNode(next, true));
          });
          document.dispatchEvent(new CustomEvent("helpdesk:refreshed"));
        })
        .catch(function () {});
    }, 150);
  }

  function show(text, href) {
    if (!notice) return;
    notice.textContent = "";
    var link = document.createElement("a");
    link.href = href;
    link.textContent = text;
    notice.appendChild(link);
    var close = document.createElement("button");
    close.type = "button";
    close.className = "link";
    close.textContent = "×";
    close.setAttribute("aria-label", "Dismiss");
    close.onclick = function () { notice.hidden = true; };
    notice.appendChild(close);
    notice.hidden = false;
  }

  function resync() {
    if (list) refresh(["ticket-list", "nav-unread"]);
    if (ticket) refresh(["ticket-facts", "conversation", "history"]);
    if (dashboard) refresh(dashboardParts);
  }

  // Who else is on this ticket: the stream of a ticket page names its ticket, and the server
  // sends "presence" with the others there.
  var presence = document.getElementById("presence");
  function showPresence(people) {
    if (!presence) return;
    presence.textContent = people.length === 0 ? "" : "Also here: " + people.map(function (person) {
      return person.name + (person.typing ? " (writing a reply…)" : "");
    }).join(", ");
  }

  // Typing in the reply box tells the others, at most every few seconds (the server keeps the
  // mark for ten).
  var replyBox = document.querySelector("#reply-form textarea[name=text]");
  var csrfField = document.querySelector("#reply-form input[name=csrf]");
  var typingSent = 0;
  if (ticket && replyBox && csrfField) {
    replyBox.addEventListener("input", function () {
      var now = Date.now();
      if (now - typingSent < 4000) return;
      typingSent = now;
      fetch("/tickets/" + ticket.getAttribute("data-ticket") + "/typing", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: "csrf=" + encodeURIComponent(csrfField.value)
      }).catch(function () {});
    });
  }

  function connect() {
    var source = new EventSource(ticket ? "/events?ticket=" + encodeURIComponent(ticket.getAttribute("data-ticket")) : "/events");
    source.addEventListener("presence", function (event) {
      showPresence(JSON.parse(event.data).people);
    });
    source.addEventListener("ticket", function (event) {
      var change = JSON.parse(event.data);
      if (list) refresh(["ticket-list", "nav-unread"]);
      if (dashboard) refresh(dashboardParts.concat(["nav-unread"]));
      if (ticket && String(change.number) === ticket.getAttribute("data-ticket")) {
        refresh(["ticket-facts", "conversation", "history"]);
      }
    });
    source.addEventListener("resync", resync);
    source.addEventListener("assigned", function (event) {
      var change = JSON.parse(event.data);
      var text = "Ticket #" + change.number + " was assigned to you";
      show(text, "/tickets/" + change.number);
      if (window.Notification && Notification.permission === "granted") {
        new Notification("helpdesk", { body: text });
      }
    });
    window.helpdeskLive = source;
  }

  connect();
  // The stream is closed as the page is left: a browser allows only a few connections per
  // site, and streams of pages kept for the back button would hold them and stall the next
  // page. A page shown again from that cache reconnects and reloads its data.
  window.addEventListener("pagehide", function () { window.helpdeskLive.close(); });
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    connect();
    resync();
  });
  // Targets fall due with time alone, without a change to any ticket.
  if (dashboard) setInterval(function () { refresh(dashboardParts); }, 60000);
})();

// The canned response picker of the ticket page: picking one puts its text (placeholders
// already filled in) in the reply box at once, and marks the reply so its actions apply.
(function () {
  "use strict";
  var select = document.getElementById("canned-select");
  var form = document.getElementById("reply-form");
  var picked = document.getElementById("canned-response-id");
  if (!select || !form || !picked) return;
  var insert = document.getElementById("canned-insert");
  if (insert) insert.hidden = true;
  select.addEventListener("change", function () {
    var option = select.options[select.selectedIndex];
    var box = form.querySelector("textarea[name=text]");
    picked.value = option ? option.value : "";
    if (!option || !option.value || !box) return;
    var text = option.getAttribute("data-text") || "";
    var start = box.selectionStart, end = box.selectionEnd;
    // Into what is typed, where the cursor was; an empty box just gets the text.
    if (box.value && typeof start === "number") {
      box.value = box.value.slice(0, start) + text + box.value.slice(end);
    } else {
      box.value = text;
    }
    box.focus();
  });
})();

// Keyboard shortcuts on the signed-in pages, listed in the dialog that "?" (or the footer's
// link) opens. Keys never act while a field has the focus.
(function () {
  "use strict";
  var help = document.getElementById("shortcuts");
  if (!help || typeof help.showModal !== "function") return;
  var helpLink = document.getElementById("shortcuts-link");
  if (helpLink) {
    helpLink.addEventListener("click", function (event) {
      event.preventDefault();
      help.showModal();
    });
  }

  var current = -1;
  var highlighted = null; // the highlighted row's ticket link
  function linkOf(item) {
    return item && item.tagName === "TR" ? item.querySelector("a") : null;
  }
  // The list's rows (each holds a ticket link) or the ticket page's messages.
  function items() {
    var rows = document.querySelectorAll("#ticket-rows tr");
    var linked = Array.prototype.filter.call(rows, function (row) { return row.querySelector("a"); });
    if (linked.length) return linked;
    return Array.prototype.slice.call(document.querySelectorAll("#conversation article.message"));
  }
  function highlight(index) {
    var all = items();
    if (!all.length) return;
    current = Math.max(0, Math.min(all.length - 1, index));
    all.forEach(function (item, i) { item.classList.toggle("selected", i === current); });
    var item = all[current];
    var target = linkOf(item) || item;
    highlighted = target.tagName === "A" ? target.getAttribute("href") : null;
    if (target.tagName !== "A") target.setAttribute("tabindex", "-1");
    target.focus();
    item.scrollIntoView({ block: "nearest" });
  }
  // A refreshed list keeps the highlighted ticket (wherever it moved) and the keyboard focus
  // the swap took away.
  document.addEventListener("helpdesk:refreshed", function () {
    var all = items();
    if (highlighted) {
      for (var i = 0; i < all.length; i++) {
        var link = linkOf(all[i]);
        if (link && link.getAttribute("href") === highlighted) current = i;
      }
    }
    if (current < 0 || current >= all.length) return;
    var item = all[current];
    item.classList.add("selected");
    var lost = !document.activeElement || document.activeElement === document.body;
    if (lost) (linkOf(item) || item).focus({ preventScroll: true });
  });
  function open() {
    var all = items();
    var link = linkOf(all[current]);
    if (link) location.href = link.href;
  }
  function writeReply(note) {
    var box = document.querySelector("#reply-form textarea[name=text]");
    if (!box) return false;
    var noteBox = document.querySelector("#reply-form input[name=note]");
    if (noteBox) noteBox.checked = note;
    box.focus();
    return true;
  }
  function search() {
    var field = document.querySelector("form[role=search] input[name=q]");
    if (!field) {
      location.href = "/tickets#search";
      return;
    }
    field.focus();
    field.select();
  }
  if (location.hash === "#search") search();

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    var target = event.target;
    if (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) return;
    if (help.open) return;
    var handled = true;
    switch (event.key) {
      case "j": highlight(current + 1); break;
      case "k": highlight(current < 0 ? 0 : current - 1); break;
      case "o": open(); break;
      case "Enter":
        // A focused link opens by itself; a highlighted row otherwise.
        if (target.tagName === "A" || target.tagName === "BUTTON" || current < 0) handled = false;
        else open();
        break;
      case "r": handled = writeReply(false); break;
      case "n": handled = writeReply(true); break;
      case "/": search(); break;
      case "?": help.showModal(); break;
      default: handled = false;
    }
    if (handled) event.preventDefault();
  });
})();

// The ticket list's bulk form. Without this script each row's box is sent on its own and the
// "select all on this page" box sends the page's numbers itself; with it, that box ticks the
// rows, the form says how many are selected, and ticks survive live refreshes of the list.
(function () {
  "use strict";
  var form = document.getElementById("bulk-form");
  if (!form) return;
  var count = document.getElementById("bulk-count");
  var buttons = form.querySelectorAll("button[type=submit]");
  var ticked = {};

  function rows() {
    return document.querySelectorAll("input[type=checkbox][name=ticket][form=bulk-form]");
  }

  // The "all" box stays checked only while every row is, so it never sends a row the
  // person unticked.
  function update() {
    var boxes = rows();
    var selected = 0;
    for (var i = 0; i < boxes.length; i++) if (boxes[i].checked) selected++;
    var all = document.getElementById("select-page");
    if (all) {
      all.checked = boxes.length > 0 && selected === boxes.length;
      all.indeterminate = selected > 0 && selected < boxes.length;
    }
    if (count) {
      count.textContent = selected + " selected";
      count.hidden = false;
    }
    for (var j = 0; j < buttons.length; j++) buttons[j].disabled = selected === 0;
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.id === "select-page") {
      var boxes = rows();
      for (var i = 0; i < boxes.length; i++) {
        boxes[i].checked = target.checked;
        ticked[boxes[i].value] = target.checked;
      }
    } else if (target.name === "ticket" && target.getAttribute("form") === "bulk-form") {
      ticked[target.value] = target.checked;
    } else {
      return;
    }
    update();
  });

  // A live refresh brings fresh rows: tick again what was ticked.
  document.addEventListener("helpdesk:refreshed", function () {
    var boxes = rows();
    for (var i = 0; i < boxes.length; i++) boxes[i].checked = ticked[boxes[i].value] === true;
    update();
  });

  // The browser may restore ticks on back navigation.
  var boxes = rows();
  for (var i = 0; i < boxes.length; i++) ticked[boxes[i].value] = boxes[i].checked;
  update();
})();
