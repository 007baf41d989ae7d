// The plugin's panel: talks to the studio (with the user's token) and asks the main thread
// to store settings and to place images on the canvas.
import { complianceLabel, type Job, type LibraryItem, libraryImage, type Steering, StudioApi, type StudioImage } from "./api";
import { type MainMessage, type Settings, type UiMessage, vectorsOn } from "./messages";
import { type Offer, steeringOffer } from "./offer";
import { placeMessage } from "./place";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
let api: StudioApi | null = null;
let current: Settings | null = null; // as stored by the main thread
let lastJob: Job | null = null;
// The images in the grid by id: Figma may refuse an SVG, and the PNG is then placed instead.
const shown = new Map<string, { job: Job; image: StudioImage }>();

function send(message: UiMessage, transfer: Transferable[] = []): void {
  parent.postMessage({ pluginMessage: message }, "*", transfer);
}

function showError(error: unknown): void {
  $("error").textContent = error instanceof Error ? error.message : String(error);
}

// What the next job is steered with: the selection uploaded as a sketch, or as references.
let steering: Steering = {};
let steeringNames: string[] = [];

window.onmessage = async (event: MessageEvent) => {
  const message = event.data?.pluginMessage as MainMessage | undefined;
  if (message?.type === "settings") await settingsChanged(message.settings);
  if (message?.type === "vector-refused") await placeBitmap(message.imageId);
  if (message?.type === "refused") showError(message.text);
  if (message?.type === "selection") await attach(message.purpose, message.bytes, message.name);
  if (message?.type === "edit-target") await edit(message.imageId, message.nodeId);
};

async function attach(purpose: "sketch" | "reference", bytes: Uint8Array, name: string): Promise<void> {
  try {
    const id = await api!.uploadInput(bytes, name);
    if (purpose === "sketch") steering = { sketch: id };
    else steering = { references: [...(steering.references ?? []), id].slice(-4) };
    steeringNames = purpose === "sketch" ? [`sketch: ${name}`] : [...steeringNames.filter((n) => !n.startsWith("sketch")), name].slice(-4);
    $("steering").hidden = false;
    $("steering").textContent = `The next job uses ${steeringNames.join(", ")} (Generate clears it).`;
    $("sketch-options").hidden = !steering.sketch;
    $("reference-options").hidden = !steering.references?.length;
  } catch (error) {
    showError(error);
  }
}

/** The steering with what the panel's choices say of it: the sketch's mode and closeness, the references' strength. */
function withChoices(chosen: Steering): Steering {
  if (chosen.sketch) {
    return {
      ...chosen,
      mode: $<HTMLSelectElement>("sketch-mode").value as Steering["mode"],
      follow: $<HTMLSelectElement>("sketch-follow").value as Steering["follow"],
    };
  }
  if (chosen.references?.length) {
    const strength = Number($<HTMLInputElement>("reference-strength").value);
    return Number.isFinite(strength) ? { ...chosen, referenceStrength: strength } : chosen;
  }
  return chosen;
}

async function edit(imageId: string, nodeId: string): Promise<void> {
  const instruction = $<HTMLTextAreaElement>("instruction").value.trim();
  if (!instruction) return showError("Say what to change, e.g. “make the background blue”.");
  await run(api!.edit(imageId, instruction), nodeId);
}

async function settingsChanged(next: Settings | null): Promise<void> {
  const sameStudio = api && next && api.server === next.server && api.token === next.token;
  current = next;
  $<HTMLInputElement>("vectors").checked = vectorsOn(next);
  // Only the vectors toggle changed: keep the panel as it is.
  if (!sameStudio) await connect(next);
}

async function connect(settings: Settings | null): Promise<void> {
  $("error").textContent = "";
  $<HTMLInputElement>("server").value = settings?.server ?? "";
  $<HTMLInputElement>("token").value = settings?.token ?? "";
  if (!settings?.server || !settings.token) {
    $("setup").hidden = false;
    $("main").hidden = true;
    return;
  }
  api = new StudioApi(settings.server, settings.token);
  try {
    const [types, models] = await Promise.all([api.assetTypes(), api.models()]);
    offerSteering(steeringOffer(models));
    $<HTMLSelectElement>("asset-type").replaceChildren(
      ...types.map((t) => Object.assign(document.createElement("option"), { value: t.slug, textContent: t.name })),
    );
    $<HTMLSelectElement>("library-type").replaceChildren(
      Object.assign(document.createElement("option"), { value: "", textContent: "Every asset type" }),
      ...types.map((t) => Object.assign(document.createElement("option"), { value: t.slug, textContent: t.name })),
    );
    $("setup").hidden = true;
    $("main").hidden = false;
    await showRecent();
  } catch (error) {
    $("setup").hidden = false;
    showError(error);
  }
}

