import assert from "node:assert/strict";
import { test } from "node:test";

import { StudioApi } from "../src/api";
import { IMAGE_KEY } from "../src/canvas";
import { handleMessage } from "../src/messages";
import { asPluginApi, type FakeRect, fakeFigma } from "./fake-figma";

function selectedLayer(fake: ReturnType<typeof fakeFigma>, width = 400, height = 200): FakeRect {
  const layer = fake.createRectangle();
  layer.name = "Sketch frame";
  layer.resize(width, height);
  const asked: unknown[] = [];
  layer.exportAsync = async (settings: unknown) => {
    asked.push(settings);
    return new Uint8Array([137, 80, 78, 71]);
  };
  (layer as unknown as { asked: unknown[] }).asked = asked;
  fake.currentPage.appendChild(layer);
  fake.currentPage.selection = [layer];
  return layer;
}

test("the selected layer is exported as a PNG for a sketch, at most 2048 px a side", async () => {
  const fake = fakeFigma();
  const layer = selectedLayer(fake, 4096, 1024);
  const reply = await handleMessage(asPluginApi(fake), { type: "export-selection", purpose: "sketch" });
  assert.equal(reply?.type, "selection");
  assert.deepEqual((reply as { name: string }).name, "Sketch frame.png");
  assert.deepEqual((layer as unknown as { asked: unknown[] }).asked, [
    { format: "PNG", constraint: { type: "SCALE", value: 0.5 } },
  ]);
});

test("no selection, or several layers, is a message for the panel, not an error", async () => {
  const fake = fakeFigma();
  assert.deepEqual(await handleMessage(asPluginApi(fake), { type: "export-selection", purpose: "reference" }), {
    type: "refused",
    text: "Select one layer to use, then try again.",
  });
  selectedLayer(fake);
  assert.deepEqual(await handleMessage(asPluginApi(fake), { type: "edit-target" }), {
    type: "refused",
    text: "Select one image placed from Brand Studio to edit it.",
  });
});

test("a placed studio image is found again for an edit, and the result replaces it in place", async () => {
  const fake = fakeFigma();
  const figma = asPluginApi(fake);
  const place = { type: "place", width: 512, height: 512, seed: 3 } as const;
  await handleMessage(figma, { ...place, imageId: "img-1", bytes: new Uint8Array([1]), description: "a key" });
  const [placed] = fake.currentPage.children as FakeRect[];
  assert.equal(placed.getPluginData(IMAGE_KEY), "img-1");
  placed.x = 40;
  placed.y = 60;
  placed.resize(128, 128); // the designer made it smaller
  const target = await handleMessage(figma, { type: "edit-target" });
  assert.deepEqual(target, { type: "edit-target", imageId: "img-1", nodeId: placed.id });
  await handleMessage(figma, {
    ...place, imageId: "img-2", bytes: new Uint8Array([2]), description: "a blue key", replaceNodeId: placed.id,
  });
  assert.equal(fake.currentPage.children.length, 1);
  const [edited] = fake.currentPage.children as FakeRect[];
  assert.deepEqual([edited.x, edited.y, edited.width, edited.height], [40, 60, 128, 128]);
  assert.equal(edited.getPluginData(IMAGE_KEY), "img-2");
  assert.deepEqual(fake.currentPage.selection, [edited]);
});

test("the panel uploads the selection, then sends its id with the job; an edit names the image", async () => {
  const calls: { url: string; init?: RequestInit }[] = [];
  const api = new StudioApi("http://studio", "bst_t", async (url, init) => {
    calls.push({ url, init });
    const body = url.endsWith("/inputs") ? { id: "in-1" } : { id: "job-1", status: "queued", images: [] };
    return new Response(JSON.stringify(body), { status: url.endsWith("/inputs") ? 201 : 202 });
  });
  const id = await api.uploadInput(new Uint8Array([137, 80]), "frame.png");
  assert.equal(id, "in-1");
  assert.ok(calls[0].init?.body instanceof FormData);
  await api.submit("icon", "a star", 4, { sketch: id });
  assert.deepEqual(JSON.parse(String(calls[1].init?.body)).sketch, { input: "in-1", follow: "close", mode: "drawing" });
  await api.submit("icon", "a star", 4, { references: ["in-1", "in-2"] });
  assert.deepEqual(JSON.parse(String(calls[2].init?.body)).references, [{ input: "in-1" }, { input: "in-2" }]);
  await api.edit("img-1", "make the background blue");
  assert.equal(calls[3].url, "http://studio/api/v1/images/img-1/edit");
  assert.deepEqual(JSON.parse(String(calls[3].init?.body)), { instruction: "make the background blue", variations: 1 });
  await api.submit("icon", "a star", 4, { sketch: id, mode: "filled", follow: "loose" });
  assert.deepEqual(JSON.parse(String(calls[4].init?.body)).sketch, { input: "in-1", follow: "loose", mode: "filled" });
  await api.submit("icon", "a star", 4, { references: ["in-1"], referenceStrength: 0.3 });
  assert.equal(JSON.parse(String(calls[5].init?.body)).reference_strength, 0.3);
});

test("a refused upload says why, naming the file field", async () => {
  const api = new StudioApi("http://studio", "bst_t", async () =>
    new Response(JSON.stringify({ message: "frame.png: not a PNG, JPEG or WebP image", field: "file" }), { status: 422 }),
  );
  await assert.rejects(api.uploadInput(new Uint8Array([1]), "frame.png"), /not a PNG, JPEG or WebP image/);
});
