// Everything wiretap's page shows a person, as text: the page itself, then
// the details of every frame clicked one by one (its fields, messages and
// hex dump). Run by tests/it/credentials.rs, which searches it for a token:
//
//     node tests/wire-page-text.mjs PAGE_URL CONNECTIONS
//
// waits until the page has drawn CONNECTIONS closed connections, then prints.
import { launchChromium } from "./browser.mjs";

const [url, connections] = process.argv.slice(2);
const STEP_TIMEOUT = 30_000;

const browser = await launchChromium();
try {
  const page = await browser.newPage();
  await page.goto(url);
  await page.waitForSelector("#status.live", { timeout: STEP_TIMEOUT });
  await page.waitForFunction((n) => document.querySelectorAll(".connection.closed").length >= n, Number(connections), {
    timeout: STEP_TIMEOUT,
  });
  const shown = await page.evaluate(() => {
    const texts = [document.body.innerText];
    for (const box of document.querySelectorAll(".frame[data-key]")) {
      box.click();
      texts.push(document.querySelector("#details").innerText);
    }
    return texts;
  });
  console.log(shown.join("\n----\n"));
} finally {
  await browser.close();
}
