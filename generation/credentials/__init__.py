"""Content credentials: what every file the studio hands out says about where it came from.

- `watermark`: a short id hidden in the pixels, embedded by the worker as it stores an image.
- `xmp`: the IPTC digital source type in XMP, for tools that do not read C2PA.
- `manifest`: the C2PA manifest (model, license, LoRAs, asset type, sources), signed with c2pa-python.
- `keys`: the signing certificate and key from settings, and a development chain.
- `download`: the one way out: a stored file with its credentials, for pages, the API and zips.
- `verify`: what a file someone brings back says: made here and unchanged, changed, or neither.

No torch here: the web process signs downloads and verifies uploads (docs/content-credentials.md).
"""
