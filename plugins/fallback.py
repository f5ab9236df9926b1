"""The img2img → txt2img fallback: when SinkIn refuses an img2img request, send the same settings
as txt2img. The job records ``fallback = 1`` and keeps the original error. A spec turns it off
with ``fallback: false``."""

from sinkin_pipeline import FIELDS, ServiceError, hookimpl

IMG2IMG_ONLY = tuple(name for name, fld in FIELDS.items() if fld.img2img_only)


@hookimpl
def handle_inference_error(job, config, payload, error):
    if not isinstance(error, ServiceError):
        return None
    if not config.get("init_asset_id") or not config.get("fallback_enabled"):
        return None
    return {k: v for k, v in payload.items() if k not in IMG2IMG_ONLY}
