// agentsynth view: the little behaviour its pages have (no library; loaded from this server only).
//
// - Live figures: an element with data-poll="/api/..." (and data-live on a run's page) is a page
//   whose figures change while a run writes. Every 2 s this fetches that JSON and sets the text of
//   each [data-field] element from it (the server formats every value), moves progress bars, and on
//   a run's page offers a link to the episodes that arrived since it loaded. It stops when the
//   server says nothing is running any more.
// - The SQL box: Ctrl+Enter (Cmd+Enter) runs the query.
// Values are only ever assigned with textContent, never as HTML.
"use strict";

(function () {
  const POLL_MS = 2000;

  function setFields(scope, fields) {
    for (const el of scope.querySelectorAll("[data-field]")) {
      const name = el.getAttribute("data-field");
      if (Object.prototype.hasOwnProperty.call(fields, name)) {
        el.textContent = fields[name];
        if (name === "status") {
          el.className = "status status-" + fields[name];
        }
      }
    }
    for (const bar of scope.querySelectorAll("progress[data-progress]")) {
      if (fields.planned_n !== undefined) bar.max = Number(fields.planned_n);
      if (fields.done_n !== undefined) bar.value = Number(fields.done_n);
    }
  }

  function showNew(main, data) {
    const link = main.querySelector("a[data-new]");
    const before = Number(main.getAttribute("data-matching") || "0");
    if (!link || typeof data.matching !== "number" || data.matching <= before) return;
    const n = data.matching - before;
    link.textContent = n.toLocaleString("en") + " new episode" + (n === 1 ? "" : "s") + " since this page loaded: show them";
    link.hidden = false;
  }

  function apply(main, data) {
    if (Array.isArray(data.runs)) {
      for (const run of data.runs) {
        const row = main.querySelector('[data-run="' + CSS.escape(run.run_id) + '"]');
        if (row) setFields(row, run.fields);
      }
    } else if (data.fields) {
      setFields(main, data.fields);
      showNew(main, data);
    }
  }

  function poll(main) {
    const src = main.getAttribute("data-poll");
    let timer = null;
    async function tick() {
      try {
        const resp = await fetch(src, { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (!resp.ok) return;  // the store may be busy a moment; try again next time
        const data = await resp.json();
        apply(main, data);
        if (!data.live) {
          clearInterval(timer);
          main.removeAttribute("data-live");
          main.setAttribute("data-stopped", "1");
        }
      } catch (err) {
        // the server is gone or restarting: keep trying quietly
      }
    }
    timer = setInterval(tick, POLL_MS);
  }

  function sqlBox() {
    const form = document.getElementById("sql-form");
    if (!form) return;
    const area = form.querySelector("textarea");
    area.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
        ev.preventDefault();
        form.requestSubmit();
      }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const main = document.querySelector("main[data-poll]");
    // a run's page polls while the run is live; the runs page carries data-poll only when one is
    if (main && (main.hasAttribute("data-live") || !main.hasAttribute("data-matching"))) poll(main);
    sqlBox();
  });
})();
