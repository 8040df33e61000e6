// Opens a createConsoleEndpoint URL in a real Chromium and reports whether noVNC connected
// and drew the VM's screen on its canvas (a drawn frame makes every pixel opaque; an empty
// canvas is transparent). env: CONSOLE_URL, CHROMIUM, ARTIFACTS, SHOT (file name).
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const env = process.env;
mkdirSync(env.ARTIFACTS, { recursive: true });
const done = {};
const browser = await chromium.launch({
  executablePath: env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1024, height: 768 } });
  await page.goto(env.CONSOLE_URL);
  await page.waitForSelector("body[data-state]", { timeout: 60000 });
  await page.waitForFunction(() => document.body.dataset.state !== "", null, { timeout: 60000 });
  done.state = await page.evaluate(() => document.body.dataset.state);
  done.status = await page.locator("#status").innerText();
  if (done.state === "connected") {
    const deadline = Date.now() + 60000;
    for (;;) {
      Object.assign(done, await page.evaluate(() => {
        const canvas = document.querySelector("#screen canvas");
        if (!canvas || !canvas.width) return { width: 0, height: 0, opaque: 0 };
        const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        let opaque = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] === 255) opaque += 1;
        return { width: canvas.width, height: canvas.height, opaque: opaque / (data.length / 4) };
      }));
      if (done.opaque > 0.9 || Date.now() > deadline) break;
      await page.waitForTimeout(500);
    }
    done.title = await page.title();
  }
  await page.screenshot({ path: `${env.ARTIFACTS}/${env.SHOT || "console"}.png` });
} catch (err) {
  done.error = String(err && err.stack ? err.stack : err);
} finally {
  await browser.close();
}
console.log(JSON.stringify(done));
process.exit(done.error ? 1 : 0);
