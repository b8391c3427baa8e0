"use strict";
// The request form: sign in with the OIDC issuer (authorization code + PKCE, public client), then
// call the API with the bearer token. Tokens live in sessionStorage for this tab only, where
// cvpnSignIn (cvpn_shared/access/static/sign_in.js, inlined before this) reads them.
(function () {
  const config = JSON.parse(document.getElementById("cvpn-config").textContent);
  // RETURN_KEY: an approval page sends its approver here to sign in, then gets them back (same
  // origin, same tab).
  const { TOKEN_KEY, RETURN_KEY, claimsOf, currentToken } = cvpnSignIn;
  const LOGIN_KEY = "cvpn.login";
  const POLL_MS = 2000;
  const TERMINAL = new Set(["available", "completed", "failed", "rejected", "expired"]);
  const pagePath = location.pathname.endsWith("/") ? location.pathname : location.pathname + "/";
  const apiBase = location.origin + pagePath;
  const redirectUri = location.origin + location.pathname;
  const $ = (id) => document.getElementById(id);
  let profiles = [];
  let pollTimer = null;

  function announce(text) { $("status-message").textContent = text; }

  function show(view) {
    // "form-view" is the home view: the person's access above the form that asks for more
    const shown = view === "form-view" ? ["grants-view", "form-view"] : [view];
    for (const id of ["sign-in-view", "grants-view", "form-view", "progress-view"]) $(id).hidden = !shown.includes(id);
    if (view !== "form-view") stopGrants();
  }

  // The home view: the profiles first (the grants show their names), then the person's grants.
  async function home() {
    show("form-view");
    try {
      if (!profiles.length) await loadProfiles();
    } catch (error) {
      announce(error.message);
    }
    startGrants();
  }

  function base64url(bytes) {
    let text = "";
    for (const byte of bytes) text += String.fromCharCode(byte);
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function randomString() { return base64url(crypto.getRandomValues(new Uint8Array(32))); }

  async function discovery() {
    const response = await fetch(config.issuer + "/.well-known/openid-configuration");
    if (!response.ok) throw new Error("the sign-in service did not answer (" + response.status + ")");
    return response.json();
  }

  async function signIn() {
    announce("Taking you to sign in…");
    const metadata = await discovery();
    const verifier = randomString();
    const state = randomString();
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
    sessionStorage.setItem(LOGIN_KEY, JSON.stringify({ verifier, state, hash: location.hash }));
    const url = new URL(metadata.authorization_endpoint);
    url.search = new URLSearchParams({
      response_type: "code",
      client_id: config.clientId,
      redirect_uri: redirectUri,
      scope: config.scope,
      state,
      code_challenge: base64url(new Uint8Array(digest)),
      code_challenge_method: "S256",
    }).toString();
    location.assign(url.toString());
  }

  async function completeSignIn(params) {
    const login = JSON.parse(sessionStorage.getItem(LOGIN_KEY) || "null");
    sessionStorage.removeItem(LOGIN_KEY);
    history.replaceState(null, "", redirectUri + (login && login.hash ? login.hash : ""));
    if (params.get("error")) throw new Error("sign-in refused: " + (params.get("error_description") || params.get("error")));
    if (!login || params.get("state") !== login.state) throw new Error("sign-in answer did not match this page; try again");
    const metadata = await discovery();
    const response = await fetch(metadata.token_endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code: params.get("code"),
        redirect_uri: redirectUri,
        client_id: config.clientId,
        code_verifier: login.verifier,
      }),
    });
    const tokens = await response.json();
    if (!response.ok) throw new Error("sign-in failed: " + (tokens.error_description || tokens.error || response.status));
    sessionStorage.setItem(TOKEN_KEY, JSON.stringify({
      accessToken: tokens.access_token,
      idToken: tokens.id_token || "",
      expiresAt: Date.now() + 1000 * Number(tokens.expires_in || 3600),
    }));
  }

  async function api(method, path, body) {
    const token = currentToken();
    if (!token) { signedOut("Your sign-in has expired. Sign in again."); throw new Error("signed out"); }
    const response = await fetch(apiBase + path, {
      method,
      headers: Object.assign({ Authorization: "Bearer " + token.accessToken },
        body ? { "Content-Type": "application/json" } : {}),
      body: body ? JSON.stringify(body) : undefined,
    });
    if (response.status === 401) { signedOut("Your sign-in has expired. Sign in again."); throw new Error("signed out"); }
    let payload = {};
    try { payload = await response.json(); } catch (error) { payload = {}; }
    return { status: response.status, body: payload };
  }

  function signedOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    $("who").hidden = true;
    $("sign-out").hidden = true;
    stopPolling();
    stopGrants();
    $("grants").replaceChildren();
    show("sign-in-view");
    announce(message || "");
  }

  function showIdentity(token) {
    const claims = Object.assign({}, claimsOf(token.accessToken), claimsOf(token.idToken));
    const name = claims.email || claims.preferred_username || claims.username || claims["cognito:username"] || "";
    $("who").textContent = name ? "Signed in as " + name : "Signed in";
    $("who").hidden = false;
    $("sign-out").hidden = false;
  }

  // ------------------------------------------------------------------------------------ the form
  function renderProfiles() {
    const select = $("profile");
    select.length = 1;
    for (const profile of profiles) {
      const option = document.createElement("option");
      option.value = profile.name;
      option.textContent = profile.display_name;
      select.append(option);
    }
    renderGroups();
  }

  function renderGroups() {
    const container = $("access-group-options");
    container.replaceChildren();
    const profile = profiles.find((item) => item.name === $("profile").value);
    $("profile-description").textContent = profile ? profile.description : "";
    const grants = Boolean(profile && profile.access === "grants");
    $("hours-fieldset").hidden = !grants;
    if (grants) {
      $("hours").max = String(profile.max_grant_hours);
      $("hours").placeholder = String(profile.default_grant_hours);
      $("hours-hint").textContent = "How many hours of access, counted from the approval: at most " +
        profile.max_grant_hours + " (" + profile.default_grant_hours + " if you leave it empty).";
    }
    if (!profile) return;
    profile.access_groups.forEach((group, index) => {
      const row = document.createElement("div");
      row.className = "option";
      const input = document.createElement("input");
      input.type = "checkbox";
      input.name = "access_groups";
      input.value = group.id;
      input.id = "group-" + index;
      const label = document.createElement("label");
      label.htmlFor = input.id;
      label.textContent = group.name + (group.description ? " — " + group.description : "") +
        " (" + group.target_network_cidr + ")";
      row.append(input, label);
      container.append(row);
    });
  }

  function clearErrors() {
    $("error-summary").hidden = true;
    $("error-list").replaceChildren();
    for (const name of ["profile", "access-groups", "hours", "justification"]) {
      $(name + "-error").hidden = true;
      $(name + "-error").textContent = "";
    }
    for (const element of document.querySelectorAll("[aria-invalid]")) element.removeAttribute("aria-invalid");
  }

  const FIELD_LABELS = { profile: "Network profile", access_groups: "Access groups", hours: "Hours", justification: "Justification" };

  function showErrors(errors) {
    clearErrors();
    for (const error of errors) {
      const key = String(error.field).split(/[.[]/)[0];
      const target = { profile: "profile", access_groups: "access-groups", hours: "hours", justification: "justification" }[key];
      const label = FIELD_LABELS[key] || error.field;
      const item = document.createElement("li");
      const text = label + ": " + error.message;
      if (target) {
        const link = document.createElement("a");
        link.href = "#" + (target === "access-groups" ? "access-groups" : target);
        link.textContent = text;
        item.append(link);
        const slot = $(target + "-error");
        slot.textContent = slot.textContent ? slot.textContent + " " + error.message : error.message;
        slot.hidden = false;
        $(target).setAttribute("aria-invalid", "true");
      } else {
        item.textContent = text;
      }
      $("error-list").append(item);
    }
    $("error-summary").hidden = false;
    $("error-summary").focus();
  }

  async function loadProfiles() {
    announce("Loading network profiles…");
    const answer = await api("GET", "profiles");
    if (answer.status !== 200) throw new Error(answer.body.message || "could not load the network profiles");
    profiles = answer.body.profiles;
    renderProfiles();
    announce(profiles.length ? "" : "No network profiles are set up yet. Ask an administrator.");
  }

  async function submitForm(event) {
    event.preventDefault();
    const body = {
      profile: $("profile").value,
      access_groups: Array.from(document.querySelectorAll("input[name=access_groups]:checked"), (box) => box.value),
      justification: $("justification").value,
    };
    const chosen = profiles.find((item) => item.name === body.profile);
    if (chosen && chosen.access === "grants" && $("hours").value.trim() !== "") {
      // sent as typed: the API names the field when it is not a number it accepts
      const hours = Number($("hours").value);
      body.hours = Number.isFinite(hours) ? hours : $("hours").value;
    }
    $("submit").disabled = true;
    announce("Sending your request…");
    try {
      const answer = await api("POST", "requests", body);
      if (answer.status === 422) {
        announce("");
        showErrors(answer.body.errors || [{ field: "request", message: answer.body.message }]);
        return;
      }
      if (answer.status !== 202) {
        announce("The request was not accepted: " + (answer.body.message || answer.status));
        return;
      }
      clearErrors();
      $("request-form").reset();
      renderGroups();
      if (answer.body.grant_id) {
        // access on a shared endpoint: the request shows under "My access" while it waits
        announce("Your request is sent. It shows under My access while it waits for approval.");
        await loadGrants(answer.body.grant_id);
        return;
      }
      location.hash = "request=" + encodeURIComponent(answer.body.request_id);
      follow(answer.body.request_id);
    } finally {
      $("submit").disabled = false;
    }
  }

  // ---------------------------------------------------------------------------- the status view
  function stopPolling() {
    if (pollTimer) clearTimeout(pollTimer);
    pollTimer = null;
  }

  function renderStatus(status) {
    $("request-status").textContent = status.status;
    $("request-cidr").textContent = status.client_cidr_block || "";
    const list = $("steps");
    list.replaceChildren();
    status.steps.forEach((step, index) => {
      const item = document.createElement("li");
      item.textContent = step;
      if (index === status.steps.length - 1 && !TERMINAL.has(status.status)) {
        item.className = "current";
        item.setAttribute("aria-current", "step");
      }
      list.append(item);
    });
    if (status.status === "available" && status.config_url) {
      $("download-link").href = status.config_url;
      $("download").hidden = false;
    }
    if (status.status === "failed" || status.status === "rejected" || status.status === "expired") {
      $("failure").textContent = "Your request was " + status.status + "." +
        (status.error && status.error.error ? " (" + status.error.error + ")" : "");
      $("failure").hidden = false;
    }
  }

  const MESSAGES = {
    "awaiting-approval": "Your request is waiting for approval.",
    "in-progress": "Your endpoint is being set up.",
    available: "Your VPN is ready. Download your configuration below.",
    completed: "Your request is complete.",
    failed: "Your request failed.",
    rejected: "Your request was rejected.",
    expired: "No approver decided in time; ask again if you still need access.",
  };

  function follow(requestId) {
    stopPolling();
    show("progress-view");
    $("request-id").textContent = requestId;
    $("download").hidden = true;
    $("failure").hidden = true;
    $("steps").replaceChildren();
    let lastStatus = "";
    const poll = async () => {
      let answer;
      try {
        answer = await api("GET", "requests/" + encodeURIComponent(requestId));
      } catch (error) {
        return;
      }
      if (answer.status !== 200) {
        announce(answer.body.message || "Could not read the request's status.");
        return;
      }
      renderStatus(answer.body);
      if (answer.body.status !== lastStatus) {
        lastStatus = answer.body.status;
        announce(MESSAGES[lastStatus] || "Status: " + lastStatus);
      }
      if (!TERMINAL.has(answer.body.status)) pollTimer = setTimeout(poll, POLL_MS);
    };
    poll();
  }

  // ------------------------------------------------------------------------------ my access
  // The API gives the service's now and each grant's seconds left; the page counts down from there
  // with the browser's monotonic clock and reads the list again every few seconds, so a wrong clock
  // on the person's computer changes nothing.
  const GRANTS_POLL_MS = 4000;
  const STATE_WORDS = { pending: "Waiting for approval", active: "Active", expired: "Expired", revoked: "Ended early" };
  let grantsTimer = null;
  let tickTimer = null;
  let grantsReadAt = 0;
  let grantsLoading = null;
  let grantsShown = [];

  function stopGrants() {
    if (grantsTimer) clearTimeout(grantsTimer);
    if (tickTimer) clearInterval(tickTimer);
    grantsTimer = tickTimer = null;
  }

  function startGrants() {
    if (grantsTimer || !currentToken()) return;
    loadGrants().catch((error) => showGrantsError(error.message));
    if (!tickTimer) tickTimer = setInterval(tick, 1000);
  }

  function showGrantsError(message) {
    $("grants-error").textContent = message || "";
    $("grants-error").hidden = !message;
  }

  function localTime(iso) {
    const moment = new Date(iso);
    return moment.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }

  function timeElement(iso) {
    const element = document.createElement("time");
    element.dateTime = iso;
    element.textContent = localTime(iso);
    return element;
  }

  function duration(seconds) {
    const total = Math.max(0, Math.floor(seconds));
    const days = Math.floor(total / 86400);
    const hours = Math.floor((total % 86400) / 3600);
    const minutes = Math.floor((total % 3600) / 60);
    const rest = total % 60;
    const parts = [];
    if (days) parts.push(days + " d");
    if (days || hours) parts.push(hours + " h");
    parts.push(String(minutes).padStart(days || hours ? 2 : 1, "0") + " min");
    parts.push(String(rest).padStart(2, "0") + " s");
    return parts.join(" ");
  }

  function secondsLeft(grant) {
    if (grant.seconds_left === null || grant.seconds_left === undefined) return null;
    return Math.max(0, grant.seconds_left - (performance.now() - grantsReadAt) / 1000);
  }

  function tick() {
    for (const grant of grantsShown) {
      const card = document.getElementById("grant-" + grant.grant_id);
      if (!card) continue;
      const left = secondsLeft(grant);
      const countdown = card.querySelector(".countdown");
      if (grant.state !== "active" || left === null) {
        countdown.textContent = grant.state === "pending" ? "starts when approved" : "none";
        countdown.removeAttribute("data-seconds");
        continue;
      }
      countdown.textContent = left > 0 ? duration(left) + " left" : "ending now";
      countdown.dataset.seconds = String(Math.floor(left));
    }
  }

  function profileName(name) {
    const profile = profiles.find((item) => item.name === name);
    return profile ? profile.display_name : name;
  }

  function groupNames(grant) {
    const profile = profiles.find((item) => item.name === grant.profile);
    return grant.access_groups.map((id) => {
      const group = profile && profile.access_groups.find((item) => item.id === id);
      return group ? group.name : id;
    }).join(", ");
  }

  function setFieldError(card, name, message) {
    const slot = card.querySelector(".extend-" + name + "-error");
    const field = card.querySelector(".extend-" + name);
    slot.textContent = message || "";
    slot.hidden = !message;
    if (message) field.setAttribute("aria-invalid", "true"); else field.removeAttribute("aria-invalid");
  }

  function newCard(grant) {
    const card = $("grant-template").content.firstElementChild.cloneNode(true);
    const id = grant.grant_id;
    card.id = "grant-" + id;
    card.querySelector("article").setAttribute("aria-labelledby", "grant-title-" + id);
    card.querySelector(".grant-title").id = "grant-title-" + id;
    // ids tie each label, hint and error to its field (one form per grant on the page)
    const hours = card.querySelector(".extend-hours");
    const reason = card.querySelector(".extend-reason");
    hours.id = "extend-hours-" + id;
    reason.id = "extend-reason-" + id;
    card.querySelector(".extend-hours-label").htmlFor = hours.id;
    card.querySelector(".extend-reason-label").htmlFor = reason.id;
    card.querySelector(".extend-hours-hint").id = hours.id + "-hint";
    card.querySelector(".extend-hours-error").id = hours.id + "-error";
    card.querySelector(".extend-reason-error").id = reason.id + "-error";
    hours.setAttribute("aria-describedby", hours.id + "-hint " + hours.id + "-error");
    reason.setAttribute("aria-describedby", reason.id + "-error");
    const form = card.querySelector(".extend-form");
    form.id = "extend-form-" + id;
    const toggle = card.querySelector(".extend");
    toggle.setAttribute("aria-controls", form.id);
    toggle.addEventListener("click", () => {
      form.hidden = !form.hidden;
      toggle.setAttribute("aria-expanded", String(!form.hidden));
      if (!form.hidden) hours.focus();
    });
    card.querySelector(".extend-cancel").addEventListener("click", () => {
      form.hidden = true;
      toggle.setAttribute("aria-expanded", "false");
      toggle.focus();
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      askToExtend(card, id).catch((error) => actionError(card, error.message));
    });
    card.querySelector(".download").addEventListener("click", () =>
      download(card, id).catch((error) => actionError(card, error.message)));
    return card;
  }

  function actionError(card, message) {
    const slot = card.querySelector(".grant-action-error");
    slot.textContent = message || "";
    slot.hidden = !message;
  }

  function renderCard(card, grant) {
    const profile = profiles.find((item) => item.name === grant.profile);
    card.dataset.state = grant.state;
    card.querySelector(".grant-title").textContent = profileName(grant.profile);
    card.querySelector(".grant-state").textContent = STATE_WORDS[grant.state] || grant.state;
    card.querySelector(".grant-groups").textContent = groupNames(grant);
    const ends = card.querySelector(".grant-ends");
    if (grant.ends_at) {
      ends.replaceChildren(timeElement(grant.ends_at));
    } else {
      ends.textContent = grant.hours + " hours after the approval";
    }
    card.querySelector(".grant-approver").textContent = grant.approved_by || "not yet";
    const phases = card.querySelector(".phases");
    phases.replaceChildren();
    grant.phases.forEach((phase, index) => {
      const item = document.createElement("li");
      item.dataset.phase = phase.phase;
      item.append(phase.text + " — ", timeElement(phase.at));
      if (index === grant.phases.length - 1 && (grant.state === "pending" || grant.state === "active")) {
        item.className = "current";
        item.setAttribute("aria-current", "step");
      }
      phases.append(item);
    });
    card.querySelector(".download").hidden = !grant.configuration_url;
    const toggle = card.querySelector(".extend");
    const form = card.querySelector(".extend-form");
    toggle.hidden = !grant.can_extend;
    if (!grant.can_extend && !form.hidden) {
      form.hidden = true;
      toggle.setAttribute("aria-expanded", "false");
    }
    const hint = card.querySelector(".extend-hours-hint");
    const max = profile ? profile.max_grant_hours : null;
    hint.textContent = "The grant would end this many hours after the approval" + (max ? " (at most " + max + ")." : ".");
    if (max) card.querySelector(".extend-hours").max = String(max);
  }

  async function loadGrants(focusId) {
    if (grantsLoading) return grantsLoading;
    grantsLoading = (async () => {
      if (grantsTimer) clearTimeout(grantsTimer);
      grantsTimer = null;
      try {
        const answer = await api("GET", "me/grants");
        if (answer.status !== 200) {
          showGrantsError(answer.body.message || "Could not read your access (" + answer.status + ").");
          return;
        }
        showGrantsError("");
        grantsReadAt = performance.now();
        grantsShown = answer.body.grants;
        const list = $("grants");
        const keep = new Set(grantsShown.map((grant) => "grant-" + grant.grant_id));
        for (const card of Array.from(list.children)) if (!keep.has(card.id)) card.remove();
        grantsShown.forEach((grant, index) => {
          let card = document.getElementById("grant-" + grant.grant_id);
          if (!card) card = newCard(grant);
          renderCard(card, grant);
          if (list.children[index] !== card) list.insertBefore(card, list.children[index] || null);
        });
        $("grants-empty").hidden = grantsShown.length > 0;
        $("grants-clock").hidden = grantsShown.length === 0;
        tick();
        if (focusId) {
          const title = document.querySelector("#grant-" + focusId + " .grant-title");
          if (title) { title.tabIndex = -1; title.focus(); }
        }
      } finally {
        grantsLoading = null;
        if (!$("grants-view").hidden && currentToken()) {
          grantsTimer = setTimeout(() => loadGrants().catch((error) => showGrantsError(error.message)), GRANTS_POLL_MS);
        }
      }
    })();
    return grantsLoading;
  }

  async function download(card, grantId) {
    actionError(card, "");
    const answer = await api("GET", "grants/" + encodeURIComponent(grantId) + "/configuration");
    if (answer.status !== 200) {
      actionError(card, answer.body.message || "The configuration could not be fetched (" + answer.status + ").");
      return;
    }
    const link = document.createElement("a");
    link.href = answer.body.url;
    link.download = answer.body.filename;
    link.hidden = true;
    document.body.append(link);
    link.click();
    link.remove();
    announce("Your configuration " + answer.body.filename + " is downloading. Import it in your VPN client.");
  }

  async function askToExtend(card, grantId) {
    actionError(card, "");
    setFieldError(card, "hours", "");
    setFieldError(card, "reason", "");
    const hoursText = card.querySelector(".extend-hours").value.trim();
    const hours = Number(hoursText);
    const body = {
      hours: hoursText !== "" && Number.isFinite(hours) ? hours : hoursText,
      reason: card.querySelector(".extend-reason").value,
    };
    const button = card.querySelector(".extend-form button[type=submit]");
    button.disabled = true;
    try {
      const answer = await api("POST", "grants/" + encodeURIComponent(grantId) + "/extend", body);
      if (answer.status === 422) {
        const other = [];
        for (const error of answer.body.errors || []) {
          const field = String(error.field).split(/[.[]/)[0];
          if (field === "hours" || field === "reason") setFieldError(card, field, error.message);
          else other.push(error.message);
        }
        if (other.length || !(answer.body.errors || []).length) actionError(card, other.join(" ") || answer.body.message);
        const invalid = card.querySelector(".extend-form [aria-invalid=true]");
        if (invalid) invalid.focus();
        return;
      }
      if (answer.status !== 202) {
        actionError(card, answer.body.message || "The extension was not accepted (" + answer.status + ").");
        return;
      }
      card.querySelector(".extend-form").reset();
      card.querySelector(".extend-form").hidden = true;
      card.querySelector(".extend").setAttribute("aria-expanded", "false");
      announce("You asked to extend your access. It waits for approval.");
      await loadGrants();
    } finally {
      button.disabled = false;
    }
  }

  function requestInHash() {
    const match = /^#request=(.+)$/.exec(location.hash);
    return match ? decodeURIComponent(match[1]) : null;
  }

  async function start() {
    $("sign-in").addEventListener("click", () => signIn().catch((error) => announce(error.message)));
    $("sign-out").addEventListener("click", () => signedOut("You are signed out."));
    $("profile").addEventListener("change", renderGroups);
    $("request-form").addEventListener("submit", (event) => submitForm(event).catch((error) => announce(error.message)));
    $("new-request").addEventListener("click", () => {
      stopPolling();
      history.replaceState(null, "", redirectUri);
      announce("");
      home();
    });
    const params = new URLSearchParams(location.search);
    try {
      if (params.has("code") || params.has("error")) await completeSignIn(params);
    } catch (error) {
      signedOut(error.message);
      return;
    }
    const token = currentToken();
    const returnTo = sessionStorage.getItem(RETURN_KEY);
    if (!token && returnTo && params.has("signin")) { await signIn(); return; }
    if (token && returnTo) {
      sessionStorage.removeItem(RETURN_KEY);
      const target = new URL(returnTo, location.href);
      if (target.origin === location.origin && target.pathname.includes("/approvals/")) {
        location.replace(target.toString());
        return;
      }
    }
    if (!token) { signedOut(""); return; }
    showIdentity(token);
    const requestId = requestInHash();
    if (requestId) { follow(requestId); return; }
    await home();
  }

  start();
})();
