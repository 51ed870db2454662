// Headless Chromium for the browser tests, driven by playwright-core: Debian's
// /usr/bin/chromium (scripts/bootstrap.sh installs it), never a browser that
// Playwright downloads. Shared by every browser test (the gRPC-Web page's and
// wiretap's timeline): keep launchChromium's signature stable.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

// What Chromium needs to run headless here: no sandbox (root in a container),
// no GPU, and nothing that reaches beyond loopback (updates, sync, QUIC).
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
  "--no-first-run",
];

/**
 * Starts headless Chromium with a fresh user-data dir, removed on close.
 * Returns a Playwright BrowserContext: `await context.newPage()`, and
 * `await context.close()` when done (which also ends the browser).
 * `options` go to launchPersistentContext (viewport, ...).
 */
export async function launchChromium(options = {}) {
  const userDataDir = mkdtempSync(join(tmpdir(), "chromium-profile-"));
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      ...options,
    });
  } catch (e) {
    rmSync(userDataDir, { recursive: true, force: true });
    throw new Error(`cannot start ${CHROMIUM} (scripts/bootstrap.sh installs it): ${e.message.split("\n")[0]}`);
  }
  // The profile goes once the browser has exited, which close() waits for.
  const close = context.close.bind(context);
  context.close = async (...args) => {
    try {
      await close(...args);
    } finally {
      rmSync(userDataDir, { recursive: true, force: true, maxRetries: 5 });
    }
  };
  return context;
}
