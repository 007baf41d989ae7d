// Placing a generated image on the canvas. Pure functions of a `figma`-like object, so the
// tests can pass a fake one (Node's test runner has no Figma).

/** Figma refuses images larger than 4096 px on a side. */
export const MAX_SIDE = 4096;
/** A placed studio image remembers its id (plugin data), so "Edit" knows which one it is. */
export const IMAGE_KEY = "brand-studio-image";
/** The longest side a selection is exported at for a sketch or reference (the studio keeps at most 2048). */
export const EXPORT_SIDE = 2048;

/** What the designer should fix, shown in the panel (not a bug). */
export class CanvasRefusal extends Error {}

export interface PlaceRequest {
  bytes: Uint8Array;
  width: number;
  height: number;
  name: string; // "a flat orange star icon · seed 42"
  imageId?: string;
  replaceNodeId?: string; // an edit: the placed image it replaces, in place
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
  return settle(figmaApi, rect, request);
}

export interface PlaceVectorRequest {
  svg: string;
  name: string;
  imageId?: string;
  replaceNodeId?: string;
}

/** The traced SVG as editable vector layers (a frame of paths), placed like an image.
 *  Throws what `createNodeFromSvg` throws on markup Figma cannot read: the caller falls back to the image. */
export function placeVector(figmaApi: PluginAPI, request: PlaceVectorRequest): FrameNode {
  const frame = figmaApi.createNodeFromSvg(request.svg);
  frame.name = request.name;
  return settle(figmaApi, frame, request);
}

/** Marks the node as that studio image, then puts it where the image it replaces was (same
 *  parent, place in the layer order, position and width), or in view. */
function settle<T extends SceneNode>(
  figmaApi: PluginAPI,
  node: T,
  request: { imageId?: string; replaceNodeId?: string },
): T {
  if (request.imageId) node.setPluginData(IMAGE_KEY, request.imageId);
  const old = request.replaceNodeId ? (figmaApi.getNodeById(request.replaceNodeId) as SceneNode | null) : null;
  if (!old || !old.parent) return putInView(figmaApi, node);
  const parent = old.parent as ChildrenMixin & BaseNode;
  parent.insertChild(parent.children.indexOf(old), node);
  if ("resize" in node && node.width) {
    const scale = old.width / node.width;
    (node as unknown as LayoutMixin).resize(Math.round(node.width * scale), Math.round(node.height * scale));
  }
  node.x = old.x;
  node.y = old.y;
  old.remove();
  figmaApi.currentPage.selection = [node];
  return node;
}

/** The one selected layer as a PNG (at most EXPORT_SIDE px), for a sketch or a style reference. */
export async function exportSelection(figmaApi: PluginAPI): Promise<{ bytes: Uint8Array; name: string }> {
  const selection = figmaApi.currentPage.selection;
  if (selection.length !== 1) throw new CanvasRefusal("Select one layer to use, then try again.");
  const [node] = selection;
  if (!("exportAsync" in node)) throw new CanvasRefusal("That layer cannot be exported as an image.");
  const value = Math.min(2, EXPORT_SIDE / Math.max(1, node.width, node.height));
  const bytes = await node.exportAsync({ format: "PNG", constraint: { type: "SCALE", value } });
  return { bytes, name: `${node.name}.png` };
}

/** The selected studio image (placed by this plugin) that an edit replaces. */
export function selectedStudioImage(figmaApi: PluginAPI): { imageId: string; nodeId: string } {
  const selection = figmaApi.currentPage.selection;
  const imageId = selection.length === 1 ? selection[0].getPluginData(IMAGE_KEY) : "";
  if (!imageId) throw new CanvasRefusal("Select one image placed from Brand Studio to edit it.");
  return { imageId, nodeId: selection[0].id };
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
