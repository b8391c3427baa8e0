"use strict";
// The sign-in state the request form and the approval page share, inlined before each page's own
// script under the page's nonce. The form signs a person in and keeps the tokens in this tab's
// sessionStorage (TOKEN_KEY); the approval page reads them there, and sends an approver who is not
// signed in to the form, which sends them back to the page named under RETURN_KEY.
const cvpnSignIn = Object.freeze((function () {
  const TOKEN_KEY = "cvpn.token";
  const RETURN_KEY = "cvpn.return";

  // A JWT's claims, unverified: for what the page shows, never for a decision (the API checks).
  function claimsOf(jwt) {
    try {
      const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(decodeURIComponent(escape(atob(part))));
    } catch (error) {
      return {};
    }
  }

  // The stored tokens while they have more than a few seconds left, else null.
  function currentToken() {
    const stored = JSON.parse(sessionStorage.getItem(TOKEN_KEY) || "null");
    if (!stored || stored.expiresAt <= Date.now() + 5000) return null;
    return stored;
  }

  return { TOKEN_KEY, RETURN_KEY, claimsOf, currentToken };
})());
