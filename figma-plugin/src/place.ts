// What the panel sends the main thread to place one image: the traced SVG when vectors are
// on and the image has one, else the PNG (also when the SVG cannot be downloaded).
import type { Job, StudioApi, StudioImage } from "./api";
import type { PlaceMessage } from "./messages";

export async function placeMessage(api: StudioApi, job: Job, image: StudioImage, vectors: boolean): Promise<PlaceMessage> {
  const { id: imageId, width, height, seed } = image;
  const base = { type: "place", imageId, width, height, description: job.description, seed } as const;
  if (vectors && image.svg_url) {
    try {
      return { ...base, svg: await api.svgText(image) };
    } catch {
      // The image fill below: a vector that cannot be fetched should not stop the placing.
    }
  }
  return { ...base, bytes: await api.imageBytes(image) };
}
