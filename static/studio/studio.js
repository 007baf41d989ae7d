// Small behaviours htmx does not cover. No inline scripts, so a strict CSP can come later.
document.addEventListener("htmx:responseError", (event) => {
  const banner = document.getElementById("request-error");
  const status = event.detail.xhr.status;
  banner.textContent = status === 404
    ? "That item no longer exists or is not yours."
    : status === 507
      ? "The studio's storage is full: nothing was saved. Tell an admin, then try again."
      : `The studio answered with an error (${status}). Try again; if it persists, tell an admin.`;
  banner.hidden = false;
});
document.addEventListener("htmx:sendError", () => {
  const banner = document.getElementById("request-error");
  banner.textContent = "The studio cannot be reached. Progress resumes when it is back.";
  banner.hidden = false;
});
document.addEventListener("htmx:afterRequest", (event) => {
  if (event.detail.successful) {
    document.getElementById("request-error").hidden = true;
  }
  document.getElementById("no-jobs")?.remove();
});
// The page's one live channel (#live, polled by htmx) asks about every panel still running:
// each carries its job id and the stamp of what it shows (data-live-job on studio and job pages,
// data-live-item on group pages); the answer swaps in only the panels that changed.
document.addEventListener("htmx:configRequest", (event) => {
  if (event.detail.elt.id !== "live") {
    return;
  }
  for (const kind of ["job", "item"]) {
    const attribute = `data-live-${kind}`;
    event.detail.parameters[kind] = [...document.querySelectorAll(`[${attribute}]`)].map(
      (panel) => panel.getAttribute(attribute),
    );
  }
});
// A small model's subjects (studio page, under the model picker): a click describes that one.
document.addEventListener("click", (event) => {
  const chip = event.target.closest(".subject-chip");
  if (!chip) {
    return;
  }
  const prompt = chip.closest("form").querySelector("textarea[name=prompt]");
  prompt.value = chip.dataset.fill;
  prompt.focus();
});
