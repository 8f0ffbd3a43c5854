// The report works without this script; it adds a copy button and lights up the timeline flag
// of the anomaly being read. It reads nothing from the network and no value from the run.
(function () {
  "use strict";
  document.querySelectorAll("button[data-copy]").forEach(function (b) {
    b.addEventListener("click", function () {
      var el = document.getElementById(b.getAttribute("data-copy"));
      if (!el) { return; }
      var done = function () { b.textContent = "Copied"; setTimeout(function () { b.textContent = "Copy"; }, 1500); };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(el.textContent).then(done, function () {});
      } else {
        var r = document.createRange(); r.selectNodeContents(el);
        var s = window.getSelection(); s.removeAllRanges(); s.addRange(r);
        try { document.execCommand("copy"); done(); } catch (e) { /* selection stays for a manual copy */ }
      }
    });
  });
  function light() {
    document.querySelectorAll(".tl-marker.lit").forEach(function (m) { m.classList.remove("lit"); });
    var id = decodeURIComponent(location.hash.slice(1));
    if (id.indexOf("anomaly-") === 0) {
      var m = document.getElementById("tl-" + id);
      if (m) { m.classList.add("lit"); }
    }
  }
  window.addEventListener("hashchange", light);
  light();
  document.body.setAttribute("data-script", "ran");
})();
