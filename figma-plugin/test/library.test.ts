import assert from "node:assert/strict";
import { test } from "node:test";

import { type LibraryItem, libraryImage, StudioApi } from "../src/api";
import { placeMessage } from "../src/place";

const item: LibraryItem = {
  id: "s1", image_id: "i1", asset_type: "icon", asset_type_name: "Icon", description: "a key", tags: ["onboarding"],
  colours: [{ hex: "#0f6cbd", share: 0.4 }], approved_at: "2026-12-06T10:00:00Z", retired: false,
  thumbnail_url: "http://studio.test/api/v1/library/s1/thumbnail",
  png_url: "http://studio.test/api/v1/library/s1/download?format=png",
  svg_url: "http://studio.test/api/v1/library/s1/download?format=svg",
  lineage_url: "http://studio.test/library/s1/", lineage: { seed: 7, width: 512, height: 512 },
};

test("a library search sends only the filters given", async () => {
  const urls: string[] = [];
  const fetchImpl = async (url: string) => {
    urls.push(url);
    return new Response(JSON.stringify({ count: 1, items: [item] }), { headers: { "Content-Type": "application/json" } });
  };
  const found = await new StudioApi("http://studio.test", "t", fetchImpl).library({ q: "key", tag: "", colour: "#0f6cbd" });
  assert.equal(urls[0], "http://studio.test/api/v1/library?q=key&colour=%230f6cbd");
  assert.equal(found.items[0].id, "s1");
});

test("a library item with an SVG is placed as vectors, named by its description and seed", async () => {
  const fetchImpl = async (url: string) => new Response(url.endsWith("svg") ? "<svg/>" : new Uint8Array([1]));
  const api = new StudioApi("http://studio.test", "t", fetchImpl);
  const message = await placeMessage(api, { description: item.description } as never, libraryImage(item), true);
  assert.equal(message.svg, "<svg/>");
  assert.deepEqual([message.imageId, message.seed, message.width, message.description], ["i1", 7, 512, "a key"]);
  const bitmap = await placeMessage(api, { description: item.description } as never, libraryImage({ ...item, svg_url: null }), true);
  assert.ok(bitmap.bytes && !bitmap.svg);
});
