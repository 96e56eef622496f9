// Live updates for the helpdesk pages. The pages work without this script; with it, the ticket
// list, the ticket page and the dashboard refresh their data when tickets change, and a notice
// appears when a ticket is assigned to you.
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
    if (list) refresh(["ticket-list"]);
    if (ticket) refresh(["ticket-facts", "conversation", "history"]);
    if (dashboard) refresh(dashboardParts);
  }

  function connect() {
    var source = new EventSource("/events");
    source.addEventListener("ticket", function (event) {
      var change = JSON.parse(event.data);
      if (list) refresh(["ticket-list"]);
      if (dashboard) refresh(dashboardParts);
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
