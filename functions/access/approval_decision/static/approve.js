"use strict";
// The approval page: the approver signs in through the request form (same issuer, same tab), then
// confirms. The decision is a POST carrying the ID token as a bearer token, which a browser never
// attaches by itself: another site cannot make a signed-in approver's browser decide (no CSRF).
// The sign-in state comes from cvpnSignIn (cvpn_shared/access/static/sign_in.js, inlined before this).
(function () {
  const { TOKEN_KEY, RETURN_KEY, claimsOf, currentToken } = cvpnSignIn;
  const form = document.getElementById("decision-form");
  const button = document.getElementById("confirm");
  const outcome = document.getElementById("outcome");
  const formPage = new URL("../", location.href);

  const decision = form.elements.decision.value;
  const token = currentToken();
  if (token) {
    const claims = claimsOf(token.idToken || token.accessToken);
    const name = claims.name || claims.email || claims.preferred_username || claims.sub || "";
    document.getElementById("who").textContent = "Signed in as " + name;
    button.textContent = "Confirm: " + decision;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const signedIn = currentToken();
    if (!signedIn) {
      sessionStorage.setItem(RETURN_KEY, location.href);
      formPage.search = "signin=1";
      location.assign(formPage.toString());
      return;
    }
    button.disabled = true;
    outcome.textContent = "Sending your decision…";
    const body = {};
    for (const [key, value] of new FormData(form)) body[key] = value;
    let answer = {};
    let status = 0;
    try {
      const response = await fetch(location.pathname, {
        method: "POST",
        headers: {
          Authorization: "Bearer " + (signedIn.idToken || signedIn.accessToken),
          "Content-Type": "application/json",
        },
        body: JSON.stringify(body),
      });
      status = response.status;
      try { answer = await response.json(); } catch (error) { answer = {}; }
    } catch (error) {
      answer = { message: "The decision was not sent: " + error.message };
    }
    if (status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      answer = { title: "Sign in", message: "Your sign-in has expired. Confirm again to sign in." };
    }
    if (answer.title) document.querySelector("h1").textContent = answer.title;
    outcome.textContent = answer.message || "The decision failed (" + status + ").";
    if (status === 200 || status === 409 || status === 410) form.hidden = true;
    else button.disabled = false;
  });
})();
