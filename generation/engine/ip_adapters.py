"""IP-Adapter files as diffusers' loaders take them. No torch here: the web side reads the
same names from a file's header to check an add-on against the installed models."""

from typing import TypeVar

T = TypeVar("T")  # a tensor (the worker) or a shape (the admin's check)


def split_ip_adapter(flat: dict[str, T]) -> dict[str, dict[str, T]]:
    """An IP-Adapter file's tensors as diffusers' loader takes them ({"image_proj": ...,
    "ip_adapter": ...}): diffusers' own layout, or XLabs' FLUX one (ip_adapter_proj_model.*,
    double_blocks.N.processor.ip_adapter_double_stream_{k,v}_proj), renamed as load_ip_adapter
    renames a file it reads itself."""
    weights: dict[str, dict[str, T]] = {"image_proj": {}, "ip_adapter": {}}
    for key, tensor in flat.items():
        part, _, rest = key.partition(".")
        if part in ("image_proj", "ip_adapter_proj_model"):
            weights["image_proj"][rest] = tensor
        elif part in ("ip_adapter", "double_blocks"):
            rest = rest.replace("processor.", "").replace("ip_adapter_double_stream_k_proj", "to_k_ip")
            weights["ip_adapter"][rest.replace("ip_adapter_double_stream_v_proj", "to_v_ip")] = tensor
    return weights
