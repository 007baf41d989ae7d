// The studio's REST API (/api/v1/) as the plugin uses it. `fetch` is passed in so the tests
// can answer for the server.

export interface AssetType {
  slug: string;
  name: string;
  default_size: string;
  sizes: string[];
}

export interface Compliance {
  before: number | null;
  after: number | null;
  floor: number | null;
  flagged: boolean;
}

export interface StudioImage {
  id: string;
  seed: number;
  width: number;
  height: number;
  png_url: string;
  thumbnail_url: string;
  /** Set for asset types traced to SVG (Icons, Logo Illustrations); null otherwise. */
  svg_url?: string | null;
  has_alpha?: boolean;
  compliance?: Compliance;
}

/** "on-brand 97%" (and the floor it falls below), or "" for an image without a score. */
export function complianceLabel(image: StudioImage): string {
  const score = image.compliance?.after ?? image.compliance?.before;
  if (score === null || score === undefined) return "";
  const label = `on-brand ${Math.round(score * 100)}%`;
  const floor = image.compliance?.floor;
  return image.compliance?.flagged && floor !== null && floor !== undefined
    ? `${label}, below ${Math.round(floor * 100)}%`
    : label;
}

export interface Job {
  id: string;
  status: "queued" | "processing" | "complete" | "failed" | "cancelled";
  description: string;
  asset_type: string;
  progress: number;
  images_done: number;
  images_total: number;
  error: string;
  license_notice: string | null;
  images: StudioImage[];
}

/** A model this user may use (GET /models); `can` lists how it can be steered. */
export interface StudioModel {
  key: string;
  name: string;
  default: boolean;
  can: string[];
}

/** Start from the drawing as it is or filled (img2img), or follow its edges, layout or depth (a ControlNet). */
export type SketchMode = "drawing" | "filled" | "canny" | "tile" | "depth";

/** Input ids (POST /inputs) a job is steered with, and how (the studio's own choices). */
export interface Steering {
  sketch?: string;
  /** How closely the sketch is followed, and how it is read. */
  follow?: "close" | "loose";
  mode?: SketchMode;
  references?: string[];
  /** How strongly the references steer (IP-Adapter models; FLUX.2 klein follows them as given). */
  referenceStrength?: number;
}

/** An approved image in the Brand Library (GET /library). */
export interface LibraryItem {
  id: string;
  image_id: string;
  asset_type: string;
  asset_type_name: string;
  description: string;
  tags: string[];
  colours: { hex: string; share: number }[];
  approved_at: string;
  retired: boolean;
  thumbnail_url: string;
  png_url: string;
  /** Set for items traced to SVG: placed as editable vectors. */
  svg_url: string | null;
  lineage_url: string;
  lineage: { seed: number; width: number; height: number };
}

export interface LibrarySearch {
  q?: string;
  asset_type?: string;
  tag?: string;
  colour?: string;
}

/** A library item as the grid and the canvas see an image: its file URLs, size and seed. */
export function libraryImage(item: LibraryItem): StudioImage {
  const { seed, width, height } = item.lineage;
  return { id: item.image_id, seed, width, height, png_url: item.png_url, thumbnail_url: item.thumbnail_url, svg_url: item.svg_url };
}

export class StudioError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly field: string | null = null,
  ) {
    super(message);
  }
}

type Fetch = (input: string, init?: RequestInit) => Promise<Response>;

export const ENDED = new Set(["complete", "failed", "cancelled"]);

export class StudioApi {
  constructor(
    readonly server: string,
    readonly token: string,
    private readonly fetchImpl: Fetch = (input, init) => fetch(input, init),
  ) {}

