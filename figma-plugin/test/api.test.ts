import assert from "node:assert/strict";
import { test } from "node:test";

import { type Job, StudioApi, StudioError } from "../src/api";

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