/** Only what the studio's default model can follow: the sketch's modes, references; the buttons say why not. */
function offerSteering(offer: Offer): void {
  $<HTMLSelectElement>("sketch-mode").replaceChildren(
    ...offer.sketchModes.map((m) => Object.assign(document.createElement("option"), { value: m.value, textContent: m.label })),
  );
  const sketch = $<HTMLButtonElement>("as-sketch");
  sketch.disabled = !offer.sketchModes.length;
  sketch.title = offer.sketchWhy || "Export the selected layer and start from it";
  const reference = $<HTMLButtonElement>("as-reference");
  reference.disabled = !offer.references;
  reference.title = offer.referenceWhy || "Export the selected layer as a style reference";
  $("cannot").hidden = !(offer.sketchWhy || offer.referenceWhy);
  $("cannot").textContent = [offer.sketchWhy, offer.referenceWhy].filter(Boolean).join(" ");
}

async function run(start: Promise<Job>, replaceNodeId?: string): Promise<void> {
  if (!api) return;
  $("error").textContent = "";
  $<HTMLButtonElement>("generate").disabled = true;
  $("progress").hidden = false;
  try {
    lastJob = await api.follow(await start, (job) => {
      $<HTMLProgressElement>("progress").value = Math.round(job.progress * 100);
      $("status").textContent = `${job.status} · ${job.images_done} of ${job.images_total}`;
    });
    if (lastJob.status !== "complete") throw new Error(`The job ${lastJob.status}: ${lastJob.error}`);
    $("notice").hidden = !lastJob.license_notice;
    $("notice").textContent = lastJob.license_notice ?? "";
    await showImages(lastJob);
    // An edit replaces the image it edits on the canvas, in place.
    if (replaceNodeId && lastJob.images[0]) {
      send({ ...(await placeMessage(api!, lastJob, lastJob.images[0], vectorsOn(current))), replaceNodeId });
    }
    $("again").hidden = false;
    await showRecent();
  } catch (error) {
    showError(error);
  } finally {
    $<HTMLButtonElement>("generate").disabled = false;
    $("progress").hidden = true;
  }
}

async function showImages(job: Job): Promise<void> {
  for (const image of job.images) shown.set(image.id, { job, image });
  const figures = await Promise.all(job.images.map((image) => figure(job, image)));
  $("results").replaceChildren(...figures);
}

async function figure(job: Job, image: StudioImage): Promise<HTMLElement> {
  const node = document.createElement("figure");
  const img = Object.assign(document.createElement("img"), {
    src: URL.createObjectURL(await api!.thumbnail(image)),
    alt: `${job.description}, seed ${image.seed}`,
    title: "Click to place on the canvas",
  });
  // The panel shows the thumbnail; the canvas gets the SVG or the full PNG, fetched only when placed.
  img.onclick = async () => {
    try {
      send(await placeMessage(api!, job, image, vectorsOn(current)));
    } catch (error) {
      showError(error);
    }
  };
  if (image.has_alpha) node.classList.add("checker");
  const more = Object.assign(document.createElement("button"), { textContent: "More like this" });
  more.onclick = () => run(api!.moreLikeThis(image.id));
  const caption = document.createElement("figcaption");
  const score = Object.assign(document.createElement("span"), { textContent: complianceLabel(image) });
  score.className = image.compliance?.flagged ? "compliance flagged" : "compliance";
  const text = document.createElement("span");
  text.append(`seed ${image.seed}`, ...(score.textContent ? [document.createElement("br"), score] : []));
  caption.append(text, more);
  node.append(img, caption);
  return node;
}