  private url(path: string): string {
    return `${this.server.replace(/\/+$/, "")}/api/v1${path}`;
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let response: Response;
    try {
      response = await this.fetchImpl(this.url(path), {
        method,
        headers: { Authorization: `Bearer ${this.token}`, "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new StudioError(`Cannot reach the studio at ${this.server}.`, 0);
    }
    if (!response.ok) {
      const error = (await response.json().catch(() => ({}))) as { message?: string; field?: string };
      const message = error.message ?? `The studio answered ${response.status}.`;
      throw new StudioError(error.field ? `${error.field}: ${message}` : message, response.status, error.field ?? null);
    }
    return (response.status === 204 ? null : await response.json()) as T;
  }

  assetTypes(): Promise<AssetType[]> {
    return this.call("GET", "/asset-types");
  }

  models(): Promise<StudioModel[]> {
    return this.call("GET", "/models");
  }

  submit(assetType: string, description: string, variations = 4, steering: Steering = {}): Promise<Job> {
    const body: Record<string, unknown> = { asset_type: assetType, description, variations };
    if (steering.sketch) {
      body.sketch = { input: steering.sketch, follow: steering.follow ?? "close", mode: steering.mode ?? "drawing" };
    }
    if (steering.references?.length) {
      body.references = steering.references.map((input) => ({ input }));
      if (steering.referenceStrength !== undefined) body.reference_strength = steering.referenceStrength;
    }
    return this.call("POST", "/jobs", body);
  }

  /** An instruction edit of a studio image ("make the background blue"). */
  edit(imageId: string, instruction: string, variations = 1): Promise<Job> {
    return this.call("POST", `/images/${imageId}/edit`, { instruction, variations });
  }

  /** Uploads an image (the canvas selection) as a sketch or reference input; returns its id. */
  async uploadInput(bytes: Uint8Array, name: string): Promise<string> {
    const form = new FormData();
    form.append("file", new Blob([bytes as BlobPart], { type: "image/png" }), name);
    let response: Response;
    try {
      response = await this.fetchImpl(this.url("/inputs"), {
        method: "POST",
        headers: { Authorization: `Bearer ${this.token}` }, // the browser sets the multipart boundary
        body: form,
      });
    } catch {
      throw new StudioError(`Cannot reach the studio at ${this.server}.`, 0);
    }
    if (!response.ok) {
      const error = (await response.json().catch(() => ({}))) as { message?: string };
      throw new StudioError(error.message ?? `The studio answered ${response.status}.`, response.status, "file");
    }
    return ((await response.json()) as { id: string }).id;
  }

  job(id: string): Promise<Job> {
    return this.call("GET", `/jobs/${id}`);
  }

  regenerate(id: string): Promise<Job> {
    return this.call("POST", `/jobs/${id}/regenerate`, {});
  }

  moreLikeThis(imageId: string, strength: "subtle" | "strong" = "subtle"): Promise<Job> {
    return this.call("POST", `/images/${imageId}/more-like-this`, { strength });
  }

  /** Approved images matching the search, newest first (the first page). */
  async library(search: LibrarySearch = {}): Promise<{ count: number; items: LibraryItem[] }> {
    const query = new URLSearchParams(Object.entries(search).filter(([, v]) => v) as [string, string][]).toString();
    return this.call("GET", `/library${query ? `?${query}` : ""}`);
  }

  async recent(): Promise<Job[]> {
    const page = await this.call<{ jobs: Job[] }>("GET", "/history");
    return page.jobs.slice(0, 10);
  }

  /** The full PNG's bytes, for the canvas. */
  async imageBytes(image: StudioImage): Promise<Uint8Array> {
    return new Uint8Array(await (await this.download(image.png_url, "the image")).arrayBuffer());
  }

  /** The traced SVG's markup, for an editable vector on the canvas (only where `svg_url` is set). */
  async svgText(image: StudioImage): Promise<string> {
    if (!image.svg_url) throw new StudioError("This asset type is not traced to SVG.", 404);
    return (await this.download(image.svg_url, "the SVG")).text();
  }

  /** The small WebP the panel shows (a few KB instead of the full PNG); typed by the studio's answer. */
  async thumbnail(image: StudioImage): Promise<Blob> {
    return (await this.download(image.thumbnail_url, "the thumbnail")).blob();
  }

  /** With the token: image URLs are not public. */
  private async download(url: string, what: string): Promise<Response> {
    let response: Response;
    try {
      response = await this.fetchImpl(url, { headers: { Authorization: `Bearer ${this.token}` } });
    } catch {
      throw new StudioError(`Cannot reach the studio at ${this.server}.`, 0);
    }
    if (!response.ok) throw new StudioError(`Could not download ${what} (${response.status}).`, response.status);
    return response;
  }

  /** Polls a job until it ends, reporting each state; resolves with the last. */
  async follow(job: Job, onUpdate: (job: Job) => void, intervalMs = 700): Promise<Job> {
    let current = job;
    onUpdate(current);
    while (!ENDED.has(current.status)) {
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
      current = await this.job(current.id);
      onUpdate(current);
    }
    return current;
  }
}
