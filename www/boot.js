// Starts the dialer (built into www/pkg/ by scripts/build-dialer.sh) and exposes the
// diagnostic hooks the browser tests read:
//   window.switchboard.stats()   -> Promise of the live call's getStats() figures
//   window.switchboard.timings() -> the last call's click-to-offer and answer timings
// <body data-ready="true"> is set by the dialer once it is wired.
try {
  const dialer = await import("./pkg/switchboard_web.js");
  await dialer.default();
  window.switchboard = Object.freeze({ stats: dialer.stats, timings: dialer.timings });
} catch (error) {
  console.error("the dialer did not start", error);
  const alert = document.getElementById("error");
  if (alert) {
    alert.textContent =
      "The dialer couldn't start in this browser. Reload the page; if it keeps happening, tell your administrator.";
  }
  document.body.dataset.ready = "failed";
}
