// Just enough of the `figma` global for the plugin's logic: nodes, images, SVG import, viewport, storage.

export interface FakeRect {
  name: string;
  width: number;
  height: number;
  x: number;
  y: number;
  fills: unknown[];
  resize(width: number, height: number): void;
}

export interface FakeFrame {
  type: "FRAME";
  name: string;
  width: number;
  height: number;
  x: number;
  y: number;
  svg: string;
}

type FakeNode = FakeRect | FakeFrame;

export function fakeFigma(centre = { x: 500, y: 300 }) {
  const storage = new Map<string, unknown>();
  const page = { children: [] as FakeNode[], selection: [] as FakeNode[], appendChild: (n: FakeNode) => page.children.push(n) };
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
      return {
        name: "Rectangle", width: 100, height: 100, x: 0, y: 0, fills: [],
        resize(width: number, height: number) { this.width = width; this.height = height; },
      };
    },
    /** Like Figma's SVG import: a frame of the SVG's size; markup it cannot read throws. */
    createNodeFromSvg(svg: string): FakeFrame {
      const size = /<svg[^>]*\swidth="(\d+)"[^>]*\sheight="(\d+)"/.exec(svg);
      if (!size) throw new Error("Failed to import the SVG");
      api.svgs.push(svg);
      return { type: "FRAME", name: "Frame", width: Number(size[1]), height: Number(size[2]), x: 0, y: 0, svg };
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
