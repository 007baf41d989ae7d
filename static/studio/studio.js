// Small behaviours htmx does not cover. No inline scripts, so a strict CSP can come later.
document.addEventListener("htmx:responseError", (event) => {
  const banner = document.getElementById("request-error");
  const status = event.detail.xhr.status;
  banner.textContent = status === 404
    ? "That item no longer exists or is not yours."
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
