// Placing a generated image on the canvas. Pure functions of a `figma`-like object, so the
// tests can pass a fake one (Node's test runner has no Figma).

/** Figma refuses images larger than 4096 px on a side. */
export const MAX_SIDE = 4096;

export interface PlaceRequest {
  bytes: Uint8Array;
  width: number;
  height: number;
  name: string; // "a flat orange star icon · seed 42"
}

export function fitWithin(width: number, height: number, max = MAX_SIDE): { width: number; height: number } {
  const scale = Math.min(1, max / Math.max(width, height));
  return { width: Math.round(width * scale), height: Math.round(height * scale) };
}

/** A rectangle with the image as its fill, centred in the viewport, selected and in view. */
export function placeImage(figmaApi: PluginAPI, request: PlaceRequest): RectangleNode {
  const size = fitWithin(request.width, request.height);
  const image = figmaApi.createImage(request.bytes);
  const rect = figmaApi.createRectangle();
  rect.name = request.name;
  rect.resize(size.width, size.height);
  rect.fills = [{ type: "IMAGE", imageHash: image.hash, scaleMode: "FILL" }];
  return putInView(figmaApi, rect);
}

export interface PlaceVectorRequest {
  svg: string;
  name: string;
}

/** The traced SVG as editable vector layers (a frame of paths), placed like an image.
 *  Throws what `createNodeFromSvg` throws on markup Figma cannot read: the caller falls back to the image. */
export function placeVector(figmaApi: PluginAPI, request: PlaceVectorRequest): FrameNode {
  const frame = figmaApi.createNodeFromSvg(request.svg);
  frame.name = request.name;
  return putInView(figmaApi, frame);
}

function putInView<T extends SceneNode>(figmaApi: PluginAPI, node: T): T {
  const centre = figmaApi.viewport.center;
  node.x = Math.round(centre.x - node.width / 2);
  node.y = Math.round(centre.y - node.height / 2);
  figmaApi.currentPage.appendChild(node);
  figmaApi.currentPage.selection = [node];
  return node;
}

export function layerName(description: string, seed: number): string {
  const short = description.length > 60 ? `${description.slice(0, 57)}…` : description;
  return `${short} · seed ${seed}`;
}
