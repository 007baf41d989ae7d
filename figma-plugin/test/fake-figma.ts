// Just enough of the `figma` global for the plugin's logic: nodes, images, SVG import, viewport, storage.

/** What every fake node has: an id, plugin data, a parent to be removed from. */
interface FakeBase {
  id: string;
  parent: FakePage | null;
  data: Map<string, string>;
  setPluginData(key: string, value: string): void;
  getPluginData(key: string): string;
  remove(): void;
  exportAsync?: (settings: unknown) => Promise<Uint8Array>;
}

export interface FakePage {
  children: FakeNode[];
  selection: FakeNode[];
  appendChild(node: FakeNode): void;
  insertChild(index: number, node: FakeNode): void;
}

export interface FakeRect extends FakeBase {
  name: string;
  width: number;
  height: number;
  x: number;
  y: number;
  fills: unknown[];
  resize(width: number, height: number): void;
}

export interface FakeFrame extends FakeBase {
  type: "FRAME";
  name: string;
  width: number;
  height: number;
  x: number;
  y: number;
  svg: string;
  resize(width: number, height: number): void;
}

export type FakeNode = FakeRect | FakeFrame;

let ids = 0;
function base(): FakeBase {
  const node: FakeBase = {
    id: `node-${++ids}`,
    parent: null,
    data: new Map(),
    setPluginData(key, value) { node.data.set(key, value); },
    getPluginData(key) { return node.data.get(key) ?? ""; },
    remove() {
      const siblings = node.parent?.children ?? [];
      siblings.splice(siblings.indexOf(node as FakeNode), 1);
      node.parent = null;
    },
  };
  return node;
}

export function fakeFigma(centre = { x: 500, y: 300 }) {
  const storage = new Map<string, unknown>();
  const page: FakePage = {
    children: [],
    selection: [],
    appendChild: (n: FakeNode) => { n.parent = page; page.children.push(n); },
    insertChild: (index: number, n: FakeNode) => { n.parent = page; page.children.splice(index, 0, n); },
  };
  const api = {
    images: [] as Uint8Array[],
    svgs: [] as string[],
    notices: [] as string[],
    closed: false,
    currentPage: page,
    viewport: { center: centre },
    createImage(bytes: Uint8Array) {
      api.images.push(bytes);
      return { hash: `hash-${api.images.length}` };
    },
    createRectangle(): FakeRect {
      return Object.assign(base(), {
        name: "Rectangle", width: 100, height: 100, x: 0, y: 0, fills: [] as unknown[],
        resize(this: FakeRect, width: number, height: number) { this.width = width; this.height = height; },
      });
    },
    getNodeById(id: string) { return page.children.find((n) => n.id === id) ?? null; },
    /** Like Figma's SVG import: a frame of the SVG's size; markup it cannot read throws. */
    createNodeFromSvg(svg: string): FakeFrame {
      const size = /<svg[^>]*\swidth="(\d+)"[^>]*\sheight="(\d+)"/.exec(svg);
      if (!size) throw new Error("Failed to import the SVG");
      api.svgs.push(svg);
      return Object.assign(base(), {
        type: "FRAME" as const, name: "Frame", width: Number(size[1]), height: Number(size[2]), x: 0, y: 0, svg,
        resize(this: FakeFrame, width: number, height: number) { this.width = width; this.height = height; },
      });
    },
    notify(text: string) { api.notices.push(text); },
    closePlugin() { api.closed = true; },
    clientStorage: {
      getAsync: async (key: string) => storage.get(key),
      setAsync: async (key: string, value: unknown) => void storage.set(key, value),
    },
  };
  return api;
}

// The plugin code takes a PluginAPI; the fake has the parts it uses.
export const asPluginApi = (fake: ReturnType<typeof fakeFigma>) => fake as unknown as PluginAPI;
