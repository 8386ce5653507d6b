#!/usr/bin/env node
// A headless "browser" for mcp-remote: set BROWSER to this file's path.
// mcp-remote opens the authorization URL with the `open` package, whose
// bundled xdg-open (no desktop detected: DISPLAY, WAYLAND_DISPLAY and
// XDG_CURRENT_DESKTOP unset) runs `$BROWSER <url>`. This script then does
// what the buyer does in a real browser: it opens the consent page, signs
// in, types the spending allowance, presses Allow, and follows the
// redirect to mcp-remote's loopback callback.
//
// Environment (defaults are the `ucpbridge dev` fixtures):
//   CONSENT_EMAIL, CONSENT_PASSWORD     the buyer (ada@example.com / ucpbridge-demo)
//   CONSENT_MAX_PER_ORDER, CONSENT_DAILY_CAP, CONSENT_CURRENCY, CONSENT_DAYS
//                                       the allowance (50, 120.50, EUR, 30)
//   CONSENT_BROWSER_LOG                 append what happened to this file
//                                       (xdg-open runs us with stdio ignored)
import { appendFileSync } from "node:fs";

const env = process.env;
const log = (msg) => {
  if (env.CONSENT_BROWSER_LOG) appendFileSync(env.CONSENT_BROWSER_LOG, `consent-browser: ${msg}\n`);
  else process.stderr.write(`consent-browser: ${msg}\n`);
};

const cookies = new Map();
function remember(res) {
  for (const c of res.headers.getSetCookie?.() ?? []) {
    const [pair] = c.split(";");
    const i = pair.indexOf("=");
    if (i > 0) cookies.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
  }
}
function cookieHeader() {
  return [...cookies].map(([k, v]) => `${k}=${v}`).join("; ");
}
function unescapeHTML(s) {
  return s
    .replace(/&#34;|&quot;/g, '"')
    .replace(/&#39;|&#x27;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
}

async function main() {
  const authURL = process.argv[2];
  if (!authURL) throw new Error("usage: consent-browser.mjs <authorization URL>");
  log(`opening ${new URL(authURL).origin}${new URL(authURL).pathname}`);
  let res = await fetch(authURL, { redirect: "manual" });
  remember(res);
  const page = await res.text();
  if (res.status !== 200) throw new Error(`consent page: HTTP ${res.status}: ${page.slice(0, 300)}`);

  const form = new URLSearchParams();
  for (const m of page.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    form.set(unescapeHTML(m[1]), unescapeHTML(m[2]));
  }
  form.set("email", env.CONSENT_EMAIL ?? "ada@example.com");
  form.set("password", env.CONSENT_PASSWORD ?? "ucpbridge-demo");
  form.set("action", "approve");
  form.set("max_per_order", env.CONSENT_MAX_PER_ORDER ?? "50");
  form.set("daily_cap", env.CONSENT_DAILY_CAP ?? "120.50");
  form.set("currency", env.CONSENT_CURRENCY ?? "EUR");
  form.set("expires_days", env.CONSENT_DAYS ?? "30");

  const action = page.match(/<form[^>]*method="post"[^>]*action="([^"]*)"/i)?.[1];
  const target = new URL(action ? unescapeHTML(action) : new URL(authURL).pathname, authURL);
  res = await fetch(target, {
    method: "POST",
    redirect: "manual",
    headers: { "Content-Type": "application/x-www-form-urlencoded", Cookie: cookieHeader() },
    body: form,
  });
  const loc = res.headers.get("location");
  if (res.status !== 303 || !loc) throw new Error(`consent: HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`);
  const cb = new URL(loc, target);
  if (!cb.searchParams.get("code")) throw new Error(`consent refused: ${cb.searchParams.get("error")} ${cb.searchParams.get("error_description") ?? ""}`);
  log(`allowed; following the redirect to ${cb.origin}${cb.pathname}`);
  res = await fetch(cb, { redirect: "manual" });
  log(`callback answered HTTP ${res.status}`);
}

main().catch((err) => {
  log(`failed: ${err.message}`);
  process.exit(1);
});
