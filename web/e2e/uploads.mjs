// "Upload from this computer" and "Download" in a real Chromium, against a real server the
// pytest wrapper (tests/browser/test_dashboard.py) started with a simulator zone: a qcow2
// template and a qcow2 volume uploaded from files on this machine (progress shown, the rows
// go Ready/Uploaded), then a volume downloaded through extractVolume's link. Prints one JSON
// object; the wrapper checks the cloud's side through the API.
//
// env: BASE_URL, CHROMIUM, ARTIFACTS, USER_NAME, USER_PASSWORD, USER_DOMAIN, ZONE_NAME,
//      IMAGE (a qcow2 file), TMPL_NAME, UPVOL_NAME, DL_VOLUME (a Ready volume to download),
//      WORK (a directory for the download)
import { chromium } from "playwright-core";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";

const env = process.env;
const shots = env.ARTIFACTS;
mkdirSync(shots, { recursive: true });
const done = {};
const row = (page, name) => page.locator(`tr[data-row="${name}"]`);

const browser = await chromium.launch({
  executablePath: env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  const page = await ctx.newPage();
  const failures = [];
  page.on("pageerror", (err) => failures.push(String(err)));
  await page.goto(`${env.BASE_URL}/client/`);
  await page.waitForURL(/#\/login/);
  await page.getByLabel("User name").fill(env.USER_NAME);
  await page.getByLabel("Password").fill(env.USER_PASSWORD);
  await page.getByLabel("Domain").fill(env.USER_DOMAIN);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("heading", { name: `Welcome, ${env.USER_NAME}` }).waitFor();

  // a template from this computer
  await page.getByRole("link", { name: "Templates", exact: true }).first().click();
  await page.getByRole("button", { name: "Upload from this computer" }).click();
  let dialog = page.getByRole("dialog");
  await dialog.getByLabel("Name").fill(env.TMPL_NAME);
  await dialog.getByLabel("Zone").selectOption({ label: env.ZONE_NAME });
  await dialog.locator('select[name="hypervisor"] option', { hasText: "Simulator" }).waitFor({ state: "attached" });
  await dialog.getByLabel("Hypervisor").selectOption({ label: "Simulator" });
  await dialog.locator('input[name="file"]').setInputFiles(env.IMAGE);
  await dialog.getByRole("button", { name: "OK" }).click();
  await dialog.waitFor({ state: "detached", timeout: 60000 });
  await row(page, env.TMPL_NAME).locator('[data-col="isready"]', { hasText: "true" }).waitFor({ timeout: 30000 });
  done.templateReady = true;
  await page.screenshot({ path: `${shots}/template-uploaded.png` });

  // a volume from this computer
  await page.getByRole("link", { name: "Volumes", exact: true }).first().click();
  await page.getByRole("button", { name: "Upload from this computer" }).click();
  dialog = page.getByRole("dialog");
  await dialog.getByLabel("Name").fill(env.UPVOL_NAME);
  await dialog.getByLabel("Zone").selectOption({ label: env.ZONE_NAME });
  await dialog.locator('input[name="file"]').setInputFiles(env.IMAGE);
  await dialog.getByRole("button", { name: "OK" }).click();
  await dialog.waitFor({ state: "detached", timeout: 60000 });
  await row(page, env.UPVOL_NAME).locator('[data-test="state"]', { hasText: "Uploaded" }).waitFor({ timeout: 30000 });
  done.volumeUploaded = true;

  // a volume downloaded through extractVolume's link
  await row(page, env.DL_VOLUME).getByRole("button", { name: "Download" }).click();
  dialog = page.getByRole("dialog");
  await dialog.getByRole("button", { name: "Confirm" }).click();
  const link = dialog.locator('[data-test="download-link"]');
  await link.waitFor({ timeout: 60000 });
  done.downloadUrl = await link.getAttribute("href");
  const [download] = await Promise.all([page.waitForEvent("download"), link.click()]);
  const saved = `${env.WORK}/downloaded.qcow2`;
  await download.saveAs(saved);
  done.downloadSha = createHash("sha256").update(readFileSync(saved)).digest("hex");
  await dialog.getByRole("button", { name: "Done" }).click();
  await page.screenshot({ path: `${shots}/volume-uploaded.png` });
  done.pageErrors = failures;
} catch (err) {
  done.error = String(err && err.stack ? err.stack : err);
} finally {
  await browser.close();
}
console.log(JSON.stringify(done));
process.exit(done.error ? 1 : 0);
