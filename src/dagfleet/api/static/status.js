// dagfleet status page: poll /api/v1/locations (ETag, 304 when unchanged), swap in the
// server-rendered rows that changed, run the actions. Markup comes from the server
// (escaped there); this script only inserts text with textContent.
"use strict";
(function () {
  const POLL_MS = 2000;
  const API = "/api/v1";
  const tokens = document.body.dataset.tokens === "1";
  const $ = (id) => document.getElementById(id);
  let etag = $("fleet").dataset.etag || null;
  let historyOf = null;
  let busy = false;

  const token = () => sessionStorage.getItem("dagfleet-token");
  const signedIn = () => !tokens || token() !== null;

  function headers(extra) {
    const h = Object.assign({}, extra || {});
    if (tokens && token()) h.Authorization = "Bearer " + token();
    return h;
  }

  function say(text) {
    $("action-result").textContent = text;
  }

  async function errorText(res) {
    try {
      const body = await res.json();
      if (typeof body.detail === "string") return body.detail;
      return JSON.stringify(body.detail);
    } catch (e) {
      return res.status + " " + res.statusText;
    }
  }

  function signOut() {
    sessionStorage.removeItem("dagfleet-token");
    location.reload();
  }

  // ---- updates -----------------------------------------------------------------------
  function swap(html) {
    const fresh = document.createElement("template");
    fresh.innerHTML = html;
    const fleet = $("fleet");
    const active = document.activeElement;
    const focusKey = active && active.dataset && active.dataset.action
      ? active.getAttribute("aria-label") : null;
    const oldRows = fleet.querySelectorAll("tr[id]");
    const newRows = fresh.content.querySelectorAll("tr[id]");
    const sameSet = oldRows.length === newRows.length &&
      Array.from(newRows).every((r, i) => r.id === oldRows[i].id);
    const changed = [];
    if (sameSet) {
      // Patch only the cells that changed: a button the user is about to press (or has
      // focused) stays the same element unless its own cell changed.
      newRows.forEach((row, i) => {
        const old = oldRows[i];
        if (row.outerHTML === old.outerHTML) return;
        if (row.dataset.summary !== old.dataset.summary) changed.push(row.dataset.summary);
        if (row.children.length !== old.children.length) return old.replaceWith(row);
        for (const attr of row.getAttributeNames()) {
          if (old.getAttribute(attr) !== row.getAttribute(attr)) old.setAttribute(attr, row.getAttribute(attr));
        }
        Array.from(row.children).forEach((cell, j) => {
          const was = old.children[j];
          if (was.innerHTML !== cell.innerHTML) was.replaceChildren(...cell.childNodes);
        });
      });
      // Captions carry the Ready count.
      const caps = fresh.content.querySelectorAll("caption");
      fleet.querySelectorAll("caption").forEach((c, i) => {
        if (caps[i] && c.textContent !== caps[i].textContent) c.textContent = caps[i].textContent;
      });
    } else {
      fleet.replaceChildren(fresh.content);
      changed.push("the list of locations changed");
    }
    if (focusKey && !document.contains(active)) {
      const again = fleet.querySelector('[aria-label="' + CSS.escape(focusKey) + '"]');
      if (again) again.focus();
    }
    if (changed.length) $("announce").textContent = "Updated: " + changed.join("; ");
    if (historyOf && changed.some((s) => s && s.startsWith(historyOf + ","))) {
      loadHistory(historyOf, false);
    }
  }

  async function refresh() {
    const res = await fetch("/page/fleet", { headers: headers(), cache: "no-store" });
    if (res.status === 401) return signOut();
    if (!res.ok) throw new Error(await errorText(res));
    etag = res.headers.get("ETag") || etag;
    swap(await res.text());
  }

  async function poll() {
    if (busy || document.hidden || !signedIn()) return;
    busy = true;
    try {
      const h = headers(etag ? { "If-None-Match": etag } : {});
      const res = await fetch(API + "/locations", { headers: h, cache: "no-store" });
      if (res.status === 401) return signOut();
      if (res.status === 200) {
        etag = res.headers.get("ETag");
        await refresh();
      } else if (res.status !== 304) {
        throw new Error(await errorText(res));
      }
      $("updated").textContent = "Checked " + new Date().toLocaleTimeString();
      $("updated").classList.remove("stale");
    } catch (err) {
      $("updated").textContent = "Cannot reach the API (" + err.message + "); retrying";
      $("updated").classList.add("stale");
    } finally {
      busy = false;
    }
  }

  // ---- history -----------------------------------------------------------------------
  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text == null || text === "" ? "—" : String(text);
    if (cls) td.className = cls;
    row.appendChild(td);
  }

  function historyTable(name, entries) {
    const table = document.createElement("table");
    const cap = document.createElement("caption");
    cap.textContent = "Sync attempts of " + name + ", newest first";
    table.appendChild(cap);
    const head = table.createTHead().insertRow();
    ["Finished", "Outcome", "Commit", "Subject", "Author", "Reason", "Message"].forEach((h) => {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = h;
      head.appendChild(th);
    });
    const body = table.createTBody();
    entries.forEach((e) => {
      const row = body.insertRow();
      cell(row, e.finished || e.started || e.time);
      cell(row, e.outcome, "outcome-" + (e.outcome || ""));
      cell(row, (e.commit || "").slice(0, 12));
      cell(row, e.subject);
      cell(row, e.author);
      cell(row, e.reason);
      cell(row, e.message);
    });
    return table;
  }

  async function loadHistory(name, focus) {
    historyOf = name;
    const panel = $("history");
    const body = $("history-body");
    $("history-title").textContent = "History of " + name;
    panel.hidden = false;
    const url = API + "/locations/" + encodeURIComponent(name) + "/history?limit=20";
    let node;
    try {
      const res = await fetch(url, { headers: headers(), cache: "no-store" });
      if (res.status === 404) {
        node = document.createElement("p");
        node.textContent = "No history yet.";
      } else if (!res.ok) {
        throw new Error(await errorText(res));
      } else {
        const data = await res.json();
        const entries = Array.isArray(data) ? data : data.attempts || data.items || data.history || [];
        if (!entries.length) {
          node = document.createElement("p");
          node.textContent = "No history yet.";
        } else {
          node = historyTable(name, entries);
        }
      }
    } catch (err) {
      node = document.createElement("p");
      node.textContent = "Could not load the history: " + err.message;
    }
    body.replaceChildren(node);
    if (focus) $("history-title").focus();
  }

  // ---- actions -----------------------------------------------------------------------
  async function post(url, body) {
    const init = { method: "POST", headers: headers({ "Content-Type": "application/json" }) };
    if (body !== undefined) init.body = JSON.stringify(body);
    const res = await fetch(url, init);
    if (!res.ok) throw new Error(await errorText(res));
    return res.json();
  }

  async function act(button) {
    const row = button.closest("tr");
    const d = { action: button.dataset.action, location: row.id.slice(4),
      repo: row.dataset.repo, env: row.dataset.env };
    if (d.action === "history") return loadHistory(d.location, true);
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    try {
      if (d.action === "sync") {
        const q = "?env=" + encodeURIComponent(d.env) + "&wait=false";
        await post(API + "/repos/" + encodeURIComponent(d.repo) + "/sync" + q);
        say("Sync of " + d.repo + "-" + d.env + " requested; this page shows it when it ends.");
      } else if (d.action === "rollback") {
        if (!window.confirm("Roll " + d.location + " back to its previous commit?")) return;
        const out = await post(API + "/locations/" + encodeURIComponent(d.location) + "/rollback",
          { to: null });
        const sha = out && out.pin ? String(out.pin).slice(0, 12) : "its previous commit";
        say("Rolled " + d.location + " back to " + sha + (out && out.live ? ": live now." :
          "; this page shows it when it is live."));
      }
    } catch (err) {
      say(d.action + " failed: " + err.message);
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
    etag = null; // show the effect at once
    poll();
  }

  async function promote(form) {
    const f = new FormData(form);
    const body = { repo: f.get("repo"), source: f.get("source"), target: f.get("target") };
    if (!window.confirm("Promote " + body.repo + " from " + body.source + " to " + body.target + "?")) return;
    try {
      const out = await post(API + "/promote", body);
      say("Promoted " + body.repo + " to " + body.target + " at " + String(out.commit || "").slice(0, 12) + ".");
    } catch (err) {
      say("Promote failed: " + err.message);
    }
    etag = null;
    poll();
  }

  async function signIn(form) {
    const value = new FormData(form).get("token").trim();
    const res = await fetch(API + "/whoami", { headers: { Authorization: "Bearer " + value } });
    if (!res.ok) return say("Sign-in failed: " + (await errorText(res)));
    sessionStorage.setItem("dagfleet-token", value);
    location.reload();
  }

  document.addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-action]");
    if (button) act(button);
    if (ev.target.id === "signout") signOut();
  });
  document.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (ev.target.id === "promote") promote(ev.target);
    if (ev.target.id === "signin") signIn(ev.target);
  });

  async function start() {
    if (tokens && token() !== null && $("signin")) {
      // Signed in earlier in this tab: the server rendered the sign-in form, fetch the data.
      const res = await fetch(API + "/whoami", { headers: headers(), cache: "no-store" });
      if (!res.ok) return signOut();
      const who = await res.json();
      $("signin").remove();
      const text = "Signed in with a " + who.role + " token (" +
        (who.role === "admin" ? "read and change" : "read only") + "). ";
      const out = document.createElement("button");
      out.type = "button";
      out.id = "signout";
      out.textContent = "Sign out";
      $("who").replaceChildren(document.createTextNode(text), out);
      await refresh();
    }
    setInterval(poll, POLL_MS);
    document.addEventListener("visibilitychange", poll);
  }
  start();
})();
