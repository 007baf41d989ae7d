import assert from "node:assert/strict";
import { test } from "node:test";

import { complianceLabel, type Job, StudioApi, StudioError } from "../src/api";

function server(routes: Record<string, (init?: RequestInit) => Response>) {
  const calls: { url: string; init?: RequestInit }[] = [];
  const fetchImpl = async (url: string, init?: RequestInit) => {
    calls.push({ url, init });
    const route = routes[`${init?.method ?? "GET"} ${new URL(url).pathname}`];
    return route ? route(init) : new Response(JSON.stringify({ message: "Not found (or not yours)." }), { status: 404 });
  };
  return { calls, fetchImpl };
}

const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
const job = (status: Job["status"], progress: number): Job => ({
  id: "j1", status, description: "a key", asset_type: "icon", progress, images_done: 0, images_total: 2,
  error: "", license_notice: null, images: [],
});

test("calls carry the token and go to the studio's /api/v1/", async () => {
  const { calls, fetchImpl } = server({ "POST /api/v1/jobs": () => json(job("queued", 0), 202) });
  const api = new StudioApi("http://studio.test/", "bst_secret", fetchImpl);
  await api.submit("icon", "a key", 2);
  assert.equal(calls[0].url, "http://studio.test/api/v1/jobs");
  assert.deepEqual((calls[0].init?.headers as Record<string, string>).Authorization, "Bearer bst_secret");
  assert.deepEqual(JSON.parse(String(calls[0].init?.body)), { asset_type: "icon", description: "a key", variations: 2 });
});

test("a job is followed until it ends, reporting progress", async () => {
  const states = [job("processing", 0.5), job("complete", 1)];
  const { fetchImpl } = server({ "GET /api/v1/jobs/j1": () => json(states.shift()) });
  const seen: number[] = [];
  const last = await new StudioApi("http://studio.test", "t", fetchImpl).follow(job("queued", 0), (j) => seen.push(j.progress), 1);
  assert.equal(last.status, "complete");
  assert.deepEqual(seen, [0, 0.5, 1]);
});

test("the studio's errors become messages naming the field", async () => {
  const { fetchImpl } = server({
    "POST /api/v1/jobs": () => json({ message: "Pick one of the available asset types.", field: "asset_type" }, 422),
  });
  await assert.rejects(new StudioApi("http://studio.test", "t", fetchImpl).submit("poster", "a key"), (error: unknown) => {
    assert.ok(error instanceof StudioError);
    assert.equal(error.status, 422);
    assert.equal(error.message, "asset_type: Pick one of the available asset types.");
    return true;
  });
});

test("an unreachable studio is a clear error", async () => {
  const api = new StudioApi("http://studio.test", "t", async () => { throw new TypeError("fetch failed"); });
  await assert.rejects(api.assetTypes(), /Cannot reach the studio at http:\/\/studio.test/);
});

test("the panel's thumbnails come from thumbnail_url and the canvas gets the full PNG, both with the token", async () => {
  const webp = new Uint8Array([82, 73, 70, 70]);
  const png = new Uint8Array([137, 80, 78, 71]);
  const { calls, fetchImpl } = server({
    "GET /api/v1/images/i1/thumbnail": () => new Response(webp, { headers: { "Content-Type": "image/webp" } }),
    "GET /api/v1/images/i1/file": () => new Response(png, { headers: { "Content-Type": "image/png" } }),
  });
  const api = new StudioApi("http://studio.test", "bst_secret", fetchImpl);
  const image = {
    id: "i1", seed: 7, width: 1024, height: 1024,
    png_url: "http://studio.test/api/v1/images/i1/file?format=png",
    thumbnail_url: "http://studio.test/api/v1/images/i1/thumbnail",
  };
  const thumbnail = await api.thumbnail(image);
  assert.equal(thumbnail.type, "image/webp");
  assert.deepEqual(new Uint8Array(await thumbnail.arrayBuffer()), webp);
  assert.deepEqual(await api.imageBytes(image), png);
  assert.deepEqual(calls.map((c) => c.url), [image.thumbnail_url, image.png_url]);
  for (const call of calls) assert.equal((call.init?.headers as Record<string, string>).Authorization, "Bearer bst_secret");
});

test("a thumbnail that cannot be downloaded is a clear error", async () => {
  const { fetchImpl } = server({});
  const image = { id: "gone", seed: 1, width: 64, height: 64, png_url: "", thumbnail_url: "http://studio.test/api/v1/images/gone/thumbnail" };
  await assert.rejects(new StudioApi("http://studio.test", "t", fetchImpl).thumbnail(image), /Could not download the thumbnail \(404\)/);
});

test("the grid's compliance label gives the finished score and the floor it falls below", () => {
  const image = { id: "i1", seed: 1, width: 64, height: 64, png_url: "", thumbnail_url: "" };
  const compliance = (after: number | null, flagged = false) => ({ before: 0.8, after, floor: 0.9, flagged });
  assert.equal(complianceLabel({ ...image, compliance: compliance(0.974) }), "on-brand 97%");
  assert.equal(complianceLabel({ ...image, compliance: compliance(0.62, true) }), "on-brand 62%, below 90%");
  assert.equal(complianceLabel({ ...image, compliance: { before: null, after: null, floor: null, flagged: false } }), "");
  assert.equal(complianceLabel(image), "");
});
