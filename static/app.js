// Live updates for the helpdesk pages. The pages work without this script; with it, the ticket
// list, the ticket page and the dashboard refresh their data when tickets change, and a notice
// appears when a ticket is assigned to you.
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

  function connect() {
    var source = new EventSource("/events");
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
