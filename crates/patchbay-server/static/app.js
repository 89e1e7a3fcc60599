// Patchbay's one script. Everything works without it; it only makes pages quicker to use:
// results shown in place, secret fields behind "Change", copy buttons, the auth method's
// fields alone, confirmation dialogs, provider search, and OAuth in a popup.
"use strict";
(() => {
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

  function enhance(root) {
    for (const b of $$("[data-copy], [data-reveal], [data-change]", root)) b.hidden = false;

    for (const box of $$("[data-change-field]", root)) {
      const input = $("input", box);
      if (!input.getAttribute("aria-invalid")) box.hidden = true;
    }
    for (const b of $$("[data-change]", root)) {
      b.addEventListener("click", () => {
        const box = $(`[data-change-field="${b.dataset.change}"]`);
        box.hidden = false;
        b.hidden = true;
        $("input", box).focus();
      });
    }
    for (const b of $$("[data-reveal]", root)) {
      b.addEventListener("click", () => {
        const input = document.getElementById(b.dataset.reveal);
        const show = input.type === "password";
        input.type = show ? "text" : "password";
        b.setAttribute("aria-pressed", String(show));
        b.firstChild.textContent = show ? "Hide" : "Show";
      });
    }
    for (const b of $$("[data-copy]", root)) {
      b.addEventListener("click", async () => {
        const text = document.getElementById(b.dataset.copy).textContent.trim();
        try {
          await navigator.clipboard.writeText(text);
          b.firstChild.textContent = "Copied";
        } catch {
          b.firstChild.textContent = "Select and copy";
        }
        setTimeout(() => { b.firstChild.textContent = "Copy"; }, 2000);
      });
    }

    const select = $("[data-auth-select]", root);
    if (select) {
      const show = () => {
        for (const part of $$("[data-auth]", root)) {
          const on = part.dataset.auth === select.value;
          part.toggleAttribute("data-hidden", !on);
          for (const el of $$("input, select, textarea", part)) el.disabled = !on;
        }
      };
      for (const note of $$(".auth-note", root)) note.remove();
      select.addEventListener("change", show);
      show();
    }

    for (const form of $$("form[data-fetch]", root)) {
      form.addEventListener("submit", (e) => { e.preventDefault(); send(form, e.submitter, form.dataset.fetch, form.dataset.also); });
    }
    for (const button of $$("button[data-fetch]", root)) {
      button.addEventListener("click", (e) => { e.preventDefault(); send(button.form, button, button.dataset.fetch); });
    }

    for (const opener of $$("[data-dialog]", root)) {
      const dialog = document.getElementById(opener.dataset.dialog);
      opener.addEventListener("click", (e) => {
        e.preventDefault();
        dialog.showModal();
        $("button", dialog).focus();
      });
      dialog.addEventListener("close", () => opener.focus());
      for (const c of $$("[data-close]", dialog)) c.addEventListener("click", () => dialog.close());
    }

    const filter = $("[data-filter]", root);
    if (filter) {
      const list = document.getElementById(filter.dataset.filter);
      const none = document.getElementById(`${filter.dataset.filter}-none`);
      filter.addEventListener("input", () => {
        const q = filter.value.trim().toLowerCase();
        let shown = 0;
        for (const item of $$("li", list)) {
          const on = !q || item.dataset.name.includes(q) || item.dataset.name === "custom";
          item.hidden = !on;
          if (on && item.dataset.name !== "custom") shown += 1;
        }
        none.hidden = shown > 0;
      });
    }

    for (const link of $$("a[data-oauth]", root)) {
      link.addEventListener("click", (e) => {
        const popup = window.open(`${link.href}?popup=1`, "patchbay-oauth", "popup,width=600,height=720");
        if (!popup || popup.closed || typeof popup.closed === "undefined") {
          // Blocked: say so, then go through the provider in this window.
          e.preventDefault();
          const note = $("#popup-blocked");
          note.hidden = false;
          setTimeout(() => { window.location.assign(link.href); }, 1200);
          return;
        }
        e.preventDefault();
        popup.focus();
      });
    }
  }

  // Results and refreshed parts come as whole pages; the part with the same id replaces ours.
  async function send(form, submitter, targetId, also = "") {
    const target = document.getElementById(targetId);
    const action = (submitter && submitter.getAttribute("formaction")) || form.getAttribute("action");
    const body = new URLSearchParams(new FormData(form, submitter));
    // Not disabled: a disabled button loses the keyboard's focus.
    if (form.dataset.busy) return;
    form.dataset.busy = "1";
    if (submitter) submitter.setAttribute("aria-disabled", "true");
    target.textContent = "Testing…";
    try {
      const res = await fetch(action, { method: "POST", body, headers: { Accept: "text/html" }, credentials: "same-origin" });
      if (res.redirected && new URL(res.url).pathname === "/login") { window.location.assign(res.url); return; }
      const page = new DOMParser().parseFromString(await res.text(), "text/html");
      const part = page.getElementById(targetId) || page.querySelector(".error-summary, .problem");
      target.replaceChildren(...(part ? Array.from(part.childNodes) : [document.createTextNode(`The request failed (HTTP ${res.status}).`)]));
      // Parts that change with the result (a card's badge and test time), replaced as a whole.
      for (const id of also.split(" ").filter(Boolean)) {
        const mine = document.getElementById(id);
        const fresh = page.getElementById(id);
        if (mine && fresh) mine.replaceWith(fresh);
      }
    } catch (err) {
      target.textContent = `The request could not be sent: ${err.message}`;
    } finally {
      target.dataset.round = String(Number(target.dataset.round || 0) + 1);
      delete form.dataset.busy;
      if (submitter) submitter.removeAttribute("aria-disabled");
    }
  }

  // The OAuth popup reports back; the page's account panel and card are fetched again.
  window.addEventListener("message", async (e) => {
    if (e.origin !== window.location.origin || !e.data || !["oauth_success", "oauth_error"].includes(e.data.type)) return;
    const res = await fetch(window.location.pathname, { headers: { Accept: "text/html" }, credentials: "same-origin" });
    const page = new DOMParser().parseFromString(await res.text(), "text/html");
    for (const id of ["oauth-panel", `card-${e.data.connection}`]) {
      const mine = document.getElementById(id);
      const fresh = page.getElementById(id);
      if (mine && fresh) { mine.replaceWith(fresh); enhance(fresh); }
    }
    const said = e.data.type === "oauth_success" ? "Connected." : "The sign-in did not complete.";
    document.getElementById("announce").textContent = said;
    const heading = document.getElementById("oauth-h");
    if (heading) { heading.tabIndex = -1; heading.focus(); }
  });

  document.addEventListener("DOMContentLoaded", () => {
    enhance(document);
    // A page answering a form that made something shown once (a new token): reloading it
    // must not post the form again.
    if (document.querySelector("[data-once]")) window.history.replaceState(null, "", window.location.pathname);
    const summary = $("#error-summary");
    if (summary) summary.focus();
  });
})();
