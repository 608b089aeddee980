// plano dashboard: each service's log followed live (Server-Sent Events from
// /apps/APP/logs/SERVICE). Without this script the page shows the last lines it was made
// with. Lines are added as text, never as HTML.
"use strict";
(function () {
  const KEPT = 1000;
  for (const pre of document.querySelectorAll("pre[data-follow]")) {
    const state = pre.closest(".logbox").querySelector(".follow-state");
    const source = new EventSource(pre.dataset.follow);
    source.addEventListener("open", function () { state.textContent = "following live"; });
    source.addEventListener("reset", function () { pre.textContent = ""; });
    source.addEventListener("end", function (event) { state.textContent = event.data; });
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED) state.textContent = "not followed: open the page again";
    });
    source.addEventListener("message", function (event) {
      const bottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
      pre.append(event.data + "\n");
      while (pre.childNodes.length > KEPT) pre.firstChild.remove();
      if (bottom) pre.scrollTop = pre.scrollHeight;
    });
  }
})();
