"use strict";
// The request form: sign in with the OIDC issuer (authorization code + PKCE, public client), then
// call the API with the bearer token. Tokens live in sessionStorage for this tab only.
(function () {
  const config = JSON.parse(document.getElementById("cvpn-config").textContent);
  const TOKEN_KEY = "cvpn.token";
  const LOGIN_KEY = "cvpn.login";
  // An approval page sends its approver here to sign in, then gets them back (same origin, same tab).
  const RETURN_KEY = "cvpn.return";
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
    for (const id of ["sign-in-view", "form-view", "progress-view"]) $(id).hidden = id !== view;
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

  function claimsOf(jwt) {
    try {
      const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(decodeURIComponent(escape(atob(part))));
    } catch (error) {
      return {};
    }
  }

  function currentToken() {
    const stored = JSON.parse(sessionStorage.getItem(TOKEN_KEY) || "null");
    if (!stored || stored.expiresAt <= Date.now() + 5000) return null;
    return stored;
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
    for (const name of ["profile", "access-groups", "justification"]) {
      $(name + "-error").hidden = true;
      $(name + "-error").textContent = "";
    }
    for (const element of document.querySelectorAll("[aria-invalid]")) element.removeAttribute("aria-invalid");
  }

  const FIELD_LABELS = { profile: "Network profile", access_groups: "Access groups", justification: "Justification" };

  function showErrors(errors) {
    clearErrors();
    for (const error of errors) {
      const key = String(error.field).split(/[.[]/)[0];
      const target = { profile: "profile", access_groups: "access-groups", justification: "justification" }[key];
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
      show("form-view");
      if (!profiles.length) loadProfiles().catch((error) => announce(error.message));
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
    show("form-view");
    try {
      await loadProfiles();
    } catch (error) {
      announce(error.message);
    }
  }

  start();
})();
