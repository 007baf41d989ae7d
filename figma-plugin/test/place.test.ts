import assert from "node:assert/strict";
import { test } from "node:test";

import { type Job, StudioApi, type StudioImage } from "../src/api";
import { placeMessage } from "../src/place";

const SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"/>';
const PNG = new Uint8Array([137, 80, 78, 71]);
const job = { description: "a key" } as Job;
const icon: StudioImage = {
  id: "i1", seed: 7, width: 64, height: 64,
  png_url: "http://studio.test/api/v1/images/i1/file?format=png",
  thumbnail_url: "http://studio.test/api/v1/images/i1/thumbnail",
  svg_url: "http://studio.test/api/v1/images/i1/file?format=svg",
};

function studio(svgStatus = 200) {
  const urls: string[] = [];
  const api = new StudioApi("http://studio.test", "bst_secret", async (url, init) => {
    urls.push(url);
    assert.equal((init?.headers as Record<string, string>).Authorization, "Bearer bst_secret");
    if (url.endsWith("format=svg")) return new Response(SVG, { status: svgStatus, headers: { "Content-Type": "image/svg+xml" } });
    return new Response(PNG, { headers: { "Content-Type": "image/png" } });
  });
  return { api, urls };
}

test("a traced icon is sent as its SVG when vectors are on, without downloading the PNG", async () => {
  const { api, urls } = studio();
  const message = await placeMessage(api, job, icon, true);
  assert.deepEqual(message, { type: "place", imageId: "i1", width: 64, height: 64, description: "a key", seed: 7, svg: SVG });
  assert.deepEqual(urls, [icon.svg_url]);
});

test("with vectors off, or for an image without an SVG, the PNG is sent", async () => {
  for (const [image, vectors] of [[icon, false], [{ ...icon, svg_url: null }, true]] as const) {
    const { api, urls } = studio();
    const message = await placeMessage(api, job, image, vectors);
    assert.deepEqual(message.bytes, PNG);
    assert.equal(message.svg, undefined);
    assert.deepEqual(urls, [icon.png_url]);
  }
});

test("an SVG that cannot be downloaded falls back to the PNG", async () => {
  const { api, urls } = studio(404);
  const message = await placeMessage(api, job, icon, true);
  assert.deepEqual(message.bytes, PNG);
  assert.deepEqual(urls, [icon.svg_url, icon.png_url]);
});