/** The Brand Library tab: approved images, placed as the grid's are (SVG as vectors where the item has one). */
async function searchLibrary(): Promise<void> {
  if (!api) return;
  $("error").textContent = "";
  $("library-status").textContent = "Searching…";
  try {
    const found = await api.library({
      q: $<HTMLInputElement>("library-q").value.trim(),
      asset_type: $<HTMLSelectElement>("library-type").value,
      tag: $<HTMLInputElement>("library-tag").value.trim(),
      colour: $<HTMLInputElement>("library-colour").value.trim(),
    });
    $("library-status").textContent = `${found.count} approved`;
    $("library-results").replaceChildren(...(await Promise.all(found.items.map(libraryFigure))));
  } catch (error) {
    $("library-status").textContent = "";
    showError(error);
  }
}

async function libraryFigure(item: LibraryItem): Promise<HTMLElement> {
  const image = libraryImage(item);
  // Placed like a job's image: named after the description and seed.
  const job = { id: item.id, description: item.description } as Job;
  shown.set(image.id, { job, image });
  const node = document.createElement("figure");
  const img = Object.assign(document.createElement("img"), {
    src: URL.createObjectURL(await api!.thumbnail(image)),
    alt: item.description,
    title: item.svg_url ? "Click to place as vectors" : "Click to place on the canvas",
  });
  img.onclick = async () => {
    try {
      send(await placeMessage(api!, job, image, vectorsOn(current)));
    } catch (error) {
      showError(error);
    }
  };
  const caption = document.createElement("figcaption");
  const tags = Object.assign(document.createElement("span"), { className: "tags", textContent: item.tags.join(", ") });
  caption.append(Object.assign(document.createElement("span"), { textContent: item.asset_type_name }), tags);
  node.append(img, caption);
  return node;
}

function showTab(library: boolean): void {
  $("generate-panel").hidden = library;
  $("library-panel").hidden = !library;
  $("tab-generate").setAttribute("aria-selected", String(!library));
  $("tab-library").setAttribute("aria-selected", String(library));
  if (library && !$("library-results").childElementCount) void searchLibrary();
}

async function placeBitmap(imageId: string): Promise<void> {
  const item = shown.get(imageId);
  if (!item) return;
  try {
    send(await placeMessage(api!, item.job, item.image, false));
  } catch (error) {
    showError(error);
  }
}

async function showRecent(): Promise<void> {
  const jobs = await api!.recent();
  $("recent").replaceChildren(
    ...jobs.map((job) => {
      const link = Object.assign(document.createElement("button"), { textContent: `${job.description} (${job.status})` });
      link.onclick = () => {
        lastJob = job;
        $("again").hidden = false;
        void showImages(job);
      };
      return link;
    }),
  );
}

$("save").onclick = () =>
  send({
    type: "save-settings",
    settings: {
      server: $<HTMLInputElement>("server").value.trim(),
      token: $<HTMLInputElement>("token").value.trim(),
      vectors: $<HTMLInputElement>("vectors").checked,
    },
  });
$<HTMLInputElement>("vectors").onchange = () =>
  current && send({ type: "save-settings", settings: { ...current, vectors: $<HTMLInputElement>("vectors").checked } });
$("settings").onclick = () => {
  $("setup").hidden = false;
  $("main").hidden = true;
};
$("generate").onclick = () => {
  const description = $<HTMLTextAreaElement>("description").value.trim();
  if (!description) return showError("Describe what you need.");
  const using = withChoices(steering);
  steering = {};
  steeringNames = [];
  $("steering").hidden = $("sketch-options").hidden = $("reference-options").hidden = true;
  void run(api!.submit($<HTMLSelectElement>("asset-type").value, description, 4, using));
};
$("as-sketch").onclick = () => send({ type: "export-selection", purpose: "sketch" });
$("as-reference").onclick = () => send({ type: "export-selection", purpose: "reference" });
$("edit").onclick = () => send({ type: "edit-target" });
$("again").onclick = () => lastJob && void run(api!.regenerate(lastJob.id));
$("tab-generate").onclick = () => showTab(false);
$("tab-library").onclick = () => showTab(true);
$("library-search").onclick = () => void searchLibrary();
$<HTMLInputElement>("library-q").onkeydown = (event) => event.key === "Enter" && void searchLibrary();

send({ type: "load-settings" });
