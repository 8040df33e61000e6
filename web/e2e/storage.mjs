// The object browser in a real Chromium against the real S3 service: keys, a bucket with
// versioning, uploads (one large enough for multipart), a download compared byte for byte,
// a share link opened by a browser with no session, folders, deletes and the S3 error for
// deleting a non-empty bucket. env: BASE_URL, CHROMIUM, ARTIFACTS, USER_NAME, USER_PASSWORD,
// USER_DOMAIN, BUCKET, WORK (a directory for the files), ADMIN_PASSWORD, S3USER_KEEP,
// S3USER_DISABLE.
import { chromium } from "playwright-core";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";

const env = process.env;
mkdirSync(env.ARTIFACTS, { recursive: true });
const shots = env.ARTIFACTS;
const done = {};
const sha = (buf) => createHash("sha256").update(buf).digest("hex");

const small = Buffer.concat([Buffer.from("hello from the dashboard\n"), randomBytes(100 * 1024)]);
const large = randomBytes(20 * 1024 * 1024 + 12345); // > 16 MiB: a multipart upload
writeFileSync(`${env.WORK}/small.bin`, small);
writeFileSync(`${env.WORK}/large.bin`, large);
done.smallSha = sha(small);
done.largeSha = sha(large);

const browser = await chromium.launch({
  executablePath: env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
let page = null;
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", (err) => errors.push(String(err)));
  await page.goto(`${env.BASE_URL}/client/`);
  await page.getByLabel("User name").fill(env.USER_NAME);
  await page.getByLabel("Password").fill(env.USER_PASSWORD);
  await page.getByLabel("Domain").fill(env.USER_DOMAIN);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("heading", { name: /Welcome/ }).waitFor();

  await page.getByRole("link", { name: "Object storage" }).click();
  await page.getByRole("button", { name: "Generate API keys" }).click();
  await page.getByLabel("New bucket").fill(env.BUCKET);
  await page.getByRole("button", { name: "Create bucket" }).click();
  const bucketRow = page.locator(`tr[data-row="${env.BUCKET}"]`);
  await bucketRow.waitFor();
  await bucketRow.getByRole("button", { name: "Enable versioning" }).click();
  await bucketRow.locator('[data-col="versioning"]', { hasText: "Enabled" }).waitFor();
  done.versioning = "Enabled";
  await bucketRow.getByRole("button", { name: "Lifecycle" }).click();
  let dialog = page.getByRole("dialog");
  await dialog.getByLabel("Delete objects after (days)").fill("30");
  await dialog.getByLabel("Abort unfinished uploads after (days)").fill("7");
  await dialog.getByRole("button", { name: "OK" }).click();
  await dialog.waitFor({ state: "detached" });
  await bucketRow.getByRole("button", { name: "CORS" }).click();
  dialog = page.getByRole("dialog");
  await dialog.getByLabel("Allowed origins").fill("https://app.example");
  await dialog.getByLabel("Allow GET").check();
  await dialog.getByLabel("Allow PUT").check();
  await dialog.getByRole("button", { name: "OK" }).click();
  await dialog.waitFor({ state: "detached" });
  done.configured = true;
  await page.screenshot({ path: `${shots}/buckets.png` });

  await bucketRow.getByRole("link", { name: env.BUCKET }).click();
  await page.getByLabel("New folder name").fill("docs");
  await page.getByRole("button", { name: "Create folder" }).click();
  await page.locator('tr[data-row="docs/"]').waitFor();
  await page.locator('input[name="upload"]').setInputFiles([`${env.WORK}/small.bin`, `${env.WORK}/large.bin`]);
  await page.locator('tr[data-row="large.bin"]').waitFor({ timeout: 120000 });
  await page.locator('tr[data-row="small.bin"]').waitFor();
  done.uploaded = true;
  await page.screenshot({ path: `${shots}/objects.png` });

  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.locator('tr[data-row="small.bin"]').getByRole("button", { name: "Download" }).click(),
  ]);
  const saved = `${env.WORK}/downloaded.bin`;
  await download.saveAs(saved);
  done.downloadSha = sha(readFileSync(saved));
  done.downloadName = download.suggestedFilename();

  await page.locator('tr[data-row="large.bin"]').getByRole("button", { name: "Share" }).click();
  const link = await page.locator('[data-test="share-url"]').inputValue();
  done.shareLinkHost = new URL(link).host;
  const stranger = await browser.newContext();
  const resp = await stranger.request.get(link);
  done.shareStatus = resp.status();
  done.shareSha = sha(await resp.body());
  await stranger.close();
  await page.getByRole("button", { name: "Close" }).click();

  await page.locator('tr[data-row="docs/"]').getByRole("link").click();
  await page.getByText("Empty.").waitFor();
  done.folderOpened = true;
  await page.getByRole("navigation", { name: "Path" }).getByRole("link", { name: env.BUCKET }).click();
  await page.locator('tr[data-row="small.bin"]').getByRole("button", { name: "Delete" }).click();
  await page.locator('tr[data-row="small.bin"]').waitFor({ state: "detached" });
  done.deleted = true;

  await page.getByRole("link", { name: "Buckets" }).click();
  await page.locator(`tr[data-row="${env.BUCKET}"]`).getByRole("button", { name: "Delete" }).click();
  done.deleteNonEmptyError = await page.getByRole("alert").innerText();
  done.pageErrors = errors;

  // the operator: S3-only users through the admin API
  const opsCtx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const ops = await opsCtx.newPage();
  ops.on("pageerror", (err) => errors.push(String(err)));
  await ops.goto(`${env.BASE_URL}/client/`);
  await ops.getByLabel("User name").fill("admin");
  await ops.getByLabel("Password").fill(env.ADMIN_PASSWORD);
  await ops.getByLabel("Domain").fill("/");
  await ops.getByRole("button", { name: "Log in" }).click();
  await ops.getByRole("link", { name: "S3 users" }).click();
  done.s3users = [];
  for (const name of [env.S3USER_KEEP, env.S3USER_DISABLE]) {
    await ops.getByRole("button", { name: "Create S3 user" }).click();
    const d = ops.getByRole("dialog");
    await d.getByLabel("Name").fill(name);
    await d.getByLabel("Email").fill(`${name}@example.com`);
    await d.getByLabel("Max buckets").fill("2");
    await d.getByRole("button", { name: "OK" }).click();
    const secret = await d.locator('[data-test="shown-once"]').inputValue();
    await d.getByRole("button", { name: "Done" }).click();
    const userRow = ops.locator(`tr[data-row="${name}"]`);
    await userRow.waitFor();
    const keyId = await userRow.locator("td").nth(3).innerText();
    done.s3users.push({ name, keyId, secret });
  }
  const gone = ops.locator(`tr[data-row="${env.S3USER_DISABLE}"]`);
  await gone.getByRole("button", { name: "Disable" }).click();
  await gone.locator('[data-col="status"]', { hasText: "disabled" }).waitFor();
  await ops.screenshot({ path: `${shots}/s3users.png` });
} catch (err) {
  done.error = String(err && err.stack ? err.stack : err);
  if (page) await page.screenshot({ path: `${shots}/storage-failure.png` }).catch(() => {});
} finally {
  await browser.close();
}
console.log(JSON.stringify(done));
process.exit(done.error ? 1 : 0);
