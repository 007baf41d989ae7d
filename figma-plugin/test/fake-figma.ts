// Just enough of the `figma` global for the plugin's logic: nodes, images, viewport, storage.

export interface FakeRect {
  name: string;
  width: number;
  height: number;
  x: number;
  y: number;
  fills: unknown[];
  resize(width: number, height: number): void;
}

export function fakeFigma(centre = { x: 500, y: 300 }) {
  const storage = new Map<string, unknown>();
  const page = { children: [] as FakeRect[], selection: [] as FakeRect[], appendChild: (n: FakeRect) => page.children.push(n) };
  const api = {
    images: [] as Uint8Array[],
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
